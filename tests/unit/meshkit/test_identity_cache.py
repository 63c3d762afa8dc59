"""The per-request user assertion: the gateway reuses one per (user, plan) for a third of its
life at most, and a service verifies an assertion's signature once, then only its expiry."""

from __future__ import annotations

from datetime import datetime, tzinfo

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from meshkit import identity
from meshkit.errors import Unauthenticated
from meshkit.identity import AssertionSigner, AssertionVerifier


def _pair() -> tuple[AssertionSigner, AssertionVerifier]:
    key = ed25519.Ed25519PrivateKey.generate()
    return AssertionSigner(key), AssertionVerifier(key.public_key())


def test_the_gateway_reuses_an_assertion_per_user_and_plan_within_its_window() -> None:
    signer, _verifier = _pair()
    first = signer.assertion("u1", "pro", now=1_000.0)
    assert signer.assertion("u1", "pro", now=1_004.5) == first
    assert signer.assertion("u1", "free", now=1_001.0) != first  # a plan change: another
    assert signer.assertion("u2", "pro", now=1_001.0) != first
    later = signer.assertion("u1", "pro", now=1_005.0)
    assert later != first
    assert signer.reuse_seconds <= signer.ttl / 3
    claims = jwt.decode(later, options={"verify_signature": False})
    assert claims["exp"] - 1_005 == signer.ttl  # a fresh one has its whole life


def test_a_verified_assertion_is_not_checked_again_but_its_expiry_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer, verifier = _pair()
    token = signer.assertion("u1", "pro")
    decoded: list[str] = []
    real = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        decoded.append(str(args[0]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    assert verifier.verify(token)[:2] == ("u1", "pro")
    assert verifier.verify(token)[:2] == ("u1", "pro")
    assert len(decoded) == 1

    # Past its expiry (and the leeway) the remembered answer is not given: refused as expired.
    _user, _plan, expires_at = verifier.verify(token)
    later = expires_at + identity.LEEWAY_SECONDS + 1

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            return cls.fromtimestamp(later, tz)

    monkeypatch.setattr(identity.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token)
    assert refused.value.reason == "ASSERTION_EXPIRED"


def test_a_forged_or_altered_assertion_is_never_remembered() -> None:
    signer, verifier = _pair()
    stranger, _ = _pair()
    forged = stranger.assertion("u1", "pro")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.verify(forged)
    token = signer.assertion("u1", "pro")
    verifier.verify(token)
    head, body, signature = token.split(".")
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{head}.{body}.{signature[:-2]}AA")


def test_the_verified_cache_is_bounded() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer, verifier = AssertionSigner(key), AssertionVerifier(key.public_key(), cache_size=3)
    for n in range(10):
        verifier.verify(signer.sign(f"u{n}", "pro"))
    assert len(verifier._verified) == 3
