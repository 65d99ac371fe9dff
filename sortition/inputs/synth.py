"""A synthetic Occitanie contact pool, for demonstrations, tests and benchmarks.

The 2020 Convention citoyenne pour l'Occitanie was drawn from a base of about 1.3 million phone
contacts. That base is not public, so this module builds a stand-in of any size from the census
margins in `data/occitanie/` (see `sortition.inputs.margins`). A pool that simply mirrored the
census would make quotas trivial; real contact and volunteer pools are skewed, and the whole
point of stratified sortition is to correct that skew. The pool therefore carries the biases
commonly observed in respondent pools, each one a documented module constant:

| Who answers more | Constant | Category: multiplier on census weights, then renormalised |
|---|---|---|
| older people | `AGE_BIAS` | 18-24: 0.55, 25-34: 0.75, 35-49: 0.95, 50-64: 1.20, 65+: 1.30 |
| graduates | `DIPLOMA_BIAS` | none/CEP/BEPC: 0.7, CAP/BEP: 0.9, bac: 1.1, higher ed.: 1.6 |
| urban residents | `URBAN_ODDS` | odds of living in an urban area: 1.25, within each department |

Diploma also depends on age, as it does in the population: qualifications rose over time, so
younger adults hold more baccalaureates and degrees and older adults more "no diploma / CEP /
BEPC". `DIPLOMA_AGE_TENDENCY` gives the relative tendencies below; they are calibrated (iterative
proportional fitting, per gender) so that, weighted by the census age structure, they reproduce
the census diploma shares exactly. Only then is `DIPLOMA_BIAS` applied.

| Age band | none/CEP/BEPC | CAP/BEP | baccalaureate | higher education |
|---|---|---|---|---|
| 18-24 | 0.55 | 0.70 | 2.20 | 1.00 |
| 25-34 | 0.45 | 0.80 | 1.25 | 1.85 |
| 35-49 | 0.65 | 1.05 | 1.05 | 1.35 |
| 50-64 | 1.00 | 1.25 | 0.85 | 0.85 |
| 65+ | 1.65 | 0.95 | 0.60 | 0.55 |

(18-24 year olds have fewer degrees than 25-34 year olds because many are still studying; the
baccalaureate is then their highest diploma.)

Sampling model, per person: (gender, age band) jointly from the census counts × `AGE_BIAS`;
department from the adult counts; area from the department's rural share with the urban odds
× `URBAN_ODDS`; diploma from the calibrated (gender, age band) table × `DIPLOMA_BIAS`.
About `1 - HOUSEHOLD_PEOPLE_SHARES[0]` (30 %) of people share a household with one or two
others of the same department and area, with whom they share a last name and a postal address.
Names, phone numbers, e-mail and postal addresses are fake (reserved `example.*` domains), only
there so that the pool looks and weighs like a real contact file.

**Extended pools** (`extended=True`, `sortition synth --extended`) add three columns after
`diploma`, for pools where nearly every volunteer has a profile of their own: `profession` (the 8
Insee socio-professional groups, drawn given age band and diploma), `habitat` (urban /
peri-urban / rural, drawn given `area`) and `opinion` (an attitude question: worry about climate
change, 5 answers). Their shares (`PROFESSION_BY_AGE`, `HABITAT_GIVEN_AREA`, `OPINION_SHARES`
and the biases beside them) are **illustrative, not census figures**: plausible orders of
magnitude typed in here, since `data/occitanie/` holds no such margins. They are drawn from a
second random stream, so the first columns of an extended pool are those of the plain pool of
the same seed.

Everything is vectorised: numpy for the draws (`Generator(PCG64(seed))`), pyarrow compute
kernels for the text columns. The same seed gives the same table and byte-identical files.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.errors import InputError
from ..core.fileio import write_csv_table
from ..core.limits import MAX_SYNTH_ROWS, check_count
from ..core.outputs import atomic_path, check_file
from .margins import (
    AGE_BANDS,
    AREAS,
    DIPLOMA_LEVELS,
    GENDERS,
    OccitanieMargins,
    load_occitanie_margins,
)

# --- Biases of the contact pool (multipliers on census weights) --------------------------------

AGE_BIAS: dict[str, float] = {
    "18-24": 0.55,
    "25-34": 0.75,
    "35-49": 0.95,
    "50-64": 1.20,
    "65+": 1.30,
}
DIPLOMA_BIAS: dict[str, float] = {
    "none/CEP/BEPC": 0.7,
    "CAP/BEP": 0.9,
    "baccalaureate": 1.1,
    "higher education": 1.6,
}
URBAN_ODDS = 1.25

# Rows: AGE_BANDS; columns: DIPLOMA_LEVELS. Relative tendencies, calibrated to the census shares.
DIPLOMA_AGE_TENDENCY: tuple[tuple[float, ...], ...] = (
    (0.55, 0.70, 2.20, 1.00),
    (0.45, 0.80, 1.25, 1.85),
    (0.65, 1.05, 1.05, 1.35),
    (1.00, 1.25, 0.85, 0.85),
    (1.65, 0.95, 0.60, 0.55),
)

# --- Extended pools: ILLUSTRATIVE shares, not census figures --------------------------------

PROFESSIONS: tuple[str, ...] = (
    "farmer", "artisan/trader/business owner", "manager/professional",
    "intermediate profession", "employee", "manual worker", "retired", "other inactive",
)  # fmt: skip
# Rows: AGE_BANDS; columns: PROFESSIONS (the 8 Insee PCS groups). Plausible, not measured.
PROFESSION_BY_AGE: tuple[tuple[float, ...], ...] = (
    (0.005, 0.010, 0.030, 0.120, 0.220, 0.140, 0.000, 0.475),
    (0.010, 0.040, 0.150, 0.220, 0.250, 0.170, 0.000, 0.160),
    (0.015, 0.070, 0.170, 0.210, 0.230, 0.170, 0.005, 0.130),
    (0.020, 0.070, 0.140, 0.160, 0.210, 0.150, 0.150, 0.100),
    (0.003, 0.010, 0.010, 0.010, 0.010, 0.005, 0.900, 0.052),
)
# Rows: DIPLOMA_LEVELS; columns: PROFESSIONS. Multipliers: graduates are managers more often.
PROFESSION_DIPLOMA_TILT: tuple[tuple[float, ...], ...] = (
    (1.2, 0.9, 0.2, 0.5, 1.0, 1.7, 1.0, 1.3),
    (1.3, 1.3, 0.4, 0.8, 1.1, 1.5, 1.0, 1.0),
    (1.0, 1.0, 0.8, 1.2, 1.2, 0.8, 1.0, 1.0),
    (0.6, 0.8, 2.6, 1.5, 0.8, 0.3, 1.0, 0.9),
)
HABITATS: tuple[str, ...] = ("urban", "peri-urban", "rural")
# Rows: AREAS (urban, rural); columns: HABITATS.
HABITAT_GIVEN_AREA: tuple[tuple[float, ...], ...] = ((0.60, 0.30, 0.10), (0.10, 0.35, 0.55))
OPINIONS: tuple[str, ...] = (
    "very worried", "rather worried", "undecided", "not very worried", "not worried",
)  # fmt: skip
OPINION_SHARES: tuple[float, ...] = (0.30, 0.28, 0.14, 0.16, 0.12)  # the worried volunteer more
EXTENDED_COLUMNS: tuple[str, ...] = ("profession", "habitat", "opinion")

# Share of people living alone / with one other / with two others in the pool.
HOUSEHOLD_PEOPLE_SHARES: tuple[float, float, float] = (0.70, 0.22, 0.08)

COLUMNS: tuple[str, ...] = (
    "id",
    "gender",
    "age_band",
    "department",
    "area",
    "diploma",
    "household",
    "name",
    "phone",
    "email",
    "address",
)

# --- Fake personal data -------------------------------------------------------------------------

FIRST_NAMES_WOMEN: tuple[str, ...] = (
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Christine", "Monique",
    "Valérie", "Sandrine", "Martine", "Nicole", "Véronique", "Stéphanie", "Céline", "Julie",
    "Aurélie", "Camille", "Léa", "Manon", "Chloé", "Emma", "Inès", "Sarah", "Laura", "Pauline",
    "Émilie", "Claire", "Anne", "Sophie", "Hélène", "Jeanne", "Élodie", "Mathilde", "Lucie",
    "Océane", "Marion", "Caroline", "Agnès", "Brigitte", "Danielle", "Josiane", "Mireille",
    "Odile", "Patricia", "Laurence", "Audrey", "Justine", "Margaux", "Zoé",
)  # fmt: skip
FIRST_NAMES_MEN: tuple[str, ...] = (
    "Jean", "Pierre", "Michel", "Philippe", "Alain", "Patrick", "Nicolas", "Christophe",
    "Laurent", "Frédéric", "Stéphane", "Éric", "David", "Julien", "Sébastien", "Thomas",
    "Olivier", "Daniel", "Bernard", "Jacques", "André", "Gérard", "François", "Thierry",
    "Pascal", "Didier", "Vincent", "Maxime", "Alexandre", "Romain", "Antoine", "Hugo", "Lucas",
    "Louis", "Théo", "Mathieu", "Guillaume", "Kévin", "Florian", "Jérôme", "Cédric", "Damien",
    "Yannick", "Serge", "Claude", "Henri", "Marc", "Jean-Pierre", "Jean-Claude", "Baptiste",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Martin", "Bernard", "Garcia", "Martinez", "Lopez", "Fabre", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Vidal", "Roux", "Blanc", "Fournier", "Girard", "Bonnet",
    "Dupont", "Delmas", "Fernandez", "Sanchez", "Rodriguez", "Perez", "Faure", "Mercier",
    "Boyer", "Roques", "Bousquet", "Cazals", "Teyssier", "Salles", "Rouquette", "Escudier",
    "Castel", "Marty", "Rigal", "Bories", "Lacombe", "Combes", "Rey", "Pujol", "Puech",
    "Cros", "Mas", "Serres", "Guiraud", "Clément", "Azéma", "Thomas",
)  # fmt: skip
STREET_TYPES: tuple[str, ...] = (
    "rue", "rue", "rue", "avenue", "chemin", "impasse", "allée", "boulevard", "place", "route",
)  # fmt: skip
STREET_NAMES: tuple[str, ...] = (
    "des Lilas", "de la Fontaine", "Jean Jaurès", "Victor Hugo", "du Moulin", "de l'Église",
    "des Écoles", "de la République", "Pasteur", "du Stade", "des Vignes", "de la Gare",
    "du Pont", "des Tilleuls", "de la Mairie", "des Cerisiers", "du Château", "des Platanes",
    "Gambetta", "du Midi", "des Oliviers", "du Canal", "de la Garrigue", "Frédéric Mistral",
    "des Pyrénées",
)  # fmt: skip
TOWN_ROOTS: tuple[str, ...] = (
    "Castelnau", "Villeneuve", "Montredon", "Saint-Martin", "Saint-Jean", "Labastide",
    "Roquefort", "Belcastel", "Montesquieu", "Puylaurens", "Cazouls", "Lavalette",
    "Villefranche", "Sainte-Croix", "Fontanès", "Mazères", "Saint-Paul", "Lasbordes",
    "Caussade", "Aubiac",
)  # fmt: skip
# Town suffix by department code, used for about a third of the towns.
TOWN_SUFFIXES: dict[str, str] = {
    "09": "-sur-Ariège",
    "11": "-d'Aude",
    "12": "-d'Aveyron",
    "30": "-du-Gard",
    "31": "-sur-Garonne",
    "32": "-en-Gascogne",
    "34": "-d'Hérault",
    "46": "-sur-Lot",
    "48": "-de-Lozère",
    "65": "-de-Bigorre",
    "66": "-en-Roussillon",
    "81": "-sur-Tarn",
    "82": "-en-Quercy",
}
EMAIL_DOMAINS: tuple[str, ...] = ("example.org", "example.com", "example.net")
_TOWN_SUFFIX_SHARE = 0.35
_PHONE_SPACE = 200_000_000  # 06 00 00 00 00 .. 07 99 99 99 99


def _slug(text: str) -> str:
    """ASCII, lower-case e-mail part: 'Jean-Pierre' -> 'jean-pierre', 'Azéma' -> 'azema'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum() or ch == "-")


def _normalise(weights: np.ndarray, axis: int = -1) -> np.ndarray:
    return weights / weights.sum(axis=axis, keepdims=True)


def _census_diploma_given_age(margins: OccitanieMargins) -> np.ndarray:
    """P(diploma | gender, age band) in the population, shape (gender, age band, diploma).

    Starts from `DIPLOMA_AGE_TENDENCY` and rescales it until each row sums to 1 and the
    age-weighted mix equals the census diploma shares of that gender.
    """
    tendency = np.array(DIPLOMA_AGE_TENDENCY, dtype=np.float64)
    out = np.empty((len(GENDERS), len(AGE_BANDS), len(DIPLOMA_LEVELS)))
    for g, gender in enumerate(GENDERS):
        ages = _normalise(np.array([margins.age_by_gender[gender][a] for a in AGE_BANDS], float))
        target = _normalise(
            np.array([margins.diploma_shares_by_gender[gender][d] for d in DIPLOMA_LEVELS])
        )
        table = tendency * target
        for _ in range(500):
            table = _normalise(table, axis=1)
            table = table * (target / (ages @ table))
        out[g] = _normalise(table, axis=1)
    return out


def _pool_model(
    margins: OccitanieMargins,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities of the contact pool: (gender×age), department, P(urban | dept), diploma."""
    gender_age = np.array(
        [[margins.age_by_gender[g][a] * AGE_BIAS[a] for a in AGE_BANDS] for g in GENDERS],
        dtype=np.float64,
    )
    gender_age = gender_age.ravel() / gender_age.sum()
    departments = np.array(list(margins.departments_adults.values()), dtype=np.float64)
    departments /= departments.sum()
    rural = np.array([margins.rural_share[d] for d in margins.departments_adults], np.float64)
    urban_weight = URBAN_ODDS * (1.0 - rural)
    p_urban = urban_weight / (urban_weight + rural)
    bias = np.array([DIPLOMA_BIAS[d] for d in DIPLOMA_LEVELS], dtype=np.float64)
    diploma = _normalise(_census_diploma_given_age(margins) * bias)
    return gender_age, departments, p_urban, diploma.reshape(-1, len(DIPLOMA_LEVELS))


def _conditional_draw(rng: np.random.Generator, table: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One category per row, from row `group[i]` of the probability `table` (groups × K)."""
    cdf = np.cumsum(table, axis=1)[:, :-1]
    u = rng.random(len(group))
    return (u[:, None] >= cdf[group]).sum(axis=1).astype(np.int64)


def _households(rng: np.random.Generator, stratum: np.ndarray) -> tuple[np.ndarray, int]:
    """Household number (0-based, opaque) of each person; households never cross a stratum."""
    n = stratum.shape[0]
    sizes = np.arange(1, len(HOUSEHOLD_PEOPLE_SHARES) + 1)
    p_size = _normalise(np.array(HOUSEHOLD_PEOPLE_SHARES) / sizes)
    # People are i.i.d., so within a stratum the original order is already random.
    order = np.argsort(stratum, kind="stable")
    drawn = rng.choice(sizes, size=n, p=p_size)
    starts = np.cumsum(drawn) - drawn
    is_start = np.zeros(n, dtype=bool)
    is_start[starts[starts < n]] = True
    sorted_stratum = stratum[order]
    is_start[1:] |= sorted_stratum[1:] != sorted_stratum[:-1]
    is_start[0] = True
    household_sorted = np.cumsum(is_start) - 1
    count = int(household_sorted[-1]) + 1
    household = np.empty(n, dtype=np.int64)
    household[order] = household_sorted
    return rng.permutation(count)[household], count


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _take(values: tuple[str, ...] | list[str], index: Any) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(index))


def _phones(rng: np.random.Generator, n: int) -> pa.Array:
    """Distinct French mobile numbers '06 12 34 56 78' / '07 …', in random order."""
    bucket = _PHONE_SPACE // n  # one number per bucket keeps them distinct
    numbers = np.arange(n, dtype=np.int64) * bucket + rng.integers(0, bucket, size=n)
    numbers = rng.permutation(numbers)
    parts = [_take(("06", "07"), numbers // 100_000_000)]
    rest = numbers % 100_000_000
    for divisor in (1_000_000, 10_000, 100, 1):
        pair = (rest // divisor) % 100
        parts.append(pc.utf8_lpad(pc.cast(pa.array(pair), pa.string()), width=2, padding="0"))
    return pc.binary_join_element_wise(*parts, " ")


def _names_and_emails(
    rng: np.random.Generator, gender: np.ndarray, household: np.ndarray, n_households: int
) -> tuple[pa.Array, pa.Array]:
    """'Prénom Nom' (last name shared within a household) and a unique ASCII e-mail address."""
    n = len(gender)
    women, men = len(FIRST_NAMES_WOMEN), len(FIRST_NAMES_MEN)
    u = rng.random(n)
    first = np.where(gender == 0, (u * women).astype(np.int64), women + (u * men).astype(np.int64))
    last = rng.integers(0, len(LAST_NAMES), size=n_households)[household]
    first_names = FIRST_NAMES_WOMEN + FIRST_NAMES_MEN
    name = pc.binary_join_element_wise(_take(first_names, first), _take(LAST_NAMES, last), " ")
    email = pc.binary_join_element_wise(
        _take([_slug(x) for x in first_names], first),
        ".",
        _take([_slug(x) for x in LAST_NAMES], last),
        pc.cast(pa.array(rng.permutation(n) + 1), pa.string()),  # distinct numbers: unique e-mails
        "@",
        _take(EMAIL_DOMAINS, rng.integers(0, len(EMAIL_DOMAINS), size=n)),
        "",
    )
    return name, email


def _addresses(
    rng: np.random.Generator,
    household: np.ndarray,
    household_department: np.ndarray,
    labels: list[str],
) -> pa.Array:
    """'12 rue des Lilas, 31250 Castelnau-sur-Garonne', one per household, given to each member."""
    n_households = household_department.shape[0]
    codes = [label.split(" ", 1)[0] for label in labels]
    street_number = pc.cast(pa.array(rng.integers(1, 150, size=n_households)), pa.string())
    street = pc.binary_join_element_wise(
        street_number,
        _take(STREET_TYPES, rng.integers(0, len(STREET_TYPES), size=n_households)),
        _take(STREET_NAMES, rng.integers(0, len(STREET_NAMES), size=n_households)),
        " ",
    )
    postcode = pc.binary_join_element_wise(
        _take(codes, household_department),
        pc.utf8_lpad(
            pc.cast(pa.array(rng.integers(0, 100, size=n_households)), pa.string()),
            width=2,
            padding="0",
        ),
        "0",
        "",
    )
    with_suffix = rng.random(n_households) < _TOWN_SUFFIX_SHARE
    suffixes = [""] + [TOWN_SUFFIXES.get(code, "") for code in codes]
    town = pc.binary_join_element_wise(
        _take(TOWN_ROOTS, rng.integers(0, len(TOWN_ROOTS), size=n_households)),
        _take(suffixes, np.where(with_suffix, household_department + 1, 0)),
        "",
    )
    place = pc.binary_join_element_wise(postcode, town, " ")
    del postcode, town
    return pc.binary_join_element_wise(street, place, ", ").take(pa.array(household))


def synthesize_pool(
    rows: int,
    seed: int,
    margins: OccitanieMargins | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    extended: bool = False,
) -> pa.Table:
    """A synthetic, biased Occitanie contact pool of `rows` adults (see the module docstring).

    The same `rows`, `seed` and margins always give the same table. `extended` adds the
    illustrative `profession`, `habitat` and `opinion` columns.
    """
    check_count("--rows", rows, maximum=MAX_SYNTH_ROWS)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"the seed must be a non-negative integer, got {seed!r}")
    n = int(rows)
    report = progress or (lambda _message: None)
    margins = margins if margins is not None else load_occitanie_margins()
    rng = np.random.Generator(np.random.PCG64(int(seed)))

    report(f"sampling {n:,} people from the Occitanie margins")
    p_gender_age, p_department, p_urban, p_diploma = _pool_model(margins)
    gender_age = rng.choice(p_gender_age.shape[0], size=n, p=p_gender_age)
    gender = gender_age // len(AGE_BANDS)
    department = rng.choice(p_department.shape[0], size=n, p=p_department)
    rural = (rng.random(n) >= p_urban[department]).astype(np.int64)  # index into AREAS
    diploma = _conditional_draw(rng, p_diploma, gender_age)

    report("forming households")
    household, n_households = _households(rng, department * len(AREAS) + rural)
    household_department = np.zeros(n_households, dtype=np.int64)
    household_department[household] = department

    report("generating names and contact details")
    name, email = _names_and_emails(rng, gender, household, n_households)
    phone = _phones(rng, n)
    labels = list(margins.departments_adults)
    address = _addresses(rng, household, household_department, labels)

    columns = {
            "id": _numbered("OC", np.arange(1, n + 1), len(str(n))),
            "gender": _take(GENDERS, gender),
            "age_band": _take(AGE_BANDS, gender_age % len(AGE_BANDS)),
            "department": _take(labels, department),
            "area": _take(AREAS, rural),
            "diploma": _take(DIPLOMA_LEVELS, diploma),
    }
    if extended:
        columns.update(_extended_columns(seed, gender_age % len(AGE_BANDS), diploma, rural))
    columns.update({
            "household": _numbered("H", household + 1, max(6, len(str(n_households)))),
            "name": name,
            "phone": phone,
            "email": email,
            "address": address,
    })
    table = pa.table(columns)
    report(f"synthetic pool ready: {n:,} people in {n_households:,} households")
    return table


def _extended_columns(seed: int, age: np.ndarray, diploma: np.ndarray, rural: np.ndarray
                      ) -> dict[str, pa.Array]:
    """Profession, habitat and opinion, from a second stream so the other columns do not move."""
    rng = np.random.Generator(np.random.PCG64([int(seed), 1]))
    by_age = np.array(PROFESSION_BY_AGE, dtype=np.float64)
    tilt = np.array(PROFESSION_DIPLOMA_TILT, dtype=np.float64)
    table = _normalise(by_age[:, None, :] * tilt[None, :, :]).reshape(-1, len(PROFESSIONS))
    profession = _conditional_draw(rng, table, age * len(DIPLOMA_LEVELS) + diploma)
    habitat = _conditional_draw(rng, np.array(HABITAT_GIVEN_AREA, dtype=np.float64), rural)
    opinion = _conditional_draw(rng, np.array([OPINION_SHARES], dtype=np.float64),
                                np.zeros(age.shape[0], dtype=np.int64))
    return {"profession": _take(PROFESSIONS, profession), "habitat": _take(HABITATS, habitat),
            "opinion": _take(OPINIONS, opinion)}


def write_pool(table: pa.Table, out: Path, *, force: bool = False) -> None:
    """Write the pool to `out` atomically: Parquet (.parquet, .pq) or UTF-8 CSV (.csv).

    Created 0600: it has (fake, but realistic) contact columns, like a real base. An existing
    file is replaced only with `force`.
    """
    out = Path(out)
    check_pool_target(out, force=force)
    suffix = out.suffix.lower()
    if suffix in (".parquet", ".pq"):

        def write(path: Path) -> None:
            pq.write_table(table, path, compression="zstd")

    elif suffix == ".csv":

        def write(path: Path) -> None:
            write_csv_table(table, path)

    else:
        raise InputError(
            f"cannot write pool to {out}: unknown file type {out.suffix!r} "
            "(use .parquet, .pq or .csv)"
        )
    try:
        with atomic_path(out, private=True) as tmp:
            write(tmp)
    except OSError as exc:
        raise InputError(f"cannot write pool to {out}: {exc.strerror or exc}") from exc


def check_pool_target(out: Path, *, force: bool = False) -> None:
    """Refuse an output the pool cannot be written to, before any work (exit 2)."""
    check_file(out, inputs=(), force=force)
    if Path(out).suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise InputError(f"cannot write pool to {out}: unknown file type {Path(out).suffix!r} "
                         "(use .parquet, .pq or .csv)")


def write_synthetic_pool(out: Path, rows: int = 1_300_000, seed: int = 2020, *,
                         extended: bool = False, force: bool = False) -> pa.Table:
    """`sortition synth`: a synthetic pool (`synthesize_pool`) written to `out` (`write_pool`),
    the target checked before any work; returns the table written."""
    check_pool_target(out, force=force)
    table = synthesize_pool(rows, seed, extended=extended)
    write_pool(table, out, force=force)
    return table
