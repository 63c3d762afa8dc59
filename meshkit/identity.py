"""Who is calling: the peer service proven by its certificate, and the user it acts for.

Two facts travel with every internal call, and neither can be forged by a header:

- **The calling service**: the common name of the client certificate the peer presented
  over mutual TLS (``engine``, ``gateway``, ...). Each service's access table
  (``<svc>/access.py``) names which identities may call which method.
- **The user**, when there is one: only the gateway turns a bearer token into a user. It
  signs a short-lived assertion (an EdDSA JWT: user id, plan, request id, expiry of
  seconds) with a key only it holds, and sends it as ``x-copytrade-user-assertion``. Every
  service verifies it with the public half. A bare ``x-copytrade-user-id`` means nothing.

The server interceptor verifies both before a handler runs and keeps the result in a
context variable; handlers read it with :func:`require_user` / :func:`user_id_or_empty`.
A service acting for that user forwards the assertion (:func:`forward_metadata`); work
that runs for no request (the copy path) goes under the service's own identity.
"""

from __future__ import annotations

import contextvars
import pathlib
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from meshkit.errors import Unauthenticated
from meshkit.interceptors import REQUEST_ID_HEADER, request_id_var

ASSERTION_HEADER = "x-copytrade-user-assertion"
# Ignored by every service; listed so the gateway strips it from what clients send.
USER_HEADER = "x-copytrade-user-id"
ISSUER = "copytrade-gateway"
AUDIENCE = "copytrade-mesh"
ASSERTION_TTL_SECONDS = 30
LEEWAY_SECONDS = 2
# An assertion with less than this left is not forwarded: the next hop would refuse it.
FORWARD_MARGIN_SECONDS = 3
# The gateway reuses one signed assertion per (user, plan) for at most this long, so an
# assertion it sends has at least ASSERTION_TTL_SECONDS - REUSE_SECONDS (25 s) left: more than
# any request's deadline (GATEWAY_TIMEOUT_MS, 15 s by default) plus FORWARD_MARGIN_SECONDS.
REUSE_SECONDS = 5
# How many verified assertions a service remembers (each until its expiry).
VERIFIED_CACHE_SIZE = 4096
_ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class Caller:
    """What the interceptor proved about a call."""

    service: str = ""
    user_id: str = ""
    plan: str = ""
    assertion: str = ""
    expires_at: float = 0.0


_caller_var: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller", default=Caller())


def current_caller() -> Caller:
    """Return what is proven about the call being handled (empty outside a call)."""
    return _caller_var.get()


def set_caller(caller: Caller) -> contextvars.Token[Caller]:
    """Set the proven caller for the rest of this call (the interceptor's job)."""
    return _caller_var.set(caller)


def reset_caller(token: contextvars.Token[Caller]) -> None:
    """Undo :func:`set_caller`."""
    _caller_var.reset(token)


def user_id_or_empty(context: Any = None) -> str:
    """Return the verified user of this call, or ``""`` for a service acting for nobody.

    ``context`` is accepted for the servicers' call sites and not read: the user comes
    only from a verified assertion.
    """
    return _caller_var.get().user_id


def require_user(context: Any = None) -> str:
    """Return the verified user of this call, or fail with UNAUTHENTICATED."""
    user_id = user_id_or_empty(context)
    if not user_id:
        raise Unauthenticated("no authenticated user on this call", reason="USER_REQUIRED")
    return user_id


def current_actor() -> str:
    """Return who is acting, for the audit trail: ``user:<id>``, ``service:<name>`` or ``""``."""
    caller = _caller_var.get()
    if caller.user_id:
        return f"user:{caller.user_id}"
    if caller.service:
        return f"service:{caller.service}"
    return ""


def forward_metadata(user_id: str = "") -> tuple[tuple[str, str], ...]:
    """Return metadata for a downstream call: the request id and, for ``user_id``, the assertion.

    The assertion this call was made with is forwarded when it is ``user_id``'s and has a
    few seconds left; otherwise the call goes under this service's own identity (the
    callee's access table decides whether that is enough).
    """
    metadata: list[tuple[str, str]] = []
    request_id = request_id_var.get()
    if request_id:
        metadata.append((REQUEST_ID_HEADER, request_id))
    caller = _caller_var.get()
    if (
        user_id
        and caller.assertion
        and caller.user_id == user_id
        and caller.expires_at - time.time() > FORWARD_MARGIN_SECONDS
    ):
        metadata.append((ASSERTION_HEADER, caller.assertion))
    return tuple(metadata)


class AssertionSigner:
    """The gateway's half: signs ``(user, plan, request id)`` for ``ttl`` seconds."""

    def __init__(
        self,
        private_key: ed25519.Ed25519PrivateKey,
        *,
        ttl: int = ASSERTION_TTL_SECONDS,
        reuse_seconds: float = REUSE_SECONDS,
    ) -> None:
        self._key = private_key
        self.ttl = ttl
        self.reuse_seconds = min(reuse_seconds, ttl / 3)
        self._reused: dict[tuple[str, str], tuple[float, str]] = {}

    def __repr__(self) -> str:
        return f"AssertionSigner(ttl={self.ttl})"

    @classmethod
    def from_file(
        cls, path: str | pathlib.Path, *, ttl: int = ASSERTION_TTL_SECONDS
    ) -> AssertionSigner:
        """Load an Ed25519 private key in PEM (PKCS#8)."""
        key = serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key, ttl=ttl)

    def public_key(self) -> ed25519.Ed25519PublicKey:
        """Return the public half, for verifiers (tests)."""
        return self._key.public_key()

    def sign(
        self, user_id: str, plan: str, request_id: str = "", *, now: float | None = None
    ) -> str:
        """Return a signed assertion of ``user_id`` valid for ``ttl`` seconds from ``now``."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "plan": plan,
            "rid": request_id,
            "iat": issued,
            "exp": issued + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def assertion(self, user_id: str, plan: str, *, now: float | None = None) -> str:
        """Return an assertion of ``(user_id, plan)``, the same one for ``reuse_seconds``.

        For the gateway's requests: signing is a tenth of its CPU per read, and the claims a
        service reads (user, plan, expiry) are the same for every request of a user within a
        second. The caller has checked the bearer token first, on every request, so a revoked
        token gets nothing, and a plan change makes another key. Its ``rid`` is empty (the
        request id travels in its own header). At most ``ttl / 3`` of its life is used, so the
        services get it with at least two thirds left.
        """
        at = time.time() if now is None else now
        key = (user_id, plan)
        found = self._reused.get(key)
        if found is not None and 0 <= at - found[0] < self.reuse_seconds:
            return found[1]
        token = self.sign(user_id, plan, now=at)
        if len(self._reused) >= VERIFIED_CACHE_SIZE:
            self._reused = {k: v for k, v in self._reused.items() if at - v[0] < self.reuse_seconds}
            if len(self._reused) >= VERIFIED_CACHE_SIZE:
                self._reused.clear()
        # The iat the token carries: an integer second, so its reuse window starts there.
        self._reused[key] = (float(int(at)), token)
        return token

    def sign_ticket(
        self, audience: str, user_id: str, plan: str, ttl: int, *, now: float | None = None
    ) -> str:
        """Return a ticket of ``user_id`` for one purpose of the gateway itself, ``ttl`` seconds.

        Its ``audience`` is never the mesh's, so no service takes it for a user assertion (the
        dashboard's event stream uses one; :mod:`gateway.events`).
        """
        if audience == AUDIENCE:
            raise ValueError("a ticket's audience must not be the mesh's")
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "sub": user_id,
            "plan": plan,
            "iat": issued,
            "exp": issued + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)


class AssertionVerifier:
    """Every service's half: checks signature, issuer, audience and expiry."""

    def __init__(
        self, public_key: ed25519.Ed25519PublicKey, *, cache_size: int = VERIFIED_CACHE_SIZE
    ) -> None:
        self._key = public_key
        self._cache_size = cache_size
        # Assertion text -> (user id, plan, expiry) of one that verified: the signature check
        # (Ed25519, 5-15 % of a service's CPU per read) is done once per assertion; its expiry
        # is checked on every use, with the same leeway, and it is forgotten once expired.
        self._verified: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | pathlib.Path) -> AssertionVerifier:
        """Load an Ed25519 public key in PEM."""
        key = serialization.load_pem_public_key(pathlib.Path(path).read_bytes())
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 public key")
        return cls(key)

    def verify(self, token: str) -> tuple[str, str, float]:
        """Return ``(user id, plan, expiry)`` of a valid assertion.

        An assertion that verified is remembered (a bounded LRU) until it expires: the same
        text under the same key verifies the same way, so only its expiry is checked again.

        Raises
        ------
        Unauthenticated
            Signed by another key, altered, expired, for another audience, or malformed.
        """
        with self._lock:
            known = self._verified.get(token)
            if known is not None:
                if time.time() < known[2] + LEEWAY_SECONDS:
                    self._verified.move_to_end(token)
                    return known
                del self._verified[token]
        verified = self._verify(token)
        with self._lock:
            self._verified[token] = verified
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return verified

    def _verify(self, token: str) -> tuple[str, str, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "the user assertion has expired", reason="ASSERTION_EXPIRED"
            ) from None
        except jwt.PyJWTError:
            raise Unauthenticated(
                "the user assertion is not valid", reason="ASSERTION_INVALID"
            ) from None
        user_id = claims.get("sub")
        if not isinstance(user_id, str) or not user_id:
            raise Unauthenticated("the user assertion names no user", reason="ASSERTION_INVALID")
        plan = claims.get("plan") if isinstance(claims.get("plan"), str) else ""
        return user_id, str(plan), float(claims["exp"])
