"""The `lottery` step for loaded inputs: compute the lottery and publish it (`publish`), check
that a reused one is the one for these inputs, and read or write `lottery.json` with its
`.sha256` (a published lottery is never replaced).

Also the `check` and `probabilities` commands from files (`run_check`, `run_probabilities`),
with the JSON they print, and the summary printed when a time limit stops a solve
(`timeout_summary`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InfeasibleError, InputError, SolverTimeout
from ..core.outputs import check_file, recover_pair, write_pair, write_text
from ..inputs.households import for_everyone
from ..inputs.load import Inputs, lottery_pool
from ..inputs.pool import Pool
from ..inputs.quotas import Quotas, resolve_quotas
from ..inputs.strata import Strata, strata_from_counts
from .check import (
    FeasibilityReport,
    RelaxedQuota,
    apply_relaxation,
    check_feasibility,
    find_relaxation,
    relaxation_label,
)
from .compute import (
    LOTTERY_ALGORITHMS,
    Lottery,
    Probabilities,
    check_algorithm_gamma,
    check_csv_output,
    check_gamma_option,
    check_gap,
    check_options,
    compute_lottery,
    compute_probabilities,
    probability_summary,
    time_left,
    write_probabilities,
    write_strata_probabilities,
)
from .panels import quota_system
from .publish import PublishedLottery, make_transparent, publish, transparent_problem

DRAWABLE = LOTTERY_ALGORITHMS


def run_lottery(inputs: Inputs, algorithm: str, *, panels: int | None = None,
                time_limit: float | None = None,
                log: Callable[[str], None] | None = None,
                computed: Lottery | None = None,
                accept_gap: float | None = None, relax: bool = False,
                gamma: float | None = None) -> PublishedLottery:
    """Compute the lottery (and round it to `panels` tickets for a transparent lottery).

    `computed`: a lottery already computed for these inputs, to publish instead. `relax`: over
    the quotas relaxed as `check` proposes (`check.find_relaxation`; nothing changes when they
    can be met), the relaxed bounds recorded in the lottery, so that they are hashed with it.
    `gamma`: Goldilocks' parameter (default 1), refused with the other algorithms.
    """
    if algorithm not in DRAWABLE:
        raise InputError(f"--algorithm {algorithm}: no lottery to draw from (choose "
                         f"{', '.join(DRAWABLE)}; legacy is for `probabilities` only)")
    problem = None if panels is None else transparent_problem(panels, inputs.size,
                                                                 len(inputs.pool))
    if problem:  # before any solving
        raise InputError(problem)
    check_algorithm_gamma(algorithm, gamma)
    t = time.perf_counter()
    relaxation: list[RelaxedQuota] = []
    if relax:
        if log is not None:
            log("relaxing the quotas…")
        relaxation = find_relaxation(inputs.strata, inputs.quotas, inputs.size,
                                     time_limit=time_limit)
        time_limit = time_left(time_limit, t)
    lottery = computed if computed is not None else compute_lottery(
        inputs.strata, apply_relaxation(inputs.quotas, relaxation), inputs.size, algorithm,
        time_limit=time_limit, log=log, accept_gap=accept_gap, gamma=gamma)
    published = publish(lottery, pool_sha256=inputs.fingerprint.sha256,
                        quotas_sha256=inputs.quotas_sha256, id_column=inputs.pool.id_column,
                        relaxation=relaxation)
    published.household_seed = inputs.household_seed
    if panels is not None:
        published = make_transparent(published, inputs.all_members(), panels)
    inputs.timings["lottery"] = time.perf_counter() - t
    return published


def check_reuse(published: PublishedLottery, inputs: Inputs, source: str, *,
                algorithm: str | None, panels: int | None, relax: bool = False,
                time_limit: float | None = None, gamma: float | None = None) -> None:
    """A reused lottery must be the one for these inputs and options (else exit 2). A relaxed
    one is drawn from only with `relax` (the operator acknowledges the relaxation), and its
    relaxed bounds must be the ones `check` proposes for these inputs now."""
    problems = []
    if published.pool_sha256 != inputs.fingerprint.sha256:
        problems.append(f"it was computed for another pool (pool fingerprint "
                        f"{published.pool_sha256[:16]}…, this pool "
                        f"{inputs.fingerprint.sha256[:16]}…)")
    if published.quotas_sha256 != inputs.quotas_sha256:
        problems.append(f"it was computed for other quotas (quotas fingerprint "
                        f"{published.quotas_sha256[:16]}…, these quotas "
                        f"{inputs.quotas_sha256[:16]}…)")
    if published.household_seed != inputs.household_seed:
        problems.append(f"its household seed is {published.household_seed!r}, this draw's is "
                        f"{inputs.household_seed!r}")
    if published.panel_size != inputs.size:
        problems.append(f"its panel size is {published.panel_size}, --size says {inputs.size}")
    if algorithm is not None and algorithm != published.algorithm:
        problems.append(f"its algorithm is {published.algorithm}, --algorithm says {algorithm}")
    if gamma is not None and gamma != published.gamma:
        problems.append(f"its gamma is {published.gamma}, --gamma says {gamma}")
    if panels is not None and (not published.transparent or published.n_tickets != panels):
        have = (f"{published.n_tickets} panels" if published.transparent
                else "not a transparent lottery")
        problems.append(f"--panels {panels} but the lottery has {have}")
    if published.relaxed and not relax:
        problems.append("it was computed for relaxed quotas ("
                        + "; ".join(relaxation_label(r) for r in published.relaxation)
                        + "): give --relax to draw from it")
    if relax and not problems:
        problems += _relaxation_differs(published, inputs, time_limit)
    if problems:
        raise InputError([f"{source}: {p}" for p in problems])


def _relaxation_differs(published: PublishedLottery, inputs: Inputs,
                        time_limit: float | None) -> list[str]:
    """The relaxation a reused lottery records against the one these inputs give now."""
    def shown(relaxation: list[RelaxedQuota]) -> str:
        return "; ".join(relaxation_label(r) for r in relaxation) or "none"

    try:
        now = find_relaxation(inputs.strata, inputs.quotas, inputs.size, time_limit=time_limit)
    except SolverTimeout:
        raise
    except InfeasibleError as e:
        return [f"it records the relaxation {shown(published.relaxation)}, but these quotas "
                f"cannot be relaxed within their flex bounds now ({e.problems[0]})"]
    key = sorted((r.features, r.values, r.old_min, r.old_max, r.new_min, r.new_max)
                 for r in published.relaxation)
    if key != sorted((r.features, r.values, r.old_min, r.old_max, r.new_min, r.new_max)
                     for r in now):
        return [f"it records the relaxation {shown(published.relaxation)}, but --relax gives "
                f"{shown(now)} for these quotas and this pool"]
    return []


def read_lottery_bytes(lottery_dir: Path) -> tuple[bytes, str]:
    path = Path(lottery_dir)
    if path.is_dir():
        path = path / "lottery.json"
    try:
        return path.read_bytes(), str(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read the lottery ({e.strerror or e})") from None


def check_lottery_target(out_dir: Path, *, inputs: list[Path | None]) -> Path:
    """`DIR/lottery.json`, if it may be written: a published lottery is never replaced.

    A lottery written by a run killed before its `.sha256` is completed first (both files are
    one pair, `outputs.write_pair`): it then exists, and is refused like any other.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    target, sha = out_dir / "lottery.json", _hash_file(out_dir / "lottery.json")
    if out_dir.is_dir() and recover_pair(target, sha) == "completed":
        digest = sha.read_text(encoding="utf-8").split()[0]
        raise InputError(f"{target}: an interrupted run had written this lottery; its {sha.name} "
                         f"is now completed (SHA-256 {digest}). A lottery is never replaced: "
                         "publish that hash, or choose another folder")
    for path in (target, sha):
        if os.path.lexists(path):
            raise InputError(f"{path}: already exists (a published lottery is never "
                             "overwritten; choose another folder)")
        check_file(path, inputs=inputs, force=False)
    return target


def _hash_file(lottery: Path) -> Path:
    return lottery.with_name(lottery.name + ".sha256")


def write_lottery(out_dir: Path, published: PublishedLottery, *, inputs: list[Path | None]
                  ) -> str:
    """Write DIR/lottery.json then DIR/lottery.json.sha256 (a pair: both or neither); return
    the hash to publish."""
    target = check_lottery_target(out_dir, inputs=inputs)
    data = published.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    write_pair(target, lambda tmp: tmp.write_bytes(data), _hash_file(target),
               lambda _tmp: f"{digest}  lottery.json\n".encode())
    return digest


def quota_system_for(published: PublishedLottery, quotas: Quotas):
    """The quota constraints over the lottery's own strata (for checking its panels)."""
    strata = strata_from_counts(published.features,
                                dict(zip(published.keys, published.counts, strict=True)))
    return strata, quota_system(strata, quotas, published.panel_size)


# The `check` and `probabilities` commands, from files ----------------------------------------


@dataclass
class CheckRun:
    """What `run_check` found: the quotas, the lottery's pool and strata, and the report."""

    pool_path: Path
    quotas_path: Path
    quotas: Quotas
    pool: Pool
    strata: Strata
    report: FeasibilityReport

    def to_dict(self) -> dict:
        """What `check --json` prints and `--report` writes."""
        data = {"pool": str(self.pool_path), "quotas": str(self.quotas_path),
                "people": len(self.pool), "strata": len(self.strata)}
        data.update(self.report.to_dict())
        return data


def run_check(pool_path: Path, quotas_path: Path, size: int | None = None, *,
              id_column: str | None = None, encoding: str = "utf-8", time_limit: float = 60.0,
              household_column: str | None = None, household_seed: str | None = None,
              report_path: Path | None = None, force: bool = False) -> CheckRun:
    """`sortition check`: can the quotas be met by the pool (`check_feasibility`)? With
    `report_path`, the JSON report (`CheckRun.to_dict`) is written there too. An infeasible
    answer is a report, not an exception."""
    given: list[Path | None] = [pool_path, quotas_path]
    if report_path is not None:
        check_file(report_path, inputs=given, force=force, option="--report")
    quotas = resolve_quotas(quotas_path, size)
    pool, strata, _ = lottery_pool(pool_path, quotas_path, quotas, id_column, encoding,
                                   household_column, household_seed)
    report = check_feasibility(strata, quotas, int(quotas.size or 0), time_limit=time_limit)
    run = CheckRun(Path(pool_path), Path(quotas_path), quotas, pool, strata, report)
    if report_path is not None:
        check_file(report_path, inputs=given, force=force, option="--report")
        write_text(report_path, json.dumps(run.to_dict(), ensure_ascii=False, indent=2) + "\n")
    return run


@dataclass
class ProbabilitiesRun:
    """What `run_probabilities` computed and wrote."""

    result: Probabilities
    quotas: Quotas
    pool: Pool  # the lottery's pool (with households: the representatives)
    whole: Pool  # everybody in the pool file
    out: Path
    strata_out: Path | None
    seconds: float

    def summary(self) -> dict:
        """What `probabilities --json` prints (`compute.probability_summary`)."""
        return probability_summary(self.result, len(self.pool), self.seconds)


def run_probabilities(pool_path: Path, quotas_path: Path, out: Path, size: int | None = None,
                      algorithm: str = "leximin", *, id_column: str | None = None,
                      encoding: str = "utf-8", strata_out: Path | None = None,
                      time_limit: float | None = None, accept_gap: float | None = None,
                      seed: int = 0, runs: int = 1000, household_column: str | None = None,
                      household_seed: str | None = None, force: bool = False,
                      relax: bool = False, gamma: float | None = None,
                      log: Callable[[str], None] | None = None) -> ProbabilitiesRun:
    """`sortition probabilities`: each person's probability under the algorithm's lottery,
    written to `out` (`id,probability`) and, with `strata_out`, one row per stratum. Options
    are checked before the pool is loaded. Stopped by `time_limit`, it raises SolverTimeout
    with its `.summary` set (`timeout_summary`)."""
    start = time.perf_counter()
    check_options(algorithm=algorithm, runs=runs, time_limit=time_limit)
    check_gamma_option(algorithm, gamma)
    check_gap(accept_gap)
    given: list[Path | None] = [pool_path, quotas_path]
    check_csv_output(out, inputs=given, force=force)
    if strata_out is not None:
        check_csv_output(strata_out, inputs=given, force=force, option="--strata-out")
    quotas = resolve_quotas(quotas_path, size)
    pool, strata, whole = lottery_pool(pool_path, quotas_path, quotas, id_column, encoding,
                                       household_column, household_seed)
    if log is not None:
        log(f"{algorithm}: {len(strata):,} strata…")
    try:
        result = compute_probabilities(strata, quotas, int(quotas.size or 0), algorithm,
                                       time_limit=time_limit, accept_gap=accept_gap,
                                       seed=seed, runs=runs, log=log, relax=relax,
                                       gamma=gamma)
    except SolverTimeout as e:
        e.summary = timeout_summary(e, people=len(pool), seconds=time.perf_counter() - start)
        raise
    person = for_everyone(pool, result.person_probabilities(), len(whole))
    write_probabilities(whole.ids, person, out, inputs=given, force=force)
    if strata_out is not None:
        write_strata_probabilities(result, strata_out, inputs=given, force=force)
    return ProbabilitiesRun(result, quotas, pool, whole, Path(out), strata_out,
                            time.perf_counter() - start)


def timeout_summary(e: SolverTimeout, *, people: int = 0, seconds: float = 0.0) -> dict:
    """What a solve stopped by its time limit reports (`probabilities --json`: status
    "time_limit"): the message, the certified bound and the best lottery found, if any."""
    summary: dict = {"status": "time_limit", "message": e.problems[0],
                     "certified_upper_bound": e.bound}
    if isinstance(e.result, Probabilities):
        summary.update(probability_summary(e.result, people, seconds))
        summary["status"] = "time_limit"
    elif isinstance(e.lottery, Lottery):
        p = e.lottery.stratum_probabilities()
        summary.update({"panels": len(e.lottery.panels), "gap": e.lottery.gap,
                        "min_probability": float(p.min()), "seconds": round(seconds, 3)})
    else:
        summary.update({"panels": None, "gap": None, "seconds": round(seconds, 3)})
    return summary
