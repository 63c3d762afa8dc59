"""The dashboard's live feed: tickets (never the API token in a URL) and the event stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse

from gateway.events import EVENTS_PATH, TICKET_PATH
from gateway.server import GATEWAY_KEY
from meshkit.errors import Unauthenticated
from meshkit.identity import ASSERTION_HEADER, AUDIENCE, AssertionVerifier
from meshkit.testing import eventually
from tests.gateway.conftest import Harness

DEADLINE = 15.0


async def _ticket(harness: Harness, token: str = "pro") -> str:
    status, body, _ = await harness.call("POST", TICKET_PATH, token=token)
    assert status == 200, body
    assert body["expires_in"] == 30
    return body["ticket"]


async def _next_event(response: ClientResponse, name: str) -> Any:
    """Read the stream until an event called ``name`` arrives; return its data."""

    async def read() -> Any:
        event = ""
        while True:
            line = (await response.content.readline()).decode()
            if not line:
                raise AssertionError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == name:
                return json.loads(line[len("data: ") :])

    return await asyncio.wait_for(read(), DEADLINE)


async def test_a_ticket_opens_a_stream_that_pushes_the_users_configurations(harness: Harness):
    ticket = await _ticket(harness)
    async with harness.client.get(EVENTS_PATH, params={"ticket": ticket}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        configs = await _next_event(response, "configs")
        assert [c["config_id"] for c in configs] == ["c-1"]
        assert configs[0]["status"] == "COPY_STATUS_ACTIVE"
        status = await _next_event(response, "status")
        assert status["config"]["config_id"] == "c-1"
        assert status["counters"]["filled"] == "1"
        assert "recent_orders" not in status
    # The backends were called as the ticket's user, with a signed assertion.
    (assertion,) = harness.recorder.last("ListConfigs").header(ASSERTION_HEADER)
    claims = jwt.decode(assertion, options={"verify_signature": False}, audience=AUDIENCE)
    assert claims["sub"] == harness.pro_user_id


async def test_a_ticket_is_spent_by_its_first_use(harness: Harness):
    ticket = await _ticket(harness)
    async with harness.client.get(EVENTS_PATH, params={"ticket": ticket}) as first:
        assert first.status == 200
        status, body, _ = await harness.call("GET", f"{EVENTS_PATH}?ticket={ticket}", token=None)
        assert status == 401
        assert body["details"][0]["reason"] == "TICKET_SPENT"


async def test_the_stream_refuses_a_missing_forged_or_foreign_ticket(harness: Harness):
    status, body, _ = await harness.call("GET", EVENTS_PATH, token=None)
    assert (status, body["details"][0]["reason"]) == (401, "TICKET_MISSING")
    status, body, _ = await harness.call("GET", f"{EVENTS_PATH}?ticket=abc.def.ghi", token=None)
    assert (status, body["details"][0]["reason"]) == (401, "TICKET_INVALID")
    # The API token itself is no ticket.
    status, body, _ = await harness.call(
        "GET", f"{EVENTS_PATH}?ticket={harness.pro_token}", token=None
    )
    assert (status, body["details"][0]["reason"]) == (401, "TICKET_INVALID")


async def test_a_ticket_needs_a_valid_token_and_the_pro_plan(harness: Harness):
    status, body, headers = await harness.call("POST", TICKET_PATH, token=None)
    assert status == 401
    assert "WWW-Authenticate" in headers
    status, body, _ = await harness.call("POST", TICKET_PATH, token="Bearer ct_nobody")
    assert status == 401
    status, body, _ = await harness.call("POST", TICKET_PATH, token="free")
    assert (status, body["details"][0]["reason"]) == (403, "PLAN_REQUIRED")


async def test_a_user_has_a_bounded_number_of_streams_and_a_closed_one_frees_its_place(
    harness: Harness,
):
    opened = []
    try:
        for _ in range(3):
            response = await harness.client.get(
                EVENTS_PATH, params={"ticket": await _ticket(harness)}
            )
            assert response.status == 200
            await _next_event(response, "configs")
            opened.append(response)
        status, body, headers = await harness.call(
            "GET", f"{EVENTS_PATH}?ticket={await _ticket(harness)}", token=None
        )
        assert (status, body["details"][0]["reason"]) == (429, "TOO_MANY_STREAMS")
        assert headers["Retry-After"] == "5"
        opened.pop().close()  # the browser goes away

        async def place_freed() -> bool:
            response = await harness.client.get(
                EVENTS_PATH, params={"ticket": await _ticket(harness)}
            )
            if response.status != 200:
                response.close()
                return False
            opened.append(response)
            return True

        await eventually(place_freed, timeout=DEADLINE)
    finally:
        for response in opened:
            response.close()


async def test_a_ticket_and_a_mesh_assertion_are_not_interchangeable(harness: Harness):
    signer = harness.client.app[GATEWAY_KEY].signer
    # A user assertion (what services accept) opens no stream...
    assertion = signer.sign(harness.pro_user_id, "pro")
    status, body, _ = await harness.call("GET", f"{EVENTS_PATH}?ticket={assertion}", token=None)
    assert (status, body["details"][0]["reason"]) == (401, "TICKET_INVALID")
    # ...and no service takes a ticket for a user assertion.
    with pytest.raises(Unauthenticated):
        AssertionVerifier(signer.public_key()).verify(await _ticket(harness))
