"""Key material the emulator makes at start: a throwaway certificate authority that signs a leaf
server certificate for 127.0.0.1 and localhost (the server offers the leaf; clients trust the CA
file explicitly, never by turning verification off), and the connected app's signing key pair for
the OAuth 2.0 JWT bearer flow. The CA's private key lives only in memory while it signs: it is
never written, so nothing on disk can mint another certificate clients would trust."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "cosell-connector org emulator"


@dataclass(frozen=True)
class KeyPair:
    key_path: Path
    cert_path: Path
    ca_cert_path: Path | None = None    # the CA that signed cert_path, for clients to trust


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)])


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, key_encipherment=not signs_certificates,
                         key_cert_sign=signs_certificates, crl_sign=signs_certificates, content_commitment=False,
                         data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False)


def _certificate(subject: str, key: rsa.RSAPrivateKey, *, issuer: x509.Name | None = None,
                 issuer_key: rsa.RSAPrivateKey | None = None, server: bool = False, ca: bool = False,
                 days: int = 30) -> x509.Certificate:
    """A certificate for `key`, signed by `issuer_key` (self-signed without one). Strict verification
    (urllib3 2 sets VERIFY_X509_STRICT) wants both key identifiers on every certificate."""
    name = _name(subject)
    signer = issuer_key or key
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                              critical=False))
    if ca:
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(_key_usage(signs_certificates=True), critical=True))
    elif server:
        builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(_key_usage(signs_certificates=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([
                       x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False))
    return builder.sign(signer, hashes.SHA256())


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def server_certificate(folder: Path) -> KeyPair:
    """The HTTPS leaf certificate for 127.0.0.1 and localhost (server.crt, server.key), signed by a
    new CA whose certificate is ca.crt and whose key is dropped once it has signed."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca = _certificate("cosell-connector emulator CA", ca_key, ca=True)
    leaf_key = _new_key()
    leaf = _certificate("127.0.0.1", leaf_key, issuer=ca.subject, issuer_key=ca_key, server=True)
    del ca_key
    key_path, cert_path, ca_path = folder / "server.key", folder / "server.crt", folder / "ca.crt"
    _write_key(key_path, leaf_key)
    cert_path.write_bytes(_pem(leaf))
    ca_path.write_bytes(_pem(ca))
    return KeyPair(key_path, cert_path, ca_path)


def connected_app_keys(folder: Path) -> KeyPair:
    """The key a client signs JWT assertions with, and the certificate the connected app holds."""
    folder.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    key_path, cert_path = folder / "connected_app.key", folder / "connected_app.crt"
    _write_key(key_path, key)
    cert_path.write_bytes(_pem(_certificate("cosell-connector JWT signing", key)))
    return KeyPair(key_path, cert_path)
