"""The gateway's tables: ``users`` and ``api_tokens`` (tokens stored only as SHA-256 hashes).

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`; times are
fixed-width ISO text from :func:`meshkit.codec.to_iso`.
"""

from __future__ import annotations

import hashlib
import pathlib
import secrets
import uuid
from dataclasses import dataclass

from meshkit import db
from meshkit.codec import to_iso, utcnow

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
SERVICE = "gateway"
TOKEN_PREFIX = "ct_"


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token: what the store keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """Return a fresh API token: a prefix and 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class User:
    """A gateway user."""

    user_id: str
    name: str
    plan: str
    created_at: str


class GatewayStore:
    """Users and API tokens over a :class:`meshkit.db.Database`."""

    def __init__(self, database: db.Database) -> None:
        self.database = database

    async def migrate(self) -> list[int]:
        """Apply the gateway's schema files not applied yet."""
        return await db.migrate(self.database, SERVICE, SCHEMA_DIR)

    async def create_user(self, name: str, plan: str) -> tuple[User, str]:
        """Insert a user and its first token in one transaction; return both (token in clear)."""
        user = User(str(uuid.uuid4()), name, plan, to_iso(utcnow()))
        token = new_token()
        async with self.database.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (user_id, name, plan, created_at) VALUES (?, ?, ?, ?)",
                (user.user_id, user.name, user.plan, user.created_at),
            )
            await tx.execute(
                "INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)",
                (hash_token(token), user.user_id, user.created_at),
            )
        return user, token

    async def issue_token(self, user_id: str) -> str:
        """Give an existing user one more token; return it in clear (it is not kept)."""
        token = new_token()
        await self.database.execute(
            "INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)",
            (hash_token(token), user_id, to_iso(utcnow())),
        )
        return token

    async def revoke_token(self, token: str) -> bool:
        """Revoke a token; return whether a live token was revoked now."""
        changed = await self.database.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            (to_iso(utcnow()), hash_token(token)),
        )
        return changed > 0

    async def user_for_token(self, token: str) -> User | None:
        """Return the user of a live (not revoked) token, or ``None``.

        A token that is not ASCII (header bytes that are not UTF-8 arrive as surrogates)
        was never issued: ``None``, without a query.
        """
        if not token.isascii():
            return None
        row = await self.database.fetchone(
            "SELECT u.user_id AS user_id, u.name AS name, u.plan AS plan,"
            " u.created_at AS created_at"
            " FROM api_tokens t JOIN users u ON u.user_id = t.user_id"
            " WHERE t.token_hash = ? AND t.revoked_at IS NULL",
            (hash_token(token),),
        )
        if row is None:
            return None
        return User(row["user_id"], row["name"], row["plan"], row["created_at"])

    async def get_user(self, user_id: str) -> User | None:
        """Return a user by id, or ``None``."""
        row = await self.database.fetchone(
            "SELECT user_id, name, plan, created_at FROM users WHERE user_id = ?", (user_id,),
        )
        if row is None:
            return None
        return User(row["user_id"], row["name"], row["plan"], row["created_at"])

    async def ping(self) -> None:
        """Run a trivial query (health check)."""
        await self.database.fetchone("SELECT 1 AS one")
