"""Reading and validating pools: formats, encodings, ids, and one clear message per problem."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

import sortition.inputs.pool as pool_module
from sortition.core.errors import InputError
from sortition.inputs.households import for_everyone, of_representatives
from sortition.inputs.pool import load_pool, subset
from sortition.inputs.quotas import Quotas, ValueQuota
from sortition.inputs.strata import build_strata

FEATURES = ["gender", "age_band"]

ROWS = [
    ("1", "woman", "18-24"),
    ("2", "man", "25-34"),
    ("3", "woman", "65+"),
    ("4", "man", "65+"),
    ("5", "woman", "25-34"),
]


def gender_quotas(values: tuple[str, ...] = ("woman", "man")) -> Quotas:
    return Quotas(values=[ValueQuota("gender", v, 0, 5) for v in values], size=2)


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rows_csv(rows=ROWS, header=("id", "gender", "age_band"), delimiter=",") -> str:
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in rows]
    return "\n".join(lines) + "\n"


def as_rows(pool, features=FEATURES) -> list[tuple[str, ...]]:
    cols = [pool.column(f).tolist() for f in features]
    return [(i, *vals) for i, *vals in zip(pool.ids.to_pylist(), *cols, strict=True)]


def load_error(path: Path, features=FEATURES, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        load_pool(path, features, **kwargs)
    err = info.value
    assert err.exit_code == 2
    assert err.problems, "an InputError must carry at least one problem"
    for line in err.problems:
        assert "\n" not in line, f"problem messages are one line each: {line!r}"
    return err


# ---------------------------------------------------------------------------
# Formats and encodings


def test_parquet_and_csv_with_same_content_load_the_same(tmp_path):
    table = pa.table({
        "id": pa.array([int(r[0]) for r in ROWS], pa.int64()),
        "gender": [r[1] for r in ROWS],
        "age_band": [r[2] for r in ROWS],
    })
    pq.write_table(table, tmp_path / "pool.parquet")
    csv_path = write_csv(tmp_path / "pool.csv", rows_csv())

    from_parquet = load_pool(tmp_path / "pool.parquet", FEATURES)
    from_csv = load_pool(csv_path, FEATURES)

    assert as_rows(from_parquet) == as_rows(from_csv) == list(ROWS)
    assert from_parquet.values == from_csv.values
    assert len(from_parquet) == len(from_csv) == len(ROWS)
    assert from_parquet.value_counts("gender") == {"man": 2, "woman": 3}


def test_pandas_written_parquet_with_categoricals(tmp_path):
    df = pd.DataFrame({
        "id": [r[0] for r in ROWS],
        "gender": pd.Categorical([r[1] for r in ROWS], categories=["woman", "man", "other"]),
        "age_band": [r[2] for r in ROWS],
    })
    df.to_parquet(tmp_path / "pool.parquet")
    assert as_rows(load_pool(tmp_path / "pool.parquet", FEATURES)) == list(ROWS)
    # a category no row uses is not a value of the pool, so no quota needs to mention it
    pool = load_pool(tmp_path / "pool.parquet", ["gender"], quotas=gender_quotas())
    assert pool.values["gender"] == ["man", "woman"]
    assert pool.value_counts("gender") == {"man": 2, "woman": 3}


def test_csv_with_utf8_bom(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "\ufeff" + rows_csv())
    pool = load_pool(path, FEATURES)
    assert pool.id_column == "id"
    assert as_rows(pool) == list(ROWS)


def test_csv_with_semicolon_delimiter(tmp_path):
    path = write_csv(tmp_path / "pool.csv", rows_csv(delimiter=";"))
    assert as_rows(load_pool(path, FEATURES)) == list(ROWS)


def test_csv_with_windows_line_endings(tmp_path):
    path = write_csv(tmp_path / "pool.csv", rows_csv().replace("\n", "\r\n"))
    assert as_rows(load_pool(path, FEATURES)) == list(ROWS)


def test_cp1252_file_read_with_its_encoding(tmp_path):
    text = "id;department;gender\n1;Hérault;woman\n2;Ariège;man\n"
    path = write_csv(tmp_path / "excel.csv", text, encoding="cp1252")
    pool = load_pool(path, ["department", "gender"], encoding="cp1252")
    assert pool.column("department").tolist() == ["Hérault", "Ariège"]


@pytest.mark.parametrize("text", [
    "id;department\n1;Hérault\n",  # bad byte in a data row
    "id;département\n1;Gard\n",  # bad byte in the header
])
def test_cp1252_file_without_encoding_suggests_it(tmp_path, text):
    path = write_csv(tmp_path / "excel.csv", text, encoding="cp1252")
    feature = text.split("\n")[0].split(";")[1]
    err = load_error(path, [feature])
    message = str(err)
    assert str(path) in message
    assert "--encoding cp1252" in message


def test_unknown_encoding_is_an_input_error(tmp_path):
    path = write_csv(tmp_path / "pool.csv", rows_csv())
    err = load_error(path, encoding="no-such-codec")
    assert "no-such-codec" in str(err)


# ---------------------------------------------------------------------------
# Values and ids


def test_whitespace_is_stripped_from_values_and_ids(tmp_path):
    text = "id,gender,age_band\n  1 , woman ,18-24\n2\t,man,  65+  \n"
    pool = load_pool(write_csv(tmp_path / "pool.csv", text), FEATURES)
    assert as_rows(pool) == [("1", "woman", "18-24"), ("2", "man", "65+")]


def test_parquet_whitespace_is_stripped_too(tmp_path):
    table = pa.table({"id": [" a", "b "], "gender": ["woman ", " man"]})
    pq.write_table(table, tmp_path / "pool.parquet")
    pool = load_pool(tmp_path / "pool.parquet", ["gender"], quotas=gender_quotas())
    assert pool.ids.to_pylist() == ["a", "b"]
    assert pool.column("gender").tolist() == ["woman", "man"]


def test_values_are_case_sensitive(tmp_path):
    text = "id,gender\n1, Woman\n2,woman\n3,man\n"
    path = write_csv(tmp_path / "pool.csv", text)
    # without quotas both spellings are kept apart
    pool = load_pool(path, ["gender"])
    assert pool.value_counts("gender") == {"Woman": 1, "man": 1, "woman": 1}
    # with quotas naming "woman", "Woman" is an unknown value
    err = load_error(path, ["gender"], quotas=gender_quotas())
    message = str(err)
    assert str(path) in message
    assert "gender" in message
    assert "'Woman'" in message
    assert "case-sensitive" in message


def test_parquet_integer_ids_become_text(tmp_path):
    table = pa.table({"id": pa.array([7, 12], pa.int64()), "gender": ["woman", "man"]})
    pq.write_table(table, tmp_path / "pool.parquet")
    pool = load_pool(tmp_path / "pool.parquet", ["gender"])
    assert pool.ids.to_pylist() == ["7", "12"]
    assert all(isinstance(i, str) for i in pool.ids.to_pylist())


def test_pandas_float_ids_with_integer_values_read_as_integers(tmp_path):
    pd.DataFrame({"id": [7.0, 8.0], "gender": ["woman", "man"]}).to_parquet(
        tmp_path / "pool.parquet")
    assert load_pool(tmp_path / "pool.parquet", ["gender"]).ids.to_pylist() == ["7", "8"]


def test_csv_ids_keep_leading_zeros(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "id,gender\n007,woman\n7,man\n0.50,man\n")
    assert load_pool(path, ["gender"]).ids.to_pylist() == ["007", "7", "0.50"]


def test_numeric_feature_values_are_text(tmp_path):
    pq.write_table(pa.table({"id": [1, 2], "year": [1970, 1985]}), tmp_path / "pool.parquet")
    pool = load_pool(tmp_path / "pool.parquet", ["year"])
    assert pool.column("year").tolist() == ["1970", "1985"]


def test_only_needed_columns_are_read(tmp_path, monkeypatch):
    phones = ["+33 6 11 22 33 44", "+33 6 55 66 77 88"]
    table = pa.table({"id": ["a", "b"], "phone": phones, "gender": ["woman", "man"]})
    pq.write_table(table, tmp_path / "pool.parquet")
    pacsv.write_csv(table, tmp_path / "pool.csv")

    requested: list[list[str]] = []
    real_read_table, real_read_csv = pool_module.pq.read_table, pool_module.pacsv.read_csv

    def spy_read_table(*args, **kwargs):
        requested.append(list(kwargs.get("columns") or []))
        return real_read_table(*args, **kwargs)

    def spy_read_csv(*args, **kwargs):
        convert = kwargs.get("convert_options")
        requested.append(list(convert.include_columns) if convert else [])
        return real_read_csv(*args, **kwargs)

    monkeypatch.setattr(pool_module.pq, "read_table", spy_read_table)
    monkeypatch.setattr(pool_module.pacsv, "read_csv", spy_read_csv)

    for name in ("pool.parquet", "pool.csv"):
        pool = load_pool(tmp_path / name, ["gender"])
        assert pool.ids.to_pylist() == ["a", "b"]
        assert pool.features == ["gender"]
        assert "phone" not in pool.values and "phone" not in pool.codes
        held = set(pool.ids.to_pylist()) | {v for vs in pool.values.values() for v in vs}
        assert not held & set(phones)
    assert requested, "the pool was read without the expected readers"
    for columns in requested:
        assert columns, "the reader was asked for every column"
        assert "phone" not in columns


def test_no_id_column_means_row_numbers_and_a_note(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "gender\nwoman\nman\nwoman\n")
    pool = load_pool(path, ["gender"])
    assert pool.ids.to_pylist() == ["1", "2", "3"]
    assert pool.id_column is None
    assert len(pool.notes) == 1
    assert str(path) in pool.notes[0]
    assert "row numbers" in pool.notes[0]


def test_explicit_id_column_is_used(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "id,pid,gender\n1,p-9,woman\n2,p-4,man\n")
    pool = load_pool(path, ["gender"], id_column="pid")
    assert pool.id_column == "pid"
    assert pool.ids.to_pylist() == ["p-9", "p-4"]
    assert pool.notes == []


def test_explicit_missing_id_column_is_an_error(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "id,gender\n1,woman\n")
    err = load_error(path, ["gender"], id_column="pid")
    message = str(err)
    assert str(path) in message
    assert "'pid'" in message


# ---------------------------------------------------------------------------
# Validation errors: each names the file and the culprit


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.csv"
    err = load_error(path)
    assert str(path) in str(err)
    assert "not found" in str(err)


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "pool.parquet"
    folder.mkdir()
    err = load_error(folder)
    assert str(folder) in str(err)
    assert "folder" in str(err)


@pytest.mark.parametrize("name", ["pool.csv", "pool.dat"])
def test_unreadable_file(tmp_path, monkeypatch, name):
    # e.g. a file another program holds locked, or without read permission
    path = write_csv(tmp_path / name, rows_csv())
    real_open = Path.open

    def locked_open(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", locked_open)
    err = load_error(path)
    assert str(path) in str(err)
    assert "Permission denied" in str(err)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "pool.parquet"
    path.write_bytes(random.Random(1).randbytes(4096))
    err = load_error(path)
    assert str(path) in str(err)
    assert "Parquet" in str(err)


def test_truncated_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"id": [1, 2], "gender": ["woman", "man"]}), good)
    path = tmp_path / "pool.parquet"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    err = load_error(path, ["gender"])
    assert str(path) in str(err)


def test_ragged_csv_rows_name_the_lines(tmp_path):
    text = "id,gender,age_band\n1,woman,18-24\n2,man\n3,woman,65+\n4,man,65+,extra\n"
    path = write_csv(tmp_path / "pool.csv", text)
    err = load_error(path)
    message = str(err)
    assert str(path) in message
    assert "lines 3, 5" in message  # file line numbers, the header being line 1


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   \n"])
def test_not_a_table(tmp_path, content):
    path = tmp_path / "pool.csv"
    path.write_bytes(content)
    err = load_error(path)
    assert str(path) in str(err)


def test_missing_feature_column(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "id,gender\n1,woman\n")
    err = load_error(path, ["gender", "age_band"])
    message = str(err)
    assert str(path) in message
    assert "'age_band'" in message
    assert "gender" not in message.split("not found")[0]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_empty_pool(tmp_path, kind):
    if kind == "csv":
        path = write_csv(tmp_path / "pool.csv", "id,gender,age_band\n")
    else:
        path = tmp_path / "pool.parquet"
        pq.write_table(pa.table({"id": pa.array([], pa.string()),
                                 "gender": pa.array([], pa.string()),
                                 "age_band": pa.array([], pa.string())}), path)
    err = load_error(path)
    assert str(path) in str(err)
    assert "empty" in str(err)


def test_duplicate_ids_name_the_id_and_rows(tmp_path):
    rows = [("a1", "woman", "65+"), ("b2", "man", "65+"), ("a1", "man", "18-24"),
            ("c3", "man", "18-24"), (" b2 ", "woman", "25-34")]
    path = write_csv(tmp_path / "pool.csv", rows_csv(rows))
    err = load_error(path)
    assert len(err.problems) == 1
    message = err.problems[0]
    assert str(path) in message
    assert "column id" in message
    assert "'a1' (rows 1, 3)" in message
    assert "'b2' (rows 2, 5)" in message  # whitespace is stripped before comparing


def test_duplicate_integer_ids_in_parquet(tmp_path):
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"id": [5, 6, 5], "gender": ["woman", "man", "man"]}), path)
    err = load_error(path, ["gender"])
    assert "'5' (rows 1, 3)" in str(err)


def test_empty_ids(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "id,gender\n1,woman\n ,man\n")
    err = load_error(path, ["gender"])
    assert str(path) in str(err)
    assert "column id" in str(err)
    assert "row 2" in str(err)


def test_empty_csv_values_name_column_and_rows(tmp_path):
    text = 'id,gender,age_band\n1,woman,18-24\n2,,65+\n3,man,65+\n4,  ,25-34\n5,"",65+\n'
    path = write_csv(tmp_path / "pool.csv", text)
    err = load_error(path)
    assert len(err.problems) == 1
    message = err.problems[0]
    assert str(path) in message
    assert "column gender" in message
    assert "rows 2, 4, 5" in message


def test_null_parquet_values_name_column_and_rows(tmp_path):
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({
        "id": [1, 2, 3],
        "gender": ["woman", None, "man"],
        "age_band": [None, "65+", " "],
    }), path)
    err = load_error(path)
    assert len(err.problems) == 2
    gender, age = err.problems
    assert str(path) in gender and "column gender" in gender and "row 2" in gender
    assert str(path) in age and "column age_band" in age and "rows 1, 3" in age


def test_unknown_values_are_listed(tmp_path):
    text = "id,gender\n1,woman\n2,other\n3,man\n4,Woman\n5,other\n"
    path = write_csv(tmp_path / "pool.csv", text)
    err = load_error(path, ["gender"], quotas=gender_quotas())
    message = str(err)
    assert str(path) in message
    assert "column gender" in message
    assert "'other' (2 rows, first row 2)" in message
    assert "'Woman' (1 rows, first row 4)" in message


def test_values_the_quotas_name_are_accepted(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "id,gender\n1,woman\n2,man\n")
    pool = load_pool(path, ["gender"], quotas=gender_quotas())
    assert pool.value_counts("gender") == {"man": 1, "woman": 1}


def test_all_problems_are_reported_at_once(tmp_path):
    text = "id,gender,age_band\n1,woman,18-24\n1,man,\n2,,65+\n2,man,65+\n"
    path = write_csv(tmp_path / "pool.csv", text)
    err = load_error(path)
    joined = "\n".join(err.problems)
    assert len(err.problems) == 3
    assert "duplicated id" in joined and "'1' (rows 1, 2)" in joined
    assert "'2' (rows 3, 4)" in joined
    assert "column gender: empty value in 1 row (row 3)" in joined
    assert "column age_band: empty value in 1 row (row 2)" in joined


def test_all_header_problems_are_reported_at_once(tmp_path):
    path = write_csv(tmp_path / "pool.csv", "x,gender\n1,woman\n")
    err = load_error(path, ["gender", "age_band", "area"], id_column="pid")
    joined = "\n".join(err.problems)
    assert "'pid'" in joined
    assert "'age_band'" in joined and "'area'" in joined


# ---------------------------------------------------------------------------
# Strata


def test_strata_counts_match_pandas_groupby(tmp_path):
    rng = random.Random(3)
    n = 500
    df = pd.DataFrame({
        "id": [f"p{i}" for i in range(n)],
        "gender": [rng.choice(["woman", "man"]) for _ in range(n)],
        "age_band": [rng.choice(["18-24", "25-34", "65+"]) for _ in range(n)],
        "department": [rng.choice(["09 Ariège", "11 Aude", "34 Hérault", "48 Lozère"])
                       for _ in range(n)],
    })
    df.to_parquet(tmp_path / "pool.parquet")
    features = ["gender", "age_band", "department"]
    pool = load_pool(tmp_path / "pool.parquet", features)
    strata = build_strata(pool, features)

    expected = {tuple(k): int(v) for k, v in df.groupby(features).size().items()}
    got = dict(zip(strata.keys, strata.counts.tolist(), strict=True))
    assert got == expected
    assert int(strata.counts.sum()) == n
    assert strata.keys == sorted(strata.keys, key=lambda k: tuple(v.encode() for v in k))
    # every row points at the stratum holding its values
    for i in range(n):
        key = strata.keys[strata.row_stratum[i]]
        assert key == tuple(df.loc[i, f] for f in features)
    assert strata.value_counts("gender") == pool.value_counts("gender")


VALUES = {
    "gender": ["woman", "man", "Woman"],
    "department": ["09 Ariège", "34 Hérault", "Zeta", "é", "e"],
}


@strategies.examples(40)
@given(
    rows=st.lists(st.tuples(st.sampled_from(VALUES["gender"]),
                            st.sampled_from(VALUES["department"])), min_size=1, max_size=60),
    seed=st.integers(0, 2**32 - 1),
)
def test_strata_do_not_depend_on_row_order(rows, seed):
    features = ["gender", "department"]
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for name, data in (("a.csv", rows), ("b.parquet", shuffled)):
            path = Path(tmp) / name
            table = pa.table({"gender": [r[0] for r in data],
                              "department": [r[1] for r in data]})
            if name.endswith(".csv"):
                pacsv.write_csv(table, path)
            else:
                pq.write_table(table, path)
            strata = build_strata(load_pool(path, features), features)
            results.append((strata.keys, strata.counts.tolist()))
        assert results[0] == results[1]
    expected: dict[tuple[str, str], int] = {}
    for r in rows:
        expected[r] = expected.get(r, 0) + 1
    assert dict(zip(results[0][0], results[0][1], strict=True)) == expected


def test_loading_writes_nothing(tmp_path):
    # no cache or temporary file is left next to the pool
    path = write_csv(tmp_path / "pool.csv", rows_csv())
    load_pool(path, FEATURES)
    assert sorted(os.listdir(tmp_path)) == ["pool.csv"]


def test_unclosed_quote_is_reported_not_swallowed(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text('id,gender\n1,woman\n2,"man\n3,woman\n4,man\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_pool(path, ["gender"])
    message = "\n".join(info.value.problems)
    assert "column gender" in message and "row 2" in message and "unclosed quote" in message


def test_representatives_both_ways(tmp_path):
    """`households.for_everyone` spreads the representatives' values over the whole pool (0 for
    the others), `of_representatives` takes them back; without households both are the values
    themselves."""
    path = tmp_path / "pool.csv"
    path.write_text("id,gender,home\n1,man,a\n2,woman,a\n3,man,b\n4,woman,\n", encoding="utf-8")
    whole = load_pool(path, ["gender"], household_column="home")
    reps = subset(whole, np.array([1, 2, 3]))
    values = np.array([0.5, 0.25, 0.125])
    spread = for_everyone(reps, values, len(whole))
    assert spread.tolist() == [0.0, 0.5, 0.25, 0.125]
    assert of_representatives(reps, spread).tolist() == values.tolist()
    alone = load_pool(path, ["gender"])
    assert for_everyone(alone, spread, len(alone)) is spread
    assert of_representatives(alone, spread) is spread


@pytest.mark.parametrize("cells, message", [
    (pa.array([1.0, float("nan"), 2.0]), "column age: a number that is not finite (NaN or "
                                         "infinite) in data row 2"),
    (pa.array([1.0, 2.0, float("-inf")]), "column age: a number that is not finite (NaN or "
                                          "infinite) in data row 3"),
    (pa.array([b"a", b"b", b"c"]), "column age: binary cells cannot be read as text"),
    (pa.array([[1], [2], [3]]), "column age: list<element: int64> cells cannot be read"),
    (pa.array([{"x": 1}, {"x": 2}, {"x": 3}]), "column age: struct<x: int64> cells cannot be"),
])
def test_parquet_cells_without_text_are_refused_by_name(tmp_path, cells, message):
    """NaN, infinities, bytes, lists and structs: exit 2 naming the column, never a crash."""
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "age": cells}), path)
    with pytest.raises(InputError) as e:
        load_pool(path, ["age"])
    assert message in str(e.value) and str(path) in str(e.value)


def test_huge_whole_floats_keep_their_float_text(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "age": pa.array([1e19, 2.0])}), path)
    pool = load_pool(path, ["age"])
    assert sorted(pool.values["age"]) == ["1e+19", "2"]
