"""The negative matrix every service's server must refuse, tried against a real ``build_server``.

A caller without the mesh's credentials reaches nothing: plaintext, TLS without a client
certificate, or a certificate from another CA fail at the handshake. A mesh identity the
access table does not list for a method is PERMISSION_DENIED. A user the gateway did not
sign (a bare ``x-copytrade-user-id``, an expired assertion, one signed by another key, one
altered) is UNAUTHENTICATED.
"""

from __future__ import annotations

import pathlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519

from meshkit import pki
from meshkit.identity import ASSERTION_HEADER, USER_HEADER, AssertionSigner
from meshkit.testing import TEST_PKI, TEST_SIGNER, secure_channel

_OTHER_CA: pathlib.Path | None = None


def other_ca() -> pathlib.Path:
    """Return credentials made by another CA (an attacker's own PKI, same identity names)."""
    global _OTHER_CA
    if _OTHER_CA is None:
        _OTHER_CA = pathlib.Path(tempfile.mkdtemp(prefix="copytrade-other-ca-"))
        pki.ensure_mesh_credentials(_OTHER_CA)
    return _OTHER_CA


def _channel(address: str, how: str, identity: str = "gateway") -> grpc.aio.Channel:
    mesh_ca = (TEST_PKI / "ca.crt").read_bytes()
    if how == "plaintext":
        return grpc.aio.insecure_channel(address)
    if how == "tls-without-client-certificate":
        return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(mesh_ca))
    if how == "certificate-of-another-ca":
        files = pki.identity_files(other_ca(), identity)
        # It trusts the mesh's server certificate, but presents one the mesh never issued.
        return grpc.aio.secure_channel(
            address,
            grpc.ssl_channel_credentials(mesh_ca, files.key.read_bytes(), files.cert.read_bytes()),
        )
    return secure_channel(address, identity)


TRANSPORT_REFUSALS = ("plaintext", "tls-without-client-certificate", "certificate-of-another-ca")


@dataclass
class Probe:
    """One RPC of a service, callable from any channel."""

    stub_class: Any
    method: str
    request: Any

    async def call(
        self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()
    ) -> Any:
        return await getattr(self.stub_class(channel), self.method)(
            self.request, metadata=metadata, timeout=5
        )


async def refused_code(
    address: str,
    probe: Probe,
    how: str,
    identity: str = "gateway",
    metadata: tuple[tuple[str, str], ...] = (),
) -> grpc.StatusCode:
    """Call ``probe`` the way ``how`` says and return the status code it was refused with."""
    channel = _channel(address, how, identity)
    try:
        await probe.call(channel, metadata)
    except grpc.aio.AioRpcError as e:
        return e.code()
    finally:
        await channel.close()
    raise AssertionError(f"{probe.method} answered {how} as {identity}")


def forged_assertions(user_id: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Return the user proofs a service must refuse, by name."""
    stranger = AssertionSigner(ed25519.Ed25519PrivateKey.generate())
    valid = TEST_SIGNER.sign(user_id, "pro")
    head, payload, signature = valid.split(".")
    tampered_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    return {
        "bare user header": ((USER_HEADER, user_id),),
        "expired assertion": (
            (ASSERTION_HEADER, TEST_SIGNER.sign(user_id, "pro", now=time.time() - 7 * 3600)),
        ),
        "assertion signed by another key": ((ASSERTION_HEADER, stranger.sign(user_id, "pro")),),
        "altered assertion": ((ASSERTION_HEADER, f"{head}.{tampered_payload}.{signature}"),),
        "garbage assertion": ((ASSERTION_HEADER, "not-a-jwt"),),
    }


async def assert_matrix(
    address: str,
    *,
    user_probe: Probe,
    user_caller: str,
    denied_callers: tuple[str, ...],
    user_id: str,
    unchanged: Callable[[], Awaitable[None]],
) -> None:
    """Run the whole matrix against one user RPC, then check the service changed nothing."""
    for how in TRANSPORT_REFUSALS:
        code = await refused_code(address, user_probe, how, user_caller)
        assert code == grpc.StatusCode.UNAVAILABLE, (how, code)
    valid = ((ASSERTION_HEADER, TEST_SIGNER.sign(user_id, "pro")),)
    for identity in denied_callers:
        code = await refused_code(address, user_probe, "mesh", identity, valid)
        assert code == grpc.StatusCode.PERMISSION_DENIED, (identity, code)
    for what, metadata in forged_assertions(user_id).items():
        code = await refused_code(address, user_probe, "mesh", user_caller, metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (what, code)
    await unchanged()
