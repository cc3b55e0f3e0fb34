"""Throwaway key material for tests that give a user SSH keys and signing certificates (made fresh, never stored)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ssh_public_key() -> str:
    """An OpenSSH public key line, as UploadSSHPublicKey takes it."""
    public = _rsa_key().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _certificate(key, common_name: str, not_before: dt.datetime, not_after: dt.datetime) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def self_signed_certificate(common_name: str = "iamrunbook-test") -> str:
    """A PEM X.509 certificate valid from yesterday for 30 days, as UploadSigningCertificate takes it."""
    now = dt.datetime.now(dt.timezone.utc)
    return _certificate(_rsa_key(), common_name, now - dt.timedelta(days=1), now + dt.timedelta(days=30))


def server_certificate(common_name: str, expires_in_days: float) -> tuple[str, str]:
    """(certificate, private key) in PEM, as UploadServerCertificate takes them; negative days: expired."""
    key = _rsa_key()
    after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=expires_in_days)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return _certificate(key, common_name, after - dt.timedelta(days=400), after), private.decode()
