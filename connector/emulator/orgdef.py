"""Org definitions: the metadata of an emulated org (objects, fields with their
describe attributes, record types, validation rules, currencies, territories)
and the describe payloads built from it.

An org comes from a YAML file (the shipped `cosell_demo`, or an admin's own) or
from a folder of real describe payloads; both end up as the same model, and the
describe JSON served to clients is rendered from it in the real shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

FieldType = Literal[
    "id", "reference", "string", "textarea", "picklist", "multipicklist", "combobox",
    "email", "phone", "url", "boolean", "int", "double", "currency", "percent", "date",
    "datetime", "time", "address", "location", "long", "base64", "encryptedstring", "anyType",
]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)

SOAP_TYPES: dict[str, str] = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "textarea": "xsd:string",
    "picklist": "xsd:string", "multipicklist": "xsd:string", "combobox": "xsd:string",
    "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string", "boolean": "xsd:boolean",
    "int": "xsd:int", "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
    "date": "xsd:date", "datetime": "xsd:dateTime", "time": "xsd:time", "address": "urn:address",
    "location": "urn:location", "long": "xsd:long", "base64": "xsd:base64Binary",
    "encryptedstring": "xsd:string", "anyType": "xsd:anyType",
}
TEXT_TYPES = frozenset({"string", "textarea", "picklist", "multipicklist", "combobox", "email",
                        "phone", "url", "encryptedstring"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent", "long"})
ADDRESS_COMPONENTS = {"Street": "street", "City": "city", "State": "state", "PostalCode": "postalCode",
                      "Country": "country", "Latitude": "latitude", "Longitude": "longitude",
                      "GeocodeAccuracy": "geocodeAccuracy"}
UNFILTERABLE_TYPES = frozenset({"address", "location", "base64"})
UNSORTABLE_TYPES = frozenset({"address", "location", "multipicklist", "base64"})
UNGROUPABLE_TYPES = frozenset({"double", "currency", "percent", "textarea", "address", "location", "datetime",
                               "multipicklist", "base64"})
LONG_TEXT = 255  # a textarea longer than this is a long text area: never filtered or sorted
MASTER_RECORD_TYPE_ID = "012000000000000AAA"
AUDIT_FIELDS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp")


class OrgDefinitionError(ValueError):
    """An org definition (YAML file or describe folder) that cannot be used; says where and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PicklistValue(_Model):
    value: str
    label: str | None = None
    active: bool = True
    default: bool = False
    valid_for: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str) else data

    def describe(self) -> dict[str, Any]:
        return {"active": self.active, "defaultValue": self.default, "label": self.label or self.value,
                "validFor": self.valid_for, "value": self.value}


class FieldDef(_Model):
    """One field with the describe attributes the connector relies on."""

    name: str
    type: FieldType
    label: str | None = None
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    custom: bool | None = None
    calculated: bool = False
    formula: str | None = None
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    case_sensitive: bool = False
    name_field: bool = False
    auto_number: bool = False
    reference_to: list[str] = Field(default_factory=list)
    relationship_name: str | None = None
    # The parent's name for this lookup's children (metadata's relationshipName, without __r); when
    # absent it is derived from the child object's name, which clashes when two lookups of one object
    # point at the same parent, as a real org refuses.
    child_relationship: str | None = None
    master_detail: bool = False
    compound_field_name: str | None = None
    extra_type_info: str | None = None
    picklist: list[PicklistValue] = Field(default_factory=list, alias="values")
    restricted: bool = False
    default_value: Any = None
    # Whether field-level security applies (a permission set may list it); derived when not given.
    permissionable: bool | None = None
    # A real describe's field as it came, served as given: the model's values replace it only where
    # they changed since it was loaded (an admin's change_field), or where the payload lacks a key.
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)
    _as_loaded: dict[str, Any] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _derive(self) -> FieldDef:
        if self.custom is None:
            self.custom = self.name.endswith("__c")
        if self.type == "string" and not self.length:
            self.length = 255
        if self.type in ("picklist", "multipicklist") and not self.length:
            self.length = 255 if self.type == "picklist" else 4099
        if self.type in ("id", "reference"):
            self.length = 18
        if self.type == "textarea" and not self.length:
            self.length = 32768
        if self.type in ("email",) and not self.length:
            self.length = 80
        if self.type in ("phone",) and not self.length:
            self.length = 40
        if self.type in ("url",) and not self.length:
            self.length = 255
        if self.type == "int" and not self.digits:
            self.digits = 9
        if self.type in ("currency", "double", "percent") and not self.precision:
            self.precision, self.scale = 18, self.scale or 2
        if self.calculated or self.auto_number:
            self.createable = self.updateable = False
        if self.external_id or self.type == "id":
            self.id_lookup = True
        if self.type == "address":
            self.createable = self.updateable = False
        return self

    @property
    def label_text(self) -> str:
        return self.label or self.name.removesuffix("__c").replace("_", " ")

    @property
    def is_permissionable(self) -> bool:
        if self.permissionable is not None:
            return self.permissionable
        # a checkbox is never null yet its access is set per field; other required fields are not
        return (self.nillable or (bool(self.custom) and self.type == "boolean")) and not self.calculated \
            and self.type != "id"

    @property
    def filterable(self) -> bool:
        """Whether WHERE may use it: as a describe payload says, else as Salesforce decides by type."""
        return bool(self.raw.get("filterable", self.type not in UNFILTERABLE_TYPES and not self._long_text))

    @property
    def sortable(self) -> bool:
        return bool(self.raw.get("sortable", self.type not in UNSORTABLE_TYPES and not self._long_text))

    @property
    def groupable(self) -> bool:
        """Whether GROUP BY may use it: as a describe payload says, else by type."""
        return bool(self.raw.get("groupable", self.type not in UNGROUPABLE_TYPES))

    @property
    def _long_text(self) -> bool:
        return self.type == "textarea" and self.length > LONG_TEXT

    def active_values(self) -> list[str]:
        return [p.value for p in self.picklist if p.active]

    def describe(self) -> dict[str, Any]:
        """The field as `fields[]` of a real sObject describe (all 55 keys of v59)."""
        out = self._rendered()
        if not self.raw:
            return out
        return _as_given(self.raw, out, self._as_loaded)

    def keep_as_loaded(self) -> None:
        """Remember the rendering of a field just loaded from a describe payload, so later changes show."""
        self._as_loaded = self._rendered()

    def _rendered(self) -> dict[str, Any]:
        t = self.type
        byte_length = self.length * 3 if t in TEXT_TYPES or t in ("id", "reference") else 0
        out: dict[str, Any] = {
            "aggregatable": t not in ("textarea", "address", "location", "multipicklist", "base64"),
            "aiPredictionField": False, "autoNumber": self.auto_number, "byteLength": byte_length,
            "calculated": self.calculated, "calculatedFormula": self.formula,
            "cascadeDelete": False, "caseSensitive": self.case_sensitive,
            "compoundFieldName": self.compound_field_name, "controllerName": None,
            "createable": self.createable, "custom": self.custom,
            "defaultValue": self.default_value, "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted_on_create, "dependentPicklist": False,
            "deprecatedAndHidden": False, "digits": self.digits if t == "int" else 0,
            "displayLocationInDecimal": False, "encrypted": t == "encryptedstring",
            "externalId": self.external_id, "extraTypeInfo": self.extra_type_info,
            "filterable": self.filterable,
            "filteredLookupInfo": None, "formulaTreatNullNumberAsZero": False,
            "groupable": self.groupable,
            "highScaleNumber": False, "htmlFormatted": False, "idLookup": self.id_lookup,
            "inlineHelpText": None, "label": self.label_text,
            "length": self.length if t in TEXT_TYPES or t in ("id", "reference") else 0,
            "mask": None, "maskType": None, "name": self.name, "nameField": self.name_field,
            "namePointing": t == "reference" and len(self.reference_to) > 1,
            "nillable": self.nillable,
            # a checkbox is never null yet its access is set per field; other required fields are not
            "permissionable": self.is_permissionable,
            "picklistValues": [p.describe() for p in self.picklist],
            "polymorphicForeignKey": t == "reference" and len(self.reference_to) > 1,
            "precision": self.precision if t in ("double", "currency", "percent") else 0,
            "queryByDistance": False, "referenceTargetField": None,
            "referenceTo": list(self.reference_to), "relationshipName": self.relationship_name,
            "relationshipOrder": 0 if self.master_detail else None,
            "restrictedDelete": False, "restrictedPicklist": self.restricted,
            "scale": self.scale if t in ("double", "currency", "percent") else 0,
            "searchPrefilterable": False, "soapType": SOAP_TYPES[t],
            "sortable": self.sortable,
            "type": t, "unique": self.unique, "updateable": self.updateable,
            "writeRequiresMasterRead": self.master_detail,
        }
        if self.master_detail:
            out["cascadeDelete"] = True
        return out


def _as_given(raw: dict[str, Any], rendered: dict[str, Any], as_loaded: dict[str, Any] | None) -> dict[str, Any]:
    """`raw` in its own key order, with a rendered value only where it changed since loading, then the
    rendered keys the payload did not have."""
    out = {k: (rendered[k] if as_loaded is not None and k in rendered and rendered[k] != as_loaded.get(k) else v)
           for k, v in raw.items()}
    out.update({k: v for k, v in rendered.items() if k not in raw})
    return out


class RecordTypeDef(_Model):
    developer_name: str
    name: str | None = None
    active: bool = True
    default: bool = False
    record_type_id: str | None = None


class ValidationRule(_Model):
    """An error when `condition` (a SOQL WHERE expression on the record) is true. `formula` is the
    same rule in Salesforce's formula language, as the metadata package deploys it to a real org."""

    name: str
    condition: str
    formula: str | None = None
    message: str
    field: str | None = None
    active: bool = True


class ObjectDef(_Model):
    """One sObject: its flags, fields, record types and validation rules."""

    name: str
    label: str | None = None
    label_plural: str | None = None
    key_prefix: str
    custom: bool | None = None
    queryable: bool = True
    replicateable: bool = True
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    retrieveable: bool = True
    searchable: bool = True
    undeletable: bool = True
    triggerable: bool = True
    # Which server-maintained fields the object has; real objects differ (Territory2 has no
    # CreatedDate and no IsDeleted, CurrencyType has no IsDeleted).
    standard_fields: bool = True
    has_is_deleted: bool = True
    has_created: bool = True
    has_owner: bool = False
    has_name: bool | None = None
    currency: bool = False
    fields: list[FieldDef] = Field(default_factory=list)
    record_types: list[RecordTypeDef] = Field(default_factory=list)
    validation_rules: list[ValidationRule] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_from_mapping(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [{"name": name, **(spec or {})} for name, spec in value.items()]
        return value

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if len(value) != 3 or not value.isalnum():
            raise ValueError(f"a key prefix has 3 letters or digits, not {value!r}")
        return value

    @model_validator(mode="after")
    def _index(self) -> ObjectDef:
        if self.custom is None:
            self.custom = self.name.endswith("__c")
        self._reindex()
        return self

    def _reindex(self) -> None:
        self._by_lower = {f.name.lower(): f for f in self.fields}
        self._by_relationship = {f.relationship_name.lower(): f for f in self.fields
                                 if f.relationship_name}
        if len(self._by_lower) != len(self.fields):
            seen: set[str] = set()
            dupes = [f.name for f in self.fields if f.name.lower() in seen or seen.add(f.name.lower())]
            raise ValueError(f"object {self.name} defines fields more than once: {dupes}")

    # -- the SchemaLookup protocol of the SOQL compiler --------------------------------------
    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        return self._by_relationship.get(name.lower())

    @property
    def label_text(self) -> str:
        return self.label or self.name.removesuffix("__c").replace("_", " ")

    def add_field(self, fdef: FieldDef) -> None:
        if self.field(fdef.name):
            raise ValueError(f"{self.name}.{fdef.name} exists already")
        self.fields.append(fdef)
        self._reindex()

    def remove_field(self, name: str) -> FieldDef:
        fdef = self.field(name)
        if fdef is None:
            raise KeyError(f"{self.name} has no field {name}")
        self.fields.remove(fdef)
        self._reindex()
        return fdef

    def external_id_fields(self) -> list[FieldDef]:
        return [f for f in self.fields if f.external_id]

    def record_type_infos(self) -> list[dict[str, Any]]:
        infos = []
        any_default = any(rt.default for rt in self.record_types)
        for rt in self.record_types:
            infos.append({"active": rt.active, "available": True, "defaultRecordTypeMapping": rt.default,
                          "developerName": rt.developer_name, "master": False,
                          "name": rt.name or rt.developer_name, "recordTypeId": rt.record_type_id,
                          "urls": {"layout": f"/sobjects/{self.name}/describe/layouts/{rt.record_type_id}"}})
        infos.append({"active": True, "available": True, "defaultRecordTypeMapping": not any_default,
                      "developerName": "Master", "master": True, "name": "Master",
                      "recordTypeId": MASTER_RECORD_TYPE_ID,
                      "urls": {"layout": f"/sobjects/{self.name}/describe/layouts/{MASTER_RECORD_TYPE_ID}"}})
        return infos


class CurrencyDef(_Model):
    iso_code: str
    rate: float = 1.0
    decimal_places: int = 2
    corporate: bool = False
    active: bool = True
    label: str | None = None


class DatedRateDef(_Model):
    iso_code: str
    start_date: str
    rate: float


class MultiCurrency(_Model):
    currencies: list[CurrencyDef]
    dated_rates: list[DatedRateDef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_corporate(self) -> MultiCurrency:
        corporate = [c.iso_code for c in self.currencies if c.corporate]
        if len(corporate) != 1:
            raise ValueError(f"exactly one currency must be corporate, found {corporate or 'none'}")
        return self

    @property
    def corporate(self) -> str:
        return next(c.iso_code for c in self.currencies if c.corporate)


class Features(_Model):
    multi_currency: MultiCurrency | None = None
    territory_management: bool = False


class OrgDef(_Model):
    """The whole org: identity, features, objects, and the records it starts with."""

    name: str
    organization_id: str = "00DDm0000000001MAA"
    api_version: str = "59.0"
    features: Features = Field(default_factory=Features)
    objects: list[ObjectDef]
    # Fixed records created before generated data: {object: [record, ...]}; a record's `_ref` names
    # it and another record refers to it with the string "@name".
    seed: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    # Name of a data generator ("cosell_demo", or "generic" for orgs built from describe payloads).
    generator: str = "generic"
    # describeGlobal.json of a describe folder, served as given
    global_raw: dict[str, Any] | None = Field(None, exclude=True)
    # the objects a describe folder held when loaded
    _loaded_names: set[str] = PrivateAttr(default_factory=set)

    @field_validator("objects", mode="before")
    @classmethod
    def _objects_from_mapping(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [{"name": name, **(spec or {})} for name, spec in value.items()]
        return value

    @model_validator(mode="after")
    def _complete(self) -> OrgDef:
        self._reindex()
        for obj in self.objects:
            if obj.standard_fields:
                _add_standard_fields(obj, self.features.multi_currency)
        self._check_references()
        for row in self.seed.get("Organization", []):
            if row.get("Id") != self.organization_id:
                raise ValueError(f"the Organization row's Id {row.get('Id')!r} must be organization_id "
                                 f"{self.organization_id!r}: they are the same org")
        return self

    def _reindex(self) -> None:
        self._by_lower = {o.name.lower(): o for o in self.objects}
        self._by_prefix = {o.key_prefix: o for o in self.objects}

    def _check_references(self) -> None:
        for obj in self.objects:
            for f in obj.fields:
                if f.type == "reference":
                    missing = [t for t in f.reference_to if t.lower() not in self._by_lower]
                    # Polymorphic owners may point at objects an org does not mirror (Group); one
                    # known target is enough, none is a broken definition.
                    if obj.standard_fields and len(missing) == len(f.reference_to):
                        raise ValueError(f"{obj.name}.{f.name} refers to objects the org does not define: "
                                         f"{missing}")

    def get_object(self, name: str) -> ObjectDef | None:
        return self._by_lower.get(name.lower())

    def object_by_prefix(self, prefix: str) -> ObjectDef | None:
        return self._by_prefix.get(prefix)

    def add_object(self, obj: ObjectDef) -> None:
        if self.get_object(obj.name):
            raise ValueError(f"object {obj.name} exists already")
        if obj.standard_fields:
            _add_standard_fields(obj, self.features.multi_currency)
        self.objects.append(obj)
        self._reindex()

    def remove_object(self, name: str) -> ObjectDef:
        obj = self.get_object(name)
        if obj is None:
            raise KeyError(f"no object {name}")
        self.objects.remove(obj)
        self._reindex()
        return obj

    def child_relationships(self, parent: str) -> list[dict[str, Any]]:
        out = []
        for child in self.objects:
            for f in child.fields:
                if f.type == "reference" and parent in f.reference_to:
                    out.append({"cascadeDelete": f.master_detail, "childSObject": child.name,
                                "deprecatedAndHidden": False, "field": f.name, "junctionIdListNames": [],
                                "junctionReferenceTo": [],
                                "relationshipName": _child_relationship_name(child, f),
                                "restrictedDelete": False})
        return out

    # -- describe payloads -------------------------------------------------------------------
    def _object_flags(self, obj: ObjectDef) -> dict[str, Any]:
        base = f"/services/data/v{self.api_version}/sobjects/{obj.name}"
        flags = {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": obj.createable, "custom": obj.custom, "customSetting": False,
            "deepCloneable": False, "deletable": obj.deletable, "deprecatedAndHidden": False,
            "feedEnabled": False, "hasSubtypes": False, "isInterface": False, "isSubtype": False,
            "keyPrefix": obj.key_prefix, "label": obj.label_text,
            "labelPlural": obj.label_plural or obj.label_text + "s", "layoutable": True,
            "mergeable": False, "mruEnabled": False, "name": obj.name, "queryable": obj.queryable,
            "replicateable": obj.replicateable, "retrieveable": obj.retrieveable,
            "searchable": obj.searchable, "triggerable": obj.triggerable,
            "undeletable": obj.undeletable, "updateable": obj.updateable,
            "urls": {"compactLayouts": f"{base}/describe/compactLayouts", "rowTemplate": f"{base}/{{ID}}",
                     "approvalLayouts": f"{base}/describe/approvalLayouts", "listviews": f"{base}/listviews",
                     "describe": f"{base}/describe", "quickActions": f"{base}/quickActions",
                     "layouts": f"{base}/describe/layouts", "sobject": base},
        }
        # a payload's own flags win: the org said so (a custom setting stays one)
        return _as_given({k: v for k, v in obj.raw.items() if k in flags}, flags, None)

    def describe_global(self) -> dict[str, Any]:
        rendered = [self._object_flags(o) for o in self.objects]
        if self.global_raw is None:
            return {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": rendered}
        # describeGlobal.json as given: every object the org listed, described here or not (an object
        # the org lists but the folder lacks answers NOT_FOUND to describe, as one the user cannot see
        # does), then objects added since; objects removed since are left out.
        removed = self._loaded_names - {o.name for o in self.objects}
        listed = [entry for entry in self.global_raw.get("sobjects", []) if entry.get("name") not in removed]
        names = {entry.get("name") for entry in listed}
        out = {k: v for k, v in self.global_raw.items()}
        out["sobjects"] = listed + [entry for entry in rendered if entry["name"] not in names]
        return out

    def describe_sobject(self, name: str) -> dict[str, Any]:
        obj = self.get_object(name)
        if obj is None:
            raise KeyError(name)
        out = self._object_flags(obj)
        children = self.child_relationships(obj.name)
        out.update({
            "actionOverrides": [],
            "childRelationships": children,
            "compactLayoutable": True, "defaultImplementation": None, "extendedBy": None,
            "extendsInterfaces": None, "fields": [f.describe() for f in obj.fields],
            "implementedBy": None, "implementsInterfaces": None, "listviewable": None,
            "lookupLayoutable": None, "namedLayoutInfos": [], "networkScopeFieldName": None,
            "recordTypeInfos": obj.record_type_infos(), "searchLayoutable": True,
            "sobjectDescribeOption": "FULL", "supportedScopes": [{"label": "All records", "name": "everything"}],
        })
        if not obj.raw:
            return out
        # a payload is served as it came, with each field as given and the children it listed, plus
        # the lookups of objects added since that it could not list
        given = dict(obj.raw)
        given["fields"] = out["fields"]
        listed = list(given.get("childRelationships") or [])
        known = {(c.get("childSObject"), c.get("field")) for c in listed}
        given["childRelationships"] = listed + [c for c in children
                                                if (c["childSObject"], c["field"]) not in known
                                                and c["childSObject"] not in self._loaded_names]
        return _as_given(given, out, None)


    def describe_layouts(self, name: str) -> dict[str, Any]:
        """`describe/layouts/`: the record type mappings, each with the picklist values its record type
        offers. REST API, sObject Layouts: an object with more than one record type answers null for
        `layouts` (ask `describe/layouts/{recordTypeId}`); one with none answers its one layout."""
        obj = self.get_object(name)
        if obj is None:
            raise KeyError(name)
        picklists = [{"picklistName": f.name, "picklistValues": [p.describe() for p in f.picklist if p.active]}
                     for f in obj.fields if f.type in ("picklist", "multipicklist") and f.updateable]
        layout_id = self._layout_id(obj)
        mappings = []
        for info in obj.record_type_infos():
            mapping = {k: info[k] for k in ("active", "available", "defaultRecordTypeMapping", "developerName")}
            mapping.update({"layoutId": layout_id, "master": info["master"], "name": info["name"],
                            "picklistsForRecordType": picklists, "recordTypeId": info["recordTypeId"],
                            "urls": info["urls"]})
            mappings.append(mapping)
        return {"layouts": None if len(obj.record_types) > 1 else [self._layout(obj)],
                "recordTypeMappings": mappings, "recordTypeSelectorRequired": [len(obj.record_types) > 1]}

    def describe_layout(self, name: str, record_type_id: str) -> dict[str, Any] | None:
        """`describe/layouts/{recordTypeId}`: the layout of that record type, or None for an Id the
        object does not have."""
        obj = self.get_object(name)
        if obj is None:
            raise KeyError(name)
        known = {info["recordTypeId"] for info in obj.record_type_infos()}
        return self._layout(obj) if record_type_id in known else None

    def _layout_id(self, obj: ObjectDef) -> str:
        from connector.emulator.ids import make_id

        return make_id("00h", self.objects.index(obj) + 1)

    def _layout(self, obj: ObjectDef) -> dict[str, Any]:
        # one section of the fields a user edits; the emulator keeps no page-layout design
        items = [{"editableForNew": f.createable, "editableForUpdate": f.updateable, "label": f.label_text,
                  "layoutComponents": [{"details": f.describe(), "displayLines": 1, "tabOrder": i + 1,
                                        "type": "Field", "value": f.name}],
                  "placeholder": False, "required": not f.nillable and f.createable and f.type != "boolean"}
                 for i, f in enumerate(f for f in obj.fields if f.createable or f.updateable)]
        rows = [{"layoutItems": items[i:i + 2], "numItems": len(items[i:i + 2])} for i in range(0, len(items), 2)]
        section = {"collapsed": False, "columns": 2, "heading": "Information", "layoutRows": rows,
                   "layoutSectionId": self._layout_id(obj).replace("00h", "01B", 1), "parentLayoutId":
                   self._layout_id(obj), "rows": len(rows), "tabOrder": "TopToBottom", "useCollapsibleSection":
                   False, "useHeading": True}
        return {"buttonLayoutSection": {"detailButtons": []}, "detailLayoutSections": [section],
                "editLayoutSections": [section], "feedView": None, "highlightsPanelLayoutSection": None,
                "id": self._layout_id(obj), "multirowEditLayoutSections": [], "offlineLinks": [],
                "quickActionList": {"quickActionListItems": []}, "relatedContent": None, "relatedLists": [],
                "saveOptions": []}


def _child_relationship_name(child: ObjectDef, f: FieldDef) -> str | None:
    if f.relationship_name is None:
        return None
    if f.child_relationship:
        return f.child_relationship + ("__r" if f.custom else "")
    if child.custom:
        return child.name.removesuffix("__c") + "s__r"
    plural = child.name[:-1] + "ies" if child.name.endswith("y") else child.name + "s"
    # a standard object's lookup to its own kind lists children: Account.ParentId -> ChildAccounts
    return ("Child" + plural) if child.name in f.reference_to else plural


def _add_standard_fields(obj: ObjectDef, currency: MultiCurrency | None) -> None:
    """Give an object the server-maintained fields a real org has on it."""
    names = {f.name.lower() for f in obj.fields}
    front: list[FieldDef] = []
    if "id" not in names:
        front.append(FieldDef(name="Id", type="id", label=f"{obj.label_text} ID", nillable=False,
                              createable=False, updateable=False, defaulted_on_create=True))
    if obj.has_owner and "ownerid" not in names:
        front.append(FieldDef(name="OwnerId", type="reference", label="Owner ID", nillable=False,
                              reference_to=["Group", "User"] if obj.custom else ["User"],
                              relationship_name="Owner", defaulted_on_create=True))
    if obj.has_is_deleted and "isdeleted" not in names:
        front.append(FieldDef(name="IsDeleted", type="boolean", label="Deleted", nillable=False,
                              createable=False, updateable=False, defaulted_on_create=True,
                              default_value=False))
    has_name = obj.has_name if obj.has_name is not None else obj.custom
    if has_name and "name" not in names:
        front.append(FieldDef(name="Name", type="string", length=80, label=f"{obj.label_text} Name",
                              nillable=True, name_field=True))
    if obj.record_types and "recordtypeid" not in names:
        # record type visibility, not field access, governs it; likewise the currency below
        front.append(FieldDef(name="RecordTypeId", type="reference", label="Record Type ID",
                              reference_to=["RecordType"], relationship_name="RecordType", permissionable=False))
    if currency is not None and obj.currency and "currencyisocode" not in names:
        front.append(FieldDef(
            name="CurrencyIsoCode", type="picklist", label="Currency ISO Code", length=3,
            restricted=True, defaulted_on_create=True, default_value=currency.corporate, permissionable=False,
            values=[PicklistValue(value=c.iso_code, label=c.label or c.iso_code, active=c.active,
                                  default=c.corporate) for c in currency.currencies]))
    audit: list[FieldDef] = []
    for audit_name in AUDIT_FIELDS:
        if audit_name.lower() in names:
            continue
        if audit_name.startswith("Created") and not obj.has_created:
            continue
        if audit_name.endswith("ById"):
            audit.append(FieldDef(name=audit_name, type="reference", reference_to=["User"],
                                  relationship_name=audit_name[:-2], nillable=False, createable=False,
                                  updateable=False, defaulted_on_create=True))
        else:
            audit.append(FieldDef(name=audit_name, type="datetime", nillable=False, createable=False,
                                  updateable=False, defaulted_on_create=True))
    obj.fields = front + obj.fields + audit
    obj._reindex()


# -- loading --------------------------------------------------------------------------------------

SHIPPED_ORGS_DIR = Path(__file__).parent / "orgs"


def shipped_orgs() -> list[str]:
    return sorted(p.stem for p in SHIPPED_ORGS_DIR.glob("*.yaml"))


def load_org(spec: str | Path) -> OrgDef:
    """An org from a shipped name, a YAML file, or a folder of describe payloads."""
    path = Path(spec)
    if path.is_dir():
        return org_from_describe_folder(path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return org_from_yaml(path)
    shipped = SHIPPED_ORGS_DIR / f"{spec}.yaml"
    if shipped.is_file():
        return org_from_yaml(shipped)
    raise OrgDefinitionError(
        f"no org {str(spec)!r}: give a shipped org ({', '.join(shipped_orgs())}), "
        "an org YAML file, or a folder of describe payloads")


def org_from_yaml(path: Path) -> OrgDef:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise OrgDefinitionError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise OrgDefinitionError(f"{path}: an org definition is a mapping with 'name' and 'objects'")
    data.setdefault("name", path.stem)
    try:
        return OrgDef.model_validate(data)
    except ValidationError as exc:
        raise OrgDefinitionError(_explain(path, exc)) from exc


def _explain(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid org definition"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "literal_error":
            msg = f"{msg}"
        lines.append(f"  at {loc or '<top>'}: {msg}")
    return "\n".join(lines)


_DESCRIBE_FIELD_KEYS = {
    "name": "name", "type": "type", "label": "label", "length": "length", "precision": "precision",
    "scale": "scale", "digits": "digits", "nillable": "nillable", "createable": "createable",
    "updateable": "updateable", "defaultedOnCreate": "defaulted_on_create", "custom": "custom",
    "calculated": "calculated", "calculatedFormula": "formula", "externalId": "external_id",
    "unique": "unique", "idLookup": "id_lookup", "caseSensitive": "case_sensitive",
    "nameField": "name_field", "autoNumber": "auto_number", "referenceTo": "reference_to",
    "relationshipName": "relationship_name", "compoundFieldName": "compound_field_name",
    "extraTypeInfo": "extra_type_info", "restrictedPicklist": "restricted", "defaultValue": "default_value",
    "permissionable": "permissionable",
}


def object_from_describe(payload: dict[str, Any], source: str = "<describe>") -> ObjectDef:
    """An ObjectDef from one real sObject describe body, keeping every key it does not model."""
    fields = []
    for raw in payload.get("fields", []):
        spec: dict[str, Any] = {ours: raw[theirs] for theirs, ours in _DESCRIBE_FIELD_KEYS.items()
                                if theirs in raw and raw[theirs] is not None}
        if spec.get("type") not in FIELD_TYPES:
            raise OrgDefinitionError(f"{source}: field {raw.get('name')!r} has type {raw.get('type')!r}; "
                                     f"known types: {', '.join(FIELD_TYPES)}")
        spec["master_detail"] = bool(raw.get("cascadeDelete")) and raw.get("type") == "reference"
        spec["values"] = [{"value": p["value"], "label": p.get("label"), "active": p.get("active", True),
                           "default": p.get("defaultValue", False), "valid_for": p.get("validFor")}
                          for p in raw.get("picklistValues") or []]
        spec["raw"] = raw
        fields.append(spec)
    record_types = [
        {"developer_name": rt.get("developerName") or rt["name"], "name": rt["name"],
         "active": rt.get("active", True), "default": rt.get("defaultRecordTypeMapping", False),
         "record_type_id": rt["recordTypeId"]}
        for rt in payload.get("recordTypeInfos") or [] if not rt.get("master")]
    names = {f["name"] for f in fields}
    try:
        obj = ObjectDef.model_validate({
            "name": payload["name"], "label": payload.get("label"), "label_plural": payload.get("labelPlural"),
            "key_prefix": payload.get("keyPrefix") or "a00", "custom": payload.get("custom"),
            **{k: payload[k] for k in ("queryable", "replicateable", "createable", "updateable", "deletable",
                                       "retrieveable", "searchable", "undeletable", "triggerable")
               if k in payload},
            "standard_fields": False, "has_is_deleted": "IsDeleted" in names,
            "has_created": "CreatedDate" in names, "has_owner": "OwnerId" in names,
            "currency": "CurrencyIsoCode" in names,
            "fields": fields, "record_types": record_types,
            # every key in the payload's order; the fields are kept by the field models
            "raw": {k: (None if k == "fields" else v) for k, v in payload.items()},
        })
    except (KeyError, ValidationError) as exc:
        raise OrgDefinitionError(f"{source}: not a usable sObject describe: {exc}") from exc
    for f in obj.fields:
        f.keep_as_loaded()
    return obj


def org_from_describe_folder(folder: Path) -> OrgDef:
    """An org from `<ApiName>.json` describe bodies (and optionally describeGlobal.json)."""
    files = sorted(p for p in folder.glob("*.json") if p.name != "describeGlobal.json")
    if not files:
        raise OrgDefinitionError(f"{folder}: no <ApiName>.json describe payloads in this folder")
    objects = []
    for path in files:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise OrgDefinitionError(f"{path}: not valid JSON: {exc}") from exc
        objects.append(object_from_describe(payload, str(path)))
    multi_currency = None
    currency_fields = [f for o in objects for f in o.fields if f.name == "CurrencyIsoCode" and f.picklist]
    if currency_fields:
        values = currency_fields[0].picklist
        corporate = next((p.value for p in values if p.default), values[0].value)
        multi_currency = MultiCurrency(currencies=[CurrencyDef(iso_code=p.value, corporate=p.value == corporate)
                                                   for p in values])
    org_id = "00DDm0000000001MAA"
    meta = folder / "org.json"
    if meta.is_file():
        org_id = json.loads(meta.read_text()).get("organizationId", org_id)
    global_raw = None
    global_path = folder / "describeGlobal.json"
    if global_path.is_file():
        try:
            global_raw = json.loads(global_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise OrgDefinitionError(f"{global_path}: not valid JSON: {exc}") from exc
        if not isinstance(global_raw, dict) or not isinstance(global_raw.get("sobjects"), list):
            raise OrgDefinitionError(f"{global_path}: a describeGlobal body has a list under 'sobjects'")
    org = OrgDef(name=folder.name, organization_id=org_id, objects=objects, generator="generic",
                 global_raw=global_raw,
                 features=Features(multi_currency=multi_currency,
                                   territory_management=any(o.name == "Territory2" for o in objects)))
    org._loaded_names = {o.name for o in objects}
    return org
