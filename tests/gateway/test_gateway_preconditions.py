"""DELETE /exchanges/{id}: the engine releases the account before the broker removes it."""

from __future__ import annotations

from meshkit import errors
from meshkit.identity import ASSERTION_HEADER
from tests.gateway.conftest import API, Harness


async def test_delete_asks_the_engine_first_with_the_users_assertion(harness: Harness) -> None:
    status, body, _ = await harness.call("DELETE", f"{API}/exchanges/ex-1?force=true")
    assert status == 200, body
    methods = [c.method for c in harness.recorder.calls]
    assert methods.index("ReleaseExchange") < methods.index("DeleteExchange")
    release = harness.recorder.last("ReleaseExchange")
    assert release.request.exchange_id == "ex-1"
    assert release.request.force is True
    assert release.header(ASSERTION_HEADER)
    assert harness.recorder.last("DeleteExchange").request.force is True


async def test_an_account_in_use_is_409_and_never_reaches_the_broker(harness: Harness) -> None:
    harness.recorder.failures["ReleaseExchange"] = errors.Aborted(
        "exchange account ex-1 is used by the copy configurations c-1",
        reason="EXCHANGE_IN_USE",
        metadata={"exchange_id": "ex-1", "config_ids": "c-1"},
    )
    status, body, _ = await harness.call("DELETE", f"{API}/exchanges/ex-1")
    assert status == 409
    assert "c-1" in body["message"]
    info = next(d for d in body["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "EXCHANGE_IN_USE"
    assert info["metadata"]["config_ids"] == "c-1"
    assert "DeleteExchange" not in [c.method for c in harness.recorder.calls]
