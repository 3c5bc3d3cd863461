"""Mapping files built to exhaust the loader.

Tried: a 600-byte "billion laughs" of nested aliases (refused in well under a second, without
building it); an alias of a deeply nested anchor; 10,000 nested flow lists and nested block
mappings (no RecursionError); a file over the size limit; a long, wide value in the wrong place
(the error quotes a bounded excerpt)."""

from __future__ import annotations

import time

import pytest

from connector.mapping import MAX_MAPPING_DEPTH, MappingError, load_mapping

LAUGHS = "\n".join(['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] +
                   [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
                   + ["version: 1", "objects: {Account: {fields: *i}}"]) + "\n"


def _load(tmp_path, text: str):
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path, load_mapping(path)


def test_billion_laughs_is_refused_fast_with_one_line(tmp_path):
    assert len(LAUGHS.encode()) < 700
    started = time.perf_counter()
    with pytest.raises(MappingError) as exc:
        _load(tmp_path, LAUGHS)
    assert time.perf_counter() - started < 2.0
    message = str(exc.value)
    assert "\n" not in message and "mapping.yaml: line " in message and "aliases" in message


@pytest.mark.parametrize("text", [
    "version: 1\nobjects: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "version: 1\nobjects:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(200)),
    "deep: &d " + "[" * (MAX_MAPPING_DEPTH - 2) + "]" * (MAX_MAPPING_DEPTH - 2) + "\nversion: 1\nobjects: [[[*d]]]\n",
], ids=["flow-lists", "block-mappings", "alias-of-a-deep-node"])
def test_deep_nesting_is_refused_without_recursion_error(tmp_path, text):
    with pytest.raises(MappingError, match=rf"line \d+: nested more than {MAX_MAPPING_DEPTH} levels deep"):
        _load(tmp_path, text)


def test_a_huge_file_is_refused_before_parsing(tmp_path):
    with pytest.raises(MappingError, match="a mapping file is at most 1,000,000"):
        _load(tmp_path, "version: 1\n# " + "x" * 1_000_001 + "\n")


def test_a_huge_value_in_the_wrong_place_is_quoted_short(tmp_path):
    big = "[" + ", ".join(f"'{'v' * 50}{i}'" for i in range(5_000)) + "]"
    with pytest.raises(MappingError) as exc:
        _load(tmp_path, f"version: 1\nobjects:\n  Account:\n    direction: {big}\n")
    assert len(str(exc.value)) < 600 and "direction" in str(exc.value)


def test_the_shipped_mapping_still_loads():
    assert "Opportunity" in load_mapping().objects
