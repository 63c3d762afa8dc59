"""Run the venue emulators: a registry of venues, ``start_venues`` for tests, and the CLI.

Adding a venue is one entry in ``VENUES`` (its default port, how to make its state, how to
build its app); ``python -m exchange_sim`` then serves it with a ``--<venue>-port`` flag and a
``SIM_<VENUE>_PORT`` variable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from aiohttp import web

from exchange_sim.binance import build_binance_app, new_binance_state
from exchange_sim.coinbase import build_coinbase_app, new_coinbase_state
from exchange_sim.core.state import VenueState
from exchange_sim.kraken import build_kraken_app, new_kraken_state
from meshkit import logs

log = logging.getLogger("exchange_sim")

DEFAULT_HISTORY_DAYS = 30
"""Days of synthetic price history ``python -m exchange_sim`` serves before its start."""


@dataclass(frozen=True)
class VenueSpec:
    """How to run one venue emulator."""

    name: str
    default_port: int
    new_state: Callable[..., VenueState]  # keyword arguments: rate_limits, history_days
    build_app: Callable[..., web.Application]  # takes the state new_state made


VENUES: dict[str, VenueSpec] = {
    "binance": VenueSpec("binance", 9101, new_binance_state, build_binance_app),
    "coinbase": VenueSpec("coinbase", 9102, new_coinbase_state, build_coinbase_app),
    "kraken": VenueSpec("kraken", 9103, new_kraken_state, build_kraken_app),
}


@dataclass
class SimCluster:
    """Running emulators: ``urls[venue]`` is ``http://host:port``, ``states[venue]`` its state."""

    urls: dict[str, str] = field(default_factory=dict)
    states: dict[str, VenueState] = field(default_factory=dict)
    _runners: list[web.AppRunner] = field(default_factory=list)

    async def close(self) -> None:
        """Stop every venue (closing open WebSockets)."""
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def __aenter__(self) -> SimCluster:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


async def start_venues(
    venues: Iterable[str] = ("binance",),
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    rate_limits: bool = False,
    history_days: int = 0,
) -> SimCluster:
    """Start the named venues on ``host`` and return them running.

    ``ports`` maps venue names to ports; a venue it leaves out (or maps to 0) gets a free port,
    and ``urls`` reports the real one. Rate limits are off by default (tests, local runs), and
    so is synthetic price history (``history_days`` before the start; the command line's
    default is :data:`DEFAULT_HISTORY_DAYS`).
    """
    cluster = SimCluster()
    try:
        for name in venues:
            spec = VENUES.get(name)
            if spec is None:
                raise ValueError(f"venues: unknown venue {name!r} (known: {', '.join(VENUES)})")
            state = spec.new_state(rate_limits=rate_limits, history_days=history_days)
            runner = web.AppRunner(spec.build_app(state), access_log=None)
            await runner.setup()
            cluster._runners.append(runner)
            await web.TCPSite(runner, host, (ports or {}).get(name, 0)).start()
            port = int(runner.addresses[0][1])  # the real port, also when 0 asked for any
            cluster.urls[name] = f"http://{host}:{port}"
            cluster.states[name] = state
    except BaseException:
        await cluster.close()
        raise
    return cluster


def _env_flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "on", "true", "yes"):
        return True
    if lowered in ("0", "off", "false", "no"):
        return False
    raise SystemExit(f"SIM_RATE_LIMITS: expected on or off, got {value!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One message for main() to log as JSON, instead of the usage text on stderr.
        raise SystemExit(f"{self.prog}: {message} (--help lists the flags)")


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> argparse.Namespace:
    """Flags win over environment variables, which win over defaults."""
    parser = _Parser(
        prog="python -m exchange_sim",
        description="Run local exchange emulators (Binance, Coinbase, Kraken).",
    )
    parser.add_argument(
        "--host",
        default=environ.get("SIM_HOST", "127.0.0.1"),
        help="address to bind (default 127.0.0.1; env SIM_HOST)",
    )
    parser.add_argument(
        "--venues",
        default=environ.get("SIM_VENUES", ",".join(VENUES)),
        help=f"comma-separated venues to run (default {','.join(VENUES)}; env SIM_VENUES)",
    )
    for spec in VENUES.values():
        var = f"SIM_{spec.name.upper()}_PORT"
        parser.add_argument(
            f"--{spec.name}-port",
            type=int,
            default=int(environ.get(var, spec.default_port)),
            help=f"{spec.name} port (default {spec.default_port}; env {var}; 0 = any free port)",
        )
    limits = parser.add_mutually_exclusive_group()
    default_limits = _env_flag(environ.get("SIM_RATE_LIMITS"), True)
    limits.add_argument(
        "--rate-limits",
        dest="rate_limits",
        action="store_true",
        default=default_limits,
        help="enforce the venues' rate limits (default; env SIM_RATE_LIMITS=on)",
    )
    limits.add_argument(
        "--no-rate-limits",
        dest="rate_limits",
        action="store_false",
        help="do not enforce rate limits (env SIM_RATE_LIMITS=off)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=int(environ.get("SIM_HISTORY_DAYS", DEFAULT_HISTORY_DAYS)),
        help=(
            f"days of synthetic, seeded price history before the start, for candles and return"
            f" correlations (default {DEFAULT_HISTORY_DAYS}; env SIM_HISTORY_DAYS; 0 = none)"
        ),
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the venues from parsed arguments and run until SIGINT / SIGTERM."""
    names = [v.strip() for v in args.venues.split(",") if v.strip()]
    ports = {name: getattr(args, f"{name}_port") for name in names if name in VENUES}
    cluster = await start_venues(
        names,
        host=args.host,
        ports=ports,
        rate_limits=args.rate_limits,
        history_days=max(args.history_days, 0),
    )
    for name, url in cluster.urls.items():
        log.info(
            "%s: %s (admin %s/_sim/, rate limits %s)",
            name,
            url,
            url,
            "on" if args.rate_limits else "off",
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await cluster.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m exchange_sim``: every line it writes is JSON on stdout.

    ``LOG_LEVEL`` (default ``INFO``) sets the level (docs/logging.md).
    """
    level = os.environ.get("LOG_LEVEL", "").strip().upper()
    logs.configure("exchange_sim", level if level in logging.getLevelNamesMapping() else "INFO")
    try:
        asyncio.run(serve(parse_args(argv)))
    except ValueError as exc:  # bad venue names and the like: say which, without a traceback
        log.error("exchange_sim: %s", exc)
        raise SystemExit(1) from None
    except SystemExit as exc:  # a bad flag or variable (parse_args)
        if not isinstance(exc.code, str):
            raise
        log.error("%s", exc.code)
        raise SystemExit(2) from None
