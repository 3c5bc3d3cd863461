"""Reading an account-overlap export: a CSV in the shape account-mapping tools (Crossbeam,
Reveal and the like) export, one row per partner account that overlaps ours.

Columns are found by name, case- and punctuation-insensitive, under the names those tools
use (see COLUMNS). Required: the partner, the partner's account name, its domain (the column
must exist; a row may leave it empty), the population and the partner's own record id.
Optional: the country, the phone and the D-U-N-S number (extra match keys). The whole file is checked before anything is used: every problem is
reported with its line number, and a file with any problem is refused as a whole."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from connector.bounds import MAX_VALUE_CHARS, value_problem
from connector.errors import ConnectorError
from connector.overlaps.matching import InvalidDomain, InvalidDuns, normalise_domain, normalise_duns, normalise_name

COLUMNS: dict[str, tuple[str, ...]] = {
    "partner": ("partner", "partner_name", "partner_organization", "partner_org", "partner_company"),
    "account_name": ("account_name", "partner_account_name", "company_name", "company", "name"),
    "domain": ("domain", "account_domain", "partner_account_domain", "company_domain", "website", "url"),
    "population": ("population", "partner_population", "partner_populations", "populations"),
    # a two-sided export (Crossbeam's) carries both: `Population` is then ours, `Partner Population` theirs
    "our_population": (),
    "partner_record_id": ("partner_record_id", "partner_account_id", "record_id", "partner_crm_id", "crm_id"),
    "country": ("country", "account_country", "partner_account_country", "billing_country"),
    "phone": ("phone", "account_phone", "company_phone", "partner_account_phone"),
    "duns": ("duns", "duns_number", "d_u_n_s", "d_u_n_s_number", "dunsnumber"),
}
REQUIRED = ("partner", "account_name", "domain", "population", "partner_record_id")
# Standard populations of the account-mapping tools, spelled one way; other (custom) populations
# are kept as the export spells them.
POPULATIONS = {"customers": "Customers", "customer": "Customers", "open opportunities": "Open Opportunities",
               "opportunities": "Open Opportunities", "open opportunity": "Open Opportunities",
               "prospects": "Prospects", "prospect": "Prospects"}
# Column sets of other exports an admin may pick up by mistake: named in the refusal.
OTHER_EXPORTS = {
    "an AWS Marketplace billing-event feed (use `cosell marketplace import`)": {"billing_event_id", "transaction_type"},
    "an Azure Marketplace payout export (use `cosell marketplace import`)": {"earningid"},
}
MAX_PROBLEMS = 50


class OverlapFileError(ConnectorError):
    """The overlap export was refused; nothing was imported. `problems` are 'line N: reason'."""

    def __init__(self, source: str, problems: list[str]):
        shown = problems[:MAX_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{source}: refused, nothing imported:\n  " + "\n  ".join(shown) + more)
        self.problems = problems


@dataclass(frozen=True)
class OverlapRow:
    line: int                   # the file's line number (the header is line 1)
    partner: str
    account_name: str
    domain: str | None          # normalised
    raw_domain: str
    population: str
    partner_record_id: str
    country: str | None
    our_population: str | None = None   # our side's population, when the export carries both sides
    phone: str | None = None            # optional match keys
    duns: str | None = None             # normalised: nine digits

    @property
    def key(self) -> tuple[str, str]:
        """Identifies the row across exports: the partner and its own record id."""
        return normalise_name(self.partner) or self.partner.casefold(), self.partner_record_id


def _column_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lstrip("\ufeff").casefold()).strip("_")


_OURS, _THEIRS = ("population", "populations"), ("partner_population", "partner_populations")


def _two_sided(keys: list[str], found: list[int]) -> tuple[list[int], int | None]:
    """Population columns: one of our side (`Population`) and one of the partner's (`Partner Population`) are
    the two sides of a two-sided export, not a clash: the partner's is the population, ours is kept beside it.
    Any other repetition is still two columns meaning one thing."""
    ours = [i for i in found if keys[i] in _OURS]
    theirs = [i for i in found if keys[i] in _THEIRS]
    if len(ours) == 1 and len(theirs) == 1 and len(found) == 2:
        return theirs, ours[0]
    return found, None


def _population(value: str) -> str:
    return POPULATIONS.get(" ".join(value.casefold().split()), value)


def read_overlaps(path: Path | str) -> list[OverlapRow]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OverlapFileError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OverlapFileError(str(path), [f"not UTF-8 text (byte {exc.start}); export the CSV as UTF-8"]) from None
    return parse_overlaps(text, source=str(path))


def parse_overlaps(text: str, *, source: str = "overlap export") -> list[OverlapRow]:
    if text.lstrip().startswith(("{", "[")):
        raise OverlapFileError(source, ["line 1: this is JSON; an overlap export is a CSV file"])
    reader = csv.reader(io.StringIO(text))
    problems: list[str] = []
    lines = _guarded(reader, problems)
    header = next(lines, None)
    if problems:
        raise OverlapFileError(source, problems)
    if not header or not any(h.strip() for h in header):
        raise OverlapFileError(source, ["line 1: the file is empty; expected a header row"])
    keys = [_column_key(h) for h in header]
    for label, columns in OTHER_EXPORTS.items():
        if columns <= set(keys):
            raise OverlapFileError(source, [f"line 1: this looks like {label}, not an account-overlap export"])
    where: dict[str, int] = {}
    problems.extend(f"line 1: header {h[:40]!r} {p}" for h in header if (p := value_problem(h)))
    for field, aliases in COLUMNS.items():
        found = [i for i, k in enumerate(keys) if k in aliases]
        if field == "population":
            found, ours = _two_sided(keys, found)
            if ours is not None:
                where["our_population"] = ours
        if len(found) > 1:
            problems.append(f"line 1: columns {', '.join(repr(header[i]) for i in found)} all mean {field}; "
                            "keep one")
        if found:
            where[field] = found[0]
    missing = [f for f in REQUIRED if f not in where]
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)} (accepted names: "
                        + "; ".join(f"{f}: {', '.join(COLUMNS[f])}" for f in missing)
                        + f"); the header has: {', '.join(header)}")
    if problems:
        raise OverlapFileError(source, problems)

    rows: list[OverlapRow] = []
    first_seen: dict[tuple[str, str], int] = {}
    for values in lines:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(f"line {line}: {len(values)} values but the header has {len(header)} columns")
            continue
        bad = [f"column {header[i]!r} {p}" for i, v in enumerate(values) if (p := value_problem(v))]
        if bad:
            problems.append(f"line {line}: {'; '.join(bad)}")
            continue
        get = {f: values[i].strip() for f, i in where.items()}
        empty = [f for f in ("partner", "account_name", "population", "partner_record_id") if not get[f]]
        if empty:
            problems.append(f"line {line}: empty {', '.join(empty)}")
            continue
        try:
            domain = normalise_domain(get["domain"])
        except InvalidDomain as exc:
            problems.append(f"line {line}: domain {exc}")
            continue
        try:
            duns = normalise_duns(get.get("duns"))
        except InvalidDuns as exc:
            problems.append(f"line {line}: D-U-N-S {exc}")
            continue
        row = OverlapRow(line, get["partner"], get["account_name"], domain, get["domain"],
                         _population(get["population"]),
                         get["partner_record_id"], get.get("country") or None,
                         _population(get["our_population"]) if get.get("our_population") else None,
                         get.get("phone") or None, duns)
        if row.key in first_seen:
            problems.append(f"line {line}: duplicate of line {first_seen[row.key]} (partner {row.partner!r}, "
                            f"record id {row.partner_record_id!r})")
            continue
        first_seen[row.key] = line
        rows.append(row)
    if problems:
        raise OverlapFileError(source, problems)
    if not rows:
        raise OverlapFileError(source, ["the file has a header but no rows"])
    return rows


def _guarded(reader, problems: list[str]):
    """The reader's rows until one cannot be read (a value past the csv module's own limit, a broken
    quote): that becomes a problem of its line, and reading stops there."""
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(f"line {reader.line_num}: not readable as CSV ({exc}); a value is at most "
                            f"{MAX_VALUE_CHARS:,} characters and a quote must be closed")
            return
        yield values


__all__ = ["COLUMNS", "OverlapFileError", "OverlapRow", "parse_overlaps", "read_overlaps"]
