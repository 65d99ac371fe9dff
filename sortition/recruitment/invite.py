"""The call list (stage 1): which people of the contact base to phone, and in what order.

A citizens' assembly is drawn in two stages. First a few thousand people of a large contact
base are called and asked whether they would take part; those who accept form the respondent
pool (`sortition.recruitment.respondents`), from which the lottery later draws the panel. This
module draws the call list.

* **Uniform** (no `--by`): every eligible person has the same chance of being called.
* **Stratified** (`--by FEATURE`…): the base is cut into *cells* (combinations of the features'
  values). The base's cell counts are fitted to the population's one-way margins by iterative
  proportional fitting (IPF: it keeps the base's associations between features and changes only
  what the margins require), and the N calls are apportioned to the cells in proportion to the
  fitted counts.
* **Response rates** (`--response-rates`, CSV `feature,value,rate`): people do not all answer
  alike (the young answer less). The model is *independent multiplicative response rates*: a
  person whose values are v1, v2… answers with probability r(v1) × r(v2) × …. A cell's weight is
  its target divided by that product, so that the *expected respondents* match the margins
  (without `--by`, the base's own composition).

Apportionment is the largest-remainder method, capped at each cell's eligible size with the
excess redistributed to the other cells; it runs on integer weights (the fitted weights scaled
to 2^40 and rounded), so it is exact. Within the cells, people are chosen with the `calls`
stream of the draw specification and the call order comes from the `calls/order` stream (see
docs/draw-spec.md, "The call list"); the streams' hash is the base's pool fingerprint, which
binds the call list to the base. The call list is private (it has the contacts); its audit
(`<stem>.audit.json`) is public and holds only ids' hash, counts, feature values and hashes.

The base's fingerprint covers the id and the cell features: those named by `--by` and by the
response-rates file (with neither, the id only). With `--household-column`, it also covers the
opaque household numbers (`sortition.inputs.pool`: 1, 2, … by smallest member id, never the column's
values), and the audit records the column so that a check loads the base the same way. The call
list itself is not restricted by households: two people of one household may both be called (and
both answer yes); the household pre-draw before the lottery (`sortition.inputs.households`) keeps at
most one of them per panel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core import drawspec as drawing
from ..core.audits import (
    CALLS_SCHEMA,
    audit_bytes,
    audit_path_for,
    ids_sha256,
    read_audit,
    relative,
    sha256_file,
    versions,
)
from ..core.bundleio import plain_folder, regular_file
from ..core.errors import InfeasibleError, InputError
from ..core.fileio import restore_array
from ..core.limits import MAX_CALLS, count_problem
from ..core.outputs import check_pair, write_pair
from ..core.resources import occitanie_data_dir
from ..core.rounding import largest_remainder
from ..core.tables import capped_problems, read_ids, read_rate_table, write_table
from ..core.textopts import check_text, seed_option
from ..core.xlsx import read_sheet
from ..inputs.fingerprint import PoolFingerprint, pool_fingerprint, stratum_differences
from ..inputs.margins import AGE_BANDS, AREAS, DIPLOMA_LEVELS, GENDERS, load_occitanie_margins
from ..inputs.pool import Pool, load_pool, read_rows
from ..inputs.strata import build_strata

SCHEMA = CALLS_SCHEMA  # "sortition-calls"
SCHEMA_VERSION = 2  # 2: no per-stratum hashes (they linked ids to features)
MARGIN_FEATURES: tuple[str, ...] = ("age_band", "area", "department", "diploma", "gender")
CONTACT_COLUMNS: tuple[str, ...] = ("name", "phone", "email", "address")
MARGIN_FILES: tuple[str, ...] = ("age.csv", "departments.csv", "diploma.csv", "gender.csv",
                                 "urban_rural.csv", "urban_rural_filled.csv")
WEIGHT_SCALE = 1 << 40
IPF_TOLERANCE = 1e-12
IPF_MAX_ITERATIONS = 10_000
MAX_SHOWN = 5


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


# Inputs ----------------------------------------------------------------------------------------


def population_margins(features: Sequence[str], margins_dir: Path | None = None
                       ) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Population shares per value of each feature, and the SHA-256 of each margins file.

    Read like the built-in census data (`sortition.inputs.margins`): adults 18+ by gender, age
    band and department; the published regional rural share for `area`; RP2011 diploma shares.
    """
    unknown = [f for f in features if f not in MARGIN_FEATURES]
    if unknown:
        raise InputError(f"--by {unknown[0]}: the census margins do not cover this feature "
                         f"(they cover {', '.join(MARGIN_FEATURES)})")
    folder = Path(margins_dir) if margins_dir is not None else occitanie_data_dir()
    if not folder.is_dir():
        raise InputError(f"--margins {folder}: folder not found")
    hashes = {name: sha256_file(folder / name) for name in MARGIN_FILES
              if (folder / name).is_file()}
    if not features:
        return {}, hashes
    m = load_occitanie_margins(folder)
    counts: dict[str, dict[str, float]] = {
        "gender": {g: float(m.gender_adults[g]) for g in GENDERS},
        "age_band": {a: float(m.age_adults[a]) for a in AGE_BANDS},
        "department": {d: float(n) for d, n in m.departments_adults.items()},
        "area": {AREAS[0]: 1.0 - m.region_rural_share, AREAS[1]: m.region_rural_share},
        "diploma": {d: float(m.diploma_shares[d]) for d in DIPLOMA_LEVELS},
    }
    out: dict[str, dict[str, float]] = {}
    for f in features:
        total = math.fsum(counts[f].values())
        out[f] = {v: c / total for v, c in counts[f].items()}
    return out, hashes


@dataclass
class ResponseRates:
    rates: dict[str, dict[str, float]]  # feature -> value -> rate, both sorted by UTF-8 bytes
    sha256: str
    path: Path

    @property
    def features(self) -> list[str]:
        return list(self.rates)


def read_response_rates(path: Path, encoding: str = "utf-8") -> ResponseRates:
    """`feature,value,rate` with 0 < rate <= 1, one row per value (`tables.read_rate_table`);
    no contact column (its values would reach the public audit)."""
    path = Path(path)

    def contact(feature: str, _value: str) -> str | None:
        return (f"column feature: {feature!r} is a contact column; its values would reach the "
                "public audit" if feature in CONTACT_COLUMNS else None)

    found, sha = read_rate_table(path, "response-rates file", encoding, zero=False,
                                 check=contact)
    rates: dict[str, dict[str, float]] = {}
    for (feature, value), rate in found.items():
        rates.setdefault(feature, {})[value] = rate
    ordered = {f: {v: rates[f][v] for v in sorted(rates[f], key=_utf8)}
               for f in sorted(rates, key=_utf8)}
    return ResponseRates(ordered, sha, path)


@dataclass
class Exclusion:
    ids: list[str]  # distinct, sorted by UTF-8 bytes
    sha256: str
    path: Path
    lines: dict[str, int]  # first line (or row) of each id, for messages


def read_exclude(path: Path, encoding: str = "utf-8") -> Exclusion:
    """One id per line, or a CSV with an `id` column (`tables.read_ids`)."""
    found = read_ids(path, "exclusion list", encoding)
    return Exclusion(sorted(found.ids, key=_utf8), found.sha256, Path(path), found.lines)


# The plan: cells, fitting, apportionment, draw -------------------------------------------------


def fit_margins(counts: np.ndarray, cell_codes: Sequence[np.ndarray],
                targets: Sequence[np.ndarray]) -> tuple[np.ndarray, int, float]:
    """IPF: scale the cell counts until every one-way margin matches its target shares.

    Returns the fitted cell shares (summing to 1), the iterations used and the largest margin
    error left. Cells with a zero count stay zero.
    """
    x = counts.astype(np.float64) / float(counts.sum())
    error = 0.0
    if not targets:
        return x, 0, 0.0
    for iteration in range(1, IPF_MAX_ITERATIONS + 1):
        for codes, target in zip(cell_codes, targets, strict=True):
            margin = np.bincount(codes, weights=x, minlength=len(target))
            factor = np.divide(target, margin, out=np.zeros_like(target), where=margin > 0)
            x = x * factor[codes]
        error = max(float(np.abs(np.bincount(c, weights=x, minlength=len(t)) - t).max())
                    for c, t in zip(cell_codes, targets, strict=True))
        if error < IPF_TOLERANCE:
            return x, iteration, error
    return x, IPF_MAX_ITERATIONS, error


def integer_weights(weights: np.ndarray) -> list[int]:
    """Weights scaled so the largest is 2^40, rounded: the apportionment is then exact."""
    top = float(weights.max()) if len(weights) else 0.0
    if top <= 0:
        return [0] * len(weights)
    return [int(round(w)) for w in (weights / top * WEIGHT_SCALE).tolist()]


def apportion(weights: Sequence[int], caps: Sequence[int], n: int) -> tuple[list[int],
                                                                             list[float]]:
    """n seats in proportion to integer weights, largest remainder, capped at `caps`.

    A cell whose share exceeds its cap gets its cap, and the rest is shared again among the
    others, until no share exceeds a cap. Ties between remainders go to the earlier cell.
    Returns the integer seats and the (unrounded) shares.
    """
    m = len(weights)
    capped = [False] * m
    while True:
        free = [i for i in range(m) if not capped[i] and weights[i] > 0]
        rest = n - sum(caps[i] for i in range(m) if capped[i])
        total = sum(weights[i] for i in free)
        over = [i for i in free if rest * weights[i] > caps[i] * total]
        if not over:
            break
        for i in over:
            capped[i] = True
    if rest > 0 and total == 0:
        room = sum(caps[i] for i in range(m) if weights[i] > 0)
        raise InfeasibleError(f"cannot place {n:,} calls: only {room:,} eligible people are in "
                              "cells with a positive target")
    seats = [caps[i] if capped[i] else 0 for i in range(m)]
    shares = [float(caps[i]) if capped[i] else 0.0 for i in range(m)]
    if free:
        for i, x in zip(free, largest_remainder([rest * weights[i] for i in free], total, rest),
                        strict=True):
            seats[i] = x
            shares[i] = rest * weights[i] / total
    return seats, shares


def call_order(drawn_ids: Sequence[str], seed: bytes, base_hash: str) -> list[str]:
    """The drawn ids in call order: Fisher–Yates on the `calls/order` stream over the ids
    sorted by UTF-8 bytes."""
    a = sorted(drawn_ids, key=_utf8)
    drawing.shuffle_prefix(a, len(a), drawing.Stream(seed, base_hash, drawing.CALLS_ORDER))
    return a


@dataclass
class Cell:
    values: tuple[str, ...]  # in the plan's feature order (sorted by UTF-8 bytes)
    eligible: int
    weight: int
    share: float  # unrounded calls
    calls: int


@dataclass
class CallPlan:
    """Everything decided about the call list, from ids and features only (no contacts)."""

    features: list[str]  # cell features, sorted by UTF-8 bytes
    by: list[str]
    size: int
    seed: str
    fingerprint: PoolFingerprint
    base_rows: int
    excluded: int
    eligible: int
    cells: list[Cell]
    rows: np.ndarray  # base row indices (0-based), in call order
    ids: list[str]  # in call order
    shares: dict[str, dict[str, float]]  # --by feature -> value -> population share used
    rates: ResponseRates | None
    exclusion: Exclusion | None
    unknown_excluded: list[str]
    ipf: dict
    warnings: list[str] = field(default_factory=list)


def _check_values(pool: Pool, shares: dict[str, dict[str, float]],
                  rates: ResponseRates | None, eligible: np.ndarray) -> list[str]:
    """Every base value needs a margin (whole base) and a response rate (eligible people)."""
    problems: list[str] = []
    for f, known in shares.items():
        counts = np.bincount(pool.codes[f], minlength=len(pool.values[f]))
        for i, v in enumerate(pool.values[f]):
            if v not in known:
                row = int(np.argmax(pool.codes[f] == i)) + 1
                problems.append(f"{pool.path}, column {f}: value {v!r} ({int(counts[i]):,} rows, "
                                f"first row {row}) is not in the margins (values: "
                                f"{', '.join(known)}; matching is exact and case-sensitive)")
    if rates is not None:
        for f, known in rates.rates.items():
            counts = np.bincount(pool.codes[f][eligible], minlength=len(pool.values[f]))
            for i, v in enumerate(pool.values[f]):
                if counts[i] and v not in known:
                    problems.append(f"{rates.path}: no rate for {f}={v!r} ({int(counts[i]):,} "
                                    "eligible people in the base); every value of a feature in "
                                    "the file needs a rate")
    return problems


def plan_calls(pool: Pool, *, size: int, seed: str, by: Sequence[str],
               shares: dict[str, dict[str, float]], rates: ResponseRates | None = None,
               exclusion: Exclusion | None = None,
               progress: Callable[[str], None] | None = None) -> CallPlan:
    """Fit, apportion and draw the call list from the base's ids and features."""
    report = progress or (lambda _m: None)
    seed_b = drawing.seed_bytes(seed)
    features = list(pool.features)
    n_base = len(pool)
    eligible = np.ones(n_base, dtype=bool)
    unknown: list[str] = []
    if exclusion is not None and exclusion.ids:
        listed = pa.array(exclusion.ids, type=pa.string())
        eligible = ~pc.is_in(pool.ids, value_set=listed).to_numpy(zero_copy_only=False)
        present = pc.is_in(listed, value_set=pool.ids).to_numpy(zero_copy_only=False)
        unknown = [i for i, p in zip(exclusion.ids, present.tolist(), strict=True) if not p]
    n_eligible = int(eligible.sum())
    problems = _check_values(pool, shares, rates, eligible)
    if problems:
        raise InputError(capped_problems(problems))
    if n_eligible < size:
        excluded = f", {n_base - n_eligible:,} excluded" if n_base != n_eligible else ""
        raise InfeasibleError(f"--size {size:,}: only {n_eligible:,} eligible people in the base "
                              f"({n_base:,} rows{excluded}); ask for at most {n_eligible:,} calls")
    report("fingerprinting the base…")
    strata = build_strata(pool, features)
    fingerprint = pool_fingerprint(pool, strata)
    report("fitting the cells to the margins…")
    cell_of_row = strata.rows()
    counts_all = np.bincount(cell_of_row[eligible], minlength=len(strata)).astype(np.int64)
    live = np.flatnonzero(counts_all > 0)  # cells with eligible people, in sorted order
    counts = counts_all[live]
    keys = [strata.keys[c] for c in live.tolist()]
    cell_codes: dict[str, np.ndarray] = {}
    for j, f in enumerate(features):
        index = {v: i for i, v in enumerate(pool.values[f])}
        cell_codes[f] = np.array([index[k[j]] for k in keys], dtype=np.int64)
    warnings: list[str] = []
    used: dict[str, dict[str, float]] = {}
    targets: list[np.ndarray] = []
    for f in sorted(shares, key=_utf8):
        present = np.bincount(cell_codes[f], weights=counts,
                              minlength=len(pool.values[f])) > 0
        for v, s in shares[f].items():
            if v not in pool.values[f] or not present[pool.values[f].index(v)]:
                warnings.append(f"{f} {v!r}: {s:.1%} of the population, but nobody eligible in "
                                "the base has it; the other values' shares are scaled up")
        kept = {v: shares[f][v] for v, p in zip(pool.values[f], present.tolist(), strict=True)
                if p}
        total = math.fsum(kept.values())
        used[f] = {v: s / total for v, s in kept.items()}
        targets.append(np.array([used[f].get(v, 0.0) for v in pool.values[f]]))
    fitted, iterations, error = fit_margins(counts, [cell_codes[f] for f in used], targets)
    if error > 1e-9:
        warnings.append(f"the margins could not be matched exactly from the base's cells "
                        f"(largest share error {error:.2g} after {iterations} iterations)")
    if rates is not None:
        product = np.ones(len(keys))
        for f, values in rates.rates.items():
            table = np.array([values.get(v, 1.0) for v in pool.values[f]])
            product = product * table[cell_codes[f]]
        raw = fitted / product
    else:
        raw = fitted
    weights = ([int(c) for c in counts.tolist()] if not used and rates is None
               else integer_weights(raw))
    seats, real = apportion(weights, [int(c) for c in counts.tolist()], size)
    capped = sum(1 for r, c in zip(real, counts.tolist(), strict=True) if r >= c)
    if used and capped:
        warnings.append(f"{capped} cell(s) have fewer eligible people than their target: all "
                        "of them are called and the rest is shared among the other cells")

    report(f"drawing {size:,} people in {len(keys):,} cells…")
    order = pc.array_sort_indices(pool.ids).to_numpy()  # rows by id, UTF-8 byte order
    order = order[eligible[order]]
    grouped = order[np.argsort(cell_of_row[order], kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    stream = drawing.Stream(seed_b, fingerprint.sha256, drawing.CALLS)
    chosen: list[np.ndarray] = []
    for c, k in enumerate(seats):
        if k == 0:
            continue
        a = grouped[bounds[c]:bounds[c + 1]].copy()
        drawing.shuffle_prefix(a, k, stream)  # one stream for every cell (section 14)
        chosen.append(a[:k])
    rows = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    drawn_ids = pool.ids.take(pa.array(rows)).to_pylist()
    report("ordering the calls…")
    ordered = call_order(drawn_ids, seed_b, fingerprint.sha256)
    row_of = dict(zip(drawn_ids, rows.tolist(), strict=True))
    rows_in_order = np.array([row_of[i] for i in ordered], dtype=np.int64)
    cells = [Cell(tuple(k), int(n), int(w), float(s), int(x))
             for k, n, w, s, x in zip(keys, counts.tolist(), weights, real, seats, strict=True)]
    return CallPlan(features, sorted(by, key=_utf8), size, seed, fingerprint, n_base,
                    n_base - n_eligible, n_eligible, cells, rows_in_order, ordered, used, rates,
                    exclusion, unknown, {"iterations": iterations,
                                         "max_share_error": round(error, 12)}, warnings)


# The audit -------------------------------------------------------------------------------------


def _per_value(plan: CallPlan) -> dict[str, list[dict]]:
    """Per feature and value: eligible people, population share, expected and drawn calls."""
    out: dict[str, list[dict]] = {}
    rates = plan.rates.rates if plan.rates is not None else {}
    expected_resp = []
    for cell in plan.cells:
        p = 1.0
        for f, v in zip(plan.features, cell.values, strict=True):
            p *= rates.get(f, {}).get(v, 1.0)
        expected_resp.append(cell.calls * p)
    total_resp = math.fsum(expected_resp)
    for j, f in enumerate(plan.features):
        values = sorted({c.values[j] for c in plan.cells}, key=_utf8)
        rows = []
        for v in values:
            members = [i for i, c in enumerate(plan.cells) if c.values[j] == v]
            row = {"value": v,
                   "eligible": sum(plan.cells[i].eligible for i in members),
                   "population_share": (round(plan.shares[f][v], 6) if f in plan.shares
                                        else None),
                   "target": (round(plan.size * plan.shares[f][v], 3) if f in plan.shares
                              else None),
                   "expected": round(math.fsum(plan.cells[i].share for i in members), 3),
                   "drawn": sum(plan.cells[i].calls for i in members)}
            if plan.rates is not None:
                resp = math.fsum(expected_resp[i] for i in members)
                row["response_rate"] = rates.get(f, {}).get(v)
                row["expected_respondents"] = round(resp, 3)
                row["expected_respondents_share"] = (round(resp / total_resp, 6)
                                                     if total_resp else None)
            rows.append(row)
        out[f] = rows
    return out


def calls_audit_document(plan: CallPlan, *, audit_dir: Path, calls_file: Path,
                         margins_dir: Path | None, margin_hashes: dict[str, str],
                         encoding: str) -> dict:
    """The public audit of a call list, in a fixed order; the `run` block is added apart."""
    exclusion = None
    if plan.exclusion is not None:
        exclusion = {"file": relative(plan.exclusion.path, audit_dir),
                     "sha256": plan.exclusion.sha256, "ids": len(plan.exclusion.ids),
                     "not_in_base": len(plan.unknown_excluded)}
    rates = None
    if plan.rates is not None:
        rates = {"file": relative(plan.rates.path, audit_dir), "sha256": plan.rates.sha256,
                 "model": "independent multiplicative response rates",
                 "rates": [{"feature": f, "value": v, "rate": r}
                           for f, values in plan.rates.rates.items() for v, r in values.items()]}
    margins = None
    if plan.by:
        margins = {"source": ("built-in data/occitanie" if margins_dir is None
                              else relative(margins_dir, audit_dir)),
                   "files": margin_hashes,
                   "shares": {f: {v: round(s, 9) for v, s in plan.shares[f].items()}
                              for f in plan.shares}}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "draw_spec": drawing.SPEC,
        "inputs": {
            "base": {**plan.fingerprint.as_json(),
                     "id_column": None, "household_column": None},  # filled by the caller
            "exclude": exclusion,
            "response_rates": rates,
            "margins": margins,
        },
        "parameters": {"size": plan.size, "by": plan.by, "features": plan.features,
                       "mode": "stratified" if plan.by else "uniform",
                       "encoding": encoding},
        "seed": plan.seed,
        "streams": {"hash": plan.fingerprint.sha256, "hash_is": "the base's pool fingerprint",
                    "choose": drawing.CALLS, "order": drawing.CALLS_ORDER},
        "sizes": {"base": plan.base_rows, "excluded": plan.excluded, "eligible": plan.eligible,
                  "drawn": len(plan.ids)},
        "fit": plan.ipf,
        "cells": [{"values": list(c.values), "eligible": c.eligible, "weight": c.weight,
                   "expected": round(c.share, 6), "calls": c.calls} for c in plan.cells],
        "per_value": _per_value(plan),
        "drawn_ids": {"count": len(plan.ids), "sha256": ids_sha256(plan.ids),
                      "encoding": "ids sorted by UTF-8 bytes, one per line, each ending in LF"},
        "calls_file": relative(calls_file, audit_dir),
    }


# The command -----------------------------------------------------------------------------------


@dataclass
class InviteResult:
    """What `run_invite` wrote: the call list and its public audit, with the plan drawn."""

    plan: CallPlan
    out: Path
    audit_path: Path
    audit: dict
    notes: list[str]
    warnings: list[str]


def _check_options(base: Path, size: int, seed: str, out: Path, extra: Sequence[Path | None],
                   force: bool = False, by: Sequence[str] = ()) -> None:
    check_pair(out, audit_path_for(out), inputs=[base, audit_path_for(base), *extra],
               force=force)
    problems: list[str] = []
    try:
        seed_option("--seed", seed, "the draw")
        for feature in by:
            check_text("--by", feature)
    except InputError as e:
        problems.extend(e.problems)
    size_problem = count_problem("--size", size, maximum=MAX_CALLS)
    if size_problem:
        problems.append(size_problem)
    if out.suffix.lower() not in (".parquet", ".csv", ".xlsx"):
        problems.append(f"--out {out}: must end in .parquet, .csv or .xlsx")
    if problems:
        raise InputError(problems)


def _output_table(pool: Pool, plan: CallPlan) -> pa.Table:
    """call_order, id, then every other column of the base, in call order."""
    table = read_rows(pool, plan.rows)
    names = table.column_names
    if "call_order" in names:
        raise InputError(f"{pool.path}: already has a 'call_order' column; rename it")
    if pool.id_column is not None and pool.id_column != "id" and "id" in names:
        raise InputError(f"{pool.path}: has a column 'id' besides the id column "
                         f"{pool.id_column!r}; rename one of them")
    rest = [c for c in names if c not in (pool.id_column, "id")]
    columns = {"call_order": pa.array(np.arange(1, len(plan.ids) + 1, dtype=np.int64)),
               "id": pa.array(plan.ids, type=pa.string())}
    for c in rest:
        columns[c] = table.column(c)
    return pa.table(columns)


def run_invite(base: Path, *, size: int, seed: str, out: Path, by: Sequence[str] = (),
               margins_dir: Path | None = None, response_rates: Path | None = None,
               exclude: Path | None = None, id_column: str | None = None,
               encoding: str = "utf-8", household_column: str | None = None,
               progress: Callable[[str], None] | None = None,
               force: bool = False) -> InviteResult:
    """Draw the call list and write it (private) and its audit (public), atomically.

    With `household_column`, the base's fingerprint (hence the draw's streams) includes the
    opaque household numbers and the audit records the column. The call list is not restricted
    by households (two people of one household may both be called): the household pre-draw
    before the lottery keeps at most one person per household on a panel.
    """
    report = progress or (lambda _m: None)
    base, out = Path(base), Path(out)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    _check_options(base, size, seed, out, (response_rates, exclude, margins_dir), force, by)
    by_list = sorted(dict.fromkeys(by), key=_utf8)
    shares, margin_hashes = population_margins(by_list, margins_dir)
    rates = read_response_rates(response_rates, encoding) if response_rates is not None \
        else None
    exclusion = read_exclude(exclude, encoding) if exclude is not None else None
    features = sorted(dict.fromkeys([*by_list, *(rates.features if rates else [])]), key=_utf8)
    report("loading the base…")
    pool = load_pool(base, features, id_column=id_column, encoding=encoding,
                     household_column=household_column)
    timings["load"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = plan_calls(pool, size=size, seed=seed, by=by_list, shares=shares, rates=rates,
                      exclusion=exclusion, progress=report)
    timings["draw"] = time.perf_counter() - t
    t = time.perf_counter()
    warnings = list(plan.warnings)
    if plan.unknown_excluded and exclusion is not None:
        shown = ", ".join(f"{i!r} (line {exclusion.lines[i]})"
                          for i in plan.unknown_excluded[:MAX_SHOWN])
        more = (f" and {len(plan.unknown_excluded) - MAX_SHOWN} more"
                if len(plan.unknown_excluded) > MAX_SHOWN else "")
        warnings.insert(0, f"{exclusion.path}: {len(plan.unknown_excluded):,} id(s) not in the "
                           f"base, ignored: {shown}{more}")
    report("reading the contacts of the people drawn…")
    table = _output_table(pool, plan)
    audit_path = audit_path_for(out)
    audit = calls_audit_document(plan, audit_dir=audit_path.parent, calls_file=out,
                                 margins_dir=margins_dir, margin_hashes=margin_hashes,
                                 encoding=encoding)
    audit["inputs"]["base"]["id_column"] = pool.id_column
    audit["inputs"]["base"]["household_column"] = pool.household_column
    report("writing the call list…")

    def audit_data(_calls: Path) -> bytes:
        timings["write"] = time.perf_counter() - t
        audit["run"] = {"versions": versions()}  # timings: on the operator's screen only
        return audit_bytes(audit)

    try:
        _check_options(base, size, seed, out, (response_rates, exclude, margins_dir), force,
                       by_list)
        write_pair(out, lambda tmp: write_table(table, tmp, like=out), audit_path, audit_data,
                   private=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot write ({e.strerror or e})") from None
    return InviteResult(plan, out, audit_path, audit, list(pool.notes), warnings)


# Checking a call list's audit ------------------------------------------------------------------
# Files named by an audit are read by plain names beside it only (sortition/core/bundleio.py).


def _read_call_list(path: Path) -> tuple[list[str], list[int]]:
    """Ids and call_order of a call list (only those two columns are read)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if path.suffix.lower() == ".csv":
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            include_columns=["id", "call_order"],
            column_types={"id": pa.string(), "call_order": pa.int64()}))
    elif path.suffix.lower() == ".xlsx":
        sheet = read_sheet(path)
        table = sheet.table(["id", "call_order"])
    else:
        table = pq.read_table(path, columns=["id", "call_order"])
    if path.suffix.lower() in (".csv", ".xlsx"):  # a call list is always written by this tool

        table = table.set_column(table.column_names.index("id"), "id",
                                 restore_array(table.column("id")))
    ids = pc.utf8_trim_whitespace(table.column("id").cast(pa.string())).to_pylist()
    return ids, table.column("call_order").cast(pa.int64()).to_pylist()


def check_calls_audit(audit_path: Path, base_path: Path | None = None, *,
                      exclude: Path | None = None, response_rates: Path | None = None,
                      margins_dir: Path | None = None, encoding: str | None = None
                      ) -> list[str]:
    """Differences between a call list's audit and the files it describes (empty: all agree).

    Always: the call list beside the audit (when present) has the recorded ids and the call
    order the seed gives. With the base: its fingerprint, and the whole draw recomputed from
    it (the exclusion list, response rates and margins folder are looked for where the audit
    says, unless given), loading the base with the recorded id and household columns.
    """
    audit_path = Path(audit_path)
    audit = read_audit(audit_path, SCHEMA)
    try:
        return _check_calls(audit_path, audit, base_path, exclude, response_rates, margins_dir,
                            encoding)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        return [f"{audit_path}: malformed audit ({type(e).__name__}: {e})"]


def _check_calls(audit_path: Path, audit: dict, base_path: Path | None, exclude: Path | None,
                 response_rates: Path | None, margins_dir: Path | None, encoding: str | None
                 ) -> list[str]:
    here = audit_path.parent
    out: list[str] = []
    try:
        seed = str(audit["seed"])
        base_hash = audit["streams"]["hash"]
        drawn = audit["drawn_ids"]
        params = audit["parameters"]
        recorded_base = audit["inputs"]["base"]
    except (KeyError, TypeError) as e:
        return [f"{audit_path}: field {e} missing"]
    calls_file = (regular_file(here, audit["calls_file"], where=f"{audit_path}, calls_file")
                  if audit.get("calls_file") else None)
    if calls_file is not None:
        try:
            ids, orders = _read_call_list(calls_file)
        except (pa.ArrowInvalid, OSError, KeyError, InputError) as e:
            out.append(f"{calls_file}: unreadable call list ({str(e).splitlines()[0]})")
        else:
            if ids_sha256(ids) != drawn.get("sha256") or len(ids) != drawn.get("count"):
                out.append(f"{calls_file}: its ids (SHA-256 {ids_sha256(ids)}, {len(ids):,}) "
                           f"differ from the audit's drawn ids ({drawn.get('sha256')}, "
                           f"{drawn.get('count')})")
            elif sorted(o if isinstance(o, int) else -1 for o in orders) != \
                    list(range(1, len(ids) + 1)):
                out.append(f"{calls_file}: call_order is not 1 … {len(ids)}")
            else:
                try:
                    expected = call_order(ids, drawing.seed_bytes(seed), base_hash)
                except ValueError as e:
                    out.append(f"{audit_path}: seed or hash unusable ({e})")
                else:
                    found = [i for _, i in sorted(zip(orders, ids, strict=True))]
                    if found != expected:
                        out.append(f"{calls_file}: the call order is not the one the seed gives "
                                   f"(stream {drawing.CALLS_ORDER})")
    if base_path is None:
        return out

    def beside(given: Path | None, block: dict | None, what: str) -> Path | None:
        if block is None:
            return None
        path = (Path(given) if given is not None
                else regular_file(here, block.get("file"), where=f"{audit_path}, {what}"))
        if path is None or not path.is_file():
            out.append(f"{what}: {path} not found (needed to recompute the draw)")
            return None
        if sha256_file(path) != block.get("sha256"):
            out.append(f"{what} {path}: SHA-256 {sha256_file(path)} differs from the "
                       f"recorded {block.get('sha256')}")
        return path

    inputs = audit["inputs"]
    exclude_path = beside(exclude, inputs.get("exclude"), "exclusion list")
    rates_path = beside(response_rates, inputs.get("response_rates"), "response rates")
    margins = inputs.get("margins")
    folder = None
    if margins is not None and margins_dir is None and \
            margins.get("source") != "built-in data/occitanie":
        folder = plain_folder(here, margins.get("source"),
                              where=f"{audit_path}, inputs.margins.source")
    elif margins_dir is not None:
        folder = Path(margins_dir)
    if (inputs.get("exclude") is not None and exclude_path is None) or \
            (inputs.get("response_rates") is not None and rates_path is None):
        return out
    enc = encoding or params.get("encoding", "utf-8")
    try:
        by = list(params["by"])
        shares, hashes = population_margins(by, folder)
        recorded_files = margins.get("files", {}) if margins is not None else {}
        changed = [n for n in MARGIN_FILES if hashes.get(n) != recorded_files.get(n)]
        if margins is not None and changed:
            out.append(f"margins: {', '.join(changed)} differ(s) from the recorded SHA-256")
        rates = read_response_rates(rates_path, enc) if rates_path is not None else None
        exclusion = read_exclude(exclude_path, enc) if exclude_path is not None else None
        household = recorded_base.get("household_column")
        if household is not None and (not isinstance(household, str) or not household):
            raise InputError(f"{audit_path}: inputs.base.household_column {household!r} is "
                             "not a column name")
        pool = load_pool(base_path, list(params["features"]),
                         id_column=recorded_base.get("id_column") or None, encoding=enc,
                         household_column=household)
        plan = plan_calls(pool, size=int(params["size"]), seed=seed, by=by, shares=shares,
                          rates=rates, exclusion=exclusion)
    except (InputError, InfeasibleError) as e:
        return out + [f"cannot recompute the call list: {p}" for p in e.problems]
    if plan.fingerprint.sha256 != recorded_base.get("sha256"):
        out.append(f"base {base_path}: fingerprint {plan.fingerprint.sha256} differs from the "
                   f"recorded {recorded_base.get('sha256')}")
        out.extend(f"base: {line}" for line in
                   stratum_differences(recorded_base.get("strata", []), plan.fingerprint))
    drawn_sha = ids_sha256(plan.ids)
    if drawn_sha != drawn.get("sha256"):
        out.append(f"drawn ids: recomputed SHA-256 {drawn_sha} differs from the recorded "
                   f"{drawn.get('sha256')}")
    sizes = {"base": plan.base_rows, "excluded": plan.excluded, "eligible": plan.eligible,
             "drawn": len(plan.ids)}
    for k, v in sizes.items():
        if audit.get("sizes", {}).get(k) != v:
            out.append(f"sizes.{k}: recomputed {v}, recorded {audit.get('sizes', {}).get(k)}")
    recorded_cells = [(tuple(c["values"]), c["calls"]) for c in audit.get("cells", [])]
    if recorded_cells != [(c.values, c.calls) for c in plan.cells]:
        out.append("cells: the recomputed calls per cell differ from the recorded ones")
    return out
