"""The operator's commands of ``copytrade``: ``status``, ``version``, ``migrate``, ``config check``.

Their parsers and dispatch live here so that ``meshctl/__main__.py`` names them in two lines.
What each does: docs/operator-cli.md.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from meshctl.config_check import COMPONENTS
from meshctl.launcher import Ports

WithDataDir = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def _with_addresses(parser: argparse.ArgumentParser, port_base: Callable[[str], int]) -> None:
    parser.add_argument(
        "--port-base",
        type=port_base,
        default=None,
        metavar="N",
        help="the mesh was started with copytrade up --port-base N (default: its default ports);"
        " GATEWAY_URL and BROKER/ENGINE/SYNC/RECON_SVC_ADDR, when set, win",
    )
    parser.add_argument(
        "--gateway-url",
        default=None,
        metavar="URL",
        help="the REST gateway's base URL (default $GATEWAY_URL, else http://127.0.0.1:<port>)",
    )


def add_operator_commands(
    sub: Any, with_data_dir: WithDataDir, port_base: Callable[[str], int]
) -> None:
    """Add the parsers of ``status``, ``version``, ``migrate`` and ``config check`` to ``sub``."""
    status = with_data_dir(
        sub.add_parser(
            "status",
            help="each component's health, version and address; copy configurations per"
            " status; which replica holds which lease (exit 1 when something is down)",
        )
    )
    _with_addresses(status, port_base)
    version = with_data_dir(
        sub.add_parser("version", help="this command's version and each running component's")
    )
    _with_addresses(version, port_base)
    with_data_dir(
        sub.add_parser(
            "migrate",
            help="apply every component's database migrations (SQLite files in the data dir,"
            " or --database-url); a second run changes nothing",
        )
    )
    config = sub.add_parser("config", help="the components' configuration (their environment)")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser(
        "check",
        help="check the environment each component would read; name every bad variable"
        " (exit 1 when any is bad; never prints a secret)",
    )
    check.add_argument(
        "--service",
        choices=COMPONENTS,
        action="append",
        default=None,
        help="check only this component (repeatable; default all)",
    )


def _ports(args: argparse.Namespace) -> Ports:
    return Ports.from_base(args.port_base) if args.port_base is not None else Ports()


def run_operator_command(args: argparse.Namespace) -> int:
    """Run one of the operator's commands; return its exit code."""
    if args.command == "status":
        from meshctl.status import status

        return asyncio.run(
            status(
                args.data_dir, args.database_url, ports=_ports(args), gateway_url=args.gateway_url
            )
        )
    if args.command == "version":
        from meshctl.status import versions

        return asyncio.run(
            versions(args.data_dir, ports=_ports(args), gateway_url=args.gateway_url)
        )
    if args.command == "migrate":
        from meshctl.migrate import migrate_all

        return asyncio.run(migrate_all(args.data_dir, args.database_url))
    if args.command == "config" and args.config_command == "check":
        from meshctl.config_check import check

        return check(args.service or COMPONENTS)
    return 2
