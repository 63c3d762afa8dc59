"""Caller authorization per RPC: default deny, by the identity in the peer's certificate.

Each service declares one table, method → the identities that may call it
(``<svc>/access.py``); a guard test fails when an RPC of ``proto/`` is missing from its
service's table. The interceptor asks :class:`Guard` before any handler runs: a method
not in the table, or a caller not listed for it, is PERMISSION_DENIED; a user assertion
that does not verify is UNAUTHENTICATED. The health service is open to every peer that
completed the mutual TLS handshake.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from typing import Any

from meshkit import identity
from meshkit.errors import PermissionDenied, Unauthenticated

# Health and what runs there (component, version: meshkit.server_info); nothing about a user.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "copytrade.common.v1.ServerInfoService"})


def table(
    service_full_name: str, callers: Mapping[str, Iterable[str]]
) -> dict[str, frozenset[str]]:
    """Return an access table keyed by gRPC method path (``/pkg.Service/Method``)."""
    return {f"/{service_full_name}/{method}": frozenset(who) for method, who in callers.items()}


def peer_identity(context: Any) -> str:
    """Return the common name of the peer's verified certificate, or ``""`` without TLS."""
    auth = context.auth_context() or {}
    if auth.get("transport_security_type") != [b"ssl"]:
        return ""
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else ""


def _metadata(context: Any, key: str) -> str:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return item.value if isinstance(item.value, str) else item.value.decode()
    return ""


class Guard:
    """Admits a call: checks the caller against the table and verifies the user assertion.

    ``rules`` of ``None`` checks no table: only the in-process servers of service tests,
    which exercise handlers, use it; every ``build_server`` passes its service's table.
    """

    def __init__(
        self,
        rules: Mapping[str, frozenset[str]] | None,
        verifier: identity.AssertionVerifier | None,
    ) -> None:
        self.rules = rules
        self.verifier = verifier

    def admit(self, full_method: str, context: Any) -> identity.Caller:
        """Return the proven caller of ``full_method``, or raise the refusal."""
        service = peer_identity(context)
        if self.rules is not None and full_method.split("/")[1] not in OPEN_SERVICES:
            allowed = self.rules.get(full_method)
            if allowed is None:
                raise PermissionDenied(
                    f"{full_method} is open to no caller", reason="METHOD_NOT_ALLOWED"
                )
            if service not in allowed:
                who = f"identity {service!r}" if service else "a caller without a mesh certificate"
                raise PermissionDenied(
                    f"{who} may not call {full_method}", reason="CALLER_NOT_ALLOWED"
                )
        token = _metadata(context, identity.ASSERTION_HEADER)
        if not token:
            return identity.Caller(service=service)
        if self.verifier is None:
            raise Unauthenticated(
                "this service accepts no user assertions", reason="ASSERTION_INVALID"
            )
        user_id, plan, expires_at = self.verifier.verify(token)
        return identity.Caller(service, user_id, plan, token, expires_at)

    def enter(self, full_method: str, context: Any) -> contextvars.Token[identity.Caller]:
        """Admit the call and make its caller current for the handler."""
        return identity.set_caller(self.admit(full_method, context))

    @staticmethod
    def leave(token: contextvars.Token[identity.Caller]) -> None:
        """Forget the caller at the end of the call."""
        identity.reset_caller(token)


def guard(rules: Mapping[str, frozenset[str]], assertion_public_key: str) -> Guard:
    """Return a service's guard: its access table and the gateway's public key (a PEM path).

    Without a key (settings built in code by tests that send no user) every user
    assertion is refused.
    """
    verifier = (
        identity.AssertionVerifier.from_file(assertion_public_key) if assertion_public_key else None
    )
    return Guard(rules, verifier)
