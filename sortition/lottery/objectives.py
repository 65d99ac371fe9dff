"""Goldilocks and Diversimax lotteries over quota-satisfying panels.

**Goldilocks_γ** (Baharav & Flanigan, *Fair, manipulation-robust, and transparent sortition*,
EC 2024): with k seats and N people, minimise over lotteries

    G(π) = max_i π_i / (k/N)  +  γ · max_i (k/N) / π_i

— nobody much more likely than the average chance k/N, nobody much less (γ = 1 by default,
as in the paper's experiments). The maxima run over the people some quota-satisfying panel can
include: the others have probability 0 under every lottery, which would make G infinite for
all of them alike, so they are left out (and reported by the probabilities, 0).

G is convex and symmetric, so averaging probabilities inside a stratum never makes it worse:
the optimum is reached at stratum level. Write w for the smallest probability over k/N (the
*floor*) and f(w) for the smallest largest probability over k/N of a point with that floor:
f is convex and piecewise linear (the value of an LP whose right-hand side moves with w), and
G* = min_w f(w) + γ / w. It is minimised by cutting planes on w (Kelley's method in one
dimension): every LP solve gives f(w) and, from its duals, a line under f everywhere, so the
lowest point of `max(lines) + γ/w` is a **certified lower bound** on G*, and the search stops
when the best point found is within GOLD_TOL of it. The relaxed optimum (continuous seats) is
written as a lottery of panels by the face walk, like LEXIMIN's; when it is not a lottery of
panels, the same cutting planes run over lotteries of integer panels, each f(w) by column
generation (whose pricing bound gives the line). The lottery's certified gap is its G minus
that lower bound, in units of the objective.

**Diversimax.** Intersectional diversity: the number of distinct strata (feature combinations)
on the panel. That count is a property of a panel, not of expected seats — it is not a function
of the probabilities, so there is no relaxation over expected seats to optimise. First
D* = the largest number of distinct strata of any quota-satisfying panel (an integer program,
SCIP). Maximising the *expected* number of distinct strata over lotteries puts all the weight
on panels with D* strata and says nothing about who is drawn; among those lotteries we take the
LEXIMIN one (the fairest), by exact column generation stage by stage over the panels with D*
distinct strata (pricing: the panel integer program with the diversity constraint). When D* = k
(every seat in a stratum of its own, the usual case when strata are many) those panels are the
quota panels with at most one seat per stratum — a polytope like any other — so the relaxed
LEXIMIN (seats capped at 1, probabilities still per person) and the face walk apply, as for
LEXIMIN. Its gap is the largest certified stage gap (or the walk's shortfall), in probability;
D* itself is exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.linear_solver import pywraplp

from ..core.errors import InfeasibleError, InputError, SolverTimeout
from .leximin import (
    LotterySolution,
    Master,
    _check_time,
    _deadline,
    _decompose,
    _exact_leximin,
    _walk_solution,
    column_generation,
    relaxed_leximin,
)
from .panels import Pricer, PricingResult, QuotaSystem

GOLD_TOL = 1e-9  # stop when the objective is within this (relative) of its lower bound
KELLEY_ROUNDS = 200  # at most this many values of the floor w


def check_gamma(gamma: float) -> None:
    """--gamma is a finite number > 0 (exit 2 naming the option otherwise)."""
    if (isinstance(gamma, bool) or not isinstance(gamma, int | float)
            or not math.isfinite(gamma) or gamma <= 0):
        raise InputError(f"--gamma {gamma!r}: must be a finite number greater than 0 "
                         "(the weight of the low-probability term; 1 by default)")


def goldilocks_value(p: np.ndarray, counts: np.ndarray, size: int, gamma: float,
                     where: np.ndarray) -> float:
    """G(π) over the strata in `where` (people who can be selected at all)."""
    avg = size / float(np.asarray(counts)[counts > 0].sum())
    q = np.asarray(p, dtype=float)[where]
    if q.size == 0:
        return math.inf
    if (q <= 0).any():
        return math.inf
    return float(q.max() / avg + gamma * avg / q.min())


@dataclass
class _Cut:
    """One evaluation of f at w: f(w) = value, and f(v) ≥ slope·v − offset for every v."""

    w: float
    value: float
    slope: float
    offset: float
    payload: Any


def _model_min(cuts: list[_Cut], gamma: float, lo: float, hi: float) -> tuple[float, float]:
    """Lowest point of max_j(slope_j v − offset_j) + γ/v on [lo, hi] (convex: golden section)."""
    slopes = np.array([c.slope for c in cuts])
    offsets = np.array([c.offset for c in cuts])

    def model(v: float) -> float:
        return float(max(1.0, (slopes * v - offsets).max())) + gamma / v

    a, b = lo, hi
    r = (math.sqrt(5) - 1) / 2
    x1, x2 = b - r * (b - a), a + r * (b - a)
    f1, f2 = model(x1), model(x2)
    for _ in range(200):
        if f1 <= f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - r * (b - a)
            f1 = model(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + r * (b - a)
            f2 = model(x2)
        if b - a <= 1e-15 * max(1.0, b):
            break
    # The true minimum is at most the model anywhere; golden section on a convex function
    # brackets it, and the model is increasing away from the bracket: take the smallest end.
    v = min((lo, hi, a, b, x1, x2), key=model)
    return v, min(model(lo), model(hi), model(a), model(b))


def _kelley(evaluate: Callable[[float], _Cut | None], top: _Cut, lo: float, gamma: float,
            deadline: float | None) -> tuple[_Cut, float, int]:
    """Minimise f(w) + γ/w over [lo, top.w] (`top`: the evaluation at the largest floor): the
    best evaluation, a certified lower bound on the minimum, and the number of evaluations."""
    hi = top.w
    cuts = [top]
    rounds = 1
    while True:
        best = min(cuts, key=lambda c: c.value + gamma / c.w)
        reached = best.value + gamma / best.w
        v, bound = _model_min(cuts, gamma, lo, hi)
        # f ≥ 1 everywhere (the largest ratio is at least the average), hence the max(1, …).
        if reached - bound <= GOLD_TOL * reached or rounds >= KELLEY_ROUNDS:
            return best, min(bound, reached), rounds
        if min(abs(v - c.w) for c in cuts) <= 1e-13 * hi:
            return best, min(bound, reached), rounds  # the model cannot move: precision reached
        _check_time(deadline, "the Goldilocks optimisation")
        cut = evaluate(v)
        if cut is None:
            raise RuntimeError("Goldilocks: a floor below the largest one is infeasible")
        cuts.append(cut)
        rounds += 1


class _RelaxedFloor:
    """f over the LP relaxation: min a s.t. seats m in the panel polytope's relaxation,
    m_s ≥ w·c·n_s and m_s ≤ a·c·n_s for the strata that can be selected (c = k/N)."""

    def __init__(self, system: QuotaSystem, reach: np.ndarray, c: float) -> None:
        n = system.counts.astype(float)
        self.n, self.c, self.reach = n, c, reach
        lp = pywraplp.Solver.CreateSolver("GLOP")
        # Tighter than GLOP's default 1e-8 seats: the objective divides by small probabilities.
        lp.SetSolverSpecificParametersAsString(
            "primal_feasibility_tolerance: 1e-11 dual_feasibility_tolerance: 1e-11")
        self.lp = lp
        inf = lp.infinity()
        self.m = [lp.NumVar(0.0, float(n[s]) if reach[s] else 0.0, "")
                  for s in range(system.n_strata)]
        self.a = lp.NumVar(0.0, inf, "a")
        lp.Add(lp.Sum(self.m) == system.size)
        for g, lo, hi in zip(system.groups, system.lo.tolist(), system.hi.tolist(), strict=True):
            ct = lp.Constraint(float(lo), float(hi))
            for i in g.tolist():
                ct.SetCoefficient(self.m[i], 1.0)
        self.rows = {}
        for s in np.flatnonzero(reach).tolist():
            floor = lp.Constraint(0.0, inf)
            floor.SetCoefficient(self.m[s], 1.0)
            cap = lp.Constraint(0.0, inf)
            cap.SetCoefficient(self.a, c * n[s])
            cap.SetCoefficient(self.m[s], -1.0)
            self.rows[s] = floor
        lp.Minimize(self.a)

    def __call__(self, w: float) -> _Cut | None:
        """The cut at w; None when no relaxed point has that floor."""
        for s, floor in self.rows.items():
            floor.SetLb(w * self.c * self.n[s])
        status = self.lp.Solve()
        if status == pywraplp.Solver.INFEASIBLE:
            return None
        if status != pywraplp.Solver.OPTIMAL:
            raise RuntimeError("Goldilocks LP not solved")
        value = self.a.solution_value()
        # The floor rows' duals (all of one sign) are a subgradient of f in w.
        slope = sum(abs(floor.dual_value()) * self.c * self.n[s]
                    for s, floor in self.rows.items())
        point = np.array([x.solution_value() for x in self.m])
        return _Cut(w, value, slope, slope * w - value, point)


class _PanelFloor:
    """f over lotteries of integer panels, by column generation (a master LP over panels)."""

    def __init__(self, system: QuotaSystem, reach: np.ndarray, c: float,
                 columns: list[np.ndarray], deadline: float | None) -> None:
        n = system.counts.astype(float)
        self.n, self.c, self.reach, self.deadline = n, c, reach, deadline
        self.pricer = Pricer(system)
        lp = pywraplp.Solver.CreateSolver("GLOP")
        lp.SetSolverSpecificParametersAsString("use_preprocessing: false")
        self.lp = lp
        inf = lp.infinity()
        self.a = lp.NumVar(0.0, inf, "a")
        self.conv = lp.Constraint(1.0, 1.0)
        self.floors: dict[int, Any] = {}
        self.caps: dict[int, Any] = {}
        for s in np.flatnonzero(reach).tolist():
            self.floors[s] = lp.Constraint(0.0, inf)
            cap = lp.Constraint(0.0, inf)
            cap.SetCoefficient(self.a, c * n[s])
            self.caps[s] = cap
        lp.Minimize(self.a)
        self.columns: list[np.ndarray] = []
        self.vars: list = []
        self.seen: set[bytes] = set()
        self.rounds = 0
        for x in columns:
            self.add(x)

    def add(self, x: np.ndarray) -> bool:
        key = x.astype(np.int64).tobytes()
        if key in self.seen:
            return False
        self.seen.add(key)
        var = self.lp.NumVar(0.0, self.lp.infinity(), "")
        self.conv.SetCoefficient(var, 1.0)
        for s in np.flatnonzero(x).tolist():
            if s in self.floors:
                self.floors[s].SetCoefficient(var, float(x[s]))
                self.caps[s].SetCoefficient(var, -float(x[s]))
        self.columns.append(x.astype(np.int64))
        self.vars.append(var)
        return True

    def __call__(self, w: float) -> _Cut:
        strata = list(self.floors)
        cn = self.c * self.n[strata]
        for s, row in self.floors.items():
            row.SetLb(w * self.c * self.n[s])
        best_lower = -math.inf
        cut: tuple[float, float] | None = None
        while True:
            self.rounds += 1
            _check_time(self.deadline, "the Goldilocks optimisation")
            if self.lp.Solve() != pywraplp.Solver.OPTIMAL:
                raise RuntimeError("Goldilocks master LP not solved")
            value = self.a.solution_value()
            alpha = np.abs([self.floors[s].dual_value() for s in strata])
            beta = np.abs([self.caps[s].dual_value() for s in strata])
            total = float(beta @ cn)
            if total > 1.0:  # keep the dual feasible for the column of a
                beta = beta / total
            y = np.zeros(len(self.n))
            y[strata] = alpha - beta
            res = self.pricer.best(y, deadline=self.deadline)
            if res.panel is None:
                raise SolverTimeout("time limit reached during the Goldilocks optimisation")
            slope = float(alpha @ cn)
            lower = slope * w - res.bound  # f(v) ≥ slope·v − bound for every v
            if lower > best_lower:
                best_lower, cut = lower, (slope, res.bound)
            if value - best_lower <= GOLD_TOL * max(1.0, value) or not self.add(res.panel):
                break
        weights = np.maximum([v.solution_value() for v in self.vars], 0.0)
        keep = weights > 1e-12
        payload = (np.array([x for x, k in zip(self.columns, keep.tolist(), strict=True) if k]),
                   weights[keep] / weights[keep].sum())
        if cut is None:  # any finite bound beats -inf in the first round
            raise RuntimeError("Goldilocks pricing gave no finite bound")
        slope, offset = cut
        return _Cut(w, value, slope, offset, payload)


def goldilocks(system: QuotaSystem, *, gamma: float = 1.0, time_limit: float | None = None,
               log: Callable[[str], None] | None = None) -> LotterySolution:
    """The Goldilocks_γ lottery (see the module docstring), certified within its gap."""
    check_gamma(gamma)
    deadline = _deadline(time_limit)
    n = system.counts.astype(float)
    people = float(n.sum())
    c = system.size / people
    relaxed = relaxed_leximin(system, deadline=deadline)
    reach = (relaxed > 1e-12) & (n > 0)
    hi = float(relaxed[reach].min()) / c
    floor = _RelaxedFloor(system, reach, c)
    top = floor(hi)
    while top is None:  # the relaxed LEXIMIN's level is a hair beyond this LP's reach
        hi *= 1 - 1e-10
        top = floor(hi)
    # The optimum's w has γ/w ≤ G(w_hi) − 1 (f ≥ 1), which bounds the search below.
    lo = min(hi, gamma / (top.value + gamma / hi - 1.0 + 1e-12))
    best, bound, rounds = _kelley(floor, top, lo, gamma, deadline)
    target = np.where(reach, np.asarray(best.payload) / np.maximum(n, 1.0), 0.0)
    done, master, _pricer = _decompose(system, target, deadline, log)
    details = {"gamma": float(gamma), "floor_values": rounds}
    if done is not None:
        sol = _walk_solution(done, target, rounds, "relaxation+face walk", details)
    else:  # the panels' own optimum, with its own bound (and its own selectable strata)
        sol, reach, bound = _goldilocks_panels(system, gamma, master.columns, deadline,
                                               details, log)
    implied = sol.weights @ sol.panels.astype(float) / np.maximum(n, 1.0)
    value = goldilocks_value(implied, system.counts, system.size, gamma, reach)
    sol.target = implied
    sol.details["goldilocks_value"] = value
    sol.details["goldilocks_bound"] = bound
    sol.gap = max(0.0, value - bound)
    return sol


def _goldilocks_panels(system: QuotaSystem, gamma: float, columns: list[np.ndarray],
                       deadline: float | None, details: dict,
                       log: Callable[[str], None] | None
                       ) -> tuple[LotterySolution, np.ndarray, float]:
    """Goldilocks over lotteries of integer panels, when the relaxed optimum is not one: the
    lottery, the strata some panel includes, and the certified lower bound."""
    if log is not None:
        log("Goldilocks: the relaxed optimum is not a lottery of panels; column generation")
    n = system.counts.astype(float)
    c = system.size / float(n.sum())
    pricer = Pricer(system)
    columns = [x.copy() for x in columns]
    covered = np.array(columns).sum(axis=0) > 0 if columns else np.zeros(len(n), dtype=bool)
    reach = covered.copy()
    for s in np.flatnonzero((n > 0) & ~covered).tolist():
        _check_time(deadline, "the Goldilocks optimisation")
        e = np.zeros(len(n))
        e[s] = 1.0
        res = pricer.best(e, deadline=deadline)
        if res.panel is None and res.bound >= 1 - 1e-6:
            raise SolverTimeout("time limit reached during the Goldilocks optimisation")
        if res.panel is not None and res.panel[s] > 0:
            reach[s] = True
            columns.append(res.panel)
            covered |= res.panel > 0
    reach &= n > 0
    # The largest floor a lottery of panels reaches (maximin over the selectable strata).
    master = Master(system.n_strata)
    for x in columns:
        master.add(x)
    a = np.where(reach, n, 0.0)
    z, _bound, rounds = column_generation(master, pricer, a, np.zeros_like(a),
                                          deadline=deadline, what="the Goldilocks floor")
    hi = z / c
    floor = _PanelFloor(system, reach, c, master.columns, deadline)
    top = floor(hi)
    lo = min(hi, gamma / (top.value + gamma / hi - 1.0 + 1e-12))
    best, bound, evaluations = _kelley(floor, top, lo, gamma, deadline)
    panels, weights = best.payload
    details = dict(details, floor_values=evaluations)
    target = weights @ panels.astype(float) / np.maximum(n, 1.0)
    return (LotterySolution(panels.astype(np.int64), weights, target, 0.0, evaluations,
                            rounds + floor.rounds, "exact column generation", details),
            reach, bound)


# ---------------------------------------------------------------------------
# Diversimax


def max_distinct_strata(system: QuotaSystem, deadline: float | None = None
                        ) -> tuple[int, np.ndarray]:
    """D*: the most distinct strata any quota-satisfying panel holds, and one such panel."""
    n = system.counts
    ones = np.minimum(n, 1)
    if int(ones.sum()) >= system.size:
        try:  # every seat in a stratum of its own? (then D* = k, usually decided by one LP)
            res = Pricer(system, upper=ones).best(np.ones(len(n)), deadline=deadline)
        except InfeasibleError:
            res = None
        if res is not None and res.panel is not None:
            return system.size, res.panel
    ip = _diversity_model(system)
    ip.solver.Maximize(ip.solver.Sum(ip.y))
    if deadline is not None:
        _check_time(deadline, "the largest number of distinct strata")
        ip.solver.SetTimeLimit(max(1, int(1000 * (deadline - time.perf_counter()))))
    status = ip.solver.Solve()
    if status == pywraplp.Solver.INFEASIBLE:
        raise InfeasibleError("no panel satisfies the quotas")
    if status != pywraplp.Solver.OPTIMAL:
        raise SolverTimeout("time limit reached while finding the largest number of distinct "
                            "strata on a panel")
    x = np.array([round(v.solution_value()) for v in ip.x], dtype=np.int64)
    return int((x > 0).sum()), x


@dataclass
class _DiversityIP:
    solver: pywraplp.Solver
    x: list
    y: list


def _diversity_model(system: QuotaSystem) -> _DiversityIP:
    ip = pywraplp.Solver.CreateSolver("SCIP")
    ip.SetNumThreads(1)
    ip.SetSolverSpecificParametersAsString("randomization/randomseedshift = 0\n")
    xs = [ip.IntVar(0.0, float(n), "") for n in system.counts.tolist()]
    ys = [ip.IntVar(0.0, float(min(1, n)), "") for n in system.counts.tolist()]
    for x, y in zip(xs, ys, strict=True):
        ip.Add(y <= x)
    ip.Add(ip.Sum(xs) == system.size)
    for g, lo, hi in zip(system.groups, system.lo.tolist(), system.hi.tolist(), strict=True):
        ct = ip.Constraint(float(lo), float(hi))
        for i in g.tolist():
            ct.SetCoefficient(xs[i], 1.0)
    return _DiversityIP(ip, xs, ys)


class DiversityPricer:
    """Best panel for given per-stratum values among the panels with ≥ D distinct strata."""

    def __init__(self, system: QuotaSystem, distinct: int) -> None:
        self.system = system
        self.ones: Pricer | None = None
        self.ip: _DiversityIP | None = None
        if distinct == system.size:  # one seat per stratum: plain bounds x_s ≤ 1
            self.ones = Pricer(system, upper=np.minimum(system.counts, 1))
        else:
            self.ip = _diversity_model(system)
            self.ip.solver.Add(self.ip.solver.Sum(self.ip.y) >= distinct)

    def best(self, y: np.ndarray, *, exact: bool = True,
             deadline: float | None = None) -> PricingResult:
        if self.ones is not None:
            return self.ones.best(y, exact=exact, deadline=deadline)
        if not exact:
            return PricingResult(None, float("nan"), math.inf)
        assert self.ip is not None
        obj = self.ip.solver.Objective()
        obj.Clear()
        for i, v in enumerate(y.tolist()):
            obj.SetCoefficient(self.ip.x[i], v)
        obj.SetMaximization()
        if deadline is not None:
            self.ip.solver.SetTimeLimit(max(1, int(1000 * (deadline - time.perf_counter()))))
        status = self.ip.solver.Solve()
        if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return PricingResult(None, float("nan"), math.inf)
        x = np.array([round(v.solution_value()) for v in self.ip.x], dtype=np.int64)
        value = float(y @ x)
        bound = value if status == pywraplp.Solver.OPTIMAL else float(obj.BestBound())
        return PricingResult(x, value, max(value, bound))


def diversimax(system: QuotaSystem, *, time_limit: float | None = None,
               log: Callable[[str], None] | None = None) -> LotterySolution:
    """LEXIMIN over the panels with the most distinct strata (see the module docstring)."""
    deadline = _deadline(time_limit)
    if int(system.counts.sum()) < system.size:
        raise InfeasibleError("not enough people")
    distinct, first = max_distinct_strata(system, deadline)
    master = Master(system.n_strata)
    master.add(first)
    if distinct == system.size:
        # One seat per stratum: the panels are those of the quotas with x_s ≤ 1, a polytope
        # like any other, so the relaxed LEXIMIN (seats capped at 1, probabilities per person)
        # and the face walk apply, as for LEXIMIN itself.
        n = system.counts.astype(float)
        ones = np.minimum(system.counts, 1).astype(np.int64)
        levels: list[float] = []
        target = relaxed_leximin(system, deadline=deadline, stages_out=levels, upper=ones)
        capped = QuotaSystem(ones, system.size, system.groups, system.lo, system.hi,
                             system.labels)
        seats = target * n
        done, walked, _ = _decompose(capped, np.where(ones > 0, seats, 0.0), deadline, log)
        if done is not None:
            sol = _walk_solution(done, target, len(levels), "relaxation+face walk",
                                 {"distinct_strata": distinct})
            return sol
        for x in walked.columns:
            master.add(x)
    pricer = DiversityPricer(system, distinct)
    sol = _exact_leximin(system, master, pricer, deadline, 0, log)  # type: ignore[arg-type]
    sol.details["distinct_strata"] = distinct
    sol.gap = float(sol.details.get("stage_gap", 0.0))
    return sol
