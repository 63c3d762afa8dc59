"""REST to gRPC mapping through the real app: path, query, body, response_body, 404/405, 400s."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import API, Harness


def _violations(body: dict) -> dict[str, str]:
    for detail in body["details"]:
        if detail["@type"].endswith("google.rpc.BadRequest"):
            return {v["field"]: v["description"] for v in detail["field_violations"]}
    return {}


def _reason(body: dict) -> str:
    for detail in body["details"]:
        if detail["@type"].endswith("google.rpc.ErrorInfo"):
            return detail["reason"]
    return ""


async def test_get_binds_path_then_query_with_dotted_and_repeated_names(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "GET",
        "/v1/things/a%20b?count=3&flag=true&tags=x&tags=y&inner.sub=s&inner.amount=0.10"
        "&color=COLOR_RED&when=2026-01-02T03:04:05Z&price=1e-7&ratio=0.5",
    )
    assert status == 200, body
    request = harness.recorder.last("GetThing").request
    assert request.name == "a b"
    assert request.count == 3 and request.flag is True
    assert list(request.tags) == ["x", "y"]
    assert request.inner.sub == "s" and request.inner.amount.value == "0.10"
    assert request.color == 1
    assert request.when.seconds == 1767323045
    assert request.price.value == "0.0000001"
    assert request.ratio == 0.5


async def test_nested_path_variables_set_fields_of_a_sub_message(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", "/v1/nested/abc/12345678901234567")
    assert status == 200, body
    request = harness.recorder.last("GetNested").request
    assert request.inner.sub == "abc" and request.inner.big == 12345678901234567


async def test_variable_with_a_literal_pattern_keeps_the_literal_in_the_value(
    harness: Harness,
) -> None:
    status, _, _ = await harness.call("GET", "/v1/shelves/s1")
    assert status == 200
    assert harness.recorder.last("GetShelf").request.name == "shelves/s1"
    status, body, _ = await harness.call("GET", "/v1/racks/s1")
    assert status == 404 and body["code"] == 5


async def test_double_wildcard_captures_every_remaining_segment(harness: Harness) -> None:
    status, _, _ = await harness.call("GET", "/v1/files/a/b/c.txt")
    assert status == 200
    assert harness.recorder.last("GetFile").request.name == "a/b/c.txt"


async def test_empty_double_wildcard_is_a_missing_parameter(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", "/v1/files/")
    assert status == 400
    assert _violations(body) == {"name": "missing parameter name"}


async def test_custom_verb_routes_to_its_own_method(harness: Harness) -> None:
    status, _, _ = await harness.call("POST", "/v1/things/t1:cancel", json={"count": 2})
    assert status == 200
    call = harness.recorder.last("CancelThing")
    assert call.request.name == "t1" and call.request.count == 2


async def test_body_field_fills_that_field_and_the_query_fills_the_rest(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "PUT",
        "/v1/items/n1?count=2",
        json={"name": "in-body", "price": 0.1, "displayName": "D"},
    )
    assert status == 200, body
    request = harness.recorder.last("PutItem").request
    assert request.name == "n1" and request.count == 2
    assert request.item.name == "in-body" and request.item.price.value == "0.1"
    assert request.item.display_name == "D"


async def test_query_cannot_set_the_body_field(harness: Harness) -> None:
    status, body, _ = await harness.call("PUT", "/v1/items/n1?item.name=x", json={})
    assert status == 400
    assert _violations(body) == {"item.name": "is set by the body"}


async def test_response_body_answers_with_that_field_only(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", "/v1/items/n1")
    assert status == 200
    assert body["name"] == "stored"
    assert body["price"] == "12.50"
    assert body["levels"] == ["0.1"]
    assert body["prices"] == {"BTC": "50000.00"}
    assert "request" not in body


async def test_unknown_path_is_404_not_found_status(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", f"{API}/nothing-here")
    assert status == 404
    assert body["code"] == 5 and body["message"] == "Not Found"
    assert _reason(body) == "ROUTE_NOT_FOUND"


async def test_wrong_verb_is_405_with_allow_header(harness: Harness) -> None:
    status, body, headers = await harness.call("PUT", f"{API}/configs")
    assert status == 405
    assert body["code"] == 12
    assert headers["Allow"] == "GET"


async def test_type_mismatch_on_a_path_parameter_is_400_in_grpc_gateway_words(
    harness: Harness,
) -> None:
    status, body, _ = await harness.call("GET", "/v1/counts/abc")
    assert status == 400
    assert body["code"] == 3
    assert _violations(body)["count"].startswith("type mismatch, parameter: count, error:")
    assert harness.recorder.calls == []


async def test_type_mismatch_on_a_query_parameter_names_it(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", "/v1/things/t?flag=maybe&inner.amount=ten")
    assert status == 400
    violations = _violations(body)
    assert violations["flag"].startswith("type mismatch, parameter: flag")
    assert "inner.amount" in violations


async def test_unknown_query_parameter_is_rejected_by_name(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", "/v1/things/t?colour=red")
    assert status == 400
    assert _violations(body) == {"colour": "unknown field"}


async def test_query_parameter_given_twice_for_a_singular_field_is_rejected(
    harness: Harness,
) -> None:
    status, body, _ = await harness.call("GET", "/v1/things/t?count=1&count=2")
    assert status == 400
    assert _violations(body) == {"count": "is given more than once"}


async def test_query_parameters_are_refused_on_a_body_star_route(harness: Harness) -> None:
    status, body, _ = await harness.call("POST", f"{API}/stop?config_id=c-1", json={})
    assert status == 400
    assert "config_id" in _violations(body)
    assert harness.recorder.calls == []


async def test_unknown_body_field_is_400_naming_its_json_path(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "POST",
        f"{API}/start",
        json={"source_exchange_id": "e", "risk_limits": {"max_loss": 0.1}},
    )
    assert status == 400
    assert _violations(body) == {"risk_limits.max_loss": "unknown field"}
    assert harness.recorder.calls == []


async def test_wrong_json_type_in_body_is_400_naming_the_field(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "POST",
        f"{API}/start",
        json={"target_exchange_ids": ["a", 5], "sync_settings": {"sync_interval": "often"}},
    )
    assert status == 400
    violations = _violations(body)
    assert set(violations) == {"target_exchange_ids[1]", "sync_settings.sync_interval"}


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"a": NaN}',
        b"\xff\xfe",
        b'{"config_id": "a", "config_id": "b"}',
    ],
)
async def test_malformed_json_is_400(harness: Harness, raw: bytes) -> None:
    status, body, _ = await harness.call(
        "POST",
        f"{API}/stop",
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert body["code"] == 3 and _reason(body) == "MALFORMED_JSON"
    assert harness.recorder.calls == []


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"config"', b"42", b"null"])
async def test_body_that_is_not_a_json_object_is_400(harness: Harness, raw: bytes) -> None:
    status, body, _ = await harness.call("POST", f"{API}/stop", data=raw)
    assert status == 400
    assert "JSON object" in body["message"]


async def test_empty_body_on_a_body_route_is_an_empty_message(harness: Harness) -> None:
    # The gateway sends what was given; the engine refuses an empty kill switch itself.
    status, _, _ = await harness.call("POST", f"{API}/kill-switch", data=b"")
    assert status == 200
    request = harness.recorder.last("KillSwitch").request
    assert (request.config_id, request.all) == ("", False)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/kill-switch", {"config_id": None}, "config_id"),
        ("/kill-switch", {"all": None}, "all"),
        ("/stop", {"config_id": None, "keep_open_orders": True}, "config_id"),
        ("/start", {"target_exchange_ids": None}, "target_exchange_ids"),
        ("/start", {"copy_settings": {"sizing_mode": None}}, "copy_settings.sizing_mode"),
    ],
)
async def test_null_for_a_field_without_presence_is_400_naming_it_and_not_sent(
    harness: Harness,
    path: str,
    body: dict,
    field: str,
) -> None:
    # Null would silently become "" (or 0, false, []): for the kill switch, an empty
    # config_id once meant "halt everything". It is refused instead.
    status, reply, _ = await harness.call("POST", f"{API}{path}", json=body)
    assert status == 400
    assert reply["code"] == 3
    assert list(_violations(reply)) == [field]
    assert harness.recorder.calls == []


async def test_null_for_a_field_with_presence_leaves_it_unset(harness: Harness) -> None:
    status, _, _ = await harness.call(
        "POST",
        f"{API}/start",
        json={
            "source_backtest_id": "b",
            "risk_limits": None,
            "copy_settings": {"copy_all_trades": None, "multiplier": None},
        },
    )
    assert status == 200
    request = harness.recorder.last("StartCopy").request
    assert not request.HasField("risk_limits")
    assert not request.copy_settings.HasField("copy_all_trades")
    assert not request.copy_settings.HasField("multiplier")


async def test_kill_switch_all_reaches_the_engine(harness: Harness) -> None:
    status, _, _ = await harness.call("POST", f"{API}/kill-switch", json={"all": True})
    assert status == 200
    request = harness.recorder.last("KillSwitch").request
    assert (request.config_id, request.all) == ("", True)


async def test_same_field_under_proto_and_json_name_is_rejected(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "POST",
        f"{API}/stop",
        json={"config_id": "a", "configId": "b"},
    )
    assert status == 400
    assert "configId" in _violations(body)


async def test_body_larger_than_the_limit_is_413(make_harness) -> None:
    harness = await make_harness(max_body_bytes=2048)
    status, body, _ = await harness.call("POST", f"{API}/stop", json={"config_id": "x" * 4000})
    assert status == 413
    assert body["code"] == 3


async def test_path_value_is_set_last_and_wins_over_the_body(harness: Harness) -> None:
    status, _, _ = await harness.call(
        "POST",
        f"{API}/backtests/b-path/signals",
        json={"backtest_id": "b-body", "signals": []},
    )
    assert status == 200
    assert harness.recorder.last("PublishSignals").request.backtest_id == "b-path"


async def test_enums_are_names_and_times_rfc3339_and_int64_strings_on_output(
    harness: Harness,
) -> None:
    status, body, _ = await harness.call("GET", f"{API}/status/c-9")
    assert status == 200, body
    assert harness.recorder.last("GetCopyStatus").request.config_id == "c-9"
    assert body["config"]["status"] == "COPY_STATUS_ACTIVE"
    assert body["last_sync_time"] == "2026-01-02T03:04:05.600Z"
    assert body["counters"]["filled"] == "1"
    order = body["recent_orders"][0]
    assert order["side"] == "ORDER_SIDE_BUY" and order["state"] == "INTENT_STATE_FILLED"
    assert body["config"]["status_reason"] == ""  # fields without presence are always printed


async def test_percent_encoded_path_value_is_decoded_once(harness: Harness) -> None:
    status, _, _ = await harness.call("GET", "/v1/things/a%2Fb%3Ac%25d")
    assert status == 200
    assert harness.recorder.last("GetThing").request.name == "a/b:c%d"


async def test_path_value_that_is_not_utf8_is_400(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", "/v1/things/%FF")
    assert status == 400
    assert _reason(body) == "MALFORMED_PATH"
