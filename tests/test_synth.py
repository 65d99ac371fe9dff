"""The synthetic contact pool: shape, label sets, households, determinism and biases."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from sortition.core.errors import InputError
from sortition.inputs.margins import (
    AGE_BANDS,
    AREAS,
    DIPLOMA_LEVELS,
    GENDERS,
    load_occitanie_margins,
)
from sortition.inputs.synth import COLUMNS, synthesize_pool, write_pool

MARGINS = load_occitanie_margins()


@pytest.fixture(scope="module")
def small() -> pa.Table:
    return synthesize_pool(5_000, seed=7, margins=MARGINS)


@pytest.fixture(scope="module")
def large() -> pa.Table:
    return synthesize_pool(200_000, seed=2020, margins=MARGINS)


def _share(table: pa.Table, column: str, value: str) -> float:
    return pc.sum(pc.equal(table[column], value)).as_py() / table.num_rows


def test_columns_and_types(small: pa.Table) -> None:
    assert small.column_names == list(COLUMNS)
    assert small.num_rows == 5_000
    assert all(field.type == pa.string() for field in small.schema)
    assert all(small[name].null_count == 0 for name in small.column_names)


def test_ids_are_unique_and_padded(small: pa.Table) -> None:
    ids = small["id"].to_pylist()
    assert len(set(ids)) == len(ids)
    assert ids[0] == "OC0001" and ids[-1] == "OC5000"
    assert set(map(len, ids)) == {6}
    assert synthesize_pool(1, seed=0)["id"].to_pylist() == ["OC1"]


def test_values_within_label_sets(small: pa.Table) -> None:
    expected = {
        "gender": set(GENDERS),
        "age_band": set(AGE_BANDS),
        "department": set(MARGINS.departments_adults),
        "area": set(AREAS),
        "diploma": set(DIPLOMA_LEVELS),
    }
    for column, labels in expected.items():
        assert set(pc.unique(small[column]).to_pylist()) <= labels, column
    # a pool of 5 000 contains every value
    assert set(pc.unique(small["department"]).to_pylist()) == expected["department"]


def test_fake_personal_columns(small: pa.Table) -> None:
    rows = small.slice(0, 200).to_pylist()
    for row in rows:
        phone = row["phone"]
        assert len(phone) == 14 and phone[:3] in ("06 ", "07 "), phone
        assert phone.replace(" ", "").isdigit()
        email = row["email"]
        assert email.isascii() and email == email.lower() and "@example." in email
        code = row["department"].split(" ")[0]
        assert f", {code}" in row["address"], row["address"]
        assert row["household"].startswith("H")
    assert pc.count_distinct(small["email"]).as_py() == small.num_rows
    assert pc.count_distinct(small["phone"]).as_py() == small.num_rows


def test_households_are_shared_within_department_and_area(large: pa.Table) -> None:
    per_household = large.group_by("household").aggregate(
        [
            ("id", "count"),
            ("department", "count_distinct"),
            ("area", "count_distinct"),
            ("address", "count_distinct"),
        ]
    )
    sizes = per_household["id_count"]
    assert pc.max(sizes).as_py() <= 3
    shared_people = pc.sum(pc.filter(sizes, pc.greater(sizes, 1))).as_py() / large.num_rows
    assert 0.25 < shared_people < 0.35
    for column in ("department_count_distinct", "area_count_distinct", "address_count_distinct"):
        assert pc.max(per_household[column]).as_py() == 1, column


def test_biases_are_visible(large: pa.Table) -> None:
    census_65 = MARGINS.age_adults["65+"] / sum(MARGINS.age_adults.values())
    assert _share(large, "age_band", "65+") > census_65 + 0.03
    census_young = MARGINS.age_adults["18-24"] / sum(MARGINS.age_adults.values())
    assert _share(large, "age_band", "18-24") < census_young
    assert _share(large, "diploma", "higher education") > 0.259
    assert _share(large, "area", "rural") < MARGINS.region_rural_share


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path: Path) -> None:
    for suffix in (".parquet", ".csv"):
        first, second, other = (tmp_path / f"{n}{suffix}" for n in ("a", "b", "c"))
        write_pool(synthesize_pool(3_000, seed=11, margins=MARGINS), first)
        write_pool(synthesize_pool(3_000, seed=11, margins=MARGINS), second)
        write_pool(synthesize_pool(3_000, seed=12, margins=MARGINS), other)
        assert first.read_bytes() == second.read_bytes(), suffix
        assert first.read_bytes() != other.read_bytes(), suffix


def test_round_trip(small: pa.Table, tmp_path: Path) -> None:
    parquet, pq_file, csv_file = tmp_path / "pool.parquet", tmp_path / "pool.pq", tmp_path / "p.csv"
    for path in (parquet, pq_file, csv_file):
        write_pool(small, path)
    assert pq.read_table(parquet).equals(small)
    assert pq.read_table(pq_file).equals(small)
    text_columns = {name: pa.string() for name in small.column_names}
    back = pcsv.read_csv(csv_file, convert_options=pcsv.ConvertOptions(column_types=text_columns))
    assert back.equals(small)
    assert csv_file.read_bytes().decode("utf-8").startswith('"id","gender","age_band"')
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_bad_arguments(tmp_path: Path, small: pa.Table) -> None:
    for rows in (0, -5):
        with pytest.raises(InputError, match="--rows .*: must be at least 1"):
            synthesize_pool(rows, seed=1, margins=MARGINS)
    with pytest.raises(InputError, match="seed"):
        synthesize_pool(10, seed=-1, margins=MARGINS)
    target = tmp_path / "pool.xlsx"
    with pytest.raises(InputError, match="pool.xlsx"):
        write_pool(small, target)
    assert not target.exists()


def test_progress_messages() -> None:
    messages: list[str] = []
    synthesize_pool(100, seed=3, margins=MARGINS, progress=messages.append)
    assert len(messages) >= 3
    assert "100" in messages[-1]
