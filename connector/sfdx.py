"""The Salesforce half of the connector as a Salesforce DX source package: the custom objects,
fields, validation rules and record types the mapping syncs, and a permission set for the
integration user, rendered from the same org definition the emulator serves.

It renders text only and never talks to an org; `sf project deploy start` deploys what it writes.
A definition a real org would refuse (a type metadata cannot express, two child relationships
of one name) is refused here, with the object and field named."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from connector.emulator.orgdef import FieldDef, ObjectDef, OrgDef, RecordTypeDef, ValidationRule
from connector.mapping import Mapping

__all__ = ["Certificate", "PackageError", "PERMISSION_SET", "CONNECTED_APP", "render_package", "write_package"]

NAMESPACE = "http://soap.sforce.com/2006/04/metadata"
SOURCE_DIR = "force-app/main/default"
PERMISSION_SET = "Cosell_Connector_Integration"
CONNECTED_APP = "Cosell_Connector"
# Salesforce assigns an org's key prefixes, so the package cannot carry them; these it can.
_METADATA_TYPES = {
    "string": "Text", "email": "Email", "phone": "Phone", "url": "Url", "picklist": "Picklist",
    "multipicklist": "MultiselectPicklist", "boolean": "Checkbox", "double": "Number",
    "currency": "Currency", "percent": "Percent", "date": "Date", "datetime": "DateTime", "time": "Time",
}
_LONG_TEXT_VISIBLE_LINES = 3


class PackageError(ValueError):
    """The org definition or mapping cannot become a package a real org would accept; says where."""


@dataclass(frozen=True)
class Certificate:
    """The connected app's X.509 certificate, as the ConnectedApp metadata embeds it (PEM body)."""

    body: str

    @classmethod
    def from_pem(cls, path: Path) -> Certificate:
        text = path.read_text(encoding="utf-8")
        match = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", text, re.S)
        if match is None:
            raise PackageError(f"{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in this file; give the "
                               "certificate whose private key signs the connector's JWT assertions")
        body = "".join(match.group(1).split())
        try:
            base64.b64decode(body, validate=True)
        except ValueError as exc:
            raise PackageError(f"{path}: the certificate is not valid base64: {exc}") from None
        return cls(body)


# -- XML ------------------------------------------------------------------------------------------

def _sub(parent: ET.Element, tag: str, value: object = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if value is not None:
        el.text = str(value).lower() if isinstance(value, bool) else str(value)
    return el


def _document(root: ET.Element) -> str:
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _root(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=NAMESPACE)


# -- components -----------------------------------------------------------------------------------

def _custom_field(obj: ObjectDef, f: FieldDef) -> str:
    root = _root("CustomField")
    _sub(root, "fullName", f.name)
    if f.type == "reference":
        kind = "MasterDetail" if f.master_detail else "Lookup"
        if len(f.reference_to) != 1:
            raise PackageError(f"{obj.name}.{f.name}: a custom lookup points at one object, not {f.reference_to}")
    elif f.type == "textarea":
        kind = "LongTextArea" if f.length > 255 else "TextArea"
    elif f.type in _METADATA_TYPES:
        kind = _METADATA_TYPES[f.type]
    else:
        raise PackageError(f"{obj.name}.{f.name}: type {f.type!r} has no custom-field form; custom fields are "
                           f"{', '.join(sorted(_METADATA_TYPES))}, reference or textarea")
    if f.type == "boolean":
        _sub(root, "defaultValue", bool(f.default_value))
    if kind == "Lookup":
        _sub(root, "deleteConstraint", "SetNull")
    if f.external_id:
        _sub(root, "externalId", True)
    _sub(root, "label", f.label_text)
    if kind in ("Text", "LongTextArea"):
        _sub(root, "length", f.length)
    if f.type in ("double", "currency", "percent"):
        _sub(root, "precision", f.precision)
    if kind in ("Lookup", "MasterDetail"):
        _sub(root, "referenceTo", f.reference_to[0])
        _sub(root, "relationshipLabel", obj.label_plural or obj.label_text + "s")
        _sub(root, "relationshipName", _child_relationship(obj, f))
    if kind == "MasterDetail":
        _sub(root, "relationshipOrder", 0)
        _sub(root, "reparentableMasterDetail", f.updateable)
    if not f.nillable and f.type != "boolean" and kind != "MasterDetail":
        _sub(root, "required", True)
    if f.type in ("double", "currency", "percent"):
        _sub(root, "scale", f.scale)
    _sub(root, "trackHistory", False)
    _sub(root, "type", kind)
    if f.unique:
        _sub(root, "unique", True)
        if kind == "Text":
            _sub(root, "caseSensitive", f.case_sensitive)
    if f.type in ("picklist", "multipicklist"):
        value_set = _sub(root, "valueSet")
        _sub(value_set, "restricted", f.restricted)
        definition = _sub(value_set, "valueSetDefinition")
        _sub(definition, "sorted", False)
        for p in f.picklist:
            value = _sub(definition, "value")
            _sub(value, "fullName", p.value)
            _sub(value, "default", p.default)
            _sub(value, "label", p.label or p.value)
            if not p.active:
                _sub(value, "isActive", False)
    if kind == "LongTextArea":
        _sub(root, "visibleLines", _LONG_TEXT_VISIBLE_LINES)
    if kind == "MasterDetail":
        _sub(root, "writeRequiresMasterRead", f.master_detail)
    # Salesforce writes a field's elements in alphabetical order; so does this, for clean diffs
    # against `sf project retrieve start`.
    root[:] = sorted(root, key=lambda el: (el.tag != "fullName", el.tag))
    return _document(root)


def _child_relationship(obj: ObjectDef, f: FieldDef) -> str:
    return f.child_relationship or (obj.name.removesuffix("__c") + "s")


def _custom_object(obj: ObjectDef) -> str:
    root = _root("CustomObject")
    _sub(root, "deploymentStatus", "Deployed")
    _sub(root, "enableActivities", False)
    _sub(root, "enableBulkApi", True)
    _sub(root, "enableHistory", False)
    _sub(root, "enableReports", True)
    _sub(root, "enableSearch", obj.searchable)
    _sub(root, "enableSharing", True)
    _sub(root, "enableStreamingApi", True)
    _sub(root, "label", obj.label_text)
    name = obj.field("Name")
    if name is None:
        raise PackageError(f"{obj.name}: a custom object has a Name field (text or auto-number)")
    name_field = _sub(root, "nameField")
    if name.auto_number:
        _sub(name_field, "displayFormat", _auto_number_format(obj))
    _sub(name_field, "label", name.label_text)
    _sub(name_field, "type", "AutoNumber" if name.auto_number else "Text")
    _sub(root, "pluralLabel", obj.label_plural or obj.label_text + "s")
    # a detail record is shared through its master; a record with an owner is shared read/write
    _sub(root, "sharingModel", "ControlledByParent" if _has_master(obj) else "ReadWrite")
    _sub(root, "visibility", "Public")
    return _document(root)


def _auto_number_format(obj: ObjectDef) -> str:
    initials = "".join(word[0] for word in obj.name.removesuffix("__c").split("_") if word)
    return f"{initials.upper()}-{{000000}}"


def _has_master(obj: ObjectDef) -> bool:
    return any(f.master_detail for f in obj.fields)


def _validation_rule(obj: ObjectDef, rule: ValidationRule) -> str:
    if not rule.formula:
        raise PackageError(f"{obj.name} validation rule {rule.name}: no formula; give `formula:` (the rule in "
                           "Salesforce's formula language) next to its `condition:`")
    root = _root("ValidationRule")
    _sub(root, "fullName", rule.name)
    _sub(root, "active", rule.active)
    _sub(root, "errorConditionFormula", rule.formula)
    if rule.field:
        _sub(root, "errorDisplayField", rule.field)
    _sub(root, "errorMessage", rule.message)
    return _document(root)


def _business_process(obj: ObjectDef, name: str) -> str:
    stage = obj.field("StageName")
    if stage is None:
        raise PackageError(f"{obj.name}: a sales process lists the stages, and the object has no StageName")
    root = _root("BusinessProcess")
    _sub(root, "fullName", name)
    _sub(root, "isActive", True)
    for i, value in enumerate(stage.active_values()):
        el = _sub(root, "values")
        _sub(el, "fullName", value)
        _sub(el, "default", i == 0)
    return _document(root)


def _record_type(obj: ObjectDef, rt: RecordTypeDef) -> str:
    root = _root("RecordType")
    _sub(root, "fullName", rt.developer_name)
    _sub(root, "active", rt.active)
    if obj.name == "Opportunity":
        # an opportunity record type needs a sales process: which stages it offers
        _sub(root, "businessProcess", rt.developer_name)
    _sub(root, "label", rt.name or rt.developer_name)
    return _document(root)


# -- what the mapping needs -----------------------------------------------------------------------

def _mapped(org: OrgDef, mapping: Mapping) -> list[ObjectDef]:
    objects = []
    for name in mapping.objects:
        obj = org.get_object(name)
        if obj is None:
            raise PackageError(f"the mapping names {name}, which org {org.name!r} does not define")
        objects.append(obj)
    return objects


def _package_fields(obj: ObjectDef, mapping: Mapping) -> list[FieldDef]:
    """The custom fields the package creates: those the mapping syncs (a custom object's Name is its
    object's nameField, not a field)."""
    om = mapping.object(obj.name)
    assert om is not None
    return [f for f in obj.fields if f.custom and f.name != "Name" and om.selects(f.name)]


def _carries_permissions(obj: ObjectDef) -> bool:
    # Object permissions exist for objects whose records are shared (custom objects and standard
    # objects with an owner); setup objects (User, CurrencyType, territories) are read by any API user.
    return bool(obj.custom) or obj.has_owner


def _permission_set(org: OrgDef, mapping: Mapping) -> str:
    root = _root("PermissionSet")
    _sub(root, "description", "What the cosell-connector integration user reads and writes: the co-sell "
                              "objects and every field the mapping syncs. Generated by `cosell schema package`.")
    field_perms: list[tuple[str, bool]] = []
    object_perms: list[tuple[ObjectDef, bool, bool]] = []
    record_types: list[str] = []
    for obj in _mapped(org, mapping):
        if not _carries_permissions(obj):
            continue
        om = mapping.object(obj.name)
        assert om is not None
        writes = om.direction == "read_write"
        object_perms.append((obj, writes, writes and om.create))
        for f in obj.fields:
            if om.selects(f.name) and f.is_permissionable:
                field_perms.append((f"{obj.name}.{f.name}", writes and (f.createable or f.updateable)))
        record_types += [f"{obj.name}.{rt.developer_name}" for rt in obj.record_types if rt.active]
    for field, editable in sorted(field_perms):
        el = _sub(root, "fieldPermissions")
        _sub(el, "editable", editable)
        _sub(el, "field", field)
        _sub(el, "readable", True)
    _sub(root, "hasActivationRequired", False)
    _sub(root, "label", "Cosell Connector Integration")
    for obj, writes, creates in sorted(object_perms, key=lambda p: p[0].name):
        el = _sub(root, "objectPermissions")
        _sub(el, "allowCreate", creates)
        _sub(el, "allowDelete", writes)  # deletes travel both ways
        _sub(el, "allowEdit", writes)
        _sub(el, "allowRead", True)
        _sub(el, "modifyAllRecords", writes)  # the connector writes records whoever owns them
        _sub(el, "object", obj.name)
        _sub(el, "viewAllRecords", True)  # and reads all of them, whatever the sharing model
    for name in sorted(record_types):
        el = _sub(root, "recordTypeVisibilities")
        _sub(el, "recordType", name)
        _sub(el, "visible", True)
    el = _sub(root, "userPermissions")
    _sub(el, "enabled", True)
    _sub(el, "name", "ApiEnabled")
    return _document(root)


def _connected_app(certificate: Certificate, contact_email: str) -> str:
    root = _root("ConnectedApp")
    _sub(root, "contactEmail", contact_email)
    _sub(root, "description", "cosell-connector: server-to-server sync, OAuth 2.0 JWT bearer flow.")
    _sub(root, "label", "Cosell Connector")
    oauth = _sub(root, "oauthConfig")
    # the JWT bearer flow never redirects; the callback URL is required but unused
    _sub(oauth, "callbackUrl", "http://localhost:1717/OauthRedirect")
    _sub(oauth, "certificate", certificate.body)
    _sub(oauth, "isAdminApproved", True)
    _sub(oauth, "isConsumerSecretOptional", True)
    for scope in ("Api", "RefreshToken"):
        _sub(oauth, "scopes", scope)
    policy = _sub(root, "oauthPolicy")
    _sub(policy, "ipRelaxation", "ENFORCE")
    _sub(policy, "refreshTokenPolicy", "infinite")
    return _document(root)


def _check_relationship_names(objects: Iterable[ObjectDef], mapping: Mapping) -> None:
    seen: dict[tuple[str, str], str] = {}
    for obj in objects:
        for f in _package_fields(obj, mapping):
            if f.type != "reference":
                continue
            key = (f.reference_to[0], _child_relationship(obj, f).lower())
            if key in seen:
                raise PackageError(f"{obj.name}.{f.name} and {seen[key]} both name their children of "
                                   f"{key[0]} {_child_relationship(obj, f)!r}; a real org refuses the second. "
                                   "Give one of them `child_relationship:` in the org definition")
            seen[key] = f"{obj.name}.{f.name}"


def render_package(org: OrgDef, mapping: Mapping, *, certificate: Certificate | None = None,
                   contact_email: str | None = None) -> dict[str, str]:
    """The package's files by path (relative to its root) for the objects and fields `mapping` syncs.
    The connected app is included when its certificate is given (it holds no secret, but without the
    certificate it cannot check the connector's JWT assertions)."""
    objects = _mapped(org, mapping)
    _check_relationship_names(objects, mapping)
    files: dict[str, str] = {"sfdx-project.json": json.dumps({
        "packageDirectories": [{"path": "force-app", "default": True}],
        "name": "cosell-connector", "namespace": "", "sourceApiVersion": org.api_version,
    }, indent=2) + "\n"}
    for obj in objects:
        base = f"{SOURCE_DIR}/objects/{obj.name}"
        fields = _package_fields(obj, mapping)
        if obj.custom:
            files[f"{base}/{obj.name}.object-meta.xml"] = _custom_object(obj)
        for f in fields:
            files[f"{base}/fields/{f.name}.field-meta.xml"] = _custom_field(obj, f)
        for rule in obj.validation_rules:
            files[f"{base}/validationRules/{rule.name}.validationRule-meta.xml"] = _validation_rule(obj, rule)
        for rt in obj.record_types:
            files[f"{base}/recordTypes/{rt.developer_name}.recordType-meta.xml"] = _record_type(obj, rt)
            if obj.name == "Opportunity":
                files[f"{base}/businessProcesses/{rt.developer_name}.businessProcess-meta.xml"] = \
                    _business_process(obj, rt.developer_name)
    files[f"{SOURCE_DIR}/permissionsets/{PERMISSION_SET}.permissionset-meta.xml"] = _permission_set(org, mapping)
    if certificate is not None:
        if not contact_email:
            raise PackageError("the connected app needs a contact email (--contact-email): Salesforce requires one")
        files[f"{SOURCE_DIR}/connectedApps/{CONNECTED_APP}.connectedApp-meta.xml"] = \
            _connected_app(certificate, contact_email)
    return dict(sorted(files.items()))


def write_package(folder: Path, files: dict[str, str]) -> list[Path]:
    """Write the rendered files under `folder`, leaving any other file there alone (a README, say)."""
    written = []
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
