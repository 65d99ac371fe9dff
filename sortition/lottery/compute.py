"""The lottery: a probability distribution over quota-satisfying panels.

A panel is stored as seats per stratum; people within a stratum are interchangeable, so who
sits is decided at draw time. Panels are kept in a deterministic order (lexicographic on their
seat vectors), and selection probabilities are those implied by the lottery itself
(Σ over panels of weight × seats / people), never the solver's target values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError, SolverTimeout
from ..core.fileio import csv_field, write_csv_table
from ..core.limits import MAX_LEGACY_RUNS, check_count, check_seconds
from ..core.outputs import atomic_path, check_file
from ..inputs.quotas import Quotas
from ..inputs.strata import Strata
from . import leximin as algorithms
from .check import apply_relaxation, find_relaxation, relaxation_json
from .legacy import legacy_probabilities
from .objectives import check_gamma, diversimax, goldilocks
from .panels import QuotaSystem, quota_system

ALGORITHMS = ("leximin", "maximin", "nash", "goldilocks", "diversimax", "legacy")
LOTTERY_ALGORITHMS = ALGORITHMS[:-1]  # every algorithm but legacy computes a lottery
DEFAULT_GAMMA = 1.0  # Goldilocks' γ, as in Baharav & Flanigan's experiments


@dataclass
class Lottery:
    """Panels as seat vectors over strata, with their probabilities."""

    features: list[str]
    keys: list[tuple[str, ...]]
    counts: np.ndarray  # (S,) people per stratum
    size: int
    algorithm: str
    panels: np.ndarray  # (P, S) int64, sorted lexicographically
    weights: np.ndarray  # (P,) float, sums to 1
    target: np.ndarray  # (S,) per-person probability the method certified as the optimum
    gap: float  # certified distance to optimality, in probability
    method: str = ""
    stages: int = 0
    rounds: int = 0
    details: dict = field(default_factory=dict)

    def stratum_probabilities(self) -> np.ndarray:
        """Each person's selection probability, per stratum, implied by the lottery."""
        seats = self.weights @ self.panels.astype(float)
        return np.divide(seats, self.counts, out=np.zeros(len(self.counts)),
                         where=self.counts > 0)

    def expected_seats(self) -> np.ndarray:
        return self.weights @ self.panels.astype(float)


@dataclass
class Probabilities:
    """The output of `probabilities`: per-stratum probabilities and how they were obtained."""

    algorithm: str
    strata: Strata
    stratum_probabilities: np.ndarray
    lottery: Lottery | None
    seconds: float
    gap: float | None = None
    note: str = ""
    details: dict = field(default_factory=dict)

    def person_probabilities(self) -> np.ndarray:
        if self.strata.row_stratum is None:
            raise ValueError("strata were built from counts: no rows to map")
        return self.stratum_probabilities[self.strata.row_stratum]

    @property
    def min_probability(self) -> float:
        return float(self.stratum_probabilities.min())

    @property
    def max_probability(self) -> float:
        return float(self.stratum_probabilities.max())


def _sorted(panels: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort(panels.T[::-1]) if len(panels) else np.arange(0)
    return panels[order], weights[order]


def verify_panels(system: QuotaSystem, panels: np.ndarray) -> list[int]:
    """Indices of panels that break a quota, the panel size or a stratum's count.

    Vectorised (one product with the membership matrix): checking 700 panels one by one over
    20 000 strata took most of a second, spent after a time limit had already struck.
    """
    x = np.asarray(panels)
    if x.ndim != 2 or x.shape[1] != system.n_strata:
        return [j for j in range(len(x)) if not system.satisfied(x[j])]
    x = x.astype(np.int64)
    sums = x @ system.membership().T
    ok = (((x >= 0) & (x <= system.counts)).all(axis=1) & (x.sum(axis=1) == system.size)
          & ((sums >= system.lo) & (sums <= system.hi)).all(axis=1))
    return np.flatnonzero(~ok).tolist()


def compute_lottery(strata: Strata, quotas: Quotas, size: int, algorithm: str = "leximin", *,
                    time_limit: float | None = None, accept_gap: float | None = None,
                    gamma: float | None = None,
                    log: Callable[[str], None] | None = None) -> Lottery:
    """A fair lottery over panels of `size` meeting `quotas`, by the named algorithm.

    `gamma`: Goldilocks' γ (default 1); refused with any other algorithm.

    Stopped by `time_limit`, it raises SolverTimeout carrying the best lottery found (as
    `.lottery`, checked like any other, with its certified gap), unless that gap is at most
    `accept_gap`: then that lottery is returned, with details["status"] = "time_limit".
    """
    check_seconds("--time-limit", time_limit)
    check_gap(accept_gap)
    if algorithm not in LOTTERY_ALGORITHMS:
        raise InputError(f"--algorithm {algorithm}: no lottery for this algorithm "
                         f"(choose {', '.join(LOTTERY_ALGORITHMS)})")
    gamma = check_algorithm_gamma(algorithm, gamma)
    system = quota_system(strata, quotas, size)
    if int(system.counts.sum()) < size:
        raise algorithms.InfeasibleError(
            f"not enough people: {int(system.counts.sum())} in the pool, {size} needed")
    solve = {"leximin": algorithms.leximin, "maximin": algorithms.maximin,
             "nash": algorithms.nash, "diversimax": diversimax,
             # gamma is never None for goldilocks (check_algorithm_gamma gives the default)
             "goldilocks": lambda system, **kw: goldilocks(
                 system, gamma=DEFAULT_GAMMA if gamma is None else gamma, **kw)
             }[algorithm]
    stopped: SolverTimeout | None = None
    try:
        sol = solve(system, time_limit=time_limit, log=log)
    except SolverTimeout as e:
        if e.partial is None:
            raise
        stopped, sol = e, e.partial
    bad = verify_panels(system, sol.panels)
    if bad:
        raise RuntimeError(f"internal error: {len(bad)} lottery panels break the quotas")
    panels, weights = _sorted(sol.panels, sol.weights)
    lottery = Lottery(list(strata.features), list(strata.keys), system.counts.copy(), size,
                      algorithm, panels, weights, sol.target, 0.0, sol.method, sol.stages,
                      sol.rounds, dict(sol.details))
    implied = lottery.stratum_probabilities()
    if algorithm == "maximin":
        lottery.gap = max(0.0, float(sol.details.get("maximin_bound", implied.min()))
                          - float(implied.min()))
    elif algorithm in ("goldilocks", "diversimax"):
        # goldilocks: objective minus its certified lower bound; diversimax: the largest
        # certified LEXIMIN stage gap (see `objectives`)
        lottery.gap = max(0.0, float(sol.gap), float((sol.target - implied).max()))
    else:
        lottery.gap = max(0.0, float((sol.target - implied).max()))
    lottery.details["status"] = "ok" if stopped is None else "time_limit"
    if stopped is not None:
        lottery.details["certified_upper_bound"] = stopped.bound
        if accept_gap is None or not lottery.gap <= accept_gap:
            stopped.lottery = lottery
            raise stopped
        lottery.details["accepted_gap"] = accept_gap
    return lottery


def check_algorithm_gamma(algorithm: str, gamma: float | None) -> float | None:
    """γ is Goldilocks' own parameter: a finite number > 0, default 1; refused elsewhere."""
    if gamma is None:
        return DEFAULT_GAMMA if algorithm == "goldilocks" else None
    check_gamma(gamma)
    if algorithm != "goldilocks":
        raise InputError(f"--gamma {gamma!r}: only for --algorithm goldilocks (this run is "
                         f"{algorithm})")
    return float(gamma)


def check_gamma_option(algorithm: str | None, gamma: float | None, *,
                       reused: bool = False) -> None:
    """--gamma, before any work: a finite number > 0, and Goldilocks' only (with a reused
    lottery and no --algorithm, the lottery says which algorithm: checked when it is read)."""
    if gamma is not None:
        check_gamma(gamma)
    if not reused or algorithm is not None:
        check_algorithm_gamma(algorithm or "leximin", gamma)


def objective_summary(lottery: Lottery) -> dict:
    """What the run optimised and the value it reached: `{name, value, bound}` (bound: the
    certified best value, when the algorithm certifies one)."""
    p = lottery.stratum_probabilities()
    d = lottery.details
    held = lottery.counts > 0
    if lottery.algorithm == "goldilocks":
        return {"name": "goldilocks", "gamma": d.get("gamma"),
                "value": d.get("goldilocks_value"), "bound": d.get("goldilocks_bound")}
    if lottery.algorithm == "diversimax":
        return {"name": "distinct strata on every panel", "value": d.get("distinct_strata"),
                "bound": d.get("distinct_strata")}
    if lottery.algorithm == "nash":
        where = held & (p > 0)
        return {"name": "nash welfare (sum of log probabilities)",
                "value": float(lottery.counts[where] @ np.log(p[where])), "bound": None}
    low = float(p[held].min()) if held.any() else 0.0
    return {"name": "smallest probability", "value": low,
            "bound": float(d.get("maximin_bound", low + lottery.gap))}


def check_gap(accept_gap: float | None) -> None:
    """--accept-gap is a probability: a finite number in [0, 1]."""
    if accept_gap is None:
        return
    if (isinstance(accept_gap, bool) or not isinstance(accept_gap, int | float)
            or not np.isfinite(accept_gap) or not 0 <= accept_gap <= 1):
        raise InputError(f"--accept-gap {accept_gap!r}: must be a probability between 0 and 1 "
                         "(e.g. 0.001)")


def check_options(*, algorithm: str | None = None, runs: int | None = None,
                  time_limit: float | None = None) -> None:
    """`probabilities`' own options (algorithm, sizes), checked before any work
    (`lottery.run.run_probabilities` calls it before loading the pool; `compute_probabilities`
    calls it for library callers)."""
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise InputError(f"--algorithm {algorithm}: unknown (choose {', '.join(ALGORITHMS)})")
    if runs is not None:
        check_count("--runs", runs, maximum=MAX_LEGACY_RUNS)
    check_seconds("--time-limit", time_limit)


def compute_probabilities(strata: Strata, quotas: Quotas, size: int,
                          algorithm: str = "leximin", *, time_limit: float | None = None,
                          accept_gap: float | None = None, gamma: float | None = None,
                          seed: int = 0, runs: int = 1000,
                          log: Callable[[str], None] | None = None,
                          relax: bool = False) -> Probabilities:
    """Per-person selection probabilities by the named algorithm.

    For legacy (the greedy procedure used before 2021) there is no lottery: the probabilities are
    estimated from `runs` seeded runs. `relax`: with the quotas relaxed as `check` proposes
    (`check.find_relaxation`; none when they can be met), recorded in `details["relaxation"]`.
    """
    check_options(algorithm=algorithm, runs=runs, time_limit=time_limit)
    check_algorithm_gamma(algorithm, gamma)
    start = time.perf_counter()
    relaxed: dict = {}
    if relax:
        quotas, relaxed["relaxation"] = relaxed_quotas(strata, quotas, size, time_limit)
        time_limit = time_left(time_limit, start)
    if algorithm == "legacy":
        deadline = None if time_limit is None else start + time_limit
        est = legacy_probabilities(strata, quotas, size, seed=seed, runs=runs,
                                   deadline=deadline)
        result = Probabilities("legacy", strata, est.stratum_probabilities, None,
                               time.perf_counter() - start, None,
                               f"estimated from {est.runs} seeded runs of the legacy greedy "
                               f"procedure (seed {seed}); not exact",
                               {"runs": est.runs, "seed": seed, "failures": est.failures,
                                **relaxed})
        if est.stopped:
            stopped = SolverTimeout(f"time limit reached after {est.runs:,} of {runs:,} legacy "
                                    "runs")
            stopped.result = result
            raise stopped
        return result
    try:
        lottery = compute_lottery(strata, quotas, size, algorithm, time_limit=time_limit,
                                  accept_gap=accept_gap, gamma=gamma, log=log)
    except SolverTimeout as e:
        if e.lottery is not None:  # the best lottery found, for the caller's report
            lot = e.lottery
            e.result = Probabilities(algorithm, strata, lot.stratum_probabilities(), lot,
                                      time.perf_counter() - start, lot.gap, details=relaxed)
        raise
    return Probabilities(algorithm, strata, lottery.stratum_probabilities(), lottery,
                         time.perf_counter() - start, lottery.gap, details=relaxed)


def relaxed_quotas(strata: Strata, quotas: Quotas, size: int, time_limit: float | None
                   ) -> tuple[Quotas, list]:
    """`--relax`: the quotas relaxed as `check` proposes (unchanged when they can be met), and
    the relaxation as `lottery.json` records it."""
    relaxation = find_relaxation(strata, quotas, size, time_limit=time_limit)
    return apply_relaxation(quotas, relaxation), relaxation_json(relaxation)


def time_left(time_limit: float | None, start: float) -> float | None:
    """What is left of `time_limit` seconds since `start` (SolverTimeout when nothing is)."""
    if time_limit is None:
        return None
    left = time_limit - (time.perf_counter() - start)
    if left <= 0:
        raise SolverTimeout(f"time limit ({time_limit:g} s) reached while relaxing the quotas")
    return left


def check_csv_output(out: str | Path, *, inputs: Iterable[Path | None] = (),
                     force: bool = False, option: str = "--out") -> None:
    """A CSV output may be written there (see `outputs`): exit 2 with the reason if not."""
    out = Path(out)
    check_file(out, inputs=inputs, force=force, option=option)
    if out.suffix.lower() != ".csv":
        raise InputError(f"{option} {out}: output must be a .csv file")


def write_probabilities(ids: pa.Array, probabilities: np.ndarray, out: str | Path, *,
                        inputs: Iterable[Path | None] = (), force: bool = False) -> None:
    """`id,probability` for every person, sorted by id (UTF-8 byte order), atomically.

    Floats are written in their shortest round-trip form, so they read back exactly. For the
    operator only: the public bundle's `probabilities.csv` has no ids (`probability_classes_csv`).
    """
    out = Path(out)
    check_csv_output(out, inputs=inputs, force=force)
    with atomic_path(out) as tmp:
        tmp.write_bytes(probabilities_csv(ids, np.asarray(probabilities, dtype=float)))


def probabilities_csv(ids: pa.Array, probabilities: np.ndarray) -> bytes:
    """`id,probability`, sorted by id, floats in shortest round-trip form (Python's repr).

    Vectorised: each distinct probability is formatted once, and the lines are joined by Arrow.
    """
    order = pc.array_sort_indices(ids)
    sorted_ids = ids.take(order).cast(pa.large_string())
    needs = pc.match_substring_regex(sorted_ids, "^[=+\\-@\t\r']|[,\"\r\n]")
    if pc.any(needs).as_py():
        quoted = pa.array([csv_field(v) for v in sorted_ids.to_pylist()],
                          type=pa.large_string())
    else:
        quoted = sorted_ids
    values = probabilities[order.to_numpy()]
    distinct, where = np.unique(values, return_inverse=True)
    text = pa.array([repr(float(v)) for v in distinct.tolist()], type=pa.large_string()
                    ).take(pa.array(where.ravel()))
    comma = pa.scalar(",", type=pa.large_string())
    newline = pa.scalar("\n", type=pa.large_string())
    lines = pc.binary_join_element_wise(quoted, text, comma)
    lines = pc.binary_join_element_wise(lines, pa.scalar("", type=pa.large_string()), newline)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[
        lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    body = b"" if data is None else data.to_pybytes()[int(offsets[0]):int(offsets[-1])]
    return b"id,probability\n" + body


def probability_classes_csv(probabilities: np.ndarray) -> bytes:
    """`probability,people`: each distinct probability (ascending, shortest round-trip form)
    and how many people have it — the bundle's `probabilities.csv`, with no id, so that a
    probability unique to a stratum links nobody to that stratum (docs/bundle-format.md)."""
    values, counts = np.unique(np.asarray(probabilities, dtype=float), return_counts=True)
    lines = ["probability,people", *(f"{float(v)!r},{int(c)}"
                                     for v, c in zip(values.tolist(), counts.tolist(),
                                                     strict=True))]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_strata_probabilities(result: Probabilities, out: str | Path, *,
                               inputs: Iterable[Path | None] = (), force: bool = False) -> None:
    """One row per stratum: its feature values, people, expected seats and probability."""
    strata = result.strata
    columns: dict[str, pa.Array] = {}
    for j, f in enumerate(strata.features):
        columns[f] = pa.array([k[j] for k in strata.keys], type=pa.string())
    counts = np.asarray(strata.counts, dtype=np.int64)
    columns["people"] = pa.array(counts)
    columns["expected_seats"] = pa.array(result.stratum_probabilities * counts)
    columns["probability"] = pa.array(result.stratum_probabilities)
    out = Path(out)
    check_csv_output(out, inputs=inputs, force=force, option="--strata-out")
    with atomic_path(out) as tmp:
        write_csv_table(pa.table(columns), tmp)


AT_MINIMUM = 1e-9  # relative: docs/bundle-format.md section 9, `people_at_min`


def at_minimum(probabilities: np.ndarray) -> np.ndarray:
    """Which probabilities are "at the minimum": at most min × (1 + 10^-9), the one definition
    behind `audit.json`'s `people_at_min`, the report and `probabilities --json`. Works on
    per-person and on per-stratum probabilities alike (every stratum has people)."""
    p = np.asarray(probabilities, dtype=float)
    return p <= float(p.min()) * (1 + AT_MINIMUM)


def probability_summary(result: Probabilities, people: int, seconds: float) -> dict:
    """What `probabilities --json` prints: the figures an operator or a benchmark compares."""
    p = result.stratum_probabilities
    counts = np.asarray(result.strata.counts, dtype=float)
    low = float(p.min())
    at_min = at_minimum(p)
    out: dict = {
        "algorithm": result.algorithm,
        "people": people,
        "strata": len(result.strata),
        "min_probability": low,
        "max_probability": float(p.max()),
        "strata_at_min": int(at_min.sum()),
        "people_at_min": int(counts[at_min].sum()),
        "expected_panel_size": float(p @ counts),
        "panels": None if result.lottery is None else len(result.lottery.panels),
        "gap": result.gap,
        "seconds": round(seconds, 3),
    }
    if result.lottery is not None:
        out["status"] = result.lottery.details.get("status", "ok")
        if out["status"] != "ok":
            out["certified_upper_bound"] = result.lottery.details.get("certified_upper_bound")
            if "accepted_gap" in result.lottery.details:
                out["accepted_gap"] = result.lottery.details["accepted_gap"]
        out["method"] = result.lottery.method
        out["objective"] = objective_summary(result.lottery)
        out["stages"] = result.lottery.stages
        out["rounds"] = result.lottery.rounds
    if result.note:
        out["note"] = result.note
    out.update({k: v for k, v in result.details.items() if k not in out})
    return out
