"""Matching a partner's overlap row to one of the org's accounts: the normalisation rules
and the decision, with no database in sight.

The order is the one account-mapping tools use: the web domain first (the strongest key a
company has), then the legal name with its country. A match is only ever taken when exactly
one account qualifies; anything less sure is listed for review with the candidates and why,
never guessed:

- one account on the row's domain -> matched (`domain`), unless both give a country and the
  countries differ (a subsidiary the org does not have): review;
- several accounts share the domain (subsidiaries) -> matched only if exactly one of them
  also has the row's name and no other country (`domain+name`), or the name and country
  (`domain+name+country`), or, the name settling nothing, the country (`domain+country`);
  else review;
- no domain match: exactly one account with the row's normalised name and country ->
  matched (`name+country`) unless that account has a different domain of its own (review);
  a name match without a country on either side, several name matches, or only a similar
  name -> review;
- nothing -> unmatched (the account is missing in the org, or mirrored under another name).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

import pycountry

MatchStatus = Literal["matched", "review", "unmatched"]

# Legal-form words dropped from the end of a company name before names are compared.
LEGAL_SUFFIXES = frozenset({
    "ab", "ag", "as", "asa", "bv", "co", "company", "corp", "corporation", "gmbh", "inc",
    "incorporated", "kg", "kk", "limited", "llc", "llp", "lp", "ltd", "nv", "oy", "plc", "pte", "pty",
    "sa", "sarl", "sas", "spa", "srl",
})
# Country spellings seen in CRM exports, folded to one name each. Anything else compares as typed
# (case- and accent-insensitive).
COUNTRY_ALIASES = {
    "us": "united states", "usa": "united states", "u s a": "united states", "u s": "united states",
    "united states of america": "united states", "america": "united states",
    "uk": "united kingdom", "u k": "united kingdom", "gb": "united kingdom", "great britain": "united kingdom",
    "england": "united kingdom", "de": "germany", "deutschland": "germany", "fr": "france",
    "nl": "netherlands", "the netherlands": "netherlands", "holland": "netherlands", "ca": "canada",
    "au": "australia", "in": "india", "jp": "japan", "es": "spain", "espana": "spain", "it": "italy",
    "ch": "switzerland", "schweiz": "switzerland", "ie": "ireland", "se": "sweden", "br": "brazil",
    "mx": "mexico", "sg": "singapore", "uae": "united arab emirates", "ae": "united arab emirates",
}
SIMILAR_NAME_CUTOFF = 0.88   # difflib ratio above which a different name is offered for review

_DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


class InvalidDomain(ValueError):
    pass


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def normalise_domain(value: str | None) -> str | None:
    """`https://WWW.Acme.com/about` -> `acme.com`; an e-mail address gives its domain; empty -> None.
    Raises InvalidDomain for a value that is not a host name at all."""
    if value is None or not value.strip():
        return None
    raw = value.strip()
    text = _fold(raw)
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        host = ""
    host = host.rstrip(".")
    host = re.sub(r"^www\d*\.", "", host)
    if not _DOMAIN.match(host):
        raise InvalidDomain(f"{raw!r} is not a web domain")
    return host


def normalise_name(value: str | None) -> str:
    """Case, accents, punctuation and trailing legal forms ignored: `ACME, Inc.` == `Acme`."""
    if not value:
        return ""
    text = _fold(value).replace("&", " and ").replace(".", "")     # S.A. -> sa
    words = re.sub(r"[^\w]+", " ", text).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def normalise_phone(value: str | None) -> str | None:
    """A phone number's last nine digits, or None when it has fewer: `+1 (415) 555-0100` == `415.555.0100`,
    and `+49 30 1234567` == `030 1234567` (the national trunk 0 and the country code fall off the front).
    A phone match is still checked against the country, like every other key."""
    digits = re.sub(r"\D", "", value or "")
    return digits[-9:] if len(digits) >= 9 else None


class InvalidDuns(ValueError):
    pass


def normalise_duns(value: str | None) -> str | None:
    """A D-U-N-S number: nine digits, dashes and spaces ignored (`15-048-3782`); empty -> None."""
    if value is None or not value.strip():
        return None
    digits = re.sub(r"[\s-]", "", value.strip())
    if not re.fullmatch(r"\d{9}", digits):
        raise InvalidDuns(f"{value.strip()!r} is not a D-U-N-S number (nine digits)")
    return digits


def normalise_country(value: str | None) -> str | None:
    """One key per country whatever the spelling: ISO alpha-2 or alpha-3 codes (`DE`, `DEU`, as in
    BillingCountryCode), ISO names and official names (via pycountry, the ISO 3166 data), and the
    common aliases above all fold to the lowercased alpha-2 code. Anything else compares as typed
    (case- and accent-insensitive)."""
    if not value or not value.strip():
        return None
    text = " ".join(re.sub(r"[^\w]+", " ", _fold(value)).split())
    return _iso_country(COUNTRY_ALIASES.get(text, text), value.strip())


@lru_cache(maxsize=4096)
def _iso_country(text: str, as_typed: str) -> str:
    for candidate in (text, as_typed):   # ISO names keep their punctuation ("Korea, Republic of")
        try:
            return pycountry.countries.lookup(candidate).alpha_2.lower()
        except LookupError:
            continue
    return text


@dataclass(frozen=True)
class AccountRef:
    """An org account as the matcher sees it (from the mirrored Account table)."""
    uuid: str
    sfid: str | None
    name: str
    website: str | None = None
    country: str | None = None
    phone: str | None = None
    duns: str | None = None

    @property
    def domain(self) -> str | None:
        try:
            return normalise_domain(self.website)
        except InvalidDomain:
            return None

    def label(self) -> str:
        return f"{self.name} ({self.sfid or self.uuid}{', ' + self.website if self.website else ''})"


@dataclass(frozen=True)
class Match:
    status: MatchStatus
    method: str | None                       # domain | domain+name | domain+country | name+country
    account: AccountRef | None
    candidates: tuple[AccountRef, ...] = ()
    reason: str = ""


def _elsewhere(account: AccountRef, where: str | None) -> bool:
    """Both the row and the account name a country, and not the same one."""
    theirs = normalise_country(account.country)
    return bool(where and theirs and where != theirs)


class AccountIndex:
    """The org's accounts by normalised domain and name, built once per import. Candidates come out in
    a stable order (by Salesforce Id), so the same file against the same accounts gives the same result."""

    def __init__(self, accounts: Iterable[AccountRef]) -> None:
        self.by_domain: dict[str, list[AccountRef]] = defaultdict(list)
        self.by_name: dict[str, list[AccountRef]] = defaultdict(list)
        self.by_phone: dict[str, list[AccountRef]] = defaultdict(list)
        self.by_duns: dict[str, list[AccountRef]] = defaultdict(list)
        for account in sorted(accounts, key=lambda a: (a.sfid or "", a.uuid)):
            if account.domain:
                self.by_domain[account.domain].append(account)
            if (phone := normalise_phone(account.phone)) is not None:
                self.by_phone[phone].append(account)
            try:
                duns = normalise_duns(account.duns)
            except InvalidDuns:
                duns = None   # the org's own bad value is no key
            if duns is not None:
                self.by_duns[duns].append(account)
            key = normalise_name(account.name)
            if key:
                self.by_name[key].append(account)
        self._names = list(self.by_name)

    def match(self, name: str, domain: str | None, country: str | None,
              exclude: frozenset[str] = frozenset(), *, phone: str | None = None, duns: str | None = None) -> Match:
        """`domain` is already normalised; `exclude` holds account UUIDs never to match (the partner).
        Optional keys: a D-U-N-S number (`duns`, normalised) names one company and is tried first; a phone
        number is tried when the domain settles nothing, before the name."""
        key, where = normalise_name(name), normalise_country(country)
        if duns:
            keyed = self._by_key(self.by_duns, duns, exclude, where, country, "duns", "D-U-N-S number")
            if keyed is not None:
                return keyed
        on_domain = [a for a in self.by_domain.get(domain or "", []) if a.uuid not in exclude]
        if len(on_domain) == 1:
            account = on_domain[0]
            if _elsewhere(account, where):
                return Match("review", None, None, (account,),
                             f"the domain matches but the account is in {account.country}, the row says {country}")
            return Match("matched", "domain", account)
        if on_domain:
            same_name = [a for a in on_domain if normalise_name(a.name) == key]
            if len(same_name) == 1 and not _elsewhere(same_name[0], where):
                return Match("matched", "domain+name", same_name[0])
            pool = same_name if len(same_name) > 1 else on_domain
            same_country = [a for a in pool if where and normalise_country(a.country) == where]
            if len(same_country) == 1:
                return Match("matched", "domain+name+country" if pool is same_name else "domain+country",
                             same_country[0])
            return Match("review", None, None, tuple(on_domain),
                         f"{len(on_domain)} accounts share the domain {domain} and neither the name nor the "
                         "country tells them apart")
        if (dialled := normalise_phone(phone)) is not None:
            keyed = self._by_key(self.by_phone, dialled, exclude, where, country, "phone", "phone number")
            if keyed is not None:
                return keyed
        by_name = [a for a in self.by_name.get(key, []) if a.uuid not in exclude]
        if by_name:
            if where is None:
                return Match("review", None, None, tuple(by_name),
                             "the name matches but the row has no country to confirm it")
            here = [a for a in by_name if normalise_country(a.country) == where]
            if len(here) == 1:
                account = here[0]
                if domain and account.domain and account.domain != domain:
                    return Match("review", None, None, (account,),
                                 f"name and country match but the account's domain is {account.domain}, "
                                 f"the row's {domain}")
                return Match("matched", "name+country", account)
            if len(here) > 1:
                return Match("review", None, None, tuple(here),
                             f"{len(here)} accounts have this name in {country}")
            return Match("review", None, None, tuple(by_name),
                         f"the name matches but not the country ({country})")
        similar = difflib.get_close_matches(key, self._names, n=3, cutoff=SIMILAR_NAME_CUTOFF) if key else []
        candidates = tuple(a for s in similar for a in self.by_name[s] if a.uuid not in exclude)
        if candidates:
            return Match("review", None, None, candidates, "low confidence: only a similar name")
        return Match("unmatched", None, None, (), "no account in the org has this domain or name")

    @staticmethod
    def _by_key(index: dict[str, list[AccountRef]], value: str, exclude: frozenset[str], where: str | None,
                country: str | None, method: str, what: str) -> Match | None:
        """One account on the key: matched (unless it is in another country: review); several: review;
        none: None, and the other keys are tried."""
        hits = [a for a in index.get(value, []) if a.uuid not in exclude]
        if len(hits) == 1:
            if _elsewhere(hits[0], where):
                return Match("review", None, None, (hits[0],),
                             f"the {what} matches but the account is in {hits[0].country}, the row says {country}")
            return Match("matched", method, hits[0])
        if hits:
            return Match("review", None, None, tuple(hits), f"{len(hits)} accounts share the {what}")
        return None


__all__ = ["AccountIndex", "AccountRef", "InvalidDomain", "InvalidDuns", "Match", "MatchStatus", "normalise_country",
           "normalise_domain", "normalise_duns", "normalise_name", "normalise_phone"]
