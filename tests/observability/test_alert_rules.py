"""The alert rules: ``promtool check rules`` finds nothing, and ``promtool test rules`` passes,
with one case where each alert fires and one where it does not (docs/alerts.md).

promtool comes from Debian's ``prometheus`` package (.ci/run installs it when absent); without
it these tests fail, never skip: the rules would otherwise go unchecked.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "copytrade.rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "copytrade.rules.test.yml"
SEVERITIES = {"critical", "warning"}


def _promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, (
        "promtool is not installed: apt-get install prometheus (Debian), as .ci/run does"
    )
    return subprocess.run(
        [promtool, *arguments], capture_output=True, text=True, timeout=120, check=False
    )


def _alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_finds_nothing_wrong_with_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_every_alert_has_a_severity_a_runbook_and_a_firing_and_a_quiet_case() -> None:
    alerts = _alerts()
    assert alerts
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [check for case in tests for check in case.get("alert_rule_test", [])]
    documented = (ROOT / "docs" / "alerts.md").read_text()
    for rule in alerts:
        name = str(rule["alert"])
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        assert isinstance(labels, dict) and labels.get("severity") in SEVERITIES, name
        assert isinstance(annotations, dict), name
        assert annotations.get("summary"), name
        assert f"docs/alerts.md#{name.lower()}" in str(annotations.get("description")), name
        assert re.search(rf"^## {name}$", documented, re.MULTILINE), f"{name} not in alerts.md"
        mine = [check for check in checks if check["alertname"] == name]
        assert any(check.get("exp_alerts") for check in mine), f"{name}: no case where it fires"
        assert any(not check.get("exp_alerts") for check in mine), f"{name}: no quiet case"
