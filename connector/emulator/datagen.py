"""Seeded, deterministic data generators that fill an emulated org with plausible records:
the co-sell demo (accounts, opportunities, participants, registrations, splits, territory
assignments) and a generic one for orgs built from real describe payloads.

Generators write only through the store's bulk interface, stream their output (never a list of
every record), and draw every random choice from the seed, so the same seed and size give the
same data."""

from __future__ import annotations

import bisect
import itertools
import logging
import re
from array import array
from collections import deque
from datetime import date, datetime, timezone
from random import Random
from typing import Any, Callable, Iterable, Iterator, Protocol

from .orgdef import FieldDef, ObjectDef, OrgDef
from .store import _rule_item_matches, evaluate_boolean_filter

__all__ = ["GENERATORS", "DataStore", "generate", "generate_cosell_demo", "generate_generic"]

log = logging.getLogger(__name__)


class DataStore(Protocol):
    """The part of the emulator's record store that generators may use."""

    org: OrgDef
    current_user_id: str | None  # whom the org acts as: the API user, creator of what it saves

    def now_wire(self) -> str: ...
    def now(self) -> datetime: ...
    def new_id(self, object_name: str) -> str: ...
    def bulk_load(self, object_name: str, records: Iterable[dict[str, Any]]) -> int: ...
    def ids(self, object_name: str) -> list[str]: ...
    def find(self, object_name: str, field: str, value: Any) -> list[dict[str, Any]]: ...


GeneratorFn = Callable[..., dict[str, int]]


def generate(store: DataStore, *, size: int, seed: int = 42) -> dict[str, int]:
    """Run the generator the org names (`OrgDef.generator`); returns records created per object."""
    name = store.org.generator
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown data generator {name!r} for org {store.org.name!r}; "
                         f"valid choices: {', '.join(sorted(GENERATORS))}") from None
    if size < 0:
        raise ValueError(f"size must be zero or more, not {size}")
    counts: dict[str, int] = {}
    for object_name, count in generator(store, size=size, seed=seed).items():
        counts[object_name] = counts.get(object_name, 0) + count
    return counts


# -- wire formatting ------------------------------------------------------------------------------

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_CACHE: dict[int, str] = {}


def _day(ordinal: int) -> str:
    """A date ordinal as a wire date ("2025-03-04")."""
    text = _DAY_CACHE.get(ordinal)
    if text is None:
        text = _DAY_CACHE[ordinal] = date.fromordinal(ordinal).isoformat()
    return text


def _stamp(ts: int) -> str:
    """Unix seconds as a wire datetime ("2025-03-04T10:11:12.000+0000")."""
    days, secs = divmod(ts, 86400)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    return f"{_day(days + _EPOCH_ORDINAL)}T{hours:02d}:{minutes:02d}:{secs:02d}.000+0000"


def _uuid(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (drawn from the seeded generator)."""
    bits = (bits & ~(0xF << 76) & ~(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
    h = "%032x" % bits
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = []
    while True:
        n, rem = divmod(n, 36)
        out.append(_B36[rem])
        if not n:
            return "".join(reversed(out))


class _Draw:
    """Draws from one seeded `random.Random`, cheaper than `randrange`/`choice` (which cost
    about ten times `random()`); at a million opportunities that is most of the run."""

    __slots__ = ("random", "getrandbits", "_rng")

    def __init__(self, seed: int) -> None:
        self._rng = Random(seed)
        self.random = self._rng.random
        self.getrandbits = self._rng.getrandbits

    def below(self, n: int) -> int:
        """An int in [0, n)."""
        return int(self.random() * n)

    def between(self, low: int, high: int) -> int:
        """An int in [low, high)."""
        return low + int(self.random() * (high - low))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def pick(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]

    def weighted(self, cumulative: list[float], values: Any) -> Any:
        return values[bisect.bisect_right(cumulative, self.random() * cumulative[-1])]

    def sample(self, n: int, k: int) -> list[int]:
        """k distinct ints from range(n), in draw order."""
        if k * 4 < n:  # sparse: redraw on a repeat instead of building range(n)
            seen: list[int] = []
            while len(seen) < k:
                j = int(self.random() * n)
                if j not in seen:
                    seen.append(j)
            return seen
        pool = list(range(n))
        for i in range(k):
            j = i + int(self.random() * (n - i))
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def fill(self, pattern: str) -> str:
        """Replace '#' with a digit and 'A' with an upper-case letter."""
        return "".join(_DIGITS[int(self.random() * 10)] if ch == "#" else
                       _LETTERS[int(self.random() * 26)] if ch == "A" else ch for ch in pattern)


_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _cumulative(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


# -- reference data -------------------------------------------------------------------------------

# (country, its currency, phone prefix, web TLD, street number first?, company suffixes,
#  cities [(city, state or None, postal pattern, latitude, longitude)], share of customers);
# currencies the org does not have fall back to the corporate one.
_COUNTRIES: list[tuple[str, str, str, str, bool, tuple[str, ...], list[tuple[str, str | None, str, float, float]],
                       int]] = [
    ("United States", "USD", "+1", "com", True, ("Inc.", "Corp.", "LLC", "Group"),
     [("New York", "NY", "100##", 40.7128, -74.0060), ("San Francisco", "CA", "941##", 37.7749, -122.4194),
      ("Chicago", "IL", "606##", 41.8781, -87.6298), ("Austin", "TX", "787##", 30.2672, -97.7431),
      ("Boston", "MA", "021##", 42.3601, -71.0589), ("Seattle", "WA", "981##", 47.6062, -122.3321),
      ("Atlanta", "GA", "303##", 33.7490, -84.3880), ("Denver", "CO", "802##", 39.7392, -104.9903)], 30),
    ("Canada", "USD", "+1", "ca", True, ("Inc.", "Ltd."),
     [("Toronto", "ON", "M5A #A#", 43.6532, -79.3832), ("Vancouver", "BC", "V6B #A#", 49.2827, -123.1207),
      ("Montreal", "QC", "H2Y #A#", 45.5017, -73.5673)], 5),
    ("Brazil", "USD", "+55", "com.br", False, ("S.A.", "Ltda."),
     [("São Paulo", "SP", "0####-###", -23.5505, -46.6333), ("Rio de Janeiro", "RJ", "2####-###", -22.9068, -43.1729)],
     3),
    ("Mexico", "USD", "+52", "com.mx", False, ("S.A. de C.V.",),
     [("Mexico City", "CDMX", "06###", 19.4326, -99.1332), ("Monterrey", "NL", "64###", 25.6866, -100.3161)], 2),
    ("United Kingdom", "GBP", "+44", "co.uk", True, ("Ltd", "plc", "Group"),
     [("London", None, "EC#A #AA", 51.5074, -0.1278), ("Manchester", None, "M# #AA", 53.4808, -2.2426),
      ("Edinburgh", None, "EH# #AA", 55.9533, -3.1883), ("Bristol", None, "BS# #AA", 51.4545, -2.5879)], 12),
    ("Ireland", "EUR", "+353", "ie", True, ("Ltd", "DAC"),
     [("Dublin", None, "D0# A#A#", 53.3498, -6.2603), ("Cork", None, "T12 A#A#", 51.8985, -8.4756)], 2),
    ("Germany", "EUR", "+49", "de", False, ("GmbH", "AG", "SE"),
     [("Berlin", "Berlin", "10###", 52.5200, 13.4050), ("Munich", "Bavaria", "80###", 48.1351, 11.5820),
      ("Hamburg", "Hamburg", "20###", 53.5511, 9.9937), ("Frankfurt", "Hesse", "60###", 50.1109, 8.6821)], 8),
    ("Austria", "EUR", "+43", "at", False, ("GmbH", "AG"), [("Vienna", "Vienna", "1###", 48.2082, 16.3738)], 1),
    ("Switzerland", "EUR", "+41", "ch", False, ("AG", "SA", "GmbH"),
     [("Zurich", "ZH", "80##", 47.3769, 8.5417), ("Geneva", "GE", "12##", 46.2044, 6.1432)], 2),
    ("France", "EUR", "+33", "fr", True, ("SA", "SAS"),
     [("Paris", "Île-de-France", "750##", 48.8566, 2.3522), ("Lyon", "Auvergne-Rhône-Alpes", "690##", 45.7640, 4.8357)],
     5),
    ("Netherlands", "EUR", "+31", "nl", False, ("B.V.", "N.V."),
     [("Amsterdam", "North Holland", "10## AA", 52.3676, 4.9041), ("Rotterdam", "South Holland", "30## AA", 51.9244,
                                                                   4.4777)], 3),
    ("Spain", "EUR", "+34", "es", False, ("S.A.", "S.L."),
     [("Madrid", "Madrid", "280##", 40.4168, -3.7038), ("Barcelona", "Catalonia", "080##", 41.3874, 2.1686)], 2),
    ("Sweden", "EUR", "+46", "se", False, ("AB",), [("Stockholm", None, "1## ##", 59.3293, 18.0686)], 2),
    ("Norway", "EUR", "+47", "no", False, ("AS", "ASA"), [("Oslo", None, "0###", 59.9139, 10.7522)], 1),
    ("Denmark", "EUR", "+45", "dk", False, ("A/S", "ApS"), [("Copenhagen", None, "1###", 55.6761, 12.5683)], 1),
    ("Finland", "EUR", "+358", "fi", False, ("Oy", "Oyj"), [("Helsinki", None, "00###", 60.1699, 24.9384)], 1),
    ("India", "INR", "+91", "in", True, ("Pvt Ltd", "Ltd"),
     [("Bengaluru", "Karnataka", "560###", 12.9716, 77.5946), ("Mumbai", "Maharashtra", "400###", 19.0760, 72.8777),
      ("Pune", "Maharashtra", "411###", 18.5204, 73.8567), ("Hyderabad", "Telangana", "500###", 17.3850, 78.4867)], 6),
    ("Japan", "JPY", "+81", "co.jp", False, ("K.K.", "Co., Ltd."),
     [("Tokyo", "Tokyo", "1##-####", 35.6762, 139.6503), ("Osaka", "Osaka", "5##-####", 34.6937, 135.5023)], 5),
    ("Australia", "USD", "+61", "com.au", True, ("Pty Ltd", "Ltd"),
     [("Sydney", "NSW", "2###", -33.8688, 151.2093), ("Melbourne", "VIC", "3###", -37.8136, 144.9631)], 4),
    ("New Zealand", "USD", "+64", "co.nz", True, ("Ltd",), [("Auckland", None, "10##", -36.8485, 174.7633)], 1),
    ("Singapore", "USD", "+65", "com.sg", True, ("Pte Ltd",), [("Singapore", None, "0#####", 1.3521, 103.8198)], 2),
]
_COUNTRY_CUM = _cumulative(c[7] for c in _COUNTRIES)
_COUNTRY_IDX = list(range(len(_COUNTRIES)))

_NAME_PREFIX = (
    "Acorn", "Apex", "Atlas", "Aurora", "Beacon", "Birch", "Blue Ridge", "Brightwater", "Cascade", "Cedar",
    "Cobalt", "Copperline", "Crescent", "Crystal", "Delta", "Eagle", "Ember", "Evergreen", "Falcon", "Fjord",
    "Gemini", "Granite", "Harbor", "Helix", "Horizon", "Ironwood", "Juniper", "Keystone", "Lakeside", "Lumen",
    "Maple", "Meadow", "Nimbus", "Northwind", "Oakridge", "Orion", "Pacifica", "Pinnacle", "Polaris", "Quartz",
    "Redwood", "Riverstone", "Sapphire", "Sierra", "Silverline", "Summit", "Terra", "Tidal", "Trident", "Vantage",
    "Vertex", "Willow", "Zenith", "Alder", "Bluefin", "Canyon", "Driftwood", "Elmstead", "Foxglove", "Goldcrest",
)
# second word of a company name, with the Industry it suggests
_NAME_SECTOR = (
    ("Analytics", "Technology"), ("Bank", "Banking"), ("Biosciences", "Biotechnology"), ("Logistics", "Transportation"),
    ("Health", "Healthcare"), ("Energy", "Energy"), ("Foods", "Food & Beverage"), ("Media", "Media"),
    ("Motors", "Manufacturing"), ("Pharma", "Biotechnology"), ("Retail", "Retail"), ("Robotics", "Machinery"),
    ("Telecom", "Telecommunications"), ("Capital", "Finance"), ("Insurance", "Insurance"),
    ("Industries", "Manufacturing"), ("Labs", "Technology"), ("Airways", "Transportation"),
    ("Semiconductors", "Electronics"), ("Networks", "Communications"), ("Hotels", "Hospitality"),
    ("Utilities", "Utilities"), ("Shipping", "Shipping"), ("Apparel", "Apparel"), ("Software", "Technology"),
    ("Mining", "Other"), ("Chemicals", "Chemicals"), ("Studios", "Entertainment"), ("Systems", "Technology"),
    ("Engineering", "Engineering"), ("Construction", "Construction"), ("Agritech", "Agriculture"),
    ("University", "Education"), ("Foundation", "Not For Profit"), ("Resorts", "Recreation"),
)
_STREETS = ("Market", "Church", "High", "King", "Queen", "Park", "Station", "Mill", "River", "Harbour", "Oak",
            "Maple", "Cedar", "Lake", "Hill", "Bridge", "Garden", "Victoria", "Elm", "Union")
_STREET_KINDS = ("Street", "Avenue", "Road", "Boulevard", "Lane", "Way", "Drive", "Plaza")
_FIRST_NAMES = ("James", "Mary", "Wei", "Fatima", "Liam", "Olivia", "Noah", "Emma", "Hiroshi", "Yuki", "Arjun",
                "Ananya", "Lukas", "Mia", "Mateo", "Sofia", "Chloé", "Louis", "Ingrid", "Lars", "Amara", "Kwame",
                "Elif", "Omar", "Grace", "Daniel", "Aisha", "Ethan", "Sara", "Tomás")
_LAST_NAMES = ("Smith", "Johnson", "Chen", "Khan", "Müller", "Schmidt", "García", "Rossi", "Tanaka", "Sato",
               "Patel", "Sharma", "Dubois", "Martin", "Nielsen", "Larsen", "O'Brien", "Murphy", "Okafor", "Mensah",
               "Yılmaz", "Haddad", "Kim", "Nguyen", "Silva", "Costa", "Novak", "Kowalski", "Brown", "Wilson")
_PRODUCTS = ("Platform Expansion", "Data Cloud Migration", "Security Suite", "Analytics Add-on", "Enterprise Renewal",
             "AI Assistant Pilot", "Observability Rollout", "Global Rollout", "Private Offer", "Multi-Year Commit",
             "Integration Services", "Premium Support Upgrade")
_NEXT_STEPS = ("Schedule technical validation", "Send revised pricing", "Align with partner on SOW",
               "Confirm budget with CFO", "Security review with customer", "Prepare marketplace private offer",
               "Joint account plan with cloud provider", "Executive sponsor meeting")
_DESCRIPTIONS = ("Customer consolidating onto one cloud; partner leads the migration workstream.",
                 "Expansion driven by a new business unit; procurement through the marketplace.",
                 "Competitive displacement; cloud provider funding a proof of concept.",
                 "Renewal with upsell; system integrator delivers the rollout.")
_REJECTION_REASONS = ("Duplicate of an existing registration", "Vendor sales already engaged with the customer",
                      "Customer problem unclear", "End customer outside the partner's authorised territory",
                      "Insufficient deal information", "Partner not authorised for this product")
_PARTICIPANT_NOTES = ("Leads the technical win.", "Owns the customer relationship.", "Funding a proof of concept.",
                      "Handles fulfilment and billing.", "Introduced the opportunity.", "Delivers implementation.")

# stage: (probability, forecast category, closed, won, weight)
_STAGES: dict[str, tuple[float, str, bool, bool, int]] = {
    "Prospecting": (10.0, "Pipeline", False, False, 9),
    "Qualification": (10.0, "Pipeline", False, False, 8),
    "Needs Analysis": (20.0, "Pipeline", False, False, 7),
    "Value Proposition": (50.0, "Pipeline", False, False, 6),
    "Id. Decision Makers": (60.0, "Pipeline", False, False, 4),
    "Perception Analysis": (70.0, "Best Case", False, False, 3),
    "Proposal/Price Quote": (75.0, "Best Case", False, False, 5),
    "Negotiation/Review": (90.0, "Commit", False, False, 4),
    "Closed Won": (100.0, "Closed", True, True, 30),
    "Closed Lost": (0.0, "Omitted", True, False, 24),
}
_STAGE_NAMES = list(_STAGES)
_STAGE_CUM = _cumulative(s[4] for s in _STAGES.values())
_LATE_STAGES = frozenset({"Proposal/Price Quote", "Negotiation/Review", "Closed Won"})

_ROLE_BY_PARTNER_TYPE = {"Cloud Provider": "Cloud Provider", "System Integrator": "System Integrator",
                         "Reseller": "Reseller", "Distributor": "Distributor",
                         "Technology Alliance": "Vendor", "Referral Partner": "Referral Partner"}
_MARKETPLACE_BY_NAME = (("amazon", "AWS Marketplace"), ("aws", "AWS Marketplace"),
                        ("microsoft", "Azure Marketplace"), ("azure", "Azure Marketplace"),
                        ("google", "Google Cloud Marketplace"))
_MARKETPLACE_FEE = {"AWS Marketplace": 0.03, "Azure Marketplace": 0.03, "Google Cloud Marketplace": 0.03}
_PARTICIPANT_COUNT_CUM = _cumulative((30, 35, 25, 10))
_REG_STATUSES = ("Draft", "Submitted", "Under Review", "Approved", "Rejected", "Expired", "Withdrawn")
_REG_WEIGHTS = {  # by opportunity state: open / won / lost
    "open": _cumulative((15, 20, 20, 30, 8, 0, 7)),
    "won": _cumulative((0, 0, 0, 65, 5, 22, 8)),
    "lost": _cumulative((0, 0, 0, 15, 35, 25, 25)),
}
_REGISTRATION_TERM_DAYS = 90


def _require_values(obj: ObjectDef, field: str, values: Iterable[str]) -> None:
    fdef = obj.field(field)
    if fdef is None:
        raise ValueError(f"the cosell_demo generator needs {obj.name}.{field}, which the org does not define")
    missing = sorted(set(values) - set(fdef.active_values()))
    if missing:
        raise ValueError(f"the cosell_demo generator needs {obj.name}.{field} values {missing}; "
                         f"the org has {fdef.active_values()}")


class _Rates:
    """Corporate-to-local conversion at the dated rate in force on a day."""

    def __init__(self, org: OrgDef) -> None:
        mc = org.features.multi_currency
        self.currencies = [c.iso_code for c in mc.currencies if c.active] if mc else ["USD"]
        self.decimals = {c.iso_code: c.decimal_places for c in mc.currencies} if mc else {}
        self._static = {c.iso_code: c.rate for c in mc.currencies} if mc else {}
        self._dated: dict[str, tuple[list[int], list[float]]] = {}
        for rate in sorted(mc.dated_rates if mc else [], key=lambda r: (r.iso_code, r.start_date)):
            starts, values = self._dated.setdefault(rate.iso_code, ([], []))
            starts.append(date.fromisoformat(rate.start_date).toordinal())
            values.append(rate.rate)

    def rate(self, iso: str, ordinal: int) -> float:
        dated = self._dated.get(iso)
        if dated:
            pos = bisect.bisect_right(dated[0], ordinal) - 1
            if pos >= 0:
                return dated[1][pos]
        return self._static.get(iso, 1.0)

    def money(self, iso: str, value: float) -> float:
        return float(round(value, self.decimals.get(iso, 2)))


# -- territory assignment rules -------------------------------------------------------------------

# One evaluator for the org: the rules placing generated accounts are the ones the store runs when an
# account is saved (store.matching_territories), so a generated account keeps its territories on update.
Predicate = Callable[[dict[str, Any]], bool]


def _rule_predicate(expression: str | None, items: list[dict[str, Any]]) -> Predicate:
    numbered = {int(i.get("SortOrder") or n + 1): i for n, i in enumerate(items)}
    evaluate_boolean_filter(expression, {k: True for k in numbered})  # a malformed filter fails here, once
    return lambda account: evaluate_boolean_filter(
        expression, {k: _rule_item_matches(i, account) for k, i in numbered.items()})


class _TerritoryRules:
    """The active model's account assignment rules, evaluated the way the rules engine does."""

    def __init__(self, store: DataStore) -> None:
        self.rules: list[tuple[Predicate, list[str]]] = []
        self.depth: dict[str, int] = {}
        self.users: dict[str, list[str]] = {}
        self._parents: dict[str, str | None] = {}
        org = store.org
        needed = ("Territory2Model", "Territory2", "ObjectTerritory2AssignmentRule",
                  "ObjectTerritory2AssignmentRuleItem", "RuleTerritory2Association")
        if not all(org.get_object(n) for n in needed):
            return
        active = store.find("Territory2Model", "State", "Active")
        if not active:
            return
        model_id = active[0]["Id"]
        territories = {t["Id"]: t for t in store.find("Territory2", "Territory2ModelId", model_id)}
        for tid in territories:
            depth, parent = 0, territories[tid].get("ParentTerritory2Id")
            while parent in territories and depth < 50:
                depth, parent = depth + 1, territories[parent].get("ParentTerritory2Id")
            self.depth[tid] = depth
        for rule in store.find("ObjectTerritory2AssignmentRule", "Territory2ModelId", model_id):
            if not rule.get("IsActive") or (rule.get("ObjectType") or "Account") != "Account":
                continue
            items = store.find("ObjectTerritory2AssignmentRuleItem", "RuleId", rule["Id"])
            targets = [a["Territory2Id"] for a in store.find("RuleTerritory2Association", "RuleId", rule["Id"])
                       if a.get("Territory2Id") in territories]
            if not items or not targets:
                continue
            items = sorted(items, key=lambda i: i.get("SortOrder") or 0)
            self.rules.append((_rule_predicate(rule.get("BooleanFilter"), items), targets))
        if org.get_object("UserTerritory2Association") and org.get_object("User"):
            active_users = {u["Id"] for u in store.find("User", "IsActive", True)}
            for tid in territories:
                self.users[tid] = [a["UserId"] for a in store.find("UserTerritory2Association", "Territory2Id", tid)
                                   if a.get("IsActive", True) and a.get("UserId") in active_users]
        self._parents = {tid: t.get("ParentTerritory2Id") for tid, t in territories.items()}

    def assign(self, account: dict[str, Any]) -> list[str]:
        """Territories the account falls into, deepest first."""
        found: list[str] = []
        for matches, targets in self.rules:
            if matches(account):
                found.extend(t for t in targets if t not in found)
        found.sort(key=lambda t: -self.depth.get(t, 0))
        return found

    def owners(self, territory: str) -> list[str]:
        """Active users assigned to the territory, or to its nearest ancestor that has some."""
        seen = 0
        node: str | None = territory
        while node and seen < 50:
            if self.users.get(node):
                return self.users[node]
            node, seen = self._parents.get(node), seen + 1
        return []


# -- the co-sell demo -----------------------------------------------------------------------------

_CHUNK = 5000
_ACCOUNT_TYPES = ("Customer - Direct", "Customer - Channel", "Prospect")
_ACCOUNT_TYPE_CUM = _cumulative((45, 25, 30))
_GEOCODE = ("Address", "Street", "Zip")
_GEOCODE_CUM = _cumulative((70, 15, 15))
_RATINGS = ("Hot", "Warm", "Cold", None)
_OPP_TYPES = ("New Customer", "Existing Customer - Upgrade", "Existing Customer - Replacement",
              "Existing Customer - Downgrade")
_OPP_TYPE_CUM = _cumulative((45, 35, 12, 8))
_LEAD_SOURCES = ("Partner Referral", "Web", "Phone Inquiry", "Purchased List", "Other")
_LEAD_SOURCE_CUM = _cumulative((45, 25, 12, 8, 10))
_PROGRAMS = ("Standard Deal Registration", "Partner Sourced Incentive", "Renewal Protection")
_PROGRAM_CUM = _cumulative((70, 20, 10))
_INFLUENCE_PERCENTS = (5.0, 10.0, 10.0, 15.0, 20.0, 25.0, 25.0, 50.0, 100.0)
_TEAM_EXTRA_CUM = _cumulative((60, 30, 10))


class _CosellDemo:
    def __init__(self, store: DataStore, size: int, seed: int) -> None:
        self.store = store
        self.org = store.org
        self.size = size
        master = Random(seed)
        # One stream per kind of record, so no stream's draws depend on how another was consumed.
        self.d_account, self.d_opp, self.d_part, self.d_reg, self.d_split = (
            _Draw(master.getrandbits(64)) for _ in range(5))
        self.counts: dict[str, int] = {}
        self._check_org()
        self.rates = _Rates(self.org)
        now = store.now().astimezone(timezone.utc)
        self.now_ts = int(now.timestamp())
        self.today = now.date().toordinal()
        self.first_day = date(2024, 1, 1).toordinal()
        # Customer accounts predate every generated opportunity (the earliest is created mid-2023).
        self.accounts_from = int(datetime(2021, 1, 1, tzinfo=timezone.utc).timestamp())
        self.accounts_until = min(self.now_ts, int(datetime(2023, 6, 30, tzinfo=timezone.utc).timestamp()))
        self.accounts_from = min(self.accounts_from, self.accounts_until - 86400)
        self._load_seeded()

    # -- setup ------------------------------------------------------------------------------------
    def _check_org(self) -> None:
        missing = [n for n in ("User", "Account", "Opportunity", "Co_Sell_Participant__c")
                   if self.org.get_object(n) is None]
        if missing:
            raise ValueError(f"the cosell_demo generator needs objects {missing}, which org "
                             f"{self.org.name!r} does not define")
        _require_values(self.org.get_object("Opportunity"), "StageName", _STAGE_NAMES)
        _require_values(self.org.get_object("Co_Sell_Participant__c"), "Role__c", _ROLE_BY_PARTNER_TYPE.values())
        registration = self.org.get_object("Deal_Registration__c")
        if registration is not None:
            _require_values(registration, "Status__c", _REG_STATUSES)

    def _load_seeded(self) -> None:
        store = self.store
        users = [u for u in store.find("User", "IsActive", True)
                 if not str(u.get("Username", "")).lower().startswith("integration")]
        if not users:
            raise ValueError("the cosell_demo generator needs an active, non-integration User in the seed")
        self.sales_users = [u["Id"] for u in users]
        self.partner_team = [u["Id"] for u in users if u.get("Department") == "Partners"] or self.sales_users
        self.partners: list[tuple[str, str, str | None, str]] = []  # (Id, role, marketplace, email domain)
        for p in store.find("Account", "Is_Partner__c", True):
            role = _ROLE_BY_PARTNER_TYPE.get(p.get("Partner_Type__c") or "")
            if role is None:
                continue
            lowered = str(p.get("Name", "")).lower()
            market = next((m for key, m in _MARKETPLACE_BY_NAME if key in lowered), None)
            site = str(p.get("Website") or "")
            domain = re.sub(r"^https?://(www\.)?", "", site).split("/")[0] or "partner.example"
            self.partners.append((p["Id"], role, market if role == "Cloud Provider" else None, domain))
        if not self.partners:
            raise ValueError("the cosell_demo generator needs partner Accounts (Is_Partner__c = true with a "
                             "Partner_Type__c) in the seed")
        self.channel_partners = [i for i, p in enumerate(self.partners) if p[1] in ("Reseller", "Distributor")]
        self.rules = _TerritoryRules(store)
        self.split_types: dict[str, str] = {}
        if self.org.get_object("OpportunitySplitType"):
            for dev in ("Revenue", "Overlay"):
                rows = store.find("OpportunitySplitType", "DeveloperName", dev)
                if rows:
                    self.split_types[dev] = rows[0]["Id"]
        opp = self.org.get_object("Opportunity")
        record_types = {rt.developer_name: rt.record_type_id for rt in opp.record_types if rt.active}
        self.rt_cosell = record_types.get("Co_Sell")
        self.rt_direct = record_types.get("Direct")
        industry = self.org.get_object("Account").field("Industry")
        valid = set(industry.active_values()) if industry else set()
        self.sector_industry = [ind if ind in valid else None for _, ind in _NAME_SECTOR]
        mc = self.org.features.multi_currency
        self.corporate = mc.corporate if mc else None
        self.with_currency = mc is not None
        currencies = self.rates.currencies
        fallback = self.corporate if self.corporate in currencies else currencies[0]
        self.country_currency = [c[1] if c[1] in currencies else fallback for c in _COUNTRIES]

    def _load(self, object_name: str, records: Iterable[dict[str, Any]]) -> None:
        self.counts[object_name] = self.counts.get(object_name, 0) + self.store.bulk_load(object_name, records)

    # -- run --------------------------------------------------------------------------------------
    def run(self) -> dict[str, int]:
        n_accounts = max(5, self.size // 4) if self.size else 0
        # Compact per-account facts the opportunities need; the records themselves are not kept.
        self.acct_ids: list[str] = []
        self.acct_name = array("l")
        self.acct_country = bytearray()
        self.acct_currency = bytearray()
        self.acct_territory: list[str | None] = []
        self.acct_owner = array("l")
        links: bool | None = None if self.org.get_object("ObjectTerritory2Association") else False
        for start in range(0, n_accounts, _CHUNK):
            assigned: list[tuple[str, list[str]]] = []
            self._load("Account", self._accounts(start, min(n_accounts, start + _CHUNK), assigned))
            if links is None and assigned:
                # A store that runs the assignment rules on save has linked the accounts already.
                links = not self.store.find("ObjectTerritory2Association", "ObjectId", assigned[0][0])
            if links and assigned:
                self._load("ObjectTerritory2Association", self._territory_links(assigned))
        registrations = self.org.get_object("Deal_Registration__c") is not None
        splits = self.org.get_object("OpportunitySplit") is not None and "Revenue" in self.split_types
        for start in range(0, self.size, _CHUNK):
            plans: list[tuple[Any, ...]] = []
            self._load("Opportunity", self._opportunities(start, min(self.size, start + _CHUNK), plans))
            self._load("Co_Sell_Participant__c", self._participants(plans))
            if registrations:
                self._load("Deal_Registration__c", self._registrations(plans))
            if splits:
                self._load("OpportunitySplit", self._splits(plans))
        return self.counts

    # -- accounts ---------------------------------------------------------------------------------
    def _account_name(self, index: int) -> str:
        code, suffix = divmod(self.acct_name[index], 8)
        prefix, sector = divmod(code, len(_NAME_SECTOR))
        suffixes = _COUNTRIES[self.acct_country[index]][5]
        return f"{_NAME_PREFIX[prefix]} {_NAME_SECTOR[sector][0]} {suffixes[suffix % len(suffixes)]}"

    def _accounts(self, start: int, stop: int, assigned: list[tuple[str, list[str]]]) -> Iterator[dict[str, Any]]:
        d = self.d_account
        rand, below = d.random, d.below
        new_id = self.store.new_id
        currencies = self.rates.currencies
        n_prefix, n_sector = len(_NAME_PREFIX), len(_NAME_SECTOR)
        for i in range(start, stop):
            ci = d.weighted(_COUNTRY_CUM, _COUNTRY_IDX)
            country, _cur, phone_cc, tld, number_first, suffixes, cities, _w = _COUNTRIES[ci]
            prefix, sector, suffix = below(n_prefix), below(n_sector), below(8)
            city, state, postal, lat, lon = cities[below(len(cities))]
            currency = self.country_currency[ci] if rand() < 0.85 else (self.corporate or self.country_currency[ci])
            street_no = 1 + below(1999)
            street = f"{_STREETS[below(len(_STREETS))]} {_STREET_KINDS[below(len(_STREET_KINDS))]}"
            acct_id = new_id("Account")
            record: dict[str, Any] = {
                "Id": acct_id,
                "CreatedDate": _stamp(d.between(self.accounts_from, self.accounts_until)),
                "Name": f"{_NAME_PREFIX[prefix]} {_NAME_SECTOR[sector][0]} {suffixes[suffix % len(suffixes)]}",
                "AccountNumber": f"CD{i + 1:08d}",
                "Type": d.weighted(_ACCOUNT_TYPE_CUM, _ACCOUNT_TYPES),
                "Website": f"https://www.{(_NAME_PREFIX[prefix] + _NAME_SECTOR[sector][0]).lower().replace(' ', '')}"
                           f".{tld}",
                "Phone": f"{phone_cc} {d.between(20, 99)} {d.between(1000, 9999)} {d.between(1000, 9999)}",
                "BillingStreet": f"{street_no} {street}" if number_first else f"{street} {street_no}",
                "BillingCity": city,
                "BillingPostalCode": d.fill(postal),
                "BillingCountry": country,
                "Is_Partner__c": False,
            }
            if self.with_currency:
                record["CurrencyIsoCode"] = currency
            industry = self.sector_industry[sector]
            if industry:
                record["Industry"] = industry
            rating = _RATINGS[below(4)]
            if rating:
                record["Rating"] = rating
            if state:
                record["BillingState"] = state
            roll = rand()
            if roll >= 0.05:  # 5% of accounts have no revenue on file
                revenue = (float(round(10 ** d.uniform(8.0, 10.6), -5)) if roll < 0.33
                           else float(round(10 ** d.uniform(5.7, 8.0), -4)))
                record["AnnualRevenue"] = revenue
                record["NumberOfEmployees"] = min(99_999_999, max(5, int(revenue / d.uniform(150_000, 450_000))))
            if rand() < 0.8:
                record["BillingLatitude"] = round(lat + d.uniform(-0.08, 0.08), 6)
                record["BillingLongitude"] = round(lon + d.uniform(-0.08, 0.08), 6)
                record["BillingGeocodeAccuracy"] = d.weighted(_GEOCODE_CUM, _GEOCODE)
            if i > 50 and rand() < 0.04:
                record["ParentId"] = self.acct_ids[below(len(self.acct_ids))]
            if rand() < 0.2:
                record["Description"] = f"{_NAME_SECTOR[sector][0]} company headquartered in {city}."
            if rand() < 0.3:
                record["Cloud_Account_Id__c"] = f"{d.between(10 ** 11, 10 ** 12):012d}"
            if rand() < 0.5:
                record["Portal_Id__c"] = _uuid(d.getrandbits(128))
            territories = self.rules.assign(record)
            territory = territories[0] if territories else None
            owners = self.rules.owners(territory) if territory else []
            owner = d.pick(owners) if owners else d.pick(self.sales_users)
            record["OwnerId"] = owner
            self.acct_ids.append(acct_id)
            self.acct_name.append((prefix * n_sector + sector) * 8 + suffix)
            self.acct_country.append(ci)
            self.acct_currency.append(currencies.index(currency))
            self.acct_territory.append(territory)
            self.acct_owner.append(self.sales_users.index(owner) if owner in self.sales_users else 0)
            if territories:
                assigned.append((acct_id, territories))
            yield record

    def _territory_links(self, assigned: list[tuple[str, list[str]]]) -> Iterator[dict[str, Any]]:
        new_id = self.store.new_id
        for account_id, territories in assigned:
            for territory in territories:
                yield {"Id": new_id("ObjectTerritory2Association"), "ObjectId": account_id,
                       "Territory2Id": territory, "AssociationCause": "Territory2AssociationRules",
                       "SobjectType": "Account"}

    # -- opportunities ----------------------------------------------------------------------------
    def _plan_participants(self, direct: bool) -> list[list[Any]]:
        """[partner index, role, attribution, split type, percent] rows; revenue splits total 100."""
        d = self.d_opp
        rand = d.random
        n_partners = len(self.partners)
        if direct:  # a direct deal involves at most the channel partner that fulfils it
            chosen = [d.pick(self.channel_partners) if self.channel_partners else d.below(n_partners)]
        else:
            chosen = d.sample(n_partners, min(n_partners, d.weighted(_PARTICIPANT_COUNT_CUM, (1, 2, 3, 4))))
        plan: list[list[Any]] = []
        for position, p in enumerate(chosen):
            role = self.partners[p][1]
            if position == 0:
                attribution = "Sourced" if rand() < 0.6 else "Influenced"
            elif role == "System Integrator":
                attribution = "Delivered" if rand() < 0.7 else "Influenced"
            else:
                attribution = "Influenced" if rand() < 0.8 else "Delivered"
            if attribution == "Sourced" or role in ("Reseller", "Distributor"):
                split_type = "Revenue"
            elif attribution == "Delivered":
                split_type = "Revenue" if rand() < 0.5 else "Influence"
            else:
                split_type = "Revenue" if rand() < 0.25 else "Influence"
            plan.append([p, role, attribution, split_type, None])
        revenue = [row for row in plan if row[3] == "Revenue"]
        if not revenue:
            plan[0][3] = "Revenue"
            revenue = [plan[0]]
        for row, hundredths in zip(revenue, self._revenue_split(len(revenue))):
            row[4] = hundredths / 100
        for row in plan:
            if row[3] == "Influence":
                row[4] = d.pick(_INFLUENCE_PERCENTS) if rand() < 0.8 else round(d.uniform(1, 100), 2)
        return plan

    def _revenue_split(self, count: int) -> list[int]:
        """`count` shares in hundredths of a percent that add up to exactly 10000."""
        d = self.d_opp
        if count == 1:
            return [10000]
        mode = d.random()
        if mode < 0.3:  # an equal split: 33.34 / 33.33 / 33.33
            share, rest = divmod(10000, count)
            return [share + rest] + [share] * (count - 1)
        step = 500 if mode < 0.85 else 1  # mostly multiples of 5%, sometimes to the hundredth
        cuts = sorted(step * (1 + c) for c in d.sample(10000 // step - 1, count - 1))
        bounds = [0, *cuts, 10000]
        return sorted((b - a for a, b in zip(bounds, bounds[1:])), reverse=True)

    def _opportunities(self, start: int, stop: int, plans: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
        d = self.d_opp
        rand, below = d.random, d.below
        new_id = self.store.new_id
        rates = self.rates
        currencies = rates.currencies
        today, first_day, now_ts = self.today, self.first_day, self.now_ts
        open_from = max(first_day, today - 45)  # open deals include some that slipped past their date
        n_accounts = len(self.acct_ids)
        for _ in range(start, stop):
            a = below(n_accounts)
            stage = d.weighted(_STAGE_CUM, _STAGE_NAMES)
            probability, forecast, closed, won, _w = _STAGES[stage]
            close = d.between(first_day, max(first_day + 1, today + 1)) if closed else d.between(open_from,
                                                                                                   open_from + 345)
            created = min(now_ts, (min(close, today) - d.between(10, 180) - _EPOCH_ORDINAL) * 86400
                          + d.between(7 * 3600, 20 * 3600))
            currency = currencies[self.acct_currency[a]]
            local = 10 ** d.uniform(3.7, 6.3) * rates.rate(currency, close)
            amount: float | None = rates.money(currency, round(local, -3 if rates.decimals.get(currency) == 0 else -1))
            if not won and rand() < 0.05:
                amount = None
            direct = self.rt_direct is not None and rand() < 0.15
            plan = self._plan_participants(direct)
            roles = {row[1] for row in plan}
            market = next((self.partners[row[0]][2] for row in plan if self.partners[row[0]][2]), None)
            if market and rand() >= 0.6:
                market = None
            owner = self.sales_users[self.acct_owner[a]] if rand() < 0.8 else d.pick(self.sales_users)
            opp_id = new_id("Opportunity")
            record: dict[str, Any] = {
                "Id": opp_id,
                "CreatedDate": _stamp(created),
                "Name": f"{self._account_name(a)} - {d.pick(_PRODUCTS)}"[:120],
                "AccountId": self.acct_ids[a],
                "OwnerId": owner,
                "CloseDate": _day(close),
                "StageName": stage,
                "Probability": probability,
                "ForecastCategoryName": forecast,
                "IsClosed": closed,
                "IsWon": won,
                "Type": d.weighted(_OPP_TYPE_CUM, _OPP_TYPES),
                "LeadSource": d.weighted(_LEAD_SOURCE_CUM, _LEAD_SOURCES),
                "Reconciliation_Status__c": "Not Applicable",
            }
            record_type = self.rt_direct if direct else self.rt_cosell
            if record_type:
                record["RecordTypeId"] = record_type
            if self.with_currency:
                record["CurrencyIsoCode"] = currency
            if amount is not None:
                record["Amount"] = amount
            territory = self.acct_territory[a]
            if territory:
                record["Territory2Id"] = territory
            if not direct:
                record["Co_Sell_Motion__c"] = ("Hyperscaler" if "Cloud Provider" in roles else
                                               "Technology Alliance" if "Vendor" in roles else
                                               "System Integrator" if "System Integrator" in roles else
                                               "Partner-to-Partner")
            if market:
                record["Cloud_Marketplace__c"] = market
                self._marketplace_fields(record, market, stage, amount, currency)
            elif not direct and rand() < 0.5:
                record["Cloud_Marketplace__c"] = "None"
            if not closed:
                record["NextStep"] = d.pick(_NEXT_STEPS)
            if rand() < 0.15:
                record["Description"] = d.pick(_DESCRIPTIONS)
            if rand() < 0.5:
                record["Portal_Id__c"] = _uuid(d.getrandbits(128))
            plans.append((opp_id, a, currency, amount, stage, created, owner, plan, market))
            yield record

    def _marketplace_fields(self, record: dict[str, Any], market: str, stage: str, amount: float | None,
                            currency: str) -> None:
        d = self.d_opp
        if market == "AWS Marketplace":
            record["Customer_Cloud_Account_Id__c"] = f"{d.between(10 ** 11, 10 ** 12):012d}"
            offer = "offer-" + "".join(_B36[d.below(36)] for _ in range(13))
            agreement = "agmt-" + "".join(_B36[d.below(36)] for _ in range(25))
        elif market == "Azure Marketplace":
            record["Customer_Cloud_Account_Id__c"] = _uuid(d.getrandbits(128))  # the customer's Entra tenant
            offer = f"cosell-demo.cd-platform-saas.private-{d.below(10 ** 6):06d}"
            agreement = _uuid(d.getrandbits(128))  # the SaaS subscription
        else:
            billing = "-".join("%06X" % d.getrandbits(24) for _ in range(3))
            record["Customer_Cloud_Account_Id__c"] = billing
            offer = f"projects/cosell-demo-public/services/cd-platform/privateOffers/{d.getrandbits(64):016x}"
            agreement = f"billingAccounts/{billing}/orders/{d.getrandbits(48):012x}"
        if stage in _LATE_STAGES:
            record["Marketplace_Offer_Id__c"] = offer
        if stage == "Closed Won":
            record["Marketplace_Agreement_Id__c"] = agreement
            roll = d.random()
            net = (amount or 0.0) * (1 - _MARKETPLACE_FEE.get(market, 0.03))
            if roll < 0.7:
                record["Reconciliation_Status__c"] = "Matched"
                record["Net_Received_Amount__c"] = self.rates.money(currency, net)
            elif roll < 0.85:
                record["Reconciliation_Status__c"] = "Amount Mismatch"
                record["Net_Received_Amount__c"] = self.rates.money(currency, net * d.uniform(0.80, 0.99))
            else:
                record["Reconciliation_Status__c"] = "Missing Payout"

    # -- children of opportunities ----------------------------------------------------------------
    def _participants(self, plans: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
        d = self.d_part
        rand, pick = d.random, d.pick
        new_id = self.store.new_id
        with_currency = self.with_currency
        for opp_id, _a, currency, _amount, _stage, created, _owner, plan, _market in plans:
            created_at = _stamp(created)
            for partner, role, attribution, split_type, percent in plan:
                partner_id, _role, _m, domain = self.partners[partner]
                record: dict[str, Any] = {
                    "Id": new_id("Co_Sell_Participant__c"),
                    "CreatedDate": created_at,
                    "Opportunity__c": opp_id,
                    "Partner_Account__c": partner_id,
                    "Role__c": role,
                    "Attribution__c": attribution,
                    "Split_Type__c": split_type,
                    "Split_Percent__c": percent,
                }
                if with_currency:
                    record["CurrencyIsoCode"] = currency  # a detail record carries its master's currency
                if rand() < 0.85:
                    first, last = pick(_FIRST_NAMES), pick(_LAST_NAMES)
                    record["Partner_Rep_Name__c"] = f"{first} {last}"
                    record["Partner_Rep_Email__c"] = f"{_ascii(first)}.{_ascii(last)}@{domain}"
                if rand() < 0.2:
                    record["Notes__c"] = pick(_PARTICIPANT_NOTES)
                if rand() < 0.5:
                    record["Portal_Id__c"] = _uuid(d.getrandbits(128))
                yield record

    def _registrations(self, plans: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
        d = self.d_reg
        rand, between = d.random, d.between
        new_id = self.store.new_id
        now_ts, today = self.now_ts, self.today
        for opp_id, a, currency, amount, stage, created, _owner, plan, market in plans:
            if rand() >= 0.5:
                continue
            _p, _f, closed, won, _w = _STAGES[stage]
            status = d.weighted(_REG_WEIGHTS["won" if won else "lost" if closed else "open"], _REG_STATUSES)
            # The registering partner: a channel or services partner when one is on the deal.
            registrant = next((row[0] for row in plan if row[1] not in ("Cloud Provider", "Vendor")), plan[0][0])
            record: dict[str, Any] = {
                "Id": new_id("Deal_Registration__c"),
                "OwnerId": d.pick(self.partner_team),
                "Opportunity__c": opp_id,
                "Partner_Account__c": self.partners[registrant][0],
                "End_Customer_Account__c": self.acct_ids[a],
                "Program__c": "Marketplace Private Offer" if market else d.weighted(_PROGRAM_CUM, _PROGRAMS),
            }
            if self.with_currency:
                record["CurrencyIsoCode"] = currency
            if amount is not None:
                record["Registered_Amount__c"] = amount
            submitted = None
            if status in ("Submitted", "Under Review"):  # still waiting, so submitted lately
                submitted = now_ts - between(3600, 30 * 86400)
                record["Submitted_At__c"] = _stamp(submitted)
            elif status != "Draft":
                submitted = min(now_ts - 3600, created + d.below(21) * 86400 + between(0, 8 * 3600))
                record["Submitted_At__c"] = _stamp(submitted)
                if status in ("Approved", "Rejected", "Expired"):
                    decided = min(now_ts, submitted + between(3600, 14 * 86400))
                    record["Decided_At__c"] = _stamp(decided)
                    if status == "Rejected":
                        record["Rejection_Reason__c"] = d.pick(_REJECTION_REASONS)
                    else:  # approved for a fixed term; past it, the registration has expired
                        expiry = decided // 86400 + _EPOCH_ORDINAL + _REGISTRATION_TERM_DAYS
                        status = "Approved" if expiry >= today else "Expired"
                        record["Expiry_Date__c"] = _day(expiry)
            record["Status__c"] = status
            record["CreatedDate"] = _stamp(min(created, submitted) if submitted is not None else created)
            if rand() < 0.5:
                record["Portal_Id__c"] = _uuid(d.getrandbits(128))
            yield record

    def _splits(self, plans: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
        d = self.d_split
        rand = d.random
        new_id = self.store.new_id
        money = self.rates.money
        revenue_type = self.split_types["Revenue"]
        overlay_type = self.split_types.get("Overlay")
        users = self.sales_users
        with_currency = self.with_currency
        for opp_id, _a, currency, amount, _stage, created, owner, _plan, _market in plans:
            if amount is None or rand() >= 0.3:
                continue
            created_at = _stamp(created)
            others = [u for u in users if u != owner]
            extra = [others[i] for i in d.sample(len(others), min(len(others),
                                                                   d.weighted(_TEAM_EXTRA_CUM, (0, 1, 2))))]
            team = [owner, *extra]
            cuts = sorted(500 * (1 + c) for c in d.sample(19, len(team) - 1))
            bounds = [0, *cuts, 10000]
            shares = sorted((b - c for c, b in zip(bounds, bounds[1:])), reverse=True)  # the owner gets most
            rows = [(user, revenue_type, share / 100) for user, share in zip(team, shares)]
            if overlay_type and rand() < 0.3:
                rows.append((d.pick(self.partner_team), overlay_type, d.pick((10.0, 25.0, 50.0, 100.0))))
            for user, split_type, percent in rows:
                record = {"Id": new_id("OpportunitySplit"), "CreatedDate": created_at, "OpportunityId": opp_id,
                          "SplitOwnerId": user,
                          "SplitTypeId": split_type, "SplitPercentage": percent,
                          "SplitAmount": money(currency, amount * percent / 100)}
                if split_type != revenue_type:
                    record["SplitNote"] = "Partner overlay credit"
                if with_currency:
                    record["CurrencyIsoCode"] = currency
                yield record


_ASCII = str.maketrans({"ü": "u", "ö": "o", "ä": "a", "é": "e", "á": "a", "í": "i", "ó": "o", "ı": "i",
                        "'": "", " ": ""})


def _ascii(text: str) -> str:
    return text.lower().translate(_ASCII)


def generate_cosell_demo(store: DataStore, *, size: int, seed: int = 42) -> dict[str, int]:
    """Customer accounts, co-sell opportunities (`size` of them) and their participants,
    registrations, splits and territory assignments, on top of the cosell_demo seed."""
    return _CosellDemo(store, size, seed).run()


# -- the generic generator (orgs built from describe payloads) ------------------------------------

# Rows of these objects come from the org definition itself (currencies, record types), not from data.
_NOT_GENERATED = frozenset({"currencytype", "datedconversionrate", "recordtype"})
_WORDS = ("account", "alpha", "blue", "bridge", "cloud", "delta", "ember", "field", "global", "harbor", "insight",
          "journey", "kernel", "launch", "market", "north", "orbit", "partner", "quality", "river", "signal",
          "summit", "transit", "unity", "vector", "west")
_TITLES = ("CEO", "CFO", "CTO", "VP Sales", "Head of Procurement", "IT Director", "Cloud Architect",
           "Engineering Manager", "Data Scientist", "Operations Lead")
_OPTIONAL_FILL = 0.6
_FIRST_DAY = date(2024, 1, 1).toordinal()
_LAST_DAY = date(2026, 12, 31).toordinal()


def _generatable(obj: ObjectDef) -> bool:
    return (obj.createable and obj.queryable and obj.name.lower() not in _NOT_GENERATED
            and not obj.raw.get("associateEntityType") and not obj.raw.get("customSetting"))


def _required(f: FieldDef) -> bool:
    return f.type == "boolean" or (not f.nillable and not f.defaulted_on_create)


def _creation_order(objects: list[ObjectDef]) -> list[ObjectDef]:
    """Parents before children where the references allow it; required references decide cycles."""
    by_name = {o.name.lower(): o for o in objects}
    state: dict[str, int] = {}
    order: list[ObjectDef] = []

    def visit(obj: ObjectDef) -> None:
        key = obj.name.lower()
        if key in state:
            return
        state[key] = 1
        refs = sorted((f for f in obj.fields if f.type == "reference" and f.createable),
                      key=lambda f: not _required(f))
        for f in refs:
            for target in f.reference_to:
                parent = by_name.get(target.lower())
                if parent is not None and parent is not obj:
                    visit(parent)
        order.append(obj)

    for obj in objects:
        visit(obj)
    return order


class _Generic:
    def __init__(self, store: DataStore, size: int, seed: int) -> None:
        self.store = store
        self.org = store.org
        self.size = size
        self.rng = _Draw(seed)
        now = store.now().astimezone(timezone.utc)
        self.now_ts = int(now.timestamp())
        self._first_user: str | None = None

    def run(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        objects = _creation_order([o for o in self.org.objects if _generatable(o)])
        # Users first: every other record has an owner and a creator, and the org acts as one of them.
        objects.sort(key=lambda o: o.name != "User")
        for obj in objects:
            makers = self._makers(obj)
            if makers is None:
                counts[obj.name] = 0
                continue
            counts[obj.name] = self.store.bulk_load(obj.name, self._records(obj, makers))
            if obj.name == "User":
                self._act_as_a_generated_user()
        return counts

    def _act_as_a_generated_user(self) -> None:
        """A folder org has no seeded users: the first generated one becomes the org's current user (the
        API user), so audit fields and default owners are set from here on as in a real org."""
        if self.store.current_user_id is None and self._first_user is not None:
            self.store.current_user_id = self._first_user

    def _records(self, obj: ObjectDef, makers: list[tuple[str, bool, Callable[[int], Any]]]
                 ) -> Iterator[dict[str, Any]]:
        rand = self.rng.random
        new_id = self.store.new_id
        offset = len(self.store.ids(obj.name))
        for i in range(offset, offset + self.size):
            record: dict[str, Any] = {"Id": new_id(obj.name)}
            for name, required, make in makers:
                if required or rand() < _OPTIONAL_FILL:
                    value = make(i)
                    if value is not None:
                        record[name] = value
            if obj.name == "User" and self.store.current_user_id is None:
                self._creates_the_users(obj, record)
            self._recent.append(record["Id"])
            yield record

    def _creates_the_users(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        # the first user, active as an API user is, created the others (and itself)
        if self._first_user is None:
            self._first_user = record["Id"]
            if obj.field("IsActive") is not None:
                record["IsActive"] = True
        for audit in ("CreatedById", "LastModifiedById"):
            if obj.field(audit) is not None:
                record[audit] = self._first_user

    # -- one value maker per field ----------------------------------------------------------------
    def _makers(self, obj: ObjectDef) -> list[tuple[str, bool, Callable[[int], Any]]] | None:
        self._recent: deque[str] = deque(maxlen=1000)
        makers = []
        for f in obj.fields:
            if (not f.createable or f.calculated or f.auto_number or f.type in ("id", "address", "location")
                    or f.raw.get("deprecatedAndHidden")):
                continue
            # a lookup the org never leaves empty (an owner, a required parent) is always filled,
            # even where the org would default it
            required = _required(f) or (f.type == "reference" and not f.nillable)
            make = self._maker(obj, f, required)
            if make is None:
                if required:
                    log.info("generic generator: skipping %s, no value possible for required field %s",
                             obj.name, f.name)
                    return None
                continue
            makers.append((f.name, required, make))
        return makers

    def _maker(self, obj: ObjectDef, f: FieldDef, required: bool) -> Callable[[int], Any] | None:
        rng = self.rng
        t = f.type
        unique = f.unique or f.external_id
        if t == "reference":
            return self._reference(obj, f, required)
        if t in ("picklist", "multipicklist", "combobox"):
            values = f.active_values()
            if not values:
                return (lambda i: self._text(f, i, unique)) if t == "combobox" else None
            if t == "multipicklist":
                most = min(3, len(values))
                return lambda i: ";".join(values[j] for j in rng.sample(len(values), rng.between(1, most + 1)))
            if unique:
                return None if len(values) < self.size else (lambda i: values[i % len(values)])
            return lambda i: rng.pick(values)
        if t == "boolean":
            return lambda i: rng.random() < 0.5
        if t in ("int", "long"):
            digits = min(f.digits or (18 if t == "long" else 9), 18)
            top = 10 ** min(digits, 6) - 1
            if unique:
                return lambda i: i if i < 10 ** digits else None
            return lambda i: rng.between(0, top + 1)
        if t in ("double", "currency", "percent"):
            return self._number(f, unique)
        if t == "date":
            return lambda i: _day(rng.between(_FIRST_DAY, _LAST_DAY + 1))
        if t == "datetime":
            return lambda i: _stamp(rng.between(self.now_ts - 2 * 365 * 86400, self.now_ts + 1))
        if t == "time":
            return lambda i: f"{rng.below(24):02d}:{15 * rng.below(4):02d}:00.000Z"
        if t == "base64":
            return (lambda i: "U2FtcGxlIGRhdGE=") if required else None
        if t == "anyType" and not required:
            return None
        return lambda i: self._text(f, i, unique)

    def _reference(self, obj: ObjectDef, f: FieldDef, required: bool) -> Callable[[int], Any] | None:
        rng = self.rng
        if f.name == "RecordTypeId" or f.reference_to == ["RecordType"]:
            ids = [rt.record_type_id for rt in obj.record_types if rt.active and rt.record_type_id]
            return (lambda i: rng.pick(ids)) if ids else None
        pools = [self.store.ids(t) for t in f.reference_to
                 if t.lower() != obj.name.lower() and self.org.get_object(t) is not None]
        pools = [p for p in pools if p]
        self_ref = any(t.lower() == obj.name.lower() for t in f.reference_to)
        recent = self._recent

        def pick(i: int) -> str:
            pool = rng.pick(pools)
            return rng.pick(pool)

        if pools:
            if self_ref and not required:
                return lambda i: rng.pick(recent) if recent and rng.random() < 0.3 else pick(i)
            return pick
        if self_ref and not required:
            return lambda i: rng.pick(recent) if recent and rng.random() < 0.3 else None
        return None

    def _number(self, f: FieldDef, unique: bool) -> Callable[[int], Any]:
        rng = self.rng
        scale = max(f.scale, 0)
        whole_digits = max(f.precision - scale, 0)
        top = 10 ** whole_digits - 10 ** -scale if whole_digits else 1 - 10 ** -scale
        lower = f.name.lower()
        bottom = 0.0
        if "latitude" in lower and whole_digits >= 2:
            bottom, top = -90.0, 90.0
        elif "longitude" in lower and whole_digits >= 3:
            bottom, top = -180.0, 180.0
        elif f.type == "percent":
            top = min(top, 100.0)
        else:
            top = min(top, 1_000_000.0)
        if unique:
            return lambda i: float(i) if i <= top else None
        return lambda i: float(min(top, max(bottom, round(rng.uniform(bottom, top), scale))))

    def _text(self, f: FieldDef, i: int, unique: bool) -> str | None:
        rng = self.rng
        length = f.length or 255
        lower = f.name.lower().removesuffix("__c")
        t = f.type
        if t == "email" or "email" in lower or lower == "username":  # usernames are email-shaped
            first, last = _ascii(rng.pick(_FIRST_NAMES)), _ascii(rng.pick(_LAST_NAMES))
            value = f"{first}.{last}{'.' + _base36(i) if unique else ''}@example.com"
        elif t == "url" or "website" in lower:
            value = f"https://www.{rng.pick(_WORDS)}{_base36(i)}.example.com"
        elif t == "phone" or "phone" in lower or "fax" in lower:
            value = f"+1 {i:010d}" if unique else f"+1 {rng.between(201, 990)} 555 {rng.below(10000):04d}"
        elif unique and length >= 36:
            value = _uuid(rng.getrandbits(128))
        elif unique:
            value = f"{f.name[:2].upper()}-{_base36(i)}"
            if len(value) > length:
                value = _base36(i)
        elif "firstname" in lower:
            value = rng.pick(_FIRST_NAMES)
        elif "lastname" in lower:
            value = rng.pick(_LAST_NAMES)
        elif "city" in lower or "country" in lower or "state" in lower or "postalcode" in lower or "street" in lower:
            country = _COUNTRIES[rng.weighted(_COUNTRY_CUM, _COUNTRY_IDX)]
            city, state, postal, _lat, _lon = rng.pick(country[6])
            value = (city if "city" in lower else country[0] if "country" in lower else (state or city)
                     if "state" in lower else rng.fill(postal) if "postalcode" in lower
                     else f"{rng.between(1, 2000)} {rng.pick(_STREETS)} Street")
        elif "title" in lower:
            value = rng.pick(_TITLES)
        elif f.name_field or lower.endswith("name"):
            value = f"{rng.pick(_NAME_PREFIX)} {rng.pick(_NAME_SECTOR)[0]}"
        else:
            words = rng.between(2, 13 if t == "textarea" else 6)
            value = " ".join(rng.pick(_WORDS) for _ in range(words)).capitalize()
        if len(value) > length:
            if unique:
                return None
            value = value[:length].rstrip()
        return value


def generate_generic(store: DataStore, *, size: int, seed: int = 42) -> dict[str, int]:
    """`size` records of every createable, queryable object, parents first, with values that respect
    each field's type, length, precision/scale, active picklist values, requiredness and uniqueness."""
    return _Generic(store, size, seed).run()


GENERATORS: dict[str, GeneratorFn] = {
    "cosell_demo": generate_cosell_demo,
    "generic": generate_generic,
}
