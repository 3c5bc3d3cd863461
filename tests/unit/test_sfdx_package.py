"""The shipped metadata package (salesforce/), the emulator's org definition and the shipped mapping
describe one org: these tests read the package's XML on their own terms (not through the renderer)
and fail when any of the three drifts from the others."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connector.emulator import Emulator
from connector.emulator.orgdef import OrgDef, load_org
from connector.emulator.store import RecordError
from connector.mapping import Mapping, load_mapping
from connector.sfdx import Certificate, PackageError, render_package

ROOT = Path(__file__).resolve().parents[2] / "salesforce"
SOURCE = ROOT / "force-app" / "main" / "default"
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
# The sync engine never writes these, whatever the describe says.
SYSTEM_FIELDS = {"Id", "IsDeleted", "SystemModstamp", "LastModifiedDate", "LastModifiedById", "CreatedDate",
                 "CreatedById", "LastActivityDate", "LastViewedDate", "LastReferencedDate"}
# CustomField type -> the describe type Salesforce reports for it (Metadata API CustomField / FieldType).
DESCRIBE_TYPE = {"Text": "string", "TextArea": "textarea", "LongTextArea": "textarea", "Email": "email",
                 "Phone": "phone", "Url": "url", "Picklist": "picklist", "MultiselectPicklist": "multipicklist",
                 "Checkbox": "boolean", "Number": "double", "Currency": "currency", "Percent": "percent",
                 "Date": "date", "DateTime": "datetime", "Time": "time", "Lookup": "reference",
                 "MasterDetail": "reference"}


def _parse(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag.startswith("{" + NS["m"] + "}"), f"{path}: not in the metadata namespace"
    return root


def _text(el: ET.Element, tag: str) -> str | None:
    found = el.find(f"m:{tag}", NS)
    return None if found is None else found.text


def _flag(el: ET.Element, tag: str) -> bool:
    return _text(el, tag) == "true"


@pytest.fixture(scope="module")
def org() -> OrgDef:
    return load_org("cosell_demo")


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return load_mapping(None)


def _package_objects() -> list[str]:
    return sorted(p.name for p in (SOURCE / "objects").iterdir())


def test_the_committed_package_is_what_the_renderer_writes(org, mapping):
    files = render_package(org, mapping)
    on_disk = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
               for p in ROOT.rglob("*") if p.is_file() and p.name != "README.md"}
    assert sorted(on_disk) == sorted(files), "salesforce/ is stale: run `cosell schema package salesforce`"
    for path, text in files.items():
        assert on_disk[path] == text, f"salesforce/{path} is stale: run `cosell schema package salesforce`"


def test_project_file_names_the_source_folder_and_the_orgs_api_version(org):
    project = json.loads((ROOT / "sfdx-project.json").read_text())
    assert project["packageDirectories"] == [{"path": "force-app", "default": True}]
    assert project["sourceApiVersion"] == org.api_version


def test_every_mapped_custom_field_is_in_the_package_and_nothing_else(org, mapping):
    expected = {(o, f.name) for o in mapping.objects if (obj := org.get_object(o))
                for f in obj.fields if f.custom and f.name != "Name" and mapping.object(o).selects(f.name)}
    shipped = {(p.parent.parent.name, p.name.removesuffix(".field-meta.xml"))
               for p in SOURCE.glob("objects/*/fields/*.field-meta.xml")}
    assert shipped == expected
    assert {"Co_Sell_Participant__c", "Deal_Registration__c", "Account", "Opportunity"} <= set(_package_objects())


@pytest.mark.parametrize("path", sorted(SOURCE.glob("objects/*/fields/*.field-meta.xml")),
                         ids=lambda p: f"{p.parent.parent.name}.{p.stem.removesuffix('.field-meta')}")
def test_field_agrees_with_the_emulator(org, path):
    obj = org.get_object(path.parent.parent.name)
    el = _parse(path)
    name = _text(el, "fullName")
    assert path.name == f"{name}.field-meta.xml"
    f = obj.field(name)
    assert f is not None, f"{obj.name}.{name} is in the package but not in the org definition"
    kind = _text(el, "type")
    assert DESCRIBE_TYPE[kind] == f.type
    assert _text(el, "label") == f.label_text
    if kind in ("Text", "LongTextArea"):
        assert int(_text(el, "length")) == f.length
    if kind == "TextArea":
        assert f.length == 255  # a TextArea is always 255 in describe
    if kind in ("Number", "Currency", "Percent"):
        assert (int(_text(el, "precision")), int(_text(el, "scale"))) == (f.precision, f.scale)
    assert _flag(el, "externalId") == f.external_id
    assert _flag(el, "unique") == f.unique
    if f.unique and kind == "Text":
        assert _flag(el, "caseSensitive") == f.case_sensitive
    # describe says nillable=false for required fields, checkboxes and master-detail fields
    required = _flag(el, "required") or kind in ("Checkbox", "MasterDetail")
    assert required == (not f.nillable)
    if kind == "Checkbox":
        assert _text(el, "defaultValue") == str(bool(f.default_value)).lower()
    if kind in ("Lookup", "MasterDetail"):
        assert [_text(el, "referenceTo")] == f.reference_to
        assert (kind == "MasterDetail") == f.master_detail
        assert f.relationship_name == name.removesuffix("__c") + "__r"
        if kind == "MasterDetail":
            assert _flag(el, "reparentableMasterDetail") == f.updateable
        # the parent's describe names the children as the package does (plus __r)
        children = {(c["childSObject"], c["field"]): c for c in org.child_relationships(f.reference_to[0])}
        child = children[(obj.name, name)]
        assert child["relationshipName"] == _text(el, "relationshipName") + "__r"
        assert child["cascadeDelete"] == (kind == "MasterDetail")
    if kind in ("Picklist", "MultiselectPicklist"):
        value_set = el.find("m:valueSet", NS)
        assert _flag(value_set, "restricted") == f.restricted
        values = value_set.findall("m:valueSetDefinition/m:value", NS)
        assert [(_text(v, "fullName"), _text(v, "label"), _flag(v, "default"), _text(v, "isActive") != "false")
                for v in values] == [(p.value, p.label or p.value, p.default, p.active) for p in f.picklist]


def test_no_parent_has_two_child_relationships_of_one_name(org):
    names: dict[tuple[str, str], str] = {}
    for path in SOURCE.glob("objects/*/fields/*.field-meta.xml"):
        el = _parse(path)
        if _text(el, "type") not in ("Lookup", "MasterDetail"):
            continue
        key = (_text(el, "referenceTo"), _text(el, "relationshipName").lower())
        assert key not in names, f"{path.stem} and {names[key]} both name children of {key[0]} {key[1]}"
        names[key] = path.stem


@pytest.mark.parametrize("name", ["Co_Sell_Participant__c", "Deal_Registration__c"])
def test_custom_object_agrees_with_the_emulator(org, name):
    obj = org.get_object(name)
    el = _parse(SOURCE / "objects" / name / f"{name}.object-meta.xml")
    assert _text(el, "label") == obj.label_text
    assert _text(el, "pluralLabel") == obj.label_plural
    name_field = el.find("m:nameField", NS)
    assert (_text(name_field, "type") == "AutoNumber") == obj.field("Name").auto_number
    assert _text(name_field, "label") == obj.field("Name").label_text
    detail = any(f.master_detail for f in obj.fields)
    assert (_text(el, "sharingModel") == "ControlledByParent") == detail
    # a detail object has no owner of its own; an object that is shared has one
    assert obj.has_owner == (not detail)


def _identifiers(text: str) -> set[str]:
    return set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", re.sub(r"'[^']*'|\"[^\"]*\"", "", text)))


def test_validation_rules_agree_with_the_emulator(org):
    for obj in org.objects:
        shipped = {p.name.removesuffix(".validationRule-meta.xml"): _parse(p)
                   for p in SOURCE.glob(f"objects/{obj.name}/validationRules/*.validationRule-meta.xml")}
        assert sorted(shipped) == sorted(r.name for r in obj.validation_rules), obj.name
        fields = {f.name for f in obj.fields}
        for rule in obj.validation_rules:
            el = shipped[rule.name]
            assert _text(el, "fullName") == rule.name
            assert _flag(el, "active") == rule.active
            assert _text(el, "errorMessage") == rule.message
            assert _text(el, "errorDisplayField") == rule.field
            formula = _text(el, "errorConditionFormula")
            assert _identifiers(formula) & fields == _identifiers(rule.condition) & fields, rule.name


class _Today(dt.date):
    def __add__(self, days):  # a formula's TODAY() + n counts days
        return dt.date.fromordinal(self.toordinal() + days)


def _formula_says_invalid(formula: str, record: dict, percent_fields: set[str], today: dt.date) -> bool:
    """Evaluate the few formula functions the package's rules use; a blank compared with a number is
    false, as a validation rule treats it."""
    class Blank:
        def __lt__(self, other): return False
        __gt__ = __le__ = __ge__ = __lt__

    env = {k: (Blank() if v is None else (v / 100 if k in percent_fields else v)) for k, v in record.items()}
    functions = {"AND": lambda *a: all(a), "OR": lambda *a: any(a), "ISPICKVAL": lambda v, s: v == s,
                 "ISBLANK": lambda v: isinstance(v, Blank),
                 "TODAY": lambda: _Today(today.year, today.month, today.day)}
    return bool(eval(formula, {"__builtins__": {}, **functions}, env))  # noqa: S307 - our own package's text


# Values that sit on either side of every rule's condition, so each rule is seen both passing and failing.
RULE_PROBES = {
    "Opportunity": {"StageName": ["Closed Won", "Prospecting"], "Amount": [None, Decimal("5000")],
                    "Cloud_Marketplace__c": ["AWS Marketplace", "Azure Marketplace", None],
                    "Marketplace_Offer_Id__c": [None, "offer-1"], "CloseDate": [30, 31, -3]},
    "Co_Sell_Participant__c": {"Split_Percent__c": [None, Decimal("-0.01"), Decimal("0"), Decimal("100"),
                                                    Decimal("100.01"), Decimal("55.5")]},
    "Deal_Registration__c": {"Status__c": ["Rejected", "Approved", "Submitted"],
                             "Rejection_Reason__c": [None, "Duplicate"], "Expiry_Date__c": [None, 90]},
}


@pytest.mark.parametrize("object_name", sorted(RULE_PROBES))
def test_each_rule_formula_refuses_exactly_what_the_emulator_refuses(org, object_name):
    """The emulator checks the SOQL condition, a real org the formula the package deploys; over a grid
    of records on both sides of each rule, the two must refuse the same records."""
    obj = org.get_object(object_name)
    percent = {f.name for f in obj.fields if f.type == "percent"}
    formulas = {r.message: _parse(SOURCE / "objects" / object_name / "validationRules" /
                                  f"{r.name}.validationRule-meta.xml").find("m:errorConditionFormula", NS).text
                for r in obj.validation_rules}
    probes = RULE_PROBES[object_name]
    emu = Emulator("cosell_demo", records=0)
    try:
        today = emu.clock.now().date()
        account = emu.create("Account", {"Name": "Probe"})
        opportunity = emu.create("Opportunity", {"Name": "Parent", "StageName": "Prospecting",
                                                 "CloseDate": today.isoformat(), "AccountId": account})
        base = {"Opportunity": {"Name": "Probe", "AccountId": account},
                "Co_Sell_Participant__c": {"Opportunity__c": opportunity, "Role__c": "Vendor"},
                "Deal_Registration__c": {"Opportunity__c": opportunity}}[object_name]
        refused_somewhere = passed_somewhere = 0
        for combo in itertools.product(*probes.values()):
            record = dict(zip(probes, combo))
            for key in ("CloseDate", "Expiry_Date__c"):
                if isinstance(record.get(key), int):
                    record[key] = today + dt.timedelta(days=record[key])
            expected = {msg for msg, formula in formulas.items()
                        if _formula_says_invalid(formula, record, percent, today)}
            wire = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in record.items()}
            try:
                emu.create(object_name, {**base, **wire})
                refused = set()
            except RecordError as exc:
                refused = {e.message for e in exc.errors}
            # the emulator stops at the first failing rule; the formula must fail that one too
            assert (refused <= expected) if refused else not expected, (record, refused, expected)
            refused_somewhere += bool(refused)
            passed_somewhere += not refused
        assert refused_somewhere and passed_somewhere
    finally:
        emu.stop()


def test_permission_set_grants_every_field_the_mapping_writes(org, mapping):
    el = _parse(SOURCE / "permissionsets" / "Cosell_Connector_Integration.permissionset-meta.xml")
    fields = {_text(fp, "field"): (_flag(fp, "readable"), _flag(fp, "editable"))
              for fp in el.findall("m:fieldPermissions", NS)}
    objects = {_text(op, "object"): op for op in el.findall("m:objectPermissions", NS)}
    checked = 0
    for name, om in mapping.objects.items():
        obj = org.get_object(name)
        if om.direction != "read_write":
            continue
        op = objects[name]
        for perm in ("allowRead", "allowEdit", "allowDelete", "viewAllRecords", "modifyAllRecords"):
            assert _flag(op, perm), f"{name}: {perm}"
        assert _flag(op, "allowCreate") == om.create
        for f in obj.fields:
            if not om.selects(f.name) or f.name in SYSTEM_FIELDS or not (f.createable or f.updateable):
                continue
            key = f"{name}.{f.name}"
            if f.describe()["permissionable"]:
                assert fields.get(key) == (True, True), f"{key} is written by the connector but not granted"
                checked += 1
            else:
                # a required or system field is not permissionable: listing it fails the deploy
                assert key not in fields, f"{key} is not permissionable and must not be listed"
        assert fields[f"{name}.{om.external_id}"] == (True, True)
    assert checked > 40


def test_permission_set_lists_only_fields_the_org_has_and_permits(org):
    el = _parse(SOURCE / "permissionsets" / "Cosell_Connector_Integration.permissionset-meta.xml")
    for fp in el.findall("m:fieldPermissions", NS):
        object_name, field_name = _text(fp, "field").split(".")
        f = org.get_object(object_name).field(field_name)
        assert f is not None and f.describe()["permissionable"], _text(fp, "field")
        assert not _flag(fp, "editable") or f.createable or f.updateable, _text(fp, "field")
    visible = {_text(rt, "recordType") for rt in el.findall("m:recordTypeVisibilities", NS)}
    assert visible == {f"Opportunity.{rt.developer_name}" for rt in org.get_object("Opportunity").record_types}


def test_record_types_and_their_sales_processes_agree_with_the_emulator(org):
    opportunity = org.get_object("Opportunity")
    for rt in opportunity.record_types:
        el = _parse(SOURCE / "objects/Opportunity/recordTypes" / f"{rt.developer_name}.recordType-meta.xml")
        assert (_text(el, "label"), _flag(el, "active")) == (rt.name, rt.active)
        process = _parse(SOURCE / "objects/Opportunity/businessProcesses" /
                         f"{_text(el, 'businessProcess')}.businessProcess-meta.xml")
        stages = [_text(v, "fullName") for v in process.findall("m:values", NS)]
        assert stages == opportunity.field("StageName").active_values()


def test_a_changed_field_in_the_org_definition_is_noticed(org, mapping):
    """Adversarial: the drift test itself must fail when the org definition moves; a longer Portal ID in
    the emulator renders a field the committed package does not have."""
    moved = org.model_copy(deep=True)
    moved.get_object("Deal_Registration__c").field("Portal_Id__c").length = 40
    files = render_package(moved, mapping)
    path = "force-app/main/default/objects/Deal_Registration__c/fields/Portal_Id__c.field-meta.xml"
    assert files[path] != (ROOT / path).read_text()


def test_two_lookups_naming_their_children_alike_are_refused(org, mapping):
    clashing = org.model_copy(deep=True)
    clashing.get_object("Deal_Registration__c").field("End_Customer_Account__c").child_relationship = None
    with pytest.raises(PackageError, match="End_Customer_Account__c.*Deal_Registrations"):
        render_package(clashing, mapping)


def test_connected_app_embeds_the_certificate_and_no_secret(org, mapping, tmp_path):
    pem = tmp_path / "server.crt"

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cosell-connector")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files = render_package(org, mapping, certificate=Certificate.from_pem(pem), contact_email="admin@example.com")
    app = ET.fromstring(files["force-app/main/default/connectedApps/Cosell_Connector.connectedApp-meta.xml"])
    body = _text(app.find("m:oauthConfig", NS), "certificate")
    assert x509.load_der_x509_certificate(base64.b64decode(body)) == cert
    assert [s.text for s in app.findall("m:oauthConfig/m:scopes", NS)] == ["Api", "RefreshToken"]
    assert app.find("m:oauthConfig/m:consumerSecret", NS) is None
    assert _flag(app.find("m:oauthConfig", NS), "isAdminApproved")


def test_a_file_without_a_certificate_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    with pytest.raises(PackageError, match=r"key\.pem: no PEM certificate"):
        Certificate.from_pem(bad)
