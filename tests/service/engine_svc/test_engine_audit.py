"""The engine's audit trail: every change of a configuration's state is an entry of its chain,
with the actor, the request id, the object and the state before and after; ListAuditEntries
returns only the caller's."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from engine_fakes import OTHER_USER, USER, dec
from engine_harness import Harness
from google.protobuf import field_mask_pb2

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain.model import CopyStatus
from meshkit.audit import AuditEntry, verify_table
from meshkit.testing import eventually


async def _start(harness: Harness, user: str = USER, **kwargs: Any) -> tuple[str, str]:
    target = harness.world.broker.add_account(user)
    source = harness.world.sync.add_backtest(user)
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=source,
            target_exchange_ids=[target.exchange_id],
            **kwargs,
        ),
        user=user,
    )
    return reply.config_id, source


async def _entries(harness: Harness) -> list[AuditEntry]:
    return await harness.store.audit.all_entries()


def _status(text: str) -> str:
    return json.loads(text)["status"]


async def test_start_pause_resume_update_stop_are_recorded_by_the_user(harness: Harness) -> None:
    config_id, source = await _start(harness)
    await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=config_id))
    await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=config_id))  # no change
    await harness.call("ResumeCopy", pb.ResumeCopyRequest(config_id=config_id))
    await harness.call(
        "UpdateConfig",
        pb.UpdateConfigRequest(
            config_id=config_id,
            risk_limits={"max_slippage": dec("0.02")},
            update_mask=field_mask_pb2.FieldMask(paths=["risk_limits.max_slippage"]),
        ),
    )
    await harness.call("StopCopy", pb.StopCopyRequest(config_id=config_id))

    entries = await _entries(harness)
    assert [e.action for e in entries] == ["start", "pause", "resume", "update", "stop"]
    assert {(e.actor, e.owner_user_id, e.object_type, e.object_id) for e in entries} == {
        (f"user:{USER}", USER, "copy_config", config_id),
    }
    assert all(e.request_id for e in entries)
    assert len({e.request_id for e in entries}) == 5
    start, pause, resume, update, stop = entries
    assert json.loads(start.before) is None
    after = json.loads(start.after)
    assert (after["status"], after["source_id"]) == ("ACTIVE", source)
    assert (_status(pause.before), _status(pause.after)) == ("ACTIVE", "PAUSED")
    assert (_status(resume.before), _status(resume.after)) == ("PAUSED", "ACTIVE")
    assert json.loads(update.before)["risk_limits"]["max_slippage"] != "0.02"
    assert json.loads(update.after)["risk_limits"]["max_slippage"] == "0.02"
    assert (_status(stop.before), _status(stop.after)) == ("ACTIVE", "STOPPED")
    assert (await verify_table(harness.store.database, "engine")).ok


async def test_the_kill_switch_records_each_config_it_halts(harness: Harness) -> None:
    first, _ = await _start(harness)
    second, _ = await _start(harness)
    await harness.call("KillSwitch", pb.KillSwitchRequest(all=True))
    kills = [e for e in await _entries(harness) if e.action == "kill_switch"]
    assert sorted(e.object_id for e in kills) == sorted([first, second])
    for entry in kills:
        assert entry.actor == f"user:{USER}"
        assert (_status(entry.before), _status(entry.after)) == ("ACTIVE", "HALTED")


async def test_a_halt_after_a_failed_start_up_reconciliation_is_recorded_as_the_engine(
    harness: Harness,
) -> None:
    config_id, _ = await _start(harness)
    assert harness.engine is not None
    halted = await harness.engine.configs.halt_unreconciled({config_id: "order x: venue down"})
    assert halted == [config_id]
    entry = (await _entries(harness))[-1]
    assert (entry.action, entry.actor, entry.owner_user_id) == ("halt", "service:engine", USER)
    assert _status(entry.after) == "HALTED"
    assert "venue down" in json.loads(entry.after)["status_reason"]


async def test_a_daily_loss_breach_is_recorded_as_an_automatic_correction(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account(equity=Decimal("10000"))
    source = harness.world.sync.add_backtest()
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(
            source_backtest_id=source,
            target_exchange_ids=[target.exchange_id],
            risk_limits=pb.RiskLimits(max_daily_loss={"value": "0.05"}),
        ),
    )
    harness.world.sync.publish(source)

    async def intents(count: int) -> bool:
        return len(await harness.store.list_intents(reply.config_id, None, None, 10)) >= count

    await eventually(lambda: intents(1))
    target.equity = Decimal("9400")
    harness.world.sync.publish(source)
    await eventually(lambda: intents(2))
    config = await harness.store.get_config(reply.config_id)
    assert config is not None and config.status is CopyStatus.REDUCING
    entry = (await _entries(harness))[-1]
    assert (entry.action, entry.actor, entry.object_id) == (
        "risk.daily_loss_action",
        "service:engine",
        config.config_id,
    )
    assert (_status(entry.before), _status(entry.after)) == ("ACTIVE", "REDUCING")
    assert (await verify_table(harness.store.database, "engine")).ok


async def test_list_audit_entries_returns_only_the_callers_newest_first(harness: Harness) -> None:
    mine, _ = await _start(harness)
    theirs, _ = await _start(harness, user=OTHER_USER)
    await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=theirs), user=OTHER_USER)
    await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=mine))

    reply = await harness.call("ListAuditEntries", pb.ListAuditEntriesRequest(page_size=1))
    assert [(e.action, e.object_id) for e in reply.entries] == [("pause", mine)]
    assert reply.entries[0].time.seconds > 0
    more = await harness.call(
        "ListAuditEntries",
        pb.ListAuditEntriesRequest(before_seq=reply.entries[0].seq),
    )
    assert [(e.action, e.object_id) for e in more.entries] == [("start", mine)]
    assert {e.owner_user_id for e in [*reply.entries, *more.entries]} == {USER}
