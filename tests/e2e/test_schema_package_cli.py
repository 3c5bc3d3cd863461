"""`cosell schema package` as an admin runs it: the package for the mapping in use, the connected app
with the admin's certificate, and one-line errors for what cannot become a package."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from connector.emulator import tls

NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
SHIPPED = Path(__file__).resolve().parents[2] / "salesforce"


def _cosell(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_package_with_the_certificate_holds_the_connected_app(tmp_path):
    keys = tls.connected_app_keys(tmp_path / "keys")  # the emulator's own connected-app key pair
    out = tmp_path / "pkg"
    result = _cosell("schema", "package", str(out), "--certificate", str(keys.cert_path),
                     "--contact-email", "admin@example.com")
    assert result.returncode == 0, result.stderr
    assert "sf project deploy start --source-dir force-app" in result.stdout
    app = ET.parse(out / "force-app/main/default/connectedApps/Cosell_Connector.connectedApp-meta.xml").getroot()
    certificate = app.find("m:oauthConfig/m:certificate", NS).text
    assert certificate in "".join(keys.cert_path.read_text().split())
    # everything else is the committed package, byte for byte
    for path in SHIPPED.rglob("*.xml"):
        assert (out / path.relative_to(SHIPPED)).read_text() == path.read_text(), path


def test_package_follows_the_mapping_in_use(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("version: 1\nobjects:\n  Deal_Registration__c:\n    direction: read_write\n"
                       "    external_id: Portal_Id__c\n    fields: {exclude: [Program__c]}\n")
    out = tmp_path / "pkg"
    result = _cosell("schema", "package", str(out), env={"COSELL_MAPPING": str(mapping)})
    assert result.returncode == 0, result.stderr
    objects = out / "force-app/main/default/objects"
    assert [p.name for p in objects.iterdir()] == ["Deal_Registration__c"]
    fields = {p.name.split(".")[0] for p in (objects / "Deal_Registration__c/fields").iterdir()}
    assert "Program__c" not in fields and "Portal_Id__c" in fields
    permset = (out / "force-app/main/default/permissionsets/Cosell_Connector_Integration.permissionset-meta.xml")
    assert "Deal_Registration__c.Program__c" not in permset.read_text()
    assert "<object>Opportunity</object>" not in permset.read_text()


def test_a_key_given_as_the_certificate_is_one_clear_line(tmp_path):
    keys = tls.connected_app_keys(tmp_path / "keys")
    result = _cosell("schema", "package", str(tmp_path / "pkg"), "--certificate", str(keys.key_path),
                     "--contact-email", "admin@example.com")
    assert result.returncode == 2
    assert "no PEM certificate" in result.stderr and str(keys.key_path) in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pkg").exists(), "nothing is written when the package cannot be made"


def test_a_mapped_object_the_org_lacks_is_named(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("version: 1\nobjects:\n  Partner_Fund__c: {}\n")
    result = _cosell("schema", "package", str(tmp_path / "pkg"), "--mapping", str(mapping))
    assert result.returncode == 2
    assert "Partner_Fund__c" in result.stderr and "Traceback" not in result.stderr
