"""gen/ is exactly what scripts/gen_protos.py produces from proto/ (no hand edits, no drift)."""

from __future__ import annotations

import filecmp
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _tree(root: pathlib.Path) -> dict[str, pathlib.Path]:
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_matches_the_protos(tmp_path: pathlib.Path) -> None:
    for name in ("proto", "scripts"):
        shutil.copytree(ROOT / name, tmp_path / name)
    subprocess.run(
        [sys.executable, "scripts/gen_protos.py"], cwd=tmp_path, check=True, capture_output=True
    )
    fresh, checked_in = _tree(tmp_path / "gen"), _tree(ROOT / "gen")
    assert sorted(fresh) == sorted(checked_in), (
        "gen/ lacks or has extra files: run scripts/gen_protos.py"
    )
    stale = [
        name for name in fresh if not filecmp.cmp(fresh[name], checked_in[name], shallow=False)
    ]
    assert not stale, f"gen/ is stale, run scripts/gen_protos.py: {stale}"
