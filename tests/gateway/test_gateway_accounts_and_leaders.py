"""Accounts in use (the engine releases an account before the broker removes it) and leaders."""

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


# ------------------------------------------------------------------------------ leaders


async def test_leader_routes_reach_the_engine_as_the_user(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "POST", f"{API}/leaders", json={"exchange_id": "ex-1", "display_name": "Alice"}
    )
    assert status == 200, body
    assert body["leader"]["leader_id"] == "l-1"
    publish = harness.recorder.last("PublishLeader")
    assert (publish.request.exchange_id, publish.request.display_name) == ("ex-1", "Alice")
    assert publish.header(ASSERTION_HEADER)
    status, body, _ = await harness.call("GET", f"{API}/leaders")
    assert status == 200 and [x["leader_id"] for x in body["leaders"]] == ["l-1"]
    status, body, _ = await harness.call("DELETE", f"{API}/leaders/l-1")
    assert status == 200 and body["leader_id"] == "l-1"
    assert harness.recorder.last("UnpublishLeader").request.leader_id == "l-1"


async def test_a_free_user_can_neither_publish_list_unpublish_nor_follow(harness: Harness) -> None:
    for method, path, body in [
        ("POST", "/leaders", {"exchange_id": "ex-1", "display_name": "Bob"}),
        ("GET", "/leaders", None),
        ("DELETE", "/leaders/l-1", None),
        ("POST", "/start", {"source_leader_id": "l-1", "target_exchange_ids": ["t-1"]}),
    ]:
        status, _, _ = await harness.call(method, f"{API}{path}", token="free", json=body)
        assert status == 403, (method, path)
    methods = {c.method for c in harness.recorder.calls}
    assert not methods & {"PublishLeader", "ListLeaders", "UnpublishLeader", "StartCopy"}
