"""The gateway's tables: ``users`` and ``api_tokens`` (tokens stored only as SHA-256 hashes).

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`; times are
fixed-width ISO text from :func:`meshkit.codec.to_iso`.
"""

from __future__ import annotations

import pathlib
import uuid
from datetime import datetime

from gateway import model
from gateway.model import TokenStatus, User, UserSummary
from gateway.store.tokens import hash_token, new_token, token_id
from meshkit import db
from meshkit.audit import AuditEntry, AuditEvent, AuditLog
from meshkit.codec import to_iso, utcnow

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
SERVICE = "gateway"
AUDIT_TABLE = "gateway_audit_log"


class GatewayStore:
    """Users and API tokens over a :class:`meshkit.db.Database`."""

    def __init__(self, database: db.Database) -> None:
        self.database = database
        self.audit = AuditLog(database, AUDIT_TABLE, default_actor="service:gateway")

    async def migrate(self) -> list[int]:
        """Apply the gateway's schema files not applied yet."""
        return await db.migrate(self.database, SERVICE, SCHEMA_DIR)

    async def create_user(
        self,
        name: str,
        plan: str,
        expires_at: datetime | None = None,
        now: datetime | None = None,
        *,
        actor: str = "",
    ) -> tuple[User, str]:
        """Insert a user and its first token in one transaction; return both (token in clear).

        The token expires at ``expires_at`` when given, never otherwise. The audit entry
        (by ``actor``) is written in the same transaction.
        """
        now = now or utcnow()
        user = User(str(uuid.uuid4()), name, plan, to_iso(now))
        token = new_token()
        async with self.database.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (user_id, name, plan, created_at) VALUES (?, ?, ?, ?)",
                (user.user_id, user.name, user.plan, user.created_at),
            )
            await tx.execute(
                "INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (
                    hash_token(token),
                    user.user_id,
                    user.created_at,
                    to_iso(expires_at) if expires_at else None,
                ),
            )
            after = {
                "user_id": user.user_id,
                "name": user.name,
                "plan": user.plan,
                "expires_at": to_iso(expires_at) if expires_at else None,
            }
            await self.audit.append(
                tx,
                AuditEvent(user.user_id, "user", user.user_id, "add", None, after),
                now,
                actor=actor,
            )
        return user, token

    async def issue_token(self, user_id: str, expires_at: datetime | None = None) -> str:
        """Give an existing user one more token; return it in clear (it is not kept)."""
        token = new_token()
        await self.database.execute(
            "INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (
                hash_token(token),
                user_id,
                to_iso(utcnow()),
                to_iso(expires_at) if expires_at else None,
            ),
        )
        return token

    async def revoke_token(self, token: str, *, actor: str = "") -> bool:
        """Revoke a token; return whether a live token was revoked now.

        The audit entry (by ``actor``) names the token by a prefix of its hash, never the token.
        """
        now = utcnow()
        token_hash = hash_token(token)
        async with self.database.transaction() as tx:
            row = await tx.fetchone(
                "SELECT user_id FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                (token_hash,),
            )
            changed = await tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                (to_iso(now), token_hash),
            )
            if changed > 0 and row is not None:
                event = AuditEvent(
                    row["user_id"],
                    "api_token",
                    token_id(token),
                    "revoke",
                    {"revoked": False},
                    {"revoked": True},
                )
                await self.audit.append(tx, event, now, actor=actor)
        return changed > 0

    async def revoke_user_tokens(self, user_id: str, *, actor: str = "") -> int:
        """Revoke every live token of a user at once; return how many were revoked now.

        When any was, the audit entry (by ``actor``) is written in the same transaction.
        """
        now = utcnow()
        async with self.database.transaction() as tx:
            revoked = await tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (to_iso(now), user_id),
            )
            if revoked > 0:
                event = AuditEvent(
                    user_id,
                    "user",
                    user_id,
                    "revoke",
                    {"live_tokens": revoked},
                    {"live_tokens": 0},
                )
                await self.audit.append(tx, event, now, actor=actor)
        return revoked

    async def list_audit_entries(
        self,
        owner_user_id: str,
        before_seq: int,
        limit: int,
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s audit entries below ``before_seq`` (0: all), newest first."""
        return await self.audit.entries_of(owner_user_id, before_seq=before_seq, limit=limit)

    async def token_status(
        self,
        token: str,
        now: datetime | None = None,
    ) -> tuple[TokenStatus, User | None]:
        """Return what a token is worth, and its user when it is live.

        A token that is not ASCII (header bytes that are not UTF-8 arrive as surrogates)
        was never issued: unknown, without a query.
        """
        if not token.isascii():
            return TokenStatus.UNKNOWN, None
        row = await self.database.fetchone(
            "SELECT u.user_id AS user_id, u.name AS name, u.plan AS plan,"
            " u.created_at AS created_at, t.revoked_at AS revoked_at, t.expires_at AS expires_at"
            " FROM api_tokens t JOIN users u ON u.user_id = t.user_id"
            " WHERE t.token_hash = ?",
            (hash_token(token),),
        )
        if row is None:
            return TokenStatus.UNKNOWN, None
        status = model.token_status(row["revoked_at"], row["expires_at"], to_iso(now or utcnow()))
        if status is not TokenStatus.LIVE:
            return status, None
        return status, User(row["user_id"], row["name"], row["plan"], row["created_at"])

    async def user_for_token(self, token: str) -> User | None:
        """Return the user of a live (neither revoked nor expired) token, or ``None``."""
        return (await self.token_status(token))[1]

    async def users_named(self, name_or_id: str) -> list[User]:
        """Return the user whose id is ``name_or_id``, else every user with that name."""
        rows = await self.database.fetchall(
            "SELECT user_id, name, plan, created_at FROM users WHERE user_id = ?",
            (name_or_id,),
        ) or await self.database.fetchall(
            "SELECT user_id, name, plan, created_at FROM users WHERE name = ?"
            " ORDER BY created_at, user_id",
            (name_or_id,),
        )
        return [User(r["user_id"], r["name"], r["plan"], r["created_at"]) for r in rows]

    async def list_users(self, now: datetime | None = None) -> list[UserSummary]:
        """Return every user, oldest first, with the state of its tokens."""
        rows = await self.database.fetchall(
            "SELECT u.user_id AS user_id, u.name AS name, u.plan AS plan,"
            " u.created_at AS created_at, t.token_hash AS token_hash,"
            " t.revoked_at AS revoked_at, t.expires_at AS expires_at"
            " FROM users u LEFT JOIN api_tokens t ON t.user_id = u.user_id"
            " ORDER BY u.created_at, u.user_id",
        )
        stamp = to_iso(now or utcnow())
        users: dict[str, User] = {}
        tokens: dict[str, list[tuple[TokenStatus, str | None]]] = {}
        for row in rows:
            user_id = row["user_id"]
            users.setdefault(user_id, User(user_id, row["name"], row["plan"], row["created_at"]))
            found = tokens.setdefault(user_id, [])
            if row["token_hash"] is not None:
                status = model.token_status(row["revoked_at"], row["expires_at"], stamp)
                found.append((status, row["expires_at"]))
        return [model.summarize(user, tokens[user_id]) for user_id, user in users.items()]

    async def get_user(self, user_id: str) -> User | None:
        """Return a user by id, or ``None``."""
        row = await self.database.fetchone(
            "SELECT user_id, name, plan, created_at FROM users WHERE user_id = ?",
            (user_id,),
        )
        if row is None:
            return None
        return User(row["user_id"], row["name"], row["plan"], row["created_at"])

    async def ping(self) -> None:
        """Run a trivial query (health check)."""
        await self.database.fetchone("SELECT 1 AS one")
