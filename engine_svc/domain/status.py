"""Status changes of a copy configuration (pure): pause, resume, stop and the kill switch."""

from __future__ import annotations

from dataclasses import dataclass

from engine_svc.domain.model import CopyStatus

PAUSED_BY_USER = "paused by user"
STOPPED_BY_USER = "stopped by user"
KILL_SWITCH = "kill switch"
RECONCILE_FAILED = "start-up reconciliation failed"
"""The start of the reason a configuration is halted with when the venue could not be asked."""
EXCHANGE_DELETED = "exchange_deleted"
"""The reason of a configuration paused because its user removed an account it uses."""


class StatusError(ValueError):
    """The configuration cannot make this change from its current status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class StatusChange:
    """The status (and reason) a configuration moves to; ``changed`` is false for a repeat."""

    status: CopyStatus
    reason: str
    changed: bool


def pause(current: CopyStatus, current_reason: str) -> StatusChange:
    """Return the status after a pause: active or reducing ones pause, a repeat is a no-op.

    Raises
    ------
    StatusError
        When the configuration is stopped, or halted (only a resume lifts a halt).
    """
    if current is CopyStatus.PAUSED:
        return StatusChange(current, current_reason, changed=False)
    if current is CopyStatus.STOPPED:
        raise StatusError("CONFIG_STOPPED", "a stopped configuration cannot be paused")
    if current is CopyStatus.HALTED:
        raise StatusError(
            "CONFIG_HALTED", "a halted configuration cannot be paused; resume it first"
        )
    return StatusChange(CopyStatus.PAUSED, PAUSED_BY_USER, changed=True)


def pause_for(current: CopyStatus, current_reason: str, *, reason: str) -> StatusChange:
    """Return the status after a pause the system makes for ``reason`` (not the user's).

    Any configuration not stopped is paused with ``reason``: a halted one too (nothing goes
    out of either, and only its user's resume lifts either); a repeat is a no-op.
    """
    if current is CopyStatus.STOPPED or (current is CopyStatus.PAUSED and current_reason == reason):
        return StatusChange(current, current_reason, changed=False)
    return StatusChange(CopyStatus.PAUSED, reason, changed=True)


def stop_for(current: CopyStatus, current_reason: str, *, reason: str) -> StatusChange:
    """Return the status after a stop the system makes for ``reason``; a repeat is a no-op."""
    if current is CopyStatus.STOPPED:
        return StatusChange(current, current_reason, changed=False)
    return StatusChange(CopyStatus.STOPPED, reason, changed=True)


def resume(current: CopyStatus, current_reason: str) -> StatusChange:
    """Return the status after a resume: paused, halted or reducing become active again.

    Raises
    ------
    StatusError
        When the configuration is stopped.
    """
    if current is CopyStatus.ACTIVE:
        return StatusChange(current, current_reason, changed=False)
    if current is CopyStatus.STOPPED:
        raise StatusError("CONFIG_STOPPED", "a stopped configuration cannot be resumed")
    return StatusChange(CopyStatus.ACTIVE, "", changed=True)


def stop(current: CopyStatus, current_reason: str) -> StatusChange:
    """Return the status after a stop: always stopped, a repeat is a no-op."""
    if current is CopyStatus.STOPPED:
        return StatusChange(current, current_reason, changed=False)
    return StatusChange(CopyStatus.STOPPED, STOPPED_BY_USER, changed=True)


def halt(current: CopyStatus, current_reason: str, *, reason: str = KILL_SWITCH) -> StatusChange:
    """Return the status after a halt: halted, except that a stopped one stays stopped.

    ``reason`` says why: the kill switch by default, or a failed start-up reconciliation. A
    configuration halted already keeps its first reason.
    """
    if current in (CopyStatus.HALTED, CopyStatus.STOPPED):
        return StatusChange(current, current_reason, changed=False)
    return StatusChange(CopyStatus.HALTED, reason, changed=True)
