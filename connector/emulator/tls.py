"""Key material the emulator makes at start: a self-signed server certificate for
127.0.0.1 (clients trust it explicitly, never by turning verification off) and
the connected app's signing key pair for the OAuth 2.0 JWT bearer flow."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    key_path: Path
    cert_path: Path


def _self_signed(common_name: str, *, server: bool) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cosell-connector org emulator")])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30)))
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # Strict verification (urllib3 2 sets VERIFY_X509_STRICT) wants both key identifiers.
    builder = (builder.add_extension(ski, critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False))
    if server:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([
                       x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                                key_cert_sign=True, content_commitment=False,
                                                data_encipherment=False, key_agreement=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                                  critical=False))
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _write(folder: Path, stem: str, common_name: str, *, server: bool) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    key_pem, cert_pem = _self_signed(common_name, server=server)
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.crt"
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    cert_path.write_bytes(cert_pem)
    return KeyPair(key_path, cert_path)


def server_certificate(folder: Path) -> KeyPair:
    """The HTTPS certificate for 127.0.0.1 and localhost."""
    return _write(folder, "server", "127.0.0.1", server=True)


def connected_app_keys(folder: Path) -> KeyPair:
    """The key a client signs JWT assertions with, and the certificate the connected app holds."""
    return _write(folder, "connected_app", "cosell-connector JWT signing", server=False)
