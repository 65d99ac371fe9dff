"""Fair lotteries: LEXIMIN, maximin and Nash against brute force, invariants, and the CLI.

The reference LEXIMIN here shares no code with `sortition.lottery.leximin`: it enumerates every
quota-satisfying panel of a tiny instance and runs its own sequence of LPs over the weights of
all of them.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
import strategies
from cli_runner import invoke, with_hash_seed
from conftest import quota_membership, seat_vectors
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st
from ortools.linear_solver import pywraplp
from strategies import Instance

from sortition.core.errors import InfeasibleError, InputError, SolverTimeout
from sortition.inputs.pool import load_pool
from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota, load_quotas
from sortition.inputs.strata import Strata, build_strata, strata_from_counts
from sortition.lottery.check import check_feasibility
from sortition.lottery.compute import (
    at_minimum,
    compute_lottery,
    compute_probabilities,
    verify_panels,
)
from sortition.lottery.leximin import relaxed_leximin
from sortition.lottery.panels import quota_system

ROOT = Path(__file__).resolve().parents[1]
NATURE = ROOT / "data" / "peers" / "flanigan2021"
NATURE_CASES = [("example_small_20", 20), ("example_large_200", 200)]

TOL = 1e-6


# ---------------------------------------------------------------------------
# Brute force: every panel, and LEXIMIN by a sequence of LPs over all of them


def all_panels(inst: Instance) -> np.ndarray:
    """Every seat vector 0 ≤ x ≤ n with Σx = k meeting every quota, in lexicographic order."""
    panels = seat_vectors(inst.strata.counts, inst.size)
    a, lo, hi = quota_membership(inst.features, inst.strata.keys, inst.quotas)
    sums = panels @ a.T
    return panels[np.all((sums >= lo) & (sums <= hi), axis=1)]


def glop() -> pywraplp.Solver:
    """GLOP without presolve: with bounds a hair below a tight row, its presolve can wrongly
    report an LP infeasible."""
    lp = pywraplp.Solver.CreateSolver("GLOP")
    lp.SetSolverSpecificParametersAsString("use_preprocessing: false")
    return lp


def _lp_stage(contrib: np.ndarray, fixed: list[float | None]):
    """GLOP model: λ over all panels, z, one probability expression per stratum."""
    lp = glop()
    n_panels, n_strata = contrib.shape
    lam = [lp.NumVar(0.0, lp.infinity(), f"l{j}") for j in range(n_panels)]
    z = lp.NumVar(0.0, 1.0, "z")
    lp.Add(lp.Sum(lam) == 1.0)
    exprs = []
    for s in range(n_strata):
        expr = lp.Sum([float(contrib[j, s]) * lam[j] for j in range(n_panels)
                       if contrib[j, s] != 0.0])
        if fixed[s] is None:
            lp.Add(expr - z >= 0.0)
        else:
            lp.Add(expr >= fixed[s] - 1e-9)
        exprs.append(expr)
    return lp, z, exprs


def brute_leximin(panels: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact LEXIMIN per-stratum probabilities over all `panels`, and the maximin value.

    Each stage maximises the smallest probability of the strata not yet fixed; a stratum is
    fixed at that level when, with the level held, maximising its own probability cannot
    exceed it.
    """
    contrib = panels.astype(float) / counts.astype(float)
    n_strata = len(counts)
    fixed: list[float | None] = [None] * n_strata
    first: float | None = None
    while any(v is None for v in fixed):
        lp, z, exprs = _lp_stage(contrib, fixed)
        lp.Maximize(z)
        assert lp.Solve() == pywraplp.Solver.OPTIMAL
        level = z.solution_value()
        if first is None:
            first = level
        z.SetLb(max(0.0, level - 1e-9))
        free = [s for s in range(n_strata) if fixed[s] is None]
        best = {}
        for s in free:
            lp.Maximize(exprs[s])
            assert lp.Solve() == pywraplp.Solver.OPTIMAL
            best[s] = lp.Objective().Value()
        tight = [s for s in free if best[s] <= level + 1e-7]
        if not tight:  # numerically impossible in exact arithmetic; keep the loop finite
            tight = [min(free, key=lambda s: best[s])]
        for s in tight:
            fixed[s] = level
    assert first is not None
    return np.array(fixed, dtype=float), first


def nash_welfare(p: np.ndarray, counts: np.ndarray, where: np.ndarray) -> float:
    """Σ n_s log p_s over the strata in `where` (−inf if one of them has probability 0)."""
    if (p[where] <= 0).any():
        return -np.inf
    return float(counts[where] @ np.log(p[where]))


def brute_nash(panels: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Bounds (achieved, upper) on the best Nash welfare of a lottery over `panels`.

    The welfare counts the strata some panel covers. Kelley's cutting planes: log p is replaced
    by the minimum of its tangents, which are added at the current probabilities until the LP's
    optimistic value meets the true value of its solution.
    """
    n = counts.astype(float)
    cover = panels.sum(axis=0) > 0
    lp = glop()
    inf = lp.infinity()
    lam = [lp.NumVar(0.0, inf, f"l{j}") for j in range(len(panels))]
    lp.Add(lp.Sum(lam) == 1.0)
    prob = {s: lp.Sum([float(panels[j, s]) / n[s] * lam[j] for j in range(len(panels))
                       if panels[j, s]]) for s in np.flatnonzero(cover).tolist()}
    u = {s: lp.NumVar(-inf, 0.0, f"u{s}") for s in prob}
    lp.Maximize(lp.Sum([n[s] * u[s] for s in prob]))

    points: set[tuple[int, float]] = set()

    def tangent(s: int, q: float) -> bool:
        if (s, float(f"{q:.12g}")) in points:
            return False
        points.add((s, float(f"{q:.12g}")))
        lp.Add(u[s] <= np.log(q) + (prob[s] - q) / q)
        return True

    for s in prob:
        for q in (1e-3, 1e-2, 0.1, 0.3, 1.0):
            tangent(s, q)
    best = -np.inf
    for _ in range(1000):
        assert lp.Solve() == pywraplp.Solver.OPTIMAL
        upper = lp.Objective().Value()
        p = np.zeros(len(n))
        for s, e in prob.items():
            p[s] = e.solution_value()
        best = max(best, nash_welfare(p, counts, cover))
        if upper - best <= 1e-9 * n.sum():
            break
        above = [s for s in prob if u[s].solution_value() - np.log(max(p[s], 1e-300)) > 1e-12]
        if not sum(tangent(s, max(p[s], 1e-9)) for s in above):
            break  # at the LP's precision
    return best, upper


# ---------------------------------------------------------------------------
# Random tiny instances


def tiny_instances() -> st.SearchStrategy[strategies.Instance]:
    """Mostly feasible, with one bound in twenty anywhere: LEXIMIN's stages meet strata that no
    panel holds and quotas that pin a group exactly."""
    return strategies.instances(keys=(2, 7), counts=st.integers(0, 4), size=(2, 6), slack=2,
                                wild=20, skip=6, cross=(0, 2))


def feasible_instance(draw_instance: Instance) -> tuple[Instance, np.ndarray]:
    panels = all_panels(draw_instance)
    assume(len(panels) > 0)
    return draw_instance, panels


# ---------------------------------------------------------------------------
# Invariants shared by every lottery


def assert_lottery_invariants(lottery, strata: Strata, quotas: Quotas, size: int) -> None:
    system = quota_system(strata, quotas, size)
    panels, weights = lottery.panels, lottery.weights
    assert panels.ndim == 2 and panels.shape[1] == len(strata) and len(panels) >= 1
    assert np.issubdtype(panels.dtype, np.integer)
    assert verify_panels(system, panels) == []
    assert all(system.satisfied(x) for x in panels)
    assert (panels >= 0).all() and (panels <= strata.counts).all()
    assert (panels.sum(axis=1) == size).all()
    assert weights.shape == (len(panels),)
    assert (weights >= 0).all()
    assert abs(float(weights.sum()) - 1.0) <= 1e-9
    rows = [tuple(r) for r in panels.tolist()]
    assert rows == sorted(rows), "panels not in lexicographic order"
    assert len(set(rows)) == len(rows), "a panel appears twice"
    p = lottery.stratum_probabilities()
    assert (p >= -1e-12).all() and (p <= 1 + 1e-9).all()
    assert abs(float(p @ strata.counts) - size) <= 1e-9
    assert np.allclose(lottery.expected_seats(), p * strata.counts, atol=1e-12)
    assert 0.0 <= lottery.gap <= TOL


def assert_panels_among(lottery, panels: np.ndarray) -> None:
    allowed = {tuple(r) for r in panels.tolist()}
    assert all(tuple(r) in allowed for r in lottery.panels.tolist())


# ---------------------------------------------------------------------------
# 1. Brute force


def check_leximin(inst: Instance, panels: np.ndarray):
    """LEXIMIN and maximin against brute force."""
    expected, first = brute_leximin(panels, inst.strata.counts)
    lex = compute_lottery(inst.strata, inst.quotas, inst.size, "leximin")
    assert_lottery_invariants(lex, inst.strata, inst.quotas, inst.size)
    assert_panels_among(lex, panels)
    got = lex.stratum_probabilities()
    assert np.abs(got - expected).max() <= TOL, (got, expected, lex.method)
    assert abs(float(got.min()) - first) <= TOL

    mm = compute_lottery(inst.strata, inst.quotas, inst.size, "maximin")
    assert_lottery_invariants(mm, inst.strata, inst.quotas, inst.size)
    assert_panels_among(mm, panels)
    assert abs(float(mm.stratum_probabilities().min()) - first) <= TOL
    return lex


@strategies.examples(60, HealthCheck.too_slow, HealthCheck.filter_too_much)
@given(tiny_instances())
def test_leximin_and_maximin_match_brute_force(instance):
    check_leximin(*feasible_instance(instance))


def check_nash(inst: Instance, panels: np.ndarray):
    """Nash against brute force: optimal welfare, and positive wherever some panel reaches."""
    counts = inst.strata.counts
    reachable = panels.sum(axis=0) > 0  # strata some feasible panel includes
    nash = compute_lottery(inst.strata, inst.quotas, inst.size, "nash")
    assert_lottery_invariants(nash, inst.strata, inst.quotas, inst.size)
    assert_panels_among(nash, panels)
    p = nash.stratum_probabilities()
    assert (p[reachable] > 0).all(), (p, reachable)
    assert (p[~reachable] == 0).all()
    achieved, upper = brute_nash(panels, counts)
    welfare = nash_welfare(p, counts, reachable)
    assert welfare >= achieved - TOL * counts.sum(), (welfare, achieved, nash.method)
    assert welfare <= upper + TOL * counts.sum()
    return nash


@strategies.examples(25, HealthCheck.too_slow, HealthCheck.filter_too_much)
@given(tiny_instances())
def test_nash_matches_brute_force(instance):
    inst, panels = feasible_instance(instance)
    nash = check_nash(inst, panels)
    lex = compute_lottery(inst.strata, inst.quotas, inst.size, "leximin")
    assert (nash.stratum_probabilities()[lex.stratum_probabilities() > 0] > 0).all()


def instance(counts: dict[tuple[str, ...], int], size: int, values: list[tuple],
             cross: list[tuple] = ()) -> tuple[Instance, np.ndarray]:
    features = [f"f{j}" for j in range(len(next(iter(counts))))]
    quotas = Quotas(values=[ValueQuota(*v) for v in values],
                    cross=[CrossQuota(*c) for c in cross], size=size)
    inst = Instance(strata_from_counts(features, counts), quotas, size)
    return inst, all_panels(inst)


def test_leximin_exact_fallback_matches_brute_force():
    """The relaxed optimum is no lottery of integer panels here: the exact stages run."""
    inst, panels = instance({("a", "b", "a"): 4, ("a", "c", "c"): 2, ("b", "b", "c"): 1,
                             ("b", "c", "b"): 2}, 4,
                            [("f0", "a", 3, 3), ("f0", "b", 1, 3), ("f1", "c", 1, 2),
                             ("f2", "b", 0, 1), ("f2", "c", 0, 1)])
    expected, first = brute_leximin(panels, inst.strata.counts)
    lex = compute_lottery(inst.strata, inst.quotas, inst.size, "leximin")
    assert lex.method == "exact column generation"
    assert_lottery_invariants(lex, inst.strata, inst.quotas, inst.size)
    assert np.abs(lex.stratum_probabilities() - expected).max() <= TOL
    mm = compute_lottery(inst.strata, inst.quotas, inst.size, "maximin")
    assert abs(float(mm.stratum_probabilities().min()) - first) <= TOL


def test_nash_when_the_relaxed_optimum_is_no_lottery():
    """Relaxed Nash spreads seats over strata no integer panel can include.

    Only (a,a,a) with (b,b,a) or (b,b,b) meet the quotas; the relaxation also reaches (a,b,b)
    and (b,a,b), so its optimum cannot be written over integer panels. Nash must still give
    (b,b,b) a positive probability and reach the best welfare over the real panels.
    """
    inst, panels = instance({("a", "a", "a"): 3, ("a", "b", "b"): 1, ("b", "a", "b"): 3,
                             ("b", "b", "a"): 2, ("b", "b", "b"): 4}, 2,
                            [("f0", "a", 1, 1), ("f1", "a", 1, 3), ("f1", "b", 1, 1),
                             ("f2", "a", 1, 2), ("f2", "b", 0, 1)])
    assert panels.tolist() == [[1, 0, 0, 0, 1], [1, 0, 0, 1, 0]]
    nash = check_nash(inst, panels)
    # Best split: weight w on (b,b,a), 1 − w on (b,b,b): max 2 log(w/2) + 4 log((1−w)/4),
    # so w = 1/3.
    assert np.allclose(nash.stratum_probabilities(), [1 / 3, 0, 0, 1 / 6, 1 / 6], atol=1e-3)
    assert nash.gap <= TOL


def test_nash_single_panel_reports_no_gap():
    """One panel only: every algorithm returns it, with a zero gap."""
    inst, panels = instance({("a", "a", "a"): 4, ("a", "b", "b"): 4, ("b", "a", "b"): 1,
                             ("b", "b", "a"): 3, ("b", "c", "a"): 1}, 6,
                            [("f0", "a", 1, 4), ("f0", "b", 1, 5), ("f0", "c", 0, 2),
                             ("f1", "a", 2, 4), ("f1", "b", 4, 4), ("f1", "c", 0, 0),
                             ("f2", "b", 3, 3)],
                            [(("f0", "f2"), ("a", "b"), 1, 4), (("f0", "f2"), ("c", "b"), 0, 1)])
    assert panels.tolist() == [[1, 2, 1, 2, 0]]
    for algorithm in ("leximin", "maximin", "nash"):
        lottery = compute_lottery(inst.strata, inst.quotas, inst.size, algorithm)
        assert lottery.panels.tolist() == panels.tolist()
        assert lottery.weights.tolist() == [1.0]
        assert lottery.gap <= TOL


def test_relaxation_with_a_bound_a_hair_below_a_tight_quota():
    """Fixing (a,a) at 1/2 leaves its lower bound just under its quota of exactly 2 seats;
    the LP must not then be declared infeasible (the only panel is (2, 3, 1))."""
    inst, panels = instance({("a", "a"): 4, ("a", "b"): 3, ("a", "c"): 1}, 6,
                            [("f0", "b", 0, 0), ("f1", "a", 2, 2), ("f1", "c", 1, 3)])
    assert panels.tolist() == [[2, 3, 1]]
    system = quota_system(inst.strata, inst.quotas, inst.size)
    assert np.allclose(relaxed_leximin(system), [0.5, 1.0, 1.0], atol=1e-9)
    for algorithm in ("leximin", "maximin", "nash"):
        lottery = compute_lottery(inst.strata, inst.quotas, inst.size, algorithm)
        assert lottery.panels.tolist() == [[2, 3, 1]]
        assert np.allclose(lottery.stratum_probabilities(), [0.5, 1.0, 1.0], atol=1e-12)


def test_brute_force_reference_on_a_known_instance():
    """The reference itself, on an instance worked out by hand.

    Strata A = (a, y) with 2 people, B = (b, x) with 2, C = (c, y) with 1; panels of 2 with at
    most one seat for g = y. The panels are (0,1,1), (0,2,0) and (1,1,0), with weights u, v, w:
    p_A = w/2, p_B = (u + 2v + w)/2, p_C = u. The best minimum puts v = 0 and w/2 = u, so
    u = 1/3, w = 2/3: A and C at 1/3, and B then at 1/2.
    """
    strata = strata_from_counts(["f", "g"], {("a", "y"): 2, ("b", "x"): 2, ("c", "y"): 1})
    quotas = Quotas(values=[ValueQuota("g", "x", 0, 2), ValueQuota("g", "y", 0, 1)], size=2)
    inst = Instance(strata, quotas, 2)
    panels = all_panels(inst)
    assert panels.tolist() == [[0, 1, 1], [0, 2, 0], [1, 1, 0]]
    expected, first = brute_leximin(panels, strata.counts)
    assert np.allclose(expected, [1 / 3, 1 / 2, 1 / 3], atol=1e-9)
    assert abs(first - 1 / 3) <= 1e-9
    lottery = compute_lottery(strata, quotas, 2, "leximin")
    assert np.allclose(lottery.stratum_probabilities(), expected, atol=TOL)
def test_leximin_and_nash_on_a_tight_instance():
    """Three panels, LEXIMIN (1/4, 1/4, 5/8, 1/4, 3/4): with GLOP's presolve on, the brute-force
    reference's second stage was once wrongly reported infeasible here."""
    inst, panels = instance({("a", "a"): 2, ("a", "b"): 1, ("a", "c"): 2, ("b", "a"): 1,
                             ("b", "c"): 1}, 3, [("f0", "b", 1, 1), ("f1", "c", 2, 2)])
    assert panels.tolist() == [[0, 0, 2, 1, 0], [0, 1, 1, 0, 1], [1, 0, 1, 0, 1]]
    lex = check_leximin(inst, panels)
    assert np.allclose(lex.stratum_probabilities(), [1 / 4, 1 / 4, 5 / 8, 1 / 4, 3 / 4],
                       atol=TOL)
    check_nash(inst, panels)


def test_nash_when_the_first_cut_leaves_a_stratum_at_zero():
    """The first cutting-plane LP gives (b,c,c) no seat; a tangent of log at ~0 must not wreck
    the next LP (it was once reported as "no panel satisfies the quotas")."""
    inst, panels = instance({("a", "a", "a"): 1, ("a", "b", "b"): 3, ("b", "b", "b"): 4,
                             ("b", "b", "c"): 3, ("b", "c", "b"): 3, ("b", "c", "c"): 4,
                             ("c", "c", "a"): 3}, 5,
                            [("f0", "b", 0, 1), ("f0", "c", 1, 3), ("f1", "a", 0, 3),
                             ("f1", "b", 0, 2), ("f1", "c", 2, 5), ("f2", "a", 4, 4),
                             ("f2", "b", 0, 3), ("f2", "c", 0, 2)])
    assert len(panels) == 5
    check_leximin(inst, panels)
    nash = check_nash(inst, panels)
    # Every panel is (a,a,a), three (c,c,a) and one of the 17 others: 1/17 each at best.
    assert np.allclose(nash.stratum_probabilities(), [1] + [1 / 17] * 5 + [1], atol=1e-3)


# ---------------------------------------------------------------------------
# 2. Invariants on the Nature 2021 examples, and determinism


def nature_case(name: str, size: int) -> tuple[Strata, Quotas]:
    folder = NATURE / name
    if not (folder / "categories.csv").exists() or not (folder / "respondents.csv").exists():
        pytest.skip(f"{folder} not available")
    quotas = load_quotas(folder / "categories.csv", size)
    pool = load_pool(folder / "respondents.csv", ["gender", "leaning"], quotas=quotas)
    return build_strata(pool, ["gender", "leaning"]), quotas


@pytest.mark.parametrize(("name", "size"), NATURE_CASES)
def test_nature_examples(name, size):
    strata, quotas = nature_case(name, size)
    assert int(strata.counts.sum()) == size * 10
    lex = compute_lottery(strata, quotas, size, "leximin")
    assert_lottery_invariants(lex, strata, quotas, size)
    p = lex.stratum_probabilities()
    assert abs(float(p.min()) - 0.10) <= TOL  # the paper's LEXIMIN minimum
    mm = compute_lottery(strata, quotas, size, "maximin")
    assert_lottery_invariants(mm, strata, quotas, size)
    assert abs(float(mm.stratum_probabilities().min()) - 0.10) <= TOL
    nash = compute_lottery(strata, quotas, size, "nash")
    assert_lottery_invariants(nash, strata, quotas, size)
    assert (nash.stratum_probabilities()[p > 0] > 0).all()


def write_pool(path: Path, rows: list[tuple[str, ...]], features: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", *features])
        w.writerows(rows)
    return path


def write_quotas(path: Path, quotas: list[tuple[str, str, int, int]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["feature", "value", "min", "max"])
        w.writerows(quotas)
    return path


def pool_rows(counts: dict[tuple[str, ...], int]) -> list[tuple[str, ...]]:
    """One row per person, ids p001, p002, … in stratum order."""
    rows = []
    for key, n in counts.items():
        for _ in range(n):
            rows.append((f"p{len(rows) + 1:03d}", *key))
    return rows


# The exact-fallback instance of test_leximin_exact_fallback_matches_brute_force, as a pool.
FALLBACK_COUNTS = {("a", "b", "a"): 4, ("a", "c", "c"): 2, ("b", "b", "c"): 1,
                   ("b", "c", "b"): 2}
FALLBACK_QUOTAS = [("f0", "a", 3, 3), ("f0", "b", 1, 3), ("f1", "b", 0, 4), ("f1", "c", 1, 2),
                   ("f2", "a", 0, 4), ("f2", "b", 0, 1), ("f2", "c", 0, 1)]
FEATURES3 = ["f0", "f1", "f2"]


@pytest.mark.parametrize("algorithm", ["leximin", "maximin", "nash"])
def test_same_lottery_whatever_the_row_order(tmp_path, algorithm):
    rows = pool_rows(FALLBACK_COUNTS)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != rows
    qpath = write_quotas(tmp_path / "q.csv", FALLBACK_QUOTAS)
    quotas = load_quotas(qpath, 4)
    results = []
    for name, order in (("a.csv", rows), ("b.csv", shuffled[::-1])):
        pool = load_pool(write_pool(tmp_path / name, order, FEATURES3), FEATURES3, quotas=quotas)
        strata = build_strata(pool, FEATURES3)
        lottery = compute_lottery(strata, quotas, 4, algorithm)
        assert_lottery_invariants(lottery, strata, quotas, 4)
        person = lottery.stratum_probabilities()[strata.row_stratum]
        results.append((lottery, dict(zip(pool.ids.to_pylist(), person.tolist(), strict=True))))
    (a, pa_), (b, pb_) = results
    assert np.array_equal(a.panels, b.panels)
    assert np.array_equal(a.weights, b.weights)
    assert pa_ == pb_


def test_same_lottery_whatever_the_row_order_nature(tmp_path):
    strata, quotas = nature_case("example_small_20", 20)
    with (NATURE / "example_small_20" / "respondents.csv").open(encoding="utf-8") as f:
        data = list(csv.reader(f))
    header, body = data[0], data[1:]
    rows = [(f"r{i:03d}", *r) for i, r in enumerate(body)]
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    lotteries = []
    for name, order in (("a.csv", rows), ("b.csv", shuffled)):
        pool = load_pool(write_pool(tmp_path / name, order, header), ["gender", "leaning"],
                         quotas=quotas)
        lotteries.append(compute_lottery(build_strata(pool, ["gender", "leaning"]), quotas, 20))
    assert np.array_equal(lotteries[0].panels, lotteries[1].panels)
    assert np.array_equal(lotteries[0].weights, lotteries[1].weights)


def run_cli_subprocess(args: list[str], hash_seed: str, cwd: Path) -> subprocess.CompletedProcess:
    return with_hash_seed(hash_seed, "-c", "from sortition.cli import main; main()", *args,
                          cwd=cwd)


@pytest.mark.parametrize("algorithm", ["leximin", "nash"])
def test_same_files_whatever_the_hash_seed(tmp_path, algorithm):
    pool = write_pool(tmp_path / "pool.csv", pool_rows(FALLBACK_COUNTS), FEATURES3)
    quotas = write_quotas(tmp_path / "q.csv", FALLBACK_QUOTAS)
    outputs = []
    for seed in ("1", "2"):
        out, strata_out = f"probs{seed}.csv", f"strata{seed}.csv"
        done = run_cli_subprocess(["probabilities", str(pool), "--quotas", str(quotas),
                                   "--size", "4", "--algorithm", algorithm, "--out", out,
                                   "--strata-out", strata_out, "--json"], seed, tmp_path)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        summary.pop("seconds")
        outputs.append(((tmp_path / out).read_bytes(), (tmp_path / strata_out).read_bytes(),
                        summary))
    assert outputs[0] == outputs[1]
    if algorithm == "leximin":
        assert outputs[0][2]["method"] == "exact column generation"


# ---------------------------------------------------------------------------
# 3. People who can be on no panel

# (f, old) on a panel needs a second woman, who can only be young; then one young seat is
# missing and three seats are old: no feasible panel includes them.
IMPOSSIBLE_COUNTS = {("f", "young"): 3, ("m", "old"): 3, ("f", "old"): 1}
IMPOSSIBLE_QUOTAS = [("gender", "f", 2, 2), ("gender", "m", 2, 2), ("age", "young", 2, 2),
                     ("age", "old", 2, 2)]


def test_a_person_on_no_feasible_panel_gets_zero(tmp_path):
    inst, panels = instance({(g, a): n for (g, a), n in IMPOSSIBLE_COUNTS.items()}, 4,
                            [(f.replace("gender", "f0").replace("age", "f1"), v, lo, hi)
                             for f, v, lo, hi in IMPOSSIBLE_QUOTAS])
    assert inst.strata.keys == [("f", "old"), ("f", "young"), ("m", "old")]
    assert panels.tolist() == [[0, 2, 2]]
    for algorithm in ("leximin", "maximin", "nash"):
        lottery = compute_lottery(inst.strata, inst.quotas, 4, algorithm)
        assert_lottery_invariants(lottery, inst.strata, inst.quotas, 4)
        assert lottery.stratum_probabilities()[0] == 0.0
        assert (lottery.panels[:, 0] == 0).all()
    lex = compute_lottery(inst.strata, inst.quotas, 4, "leximin").stratum_probabilities()
    assert np.allclose(lex, [0, 2 / 3, 2 / 3], atol=1e-12)
    report = check_feasibility(inst.strata, inst.quotas, 4)
    assert report.feasible
    assert report.impossible_strata == [(("f", "old"), 1)]
    assert report.impossible_people == 1


def test_cli_check_and_probabilities_report_the_impossible_person(tmp_path):
    rows = pool_rows(IMPOSSIBLE_COUNTS)  # p007 is the (f, old) person
    pool = write_pool(tmp_path / "pool.csv", rows, ["gender", "age"])
    quotas = write_quotas(tmp_path / "q.csv", IMPOSSIBLE_QUOTAS)
    result = invoke(*["check", str(pool), "--quotas", str(quotas), "--size", "4",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["impossible_people"] == 1
    assert report["impossible_strata"] == [{"stratum": {"gender": "f", "age": "old"},
                                            "people": 1}]
    out = tmp_path / "probs.csv"
    result = invoke(*["probabilities", str(pool), "--quotas", str(quotas),
                                 "--size", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    probs = read_probabilities(out)
    assert probs["p007"] == 0.0
    assert all(abs(p - 2 / 3) <= 1e-9 for i, p in probs.items() if i != "p007")


# ---------------------------------------------------------------------------
# 4. The `probabilities` command


def read_probabilities(path: Path) -> dict[str, float]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "probability"]
    ids = [r[0] for r in rows[1:]]
    assert ids == sorted(ids, key=lambda s: s.encode("utf-8")), "not sorted by id"
    assert len(set(ids)) == len(ids)
    return {r[0]: float(r[1]) for r in rows[1:]}


ODD_IDS = ["007", "10", "7", "abc", "Zoé", "1e3", "0x1", "010", "B-2", "9", "éa", "00"]
ODD_FEATURES = [("f", "x"), ("m", "x"), ("f", "y"), ("m", "y"), ("f", "x"), ("m", "y"),
                ("f", "y"), ("m", "x"), ("f", "x"), ("m", "x"), ("f", "y"), ("m", "y")]
ODD_QUOTAS = [("sex", "f", 2, 3), ("sex", "m", 2, 3), ("area", "x", 1, 3), ("area", "y", 2, 4)]


@pytest.fixture
def odd_pool(tmp_path) -> tuple[Path, Path]:
    rows = [(i, *v) for i, v in zip(ODD_IDS, ODD_FEATURES, strict=True)]
    return (write_pool(tmp_path / "pool.csv", rows, ["sex", "area"]),
            write_quotas(tmp_path / "quotas.csv", ODD_QUOTAS))


def test_cli_writes_one_row_per_person_sorted_by_id(tmp_path, odd_pool):
    pool, quotas = odd_pool
    out = tmp_path / "probs.csv"
    result = invoke(*["probabilities", str(pool), "--quotas", str(quotas),
                                 "--size", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    probs = read_probabilities(out)
    assert sorted(probs) == sorted(ODD_IDS)  # ids verbatim: "007" stays "007"
    assert abs(sum(probs.values()) - 5) <= 1e-9
    q = load_quotas(quotas, 5)
    strata = build_strata(load_pool(pool, ["sex", "area"], quotas=q), ["sex", "area"])
    expected = compute_probabilities(strata, q, 5).person_probabilities()
    assert [probs[i] for i in ODD_IDS] == expected.tolist()  # shortest round-trip floats


def test_cli_json_summary(tmp_path, odd_pool):
    pool, quotas = odd_pool
    out = tmp_path / "probs.csv"
    strata_out = tmp_path / "strata.csv"
    result = invoke(*["probabilities", str(pool), "--quotas", str(quotas),
                                 "--size", "5", "--out", str(out), "--strata-out",
                                 str(strata_out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert isinstance(summary, dict)
    for key in ("algorithm", "min_probability", "max_probability", "strata", "panels",
                "seconds", "gap"):
        assert key in summary, key
    assert summary["algorithm"] == "leximin"
    assert summary["strata"] == 4
    assert summary["panels"] >= 1
    assert 0 <= summary["gap"] <= TOL
    probs = read_probabilities(out)
    assert summary["min_probability"] == min(probs.values())
    assert summary["max_probability"] == max(probs.values())
    with strata_out.open(newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [(r["sex"], r["area"]) for r in table] == [("f", "x"), ("f", "y"), ("m", "x"),
                                                      ("m", "y")]
    assert sum(int(r["people"]) for r in table) == len(ODD_IDS)
    assert abs(sum(float(r["expected_seats"]) for r in table) - 5) <= 1e-9


def test_cli_legacy_is_estimated(tmp_path, odd_pool):
    pool, quotas = odd_pool
    out = tmp_path / "probs.csv"
    args = ["probabilities", str(pool), "--quotas", str(quotas), "--size", "5", "--out",
            str(out), "--algorithm", "legacy", "--runs", "200", "--seed", "3", "--json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["algorithm"] == "legacy"
    assert "estimated" in summary["note"]
    probs = read_probabilities(out)
    assert sorted(probs) == sorted(ODD_IDS)
    assert abs(sum(probs.values()) - 5) <= 1e-9
    first = out.read_bytes()
    again = invoke(*[*args, "--force"])  # same seed, same estimate
    assert again.exit_code == 0, again.output
    assert out.read_bytes() == first


def assert_nothing_written(folder: Path, inputs: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == inputs


def test_cli_unknown_algorithm_exits_2(tmp_path, odd_pool):
    pool, quotas = odd_pool
    result = invoke(*["probabilities", str(pool), "--quotas", str(quotas),
                                 "--size", "5", "--out", str(tmp_path / "probs.csv"),
                                 "--strata-out", str(tmp_path / "strata.csv"),
                                 "--algorithm", "fairest"])
    assert result.exit_code == 2, result.output
    assert "fairest" in result.output
    assert "Traceback" not in result.output
    assert_nothing_written(tmp_path, {"pool.csv", "quotas.csv"})


@pytest.mark.parametrize("quotas", [
    [("sex", "f", 6, 6), ("sex", "m", 0, 5), ("area", "x", 0, 5), ("area", "y", 0, 5)],
    # each quota passes alone, but 5 seats for f-x people and the pool has 3 of them
    [("sex", "f", 5, 5), ("sex", "m", 0, 0), ("area", "x", 5, 5), ("area", "y", 0, 5)],
])
@pytest.mark.parametrize("algorithm", ["leximin", "maximin", "nash"])
def test_cli_infeasible_exits_1(tmp_path, odd_pool, quotas, algorithm):
    pool, _ = odd_pool
    qpath = write_quotas(tmp_path / "quotas.csv", quotas)
    result = invoke(*["probabilities", str(pool), "--quotas", str(qpath),
                                 "--size", "5", "--out", str(tmp_path / "probs.csv"),
                                 "--strata-out", str(tmp_path / "strata.csv"),
                                 "--algorithm", algorithm])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert_nothing_written(tmp_path, {"pool.csv", "quotas.csv"})


@pytest.mark.parametrize("algorithm", ["leximin", "maximin", "nash"])
def test_cli_tiny_time_limit_exits_1(tmp_path, algorithm):
    pool = write_pool(tmp_path / "pool.csv", pool_rows(FALLBACK_COUNTS), FEATURES3)
    quotas = write_quotas(tmp_path / "quotas.csv", FALLBACK_QUOTAS)
    result = invoke(*["probabilities", str(pool), "--quotas", str(quotas),
                                 "--size", "4", "--out", str(tmp_path / "probs.csv"),
                                 "--algorithm", algorithm, "--time-limit", "0.000001"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "time limit" in " ".join(result.output.split())
    assert_nothing_written(tmp_path, {"pool.csv", "quotas.csv"})


def test_library_errors_are_typed():
    strata = strata_from_counts(["f0", "f1"], {("a", "a"): 2, ("b", "b"): 2})
    quotas = Quotas(values=[ValueQuota("f0", "a", 3, 3)], size=3)
    with pytest.raises(InfeasibleError):
        compute_lottery(strata, quotas, 3, "leximin")
    with pytest.raises(InputError):
        compute_lottery(strata, quotas, 3, "legacy")
    with pytest.raises(InfeasibleError):
        compute_lottery(strata, Quotas(values=[]), 5, "leximin")  # 4 people, 5 seats
    big = strata_from_counts(["f0", "f1", "f2"], FALLBACK_COUNTS)
    q = Quotas(values=[ValueQuota(*v) for v in FALLBACK_QUOTAS], size=4)
    with pytest.raises(SolverTimeout):
        compute_lottery(big, q, 4, "leximin", time_limit=1e-9)


def test_people_at_the_minimum_one_relative_tolerance():
    """docs/bundle-format.md section 9: `people_at_min` counts probabilities ≤ min × (1 + 10^-9);
    the same definition serves `probabilities --json`, audit.json and the report."""
    low = 0.1
    p = np.array([low, low * (1 + 5e-10), low * (1 + 2e-9), 0.5, low])
    assert at_minimum(p).tolist() == [True, True, False, False, True]
    # relative, not absolute: a tiny positive probability is not "at" a minimum of 0
    assert at_minimum(np.array([0.0, 1e-10, 0.0])).tolist() == [True, False, True]
    assert at_minimum(np.array([1e-12, 1.5e-12])).tolist() == [True, False]
