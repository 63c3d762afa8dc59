"""The mesh's log files as ``copytrade up`` writes them (docs/logging.md): every line of every
component's file is a JSON object, and the gateway writes one access line per REST request
that names the route template and a hash of the user, never the token or the user id."""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

import aiohttp

from gateway.users import add_user
from meshctl.api import BASE
from meshctl.launcher import Mesh
from meshkit import db
from meshkit.testing import eventually

REQUIRED = ("time", "level", "service", "message")
CONFIG_ID = "cfg-raw-id-not-for-logs"


def entries_of(path: pathlib.Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as a JSON log entry (fails on the first one that is not)."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), f"{path.name}: {line}"
        assert all(key in entry for key in REQUIRED), f"{path.name}: {line}"
        entries.append(entry)
    return entries


async def test_every_log_line_is_json_and_each_request_has_an_access_line(
    mesh: Mesh, session: aiohttp.ClientSession
) -> None:
    database = await db.connect(mesh.gateway_database_url())
    try:
        user_id, token = await add_user(database, "logged", "pro")
    finally:
        await database.close()
    api = f"{mesh.gateway_url}{BASE}"
    asked = [
        ("GET", f"{api}/exchanges", token, "log-test-1"),
        ("GET", f"{api}/status/{CONFIG_ID}", token, "log-test-2"),
        ("GET", f"{api}/exchanges", "not-a-token", "log-test-3"),
    ]
    answered = {}
    for method, url, bearer, request_id in asked:
        headers = {"Authorization": f"Bearer {bearer}", "X-Request-Id": request_id}
        async with session.request(method, url, headers=headers) as response:
            await response.read()
            answered[request_id] = response.status
    gateway_log = mesh.data_dir / "logs" / "gateway.log"

    def access_lines() -> dict[str, dict[str, Any]]:
        if not gateway_log.exists():
            return {}
        lines = [json.loads(line) for line in gateway_log.read_text().splitlines()]
        found = {e.get("request_id"): e for e in lines if e.get("logger") == "gateway.access"}
        return found if set(answered) <= set(found) else {}

    access = await eventually(access_lines, timeout=30)
    mesh.stop()  # the shutdown lines too, and every pipe read to its end

    logs = sorted((mesh.data_dir / "logs").iterdir())
    assert {path.name for path in logs} >= {"gateway.log", "broker.log", "exchange_sim.log"}
    for path in logs:
        assert entries_of(path), f"{path.name} is empty"
    hashed = hashlib.sha256(user_id.encode()).hexdigest()[:16]
    for request_id, status in answered.items():
        line = access[request_id]
        assert line["level"] == "info" and line["service"] == "gateway"
        assert line["method"] == "GET" and line["status"] == status
        assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert access["log-test-1"]["route"] == f"{BASE}/exchanges"
    assert access["log-test-1"]["user_hash"] == hashed
    assert access["log-test-2"]["route"] == f"{BASE}/status/{{config_id}}"
    assert access["log-test-2"]["user_hash"] == hashed
    assert "user_hash" not in access["log-test-3"]  # the token was refused: no user
    assert answered["log-test-3"] == 401
    for path in logs:
        text = path.read_text(encoding="utf-8")
        for secret in (token, "not-a-token"):
            assert secret not in text, f"{path.name} holds a bearer token"
    gateway_text = gateway_log.read_text(encoding="utf-8")
    assert user_id not in gateway_text and CONFIG_ID not in gateway_text
