"""Reading overlap exports: the column names the account-mapping tools use are understood,
and a bad file is refused as a whole with the line and the reason (nothing is imported)."""

from __future__ import annotations

import pytest

from connector.overlaps.source import OverlapFileError, parse_overlaps, read_overlaps

GOOD = """\ufeffPartner,Partner Account Name,Website,Partner Population,Partner Record ID,Country
Northwind Cloud,ACME Corp,WWW.Acme.com,customers,nw-1,USA
Northwind Cloud,Globex GmbH,https://globex.com/de,Open Opportunities,nw-2,Germany

Northwind Cloud,Hooli,,Prospects,nw-3,
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(OverlapFileError) as caught:
        parse_overlaps(text, source="export.csv")
    assert "nothing imported" in str(caught.value)
    return caught.value.problems


def test_a_crossbeam_style_export_is_read_with_normalised_values():
    rows = parse_overlaps(GOOD)
    assert [(r.line, r.account_name, r.domain, r.population, r.country) for r in rows] == [
        (2, "ACME Corp", "acme.com", "Customers", "USA"),
        (3, "Globex GmbH", "globex.com", "Open Opportunities", "Germany"),
        (5, "Hooli", None, "Prospects", None),      # line numbers survive the blank line
    ]


def test_missing_columns_are_named_with_the_accepted_spellings():
    tried = "Partner,Account Name,Population\nNorthwind,Acme,Customers\n"
    (problem,) = _problems(tried)
    assert problem.startswith("line 1: missing column(s) domain, partner_record_id")
    assert "website" in problem and "the header has: Partner, Account Name, Population" in problem


def test_a_marketplace_file_is_recognised_and_pointed_to_its_command():
    tried = "billing_event_id,transaction_type,amount\nbe-1,SELLER_REV_SHARE,100\n"
    (problem,) = _problems(tried)
    assert "AWS Marketplace billing-event feed" in problem and "cosell marketplace import" in problem
    assert _problems('[{"partner": "x"}]') == ["line 1: this is JSON; an overlap export is a CSV file"]


def test_duplicate_lines_empty_values_bad_domains_and_short_lines_are_all_reported_by_line():
    tried = GOOD + ("Northwind Cloud,ACME Corp,acme.com,Customers,nw-1,USA\n"      # line 6: nw-1 again
                    "Northwind Cloud,,acme.com,Customers,nw-9,USA\n"               # line 7: no account name
                    "Northwind Cloud,Foo,not a domain,Customers,nw-10,USA\n"       # line 8
                    "Northwind Cloud,Bar\n")                                       # line 9
    problems = _problems(tried)
    assert problems == [
        "line 6: duplicate of line 2 (partner 'Northwind Cloud', record id 'nw-1')",
        "line 7: empty account_name",
        "line 8: domain 'not a domain' is not a web domain",
        "line 9: 2 values but the header has 6 columns",
    ]


def test_two_columns_meaning_the_same_thing_are_refused():
    (problem,) = _problems("Partner,Domain,Website,Account Name,Population,Record ID\n")
    assert problem == "line 1: columns 'Domain', 'Website' all mean domain; keep one"


def test_an_empty_file_and_a_header_only_file_are_refused(tmp_path):
    assert _problems("") == ["line 1: the file is empty; expected a header row"]
    assert _problems(GOOD.splitlines()[0] + "\n") == ["the file has a header but no rows"]
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("Partner,Account Name,Domain,Population,Record ID\nN,Soci\xe9t\xe9,a.com,Customers,1\n"
                       .encode("latin-1"))
    with pytest.raises(OverlapFileError, match="not UTF-8 text"):
        read_overlaps(latin1)
    with pytest.raises(OverlapFileError, match="cannot read the file"):
        read_overlaps(tmp_path / "missing.csv")


def test_a_two_sided_export_is_read_as_its_two_sides():
    from connector.overlaps.source import parse_overlaps
    text = ("Partner,Account Name,Domain,Population,Partner Population,Owner,Partner Owner,Partner Record ID\n"
            "Accenture,Acme,acme.com,Customers,Open Opportunities,Jane Roe,John Doe,r-1\n")
    [row] = parse_overlaps(text)
    assert (row.population, row.our_population) == ("Open Opportunities", "Customers")


def test_two_columns_of_one_side_are_still_refused():
    import pytest

    from connector.overlaps.source import OverlapFileError, parse_overlaps
    with pytest.raises(OverlapFileError, match="all mean population"):
        parse_overlaps("Partner,Account Name,Domain,Partner Population,Partner Populations,Partner Record ID\n"
                       "A,Acme,acme.com,Customers,Customers,r-1\n")
