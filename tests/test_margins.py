"""The built-in Occitanie margins must match the source CSV files exactly."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from sortition.core.errors import InputError
from sortition.core.resources import occitanie_data_dir
from sortition.inputs.margins import (
    AGE_BANDS,
    DIPLOMA_LEVELS,
    GENDERS,
    OccitanieMargins,
    load_occitanie_margins,
)

LABELS = [
    "09 Ariège",
    "11 Aude",
    "12 Aveyron",
    "30 Gard",
    "31 Haute-Garonne",
    "32 Gers",
    "34 Hérault",
    "46 Lot",
    "48 Lozère",
    "65 Hautes-Pyrénées",
    "66 Pyrénées-Orientales",
    "81 Tarn",
    "82 Tarn-et-Garonne",
]


@pytest.fixture(scope="module")
def margins() -> OccitanieMargins:
    return load_occitanie_margins()


def _rows(name: str) -> list[dict[str, str]]:
    with (occitanie_data_dir() / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_departments_match_csv(margins: OccitanieMargins) -> None:
    assert list(margins.departments_adults) == LABELS
    assert list(margins.departments_all_ages) == LABELS
    assert sum(margins.departments_adults.values()) == 4_760_062
    assert margins.adults_total == 4_760_062
    assert sum(margins.departments_all_ages.values()) == 6_022_176
    assert sum(margins.departments_pl2019.values()) == 5_933_185
    region = next(row for row in _rows("departments.csv") if row["code"] == "76")
    assert sum(margins.departments_adults.values()) == int(region["elp_2020_18plus_EST"])
    assert margins.departments_adults["31 Haute-Garonne"] == 1_107_151
    assert margins.departments_all_ages["48 Lozère"] == 76_519


def test_gender_and_age(margins: OccitanieMargins) -> None:
    assert margins.gender_adults == {"woman": 2_494_923, "man": 2_265_139}
    assert list(margins.age_adults) == list(AGE_BANDS)
    assert sum(margins.age_adults.values()) == 4_760_062
    assert margins.age_adults["65+"] == 1_371_301
    assert list(margins.age_by_gender) == list(GENDERS)
    for gender in GENDERS:
        assert list(margins.age_by_gender[gender]) == list(AGE_BANDS)
        assert sum(margins.age_by_gender[gender].values()) == margins.gender_adults[gender]
    for band in AGE_BANDS:
        both = sum(margins.age_by_gender[g][band] for g in GENDERS)
        assert both == margins.age_adults[band]


def test_diploma_shares(margins: OccitanieMargins) -> None:
    assert margins.diploma_shares == {
        "none/CEP/BEPC": 0.337,
        "CAP/BEP": 0.229,
        "baccalaureate": 0.174,
        "higher education": 0.259,
    }
    assert margins.diploma_shares_by_gender["man"]["CAP/BEP"] == 0.275
    assert margins.diploma_shares_by_gender["woman"]["higher education"] == 0.269
    for shares in (margins.diploma_shares, *margins.diploma_shares_by_gender.values()):
        assert list(shares) == list(DIPLOMA_LEVELS)
        assert sum(shares.values()) == pytest.approx(1.0, abs=0.002)


def test_rural_shares_reproduce_the_region(margins: OccitanieMargins) -> None:
    assert margins.region_rural_share == 0.394
    assert list(margins.rural_share) == LABELS
    assert all(0.0 <= share <= 1.0 for share in margins.rural_share.values())
    weights = margins.departments_pl2019
    weighted = sum(margins.rural_share[d] * weights[d] for d in LABELS) / sum(weights.values())
    assert weighted == pytest.approx(0.394, abs=0.001)
    # published figures are kept as published
    assert margins.rural_share["30 Gard"] == 0.35
    assert margins.rural_share["48 Lozère"] == 0.84
    # Haute-Garonne, the only mainly-urban department, is the least rural
    assert margins.rural_share["31 Haute-Garonne"] == min(margins.rural_share.values())


def test_filled_file_documents_each_value() -> None:
    rows = _rows("urban_rural_filled.csv")
    assert [row["code"] for row in rows] == [label.split(" ")[0] for label in LABELS]
    statuses = {row["code"]: row["status"] for row in rows}
    assert statuses["30"] == "published"
    assert statuses["09"] == "approximate"
    assert statuses["34"] == statuses["66"] == "bound-filled"
    assert statuses["31"] == "solved"
    assert {statuses[c] for c in ("11", "12", "65", "82")} == {"filled"}
    for row in rows:
        assert float(row["rural_share"]) + float(row["urban_share"]) == pytest.approx(1.0)


def test_margins_are_frozen(margins: OccitanieMargins) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        margins.region_rural_share = 0.5  # type: ignore[misc]


def test_missing_directory_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="departments.csv"):
        load_occitanie_margins(tmp_path)


def test_missing_column_is_an_input_error(tmp_path) -> None:
    for source in occitanie_data_dir().glob("*.csv"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    filled = tmp_path / "urban_rural_filled.csv"
    lines = filled.read_text(encoding="utf-8").splitlines()
    filled.write_text(
        "\n".join(line.replace("status", "state", 1) for line in lines) + "\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match="urban_rural_filled.csv: missing column"):
        load_occitanie_margins(tmp_path)
    (tmp_path / "urban_rural_filled.csv").write_bytes(
        (occitanie_data_dir() / "urban_rural_filled.csv").read_bytes()
    )
    assert load_occitanie_margins(tmp_path) == load_occitanie_margins()
