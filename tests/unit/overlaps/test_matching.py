"""Overlap rows against the org's accounts, without a database: which rows match, on what,
and which are listed for review with their candidates instead of being guessed."""

from __future__ import annotations

import pytest

from connector.overlaps.matching import (AccountIndex, AccountRef, InvalidDomain, normalise_country,
                                         normalise_domain, normalise_name)

ACCOUNTS = [
    AccountRef("u-acme", "001A", "Acme Corporation", "https://www.acme.com/", "United States"),
    # Subsidiaries sharing one domain: only name or country can tell them apart.
    AccountRef("u-globex-us", "001B", "Globex Inc.", "globex.com", "USA"),
    AccountRef("u-globex-de", "001C", "Globex GmbH", "http://globex.com", "Germany"),
    AccountRef("u-globex-de2", "001D", "Globex Services GmbH", "globex.com", "Deutschland"),
    AccountRef("u-initech", "001E", "Initech, LLC", None, "United Kingdom"),
    AccountRef("u-initrode", "001F", "Initrode", "initrode.io", "France"),
    AccountRef("u-umbrella-1", "001G", "Umbrella", None, "Canada"),
    AccountRef("u-umbrella-2", "001H", "Umbrella Ltd", None, "Canada"),
    AccountRef("u-partner", "001P", "Northwind Cloud", "northwind.example", "United States"),
]
INDEX = AccountIndex(ACCOUNTS)


@pytest.mark.parametrize(("raw", "expected"), [
    ("WWW.ACME.com", "acme.com"), ("https://www.Acme.com/about?x=1", "acme.com"), ("acme.com.", "acme.com"),
    ("http://www2.acme.com:8080", "acme.com"), ("sales@Acme.com", "acme.com"), ("  ", None), (None, None),
    ("shop.acme.co.uk", "shop.acme.co.uk"),
])
def test_domains_compare_without_scheme_case_www_path_or_port(raw, expected):
    assert normalise_domain(raw) == expected


@pytest.mark.parametrize("raw", ["acme", "n/a", "not a domain.com", "http://"])
def test_a_value_that_is_no_domain_is_refused_not_guessed(raw):
    with pytest.raises(InvalidDomain):
        normalise_domain(raw)


def test_names_ignore_case_accents_punctuation_and_legal_forms():
    assert normalise_name("ACME, Inc.") == normalise_name("Acme") == "acme"
    assert normalise_name("Société Générale S.A.") == "societe generale"
    assert normalise_name("Smith & Sons Ltd") == "smith and sons"
    assert normalise_name("Inc") == "inc"            # a lone legal word is the name itself
    assert normalise_country("U.S.A.") == normalise_country("united states") == "us"   # the ISO 3166 alpha-2 key


def test_one_account_on_the_domain_matches_whatever_the_spelling():
    m = INDEX.match("ACME corp", "acme.com", None)
    assert (m.status, m.method, m.account.sfid) == ("matched", "domain", "001A")


def test_subsidiaries_sharing_a_domain_are_told_apart_by_name_then_country():
    by_name = INDEX.match("GLOBEX SERVICES", "globex.com", None)
    assert (by_name.status, by_name.method, by_name.account.sfid) == ("matched", "domain+name", "001D")
    # "Globex GmbH" and "Globex Inc." are both "globex": the country settles it.
    both = INDEX.match("Globex GmbH", "globex.com", "Germany")
    assert (both.status, both.method, both.account.sfid) == ("matched", "domain+name+country", "001C")
    by_country = INDEX.match("Globex Americas", "globex.com", "US")
    assert (by_country.status, by_country.method, by_country.account.sfid) == ("matched", "domain+country", "001B")


def test_subsidiaries_nothing_tells_apart_are_listed_for_review_with_all_candidates():
    m = INDEX.match("Globex Group", "globex.com", "Germany")    # two German Globex accounts
    assert m.status == "review" and m.account is None
    assert {c.sfid for c in m.candidates} == {"001C", "001D"} | {"001B"}
    assert "share the domain globex.com" in m.reason


def test_name_and_country_match_when_the_row_has_no_known_domain():
    m = INDEX.match("INITECH", None, "UK")
    assert (m.status, m.method, m.account.sfid) == ("matched", "name+country", "001E")


def test_name_without_a_country_is_low_confidence_and_listed_for_review():
    m = INDEX.match("Initech", None, None)
    assert m.status == "review" and [c.sfid for c in m.candidates] == ["001E"]


def test_name_and_country_with_a_different_domain_is_listed_for_review():
    m = INDEX.match("Initrode", "initrode.com", "France")
    assert m.status == "review" and "initrode.io" in m.reason


def test_two_accounts_of_the_same_name_and_country_are_never_guessed():
    m = INDEX.match("Umbrella Limited", None, "Canada")
    assert m.status == "review" and {c.sfid for c in m.candidates} == {"001G", "001H"}


def test_a_similar_name_is_offered_for_review_and_a_missing_account_is_unmatched():
    similar = INDEX.match("Acmee Inc", None, "United States")
    assert similar.status == "review" and similar.candidates[0].sfid == "001A"
    assert "low confidence" in similar.reason
    missing = INDEX.match("Hooli", "hooli.xyz", "United States")
    assert (missing.status, missing.account, missing.candidates) == ("unmatched", None, ())


def test_the_partner_itself_is_never_matched():
    m = INDEX.match("Northwind Cloud", "northwind.example", None, exclude=frozenset({"u-partner"}))
    assert m.status == "unmatched"


def test_the_only_account_on_a_domain_in_another_country_is_listed_for_review():
    m = INDEX.match("Initrode SARL", "initrode.io", "Spain")
    assert m.status == "review" and "the account is in France, the row says Spain" in m.reason
    assert INDEX.match("Initrode SARL", "initrode.io", "FR").status == "matched"


def test_a_name_match_on_a_shared_domain_in_another_country_is_not_taken():
    """Tried: Acme Inc (US) and Acme Labs (Germany) share acme-labs.example; the row says "Acme", Germany.
    The name points at the US account, the country at the German one: the country wins over a name
    that contradicts it, and a stable candidate order keeps re-imports identical."""
    index = AccountIndex([AccountRef("u-2", "001Z", "Acme Labs", "acme-labs.example", "Germany"),
                          AccountRef("u-1", "001Y", "Acme Inc", "acme-labs.example", "United States")])
    m = index.match("Acme", "acme-labs.example", "Germany")
    assert (m.status, m.method, m.account.sfid) == ("matched", "domain+country", "001Z")
    review = index.match("Acme", "acme-labs.example", "France")
    assert review.status == "review" and [c.sfid for c in review.candidates] == ["001Y", "001Z"]


def test_iso_country_codes_are_the_countries_they_name():
    # alpha-2 and alpha-3 (Salesforce's BillingCountryCode holds alpha-2), ISO names and common aliases: one key
    for spellings in (("DE", "DEU", "Germany", "deutschland"), ("GB", "GBR", "United Kingdom", "UK", "England"),
                      ("US", "USA", "United States of America"), ("KR", "KOR", "Korea, Republic of")):
        assert len({normalise_country(s) for s in spellings}) == 1, spellings
    assert normalise_country("DE") != normalise_country("AT")
    assert normalise_country("Atlantis") == "atlantis", "an unknown country compares as typed"


def test_a_code_matches_an_account_that_spells_the_country_out():
    index = AccountIndex([AccountRef("u1", "001A", "Globex", None, "Germany"),
                          AccountRef("u2", "001B", "Globex", None, "France")])
    match = index.match("Globex GmbH", None, "DEU")
    assert (match.status, match.account.sfid if match.account else None) == ("matched", "001A")


def test_a_duns_number_names_one_company_before_any_other_key():
    from connector.overlaps.matching import normalise_duns
    index = AccountIndex([AccountRef("u1", "001A", "Globex", "globex.com", "Germany", duns="150483782"),
                          AccountRef("u2", "001B", "Globex Holding", "globex.com", "Germany")])
    match = index.match("Some Other Spelling", "globex.com", "DE", duns=normalise_duns("15-048-3782"))
    assert (match.status, match.method, match.account.sfid) == ("matched", "duns", "001A")
    elsewhere = index.match("Globex", None, "France", duns="150483782")
    assert elsewhere.status == "review" and "D-U-N-S number matches" in elsewhere.reason


def test_a_phone_number_matches_when_the_domain_settles_nothing():
    index = AccountIndex([AccountRef("u1", "001A", "Initech", None, "United States", phone="+1 (415) 555-0100"),
                          AccountRef("u2", "001B", "Initrode", None, "United States", phone="212 555 0199")])
    match = index.match("Initech Corporation Intl", None, "US", phone="415.555.0100")
    assert (match.status, match.method, match.account.sfid) == ("matched", "phone", "001A")
    assert index.match("Nobody", None, "US", phone="12").status == "unmatched", "too short to be a key"


def test_a_bad_duns_in_the_export_is_refused_with_its_line():
    import pytest

    from connector.overlaps.source import OverlapFileError, parse_overlaps
    with pytest.raises(OverlapFileError, match="line 2: D-U-N-S '12345' is not a D-U-N-S number"):
        parse_overlaps("Partner,Account Name,Domain,Partner Population,Partner Record ID,DUNS\n"
                       "A,Acme,acme.com,Customers,r-1,12345\n")
    [row] = parse_overlaps("Partner,Account Name,Domain,Partner Population,Partner Record ID,Phone,D-U-N-S\n"
                           "A,Acme,acme.com,Customers,r-1,+1 415 555 0100,15-048-3782\n")
    assert (row.phone, row.duns) == ("+1 415 555 0100", "150483782")
