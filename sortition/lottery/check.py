"""Feasibility check: can any panel of the requested size meet every quota from this pool?

Organisers need three answers before a draw: *whether* the quotas can be met, *why not* when
they cannot (in sentences they can act on), and *what smallest change* to the quotas would make
them feasible. A fourth answer matters for fairness: people whose combination of features
appears in no feasible panel get probability zero whatever the selection algorithm does.

Everything is computed on strata counts (people with identical quota features), so the cost
follows the number of feature combinations, not the pool size. Cheap arithmetic checks run
first because their explanations are the clearest; the exact answer comes from a CP-SAT integer
program. Solves use one worker and a fixed seed so that the same inputs always give the same
report. This module never prints: the CLI renders the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from ..core.errors import InfeasibleError, SolverTimeout
from ..core.limits import check_seconds
from ..inputs.quotas import CrossQuota, Quotas, ValueQuota, flex_bounds
from ..inputs.strata import Strata
from .panels import QuotaSystem, add_quotas_cp, quota_label, quota_system

SEED = 20240611  # fixed CP-SAT seed: identical inputs must give identical reports
STATUSES = ("feasible", "infeasible", "unknown")


# ---------------------------------------------------------------------------
# Report


@dataclass(frozen=True)
class RelaxedQuota:
    """One quota whose bounds the minimal relaxation changes.

    `features`/`values` hold one entry for a one-way quota and two for a cross quota.
    """

    features: tuple[str, ...]
    values: tuple[str, ...]
    old_min: int
    old_max: int
    new_min: int
    new_max: int

    @property
    def is_cross(self) -> bool:
        return len(self.features) == 2

    @property
    def feature(self) -> str:
        return " x ".join(self.features)

    @property
    def value(self) -> str:
        return " x ".join(self.values)

    @property
    def label(self) -> str:
        return quota_label(self.features, self.values)

    @property
    def change(self) -> int:
        """Seats of slack this change adds (lowered minimum plus raised maximum)."""
        return max(0, self.old_min - self.new_min) + max(0, self.new_max - self.old_max)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": self.value,
            "features": list(self.features),
            "values": list(self.values),
            "old_min": self.old_min,
            "old_max": self.old_max,
            "new_min": self.new_min,
            "new_max": self.new_max,
            "change": self.change,
        }


@dataclass
class FeasibilityReport:
    """Everything the `check` command shows, in a form that serialises to stable JSON."""

    feasible: bool
    status: str  # "feasible" | "infeasible" | "unknown"
    size: int
    pool_size: int
    features: list[str]  # order of the values in stratum keys
    reasons: list[str] = field(default_factory=list)
    shortfalls: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    relaxation: list[RelaxedQuota] | None = None
    relaxation_optimal: bool = False  # proven minimal (False if the solver ran out of time)
    beyond_flex: bool = False  # no relaxation within the flex bounds (min_flex/max_flex) exists
    witness: dict[tuple[str, ...], int] | None = None  # stratum key -> seats, nonzero only
    impossible_strata: list[tuple[tuple[str, ...], int]] = field(default_factory=list)
    impossible_checked: bool = False  # every stratum was decided (only when feasible)
    seconds: float = 0.0

    @property
    def relaxation_total(self) -> int | None:
        """Total seats of slack the relaxation adds (its L1 size)."""
        if self.relaxation is None:
            return None
        return sum(r.change for r in self.relaxation)

    @property
    def impossible_people(self) -> int:
        return sum(n for _, n in self.impossible_strata)

    def stratum_dict(self, key: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.features, key, strict=True))

    def to_dict(self, *, include_timing: bool = False) -> dict[str, Any]:
        """JSON-ready dict with a fixed key order.

        Timing is left out by default so the same inputs serialise to the same bytes.
        """
        out: dict[str, Any] = {
            "status": self.status,
            "feasible": self.feasible,
            "size": self.size,
            "pool_size": self.pool_size,
            "features": list(self.features),
            "reasons": list(self.reasons),
            "shortfalls": [dict(s) for s in self.shortfalls],
            "warnings": list(self.warnings),
            "relaxation": (None if self.relaxation is None
                           else [r.to_dict() for r in self.relaxation]),
            "relaxation_total": self.relaxation_total,
            "relaxation_optimal": self.relaxation_optimal,
            **({"relaxation_beyond_flex": True} if self.beyond_flex else {}),
            "witness": (None if self.witness is None
                        else [{"stratum": self.stratum_dict(k), "seats": n}
                              for k, n in self.witness.items()]),
            "impossible_strata": [{"stratum": self.stratum_dict(k), "people": n}
                                  for k, n in self.impossible_strata],
            "impossible_people": self.impossible_people,
            "impossible_checked": self.impossible_checked,
        }
        if include_timing:
            out["seconds"] = round(self.seconds, 3)
        return out

    def apply_relaxation(self, quotas: Quotas) -> Quotas:
        return apply_relaxation(quotas, self.relaxation or [])


def apply_relaxation(quotas: Quotas, relaxation: list[RelaxedQuota]) -> Quotas:
    """New Quotas with the relaxed bounds (other quotas and metadata unchanged)."""
    one = {(r.features[0], r.values[0]): r for r in relaxation if not r.is_cross}
    two = {(r.features, r.values): r for r in relaxation if r.is_cross}
    values: list[ValueQuota] = []
    for q in quotas.values:
        r = one.get((q.feature, q.value))
        values.append(q if r is None else replace(q, min=r.new_min, max=r.new_max))
    cross: list[CrossQuota] = []
    for c in quotas.cross:
        r = two.get((tuple(c.features), tuple(c.values)))
        cross.append(c if r is None else replace(c, min=r.new_min, max=r.new_max))
    return replace(quotas, values=values, cross=cross)


# ---------------------------------------------------------------------------
# Quota membership


@dataclass(frozen=True)
class _Q:
    """A quota reduced to what the solver needs: the strata it counts and its bounds."""

    features: tuple[str, ...]
    values: tuple[str, ...]
    min: int
    max: int
    members: tuple[int, ...]  # stratum indices, increasing
    pool: int  # people in the pool it counts
    min_flex: int = 0  # the loosest bounds a relaxation may give it
    max_flex: int = 0


def _quota_list(strata: Strata, quotas: Quotas, size: int | None = None) -> list[_Q]:
    """One-way quotas in spec order, then cross quotas in spec order: the rows of the quota
    system (`panels.quota_system`, the one mapping from a quota to its strata), with their flex
    bounds for a panel of `size` (by default the quotas' own)."""
    k = int(size if size is not None else quotas.size or 0)
    system = quota_system(strata, quotas, k)
    counts = system.counts.tolist()
    rows: list[ValueQuota | CrossQuota] = [*quotas.values, *quotas.cross]
    return [_Q(fs, vs, lo, hi, tuple(members), sum(counts[i] for i in members),
               *flex_bounds(q, k))
            for q, fs, vs, (members, lo, hi) in zip(rows,
                                                    system.features, system.values,
                                                    system.rows(), strict=True)]


# ---------------------------------------------------------------------------
# Cheap checks


def _shortfall(q: _Q) -> dict[str, Any]:
    return {
        "feature": " x ".join(q.features),
        "value": " x ".join(q.values),
        "pool": q.pool,
        "min": q.min,
        "max": q.max,
        "shortfall": max(0, q.min - q.pool),
        "kind": "cross" if len(q.features) == 2 else "value",
    }


def _cheap_checks(strata: Strata, quotas: Quotas, qs: list[_Q], size: int,
                  pool_size: int) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """Arithmetic checks that need no solver; each failure is a sufficient reason."""
    reasons: list[str] = []
    shortfalls: list[dict[str, Any]] = []
    warnings: list[str] = []
    if pool_size < size:
        reasons.append(f"not enough people: {pool_size} in the pool, {size} needed")
    for f in quotas.all_features:
        if f not in strata.features:
            warnings.append(f"feature {f}: named by the quotas but absent from the pool's "
                            "strata; counted as nobody having any of its values")
    for q in qs:
        name = quota_label(q.features, q.values)
        if q.min > q.max:
            reasons.append(f"{name}: minimum {q.min} is above maximum {q.max}")
        if len(q.features) == 2 and q.min > size:
            reasons.append(f"{name}: minimum {q.min} is above the panel size {size}")
        if q.pool == 0:
            if q.min > 0:
                reasons.append(f"{name}: minimum {q.min} but nobody in the pool has "
                               f"{'this combination' if len(q.features) == 2 else 'this value'}"
                               f" (short by {q.min})")
                shortfalls.append(_shortfall(q))
            else:
                warnings.append(f"{name}: nobody in the pool has "
                                f"{'this combination' if len(q.features) == 2 else 'this value'}"
                                "; it will get no seats")
        elif q.pool < q.min:
            reasons.append(f"{name}: minimum {q.min} but only {q.pool} in the pool "
                           f"(short by {q.min - q.pool})")
            shortfalls.append(_shortfall(q))
    one_way = [q for q in qs if len(q.features) == 1]
    for f in quotas.features:
        fq = [q for q in one_way if q.features[0] == f]
        lo = sum(q.min for q in fq)
        hi = sum(q.max for q in fq)
        quoted = {q.values[0] for q in fq}
        # People whose value has no quota are unconstrained by this feature (all of them when
        # the feature is not among the strata's).
        free = 0 if f in strata.features else pool_size
        free_values: list[str] = []
        if f in strata.features:
            for v, n in strata.value_counts(f).items():
                if v not in quoted:
                    free += n
                    free_values.append(v)
        if free_values:
            warnings.append(f"feature {f}: {free} people in the pool have value(s) without a "
                            f"quota ({', '.join(free_values)}); they are unconstrained by it")
        if lo > size:
            reasons.append(f"feature {f}: minima sum to {lo} > panel size {size}")
        if hi + free < size:
            if free:
                reasons.append(f"feature {f}: maxima sum to {hi}, plus {free} people with "
                               f"values without a quota, {hi + free} < panel size {size}")
            else:
                reasons.append(f"feature {f}: maxima sum to {hi} < panel size {size}")
        else:
            cap = sum(min(q.max, q.pool) for q in fq) + free
            if cap < size <= pool_size:
                reasons.append(f"feature {f}: at most {cap} seats can be filled (each value's "
                               f"maximum capped by the people in the pool) < panel size {size}")
    return reasons, shortfalls, warnings


# ---------------------------------------------------------------------------
# CP-SAT


class _Clock:
    """Shares one time budget across the successive solves."""

    def __init__(self, limit: float) -> None:
        self.start = time.monotonic()
        self.limit = limit

    def left(self) -> float:
        return self.limit - (time.monotonic() - self.start)


def _solve(model: cp_model.CpModel, clock: _Clock) -> tuple[Any, cp_model.CpSolver]:
    """Deterministic solve: one worker, fixed seed. Status None means no time was left."""
    solver = cp_model.CpSolver()
    left = clock.left()
    if left <= 0:
        return None, solver
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = SEED
    solver.parameters.max_time_in_seconds = left
    solver.parameters.log_search_progress = False
    return solver.solve(model), solver


def _variables(counts: np.ndarray) -> tuple[cp_model.CpModel, list[cp_model.IntVar]]:
    """A model with seats per stratum, at most the stratum's people."""
    model = cp_model.CpModel()
    xs = [model.new_int_var(0, int(n), f"x{i}") for i, n in enumerate(counts.tolist())]
    return model, xs


def _feasible_model(system: QuotaSystem) -> tuple[cp_model.CpModel, list[cp_model.IntVar]]:
    model, xs = _variables(system.counts)
    add_quotas_cp(model, xs, system)
    return model, xs


def _find_panel(system: QuotaSystem, clock: _Clock) -> tuple[str, list[int] | None]:
    model, xs = _feasible_model(system)
    status, solver = _solve(model, clock)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return "feasible", [int(solver.value(x)) for x in xs]
    if status == cp_model.INFEASIBLE:
        return "infeasible", None
    return "unknown", None


def tie_order(features: tuple[str, ...], values: tuple[str, ...]) -> tuple:
    """The order in which the tie rule visits quotas: one-way quotas before cross quotas, each
    by the UTF-8 bytes of (feature, value[, feature, value])."""
    pairs = [x.encode("utf-8") for f, v in zip(features, values, strict=True) for x in (f, v)]
    return (len(features), *pairs)


def _relax(strata: Strata, qs: list[_Q], size: int,
           clock: _Clock) -> tuple[list[RelaxedQuota] | None, str]:
    """The smallest relaxation of the bounds, within each quota's flex bounds, that admits a
    panel; status "optimal", "beyond_flex" (none exists) or "time_limit" (the relaxation shown,
    if any, is not proven to be the one the rule picks).

    The rule, so that the answer never depends on which optimum a solver finds: (1) the fewest
    seats of slack in total (L1: lowered minima plus raised maxima); (2) among those, the
    fewest quotas changed; (3) among those, the quotas in `tie_order`, each minimum before its
    maximum, are relaxed as little as possible in turn (the lexicographically smallest vector
    of slacks). The solver proves each optimum; the value is then fixed, one at a time.
    """
    model, xs = _variables(strata.counts)
    model.add(cp_model.LinearExpr.sum(xs) == size)
    slack: list[tuple[int, cp_model.IntVar]] = []  # (quota index, variable), in rule order
    changed: list[cp_model.IntVar] = []
    for k, q in enumerate(qs):
        expr = cp_model.LinearExpr.sum([xs[i] for i in q.members])
        lo_room, hi_room = max(0, q.min - q.min_flex), max(0, q.max_flex - q.max)
        lo = model.new_int_var(0, lo_room, f"lo{k}") if lo_room > 0 else None
        hi = model.new_int_var(0, hi_room, f"hi{k}") if hi_room > 0 else None
        model.add(expr + (lo if lo is not None else 0) >= q.min)
        model.add(expr - (hi if hi is not None else 0) <= q.max)
        if lo is not None or hi is not None:
            b = model.new_bool_var(f"changed{k}")
            for s, room in ((lo, lo_room), (hi, hi_room)):
                if s is not None:
                    model.add(s <= room * b)
                    slack.append((k, s))
            changed.append(b)
    order = sorted(range(len(slack)), key=lambda j: (tie_order(qs[slack[j][0]].features,
                                                               qs[slack[j][0]].values), j))
    slacks = [s for _, s in slack]
    values: list[int] | None = None
    steps = [(cp_model.LinearExpr.sum(slacks), None), (cp_model.LinearExpr.sum(changed), None),
             *((slacks[j], j) for j in order)]
    for objective, j in steps:
        if values is not None and j is not None and values[j] == 0:
            model.add(slacks[j] == 0)  # the incumbent already has it at its least
            continue
        model.minimize(objective)
        status, solver = _solve(model, clock)
        if status == cp_model.INFEASIBLE:
            return None, "beyond_flex"
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        values = [int(solver.value(s)) for s in slacks]
        if status != cp_model.OPTIMAL:
            break
        model.add(objective == int(round(solver.objective_value)))
    else:
        return _relaxed(qs, slack, values or []), "optimal"
    return (None if values is None else _relaxed(qs, slack, values)), "time_limit"


def _relaxed(qs: list[_Q], slack: list[tuple[int, cp_model.IntVar]],
             values: list[int]) -> list[RelaxedQuota]:
    dlo = [0] * len(qs)
    dhi = [0] * len(qs)
    for (k, var), v in zip(slack, values, strict=True):
        if var.name.startswith("lo"):
            dlo[k] = v
        else:
            dhi[k] = v
    return [RelaxedQuota(q.features, q.values, q.min, q.max, q.min - dlo[k], q.max + dhi[k])
            for k, q in enumerate(qs) if dlo[k] or dhi[k]]


def _impossible(system: QuotaSystem, witness: list[int],
                clock: _Clock) -> tuple[list[int], bool]:
    """Strata in no feasible panel: cover strata greedily, panel by panel, until none is new.

    Each round asks for a feasible panel using as many not-yet-covered strata as possible;
    when the best such panel uses none of them, the remaining ones are impossible.
    """
    counts = [int(n) for n in system.counts.tolist()]
    covered = [c == 0 or w > 0 for c, w in zip(counts, witness, strict=True)]
    while not all(covered):
        model, xs = _feasible_model(system)
        todo = [i for i, c in enumerate(covered) if not c]
        ys = []
        for i in todo:
            y = model.new_bool_var(f"y{i}")
            model.add(xs[i] >= y)
            ys.append(y)
        model.maximize(cp_model.LinearExpr.sum(ys))
        status, solver = _solve(model, clock)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return [], False
        found = [i for i in todo if solver.value(xs[i]) > 0]
        if not found:
            if status == cp_model.OPTIMAL:
                return todo, True
            return [], False
        for i, x in enumerate(xs):
            if solver.value(x) > 0:
                covered[i] = True
    return [], True


# ---------------------------------------------------------------------------
# Entry points


def check_feasibility(strata: Strata, quotas: Quotas, size: int, *,
                      time_limit: float = 60.0) -> FeasibilityReport:
    """Decide whether a panel of `size` meeting every quota exists, and explain the answer.

    `time_limit` (seconds) is shared by all the solves; a solve cut short leaves the verdict
    "unknown" (or the relaxation / impossible strata undetermined) with a warning.
    """
    check_seconds("--time-limit", time_limit)
    clock = _Clock(time_limit)
    counts = [int(n) for n in strata.counts.tolist()]
    pool_size = sum(counts)
    system = quota_system(strata, quotas, size)
    qs = _quota_list(strata, quotas, size)
    reasons, shortfalls, warnings = _cheap_checks(strata, quotas, qs, size, pool_size)
    report = FeasibilityReport(feasible=False, status="infeasible", size=size,
                               pool_size=pool_size, features=list(strata.features),
                               reasons=reasons, shortfalls=shortfalls, warnings=warnings)
    if pool_size < size:
        report.warnings.append("no change to the quotas can help: the pool itself is too small")
        report.seconds = time.monotonic() - clock.start
        return report
    if not reasons:
        status, panel = _find_panel(system, clock)
        if status == "unknown":
            report.status = "unknown"
            report.reasons.append(f"the solver stopped at the time limit ({time_limit:g} s) "
                                  "without deciding whether a panel exists; allow more time")
            report.seconds = time.monotonic() - clock.start
            return report
        if status == "feasible":
            assert panel is not None
            report.feasible = True
            report.status = "feasible"
            report.witness = {strata.keys[i]: n for i, n in enumerate(panel) if n > 0}
            todo, done = _impossible(system, panel, clock)
            report.impossible_strata = [(strata.keys[i], counts[i]) for i in todo]
            report.impossible_checked = done
            if not done:
                report.warnings.append("time limit reached before every stratum was checked; "
                                       "people who can be on no panel are not listed")
            report.seconds = time.monotonic() - clock.start
            return report
        report.reasons.append(f"no panel of {size} from this pool meets all the quotas at "
                              "once, although each check on a single quota or feature passes")
    relaxation, status = _relax(strata, qs, size, clock)
    report.relaxation = relaxation
    report.relaxation_optimal = status == "optimal"
    if status == "beyond_flex":
        report.beyond_flex = True
        report.reasons.append("no relaxation within the flex bounds (min_flex/max_flex) makes "
                              "the quotas feasible: even relaxed as far as they allow, no panel "
                              "meets them")
    elif relaxation is None:
        report.warnings.append(f"time limit ({time_limit:g} s) reached before a relaxation of "
                               "the quotas was found")
    elif status != "optimal":
        report.warnings.append("time limit reached: the relaxation shown works but is not "
                               "proven to be the smallest")
    report.seconds = time.monotonic() - clock.start
    return report


DEFAULT_RELAX_SECONDS = 600.0


def find_relaxation(strata: Strata, quotas: Quotas, size: int, *,
                    time_limit: float | None = None) -> list[RelaxedQuota]:
    """The relaxation `--relax` draws with: none when the quotas can be met as they are, else
    the smallest within the flex bounds by the rule of `_relax` (the one `check` proposes).

    InfeasibleError (exit 1) when the pool is too small or no relaxation within the flex bounds
    works; SolverTimeout when the rule's answer is not proven within `time_limit` (never a
    relaxation that another run could choose differently).
    """
    check_seconds("--time-limit", time_limit)
    limit = DEFAULT_RELAX_SECONDS if time_limit is None else float(time_limit)
    clock = _Clock(limit)
    pool_size = int(sum(int(n) for n in strata.counts.tolist()))
    if pool_size < size:
        raise InfeasibleError(f"not enough people: {pool_size} in the pool, {size} needed; no "
                              "relaxation of the quotas can help")
    qs = _quota_list(strata, quotas, size)
    status, _ = _find_panel(quota_system(strata, quotas, size), clock)
    if status == "feasible":
        return []
    if status == "infeasible":
        relaxation, status = _relax(strata, qs, size, clock)
        if status == "optimal":
            return relaxation or []
        if status == "beyond_flex":
            raise InfeasibleError("the quotas cannot be met, even relaxed as far as their flex "
                                  "bounds (min_flex/max_flex) allow; `sortition check` explains "
                                  "why")
    raise SolverTimeout(f"time limit ({limit:g} s) reached before the relaxation of the quotas "
                        "was determined; allow more time (--time-limit)")


def relaxation_json(relaxation: list[RelaxedQuota]) -> list[dict]:
    """The relaxed bounds as `lottery.json` and `audit.json` record them, in the tie rule's
    order (one-way quotas, then cross quotas, by the bytes of their features and values)."""
    rows = sorted(relaxation, key=lambda r: tie_order(r.features, r.values))
    return [{"features": list(r.features), "values": list(r.values),
             "from": [r.old_min, r.old_max], "to": [r.new_min, r.new_max]} for r in rows]


def relaxation_label(r: RelaxedQuota) -> str:
    """One line for people: `gender=woman: min 45 → 43` (and/or the maximum)."""
    parts = []
    if r.new_min != r.old_min:
        parts.append(f"min {r.old_min} → {r.new_min}")
    if r.new_max != r.old_max:
        parts.append(f"max {r.old_max} → {r.new_max}")
    return f"{r.label}: {', '.join(parts)}"


def feature_table(strata: Strata, quotas: Quotas, size: int) -> list[dict[str, Any]]:
    """Rows for the CLI's table: pool count and share next to each quota's bounds.

    One-way quotas first (spec order), then cross quotas (feature/value joined by " x ").
    """
    qs = _quota_list(strata, quotas, size)
    pool_size = int(sum(int(n) for n in strata.counts.tolist()))
    rows = []
    for q in qs:
        rows.append({
            "feature": " x ".join(q.features),
            "value": " x ".join(q.values),
            "pool": q.pool,
            "pool_share": q.pool / pool_size if pool_size else 0.0,
            "min": q.min,
            "max": q.max,
            "min_share": q.min / size if size else 0.0,
            "max_share": min(q.max, size) / size if size else 0.0,
            "shortfall": max(0, q.min - q.pool),
            "kind": "cross" if len(q.features) == 2 else "value",
        })
    return rows
