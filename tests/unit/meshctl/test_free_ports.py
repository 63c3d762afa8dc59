"""Free loopback ports for meshes: picked where no outgoing connection can take them first."""

from __future__ import annotations

import socket

import pytest

from meshctl import launcher
from meshctl.launcher import FREE_PORT_RANGE_ENV, free_port_range, free_ports


def test_ports_are_picked_below_the_kernels_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # A port the kernel hands out itself (port 0, or an outgoing connection's local port) comes
    # from the ephemeral range: one picked there can be taken before the service binds it.
    monkeypatch.delenv(FREE_PORT_RANGE_ENV, raising=False)
    ephemeral = tmp_path / "ip_local_port_range"
    ephemeral.write_text("32768\t60999\n")
    monkeypatch.setattr(launcher, "_EPHEMERAL_RANGE", ephemeral)
    assert free_port_range() == range(10000, 32768)
    picked = free_ports(9)
    assert len(set(picked)) == 9
    assert all(10000 <= port < 32768 for port in picked), picked


def test_the_configured_range_is_used_and_excluded_or_busy_ports_are_not_picked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        low = max(1024, port - 100)
        monkeypatch.setenv(FREE_PORT_RANGE_ENV, f"{low}-{low + 199}")
        excluded = {low, low + 1}
        picked = free_ports(15, exclude=excluded)
        assert len(set(picked)) == 15
        assert all(low <= p <= low + 199 for p in picked)
        assert port not in picked and not excluded & set(picked)


def test_a_range_too_narrow_falls_back_to_the_kernels_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FREE_PORT_RANGE_ENV, "20000-20005")
    picked = free_ports(3)
    assert len(set(picked)) == 3
