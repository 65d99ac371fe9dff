"""Goldilocks and Diversimax: exact against brute force on tiny instances (every panel
enumerated, the objective solved over all lotteries by LPs that share nothing with the
library's method), the γ option checked, and a draw by each verified with `--recompute`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import strategies
from cli_runner import run
from cli_runner import verify_unanchored as verify
from hypothesis import HealthCheck, given
from ortools.linear_solver import pywraplp
from test_lottery import (
    TOL,
    assert_lottery_invariants,
    assert_panels_among,
    brute_leximin,
    feasible_instance,
    glop,
    instance,
    tiny_instances,
)

from sortition.core.errors import InputError
from sortition.lottery.compute import compute_lottery, compute_probabilities
from sortition.lottery.objectives import check_gamma, goldilocks_value

# ---------------------------------------------------------------------------
# Brute force


def brute_floor(panels: np.ndarray, counts: np.ndarray, size: int, reach: np.ndarray,
                w: float) -> float | None:
    """Over every lottery of `panels` whose smallest probability (on `reach`) is at least
    w·k/N: the smallest largest probability over k/N (None: no such lottery)."""
    c = size / float(counts.sum())
    lp = glop()
    lam = [lp.NumVar(0.0, lp.infinity(), "") for _ in range(len(panels))]
    a = lp.NumVar(0.0, lp.infinity(), "a")
    lp.Add(lp.Sum(lam) == 1.0)
    for s in np.flatnonzero(reach).tolist():
        seats = lp.Sum([float(panels[j, s]) * lam[j] for j in range(len(panels)) if panels[j, s]])
        lp.Add(seats >= w * c * float(counts[s]))
        lp.Add(seats <= a * c * float(counts[s]))
    lp.Minimize(a)
    if lp.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    return a.solution_value()


def brute_goldilocks(panels: np.ndarray, counts: np.ndarray, size: int, gamma: float
                     ) -> float:
    """min over lotteries of max π/(k/N) + γ max (k/N)/π, over the people some panel holds:
    a plain golden-section search on the floor w, each point one LP over every panel."""
    reach = (panels.sum(axis=0) > 0) & (counts > 0)
    lo, hi = 1e-6, float(counts.sum()) / size  # π ≤ 1: w ≤ N/k
    if brute_floor(panels, counts, size, reach, hi) is not None:
        lo = hi
    for _ in range(60):  # bisection for the largest floor
        mid = (lo + hi) / 2
        if brute_floor(panels, counts, size, reach, mid) is None:
            hi = mid
        else:
            lo = mid
    top = lo

    def g(w: float) -> float:
        # None below `top` is GLOP's numerical trouble (ABNORMAL), not infeasibility: that
        # point simply cannot be the minimum
        a = brute_floor(panels, counts, size, reach, w)
        return math.inf if a is None else a + gamma / w

    a, b = 1e-6, top
    r = (math.sqrt(5) - 1) / 2
    for _ in range(90):
        x1, x2 = b - r * (b - a), a + r * (b - a)
        if g(x1) <= g(x2):
            b = x2
        else:
            a = x1
    return min(g(a), g(b), g(top))


def check_goldilocks(inst, panels: np.ndarray, gamma: float):
    counts = inst.strata.counts
    lot = compute_lottery(inst.strata, inst.quotas, inst.size, "goldilocks", gamma=gamma)
    assert_lottery_invariants(lot, inst.strata, inst.quotas, inst.size)
    assert_panels_among(lot, panels)
    p = lot.stratum_probabilities()
    reach = (panels.sum(axis=0) > 0) & (counts > 0)
    assert (p[reach] > 0).all() and (p[~reach] == 0).all()
    ours = goldilocks_value(p, counts, inst.size, gamma, reach)
    best = brute_goldilocks(panels, counts, inst.size, gamma)
    assert abs(ours - best) <= 1e-6 * best, (ours, best, lot.method)
    assert ours == pytest.approx(lot.details["goldilocks_value"], rel=1e-9)
    bound = lot.details["goldilocks_bound"]
    assert bound <= best * (1 + 1e-7)  # the certified lower bound is one
    assert lot.gap == pytest.approx(max(0.0, ours - bound), abs=1e-12)
    return lot


@strategies.examples(40, HealthCheck.too_slow, HealthCheck.filter_too_much)
@given(tiny_instances())
def test_goldilocks_matches_brute_force(instance):
    inst, panels = feasible_instance(instance)
    check_goldilocks(inst, panels, 1.0)


@strategies.examples(15, HealthCheck.too_slow, HealthCheck.filter_too_much)
@given(tiny_instances())
def test_goldilocks_other_gammas_match_brute_force(instance):
    inst, panels = feasible_instance(instance)
    for gamma in (0.25, 4.0):
        check_goldilocks(inst, panels, gamma)


def check_diversimax(inst, panels: np.ndarray):
    distinct = (panels > 0).sum(axis=1)
    best = panels[distinct == distinct.max()]
    expected, _ = brute_leximin(best, inst.strata.counts)
    lot = compute_lottery(inst.strata, inst.quotas, inst.size, "diversimax")
    assert_lottery_invariants(lot, inst.strata, inst.quotas, inst.size)
    assert_panels_among(lot, best)  # only the most diverse panels
    assert lot.details["distinct_strata"] == int(distinct.max())
    got = lot.stratum_probabilities()
    assert np.abs(got - expected).max() <= TOL, (got, expected, lot.method)
    return lot


@strategies.examples(40, HealthCheck.too_slow, HealthCheck.filter_too_much)
@given(tiny_instances())
def test_diversimax_matches_brute_force(instance):
    check_diversimax(*feasible_instance(instance))


def test_diversimax_when_fewer_strata_than_seats():
    # 3 strata for 4 seats: D* = 3, the exact column generation over those panels
    inst, panels = instance({("a", "x"): 3, ("a", "y"): 1, ("b", "x"): 2}, 4,
                            [("f0", "a", 2, 3), ("f0", "b", 1, 2)])
    lot = check_diversimax(inst, panels)
    assert lot.details["distinct_strata"] == 3
    assert lot.method == "exact column generation"


def test_diversimax_one_seat_per_stratum_uses_the_face_walk():
    inst, panels = instance({("a", "x"): 3, ("a", "y"): 2, ("b", "x"): 2, ("b", "y"): 1}, 3,
                            [("f0", "a", 1, 2), ("f1", "x", 1, 2)])
    lot = check_diversimax(inst, panels)
    assert lot.details["distinct_strata"] == 3
    assert lot.method == "relaxation+face walk"


@pytest.mark.parametrize("gamma", [0, -1, math.nan, math.inf, -math.inf, True])
def test_gamma_must_be_finite_and_positive(gamma):
    with pytest.raises(InputError, match="--gamma"):
        check_gamma(gamma)


def test_gamma_only_for_goldilocks():
    inst, _ = instance({("a", "x"): 3, ("b", "y"): 3}, 2, [("f0", "a", 1, 1)])
    with pytest.raises(InputError, match="--gamma 2.0: only for --algorithm goldilocks"):
        compute_lottery(inst.strata, inst.quotas, 2, "leximin", gamma=2.0)
    with pytest.raises(InputError, match="--gamma"):
        compute_probabilities(inst.strata, inst.quotas, 2, "goldilocks", gamma=0.0)


# ---------------------------------------------------------------------------
# The command line


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from conftest import DOCS

    d = tmp_path_factory.mktemp("objectives")
    pool, quotas = d / "pool.parquet", d / "quotas.csv"
    for args in (("synth", "--rows", 400, "--seed", 3, "--out", pool),
                 ("quotas", DOCS.parent / "quotas" / "occitanie-2020.toml", "--size", 40,
                  "--out", quotas)):
        code, text = run(*args)
        assert code == 0, text
    return d, pool, quotas


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf"])
@pytest.mark.parametrize("command", ["probabilities", "lottery", "draw"])
def test_cli_bad_gamma_exits_2_naming_the_option(pool, command, value):
    d, p, q = pool
    extra = {"probabilities": ["--out", d / "bad.csv"], "lottery": ["--out", d / "bad-lot"],
             "draw": ["--out", d / "bad-bundle", "--seed", "s"]}[command]
    code, text = run(command, p, "-q", q, "-k", 40, "-a", "goldilocks", "--gamma", value,
                     *extra)
    assert code == 2, text
    assert "--gamma" in text
    assert not (d / "bad.csv").exists() and not (d / "bad-lot").exists()


def test_cli_gamma_with_another_algorithm_exits_2(pool):
    d, p, q = pool
    code, text = run("probabilities", p, "-q", q, "-k", 40, "--gamma", "2",
                     "--out", d / "x.csv")
    assert code == 2 and "only for --algorithm goldilocks" in text


@pytest.mark.parametrize(("algorithm", "gamma"), [("goldilocks", None), ("goldilocks", "2.5"),
                                                  ("diversimax", None)])
def test_cli_draw_verifies_with_recompute(pool, algorithm, gamma):
    d, p, q = pool
    name = f"{algorithm}-{gamma}"
    extra = [] if gamma is None else ["--gamma", gamma]
    code, text = run("lottery", p, "-q", q, "-k", 40, "-a", algorithm, *extra,
                     "--out", d / f"lot-{name}")
    assert code == 0, text
    doc = json.loads((d / f"lot-{name}" / "lottery.json").read_text(encoding="utf-8"))
    assert doc["algorithm"] == algorithm
    assert doc.get("gamma") == (None if algorithm != "goldilocks" else float(gamma or 1))
    code, text = run("draw", p, "-q", q, "-k", 40, "--lottery", d / f"lot-{name}",
                     "--seed", "objective seed", "--out", d / f"bundle-{name}")
    assert code == 0, text
    audit = json.loads((d / f"bundle-{name}" / "audit.json").read_text(encoding="utf-8"))
    objective = audit["probabilities"]["objective"]
    assert audit["parameters"]["algorithm"] == algorithm
    assert objective["value"] is not None and objective["bound"] is not None
    report = (d / f"bundle-{name}" / "report.html").read_text(encoding="utf-8")
    assert {"goldilocks": "Goldilocks", "diversimax": "Diversimax"}[algorithm] in report
    assert "Objective" in report
    code, text = verify(d / f"bundle-{name}", p, "--recompute")
    assert code == 0, text
    assert f"recomputed {algorithm}" in text and "agree" in text
    # the same lottery computed in the draw itself is byte-identical (deterministic)
    code, text = run("draw", p, "-q", q, "-k", 40, "-a", algorithm, *extra,
                     "--seed", "objective seed", "--out", d / f"again-{name}")
    assert code == 0, text
    assert ((d / f"again-{name}" / "lottery.json").read_bytes()
            == (d / f"bundle-{name}" / "lottery.json").read_bytes())


def test_cli_reused_lottery_must_match_gamma(pool):
    d, p, q = pool
    code, text = run("lottery", p, "-q", q, "-k", 40, "-a", "goldilocks",
                     "--out", d / "lot-g1")
    assert code == 0, text
    code, text = run("draw", p, "-q", q, "-k", 40, "--lottery", d / "lot-g1", "--gamma", "3",
                     "--seed", "s", "--out", d / "bundle-g3")
    assert code == 2 and "its gamma is 1.0, --gamma says 3.0" in text


def _summary(text: str) -> dict:
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def test_goldilocks_keeps_both_ends_close(pool):
    # LEXIMIN lifts the smallest chances and leaves some people certain to sit; Goldilocks
    # also brings the largest chance down, and its objective is never worse than LEXIMIN's
    d, p, q = pool
    runs = {}
    for algorithm in ("leximin", "goldilocks"):
        code, text = run("probabilities", p, "-q", q, "-k", 40, "-a", algorithm, "--json",
                         "--out", d / f"both-{algorithm}.csv")
        assert code == 0, text
        runs[algorithm] = _summary(text)
    lex, gold = runs["leximin"], runs["goldilocks"]
    c = 40 / lex["people"]
    assert gold["max_probability"] < lex["max_probability"]
    assert gold["min_probability"] <= lex["min_probability"] + 1e-9  # (LEXIMIN: the largest)
    assert (gold["objective"]["value"]
            <= lex["max_probability"] / c + c / lex["min_probability"] + 1e-9)


def test_cli_probabilities_json_reports_the_objective(pool):
    d, p, q = pool
    code, text = run("probabilities", p, "-q", q, "-k", 40, "-a", "goldilocks", "--json",
                     "--out", d / "g.csv")
    assert code == 0, text
    summary = _summary(text)
    assert summary["algorithm"] == "goldilocks"
    assert summary["objective"]["name"] == "goldilocks"
    assert summary["objective"]["value"] >= summary["objective"]["bound"] - 1e-12


@pytest.mark.parametrize("gamma", [1.0, 0.3])
def test_goldilocks_when_the_relaxed_optimum_is_no_lottery(gamma):
    """The relaxation reaches strata no integer panel includes (see test_lottery's Nash case):
    Goldilocks runs over the panels themselves, by column generation, and is still exact."""
    inst, panels = instance({("a", "a", "a"): 3, ("a", "b", "b"): 1, ("b", "a", "b"): 3,
                             ("b", "b", "a"): 2, ("b", "b", "b"): 4}, 2,
                            [("f0", "a", 1, 1), ("f1", "a", 1, 3), ("f1", "b", 1, 1),
                             ("f2", "a", 1, 2), ("f2", "b", 0, 1)])
    lot = check_goldilocks(inst, panels, gamma)
    assert lot.method == "exact column generation"


def test_goldilocks_exact_fallback_matches_brute_force():
    inst, panels = instance({("a", "b", "a"): 4, ("a", "c", "c"): 2, ("b", "b", "c"): 1,
                             ("b", "c", "b"): 2}, 4,
                            [("f0", "a", 3, 3), ("f0", "b", 1, 3), ("f1", "c", 1, 2),
                             ("f2", "b", 0, 1), ("f2", "c", 0, 1)])
    check_goldilocks(inst, panels, 1.0)
    check_diversimax(inst, panels)


@pytest.mark.parametrize("algorithm", ["goldilocks", "diversimax"])
def test_cli_replace_with_each_algorithm_verifies_with_recompute(pool, algorithm):
    d, p, q = pool
    bundle = d / f"replace-from-{algorithm}"
    code, text = run("draw", p, "-q", q, "-k", 40, "--seed", "first", "--out", bundle)
    assert code == 0, text
    panel = (bundle / "panel.csv").read_text(encoding="utf-8").splitlines()
    declined = d / f"declined-{algorithm}.txt"
    declined.write_text("\n".join(line.split(",")[0] for line in panel[1:3]) + "\n",
                        encoding="utf-8")
    lot = d / f"replace-lot-{algorithm}"
    code, text = run("replace", bundle, "--pool", p, "--declined", declined, "--prepare",
                     "-a", algorithm, "--out", lot)
    assert code == 0, text
    assert json.loads((lot / "lottery.json").read_text(encoding="utf-8"))["algorithm"] \
        == algorithm
    code, text = run("replace", bundle, "--pool", p, "--declined", declined, "--seed", "second",
                     "--lottery", lot, "-a", "leximin", "--out", d / f"replaced-{algorithm}")
    assert code == 2 and f"its algorithm is {algorithm}, --algorithm says leximin" in text
    code, text = run("replace", bundle, "--pool", p, "--declined", declined, "--seed", "second",
                     "--lottery", lot, "--out", d / f"replaced-{algorithm}")
    assert code == 0, text
    code, text = verify(d / f"replaced-{algorithm}", p, "--recompute")
    assert code == 0, text
    assert f"recomputed {algorithm}" in text
