"""The mapping file: which Salesforce objects and fields are mirrored and synced, in which direction,
with which conflict policy and how often; typed, validated when loaded, exported as JSON Schema.
It must never guess: an unknown key, name or value is an error naming the file, the key and the choices."""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

# The one policy registry (names and implementations); it imports nothing of the connector.
from connector.sync.policies import POLICY_NAMES

__all__ = [
    "BUILTIN_POLICIES",
    "BuiltinPolicy",
    "DEFAULT_MAPPING_PATH",
    "DEFAULT_POLL_INTERVAL",
    "DIRECTIONS",
    "DatabaseOptions",
    "Defaults",
    "Direction",
    "FieldSelection",
    "MAX_POLL_INTERVAL",
    "MIN_POLL_INTERVAL",
    "CosellObjects",
    "Mapping",
    "MappingError",
    "ObjectMapping",
    "POLICY_NAMES",
    "load_mapping",
    "mapping_json_schema",
    "parse_duration",
]

# The one shipped default lives inside the package so that it installs as package data with a wheel;
# the top-level `mappings/` folder of the repository holds admins' own files and a README.
DEFAULT_MAPPING_PATH: Path = Path(__file__).resolve().parent / "mappings" / "cosell.yaml"

FORMAT_VERSION = 1

Direction = Literal["read_only", "read_write"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)

BuiltinPolicy = Literal["salesforce_wins", "local_wins", "latest_wins", "manual"]
BUILTIN_POLICIES: tuple[str, ...] = get_args(BuiltinPolicy)

# A read_only object takes every value from Salesforce, so this is the only policy that means anything there.
READ_ONLY_POLICY: BuiltinPolicy = "salesforce_wins"

SyncMode = Literal["stream", "poll"]
SYNC_MODES: tuple[str, ...] = get_args(SyncMode)
MIN_POLL_INTERVAL = 10  # below this an idle poll of a few dozen objects eats the daily API allowance
MAX_POLL_INTERVAL = 86_400  # above a day the getDeleted window (12 h for territory associations) is lost anyway
DEFAULT_POLL_INTERVAL = 300


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file, the key path and the valid choices."""


# -- durations ----------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"(\d+)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400}
_DURATION_HELP = "use whole seconds (60) or a number with a unit: s, m, h or d (30s, 5m, 1h, 1d)"


def parse_duration(value: int | str) -> int:
    """Seconds from an int (already seconds) or a string like "30s", "5m", "1h", "1d" or "90"."""
    # bool is an int to Python, but `poll_interval: yes` is a mistake, not one second
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
    if isinstance(value, int):
        return value
    match = _DURATION_RE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _poll_interval(value: Any) -> int:
    seconds = parse_duration(value)
    if not MIN_POLL_INTERVAL <= seconds <= MAX_POLL_INTERVAL:
        unit = "second" if seconds == 1 else "seconds"
        raise ValueError(f"{value!r} is {seconds} {unit}; choose between {MIN_POLL_INTERVAL} seconds and "
                         f"1 day ({MIN_POLL_INTERVAL} to {MAX_POLL_INTERVAL} seconds, or 10s to 1d)")
    return seconds


# -- names -------------------------------------------------------------------------------------------

# Letters, digits and single underscores, starting with a letter; "__" separates at most a namespace
# prefix and a suffix (ns__Object__c, Deal_Registration__c, Setting__mdt).
_API_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*(?:__[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*){0,2}")
_API_NAME_HELP = ("use letters, digits and single underscores, starting with a letter; custom names end in "
                  "a suffix such as __c or __mdt (Deal_Registration__c)")
_PG_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_TABLE_PREFIX_RE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]{0,29})?")


def _api_name(value: str) -> str:
    if not _API_NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Salesforce API name; {_API_NAME_HELP}")
    return value


def _policy_name(value: str) -> str:
    if value not in POLICY_NAMES:
        raise ValueError(f"{value!r} is not a conflict policy; choose one of: {', '.join(POLICY_NAMES)}")
    return value


class _PolicyEnumSchema:
    """Lists the registered policy names in the JSON Schema when it is generated, not when imported,
    so that names registered by plug-ins show up in editors."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        schema["enum"] = list(POLICY_NAMES)
        return schema


ApiName = Annotated[str, AfterValidator(_api_name)]
PolicyName = Annotated[str, AfterValidator(_policy_name), _PolicyEnumSchema()]
PollInterval = Annotated[int, BeforeValidator(_poll_interval), WithJsonSchema({
    "anyOf": [
        {"type": "integer", "minimum": MIN_POLL_INTERVAL, "maximum": MAX_POLL_INTERVAL},
        {"type": "string", "pattern": r"^\s*\d+\s*[smhd]?\s*$"},
    ],
})]


class _Problems(ValueError):
    """Problems found by a check that spans several keys, each with the key path it belongs to
    (relative to the model that raised it), so the report can point at the exact key."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(f"{_dotted(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


def _inherited(schema: dict[str, Any]) -> None:
    # the effective default comes from the `defaults` section, so the built-in one would mislead editors
    schema.pop("default", None)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- the models --------------------------------------------------------------------------------------

class FieldSelection(_Model):
    """Which fields of an object are synced: every field ("all"), only the listed ones (include) or every
    field but the listed ones (exclude). Write `FieldSelection.all()` for "all" in Python."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    include: list[ApiName] | None = Field(
        None, description="Sync only these fields (API names, case-insensitive). The connector always reads "
                          "the record Id and the system fields it needs on top of these.")
    exclude: list[ApiName] | None = Field(
        None, description="Sync every field except these (API names, case-insensitive).")

    @classmethod
    def all(cls) -> FieldSelection:
        return cls.model_validate("all")

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        if data == "all":
            return {}
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"{_short(data)} is not valid; choose one of: all, {{include: [...]}}, "
                             "{exclude: [...]}")
        given = [key for key in ("include", "exclude") if key in data]
        if len(given) == 2:
            raise ValueError("give either include or exclude, not both")
        if not data:
            raise ValueError("give include: [...] or exclude: [...], or write fields: all")
        return data

    @field_validator("include", "exclude")
    @classmethod
    def _listed_once(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        if not names:
            raise ValueError("an empty list; list at least one field API name, or write fields: all")
        seen: dict[str, int] = {}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for i, name in enumerate(names):
            if name.lower() in seen:
                problems.append(((i,), f"{name!r} is listed already (at [{seen[name.lower()]}]); field API "
                                       "names are case-insensitive, list each once"))
            seen.setdefault(name.lower(), i)
        if problems:
            raise _Problems(problems)
        return names

    @model_serializer(mode="wrap")
    def _as_written(self, handler: Any) -> Any:
        # dump in the file's own form, so a dumped mapping loads again as the same mapping
        if self.is_all:
            return "all"
        return {key: value for key, value in handler(self).items() if value is not None}

    @property
    def is_all(self) -> bool:
        return self.include is None and self.exclude is None

    def selects(self, field_name: str) -> bool:
        """Whether the field is synced (case-insensitive)."""
        name = field_name.lower()
        if self.include is not None:
            return any(name == f.lower() for f in self.include)
        if self.exclude is not None:
            return all(name != f.lower() for f in self.exclude)
        return True


_OBJECT_DIRECTION_DOC = ("read_only: Salesforce -> local database only; the connector never writes this object "
                         "to Salesforce. read_write: changes travel both ways. Default: defaults.direction.")
_OBJECT_POLICY_DOC = ("Which side wins when both changed the same field since the last sync (the loser is kept "
                      "in the conflict log): salesforce_wins, local_wins, latest_wins (the later change), manual "
                      "(held for an admin), or a policy registered by a plug-in. Default: "
                      "defaults.conflict_policy. A read_only object always takes Salesforce's values.")
_POLL_DOC = ("How often the object is polled for changes: whole seconds, or a number with a unit s, m, h or d "
             "(30s, 5m, 1h, 1d). Between 10 seconds and 1 day.")


class ObjectMapping(_Model):
    """How one Salesforce object is mirrored and synced. After loading, the values from `defaults` are
    already applied, so `direction`, `conflict_policy` and `poll_interval` are the effective ones."""

    fields: FieldSelection = Field(
        "all", validate_default=True,
        json_schema_extra=lambda s: s.update(anyOf=[{"const": "all", "type": "string"}, {"$ref": s.pop("$ref")}]),
        description='Which fields are synced: "all", {include: [Name, Amount, ...]} or '
                    "{exclude: [Description, ...]}. Field API names, case-insensitive.")
    direction: Direction = Field("read_only", json_schema_extra=_inherited, description=_OBJECT_DIRECTION_DOC)
    create: bool = Field(
        True, description="read_write objects only: whether the connector may create records of this object "
                          "in Salesforce (records the portal created). false for objects the portal only edits; "
                          "then external_id is optional.")
    external_id: ApiName | None = Field(
        None, description="read_write objects: the Salesforce external-ID field that holds the local row's "
                          "UUID (e.g. Portal_Id__c). Creates are upserts on it, so a retried create never "
                          "makes a second record. Required unless create is false; not allowed on read_only.")
    conflict_policy: PolicyName = Field(READ_ONLY_POLICY, json_schema_extra=_inherited,
                                        description=_OBJECT_POLICY_DOC)
    field_policies: dict[ApiName, PolicyName] = Field(
        default_factory=dict,
        description="read_write objects: a conflict policy per field that overrides conflict_policy, e.g. "
                    "{StageName: salesforce_wins}. The fields must be synced (see fields).")
    poll_interval: PollInterval = Field(DEFAULT_POLL_INTERVAL, json_schema_extra=_inherited,
                                        description=_POLL_DOC + " Default: defaults.poll_interval.")
    mode: SyncMode = Field("stream", description="stream: Salesforce changes arrive by Change Data Capture when "
                           "the org offers it for this object (COSELL_STREAM on), with a slow safety poll; "
                           "poll: always polled at poll_interval.")

    _name: str = PrivateAttr("")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, data: Any) -> Any:
        # `CurrencyType:` with nothing under it means "mirror it with the defaults"
        return {} if data is None else data

    @model_validator(mode="after")
    def _fields_agree(self) -> ObjectMapping:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: dict[str, str] = {}
        for name in self.field_policies:
            if name.lower() in seen:
                problems.append((("field_policies", name), f"{name!r} is given already as {seen[name.lower()]!r}; "
                                                           "field API names are case-insensitive"))
                continue
            seen[name.lower()] = name
            reason = self._unselected_reason(name)
            if reason:
                problems.append((("field_policies", name), f"{reason}; a field that is not synced has no policy"))
        if self.external_id is not None:
            reason = self._unselected_reason(self.external_id)
            if reason:
                problems.append((("external_id",), f"{reason}; the external-ID field must be synced"))
        if problems:
            raise _Problems(problems)
        return self

    def _unselected_reason(self, name: str) -> str | None:
        if self.fields.selects(name):
            return None
        if self.fields.include is not None:
            return f"{name!r} is not in fields.include; choose one of: {', '.join(self.fields.include)}"
        return f"{name!r} is in fields.exclude"

    @property
    def name(self) -> str:
        """The object's API name as written under `objects` (empty for an object built outside a Mapping)."""
        return self._name

    def selects(self, field_name: str) -> bool:
        """Whether the field is synced (case-insensitive); True for every field when fields is "all"."""
        return self.fields.selects(field_name)

    def policy_for(self, field_name: str) -> str:
        """The conflict policy for a field: its field_policies entry, else the object's (defaults applied)."""
        name = field_name.lower()
        for key, policy in self.field_policies.items():
            if key.lower() == name:
                return policy
        return self.conflict_policy


class Defaults(_Model):
    """Values every object takes unless it sets its own."""

    direction: Direction = Field(
        "read_only", description="Direction of objects that do not set one. read_only: Salesforce -> local "
                                 "database only; read_write: both ways. Built-in default: read_only, so an "
                                 "object is never written to Salesforce unless someone said so.")
    conflict_policy: PolicyName = Field(
        READ_ONLY_POLICY, description="Conflict policy of read_write objects that do not set one (read_only "
                                      "objects always take Salesforce's values): salesforce_wins, local_wins, "
                                      "latest_wins, manual, or a registered plug-in policy.")
    poll_interval: PollInterval = Field(DEFAULT_POLL_INTERVAL, description=_POLL_DOC + " Built-in default: 5m.")


class CosellObjects(_Model):
    """Which mapped objects play the co-sell roles the sync's co-sell rules guard (split totals, edits
    held under review, registration status moves). A role whose object is not mapped read_write is
    simply not guarded."""

    opportunity: ApiName = Field("Opportunity", description="The co-sold deal.")
    participant: ApiName = Field("Co_Sell_Participant__c", description="A partner's part in a deal: role, "
                                 "attribution and revenue split (its lookup to the deal is Opportunity__c).")
    registration: ApiName = Field("Deal_Registration__c", description="A partner's deal registration, with "
                                  "its reviewed status (its lookup to the deal is Opportunity__c).")


class DatabaseOptions(_Model):
    """Where the mirrored tables live in the local database, kept apart from the portal's own tables."""

    schema_name: str | None = Field(
        None, alias="schema",
        description="PostgreSQL schema that holds the mirrored tables; null (the default) uses the "
                    "connection's default schema. SQLite has no schemas: use table_prefix there.")
    table_prefix: str = Field(
        "", description="Put in front of every mirrored table's name (e.g. sf_ makes sf_opportunity). Letters, "
                        "digits and underscores, at most 30 characters.")

    @field_validator("schema_name")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        if value is not None and not _PG_IDENTIFIER_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a usable PostgreSQL schema name; use letters, digits and "
                             "underscores, starting with a letter or underscore, at most 63 characters")
        return value

    @field_validator("table_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _TABLE_PREFIX_RE.fullmatch(value):
            # 30 leaves room for the table name within PostgreSQL's 63-character identifiers
            raise ValueError(f"{value!r} is not a usable table prefix; use letters, digits and underscores, "
                             "starting with a letter or underscore, at most 30 characters (or \"\" for none)")
        return value


class Mapping(_Model):
    """A whole mapping file: which objects are mirrored and synced, and how."""

    model_config = ConfigDict(title="cosell-connector mapping file")

    version: Literal[1] = Field(description="Version of this file format; 1.")
    defaults: Defaults = Field(default_factory=Defaults,
                               description="Direction, conflict policy and poll interval for every object "
                                           "that does not set its own.")
    database: DatabaseOptions = Field(default_factory=DatabaseOptions,
                                      description="Where the mirrored tables live in the local database.")
    cosell: CosellObjects = Field(default_factory=CosellObjects,
                                  description="The objects playing the co-sell roles (defaults: the shipped "
                                              "package's Opportunity, Co_Sell_Participant__c, Deal_Registration__c).")
    objects: dict[ApiName, ObjectMapping] = Field(
        min_length=1,
        json_schema_extra={"propertyNames": {"pattern": f"^{_API_NAME_RE.pattern}$"}},
        description="The Salesforce objects to mirror and sync, by API name (Opportunity, "
                    "Deal_Registration__c), each with its settings. An object with nothing under it is "
                    "mirrored with the defaults.")

    _by_lower: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> Mapping:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: dict[str, str] = {}
        for name, obj in list(self.objects.items()):
            if name.lower() in seen:
                problems.append((("objects", name), f"{name!r} names the same object as {seen[name.lower()]!r} "
                                                    "(API names are case-insensitive); keep one"))
                continue
            seen[name.lower()] = name
            problems += [(("objects", name, *loc), msg) for loc, msg in self._object_problems(name, obj)]
        if problems:
            raise _Problems(problems)
        for name, obj in list(self.objects.items()):
            # frozen forbids rebinding `objects`, not filling in the dict; nobody has seen the model yet
            self.objects[name] = self._with_defaults(name, obj)
        self._by_lower = seen
        return self

    def _object_problems(self, name: str, obj: ObjectMapping) -> list[tuple[tuple[str, ...], str]]:
        explicit = obj.model_fields_set
        direction = obj.direction if "direction" in explicit else self.defaults.direction
        problems: list[tuple[tuple[str, ...], str]] = []
        if direction == "read_write":
            if obj.external_id is None and obj.create:
                problems.append((("external_id",), "required for a read_write object: name the external-ID field "
                                                   "that holds the local row's UUID (e.g. Portal_Id__c), or set "
                                                   f"create: false if the portal never creates {name} records"))
            return problems
        why = "a read_only object is never written to Salesforce"
        if obj.external_id is not None:
            problems.append((("external_id",), f"{obj.external_id!r} would mean nothing: {why}; remove it, "
                                               "or set direction: read_write"))
        if "create" in explicit and obj.create:
            problems.append((("create",), f"true would mean nothing: {why}; remove it, "
                                          "or set direction: read_write"))
        if obj.field_policies:
            problems.append((("field_policies",), f"would mean nothing: {why} and always takes Salesforce's "
                                                  "values; remove it, or set direction: read_write"))
        if "conflict_policy" in explicit and obj.conflict_policy != READ_ONLY_POLICY:
            problems.append((("conflict_policy",), f"{obj.conflict_policy!r} would mean nothing: {why} and always "
                                                   f"takes Salesforce's values; choose one of: {READ_ONLY_POLICY} "
                                                   "(or leave it out), or set direction: read_write"))
        return problems

    def _with_defaults(self, name: str, obj: ObjectMapping) -> ObjectMapping:
        explicit = obj.model_fields_set
        update: dict[str, Any] = {
            key: getattr(self.defaults, key)
            for key in ("direction", "conflict_policy", "poll_interval") if key not in explicit
        }
        if update.get("direction", obj.direction) == "read_only":
            update.update(conflict_policy=READ_ONLY_POLICY, create=False)
        resolved = obj.model_copy(update=update)
        resolved._name = name
        return resolved

    def object(self, name: str) -> ObjectMapping | None:
        """The mapping of an object by API name (case-insensitive), or None when it is not mapped."""
        key = self._by_lower.get(name.lower())
        return None if key is None else self.objects[key]


# -- loading ------------------------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping: PyYAML would keep the last one
    silently, and a second `Opportunity:` block quietly replacing the first is exactly what must not happen."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; the base class reports it properly
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found {key!r} a second time (first on line {first.start_mark.line + 1}); give each key once",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


# A mapping file is a few hundred lines, a handful of levels deep. The limits are far above that, and
# are checked on the parser's events, before anything is built: YAML aliases let 600 bytes stand for
# a billion values, and the composer recurses once per level.
MAX_MAPPING_BYTES = 1_000_000
MAX_MAPPING_DEPTH = 32
MAX_MAPPING_VALUES = 100_000


def _check_bounds(path: Path, text: str) -> None:
    """Refuse a file whose values, aliases expanded, are too many or nested too deep: MappingError
    naming the line, raised after one linear pass over the parser's events."""
    if len(text) > MAX_MAPPING_BYTES:
        raise MappingError(f"{path}: {len(text):,} characters; a mapping file is at most {MAX_MAPPING_BYTES:,}")
    values = 0
    anchors: dict[str, tuple[int, int]] = {}     # anchor -> (values, depth) of the node it names
    open_nodes: list[list[Any]] = []             # [anchor, values at start, deepest child]

    def grow(count: int, depth: int, event: yaml.Event) -> None:
        nonlocal values
        values += count
        if open_nodes:
            open_nodes[-1][2] = max(open_nodes[-1][2], depth)
        line = event.start_mark.line + 1 if event.start_mark else "?"
        if len(open_nodes) + depth > MAX_MAPPING_DEPTH:
            raise MappingError(f"{path}: line {line}: nested more than {MAX_MAPPING_DEPTH} levels deep; a mapping "
                               "file needs a handful (objects > name > fields > include)")
        if values > MAX_MAPPING_VALUES:
            raise MappingError(f"{path}: line {line}: more than {MAX_MAPPING_VALUES:,} values once YAML aliases "
                               "(*name) are expanded; write the values out instead of repeating aliases")

    for event in yaml.parse(text, Loader=_UniqueKeyLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            grow(1, 0, event)
            open_nodes.append([event.anchor, values, 0])
            grow(0, 0, event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, start, deepest = open_nodes.pop()
            if open_nodes:
                open_nodes[-1][2] = max(open_nodes[-1][2], deepest + 1)
            if anchor:
                anchors[anchor] = (values - start + 1, deepest + 1)
        elif isinstance(event, yaml.ScalarEvent):
            grow(1, 0, event)
            if event.anchor:
                anchors[event.anchor] = (1, 0)
        elif isinstance(event, yaml.AliasEvent):
            count, depth = anchors.get(event.anchor, (1, 0))
            grow(count, depth, event)


def _register_shipped_policies() -> None:
    """The policies the package ships beyond the built-ins (the co-sell state machine, participant
    edit-vs-delete) register themselves on import; a mapping may name them."""
    from connector.cosell.policies import register

    register()


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and validate a mapping file; None loads the shipped default (`DEFAULT_MAPPING_PATH`)."""
    _register_shipped_policies()
    path = DEFAULT_MAPPING_PATH if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"{path}: no such mapping file") from None
    except IsADirectoryError:
        raise MappingError(f"{path}: is a folder; give the mapping file (a .yaml file)") from None
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise MappingError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        _check_bounds(path, text)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem:
            # the problem is often found only at the end of the file; where the broken part began helps more
            started = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            problem += f" ({exc.context}{started})"
        raise MappingError(f"{path}: {where}not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        got = {type(None): "an empty file", str: "plain text", list: "a list"}.get(type(data), f"a {_kind(data)}")
        raise MappingError(f"{path}: a mapping file is a YAML mapping with the keys version, objects and "
                           f"optionally defaults and database; this is {got}")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(_explain(path, exc)) from None


def mapping_json_schema() -> dict[str, Any]:
    """The JSON Schema of the mapping file format, for editors (policy names as registered right now)."""
    schema = Mapping.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# -- readable errors ----------------------------------------------------------------------------------

def _explain(path: Path, exc: ValidationError) -> str:
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if part != "[key]")
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, _Problems):
            lines += [f"{path}: {_dotted(loc + sub)}: {msg}" for sub, msg in error.problems]
        else:
            lines.append(f"{path}: {_dotted(loc)}: {_describe(err, loc)}")
    if len(lines) > 1:
        lines.insert(0, f"{path}: {len(lines)} problems in this mapping file:")
    return "\n".join(lines)


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(err: Any, loc: tuple[str | int, ...]) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        keys = _allowed_keys(loc[:-1])
        return f"unknown key {loc[-1]!r}" + (f"; allowed keys: {', '.join(keys)}" if keys else "")
    if kind == "missing":
        if loc == ("version",):
            return f"required key missing; this file format is version {FORMAT_VERSION} (add version: 1)"
        return "required key missing"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'|(\d+)", ctx.get("expected", ""))
        return f"{_short(value)} is not valid; choose one of: {', '.join(a or b for a, b in choices)}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected keys with values (a YAML mapping), got {_got(value)}"
    if kind == "too_short" and loc == ("objects",):
        return "list at least one object to mirror"
    if kind == "list_type":
        return f"expected a list, got {_got(value)}"
    if kind in ("string_type", "string_sub_type"):
        return f"expected text, got {_got(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_short(value)}"
    return f"{err['msg']} (got {_short(value)})"


def _got(value: Any) -> str:
    return "null" if value is None else f"{_kind(value)} {_short(value)}"


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "text", bool: "boolean", int: "number", float: "number",
            type(None): "nothing"}.get(type(value), type(value).__name__)


_SHORT_REPR = reprlib.Repr()   # keyword arguments only from Python 3.12
_SHORT_REPR.maxlevel, _SHORT_REPR.maxdict, _SHORT_REPR.maxlist = 3, 4, 4
_SHORT_REPR.maxstring, _SHORT_REPR.maxother, _SHORT_REPR.maxlong = 60, 60, 40


def _short(value: Any) -> str:
    # spelled as in YAML, since that is what the admin wrote; reprlib bounds the work, not just the text
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model at `loc` accepts, found by walking the model types along the key path."""
    model: type[BaseModel] = Mapping
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        annotation = field.annotation
        if get_origin(annotation) is dict:
            if parts:
                parts.pop(0)  # the dict key, e.g. the object name
            annotation = get_args(annotation)[1]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]
