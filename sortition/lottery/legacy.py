"""The legacy greedy draw: the baseline that stratified sortition used before 2021.

The procedure builds a panel one seat at a time:

1. Among the quota groups (a value of a feature, or a pair of values for a cross quota) whose
   minimum is not yet met, take the most *urgent* one: (minimum - seats so far) divided by the
   people still available in the group. Ties go to the group listed first in the quotas.
2. Pick uniformly at random one available person of that group. When every minimum is met,
   pick uniformly at random any available person.
3. A person is *available* while not yet selected and while adding them keeps every group within
   its maximum: after each pick, everyone whose addition would now exceed a maximum is removed.
4. If no one can be picked, or the panel is full while a minimum is still unmet, the attempt
   fails and the procedure starts over (the random stream continues), up to `max_attempts`.

People of one stratum (same values of every quota feature) are exchangeable, so the procedure
runs on strata counts: "a random available person of group g" is a stratum of g drawn with
probability proportional to its available people. This gives exactly the same distribution of
panels (as seats per stratum) as drawing people one by one.

`legacy_probabilities` repeats the draw to estimate each person's selection probability, which
is how the baseline's unfairness is measured against the fair algorithms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.errors import InfeasibleError, InputError, SolverTimeout
from ..core.limits import MAX_LEGACY_RUNS, check_count
from ..inputs.quotas import Quotas
from ..inputs.strata import Strata
from .panels import quota_system

DEFAULT_MAX_ATTEMPTS = 100


@dataclass
class LegacyEstimate:
    """Selection probabilities of the legacy draw, estimated over repeated seeded runs."""

    stratum_probabilities: np.ndarray  # float64 per stratum: mean seats / people in the stratum
    runs: int
    seed: int
    failures: int  # attempts that got stuck and had to start over, summed over all runs
    standard_errors: np.ndarray  # float64 per stratum, standard error of the probability
    min_probability: float
    max_probability: float
    stopped: bool = False  # the time limit ended the runs before `runs` asked for

    def person_probabilities(self, strata: Strata) -> np.ndarray:
        """Each pool row's estimated probability (needs strata built from a pool)."""
        if strata.row_stratum is None:
            raise ValueError("these strata were built from counts and have no rows")
        return self.stratum_probabilities[strata.row_stratum]


@dataclass
class _Plan:
    """Quota groups as arrays over strata, prepared once for any number of draws."""

    labels: list[str]  # readable name of each group, for messages
    mins: list[int]  # per group
    maxs: list[int]  # per group
    members: list[np.ndarray]  # int64 strata of each group
    groups_of: list[list[int]]  # groups of each stratum
    incidence: np.ndarray  # float64 (groups x strata), 1 where the stratum is in the group
    start_avail: np.ndarray  # int64 per stratum: people who can be added to an empty panel
    start_group_avail: list[int]  # per group: the same, summed over the group


def _plan(strata: Strata, quotas: Quotas) -> _Plan:
    n = len(strata.keys)
    counts = np.asarray(strata.counts, dtype=np.int64)
    if counts.shape != (n,):
        raise InputError("strata counts do not match the strata keys")
    for feature in quotas.all_features:
        if feature not in strata.features:
            raise InputError(f"quota feature {feature!r} is not among the strata features "
                             f"({', '.join(strata.features)})")
    system = quota_system(strata, quotas, 0)
    labels, members = system.labels, system.groups
    mins, maxs = system.lo.tolist(), system.hi.tolist()
    incidence = system.membership().astype(np.float64)
    groups_of = [np.flatnonzero(incidence[:, s]).tolist() for s in range(n)]
    start = counts.copy()
    for g, hi in enumerate(maxs):
        if hi <= 0:
            start[members[g]] = 0
    start_group_avail = np.rint(incidence @ start.astype(np.float64)).astype(np.int64).tolist()
    return _Plan(labels, mins, maxs, members, groups_of, incidence, start, start_group_avail)


def _check_arguments(strata: Strata, plan: _Plan, size: int, max_attempts: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 0:
        raise InputError(f"panel size {size!r} must be a non-negative whole number")
    if (isinstance(max_attempts, bool) or not isinstance(max_attempts, int | np.integer)
            or max_attempts < 1):
        raise InputError(f"max_attempts {max_attempts!r} must be a positive whole number")
    pool = int(np.sum(strata.counts))
    problems = []
    if size > pool:
        problems.append(f"the pool has {pool} people, fewer than the panel size {size}")
    people = plan.incidence @ np.asarray(strata.counts, dtype=np.float64)
    for g, label in enumerate(plan.labels):
        if plan.mins[g] > people[g]:
            problems.append(f"{label} needs at least {plan.mins[g]} seats but the pool has "
                            f"{int(people[g])} such people")
        if plan.mins[g] > size:
            problems.append(f"{label} needs at least {plan.mins[g]} seats, more than the panel "
                            f"size {size}")
    if problems:
        raise InfeasibleError(["legacy could not find a panel:"] + problems)


def _attempt(plan: _Plan, size: int, uniforms: list[float]) -> tuple[np.ndarray | None, int]:
    """One greedy attempt: (seats per stratum, -1) or (None, group that got stuck or -1).

    Group-level state (a few dozen numbers) lives in Python lists, which is faster than numpy
    at that size; the stratum-level draw is vectorised.
    """
    avail = plan.start_avail.copy()
    group_avail = list(plan.start_group_avail)
    need = list(plan.mins)
    room = list(plan.maxs)
    seats = np.zeros(avail.shape[0], dtype=np.int64)
    open_groups = [g for g, v in enumerate(need) if v > 0]  # unmet minimums, in quota order
    members_of = plan.members
    groups_of = plan.groups_of
    for t in range(size):
        members: np.ndarray | None
        if open_groups:
            g = -1
            for h in open_groups:
                people = group_avail[h]
                if people == 0:  # infinite urgency: that minimum can no longer be met
                    return None, h
                # urgency need/people, compared exactly; the first listed wins ties
                if g < 0 or need[h] * group_avail[g] > need[g] * people:
                    g = h
            members = members_of[g]
            cumulative = avail[members].cumsum()
        else:
            g = -1
            members = None
            cumulative = avail.cumsum()
        total = int(cumulative[-1]) if cumulative.shape[0] else 0
        if total <= 0:
            return None, g
        ticket = min(int(uniforms[t] * total), total - 1)
        i = int(cumulative.searchsorted(ticket, side="right"))
        s = int(members[i]) if members is not None else i
        seats[s] += 1
        avail[s] -= 1
        met = False
        full = []
        for h in groups_of[s]:
            group_avail[h] -= 1
            need[h] -= 1
            room[h] -= 1
            if need[h] == 0:
                met = True
            if room[h] <= 0:
                full.append(h)
        if met:
            open_groups = [h for h in open_groups if need[h] > 0]
        if full:
            removed = np.zeros(avail.shape[0], dtype=np.int64)
            for h in full:  # a stratum may sit in several full groups: count it once
                m = members_of[h]
                removed[m] += avail[m]
                avail[m] = 0
            if removed.any():
                delta = np.rint(plan.incidence @ removed.astype(np.float64)).astype(np.int64)
                group_avail = [a - d for a, d in zip(group_avail, delta.tolist(), strict=True)]
    if open_groups:
        return None, open_groups[0]
    return seats, -1


def _draw(plan: _Plan, size: int, rng: np.random.Generator,
          max_attempts: int) -> tuple[np.ndarray, int]:
    """A panel and the number of failed attempts before it."""
    stuck = np.zeros(len(plan.labels) + 1, dtype=np.int64)
    for failures in range(max_attempts):
        seats, group = _attempt(plan, size, rng.random(size).tolist())
        if seats is not None:
            return seats, failures
        stuck[group] += 1  # index -1: stuck with every minimum met (a maximum blocked the rest)
    problems = [f"legacy could not find a panel of {size} in {max_attempts} attempts: the greedy "
                "draw got stuck every time (the quotas may be infeasible, or too tight for it)"]
    if stuck[:-1].any():
        g = int(np.argmax(stuck[:-1]))
        problems.append(f"most often stuck on {plan.labels[g]} (minimum {plan.mins[g]}): "
                        f"{int(stuck[g])} of {max_attempts} attempts")
    if stuck[-1]:
        problems.append(f"{int(stuck[-1])} attempts met every minimum but ran out of people who "
                        "fit every maximum")
    raise InfeasibleError(problems)


def legacy_panel(strata: Strata, quotas: Quotas, size: int, rng: np.random.Generator,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> np.ndarray:
    """One legacy panel, as seats per stratum (int64, aligned with `strata.keys`).

    Each attempt takes `size` uniform numbers from `rng` (one per seat), so a given stream
    always gives the same panel. Raises InfeasibleError when `max_attempts` attempts in a row
    get stuck.
    """
    plan = _plan(strata, quotas)
    _check_arguments(strata, plan, size, max_attempts)
    return _draw(plan, int(size), rng, int(max_attempts))[0]


def legacy_probabilities(strata: Strata, quotas: Quotas, size: int, *, seed: int, runs: int,
                         progress: Callable[[int, int], None] | None = None,
                         max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                         deadline: float | None = None) -> LegacyEstimate:
    """Estimate every person's selection probability under the legacy draw.

    Runs `runs` panels on one random stream `Generator(PCG64(seed))`: the same arguments always
    give identical arrays. `progress(done, runs)` is called about every 1 % of the runs. Past
    `deadline` (a `time.perf_counter()` value) it stops after the run in progress: the estimate
    is then over the runs done (`runs` says how many) and `stopped` is True.
    """
    runs = check_count("--runs", runs, maximum=MAX_LEGACY_RUNS)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed {seed!r} must be a non-negative whole number")
    plan = _plan(strata, quotas)
    _check_arguments(strata, plan, size, max_attempts)
    runs, size = int(runs), int(size)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    n = len(strata.keys)
    total = np.zeros(n, dtype=np.int64)
    total_sq = np.zeros(n, dtype=np.int64)
    failures = 0
    every = max(1, runs // 100)
    asked, stopped = runs, False
    for done in range(1, asked + 1):
        if deadline is not None and time.perf_counter() > deadline:
            runs, stopped = done - 1, True
            break
        seats, failed = _draw(plan, size, rng, int(max_attempts))
        total += seats
        total_sq += seats * seats
        failures += failed
        if progress is not None and (done % every == 0 or done == asked):
            progress(done, asked)
    if runs == 0:
        raise SolverTimeout("time limit reached before the first legacy run")
    counts = np.asarray(strata.counts, dtype=np.float64)
    mean = total / runs
    if runs > 1:
        var = np.maximum(total_sq - total * mean, 0.0) / (runs - 1)
    else:
        var = np.zeros(n, dtype=np.float64)
    probabilities = mean / counts
    errors = np.sqrt(var / runs) / counts
    return LegacyEstimate(
        stratum_probabilities=probabilities,
        runs=runs,
        seed=int(seed),
        failures=failures,
        standard_errors=errors,
        min_probability=float(probabilities.min()) if n else math.nan,
        max_probability=float(probabilities.max()) if n else math.nan,
        stopped=stopped,
    )


def clearly_below(estimate: np.ndarray, counts: np.ndarray, runs: int, floor: float
                  ) -> np.ndarray:
    """Strata whose estimated probability is below `floor` by more than three standard errors.

    Seats per run are taken as Poisson, so estimation noise alone does not count as unfairness.
    """
    estimate = np.asarray(estimate, dtype=float)
    error = np.sqrt(np.maximum(estimate, floor)
                    / (max(1, runs) * np.maximum(np.asarray(counts, dtype=float), 1.0)))
    return estimate + 3 * error < floor
