"""The mesh's own credentials: a CA, one TLS key and certificate per component, and the
key pair with which the gateway signs user assertions.

The files are laid out the way cert-manager writes a Secret, so the same paths work
locally and in Kubernetes (one Secret per component mounted at its own folder)::

    <dir>/ca.crt  ca.key                      the mesh's CA (ca.key never leaves this machine)
    <dir>/<name>/tls.crt  tls.key  ca.crt     one folder per identity (gateway, broker, ...)
    <dir>/assertion/signing.key               the gateway's Ed25519 signing key
    <dir>/assertion/public.pem                its public half, which every service verifies with

A component's identity is the common name of its certificate (``broker``); its subject
alternative names are that name, ``localhost`` and ``127.0.0.1``, so a client reaches it
by service name in a cluster and by loopback address locally.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every identity the mesh issues a certificate to. ``operator`` is for people and tools
# (bench, probes) that call a service directly; no access table lets it place an order.
IDENTITIES = ("gateway", "broker", "engine", "sync", "recon", "operator")
CA_DAYS = 3650
LEAF_DAYS = 825


@dataclass(frozen=True)
class IdentityFiles:
    """The three PEM files of one identity (cert-manager's names)."""

    cert: pathlib.Path
    key: pathlib.Path
    ca: pathlib.Path


def identity_files(directory: pathlib.Path, name: str) -> IdentityFiles:
    """Return where the files of identity ``name`` live under ``directory``."""
    folder = directory / name
    return IdentityFiles(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")


def signing_key_path(directory: pathlib.Path) -> pathlib.Path:
    """Return the path of the gateway's assertion signing key."""
    return directory / "assertion" / "signing.key"


def public_key_path(directory: pathlib.Path) -> pathlib.Path:
    """Return the path of the assertion verification (public) key."""
    return directory / "assertion" / "public.pem"


def _write(path: pathlib.Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "copytrade mesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_ca(directory: pathlib.Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _name("copytrade mesh CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(directory / "ca.key", _key_pem(key), private=True)
    _write(directory / "ca.crt", cert.public_bytes(serialization.Encoding.PEM), private=False)
    return key, cert


def _load_ca(directory: pathlib.Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / 'ca.key'} is not an EC private key")
    cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    return key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    name: str,
    *,
    days: int = LEAF_DAYS,
    hosts: Iterable[str] = (),
) -> tuple[bytes, bytes]:
    """Return ``(certificate PEM, key PEM)`` for identity ``name``, signed by the CA.

    The certificate serves as both a server and a client certificate (mutual TLS).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [
        x509.DNSName(n) for n in dict.fromkeys([name, *hosts, "localhost"])
    ]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_identity(
    directory: pathlib.Path,
    name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    days: int = LEAF_DAYS,
) -> IdentityFiles:
    """Issue identity ``name`` and write its three files under ``directory/name``."""
    files = identity_files(directory, name)
    cert_pem, key_pem = issue(ca_key, ca_cert, name, days=days)
    _write(files.key, key_pem, private=True)
    _write(files.cert, cert_pem, private=False)
    _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    return files


def ensure_mesh_credentials(
    directory: pathlib.Path,
    *,
    identities: Iterable[str] = IDENTITIES,
    force: bool = False,
) -> list[str]:
    """Make whatever of the CA, the identities and the assertion key pair is missing.

    Existing files are kept (a running mesh keeps trusting them) unless ``force``, which
    makes a new CA and re-issues everything. Returns what was written, for the caller to
    report; never a key's content.
    """
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    written: list[str] = []
    if force or not (directory / "ca.key").exists() or not (directory / "ca.crt").exists():
        ca_key, ca_cert = _make_ca(directory)
        written.append("ca")
        force = True
    else:
        ca_key, ca_cert = _load_ca(directory)
    for name in identities:
        files = identity_files(directory, name)
        if force or not (files.cert.exists() and files.key.exists() and files.ca.exists()):
            write_identity(directory, name, ca_key, ca_cert)
            written.append(name)
    signing, public = signing_key_path(directory), public_key_path(directory)
    if force or not (signing.exists() and public.exists()):
        private = ed25519.Ed25519PrivateKey.generate()
        _write(signing, _key_pem(private), private=True)
        _write(
            public,
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            private=False,
        )
        written.append("assertion key pair")
    return written
