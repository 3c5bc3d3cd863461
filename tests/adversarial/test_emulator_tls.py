"""The emulator's certificates. Tried: the server certificate used as a CA (it must not be one);
the CA key looked for on disk (it must not be there); what the server offers on the wire (the
leaf, not the CA); a client trusting the CA file (verifies); a client trusting nothing (refused)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connector.salesforce.http import SalesforceSession


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def test_a_ca_signs_the_leaf_the_server_offers_and_its_key_is_not_on_disk(emulator):
    ca = _cert(emulator.ca_cert)
    folder = Path(emulator.ca_cert).parent
    leaf = _cert(folder / "server.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    leaf.verify_directly_issued_by(ca)
    assert leaf.issuer == ca.subject != leaf.subject
    ca_public = ca.public_key().public_numbers()
    for key_file in folder.rglob("*"):
        if key_file.is_file() and b"PRIVATE KEY" in key_file.read_bytes():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert key.public_key().public_numbers() != ca_public, f"the CA key is on disk: {key_file}"
            assert key_file.stat().st_mode & 0o077 == 0
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as raw:
        context = ssl.create_default_context(cafile=emulator.ca_cert)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            offered = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    assert offered == leaf


def test_clients_verify_against_the_ca_file_and_refuse_without_it(emulator):
    url = f"{emulator.instance_url}/services/data/"
    assert SalesforceSession(ca_cert=emulator.ca_cert).get(url, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)
