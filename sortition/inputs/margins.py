"""Built-in Occitanie census margins, read from `data/occitanie/`.

The built-in quota specification is checked against these figures and the synthetic example
pool is built from them, so both must agree with the documented source tables exactly. This
module is the single reader of those CSV files: every number comes from a file (with its
provenance in `SOURCES.md` and `README.md` beside it), none is typed into Python. Dictionaries
keep a fixed, documented order so that everything built on them is deterministic.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..core.resources import occitanie_data_dir

GENDERS: tuple[str, ...] = ("woman", "man")
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-49", "50-64", "65+")
DIPLOMA_LEVELS: tuple[str, ...] = ("none/CEP/BEPC", "CAP/BEP", "baccalaureate", "higher education")
AREAS: tuple[str, ...] = ("urban", "rural")

REGION_CODE = "76"  # the region total row in departments.csv
MARGINS_DATE = "01/01/2020"  # Insee population estimates closest to the July 2020 draw

# diploma.csv: the RP2011 Occitanie rows (category_insee) that make up the four levels.
_DIPLOMA_ROWS: dict[str, str] = {
    "none/CEP/BEPC": "SUM aucun+CEP+BEPC",
    "CAP/BEP": "CAP ou BEP",
    "baccalaureate": "baccalaureat ou brevet professionnel",
    "higher education": "SUM superieur court+long",
}
_DIPLOMA_GEOGRAPHY = "Occitanie (REG-76)"
_DIPLOMA_CENSUS = "RP2011"
_AGE_SEX = {"woman": "women", "man": "men"}
_RURAL_STATUSES = {"published", "approximate", "bound-filled", "filled", "solved"}


@dataclass(frozen=True)
class OccitanieMargins:
    """Adult population margins of Occitanie around the 2020 Convention citoyenne.

    Department keys are labels `"<code> <name>"` (e.g. `"09 Ariège"`) in department-code order.
    Shares are fractions (0.394, not 39.4).
    """

    departments_adults: dict[str, int]  # estimated adults 18+ on 1 Jan 2020 (elp_2020_18plus_EST)
    departments_all_ages: dict[str, int]  # population municipale, legal populations 2021
    departments_pl2019: dict[str, int]  # population municipale 2019 (weights for 2018 shares)
    gender_adults: dict[str, int]  # "woman"/"man": adults 18+ on 1 Jan 2020
    age_adults: dict[str, int]  # AGE_BANDS: adults on 1 Jan 2020, both sexes
    age_by_gender: dict[str, dict[str, int]]  # gender -> age band -> adults on 1 Jan 2020
    diploma_shares: dict[str, float]  # DIPLOMA_LEVELS: RP2011, non-student population 15+
    diploma_shares_by_gender: dict[str, dict[str, float]]  # gender -> level -> share
    rural_share: dict[str, float]  # department -> rural share, gaps filled (urban_rural_filled.csv)
    region_rural_share: float  # published regional rural share (Insee 2020 definition)

    @property
    def adults_total(self) -> int:
        return sum(self.departments_adults.values())


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = reader.fieldnames or []
    except OSError as exc:
        raise InputError(f"cannot read census margins file {path}: {exc.strerror}") from exc
    missing = [column for column in columns if column not in header]
    if missing:
        raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}")
    return rows


def _to_int(value: str, path: Path, what: str) -> int:
    try:
        return int(value.strip())
    except (AttributeError, ValueError):
        raise InputError(f"{path.name}: {what} is not an integer: {value!r}") from None


def _percent(value: str, path: Path, what: str) -> float:
    """A percentage as a fraction, rounded so that 22.9 gives 0.229 and not 0.22899999999999998."""
    return round(_to_float(value, path, what) / 100.0, 10)


def _to_float(value: str, path: Path, what: str) -> float:
    try:
        return float(value.strip())
    except (AttributeError, ValueError):
        raise InputError(f"{path.name}: {what} is not a number: {value!r}") from None


def _departments(
    data_dir: Path,
) -> tuple[dict[str, str], dict[str, int], dict[str, int], dict[str, int]]:
    path = data_dir / "departments.csv"
    labels: dict[str, str] = {}
    adults: dict[str, int] = {}
    all_ages: dict[str, int] = {}
    pl2019: dict[str, int] = {}
    columns = ("code", "name", "elp_2020_18plus_EST", "pop_municipale_PL2021")
    for row in _read_rows(path, (*columns, "pop_municipale_PL2019")):
        code = row["code"].strip()
        if code == REGION_CODE:
            continue
        label = f"{code} {row['name'].strip()}"
        labels[code] = label
        adults[label] = _to_int(row["elp_2020_18plus_EST"], path, f"adults of {label}")
        all_ages[label] = _to_int(row["pop_municipale_PL2021"], path, f"population of {label}")
        pl2019[label] = _to_int(row["pop_municipale_PL2019"], path, f"PL2019 of {label}")
    if len(labels) != 13:
        raise InputError(f"{path.name}: expected 13 departments, found {len(labels)}")
    return labels, adults, all_ages, pl2019


def _gender(data_dir: Path) -> dict[str, int]:
    path = data_dir / "gender.csv"
    for row in _read_rows(path, ("date", "scope", "women", "men")):
        if row["date"].strip() == MARGINS_DATE and row["scope"].strip() == "18 years or older":
            return {
                "woman": _to_int(row["women"], path, "adult women"),
                "man": _to_int(row["men"], path, "adult men"),
            }
    raise InputError(f"{path.name}: no '18 years or older' row dated {MARGINS_DATE}")


def _age(data_dir: Path) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    path = data_dir / "age.csv"
    found: dict[tuple[str, str], int] = {}
    for row in _read_rows(path, ("date", "sex", "age_band", "population", "band_type")):
        if row["date"].strip() != MARGINS_DATE or row["band_type"].strip() != "main":
            continue
        key = (row["sex"].strip(), row["age_band"].strip())
        found[key] = _to_int(row["population"], path, f"population {key}")
    try:
        age_adults = {band: found[("all", band)] for band in AGE_BANDS}
        by_gender = {
            gender: {band: found[(_AGE_SEX[gender], band)] for band in AGE_BANDS}
            for gender in GENDERS
        }
    except KeyError as exc:
        missing = exc.args[0]
        raise InputError(
            f"{path.name}: missing main age band {missing} on {MARGINS_DATE}"
        ) from None
    return age_adults, by_gender


def _diploma(data_dir: Path) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    path = data_dir / "diploma.csv"
    rows: dict[str, dict[str, str]] = {}
    columns = ("geography", "census", "category_insee", "share_all_pct")
    for row in _read_rows(path, (*columns, "share_men_pct", "share_women_pct")):
        if (
            row["geography"].strip() == _DIPLOMA_GEOGRAPHY
            and row["census"].strip() == _DIPLOMA_CENSUS
        ):
            rows[row["category_insee"].strip()] = row
    shares: dict[str, float] = {}
    by_gender: dict[str, dict[str, float]] = {gender: {} for gender in GENDERS}
    by_gender_column = {"woman": "share_women_pct", "man": "share_men_pct"}
    for level, category in _DIPLOMA_ROWS.items():
        if category not in rows:
            raise InputError(f"{path.name}: missing {_DIPLOMA_CENSUS} row {category!r}")
        row = rows[category]
        shares[level] = _percent(row["share_all_pct"], path, f"share of {level}")
        for gender, column in by_gender_column.items():
            by_gender[gender][level] = _percent(row[column], path, f"{column} of {level}")
    return shares, by_gender


def _rural(data_dir: Path, labels: dict[str, str]) -> dict[str, float]:
    path = data_dir / "urban_rural_filled.csv"
    found: dict[str, float] = {}
    for row in _read_rows(path, ("code", "rural_share", "status")):
        code = row["code"].strip()
        if code not in labels:
            raise InputError(f"{path.name}: unknown department code {code!r}")
        if row["status"].strip() not in _RURAL_STATUSES:
            raise InputError(f"{path.name}: unknown status {row['status']!r} for {code}")
        share = _to_float(row["rural_share"], path, f"rural share of {code}")
        if not 0.0 <= share <= 1.0:
            raise InputError(f"{path.name}: rural share of {code} is outside [0, 1]: {share}")
        found[code] = share
    missing = [code for code in labels if code not in found]
    if missing:
        raise InputError(f"{path.name}: no rural share for department(s) {', '.join(missing)}")
    return {label: found[code] for code, label in labels.items()}


def _region_rural(data_dir: Path) -> float:
    """Published regional share (Insee Flash Occitanie n° 109, 1 Jan 2018): 39.4 %."""
    path = data_dir / "urban_rural.csv"
    for row in _read_rows(path, ("code", "rural_share_pct")):
        if row["code"].strip() == REGION_CODE:
            return _percent(row["rural_share_pct"], path, "regional rural share")
    raise InputError(f"{path.name}: no region row (code {REGION_CODE})")


def load_occitanie_margins(data_dir: Path | None = None) -> OccitanieMargins:
    """Read the Occitanie margins from `data_dir` (default: the built-in `data/occitanie/`)."""
    data_dir = Path(data_dir) if data_dir is not None else occitanie_data_dir()
    labels, adults, all_ages, pl2019 = _departments(data_dir)
    age_adults, age_by_gender = _age(data_dir)
    diploma_shares, diploma_by_gender = _diploma(data_dir)
    return OccitanieMargins(
        departments_adults=adults,
        departments_all_ages=all_ages,
        departments_pl2019=pl2019,
        gender_adults=_gender(data_dir),
        age_adults=age_adults,
        age_by_gender=age_by_gender,
        diploma_shares=diploma_shares,
        diploma_shares_by_gender=diploma_by_gender,
        rural_share=_rural(data_dir, labels),
        region_rural_share=_region_rural(data_dir),
    )
