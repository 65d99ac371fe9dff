"""Writing target expected seats as a lottery of integer panels: a walk through faces.

The fair-lottery algorithms first find the expected seats per stratum, m, over the LP relaxation
of the panel polytope. Turning m into a lottery of integer panels is the expensive part when done
by column generation (about one integer program and one master LP per panel). The walk here
needs neither in the usual case:

1. Let c be the current point (initially m), with weight w left to share (initially 1).
2. Find an integer panel v on the smallest face containing c: every seat bound and quota bound
   that c meets with equality, v meets with equality too.
3. Move from c away from v as far as the constraints allow: c' = c + t (c − v). Then
   c = (t v + c') / (1 + t), so v gets weight w t / (1 + t) and the walk goes on from c' with
   weight w / (1 + t). Every expectation is preserved exactly; c' lies on a smaller face.

Panels are searched in the unit box around m (⌊m_s⌋ ≤ x_s ≤ ⌈m_s⌉), which keeps them close to the
current point, so steps are long and the weight left decays geometrically: a few hundred panels
for a thousand strata. A panel on the face is found in about one LP solve: GLOP's dual simplex
gives a vertex of the face (warm from the previous step: every seat is boxed, so the old basis
is made dual feasible by bound flips), then its few fractional seats are rounded, by enumeration
when there are at most ENUMERATE of them, else by one CP-SAT call on a neighbourhood (the
fractional seats plus the NEIGHBOURHOOD integral seats the objective cares least about; first
feasible rounding). Only when that fails does the search dive (fix a seat, re-solve), and
SCIP is called only when the dive fails. This matters when strata ≈ people: a vertex then has
dozens of fractional seats, and a dive costs one LP per seat. The walk stops when the weight
left is negligible. When it gets stuck (the point left is not a lottery of integer panels inside
the box) the caller finishes by column generation from the panels found.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import linear_solver_pb2, pywraplp
from ortools.sat.python import cp_model

from .panels import QuotaSystem, add_quotas_lp

TIGHT = 1e-7  # a bound within this many seats of the current point is treated as tight
ENUMERATE = 12  # round at most this many fractional seats by enumerating all roundings
SMALL_FACE = 400  # faces with fewer free seats than this are searched by the dive alone
NEIGHBOURHOOD = 64  # integral seats CP-SAT may also change when it rounds an LP vertex
REMAINDER = 1e-10  # stop when the weight left to share is below this
PRECISION = 1e-8  # stuck with less weight than this left: floating point precision is reached
ODDS_FLOOR = 1e-12  # fractional parts are clipped to [ODDS_FLOOR, 1 − ODDS_FLOOR] for log-odds
STALE = 1e-3  # an objective coefficient is re-sent to the LP only when it moved more than this


@dataclass
class Walk:
    """Panels and weights found by the walk; `remainder` is the weight not shared out."""

    panels: np.ndarray  # (P, S) int64, distinct
    weights: np.ndarray  # (P,) float, sums to 1 − remainder
    remainder: float
    steps: int
    lp_solves: int
    ip_solves: int
    stopped: str  # why the walk ended: "complete" when the remainder is negligible
    repairs: int = 0  # CP-SAT roundings of LP vertices
    point: np.ndarray | None = None  # expected seats of the weight left (remainder), if any


class _FaceModel:
    """One GLOP model of the panel polytope in the box, with bounds changed in place."""

    def __init__(self, system: QuotaSystem, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        # Without presolve GLOP keeps its basis when only bounds and objective change.
        # Dual simplex: every seat is boxed, so after the objective changes the old basis is made
        # dual feasible by bound flips and re-solved in a few pivots (measured: 2-3x faster
        # than the primal simplex here). The matrix is 0/1: no scaling needed.
        self.lp.SetSolverSpecificParametersAsString(
            "use_preprocessing: false use_dual_simplex: true use_scaling: false")
        self.x = [self.lp.NumVar(float(lo), float(hi), "")
                  for lo, hi in zip(lower.tolist(), upper.tolist(), strict=True)]
        self.groups = add_quotas_lp(self.lp, self.x, system)
        self.lb = lower.astype(float).copy()
        self.ub = upper.astype(float).copy()
        self.glo = system.lo.astype(float).copy()
        self.ghi = system.hi.astype(float).copy()
        self.coef = np.full(len(self.x), np.nan)  # the objective as the LP has it
        self.solves = 0
        self.repairs = 0

    def set_bounds(self, lb: np.ndarray, ub: np.ndarray) -> None:
        for i in np.flatnonzero((lb != self.lb) | (ub != self.ub)).tolist():
            self.x[i].SetBounds(float(lb[i]), float(ub[i]))
        self.lb, self.ub = lb.copy(), ub.copy()

    def set_groups(self, glo: np.ndarray, ghi: np.ndarray) -> None:
        for g in np.flatnonzero((glo != self.glo) | (ghi != self.ghi)).tolist():
            self.groups[g].SetBounds(float(glo[g]), float(ghi[g]))
        self.glo, self.ghi = glo.copy(), ghi.copy()

    def fix(self, i: int, value: float) -> None:
        self.x[i].SetBounds(value, value)
        self.lb[i] = self.ub[i] = value

    def set_objective(self, objective: np.ndarray, stale: float = 0.0) -> None:
        """Maximise objective·x; only coefficients of free seats that moved more than `stale`
        are sent (the others stay as they are: a slightly stale objective still gives a vertex
        of the face, and sending 20 000 coefficients costs more than the solve)."""
        obj = self.lp.Objective()
        change = (self.lb < self.ub) & ~(np.abs(objective - self.coef) <= stale)
        for i in np.flatnonzero(change).tolist():
            obj.SetCoefficient(self.x[i], float(objective[i]))
        self.coef[change] = objective[change]
        obj.SetMaximization()

    def solve(self) -> np.ndarray | None:
        """An optimal vertex for the objective (None if the face is empty)."""
        self.solves += 1
        if self.lp.Solve() != pywraplp.Solver.OPTIMAL:
            return None
        response = linear_solver_pb2.MPSolutionResponse()
        self.lp.FillSolutionResponseProto(response)  # all values at once: 6× faster
        v = np.array(response.variable_value, dtype=float)
        return np.where(self.lb < self.ub, v, self.lb)


class _FaceIP:
    """SCIP on the same face, for the rare face whose LP vertices do not round."""

    def __init__(self, system: QuotaSystem) -> None:
        self.ip = pywraplp.Solver.CreateSolver("SCIP")
        self.ip.SetNumThreads(1)
        self.ip.SetSolverSpecificParametersAsString("randomization/randomseedshift = 0\n")
        self.x = [self.ip.IntVar(0.0, float(n), "") for n in system.counts.tolist()]
        self.groups = add_quotas_lp(self.ip, self.x, system)
        self.solves = 0

    def solve(self, lb: np.ndarray, ub: np.ndarray, glo: np.ndarray, ghi: np.ndarray,
              objective: np.ndarray, deadline: float | None) -> np.ndarray | None:
        for i, x in enumerate(self.x):
            x.SetBounds(float(lb[i]), float(ub[i]))
        for g, ct in enumerate(self.groups):
            ct.SetBounds(float(glo[g]), float(ghi[g]))
        obj = self.ip.Objective()
        for i, x in enumerate(self.x):
            obj.SetCoefficient(x, float(objective[i]))
        obj.SetMaximization()
        if deadline is not None:
            self.ip.SetTimeLimit(max(1, int(1000 * (deadline - time.perf_counter()))))
        self.solves += 1
        if self.ip.Solve() not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return None
        return np.array([round(x.solution_value()) for x in self.x], dtype=float)


def _best_rounding(v: np.ndarray, frac: np.ndarray, objective: np.ndarray, member: np.ndarray,
                   glo: np.ndarray, ghi: np.ndarray, size: int) -> np.ndarray | None:
    """The rounding of v's fractional seats that meets every quota and is best for objective."""
    base = np.round(v)
    base[frac] = np.floor(v[frac])
    k = len(frac)
    bits = ((np.arange(1 << k)[:, None] >> np.arange(k)[None, :]) & 1).astype(float)
    sums = member @ base + bits @ member[:, frac].T  # (2^k, G)
    total = base.sum() + bits.sum(axis=1)
    ok = ((sums >= glo - 0.5) & (sums <= ghi + 0.5)).all(axis=1) & (np.abs(total - size) < 0.5)
    if not ok.any():
        return None
    score = np.where(ok, bits @ objective[frac], -np.inf)
    best = int(np.argmax(score))  # first maximum: deterministic
    base[frac] += bits[best]
    return base


def _repair(v: np.ndarray, frac: np.ndarray, objective: np.ndarray, member: np.ndarray,
            lb: np.ndarray, ub: np.ndarray, glo: np.ndarray, ghi: np.ndarray, size: int,
            extra: int = NEIGHBOURHOOD) -> np.ndarray | None:
    """Best rounding of v by CP-SAT, freeing its fractional seats and a few integral ones.

    The integral seats freed are the free ones the objective cares least about (the current
    point is furthest from their bounds), so a rounding can trade them for fractional ones.
    """
    base = np.round(v)
    free = np.flatnonzero((lb < ub) & (np.abs(v - base) <= 1e-7))
    order = np.argsort(np.abs(objective[free]), kind="stable")
    nb = np.sort(np.concatenate([frac, free[order[:extra]]]))
    fixed = base.copy()
    fixed[nb] = 0.0
    sums = member @ fixed
    sub = member[:, nb]
    model = cp_model.CpModel()
    xs = [model.new_int_var(int(np.floor(lb[i] + 1e-9)), int(np.ceil(ub[i] - 1e-9)), "")
          for i in nb.tolist()]
    for g in np.flatnonzero(sub.any(axis=1)).tolist():
        idx = np.flatnonzero(sub[g]).tolist()
        model.add_linear_constraint(sum(xs[j] for j in idx),
                                    int(np.ceil(glo[g] - sums[g] - 1e-9)),
                                    int(np.floor(ghi[g] - sums[g] + 1e-9)))
    model.add(sum(xs) == int(round(size - fixed.sum())))
    weights = np.round(objective[nb] * 1e6).astype(np.int64).tolist()
    model.maximize(sum(w * x for w, x in zip(weights, xs, strict=True)))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    # The first rounding found is good enough (the LP vertex already points the right way);
    # proving the best one, or presolving so small a model, costs 5-10x more.
    solver.parameters.stop_after_first_solution = True
    solver.parameters.cp_model_presolve = False
    solver.parameters.max_deterministic_time = 1.0
    if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    fixed[nb] = [solver.value(x) for x in xs]
    return fixed


def walk(system: QuotaSystem, target_seats: np.ndarray, *, deadline: float | None = None,
         seed: int = 0, leave_room: bool = False) -> Walk:
    """Share weight 1 between integer panels whose expected seats are `target_seats`.

    With `leave_room`, the walk stops early enough before `deadline` for `complete` to cover
    the point left (estimated from the walk's own pace: about one step per panel it needs).
    """
    member = system.membership().astype(float)
    size = system.size
    lower = np.floor(target_seats + TIGHT)
    upper = np.maximum(np.ceil(target_seats - TIGHT), lower)
    lower = np.clip(lower, 0, system.counts)
    upper = np.clip(upper, 0, system.counts)
    face = _FaceModel(system, lower, upper)
    ip: _FaceIP | None = None
    rng = np.random.default_rng(seed)
    lo, hi = system.lo.astype(float), system.hi.astype(float)
    cur = np.clip(target_seats.astype(float), lower, upper)
    rest = 1.0
    noise = 1e-6 * rng.standard_normal(len(cur))
    panels: list[tuple[np.ndarray, np.ndarray]] = []
    weights: list[float] = []
    steps = 0
    stopped = "complete"
    started = time.perf_counter()
    while True:
        steps += 1
        now = time.perf_counter()
        if deadline is not None and leave_room and steps > 1:
            pace = (now - started) / (steps - 1)
            needed = pace * np.ceil((cur > TIGHT).sum() / size * 1.3) * 1.5 + 1.0
            if now + needed > deadline:
                stopped = "time limit"
                break
        if deadline is not None and now > deadline:
            stopped = "time limit"
            break
        rounded = np.round(cur)
        if np.abs(cur - rounded).max() < TIGHT:
            if system.satisfied(rounded.astype(np.int64)):
                panels.append(_sparse(rounded))
                weights.append(rest)
                rest = 0.0
            else:
                stopped = "the point left is integral but breaks a quota"
            break
        at_lo = cur <= lower + TIGHT
        at_hi = cur >= upper - TIGHT
        cur = np.where(at_lo, lower, np.where(at_hi, upper, cur))
        sums = member @ cur
        g_lo = sums <= lo + TIGHT
        g_hi = sums >= hi - TIGHT
        flb = np.where(at_hi, upper, lower)
        fub = np.where(at_lo, lower, upper)
        glo = np.where(g_hi, hi, lo)
        ghi = np.where(g_lo, lo, hi)
        # Long steps: a seat the panel takes limits the step to f/(1−f) (f its fractional part),
        # a seat it leaves to (1−f)/f, so prefer seats by the log-odds of f. Shifted by log(rest),
        # the objective of a seat the last step did not touch barely changes (its f grows like
        # 1/rest), so the face LP re-solves in a few pivots. Fixed noise breaks ties.
        f = np.clip(cur - np.floor(cur), ODDS_FLOOR, 1 - ODDS_FLOOR)
        objective = np.log(f / (1 - f)) + np.log(rest) + noise
        face.set_bounds(flb, fub)
        face.set_groups(glo, ghi)
        v = _face_panel(face, objective, member, glo, ghi, size, STALE)
        if v is None and rest < PRECISION:
            break
        if v is None:
            if ip is None:
                ip = _FaceIP(system)
            v = ip.solve(flb, fub, glo, ghi, objective, deadline)
            if v is None:
                stopped = "no integer panel on the face of the point left"
                break
        d = cur - v
        free = ~(at_lo | at_hi)
        t = np.inf
        up, down = free & (d > 1e-12), free & (d < -1e-12)
        if up.any():
            t = min(t, float(((upper - cur)[up] / d[up]).min()))
        if down.any():
            t = min(t, float(((cur - lower)[down] / -d[down]).min()))
        dg = member @ d
        g_free = ~(g_lo | g_hi)
        up, down = g_free & (dg > 1e-12), g_free & (dg < -1e-12)
        if up.any():
            t = min(t, float(((hi - sums)[up] / dg[up]).min()))
        if down.any():
            t = min(t, float(((sums - lo)[down] / -dg[down]).min()))
        if not np.isfinite(t) or t <= 1e-12:
            stopped = "no room to move (numerical precision reached)"
            break
        panels.append(_sparse(v))
        weights.append(rest * t / (1 + t))
        rest /= 1 + t
        cur = np.clip(cur + t * d, lower, upper)
        if rest < REMAINDER:
            break
    out, w = _merge(panels, weights, system.n_strata)
    return Walk(out, w, max(0.0, 1.0 - float(w.sum())), steps, face.solves,
                0 if ip is None else ip.solves, stopped, face.repairs,
                None if rest == 0.0 else cur.copy())


def _face_panel(face: _FaceModel, objective: np.ndarray, member: np.ndarray, glo: np.ndarray,
                ghi: np.ndarray, size: int, stale: float = 0.0) -> np.ndarray | None:
    """An integer panel on the face: an LP vertex, its best rounding, or a dive towards one."""
    lb, ub = face.lb.copy(), face.ub.copy()
    try:
        face.set_objective(objective, stale)
        v = face.solve()
        while v is not None:
            off = np.abs(v - np.round(v))
            frac = np.flatnonzero(off > 1e-7)
            if frac.size == 0:
                return np.round(v)
            if frac.size <= ENUMERATE:
                x = _best_rounding(v, frac, objective, member, glo, ghi, size)
                if x is not None:
                    return x
            # One CP-SAT call on a neighbourhood of the vertex usually ends the search: about
            # one LP per panel instead of one per fractional seat. On a small face the LPs of
            # the dive are cheaper than building a CP-SAT model (measured: 200-row pool, 148
            # strata, 0.2 s by the dive, 0.35 s by CP-SAT); the choice is by size, never by
            # time, so the lottery stays deterministic.
            small = int((face.lb < face.ub).sum()) < SMALL_FACE
            for extra in () if small else (NEIGHBOURHOOD, 4 * NEIGHBOURHOOD):
                face.repairs += 1
                x = _repair(v, frac, objective, member, face.lb, face.ub, glo, ghi, size, extra)
                if x is not None:
                    return x
            # Fix the most fractional seat the way the objective prefers (the other way if that
            # empties the face); measured: about half the LP solves of fixing the most nearly
            # integral one first.
            i = int(frac[np.argmax(off[frac])])
            preferred = float(np.ceil(v[i]) if objective[i] > 0 else np.floor(v[i]))
            other = float(np.floor(v[i]) if preferred > v[i] else np.ceil(v[i]))
            for value in (preferred, other):
                face.fix(i, value)
                v = face.solve()
                if v is not None:
                    break
        return None
    finally:
        face.set_bounds(lb, ub)


def _sparse(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A panel as (strata with seats, seats): a panel holds ~k of S strata, and the walk keeps
    thousands of them when strata ≈ people (dense, 21 224 strata × 2 437 panels = 0.4 GB)."""
    x = np.round(v).astype(np.int64)
    nz = np.flatnonzero(x).astype(np.int32)
    return nz, x[nz]


def _merge(panels: list[tuple[np.ndarray, np.ndarray]], weights: list[float], n_strata: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct panels (dense, once) with their total weights, in order of first appearance."""
    index: dict[bytes, int] = {}
    out: list[tuple[np.ndarray, np.ndarray]] = []
    w: list[float] = []
    for (nz, seats), wt in zip(panels, weights, strict=True):
        key = nz.tobytes() + b"|" + seats.tobytes()
        if key in index:
            w[index[key]] += wt
        else:
            index[key] = len(out)
            out.append((nz, seats))
            w.append(wt)
    dense = np.zeros((len(out), n_strata), dtype=np.int64)
    for row, (nz, seats) in enumerate(out):
        dense[row, nz] = seats
    return dense, np.array(w)


@dataclass
class Completion:
    """Panels sharing the weight a stopped walk left, and how they were found."""

    panels: np.ndarray  # (P, S) int64
    weights: np.ndarray  # (P,) float, sums to the walk's remainder
    uncovered: int  # strata with expected seats left that no panel here holds
    lp_solves: int


def complete(system: QuotaSystem, target_seats: np.ndarray, found: Walk,
             deadline: float | None, *, seed: int = 0) -> Completion | None:
    """Share the weight a walk stopped by the time limit left, approximately but usably.

    The walk's lottery is exact for the weight it shared out; the point left (expected seats
    `found.point` for the weight `found.remainder`) would take thousands more steps when
    strata ≈ people. Here panels are chosen to *cover* it instead: each takes first the strata
    no completion panel holds yet, then those furthest behind their share. One LP then weighs
    them to give the largest fraction z of every stratum's target seats (walk + completion ≥
    z·target): the lottery is no longer exact, and the caller reports its certified gap. Stops
    at `deadline` (None: when every stratum is held); None when no panel could be found.
    """
    if found.point is None or found.remainder <= 0.0:
        return None
    member = system.membership().astype(float)
    size = system.size
    lower = np.clip(np.floor(target_seats + TIGHT), 0, system.counts)
    upper = np.clip(np.maximum(np.ceil(target_seats - TIGHT), lower), 0, system.counts)
    face = _FaceModel(system, lower, upper)
    glo, ghi = system.lo.astype(float), system.hi.astype(float)
    point = found.point
    owed = point > TIGHT
    plan = max(1, int(np.ceil(owed.sum() / size * 1.3)))  # panels to hold every stratum once
    noise = 1e-6 * np.random.default_rng(seed).standard_normal(len(point))
    held = np.zeros(len(point))
    panels: list[np.ndarray] = []
    until = (math.inf if deadline is None  # leave time for the LP
             else deadline - max(0.5, 0.1 * (deadline - time.perf_counter())))
    while time.perf_counter() < until:
        lag = point * max(plan, len(panels) + 1) - held  # seats behind its share
        objective = np.where(owed & (held == 0), 1.0, 0.0) + 1e-3 * np.tanh(lag) + noise
        objective[~owed] = -1.0
        v = _face_panel(face, objective, member, glo, ghi, size)
        if v is None:
            break
        panels.append(v)
        held += v
        if len(panels) >= plan and not (owed & (held == 0)).any():
            break
    if not panels:
        return None
    weights = _cover_weights(found, target_seats, np.array(panels), deadline)
    if weights is None:
        return None
    return Completion(np.round(np.array(panels)).astype(np.int64), weights,
                      int((owed & (held == 0)).sum()), face.solves)


def _cover_weights(found: Walk, target_seats: np.ndarray, panels: np.ndarray,
                   deadline: float | None) -> np.ndarray | None:
    """Weights (summing to the remainder) maximising min_s (walk_s + completion_s) / target_s."""
    base = found.weights @ found.panels.astype(float) if len(found.panels) else 0 * target_seats
    lp = pywraplp.Solver.CreateSolver("GLOP")
    if deadline is not None:
        lp.SetTimeLimit(max(1, int(1000 * (deadline - time.perf_counter()))))
    z = lp.NumVar(0.0, 1.0, "z")
    lam = [lp.NumVar(0.0, found.remainder, "") for _ in range(len(panels))]
    lp.Add(lp.Sum(lam) == found.remainder)
    rows = {}
    for i in np.flatnonzero(target_seats > TIGHT).tolist():
        ct = lp.Constraint(-float(base[i]), lp.infinity())
        ct.SetCoefficient(z, -float(target_seats[i]))
        rows[i] = ct
    for j, v in enumerate(panels):
        for i in np.flatnonzero(v).tolist():
            if i in rows:
                rows[i].SetCoefficient(lam[j], float(v[i]))
    lp.Maximize(z)
    if lp.Solve() != pywraplp.Solver.OPTIMAL:
        # out of time for the LP: equal shares still give a valid (if less fair) lottery
        return np.full(len(panels), found.remainder / len(panels))
    w = np.maximum(np.array([v.solution_value() for v in lam]), 0.0)
    return w * (found.remainder / w.sum()) if w.sum() > 0 else None
