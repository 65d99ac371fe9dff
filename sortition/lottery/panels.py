"""Quota-satisfying panels at stratum level, and the solvers that find them.

A panel is a vector of seats per stratum: x_s people from stratum s, 0 ≤ x_s ≤ n_s, Σ x_s = k,
and every quota group's seats within its [min, max]. Everything here uses OR-Tools only:
GLOP for linear programs and SCIP for the integer pricing problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import pywraplp

from ..core.errors import InfeasibleError
from ..inputs.quotas import Quotas
from ..inputs.strata import Strata


@dataclass
class QuotaSystem:
    """The quota constraints in stratum space: each group is a set of strata with seat bounds."""

    counts: np.ndarray  # int64 (S,), people per stratum
    size: int
    groups: list[np.ndarray]  # stratum indices of each quota group
    lo: np.ndarray  # int64 (G,)
    hi: np.ndarray  # int64 (G,)
    labels: list[str]

    @property
    def n_strata(self) -> int:
        return len(self.counts)

    def membership(self) -> np.ndarray:
        """(G, S) 0/1 matrix: which strata each group counts."""
        a = np.zeros((len(self.groups), self.n_strata), dtype=np.int64)
        for j, g in enumerate(self.groups):
            a[j, g] = 1
        return a

    def satisfied(self, x: np.ndarray) -> bool:
        """Does seat vector `x` meet every quota, the panel size and the stratum counts?"""
        x = np.asarray(x)
        if x.shape != self.counts.shape or (x < 0).any() or (x > self.counts).any():
            return False
        if int(x.sum()) != self.size:
            return False
        sums = np.array([int(x[g].sum()) for g in self.groups], dtype=np.int64)
        return bool(((sums >= self.lo) & (sums <= self.hi)).all())


def quota_system(strata: Strata, quotas: Quotas, size: int) -> QuotaSystem:
    """Translate quotas on feature values into groups of strata."""
    groups: list[np.ndarray] = []
    lo: list[int] = []
    hi: list[int] = []
    labels: list[str] = []
    keys = strata.keys
    for q in quotas.values:
        if q.feature not in strata.features:
            continue
        j = strata.features.index(q.feature)
        groups.append(np.array([i for i, key in enumerate(keys) if key[j] == q.value],
                               dtype=np.int64))
        lo.append(q.min)
        hi.append(q.max)
        labels.append(f"{q.feature}={q.value}")
    for c in quotas.cross:
        if not all(f in strata.features for f in c.features):
            continue
        j0, j1 = (strata.features.index(f) for f in c.features)
        groups.append(np.array([i for i, key in enumerate(keys)
                                if key[j0] == c.values[0] and key[j1] == c.values[1]],
                               dtype=np.int64))
        lo.append(c.min)
        hi.append(c.max)
        labels.append(f"{c.features[0]}={c.values[0]} & {c.features[1]}={c.values[1]}")
    return QuotaSystem(np.asarray(strata.counts, dtype=np.int64), int(size), groups,
                       np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64), labels)


def _add_panel_constraints(solver: pywraplp.Solver, xs: list, system: QuotaSystem) -> None:
    solver.Add(solver.Sum(xs) == system.size)
    for g, lo, hi in zip(system.groups, system.lo.tolist(), system.hi.tolist(), strict=True):
        ct = solver.Constraint(float(lo), float(hi))
        for i in g.tolist():
            ct.SetCoefficient(xs[i], 1.0)


class Pricer:
    """Best panel for given per-stratum values: max Σ y_s x_s over quota-satisfying panels.

    One LP model (GLOP) and one integer model (SCIP) are built once and reused; only the
    objective changes between calls. When the LP optimum happens to be integral it is also the
    integer optimum, and the (slower) integer solve is skipped.
    """

    def __init__(self, system: QuotaSystem, lower: np.ndarray | None = None,
                 upper: np.ndarray | None = None) -> None:
        self.system = system
        s = system.n_strata
        self.lower = np.zeros(s, dtype=np.int64) if lower is None else lower.astype(np.int64)
        self.upper = system.counts.copy() if upper is None else upper.astype(np.int64)
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        self.lp_x = [self.lp.NumVar(float(self.lower[i]), float(self.upper[i]), "")
                     for i in range(s)]
        _add_panel_constraints(self.lp, self.lp_x, system)
        self.ip = pywraplp.Solver.CreateSolver("SCIP")
        self.ip.SetNumThreads(1)
        self.ip_x = [self.ip.IntVar(float(self.lower[i]), float(self.upper[i]), "")
                     for i in range(s)]
        _add_panel_constraints(self.ip, self.ip_x, system)
        self.ip.SetSolverSpecificParametersAsString("randomization/randomseedshift = 0\n")
        self.lp_calls = 0
        self.ip_calls = 0

    def best(self, y: np.ndarray, *, exact: bool = True,
             deadline: float | None = None) -> PricingResult:
        """The panel maximising y·x, with a proven upper bound on that maximum.

        With `exact=False` only the LP is solved, and `panel` is None when its optimum is
        fractional.
        """
        obj = self.lp.Objective()
        for i, v in enumerate(y.tolist()):
            obj.SetCoefficient(self.lp_x[i], v)
        obj.SetMaximization()
        self.lp_calls += 1
        if self.lp.Solve() != pywraplp.Solver.OPTIMAL:
            raise InfeasibleError("no panel satisfies the quotas")
        lp_value = obj.Value()
        sol = np.array([v.solution_value() for v in self.lp_x])
        rounded = np.round(sol)
        if np.abs(sol - rounded).max() < 1e-9:
            x = rounded.astype(np.int64)
            value = float(y @ x)
            return PricingResult(x, value, max(value, lp_value))
        if not exact:
            return PricingResult(None, float("nan"), lp_value)
        obj = self.ip.Objective()
        for i, v in enumerate(y.tolist()):
            obj.SetCoefficient(self.ip_x[i], v)
        obj.SetMaximization()
        if deadline is not None:
            self.ip.SetTimeLimit(max(1, int(1000 * (deadline - time.perf_counter()))))
        self.ip_calls += 1
        status = self.ip.Solve()
        if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return PricingResult(None, float("nan"), lp_value)
        x = np.array([round(v.solution_value()) for v in self.ip_x], dtype=np.int64)
        value = float(y @ x)
        bound = value if status == pywraplp.Solver.OPTIMAL else min(lp_value, obj.BestBound())
        return PricingResult(x, value, max(value, bound))


@dataclass
class PricingResult:
    panel: np.ndarray | None
    value: float  # y·panel
    bound: float  # proven upper bound on max y·x over all panels
