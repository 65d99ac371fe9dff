"""Quota files: the CSV formats, the TOML specification, apportionment and the Occitanie spec."""

from __future__ import annotations

import json
import tomllib
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from sortition.core.errors import InputError
from sortition.inputs.quotas import (
    apportion,
    flex_bounds,
    load_quotas,
    quotas_csv_text,
    quotas_toml_text,
    read_quotas_csv,
    read_quotas_toml,
    write_quotas,
)

ROOT = Path(__file__).resolve().parents[1]
OCCITANIE_SPEC = ROOT / "quotas" / "occitanie-2020.toml"
OCCITANIE_DATA = ROOT / "data" / "occitanie"
FLANIGAN = ROOT / "data" / "peers" / "flanigan2021"
FLANIGAN_CATEGORIES = FLANIGAN / "example_small_20" / "categories.csv"

QUOTA_ROWS = [
    ("gender", "female", 9, 20),
    ("gender", "male", 9, 20),
    ("leaning", "liberal", 9, 20),
    ("leaning", "conservative", 9, 20),
]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def csv_text(header: str, rows=QUOTA_ROWS, delimiter: str = ",") -> str:
    lines = [header.replace(",", delimiter)]
    lines += [delimiter.join(str(c) for c in r) for r in rows]
    return "\n".join(lines) + "\n"


def bounds(quotas) -> list[tuple[str, str, int, int]]:
    return [(q.feature, q.value, q.min, q.max) for q in quotas.values]


def cross_bounds(quotas) -> list[tuple[tuple[str, str], tuple[str, str], int, int]]:
    return [(c.features, c.values, c.min, c.max) for c in quotas.cross]


def quota_error(path: Path, size: int | None = None) -> InputError:
    with pytest.raises(InputError) as info:
        load_quotas(path, size)
    err = info.value
    assert err.exit_code == 2
    assert err.problems
    for line in err.problems:
        assert "\n" not in line, f"problem messages are one line each: {line!r}"
        assert str(path) in line, f"the message names the file: {line!r}"
    return err


# ---------------------------------------------------------------------------
# CSV formats


@pytest.mark.parametrize("header", [
    "feature,value,min,max",
    "category,name,min,max",
    "category,feature,min,max",
    "Feature,Value,Min,Max",
    "min,max,value,feature",
])
def test_csv_formats_read_to_the_same_quotas(tmp_path, header):
    q = load_quotas(write(tmp_path / "q.csv", csv_text(header) if not header.startswith("min")
                          else csv_text(header, [(lo, hi, v, f) for f, v, lo, hi in QUOTA_ROWS])))
    assert bounds(q) == QUOTA_ROWS
    assert q.features == ["gender", "leaning"]
    assert q.cross == []
    assert q.size is None


def test_research_categories_file(tmp_path):
    if not FLANIGAN_CATEGORIES.exists():
        pytest.skip(f"{FLANIGAN_CATEGORIES} is not available")
    research = read_quotas_csv(FLANIGAN_CATEGORIES)
    rows = bounds(research)
    assert rows
    same = load_quotas(write(tmp_path / "q.csv", csv_text("feature,value,min,max", rows)))
    old = load_quotas(write(tmp_path / "old.csv", csv_text("category,name,min,max", rows)))
    assert bounds(same) == bounds(old) == rows
    assert research.notes == []


def test_extra_columns_are_ignored_with_a_note(tmp_path):
    rows = [(f, v, lo, hi, "x") for f, v, lo, hi in QUOTA_ROWS]
    path = write(tmp_path / "q.csv", csv_text("feature,value,min,max,comment", rows))
    q = load_quotas(path)
    assert bounds(q) == QUOTA_ROWS
    assert len(q.notes) == 1
    assert "comment" in q.notes[0]
    assert str(path) in q.notes[0]
    assert not q.has_flex


# ---------------------------------------------------------------------------
# Soft quotas: min_flex, max_flex


@pytest.mark.parametrize("header", ["feature,value,min,max,min_flex,max_flex",
                                    "category,name,min,max,min_flex,max_flex",
                                    "min_flex,feature,value,min,max,max_flex"])
def test_flex_columns_are_read(tmp_path, header):
    rows = [(f, v, lo, hi, lo - 2, hi + 3) for f, v, lo, hi in QUOTA_ROWS]
    if header.startswith("min_flex"):
        rows = [(r[4], *r[:4], r[5]) for r in rows]
    q = load_quotas(write(tmp_path / "q.csv", csv_text(header, rows)), size=40)
    assert bounds(q) == QUOTA_ROWS
    assert [(v.min_flex, v.max_flex) for v in q.values] == [(7, 23)] * 4
    assert q.notes == [] and q.has_flex
    assert [flex_bounds(v, 40) for v in q.values] == [(7, 23)] * 4


def test_no_flex_declared_means_anywhere_within_the_panel(tmp_path):
    q = load_quotas(write(tmp_path / "q.csv", csv_text("feature,value,min,max")), size=40)
    assert [(v.min_flex, v.max_flex) for v in q.values] == [(None, None)] * 4
    assert [flex_bounds(v, 40) for v in q.values] == [(0, 40)] * 4


@pytest.mark.parametrize(("row", "culprits"), [
    ("gender,woman,3,5,4,5", ["line 2", "min_flex 4 is above min 3", "gender=woman"]),
    ("gender,woman,3,5,0,4", ["line 2", "max_flex 4 is below max 5", "gender=woman"]),
    ("gender,woman,3,5,0,41", ["line 2", "max_flex 41 is above the panel size 40"]),
    ("gender,woman,3,5,,7", ["line 2", "column min_flex", "''", "whole number"]),
    ("gender,woman,3,5,1,", ["line 2", "column max_flex", "''", "whole number"]),
    ("gender,woman,3,5,-1,7", ["line 2", "column min_flex", "'-1'", "negative"]),
    ("gender,woman,3,5,1.5,7", ["line 2", "column min_flex", "'1.5'", "whole number"]),
    ("gender,woman,3,5,1,nan", ["line 2", "column max_flex", "'nan'"]),
    ("gender,woman,3,5,1", ["line 2", "expected 6 cells, found 5"]),
])
def test_flex_row_errors(tmp_path, row, culprits):
    path = write(tmp_path / "q.csv",
                 f"feature,value,min,max,min_flex,max_flex\n{row}\ngender,man,1,2,0,2\n")
    message = str(quota_error(path, 40))
    for culprit in culprits:
        assert culprit in message


@pytest.mark.parametrize("header", ["feature,value,min,max,min_flex",
                                    "feature,value,min,max,max_flex"])
def test_one_flex_column_alone_is_refused(tmp_path, header):
    path = write(tmp_path / "q.csv", f"{header}\ngender,woman,1,2,0\n")
    message = str(quota_error(path, 4))
    assert "line 1" in message and "need both" in message


def test_flex_round_trips_through_csv_and_toml(tmp_path):
    text = ("feature,value,min,max,min_flex,max_flex\ngender,woman,3,5,1,7\n"
            "gender,man,3,5,3,5\n")
    q = load_quotas(write(tmp_path / "q.csv", text), 10)
    assert quotas_csv_text(q) == text
    again = load_quotas(write(tmp_path / "q.toml", quotas_toml_text(q)), 10)
    assert again.values == q.values
    assert "min_flex = 1, max_flex = 7" in quotas_toml_text(q)
    plain = load_quotas(write(tmp_path / "p.csv", csv_text("feature,value,min,max")), 40)
    assert quotas_csv_text(plain).splitlines()[0] == "feature,value,min,max"
    assert "flex" not in quotas_toml_text(plain)


def test_toml_flex_forms(tmp_path):
    text = (
        "size = 20\n"
        "[features.gender]\nshares = { woman = 0.5, man = 0.5 }\nflex = 1\n"
        "[features.age]\ncounts = { young = 300, old = 100 }\ntolerance = 1\n"
        "flex = { below = 2, above = 10 }\n"
        "[features.area]\nbounds = { urban = { min = 10, max = 14, min_flex = 8, max_flex = 15 },"
        " rural = [6, 10] }\n"
        "[[cross]]\nfeatures = ['gender', 'area']\nflex = 2\n"
        "bounds = { woman = { urban = [0, 6] } }\n"
    )
    q = load_quotas(write(tmp_path / "q.toml", text))
    assert [(v.feature, v.value, v.min_flex, v.max_flex) for v in q.values] == [
        ("gender", "woman", 9, 11), ("gender", "man", 9, 11),
        ("age", "young", 12, 20), ("age", "old", 2, 16),  # max_flex capped at the size
        ("area", "urban", 8, 15), ("area", "rural", None, None)]
    assert [(c.min_flex, c.max_flex) for c in q.cross] == [(0, 8)]


@pytest.mark.parametrize(("text", "culprits"), [
    ("size = 10\n" + "[features.gender]\nshares = { woman = 0.5, man = 0.5 }\nflex = -1\n",
     ["features.gender", "flex = -1"]),
    ("size = 10\n" + "[features.gender]\nshares = { woman = 0.5, man = 0.5 }\nflex = 'a'\n",
     ["features.gender", "flex = 'a'"]),
    ("size = 10\n" + "[features.gender]\nshares = { woman = 0.5, man = 0.5 }\n"
     "flex = { below = 1, sideways = 2 }\n", ["features.gender", "flex"]),
    ("size = 10\n" + "[features.gender]\nshares = { woman = 0.5, man = 0.5 }\n"
     "flex = { below = 1.5 }\n", ["features.gender", "flex below = 1.5"]),
    ("size = 10\n[features.gender]\nbounds = { woman = { min = 4, max = 6, min_flex = 5, "
     "max_flex = 6 } }\n", ["features.gender.woman", "min_flex 5 is above min 4"]),
    ("size = 10\n[features.gender]\nbounds = { woman = { min = 4, max = 6, min_flex = 0, "
     "max_flex = 5 } }\n", ["features.gender.woman", "max_flex 5 is below max 6"]),
    ("size = 10\n[features.gender]\nbounds = { woman = { min = 4, max = 6, min_flex = 0, "
     "max_flex = 11 } }\n", ["features.gender.woman", "max_flex 11 is above the panel size"]),
    ("size = 10\n[features.gender]\nbounds = { woman = { min = 4, max = 6, min_flex = -1 } }\n",
     ["features.gender.bounds.woman.min_flex", "-1", "negative"]),
    ("size = 10\n[features.gender]\nbounds = { woman = { min = 4, max = 6, max_flex = 6.5 } }"
     "\n", ["features.gender.bounds.woman.max_flex", "6.5", "whole number"]),
    ("size = 10\n[features.gender]\nbounds = { woman = { min = 4, max = 6, flex = 1 } }\n",
     ["features.gender.bounds.woman", "min_flex"]),
    ("size = 10\n[features.gender]\nflex = 1\nbounds = { woman = { min = 4, max = 6, "
     "min_flex = 2 } }\n", ["features.gender", "not both"]),
])
def test_toml_flex_errors(tmp_path, text, culprits):
    message = str(quota_error(write(tmp_path / "spec.toml", text)))
    for culprit in culprits:
        assert culprit in message


def test_semicolon_delimiter(tmp_path):
    q = load_quotas(write(tmp_path / "q.csv", csv_text("feature,value,min,max", delimiter=";")))
    assert bounds(q) == QUOTA_ROWS


def test_bom_and_windows_line_endings(tmp_path):
    text = "\ufeff" + csv_text("feature,value,min,max").replace("\n", "\r\n")
    q = load_quotas(write(tmp_path / "q.csv", text))
    assert bounds(q) == QUOTA_ROWS


def test_values_and_whole_number_bounds_are_normalised(tmp_path):
    text = "feature,value,min,max\n gender , woman ,2.0, 3\n\ngender,man,2,3\n"
    q = load_quotas(write(tmp_path / "q.csv", text))
    assert bounds(q) == [("gender", "woman", 2, 3), ("gender", "man", 2, 3)]


def test_csv_size_comes_from_the_caller(tmp_path):
    q = load_quotas(write(tmp_path / "q.csv", csv_text("feature,value,min,max")), size=30)
    assert q.size == 30


# ---------------------------------------------------------------------------
# CSV errors


@pytest.mark.parametrize(("row", "culprits"), [
    ("gender,woman,5,2", ["line 2", "min 5 > max 2", "gender=woman"]),
    ("gender,woman,-1,2", ["line 2", "column min", "'-1'", "negative"]),
    ("gender,woman,1,-2", ["line 2", "column max", "'-2'", "negative"]),
    ("gender,woman,1.5,2", ["line 2", "column min", "'1.5'", "whole number"]),
    ("gender,woman,one,2", ["line 2", "column min", "'one'", "whole number"]),
    ("gender,woman,1,", ["line 2", "column max", "''"]),
    ("gender,,1,2", ["line 2", "empty value"]),
    ("gender,woman,1", ["line 2", "expected 4 cells, found 3"]),
    ("gender,woman,0,inf", ["line 2", "column max", "'inf'", "whole number"]),
    ("gender,woman,0,Infinity", ["line 2", "column max", "'Infinity'"]),
    ("gender,woman,nan,2", ["line 2", "column min", "'nan'"]),
    ("gender,woman,sNaN,2", ["line 2", "column min", "'sNaN'"]),
    ("gender,woman,0,1e999999", ["line 2", "column max", "'1e999999'", "too large"]),
])
def test_csv_row_errors(tmp_path, row, culprits):
    path = write(tmp_path / "q.csv", f"feature,value,min,max\n{row}\ngender,man,1,2\n")
    message = str(quota_error(path))
    for culprit in culprits:
        assert culprit in message


def test_duplicated_rows(tmp_path):
    text = "feature,value,min,max\ngender,woman,1,2\ngender,man,1,2\ngender, woman,0,3\n"
    message = str(quota_error(write(tmp_path / "q.csv", text)))
    assert "line 4" in message
    assert "gender=woman" in message
    assert "first on line 2" in message


@pytest.mark.parametrize("header", [
    "foo,bar,min,max",
    "feature,value,lo,hi",
    "feature,value,min,max,feature",
    "category,name,value,min,max",
])
def test_unknown_header(tmp_path, header):
    path = write(tmp_path / "q.csv", f"{header}\ngender,woman,1,2,3\n")
    message = str(quota_error(path))
    assert "line 1" in message
    assert header in message
    assert "feature,value,min,max" in message


@pytest.mark.parametrize("text", ["", "\n", "feature,value,min,max\n"])
def test_empty_quota_file(tmp_path, text):
    quota_error(write(tmp_path / "q.csv", text))


def test_all_csv_problems_are_reported_at_once(tmp_path):
    text = "feature,value,min,max\ngender,woman,5,2\ngender,man,-1,2\nage,old,x,2\n"
    err = quota_error(write(tmp_path / "q.csv", text))
    assert len(err.problems) == 3
    for problem, line in zip(err.problems, ["line 2", "line 3", "line 4"], strict=True):
        assert line in problem


def test_quota_file_not_utf8(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes("feature,value,min,max\ndepartment,Hérault,1,2\n".encode("cp1252"))
    assert "UTF-8" in str(quota_error(path))


def test_missing_quota_file_folder_and_type(tmp_path):
    quota_error(tmp_path / "missing.csv")
    (tmp_path / "folder.toml").mkdir()
    quota_error(tmp_path / "folder.toml")
    assert ".json" in str(quota_error(write(tmp_path / "q.json", "{}")))


def test_non_positive_size(tmp_path):
    path = write(tmp_path / "q.csv", csv_text("feature,value,min,max"))
    with pytest.raises(InputError, match="--size 0"):
        load_quotas(path, 0)


# ---------------------------------------------------------------------------
# TOML specifications


GENDER = "[features.gender]\nshares = { woman = 0.5, man = 0.5 }\n"


def test_toml_forms_resolve(tmp_path):
    text = (
        "size = 20\n"
        + GENDER
        + "[features.age]\ncounts = { young = 300, old = 100 }\ntolerance = 1\n"
        + "[features.area]\nbounds = { urban = { min = 10, max = 14 }, rural = [6, 10] }\n"
        + "[features.diploma]\nshares = { low = 0.3, high = 0.7 }\ntolerance = \"10%\"\n"
    )
    q = load_quotas(write(tmp_path / "q.toml", text))
    assert q.size == 20
    assert bounds(q) == [
        ("gender", "woman", 10, 10), ("gender", "man", 10, 10),
        ("age", "young", 14, 16), ("age", "old", 4, 6),
        ("area", "urban", 10, 14), ("area", "rural", 6, 10),
        ("diploma", "low", 5, 7), ("diploma", "high", 12, 16),
    ]
    assert [q2.target for q2 in q.values] == [10, 10, 15, 5, None, None, 6, 14]
    # the caller's size overrides the spec's
    assert load_quotas(tmp_path / "q.toml", 40).size == 40


@pytest.mark.parametrize(("text", "culprits"), [
    ("size = 10\ncolour = 'red'\n" + GENDER, ["top level", "'colour'"]),
    ("size = 10\n" + GENDER + "tolerence = 1\n", ["features.gender", "'tolerence'"]),
    ("size = 10\n[features.gender]\nshares = { woman = 0.5, man = 0.6 }\n",
     ["features.gender.shares", "1.1"]),
    ("size = 10\n[features.gender]\nshares = { woman = 0.2, man = 0.2 }\n",
     ["features.gender.shares", "0.4"]),
    ("size = 10\n" + GENDER + "counts = { woman = 1, man = 1 }\n",
     ["features.gender", "shares, counts"]),
    ("size = 10\n" + GENDER + "bounds = { woman = [1, 2] }\n",
     ["features.gender", "shares, bounds"]),
    ("size = 10\n[features.gender]\ntolerance = 1\n", ["features.gender", "exactly one"]),
    ("size = 10\n[features.gender]\ncounts = { woman = -3, man = 5 }\n",
     ["features.gender.counts.woman", "-3", "negative"]),
    ("size = 10\n[features.gender]\ncounts = { woman = 2.5, man = 5 }\n",
     ["features.gender.counts.woman", "2.5", "whole number"]),
    ("size = 10\n[features.gender]\ncounts = { woman = 'many', man = 5 }\n",
     ["features.gender.counts.woman", "'many'", "not a number"]),
    ("size = 10\n[features.gender]\nbounds = { woman = { min = 4, max = 2 } }\n",
     ["features.gender.bounds.woman", "min 4 > max 2"]),
    ("size = 10\n" + GENDER + "tolerance = -2\n", ["features.gender", "-2", "negative"]),
    ("size = 10\n" + GENDER + "apportionment = 'dhondt'\n", ["features.gender", "'dhondt'"]),
    ("size = -5\n" + GENDER, ["size", "-5"]),
    ("size = 10\n", ["features"]),
    ("size = 10\n[features.gender\nshares = 1\n", ["not valid TOML", "line 2"]),
    ("size = 10\n" + GENDER + "[features.gender]\n", ["not valid TOML"]),
    (GENDER, ["features.gender", "size"]),
    ("size = 10\n" + GENDER + "[[cross]]\nfeatures = ['gender']\nbounds = {}\n",
     ["cross #1", "two different features"]),
    ("size = 10\n" + GENDER + "[[cross]]\nfeatures = ['gender', 'age']\n"
     "bounds = { other = { old = [0, 1] } }\n", ["gender=other"]),
])
def test_toml_errors(tmp_path, text, culprits):
    path = write(tmp_path / "spec.toml", text)
    message = str(quota_error(path))
    for culprit in culprits:
        assert culprit in message


def test_all_toml_problems_are_reported_at_once(tmp_path):
    text = ("size = 10\ncolour = 1\n[features.gender]\nshares = { woman = 0.5, man = 0.6 }\n"
            "[features.age]\ncounts = { young = -1, old = 2 }\n")
    err = quota_error(write(tmp_path / "spec.toml", text))
    joined = "\n".join(err.problems)
    assert "'colour'" in joined
    assert "features.gender.shares" in joined
    assert "features.age.counts.young" in joined


def test_missing_size_is_fine_with_explicit_bounds(tmp_path):
    text = "[features.gender]\nbounds = { woman = [1, 2], man = { min = 1, max = 2 } }\n"
    q = load_quotas(write(tmp_path / "spec.toml", text))
    assert q.size is None
    assert bounds(q) == [("gender", "woman", 1, 2), ("gender", "man", 1, 2)]


# ---------------------------------------------------------------------------
# Apportionment


def exact(w: list[int], k: int) -> list[Fraction]:
    total = sum(w)
    return [Fraction(x * k, total) for x in w]


weights_st = st.lists(st.integers(1, 10**6), min_size=1, max_size=20)


@strategies.examples(300)
@given(weights=weights_st, k=st.integers(0, 500))
def test_largest_remainder_sums_to_k_and_stays_within_one_seat(weights, k):
    seats = apportion(weights, k, "largest_remainder")
    assert sum(seats) == k
    assert len(seats) == len(weights)
    for s, q in zip(seats, exact(weights, k), strict=True):
        assert abs(s - q) < 1  # each gets its quota rounded down or up
    assert apportion(weights, k) == seats  # the default method, deterministic


@strategies.examples(200)
@given(weights=st.lists(st.floats(0.001, 1000, allow_nan=False), min_size=1, max_size=20),
       k=st.integers(0, 500))
def test_largest_remainder_with_float_weights(weights, k):
    seats = apportion(weights, k, "largest_remainder")
    assert sum(seats) == k
    total = sum(Fraction(w) for w in weights)
    for s, w in zip(seats, weights, strict=True):
        assert abs(s - Fraction(w) * k / total) < 1 + Fraction(1, 10**6)


@strategies.examples(200)
@given(weights=weights_st, k=st.integers(0, 500))
def test_sainte_lague_sums_to_k(weights, k):
    seats = apportion(weights, k, "sainte_lague")
    assert sum(seats) == k
    assert all(s >= 0 for s in seats)
    # a larger weight never gets fewer seats
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:
                assert seats[i] >= seats[j]


@pytest.mark.parametrize("method", ["largest_remainder", "sainte_lague"])
def test_ties_are_broken_by_position(method):
    assert apportion([1, 1, 1], 2, method) == [1, 1, 0]
    assert apportion([1, 1, 1], 1, method) == [1, 0, 0]
    assert apportion([1, 2, 1, 2], 3, method) == [1, 1, 0, 1]
    assert apportion(["1/3", "1/3", "1/3"], 4, method) == [2, 1, 1]


def test_apportionment_examples():
    assert apportion([0.5, 0.5], 7) == [4, 3]
    assert apportion([53, 47], 100) == [53, 47]
    assert apportion([1, 2, 3], 0) == [0, 0, 0]
    assert apportion([5, 3, 2], 9, "largest_remainder") == [4, 3, 2]
    # the two methods can differ
    assert apportion([1, 1, 3], 3, "largest_remainder") == [1, 0, 2]
    assert apportion([1, 1, 3], 3, "sainte_lague") == [1, 1, 1]


@pytest.mark.parametrize(("weights", "k", "method"), [
    ([1, 2], -1, "largest_remainder"),
    ([0, 0], 5, "largest_remainder"),
    ([-1, 2], 5, "largest_remainder"),
    ([1, 2], 5, "dhondt"),
])
def test_apportion_rejects_bad_input(weights, k, method):
    with pytest.raises(ValueError):
        apportion(weights, k, method)


# ---------------------------------------------------------------------------
# The Occitanie 2020 specification


DEPARTMENTS = 13


@pytest.mark.parametrize("size", [100, 60, 150])
def test_occitanie_spec_resolves(size):
    q = load_quotas(OCCITANIE_SPEC, size)
    assert q.size == size
    assert q.features == ["gender", "age_band", "department", "area", "diploma"]
    for feature in q.features:
        quotas = q.for_feature(feature)
        assert sum(v.target for v in quotas) == size, feature
        for v in quotas:
            assert 0 <= v.min <= v.target <= v.max <= size
        assert sum(v.min for v in quotas) <= size <= sum(v.max for v in quotas)
    gender = {v.value: (v.min, v.max) for v in q.for_feature("gender")}
    assert gender == {"woman": (size // 2, size // 2), "man": (size // 2, size // 2)}
    departments = q.for_feature("department")
    assert len(departments) == DEPARTMENTS
    assert all(v.min >= 1 for v in departments)


def test_occitanie_spec_size_100_bounds():
    q = load_quotas(OCCITANIE_SPEC)
    assert q.size == 100
    got = {(v.feature, v.value): (v.min, v.target, v.max) for v in q.values}
    assert got[("age_band", "65+")] == (27, 29, 31)
    assert got[("department", "31 Haute-Garonne")] == (22, 23, 24)
    assert got[("department", "48 Lozère")] == (1, 1, 2)
    assert got[("area", "rural")] == (36, 39, 42)


def occitanie_doc() -> dict:
    return tomllib.loads(OCCITANIE_SPEC.read_text(encoding="utf-8"))


def test_occitanie_departments_match_the_data():
    df = pd.read_csv(OCCITANIE_DATA / "departments.csv", dtype={"code": str})
    df = df[df["code"] != "76"]  # the regional total
    assert len(df) == DEPARTMENTS
    key = df["code"] + " " + df["name"]
    adults = dict(zip(key, df["elp_2020_18plus_EST"].astype(int), strict=True))
    everyone = dict(zip(key, df["pop_municipale_PL2021"].astype(int), strict=True))

    block = occitanie_doc()["features"]["department"]
    assert block["counts"] == adults
    assert block["reference"]["counts"] == everyone

    q = load_quotas(OCCITANIE_SPEC, 100)
    total = sum(adults.values())
    for v in q.for_feature("department"):
        assert v.share == pytest.approx(adults[v.value] / total)
        assert v.reference_share == pytest.approx(everyone[v.value] / sum(everyone.values()))


def test_occitanie_age_bands_match_the_data():
    df = pd.read_csv(OCCITANIE_DATA / "age.csv", dtype=str)
    main = df[(df["date"] == "01/01/2020") & (df["sex"] == "all") & (df["band_type"] == "main")]
    counts = dict(zip(main["age_band"], main["population"].astype(int), strict=True))
    assert occitanie_doc()["features"]["age_band"]["counts"] == counts
    total_row = df[(df["date"] == "01/01/2020") & (df["sex"] == "all")
                   & (df["band_type"] == "total")]
    assert sum(counts.values()) == int(total_row["population"].iloc[0])


def test_occitanie_gender_reference_matches_the_data():
    df = pd.read_csv(OCCITANIE_DATA / "gender.csv", dtype=str)
    row = df[(df["date"] == "01/01/2020") & (df["scope"] == "18 years or older")]
    assert len(row) == 1
    expected = {"woman": int(row["women"].iloc[0]), "man": int(row["men"].iloc[0])}
    assert occitanie_doc()["features"]["gender"]["reference"]["counts"] == expected
    q = load_quotas(OCCITANIE_SPEC, 100)
    woman = q.for_feature("gender")[0]
    assert woman.value == "woman"
    assert woman.reference_share == pytest.approx(float(row["share_women_pct"].iloc[0]) / 100,
                                                  abs=5e-5)


def test_occitanie_csv_text_round_trips(tmp_path):
    q = load_quotas(OCCITANIE_SPEC, 100)
    text = quotas_csv_text(q)
    assert text.splitlines()[0] == "feature,value,min,max"
    path = write(tmp_path / "resolved.csv", text)
    again = read_quotas_csv(path)
    assert bounds(again) == bounds(q)
    # write_quotas writes the same text
    write_quotas(q, tmp_path / "written.csv")
    assert (tmp_path / "written.csv").read_text(encoding="utf-8") == text


def test_occitanie_toml_text_round_trips(tmp_path):
    q = load_quotas(OCCITANIE_SPEC, 60)
    path = write(tmp_path / "resolved.toml", quotas_toml_text(q))
    again = read_quotas_toml(path)
    assert again.size == 60
    assert bounds(again) == bounds(q)


# ---------------------------------------------------------------------------
# Cross quotas


SEX = {"women": "woman", "men": "man"}


def cross_spec(tmp_path: Path) -> Path:
    df = pd.read_csv(OCCITANIE_DATA / "age.csv", dtype=str)
    df = df[(df["date"] == "01/01/2020") & (df["band_type"] == "main")]
    by_sex: dict[str, dict[str, int]] = {}
    for _, r in df[df["sex"].isin(list(SEX))].iterrows():
        by_sex.setdefault(SEX[r["sex"]], {})[r["age_band"]] = int(r["population"])
    everyone = {r["age_band"]: int(r["population"]) for _, r in df[df["sex"] == "all"].iterrows()}

    def inline(d: dict[str, int]) -> str:
        return "{ " + ", ".join(f"{json.dumps(k)} = {v}" for k, v in d.items()) + " }"

    lines = [
        "size = 100",
        "[features.gender]",
        "shares = { woman = 0.5, man = 0.5 }",
        "[features.age_band]",
        "tolerance = 2",
        f"counts = {inline(everyone)}",
        "[[cross]]",
        'features = ["gender", "age_band"]',
        "tolerance = 1",
        "[cross.counts]",
    ]
    lines += [f"{sex} = {inline(bands)}" for sex, bands in by_sex.items()]
    return write(tmp_path / "cross.toml", "\n".join(lines) + "\n")


def test_cross_quotas_resolve(tmp_path):
    q = load_quotas(cross_spec(tmp_path))
    assert q.size == 100
    assert len(q.cross) == 10
    assert sum(c.target for c in q.cross) == 100
    assert {c.features for c in q.cross} == {("gender", "age_band")}
    assert q.all_features == ["gender", "age_band"]
    for c in q.cross:
        assert c.min == max(c.target - 1, 0) and c.max == c.target + 1
    assert {c.values for c in q.cross} == {
        (sex, band) for sex in ("woman", "man")
        for band in ("18-24", "25-34", "35-49", "50-64", "65+")
    }


def test_cross_quotas_round_trip_through_toml(tmp_path):
    q = load_quotas(cross_spec(tmp_path))
    out = tmp_path / "out" / "resolved.toml"
    write_quotas(q, out)
    again = load_quotas(out)
    assert again.size == q.size
    assert bounds(again) == bounds(q)
    assert cross_bounds(again) == cross_bounds(q)


def test_cross_quotas_cannot_be_written_as_csv(tmp_path):
    q = load_quotas(cross_spec(tmp_path))
    out = tmp_path / "resolved.csv"
    with pytest.raises(InputError) as info:
        write_quotas(q, out)
    assert str(out) in str(info.value)
    assert ".toml" in str(info.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "cross.toml"]
    with pytest.raises(InputError):
        quotas_csv_text(q)


def test_unknown_output_type(tmp_path):
    q = load_quotas(OCCITANIE_SPEC, 100)
    with pytest.raises(InputError, match="'.xlsx'"):
        write_quotas(q, tmp_path / "quotas.xlsx")
    assert not (tmp_path / "quotas.xlsx").exists()
