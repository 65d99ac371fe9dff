"""Fair lotteries over quota-satisfying panels: LEXIMIN, maximin and Nash, at stratum level.

People with the same quota features (a stratum) are interchangeable, so every computation runs on
seats per stratum. The method for LEXIMIN:

1. **Relaxed LEXIMIN.** Over the LP relaxation of the panel polytope (continuous seats per
   stratum), maximise the smallest selection probability, fix the strata that are at that level
   in every optimum (those with a positive dual), and repeat. This is a short sequence of small
   LPs and gives an upper bound, in the leximin order, on what any lottery can achieve.
2. **Decomposition.** Write the relaxed expected seats m as a lottery over integer panels, first
   by the face walk of `decompose` (no master LP, rarely an integer program); if the walk gets
   stuck, by column generation from the panels it found: a master LP
   `max t s.t. Σ_j λ_j x_j ≥ t·m, Σ_j λ_j = 1` over a growing set of panels x_j, priced by an
   integer program. A lottery reaching m is the exact LEXIMIN (nothing beats the relaxation);
   the reported gap is the largest shortfall of any stratum's probability from m.
3. **Fallback.** If the decomposition proves t < 1 (the relaxed optimum is not a lottery of
   integer panels), the exact LEXIMIN is computed stage by stage by column generation
   (Flanigan et al., Nature 2021), at stratum level.

Maximin is the first stage alone (its relaxed point, decomposed). Nash maximises Σ_i log π_i
over the relaxation by cutting planes (tangents of the logarithm added until the gap is below
tolerance), then decomposes like LEXIMIN.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import pywraplp

from ..core.errors import InfeasibleError, SolverTimeout
from .decompose import Walk, complete, walk
from .panels import Pricer, QuotaSystem, add_quotas_lp

DUAL_TOL = 1e-9  # a stratum's scaled dual above this fixes it at the current level
DECOMP_TOL = 1e-9  # the decomposition is exact when t ≥ 1 − DECOMP_TOL
CG_TOL = 1e-9  # column generation stops when the certified gap is below this
WALK_GAP = 1e-8  # the face walk's lottery is accepted within this probability of the target


@dataclass
class LotterySolution:
    """Panels (seats per stratum), their probabilities, and how they were certified."""

    panels: np.ndarray  # (P, S) int64
    weights: np.ndarray  # (P,) float, sums to 1
    target: np.ndarray  # (S,) per-person probability the method aimed for (upper bound)
    gap: float  # certified: how far the lottery may be from optimal, in probability
    stages: int
    rounds: int
    method: str
    details: dict[str, float | int | str] = field(default_factory=dict)


def _deadline(time_limit: float | None) -> float | None:
    return None if time_limit is None else time.perf_counter() + time_limit


def _check_time(deadline: float | None, what: str, bound: float | None = None) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise SolverTimeout(f"time limit reached during {what}", bound)


# ---------------------------------------------------------------------------
# 1. Relaxed LEXIMIN


def _relaxation_model(system: QuotaSystem) -> tuple[pywraplp.Solver, list]:
    lp = pywraplp.Solver.CreateSolver("GLOP")
    ms = [lp.NumVar(0.0, float(n), "") for n in system.counts.tolist()]
    add_quotas_lp(lp, ms, system)
    return lp, ms


def relaxed_leximin(system: QuotaSystem, *, deadline: float | None = None,
                    stages_out: list[float] | None = None,
                    upper: np.ndarray | None = None) -> np.ndarray:
    """LEXIMIN per-person probabilities over the LP relaxation (one value per stratum).

    `upper`: seats per stratum at most this (default: the stratum's people), probabilities
    still per person (seats / people).

    Seats are written m_i = a_i + b_i z + s_i with s_i ≥ 0: a free stratum has a_i = 0,
    b_i = n_i (its probability is at least the level z), a fixed one a_i = its level's seats,
    b_i = 0. The model then has one row per quota group, not one more per stratum, which makes
    each stage 10-30x faster when strata ≈ people; a stratum is at the level in every optimum
    when s_i has a nonzero reduced cost (the dual of the row m_i ≥ n_i z it replaces). The
    upper bounds m_i ≤ n_i of free strata are rows added only when a solution breaks one.
    """
    n = system.counts.astype(float)
    cap = n if upper is None else np.minimum(np.asarray(upper, dtype=float), n)
    S = system.n_strata
    lp = pywraplp.Solver.CreateSolver("GLOP")
    inf = lp.infinity()
    z = lp.NumVar(0.0, 1.0, "z")
    ss = [lp.NumVar(0.0, inf, "") for _ in range(S)]  # capped by lazy rows while free
    a = np.zeros(S)
    b = n.copy()
    member = system.membership()
    rows = [lp.Constraint(float(system.size), float(system.size))]
    lows = [float(system.size)]
    highs = [float(system.size)]
    groups = [np.arange(S)]
    for g, lo, hi in zip(system.groups, system.lo.tolist(), system.hi.tolist(), strict=True):
        rows.append(lp.Constraint(float(lo), float(hi)))
        lows.append(float(lo))
        highs.append(float(hi))
        groups.append(g)
    for ct, g in zip(rows, groups, strict=True):
        for i in g.tolist():
            ct.SetCoefficient(ss[i], 1.0)
    full = np.vstack([np.ones((1, S), dtype=np.int64), member]).astype(float)

    def update_rows() -> None:
        ca, cb = full @ a, full @ b
        for j, ct in enumerate(rows):
            ct.SetCoefficient(z, float(cb[j]))
            ct.SetBounds(lows[j] - float(ca[j]), highs[j] - float(ca[j]))

    update_rows()
    caps: dict[int, object] = {}  # lazy rows b_i z + s_i ≤ n_i − a_i
    lp.Maximize(z)
    fixed = np.full(S, np.nan)
    while np.isnan(fixed).any():
        _check_time(deadline, "the relaxed LEXIMIN")
        while True:
            status = lp.Solve()
            if status != pywraplp.Solver.OPTIMAL and np.isfinite(fixed).any():
                # GLOP's presolve can call a stage infeasible when a fixed stratum's lower bound
                # sits a hair below a tight quota: solve again without it.
                lp.SetSolverSpecificParametersAsString("use_preprocessing: false")
                status = lp.Solve()
            if status != pywraplp.Solver.OPTIMAL:
                if stages_out is None or not stages_out:
                    raise InfeasibleError("no panel satisfies the quotas (the LP relaxation is "
                                          "infeasible)")
                raise RuntimeError("relaxed LEXIMIN stage became infeasible (numerical trouble)")
            zv = z.solution_value()
            sv = np.array([x.solution_value() for x in ss])
            over = [i for i in np.flatnonzero(a + b * zv + sv > cap + 1e-9).tolist()
                    if i not in caps]
            if not over:
                break
            for i in over:
                ct = lp.Constraint(-inf, float(cap[i] - a[i]))
                ct.SetCoefficient(ss[i], 1.0)
                ct.SetCoefficient(z, float(b[i]))
                caps[i] = ct
        free = np.flatnonzero(np.isnan(fixed))
        duals = np.array([abs(ss[i].reduced_cost()) * n[i] if sv[i] <= 1e-9 else 0.0
                          for i in free.tolist()])
        newly = free[duals > DUAL_TOL]
        if newly.size == 0:
            newly = _tight_by_probing(lp, ss, z, free, zv, n)
        if stages_out is not None:
            stages_out.append(zv)
        for i in newly.tolist():
            fixed[i] = zv
            a[i] = max(0.0, zv * n[i] * (1 - 1e-12) - 1e-12)
            b[i] = 0.0
            ss[i].SetBounds(0.0, max(0.0, float(cap[i] - a[i])))
            if i in caps:
                caps[i].SetCoefficient(z, 0.0)
                caps[i].SetUb(float(cap[i] - a[i]))
        update_rows()
    return fixed


def _tight_by_probing(lp, ss, z, free, zv, n) -> np.ndarray:
    """Strata that cannot rise above level zv: the slow, sure test when duals say nothing."""
    z.SetLb(zv * (1 - 1e-12))
    tight = []
    for i in free.tolist():
        obj = lp.Objective()
        obj.Clear()
        obj.SetCoefficient(ss[i], 1.0)
        obj.SetCoefficient(z, float(n[i]))
        obj.SetMaximization()
        lp.Solve()
        if ss[i].solution_value() + n[i] * z.solution_value() <= zv * n[i] * (1 + 1e-9) + 1e-12:
            tight.append(i)
    z.SetLb(0.0)
    lp.Maximize(z)
    if not tight:  # numerically every stratum can rise: fix them all at this level
        tight = free.tolist()
    return np.array(tight, dtype=np.int64)


# ---------------------------------------------------------------------------
# 2. Column generation master


class Master:
    """max z  s.t.  Σ_j λ_j x_js − a_s z ≥ b_s (every stratum s),  Σ_j λ_j = 1,  λ ≥ 0.

    With a = m, b = 0 it decomposes target seats m; with a_s = n_s on the free strata and
    b_s = v_s·n_s on the fixed ones it is a LEXIMIN stage. Columns persist across uses.
    """

    def __init__(self, n_strata: int) -> None:
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        # The master only grows by columns: skipping presolve and scaling makes re-solves cheaper.
        self.lp.SetSolverSpecificParametersAsString("use_preprocessing: false use_scaling: false")
        inf = self.lp.infinity()
        self.z = self.lp.NumVar(-inf, inf, "z")
        self.rows = [self.lp.Constraint(0.0, inf) for _ in range(n_strata)]
        self.conv = self.lp.Constraint(1.0, 1.0)
        self.lp.Maximize(self.z)
        self.columns: list[np.ndarray] = []
        self.vars: list = []
        self._seen: set[bytes] = set()
        self.a = np.zeros(n_strata)
        self.b = np.zeros(n_strata)

    def set_targets(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a, self.b = a.astype(float), b.astype(float)
        for row, ai, bi in zip(self.rows, self.a.tolist(), self.b.tolist(), strict=True):
            row.SetCoefficient(self.z, -ai)
            row.SetLb(bi)

    def add(self, x: np.ndarray) -> bool:
        key = x.astype(np.int64).tobytes()
        if key in self._seen:
            return False
        self._seen.add(key)
        var = self.lp.NumVar(0.0, self.lp.infinity(), "")
        for i in np.flatnonzero(x).tolist():
            self.rows[i].SetCoefficient(var, float(x[i]))
        self.conv.SetCoefficient(var, 1.0)
        self.columns.append(x.astype(np.int64))
        self.vars.append(var)
        return True

    def solve(self) -> tuple[float, np.ndarray, float]:
        """(z, y, μ): optimum, stratum duals (≥ 0, a·y = 1) and the convexity dual.

        Dual sign conventions differ between LP solvers, so y is oriented by a·y = 1 and μ is
        recovered from complementary slackness (μ = y·x_j for every column in use).
        """
        status = self.lp.Solve()
        if status == pywraplp.Solver.ABNORMAL:  # numerical trouble: again, scaled
            self.lp.SetSolverSpecificParametersAsString("use_preprocessing: false")
            status = self.lp.Solve()
        if status != pywraplp.Solver.OPTIMAL:
            raise RuntimeError(f"master LP not solved (status {status})")
        raw = np.array([r.dual_value() for r in self.rows])
        y = -raw if float(-raw @ self.a) >= float(raw @ self.a) else raw
        y = np.maximum(y, 0.0)
        w = self.weights()
        used = np.flatnonzero(w > 1e-12)
        mu = max((float(y @ self.columns[j]) for j in used.tolist()), default=0.0)
        return self.z.solution_value(), y, mu

    def weights(self) -> np.ndarray:
        w = np.array([v.solution_value() for v in self.vars])
        return np.maximum(w, 0.0)


def column_generation(master: Master, pricer: Pricer, a: np.ndarray, b: np.ndarray, *,
                      deadline: float | None, what: str, extra_columns: int = 4,
                      smoothing: float = 0.5, stop_at: float | None = None,
                      log: Callable[[str], None] | None = None) -> tuple[float, float, int]:
    """Solve the master to proven optimality; returns (z, certified upper bound, rounds).

    Several columns per round: the exact pricing panel at smoothed duals (Wentges smoothing
    towards the duals with the best bound so far), plus cheap LP-priced panels at perturbed
    duals. Stops when the pricing bound certifies optimality within CG_TOL, or when z reaches
    `stop_at` (a value known to be an upper bound).
    """
    master.set_targets(a, b)
    best_bound = math.inf
    center: np.ndarray | None = None
    rounds = 0
    while True:
        rounds += 1
        z, y, mu = master.solve()
        if stop_at is not None and z >= stop_at - CG_TOL:
            return z, min(best_bound, stop_at), rounds
        _check_time(deadline, what, best_bound if best_bound < math.inf else None)
        ya = float(a @ y)
        if ya <= 0:
            raise RuntimeError("degenerate master duals")
        y = y / ya
        trial = y if center is None else smoothing * center + (1 - smoothing) * y
        trial = trial / float(a @ trial)
        result = pricer.best(trial, deadline=deadline)
        if result.panel is None:
            raise SolverTimeout(f"time limit reached during {what}", best_bound)
        panel = result.panel
        bound = result.bound - float(b @ trial)
        if bound < best_bound:
            best_bound, center = bound, trial
        added = 0
        if panel @ y - mu > CG_TOL:
            added += master.add(panel)
        if not added and center is not None and trial is not y:
            result = pricer.best(y, deadline=deadline)  # mis-priced: price at the true duals
            if result.panel is None:
                raise SolverTimeout(f"time limit reached during {what}", best_bound)
            panel = result.panel
            bound = result.bound - float(b @ y)
            if bound < best_bound:
                best_bound, center = bound, y
            if panel @ y - mu > CG_TOL:
                added += master.add(panel)
        if log is not None and rounds % 25 == 0:
            log(f"{what}: round {rounds}, value {z:.9g}, bound {best_bound:.9g}, "
                f"{len(master.columns)} panels")
        if best_bound - z <= CG_TOL * max(1.0, abs(z)):
            return z, best_bound, rounds
        if not added:
            # No improving panel: optimal, unless the pricing was cut short by the deadline.
            _check_time(deadline, what, best_bound)
            return z, max(z, min(best_bound, z + CG_TOL)), rounds
        # Cheap extra columns: discourage the strata just used, LP pricing only.
        last = panel
        y_alt = y.copy()
        for _ in range(extra_columns):
            y_alt[last > 0] *= 0.3
            alt = pricer.best(y_alt, exact=False)
            if alt.panel is None:
                break
            if alt.panel @ y - mu > CG_TOL:
                master.add(alt.panel)
            last = alt.panel


# ---------------------------------------------------------------------------
# 3. Algorithms


def _fixed_bounds(system: QuotaSystem, p_zero: np.ndarray) -> Pricer:
    upper = system.counts.copy()
    upper[p_zero] = 0
    return Pricer(system, upper=upper)


def leximin(system: QuotaSystem, *, time_limit: float | None = None,
            log: Callable[[str], None] | None = None) -> LotterySolution:
    """Exact LEXIMIN lottery at stratum level, certified."""
    deadline = _deadline(time_limit)
    levels: list[float] = []
    target = relaxed_leximin(system, deadline=deadline, stages_out=levels)
    n = system.counts.astype(float)
    m = target * n
    done, master, pricer = _decompose(system, target, deadline, log)
    if done is not None:
        return _walk_solution(done, target, len(levels), "relaxation+face walk")
    try:
        t, bound, rounds = column_generation(master, pricer, m, np.zeros_like(m),
                                             deadline=deadline, what="the LEXIMIN decomposition",
                                             stop_at=1.0, log=log)
    except SolverTimeout:
        raise _timeout(master, n, float(target.min()), target) from None
    weights = master.weights()
    if t >= 1 - DECOMP_TOL:
        return _solution(master, weights, target, len(levels), rounds, "relaxation+decomposition",
                         {"decomposition_t": t, "decomposition_bound": bound})
    # The relaxed optimum is not a lottery of integer panels: exact stages.
    return _exact_leximin(system, master, pricer, deadline, rounds, log)


def _decompose(system: QuotaSystem, target: np.ndarray, deadline: float | None,
               log: Callable[[str], None] | None) -> tuple[Walk | None, Master, Pricer]:
    """Write the target as a lottery by the face walk; else a master seeded with its panels.

    The walk is accepted when the lottery it gives reaches the target within WALK_GAP for
    every stratum; otherwise column generation finishes from the panels it found.
    """
    n = system.counts.astype(float)
    found = walk(system, target * n, deadline=deadline, leave_room=True)
    if len(found.panels):
        w = found.weights / found.weights.sum()
        implied = w @ found.panels.astype(float) / n
        if float((target - implied).max()) <= WALK_GAP:
            return found, None, None  # type: ignore[return-value]
    if found.stopped == "time limit":
        raise _walk_timeout(system, found, target, deadline)
    if log is not None:
        log(f"face walk stopped ({found.stopped}, weight left {found.remainder:.3g}): "
            "finishing by column generation")
    _check_time(deadline, "the decomposition")
    zero = target <= 1e-12
    pricer = _fixed_bounds(system, zero)
    master = Master(system.n_strata)
    for x in found.panels:
        master.add(x)
    if not master.columns:
        y = np.where(zero, 0.0, 1.0 / np.maximum(target * n, 1e-9))
        try:
            first = pricer.best(y)
        except InfeasibleError:
            first = None
        if first is None or first.panel is None:
            # Maximin's relaxed point is one optimum among many: a stratum it leaves empty may
            # still be needed by every panel. Any panel seeds the master.
            first = Pricer(system).best(y)
        if first.panel is None:
            raise InfeasibleError("no panel satisfies the quotas")
        master.add(first.panel)
    return None, master, pricer


def _walk_timeout(system: QuotaSystem, found: Walk, target: np.ndarray,
                  deadline: float | None) -> SolverTimeout:
    """The walk ran out of time: cover the point it left, so that nobody is left at zero."""
    n = system.counts.astype(float)
    shared = f"{1 - found.remainder:.6g} of the weight shared out exactly"
    done = (complete(system, target * n, found, deadline)
            if deadline is not None and len(found.panels) else None)
    if done is not None:
        panels = np.vstack([found.panels, done.panels])
        weights = np.concatenate([found.weights, done.weights])
        merged = Walk(panels, weights, 0.0, found.steps, found.lp_solves + done.lp_solves,
                      found.ip_solves, found.stopped, found.repairs)
        partial = _walk_solution(merged, target, 0, "face walk stopped by the time limit, "
                                 "rest covered approximately",
                                 {"walk_shared": 1 - found.remainder,
                                  "cover_panels": len(done.panels),
                                  "cover_uncovered": done.uncovered})
        shared += f", the rest covered by {len(done.panels)} panels"
    elif len(found.panels):
        partial = _walk_solution(found, target, 0, "face walk, stopped by the time limit")
    else:
        partial = None
    return SolverTimeout(f"time limit reached during the decomposition (face walk, {shared})",
                         float(target.min()), partial)


def _walk_solution(found: Walk, target: np.ndarray, stages: int, method: str,
                   details: dict | None = None) -> LotterySolution:
    w = found.weights / found.weights.sum()
    return LotterySolution(found.panels, w, target, 0.0, stages, found.steps, method,
                           dict(details or {}, walk_steps=found.steps,
                                walk_lp_solves=found.lp_solves,
                                walk_ip_solves=found.ip_solves,
                                walk_cpsat_solves=found.repairs,
                                walk_remainder=found.remainder))


def _exact_leximin(system: QuotaSystem, master: Master, pricer: Pricer,
                   deadline: float | None, rounds: int,
                   log: Callable[[str], None] | None) -> LotterySolution:
    n = system.counts.astype(float)
    fixed = np.full(system.n_strata, np.nan)
    stages = 0
    worst_gap = 0.0
    while np.isnan(fixed).any():
        stages += 1
        free = np.isnan(fixed)
        a = np.where(free, n, 0.0)
        b = np.where(free, 0.0, np.nan_to_num(fixed) * n * (1 - 1e-10))
        z, bound, r = column_generation(master, pricer, a, b, deadline=deadline,
                                        what=f"LEXIMIN stage {stages}", log=log)
        rounds += r
        worst_gap = max(worst_gap, bound - z)
        _, y, _ = master.solve()
        scaled = y * n
        newly = np.flatnonzero(free & (scaled > DUAL_TOL))
        if newly.size == 0:
            newly = np.flatnonzero(free)
        fixed[newly] = z
    weights = master.weights()
    return _solution(master, weights, fixed, stages, rounds, "exact column generation",
                     {"stage_gap": worst_gap})


def maximin(system: QuotaSystem, *, time_limit: float | None = None,
            log: Callable[[str], None] | None = None) -> LotterySolution:
    """A lottery maximising the smallest selection probability (LEXIMIN's first stage).

    The first relaxed stage gives the optimum value z and one relaxed point reaching it; the
    face walk writes that point as a lottery. Otherwise column generation maximises the
    smallest probability over integer panels directly.
    """
    deadline = _deadline(time_limit)
    value, point = _relaxed_maximin(system)
    n = system.counts.astype(float)
    done, master, pricer = _decompose(system, point / n, deadline, log)
    if done is not None:
        sol = _walk_solution(done, np.full(system.n_strata, value), 1, "relaxation+face walk",
                             {"maximin_bound": value})
        implied = sol.weights @ sol.panels.astype(float) / n
        sol.details["maximin_value"] = float(implied.min())
        return sol
    pricer = Pricer(system)
    z, bound, rounds = column_generation(master, pricer, n, np.zeros_like(n), deadline=deadline,
                                         what="maximin", stop_at=value, log=log)
    weights = master.weights()
    target = np.full(system.n_strata, value)
    sol = _solution(master, weights, target, 1, rounds, "column generation",
                    {"maximin_value": z, "maximin_bound": bound})
    sol.gap = max(0.0, bound - z)
    return sol


def _relaxed_maximin(system: QuotaSystem) -> tuple[float, np.ndarray]:
    """The largest smallest probability over the relaxation, and expected seats reaching it."""
    lp, ms = _relaxation_model(system)
    z = lp.NumVar(0.0, 1.0, "z")
    for m, n in zip(ms, system.counts.tolist(), strict=True):
        ct = lp.Constraint(0.0, lp.infinity())
        ct.SetCoefficient(m, 1.0)
        ct.SetCoefficient(z, -float(n))
    lp.Maximize(z)
    if lp.Solve() != pywraplp.Solver.OPTIMAL:
        raise InfeasibleError("no panel satisfies the quotas (the LP relaxation is infeasible)")
    point = np.array([m.solution_value() for m in ms])
    return z.solution_value(), np.clip(point, 0.0, system.counts.astype(float))


TANGENT_RATIO = 2.0


def tangent_points(low: float) -> list[float]:
    """Where the first tangents of log go, for a probability known to be at least `low`:
    `low`, 2·`low`, 4·`low`, … and 1. Between two of them the upper model of log is within
    log 2 − 1 − log log 2 ≈ 0.06 of it, and Kelley's cutting planes converge in a few dozen
    rounds (measured: 500-row pool, 297 strata, 22 rounds, 0.4 s; 2 000 rows, 614 strata, 28
    rounds, 1.5 s); from four tangents near k/N they zigzag (500 rounds and 130 s on the first,
    the tolerance still not reached)."""
    q = max(float(low), 1e-9)
    out = []
    while q < 1.0 / math.sqrt(TANGENT_RATIO):  # none nearly alike (GLOP's precision needs that)
        out.append(q)
        q *= TANGENT_RATIO
    return out + [1.0]


STALL = 20


def nash(system: QuotaSystem, *, time_limit: float | None = None, tol: float = 1e-9,
         log: Callable[[str], None] | None = None) -> LotterySolution:
    """Maximise Σ_i log π_i (the Nash welfare) over the relaxation, then decompose.

    The logarithm is concave, so it is approximated from above by its tangents; each round adds
    the tangent at the current probabilities of the strata where the model overestimates most
    (Kelley's cutting planes), until the LPs' optimistic value and the best true objective met
    agree within `tol` per person, or the gap has stopped shrinking (the LP's precision): the
    gap left is reported, `nash_welfare_gap`.
    """
    deadline = _deadline(time_limit)
    relaxed = relaxed_leximin(system, deadline=deadline)
    positive = relaxed > 1e-12
    lp, ms = _relaxation_model(system)
    n = system.counts.astype(float)
    # By concavity the optimum p has Σ n_i p'_i / p_i ≤ Σ n_i for every feasible p', so
    # p_i ≥ n_i p'_i / Σ n (p' = the relaxed LEXIMIN): a floor that keeps tangents well scaled.
    floor = np.where(positive, n * relaxed / float(n[positive].sum()) * (1 - 1e-9), 0.0)
    us = []
    for i in range(system.n_strata):
        if positive[i]:
            us.append(lp.NumVar(-lp.infinity(), 0.0, ""))
            ms[i].SetLb(floor[i] * n[i])
        else:
            ms[i].SetUb(0.0)
            us.append(None)
    obj = lp.Objective()
    for i, u in enumerate(us):
        if u is not None:
            obj.SetCoefficient(u, n[i])
    obj.SetMaximization()

    def tangent(i: int, q: float) -> None:
        # u ≤ log q + (p − q)/q with p = m/n
        ct = lp.Constraint(-lp.infinity(), math.log(q) - 1.0)
        ct.SetCoefficient(us[i], 1.0)
        ct.SetCoefficient(ms[i], -1.0 / (q * n[i]))

    for i in np.flatnonzero(positive).tolist():
        for q in tangent_points(floor[i]):
            tangent(i, q)
    rounds = 0
    best, p = -math.inf, np.zeros(system.n_strata)  # the best point met: Kelley's points zigzag
    upper = math.inf  # the smallest of the LPs' values: each bounds the optimum from above
    gaps: list[float] = []
    while True:
        rounds += 1
        _check_time(deadline, "the Nash welfare optimisation")
        if deadline is not None:
            lp.SetTimeLimit(max(1, int(1000 * (deadline - time.perf_counter()))))
        status = lp.Solve()
        if status != pywraplp.Solver.OPTIMAL:
            _check_time(deadline, "the Nash welfare optimisation")
        if status != pywraplp.Solver.OPTIMAL and rounds > 1:
            # Numerical trouble after many cuts, not infeasibility (the first round solved):
            # once more without presolve, else stop at the best point, its gap as certified.
            lp.SetSolverSpecificParametersAsString("use_preprocessing: false")
            status = lp.Solve()
            if status != pywraplp.Solver.OPTIMAL:
                break
        if status != pywraplp.Solver.OPTIMAL:
            raise InfeasibleError("no panel satisfies the quotas")
        point = np.array([m.solution_value() for m in ms]) / n
        upper = min(upper, obj.Value())
        true = float(sum(n[i] * math.log(max(point[i], 1e-300))
                         for i in np.flatnonzero(positive)))
        if true > best:
            best, p = true, point
        gaps.append(upper - best)
        # Stalled: the gap no smaller by a tenth in STALL rounds is at the LP's precision
        # (measured: 1e-5 in welfare on a 2 000-row pool, 614 strata, after 25 rounds).
        stalled = len(gaps) > STALL and gaps[-1] > 0.9 * gaps[-1 - STALL]
        if gaps[-1] <= tol * float(n.sum()) or stalled or rounds > 500:
            break
        over = {i: n[i] * (us[i].solution_value() - math.log(max(point[i], 1e-300)))
                for i in np.flatnonzero(positive).tolist()}
        # Cuts only where the model overestimates most: a quarter of the mean overestimate or
        # more (the others barely move the bound, and every cut slows every later solve).
        cut = max(tol, sum(over.values()) / (4 * len(over)))
        for i, gap in over.items():
            if gap > cut:
                tangent(i, max(point[i], floor[i], 1e-12))
    true = best
    target = np.where(positive, p, 0.0)
    m = target * n
    done, master, pricer = _decompose(system, target, deadline, log)
    if done is not None:
        return _walk_solution(done, target, rounds, "cutting planes+face walk",
                              {"nash_welfare_gap": upper - true})
    t, bound, cg_rounds = column_generation(master, pricer, m, np.zeros_like(m),
                                            deadline=deadline, what="the Nash decomposition",
                                            stop_at=1.0, log=log)
    weights = master.weights()
    if t < 1 - DECOMP_TOL:
        # The relaxed optimum is not a lottery of integer panels: optimise over the panels.
        return _exact_nash(system, master, pricer, deadline, tol, rounds + cg_rounds,
                           {"decomposition_t": t, "decomposition_bound": bound})
    return _solution(master, weights, target, rounds, cg_rounds, "cutting planes+decomposition",
                     {"decomposition_t": t, "decomposition_bound": bound,
                      "nash_welfare_gap": upper - true})


def _exact_nash(system: QuotaSystem, master: Master, pricer: Pricer, deadline: float | None,
                tol: float, rounds: int, details: dict) -> LotterySolution:
    """Maximise the Nash welfare over lotteries of integer panels, by column generation.

    The strata some integer panel includes are found first (one pricing per stratum no known
    panel covers); the others get probability 0. Then a master LP over the panels found so far
    maximises Σ n_s u_s, with u_s under tangents of log at earlier probabilities (Kelley), and
    each round prices a new panel at the gradient 1/π_s. By concavity the optimum over all
    lotteries is at most W(π) + max_x Σ_s x_s/π_s − Σ_s n_s, the certified welfare gap.
    """
    n = system.counts.astype(float)
    columns = [c.copy() for c in master.columns]
    covered = np.array(columns).sum(axis=0) > 0
    reach = covered.copy()
    for i in range(system.n_strata):
        if covered[i]:
            continue
        _check_time(deadline, "the Nash welfare optimisation")
        res = pricer.best(np.eye(system.n_strata)[i], deadline=deadline)
        if res.panel is not None and res.panel[i] > 0:
            reach[i] = True
            columns.append(res.panel)
            covered |= res.panel > 0
        elif res.panel is None or res.bound >= 1 - 1e-6:  # undecided: the solve was cut short
            raise SolverTimeout("time limit reached during the Nash welfare optimisation")
    pos = np.flatnonzero(reach).tolist()
    # As in `nash`: p_i ≥ n_i p'_i / Σ n at the optimum, p' = the even mix of these panels.
    floor = np.array(columns, dtype=float).mean(axis=0) / float(n[pos].sum()) * (1 - 1e-9)
    lp = pywraplp.Solver.CreateSolver("GLOP")
    inf = lp.infinity()
    conv = lp.Constraint(1.0, 1.0)
    seats = {i: lp.NumVar(floor[i] * n[i], n[i], "") for i in pos}
    us = {i: lp.NumVar(-inf, 0.0, "") for i in pos}
    link = {}
    for i in pos:  # seats_i = Σ_j λ_j x_ji
        link[i] = lp.Constraint(0.0, 0.0)
        link[i].SetCoefficient(seats[i], -1.0)
    obj = lp.Objective()
    for i in pos:
        obj.SetCoefficient(us[i], n[i])
    obj.SetMaximization()
    lams: list = []
    cols: list[np.ndarray] = []
    seen: set[bytes] = set()

    def add(x: np.ndarray) -> bool:
        key = x.astype(np.int64).tobytes()
        if key in seen:
            return False
        seen.add(key)
        var = lp.NumVar(0.0, inf, "")
        conv.SetCoefficient(var, 1.0)
        for i in pos:
            if x[i]:
                link[i].SetCoefficient(var, float(x[i]))
        lams.append(var)
        cols.append(x.astype(np.int64))
        return True

    points: set[tuple[int, float]] = set()

    def tangent(i: int, q: float) -> bool:
        # u ≤ log q + (p − q)/q with p = seats/n; False if (nearly) the same one is there
        key = (i, float(f"{q:.10g}"))
        if key in points:
            return False
        points.add(key)
        ct = lp.Constraint(-inf, math.log(q) - 1.0)
        ct.SetCoefficient(us[i], 1.0)
        ct.SetCoefficient(seats[i], -1.0 / (q * n[i]))
        return True

    for c in columns:
        add(c)
    for i in pos:
        for q in tangent_points(floor[i]):
            tangent(i, q)
    total = float(n[pos].sum())
    gap = math.inf
    cg_rounds = 0
    while cg_rounds < 2000:
        cg_rounds += 1
        _check_time(deadline, "the Nash welfare optimisation")
        if lp.Solve() != pywraplp.Solver.OPTIMAL:
            raise RuntimeError("Nash master LP not solved")
        p = np.zeros(system.n_strata)
        for i in pos:
            p[i] = seats[i].solution_value() / n[i]
        u = {i: us[i].solution_value() for i in pos}
        true = sum(n[i] * math.log(max(p[i], 1e-300)) for i in pos)
        if obj.Value() - true > tol * total:
            above = [i for i in pos if u[i] - math.log(max(p[i], 1e-300)) > tol]
            if sum(tangent(i, max(p[i], floor[i], 1e-12)) for i in above):
                continue  # else Kelley has stalled at the LP's precision: price
        g = np.zeros(system.n_strata)
        g[pos] = 1.0 / np.maximum(p[pos], floor[pos])
        res = pricer.best(g, deadline=deadline)
        if res.panel is None:
            raise SolverTimeout("time limit reached during the Nash welfare optimisation")
        gap = max(0.0, res.bound - float(g @ (p * n)))
        if gap <= tol * total or not add(res.panel):
            break
    else:  # round limit: the last change to the model is not solved yet
        lp.Solve()
    weights = np.maximum(np.array([v.solution_value() for v in lams]), 0.0)
    keep = weights > 1e-12
    panels = np.array([c for c, k in zip(cols, keep.tolist(), strict=True) if k],
                      dtype=np.int64)
    w = weights[keep] / weights[keep].sum()
    target = (w @ panels.astype(float)) / n
    details = dict(details, nash_welfare_gap=gap)
    return LotterySolution(panels, w, target, 0.0, rounds, cg_rounds, "exact column generation",
                           details)


def _timeout(master: Master, n: np.ndarray, upper: float,
             target: np.ndarray | None = None) -> SolverTimeout:
    """A timeout that says what was certified: the best lottery so far and the optimum's bound."""
    lower = 0.0
    partial = None
    if master.columns:
        try:
            master.solve()
            w = master.weights()
            seats = w @ np.array(master.columns, dtype=float) / max(w.sum(), 1e-300)
            lower = float((seats / n).min())
            if w.sum() > 0:
                partial = _solution(master, w, target if target is not None
                                    else np.full(len(n), upper), 0, 0,
                                    "column generation, stopped by the time limit", {})
        except RuntimeError:
            pass
    return SolverTimeout(
        f"time limit reached: the best lottery found gives everyone at least {lower:.6g}; "
        f"no lottery can give everyone more than {upper:.6g}", upper, partial)


def _solution(master: Master, weights: np.ndarray, target: np.ndarray, stages: int,
              rounds: int, method: str, details: dict) -> LotterySolution:
    """Keep the panels with positive weight; the gap compares the lottery with the target."""
    keep = weights > 1e-12
    panels = np.array([c for c, k in zip(master.columns, keep.tolist(), strict=True) if k],
                      dtype=np.int64)
    w = weights[keep]
    w = w / w.sum()
    return LotterySolution(panels, w, target, 0.0, stages, rounds, method, details)
