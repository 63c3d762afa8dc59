"""``copytrade``: run the mesh locally (``up``), the scripted demo (``demo``), manage users."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import random
import signal
import sys
from decimal import Decimal
from typing import Any

import aiohttp

from meshctl.api import RestClient, SimAdmin
from meshctl.launcher import Mesh, Ports

DATA_DIR_ENV = "COPYTRADE_DATA_DIR"


def _port_base(text: str) -> int:
    try:
        Ports.from_base(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="copytrade", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    default_data_dir = os.environ.get(DATA_DIR_ENV, "").strip() or ".copytrade"

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--data-dir",
            default=default_data_dir,
            type=pathlib.Path,
            help=f"where databases, keys and logs live (default ${DATA_DIR_ENV},"
            f" else .copytrade; now {default_data_dir})",
        )
        p.add_argument(
            "--database-url",
            default=None,
            help="one PostgreSQL URL for every service instead of SQLite files",
        )
        return p

    up = with_data_dir(sub.add_parser("up", help="run the whole mesh on this machine"))
    up.add_argument(
        "--demo",
        action="store_true",
        help="also seed a demo user, a leader and followers, and keep the leader trading",
    )
    up.add_argument(
        "--venues",
        choices=["sim", "live"],
        default="sim",
        help="sim: start the exchange emulators (default); live: the real exchanges",
    )
    up.add_argument("--log-level", default="INFO")
    up.add_argument(
        "--sim-rate-limits", action="store_true", help="enforce venue rate limits in the emulators"
    )
    up.add_argument(
        "--tls",
        action="store_true",
        help="serve the REST gateway over HTTPS with its certificate from the mesh CA",
    )
    up.add_argument(
        "--port-base",
        type=_port_base,
        default=None,
        metavar="N",
        help="gateway on N, broker/engine/sync/recon gRPC on N+1..N+4, emulators"
        " (binance, coinbase, kraken) on N+5..N+7, metrics on N+10..N+13;"
        " default 8080, 50051-50054, 9101-9103, 9091-9094",
    )

    certs = with_data_dir(
        sub.add_parser(
            "certs", help="make the mesh's CA, one certificate per component and the assertion keys"
        )
    )
    certs.add_argument(
        "--force",
        action="store_true",
        help="make a new CA and re-issue everything (restart the mesh afterwards)",
    )

    with_data_dir(
        sub.add_parser("demo", help="a scripted copy on a fresh mesh, then reconciliation")
    )

    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = with_data_dir(user_sub.add_parser("add", help="create a user and print its API token"))
    add.add_argument("name")
    add.add_argument("--plan", choices=["pro", "free"], default="pro")
    add.add_argument(
        "--expires-in",
        default=None,
        metavar="LIFETIME",
        help="the token expires after this long (90m, 12h, 30d, 8w); default never",
    )
    with_data_dir(
        user_sub.add_parser(
            "list", help="list users: name, id, plan, created, whether their tokens are live"
        )
    )
    revoke = with_data_dir(
        user_sub.add_parser(
            "revoke", help="revoke every API token of a user (the gateway then answers 401)"
        )
    )
    revoke.add_argument("name", help="the user's name (or its id when several share the name)")

    keys = sub.add_parser("keys", help="the key that encrypts exchange credentials at rest")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = with_data_dir(
        keys_sub.add_parser(
            "rotate",
            help="make a new key and re-encrypt every stored credential now"
            " (a second run finishes an interrupted one)",
        )
    )
    rotate.add_argument(
        "--finish", action="store_true", help="drop the previous keys once no credential needs them"
    )

    audit = sub.add_parser("audit", help="the services' hash-chained audit trails")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    with_data_dir(
        audit_sub.add_parser(
            "verify", help="check every chain; name the first edited, deleted or inserted entry"
        )
    )
    from meshctl.cli_ops import add_operator_commands

    add_operator_commands(sub, with_data_dir, _port_base)
    return parser


def _warn_when_no_mesh(data_dir: pathlib.Path, database_url: str | None) -> None:
    """Warn (stderr) when ``data_dir`` holds no mesh: a user made there reaches no gateway."""
    from meshctl.launcher import certs_dir

    missing = []
    if database_url is None and not (data_dir / "gateway.db").exists():
        missing.append("no gateway.db")
    if not (certs_dir(data_dir) / "ca.crt").exists():
        missing.append("no certs/ca.crt")
    if missing:
        print(
            f"copytrade user add: warning: {data_dir.resolve()} holds no mesh"
            f" ({', '.join(missing)}); the token works only with a mesh started on this data"
            f" dir (copytrade up --data-dir {data_dir}, or set {DATA_DIR_ENV})",
            file=sys.stderr,
        )


async def _add_user(
    data_dir: pathlib.Path,
    database_url: str | None,
    name: str,
    plan: str,
    expires_in: str | None = None,
) -> str:
    from gateway.users import add_user, open_store, parse_duration

    _warn_when_no_mesh(data_dir, database_url)
    lifetime = parse_duration(expires_in) if expires_in else None
    url = database_url or f"sqlite:///{data_dir.resolve()}/gateway.db"  # noqa: ASYNC240 - once, at start-up
    database = await open_store(url)
    try:
        user_id, token = await add_user(database, name, plan, expires_in=lifetime)
    finally:
        await database.close()
    print(f"user {name} ({plan}) id {user_id}")
    if lifetime is not None:
        print(f"the token expires in {expires_in}")
    print(f"token: {token}")
    return token


async def _seed_demo(mesh: Mesh, stop: asyncio.Event) -> None:
    """Seed a demo user, leader and followers, then keep the leader trading until stopped."""
    from meshctl.demo import (
        COPY_SETTINGS,
        FOLLOWERS,
        LEADER_BALANCES,
        create_user,
        leader_client,
        register,
    )

    token = await create_user(mesh, "demo")
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=mesh.ssl_context())
    ) as session:
        api = RestClient(session, mesh.gateway_url, token)
        sims = {venue: SimAdmin(session, url) for venue, url in mesh.venue_urls.items()}
        leader_keys = await sims["binance"].create_account(
            LEADER_BALANCES, can_trade=True, can_withdraw=False
        )
        leader = await api.call(
            "POST",
            "/exchanges",
            {
                "exchange_name": "binance",
                "api_key": leader_keys["api_key"],
                "api_secret": leader_keys["api_secret"],
                "label": "demo leader",
            },
        )
        targets = [
            (await register(api, sims[f.venue], f.venue, f.label, f.balances))[0] for f in FOLLOWERS
        ]
        config = await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader["exchange"]["exchange_id"],
                "target_exchange_ids": targets,
                "copy_settings": COPY_SETTINGS,
                "sync_settings": {"sync_interval": 1},
            },
        )
        print(f"demo user token: {token}")
        print(f"demo copy config: {config['config_id']} — watch it at {mesh.gateway_url}/dashboard")
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        rng = random.Random()
        try:
            while not stop.is_set():
                side = rng.choice(["buy", "buy", "sell"])
                try:
                    await exchange.create_order(
                        "BTC/USDT", "market", side, rng.choice([0.01, 0.02, 0.05])
                    )
                except Exception as e:
                    print(f"demo leader trade skipped: {type(e).__name__}")
                price = Decimal(50000) + Decimal(rng.randint(-500, 500))
                await sims["binance"].set_price("BTC/USDT", str(price))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=5)
        finally:
            await exchange.close()


async def _up(args: argparse.Namespace) -> int:
    from meshctl.supervisor import Supervisor

    ports = Ports.from_base(args.port_base) if args.port_base is not None else Ports()
    mesh = Mesh(
        args.data_dir,
        ports=ports,
        venues=args.venues,
        shared_database_url=args.database_url,
        log_level=args.log_level,
        sim_rate_limits=args.sim_rate_limits,
        https=args.tls,
    )
    taken = mesh.taken_ports()
    if taken:
        # Another mesh on these ports would answer our readiness checks: refuse before starting.
        for port, what, holder in taken:
            print(f"copytrade up: port {port} ({what}) is in use by {holder}", file=sys.stderr)
        print(
            "copytrade up: refusing to start; stop what holds the ports, or choose others"
            " with --port-base N",
            file=sys.stderr,
        )
        return 1
    made = mesh.ensure_credentials()
    if made:
        print(f"made mesh credentials in {args.data_dir / 'certs'}: {', '.join(made)}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    mesh.start()
    try:
        try:
            await mesh.wait_ready()
        except (RuntimeError, TimeoutError) as e:
            # A component that cannot start says why in the last line of its log (shown here).
            print(f"copytrade up: the mesh did not start: {e}", file=sys.stderr)
            return 1
        print("copytrade mesh is up:")
        for what, where in mesh.addresses():
            print(f"  {what:<18} {where}")
        print(f"create a user: copytrade user add NAME --data-dir {args.data_dir}")
        print(f"internal gRPC: mutual TLS only, credentials in {args.data_dir / 'certs'}")
        if mesh.https:
            print(f"REST: HTTPS with the mesh CA's certificate (curl --cacert {mesh.ca_file})")
        else:
            print("REST: plain HTTP on loopback only (copytrade up --tls serves HTTPS)")
        print("supervising: a component that exits is restarted (backoff 1s doubling to 30s)")
        tasks: list[Any] = [asyncio.create_task(Supervisor(mesh).run(stop))]
        if args.demo:
            tasks.append(asyncio.create_task(_seed_demo(mesh, stop)))
        await stop.wait()
        for task in tasks:
            task.cancel()
        return 0
    finally:
        print("stopping the mesh ...")
        mesh.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the ``copytrade`` command."""
    args = _parser().parse_args(argv)
    if args.command == "up":
        return asyncio.run(_up(args))
    if args.command == "certs":
        from meshctl.launcher import certs_dir
        from meshkit.pki import ensure_mesh_credentials

        directory = certs_dir(args.data_dir)
        made = ensure_mesh_credentials(directory, force=args.force)
        print(
            f"mesh credentials in {directory}: "
            + (f"made {', '.join(made)}" if made else "all present")
        )
        return 0
    if args.command == "demo":
        from meshctl.demo import main as demo_main

        return demo_main(args.data_dir / "demo", args.database_url)
    if args.command == "user" and args.user_command == "add":
        try:
            asyncio.run(
                _add_user(args.data_dir, args.database_url, args.name, args.plan, args.expires_in)
            )
        except ValueError as e:
            print(f"user add: {e}", file=sys.stderr)
            return 2
        return 0
    if args.command == "user" and args.user_command == "list":
        from meshctl.admin import list_users

        return asyncio.run(list_users(args.data_dir, args.database_url))
    if args.command == "user" and args.user_command == "revoke":
        from meshctl.admin import revoke_user

        return asyncio.run(revoke_user(args.data_dir, args.database_url, args.name))
    if args.command == "keys" and args.keys_command == "rotate":
        from meshctl.admin import rotate_keys

        return asyncio.run(rotate_keys(args.data_dir, args.database_url, finish=args.finish))
    if args.command == "audit" and args.audit_command == "verify":
        from meshctl.audit import verify

        return asyncio.run(verify(args.data_dir, args.database_url))
    if args.command in ("status", "version", "migrate", "config"):
        from meshctl.cli_ops import run_operator_command

        return run_operator_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
