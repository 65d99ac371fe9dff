"""Quota-satisfying panels at stratum level, and the solvers that find them.

A panel is a vector of seats per stratum: x_s people from stratum s, 0 ≤ x_s ≤ n_s, Σ x_s = k,
and every quota group's seats within its [min, max]. Everything here uses OR-Tools only:
GLOP for linear programs and SCIP for the integer pricing problem. Every solver model takes
its quota groups from `quota_system`, and builds its rows with `add_quotas_lp` /
`add_quotas_cp` — except two that are shaped otherwise for speed, on the same groups and
bounds: the relaxed LEXIMIN's rows in the reparametrised seats a + b·z + s
(`leximin.relaxed_leximin`), and the walk's CP-SAT repair of an LP vertex, which keeps only the
seats of a neighbourhood free and the groups that count them (`decompose._repair`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from ..core.errors import InfeasibleError
from ..inputs.quotas import Quotas
from ..inputs.strata import Strata


@dataclass
class QuotaSystem:
    """The quota constraints in stratum space: each group is a set of strata with seat bounds.

    One group per quota row, in the order of the quotas (one-way quotas, then cross quotas),
    every row included (docs/draw-spec.md section 12.1): a row whose value — or feature — no
    stratum has is an empty group.
    """

    counts: np.ndarray  # int64 (S,), people per stratum
    size: int
    groups: list[np.ndarray]  # stratum indices of each quota group
    lo: np.ndarray  # int64 (G,)
    hi: np.ndarray  # int64 (G,)
    labels: list[str]
    # each group's quota: its feature(s) and value(s) (one for a one-way quota, two crossed)
    features: list[tuple[str, ...]] = field(default_factory=list)
    values: list[tuple[str, ...]] = field(default_factory=list)

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

    def rows(self, kept: np.ndarray | None = None) -> list[tuple[list[int], int, int]]:
        """Each group's strata and seat bounds, in group order; with `kept` (seats per stratum
        already taken), the bounds left for the other seats: every bound less the seats the
        group already has. What every solver model of the quotas is built from."""
        lo, hi = self.lo.tolist(), self.hi.tolist()
        out = []
        for g, group in enumerate(self.groups):
            base = 0 if kept is None else int(np.asarray(kept)[group].sum())
            out.append((group.tolist(), lo[g] - base, hi[g] - base))
        return out


def quota_label(features: tuple[str, ...], values: tuple[str, ...]) -> str:
    """`feature=value`, or `f0=v0 & f1=v1` for a cross quota."""
    return " & ".join(f"{f}={v}" for f, v in zip(features, values, strict=True))


def quota_system(strata: Strata, quotas: Quotas, size: int) -> QuotaSystem:
    """Translate quotas on feature values into groups of strata: the one mapping from a quota
    row to the strata it counts (those with its value of its feature, or both values)."""
    col = {f: j for j, f in enumerate(strata.features)}
    rows: list[tuple[tuple[str, ...], tuple[str, ...], int, int]] = [
        ((q.feature,), (q.value,), q.min, q.max) for q in quotas.values]
    rows += [(tuple(c.features), tuple(c.values), c.min, c.max) for c in quotas.cross]
    groups: list[np.ndarray] = []
    for features, values, _, _ in rows:
        if all(f in col for f in features):
            js = [col[f] for f in features]
            members = [i for i, key in enumerate(strata.keys)
                       if all(key[j] == v for j, v in zip(js, values, strict=True))]
        else:  # a feature no stratum has: nobody has its value
            members = []
        groups.append(np.array(members, dtype=np.int64))
    return QuotaSystem(np.asarray(strata.counts, dtype=np.int64), int(size), groups,
                       np.array([r[2] for r in rows], dtype=np.int64),
                       np.array([r[3] for r in rows], dtype=np.int64),
                       [quota_label(r[0], r[1]) for r in rows],
                       [r[0] for r in rows], [r[1] for r in rows])


def add_quotas_lp(solver: pywraplp.Solver, xs: list, system: QuotaSystem, *,
                  size: int | None = None, less: list | None = None,
                  kept: np.ndarray | None = None) -> list:
    """The panel in a linear solver (pywraplp): Σ_s xs_s = size (default the system's), then
    one ranged row per quota group, lo ≤ Σ_{s in group} xs_s ≤ hi (bounds as
    `QuotaSystem.rows(kept)`). With `less`, each stratum's seats are xs_s − less_s. Returns
    the group rows, in group order, for changing their bounds later."""
    seats = solver.Sum(xs) if less is None else solver.Sum(xs) - solver.Sum(less)
    solver.Add(seats == (system.size if size is None else size))
    terms = [[(x, 1.0)] if less is None else [(x, 1.0), (y, -1.0)]
             for x, y in zip(xs, less if less is not None else xs, strict=True)]
    out = []
    for members, lo, hi in system.rows(kept):
        ct = solver.Constraint(float(lo), float(hi))
        for i in members:
            for var, coef in terms[i]:
                ct.SetCoefficient(var, coef)
        out.append(ct)
    return out


def add_quotas_cp(model: cp_model.CpModel, xs: list, system: QuotaSystem, *,
                  size: int | None = None, kept: np.ndarray | None = None) -> None:
    """The panel in CP-SAT: Σ_s xs_s = size (default the system's), then for each quota group
    Σ_{s in group} xs_s ≥ lo and ≤ hi (bounds as `QuotaSystem.rows(kept)`). `xs[s]` may be
    any linear expression of a stratum's seats."""
    model.add(cp_model.LinearExpr.sum(xs) == (system.size if size is None else size))
    for members, lo, hi in system.rows(kept):
        expr = cp_model.LinearExpr.sum([xs[i] for i in members])
        model.add(expr >= lo)
        model.add(expr <= hi)


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
        add_quotas_lp(self.lp, self.lp_x, system)
        self.ip = pywraplp.Solver.CreateSolver("SCIP")
        self.ip.SetNumThreads(1)
        self.ip_x = [self.ip.IntVar(float(self.lower[i]), float(self.upper[i]), "")
                     for i in range(s)]
        add_quotas_lp(self.ip, self.ip_x, system)
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
