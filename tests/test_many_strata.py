"""Pools where nearly every person is a stratum of their own (issue 11), and --time-limit.

LEXIMIN against brute force on small many-feature instances (strata ≈ people), once as is and
once with enumeration of roundings switched off, so that every LP vertex of the face walk is
rounded by the CP-SAT neighbourhood repair. Then the time limit: the best lottery found and the
certified bound as a JSON object, exit 1 and nothing written; `--accept-gap` accepting it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import strategies
from cli_runner import invoke
from cli_runner import run as cli_run
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st
from strategies import Instance
from test_lottery import all_panels, check_leximin

import sortition.lottery.decompose as decompose
import sortition.lottery.leximin as leximin
from sortition.core.errors import SolverTimeout
from sortition.core.resources import builtin_path
from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.lottery.compute import compute_lottery


def many_feature_instances() -> st.SearchStrategy[Instance]:
    """5-6 features, 8-11 people, nearly all of them alone in their stratum."""
    return strategies.instances(features=(5, 6), keys=(8, 11),
                                counts=st.integers(0, 7).map(lambda x: 1 + (x == 0)),
                                size=(3, 5), slack=1, cross=(0, 0))


def _feasible(inst: Instance):
    panels = all_panels(inst)
    assume(len(panels) > 0)
    return inst, panels


@strategies.examples(40, HealthCheck.too_slow, HealthCheck.filter_too_much)
@given(many_feature_instances())
def test_many_strata_leximin_matches_brute_force(instance):
    check_leximin(*_feasible(instance))


@strategies.examples(40, HealthCheck.too_slow, HealthCheck.filter_too_much,
                     HealthCheck.function_scoped_fixture)
@given(many_feature_instances())
def test_cpsat_rounding_matches_brute_force(monkeypatch, instance):
    monkeypatch.setattr(decompose, "ENUMERATE", 0)  # every fractional vertex goes to CP-SAT
    check_leximin(*_feasible(instance))


# ---------------------------------------------------------------------------
# --time-limit and --accept-gap


def _truncated_walk(steps: int):
    """The real walk, cut after `steps` panels as if the time limit had struck there."""
    real = decompose.walk

    def walk(system, target, **kwargs):
        found = real(system, target, **kwargs)
        keep = min(steps, len(found.panels))
        w = found.weights[:keep]
        return decompose.Walk(found.panels[:keep], w, 1.0 - float(w.sum()), keep,
                              found.lp_solves, found.ip_solves, "time limit")

    return walk


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("extended")
    pool = folder / "pool.parquet"
    write_pool(synthesize_pool(300, 1, extended=True), pool)
    return {"pool": pool, "quotas": builtin_path("quotas/occitanie-2020-extended.toml")}


def test_time_limit_gives_the_best_lottery_or_accepts_it(monkeypatch, extended, tmp_path):
    from sortition.inputs.pool import load_pool
    from sortition.inputs.quotas import load_quotas
    from sortition.inputs.strata import build_strata

    q = load_quotas(extended["quotas"], 30)
    strata = build_strata(load_pool(extended["pool"], q.all_features, quotas=q),
                          q.all_features)
    monkeypatch.setattr(leximin, "walk", _truncated_walk(5))
    with pytest.raises(SolverTimeout) as stopped:
        compute_lottery(strata, q, 30, "leximin", time_limit=600)
    best = stopped.value.lottery
    assert best is not None and best.details["status"] == "time_limit"
    assert 0 < best.gap <= 1 and len(best.panels) == 5
    assert stopped.value.bound == pytest.approx(float(best.target.min()))
    with pytest.raises(SolverTimeout):  # a gap above the accepted one: still stopped
        compute_lottery(strata, q, 30, "leximin", time_limit=600, accept_gap=best.gap / 2)
    accepted = compute_lottery(strata, q, 30, "leximin", time_limit=600, accept_gap=best.gap)
    assert accepted.gap == best.gap and accepted.details["status"] == "time_limit"
    assert abs(float(accepted.weights.sum()) - 1) <= 1e-9

    args = ["probabilities", str(extended["pool"]), "-q", str(extended["quotas"]), "-k", "30",
            "--out", str(tmp_path / "p.csv"), "--json", "--time-limit", "600"]
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "time_limit" and doc["panels"] == 5 and doc["gap"] > 0
    assert doc["certified_upper_bound"] > 0
    assert not (tmp_path / "p.csv").exists()
    result = invoke(*args + ["--accept-gap", "1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "time_limit" and doc["accepted_gap"] == 1
    assert (tmp_path / "p.csv").exists()

    lot = ["lottery", str(extended["pool"]), "-q", str(extended["quotas"]), "-k", "30",
           "--time-limit", "600"]
    result = invoke(*lot + ["--out", str(tmp_path / "l1")])
    assert result.exit_code == 1 and not (tmp_path / "l1").exists(), result.output
    assert "best lottery found" in " ".join(result.stdout.split())
    result = invoke(*lot + ["--out", str(tmp_path / "l2"), "--accept-gap", "0.9"])
    assert result.exit_code == 0, result.output
    published = json.loads((tmp_path / "l2" / "lottery.json").read_text(encoding="utf-8"))
    assert published["certified_gap"] == pytest.approx(doc["gap"])
    result = invoke(*lot + ["--out", str(tmp_path / "l3"), "--accept-gap", "2"])
    assert result.exit_code == 2 and not (tmp_path / "l3").exists()


def test_time_limit_is_honoured_on_a_hard_instance(tmp_path):
    """12 000 respondents, 8 features, ~8 000 strata: a 1 s limit stops it, exit 1, JSON.

    The allowance checked is generous (the issue's max(2 s, 2 %) plus loading the pool on a
    busy machine); benchmarks/ measure the overshoot itself.
    """
    pool = tmp_path / "pool.parquet"
    write_pool(synthesize_pool(12000, 1, extended=True), pool)
    quotas = builtin_path("quotas/occitanie-2020-extended-opinion.toml")
    result = invoke(*["probabilities", str(pool), "-q", str(quotas), "-k", "150",
                                      "--out", str(tmp_path / "p.csv"), "--json",
                                      "--time-limit", "1"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "time_limit"
    if doc["panels"] is not None:  # stopped in the walk (not in the relaxation)
        assert doc["certified_upper_bound"] > 0 and 0 < doc["gap"] <= 1
    assert doc["seconds"] <= 1 + 2 + 10
    assert not (tmp_path / "p.csv").exists()


# ---------------------------------------------------------------------------
# A walk stopped by the time limit: the point it left is covered, nobody is left at zero


def _system(extended, size: int):
    from sortition.inputs.pool import load_pool
    from sortition.inputs.quotas import load_quotas
    from sortition.inputs.strata import build_strata
    from sortition.lottery.panels import quota_system

    q = load_quotas(extended["quotas"], size)
    strata = build_strata(load_pool(extended["pool"], q.all_features, quotas=q),
                          q.all_features)
    return quota_system(strata, q, size)


@pytest.mark.parametrize("steps", [1, 4, 12])
def test_completion_covers_the_point_the_walk_left(extended, steps):
    system = _system(extended, 30)
    target = leximin.relaxed_leximin(system)
    n = system.counts.astype(float)
    m = target * n
    full = decompose.walk(system, m)
    assert full.remainder < 1e-9 and len(full.panels) > steps
    # the walk as the time limit would have left it after `steps` panels: the point left is
    # what the remaining weight must still give, by the walk's invariant
    shared = full.weights[:steps]
    rest = 1.0 - float(shared.sum())
    point = (m - shared @ full.panels[:steps].astype(float)) / rest
    cut = decompose.Walk(full.panels[:steps], shared, rest, steps, steps, 0, "time limit",
                         point=point)
    done = decompose.complete(system, m, cut, deadline=None)
    assert done is not None and done.uncovered == 0
    assert all(system.satisfied(p) for p in done.panels)
    assert float(done.weights.sum()) == pytest.approx(rest, abs=1e-12)
    weights = np.concatenate([shared, done.weights])
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    implied = weights @ np.vstack([cut.panels, done.panels]).astype(float) / n
    assert (implied[target > 0] > 0).all()  # nobody with a chance in the optimum is left out
    assert float(implied @ n) == pytest.approx(30, abs=1e-9)  # the panel size, in expectation


def test_a_walk_stopped_by_the_time_limit_is_completed(monkeypatch, extended):
    """Through compute_lottery: the stopped walk's lottery, completed, gives everyone a chance."""
    from sortition.inputs.pool import load_pool
    from sortition.inputs.quotas import load_quotas
    from sortition.inputs.strata import build_strata

    real = decompose.walk

    def stopped_walk(system, target, **kwargs):
        found = real(system, target)
        k = 3
        shared = found.weights[:k]
        rest = 1.0 - float(shared.sum())
        point = (target - shared @ found.panels[:k].astype(float)) / rest
        return decompose.Walk(found.panels[:k], shared, rest, k, k, 0, "time limit",
                              point=point)

    monkeypatch.setattr(leximin, "walk", stopped_walk)
    q = load_quotas(extended["quotas"], 30)
    strata = build_strata(load_pool(extended["pool"], q.all_features, quotas=q),
                          q.all_features)
    with pytest.raises(SolverTimeout) as stopped:
        compute_lottery(strata, q, 30, "leximin", time_limit=600)
    best = stopped.value.lottery
    assert best is not None and best.details["status"] == "time_limit"
    p = best.stratum_probabilities()
    assert (p[best.target > 0] > 0).all() and 0 <= best.gap < float(best.target.max())
    assert "covered" in stopped.value.problems[0]


# ---------------------------------------------------------------------------
# --time-limit in the other phases: legacy runs, replacements, check


def test_legacy_runs_stop_at_the_time_limit(extended, tmp_path):
    import time

    start = time.perf_counter()
    code, out = cli_run("probabilities", extended["pool"], "-q", extended["quotas"], "-k", 30,
                        "-a", "legacy", "--runs", 100_000, "--time-limit", 0.5,
                        "--out", tmp_path / "p.csv", "--json")
    elapsed = time.perf_counter() - start
    assert code == 1, out
    doc = json.loads(out[out.index("{"):])
    assert doc["status"] == "time_limit" and "legacy runs" in doc["message"]
    assert 0 < doc["expected_panel_size"] <= 30 + 1e-9
    assert elapsed <= 0.5 + 2 + 3  # max(2 s, 2 %) plus loading on a busy machine
    assert not (tmp_path / "p.csv").exists()


def test_replace_honours_the_time_limit(extended, tmp_path):
    pool, quotas = extended["pool"], extended["quotas"]
    code, out = cli_run("draw", pool, "-q", quotas, "-k", 30, "--seed", "s",
                        "-o", tmp_path / "b")
    assert code == 0, out
    panel = (tmp_path / "b" / "panel.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "no.txt").write_text(panel[1].split(",")[0] + "\n", encoding="utf-8")
    for extra in (["--prepare"], ["--seed", "s2"]):
        code, out = cli_run("replace", tmp_path / "b", "--pool", pool, "--declined",
                            tmp_path / "no.txt", "-o", tmp_path / "b2", "--time-limit",
                            0.000001, *extra)
        assert code == 1 and "time limit" in out, out
        assert not (tmp_path / "b2").exists()


def test_check_stops_within_its_time_limit(tmp_path):
    import time

    pool = tmp_path / "pool.parquet"
    write_pool(synthesize_pool(12000, 1, extended=True), pool)
    quotas = builtin_path("quotas/occitanie-2020-extended-opinion.toml")
    start = time.perf_counter()
    code, out = cli_run("check", pool, "-q", quotas, "-k", 150, "--time-limit", 1)
    assert code in (0, 1), out
    assert time.perf_counter() - start <= 1 + 2 + 10  # max(2 s, 2 %) plus loading, busy machine
