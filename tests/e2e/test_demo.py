"""``copytrade demo``, run as a newcomer runs it: a fresh mesh, the scripted copy, the proof."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_the_demo_copies_across_venues_shows_skips_latency_and_a_proportional_close(
    tmp_path: pathlib.Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshctl", "demo", "--data-dir", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "DEMO OK" in out
    # The leader's trades beside the copies on the three venues.
    for follower in ("follower-binance", "follower-coinbase", "follower-kraken"):
        assert follower in out
    # A copy under the venue minimum is skipped with its reason, not sent.
    assert re.search(r"follower-tiny\s+.*below_min_notional", out), out
    # The partial close: each follower sold the leader's fraction of its own position.
    assert "partial close: the leader sold 40% of its BTC position" in out
    latency = re.search(r"fill-to-copy latency: median ([0-9.]+) ms", out)
    assert latency is not None and float(latency.group(1)) > 0
    # The reconciliation proves every item.
    counts = dict(re.findall(r"(\w+)=(\d+)", out.split("reconciliation:")[1].splitlines()[0]))
    assert int(counts["total"]) > 0 and counts["matched"] == counts["total"]
    assert counts["missing"] == counts["duplicate"] == "0"
    # Order mirroring: a leader's resting limit is mirrored as one, and its cancel cancels it.
    assert re.search(r"follower-binance\s+limit buy 0.001 BTC/USDT at \d+: accepted", out), out
    assert re.search(r"follower-binance\s+the copy is canceled: leader_order_cancelled", out), out
    # The correlation limit on the emulators' seeded history: BNB is copied, ETH (with BTC) not.
    assert re.search(r"follower-correlation\s+buy .*BNB/USDT\s+filled", out), out
    assert re.search(r"follower-correlation\s+buy .*ETH/USDT\s+skipped\s+correlation_limit", out), (
        out
    )
    # Protection between trades: BTC falls with no leader trade; the copied BTC is sold.
    assert "status REDUCING: max_daily_loss: account" in out, out
    assert re.search(r"follower-binance\s+sell .*BTC/USDT\s+filled\s+daily_loss_close_all", out), (
        out
    )
    # One futures copy (Binance USDⓈ-M): the entry is cut to max_leverage 2, the leader's half
    # close is copied reduce-only; the status shows the position the venue records, at 2x, and
    # its reconciliation matches.
    assert re.search(r"follower-futures\s+copied buy [0-9.]+ \(max_leverage\)", out), out
    assert re.search(r"follower-futures\s+copied sell [0-9.]+ reduce-only", out), out
    status = re.search(r"follower-futures\s+status: long ([0-9.]+) BTC entry", out)
    venue = re.search(r"follower-futures\s+the venue's record: ([0-9.]+) at 2x", out)
    assert status and venue and status.group(1) == venue.group(1), out
    assert re.search(r"follower-futures\s+reconciliation: matched venue long", out), out
    # Nothing secret is printed.
    assert "api_secret" not in out and "BEGIN EC PRIVATE KEY" not in out
