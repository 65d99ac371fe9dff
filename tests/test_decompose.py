"""The face walk: expected seats written as a lottery of integer panels."""

from __future__ import annotations

import numpy as np
import strategies
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from sortition.core.resources import occitanie_quotas
from sortition.inputs.pool import load_pool
from sortition.inputs.quotas import load_quotas
from sortition.inputs.strata import build_strata
from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.lottery.compute import compute_lottery
from sortition.lottery.decompose import walk
from sortition.lottery.leximin import leximin, relaxed_leximin
from sortition.lottery.panels import QuotaSystem, quota_system


@st.composite
def systems_with_targets(draw) -> tuple[QuotaSystem, np.ndarray]:
    """A random quota system and a target known to be a mix of its integer panels.

    Strata get random values of three features; a few random seat vectors are drawn and the
    quota bounds are set around their group sums, so each of them is a panel; the target is a
    random mix of them.
    """
    s = draw(st.integers(3, 14))
    counts = np.array(draw(st.lists(st.integers(0, 5), min_size=s, max_size=s)),
                      dtype=np.int64)
    total = int(counts.sum())
    size = draw(st.integers(1, max(1, min(8, total))))
    if total < size:
        counts[0] += size - total
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    panels = []
    for _ in range(draw(st.integers(1, 5))):
        x = np.zeros(s, dtype=np.int64)
        room = counts.copy()
        for _ in range(size):
            i = int(rng.choice(np.flatnonzero(room > 0)))
            x[i] += 1
            room[i] -= 1
        panels.append(x)
    groups, lo, hi = [], [], []
    for _ in range(3):
        value = rng.integers(0, draw(st.integers(2, 4)), size=s)
        for v in np.unique(value).tolist():
            g = np.flatnonzero(value == v)
            sums = [int(x[g].sum()) for x in panels]
            slack = draw(st.integers(0, 1))
            groups.append(g)
            lo.append(max(0, min(sums) - slack))
            hi.append(max(sums) + slack)
    system = QuotaSystem(counts, size, groups, np.array(lo, dtype=np.int64),
                         np.array(hi, dtype=np.int64), [f"g{j}" for j in range(len(groups))])
    weights = rng.dirichlet(np.ones(len(panels)))
    target = weights @ np.array(panels, dtype=float)
    return system, target


@strategies.examples(150, HealthCheck.too_slow)
@given(systems_with_targets())
def test_walk_panels_meet_the_quotas_and_keep_the_expectation(case):
    system, target = case
    found = walk(system, target)
    assert len(found.panels) == len({p.tobytes() for p in found.panels})
    for p in found.panels:
        assert system.satisfied(p)
    assert (found.weights > 0).all()
    assert found.weights.sum() <= 1 + 1e-12
    # What the walk did not share out is at most its remainder times the largest seat count.
    seats = found.weights @ found.panels.astype(float)
    assert np.abs(seats - target).max() <= found.remainder * max(1, system.counts.max()) + 1e-7
    if found.stopped == "complete":
        assert found.remainder < 1e-7
        assert np.abs(seats / found.weights.sum() - target).max() < 1e-6


@strategies.examples(40, HealthCheck.too_slow)
@given(systems_with_targets())
def test_walk_is_deterministic(case):
    system, target = case
    a, b = walk(system, target), walk(system, target)
    assert np.array_equal(a.panels, b.panels)
    assert np.array_equal(a.weights, b.weights)


def test_walk_gives_the_exact_leximin_on_an_occitanie_pool(tmp_path):
    """500 synthetic contacts, 306 strata: the walk alone writes the relaxed optimum exactly."""
    quotas = load_quotas(occitanie_quotas(), 100)
    path = tmp_path / "pool.parquet"
    write_pool(synthesize_pool(500, 1), path)
    pool = load_pool(path, quotas.all_features, quotas=quotas)
    strata = build_strata(pool, quotas.all_features)
    system = quota_system(strata, quotas, 100)
    sol = leximin(system)
    assert sol.method == "relaxation+face walk"
    assert sol.details["walk_ip_solves"] == 0
    relaxed = relaxed_leximin(system)
    implied = sol.weights @ sol.panels.astype(float) / system.counts
    assert np.abs(implied - relaxed).max() <= 1e-8
    assert all(system.satisfied(p) for p in sol.panels)
    lottery = compute_lottery(strata, quotas, 100)
    assert lottery.gap <= 1e-8
    assert abs(float(lottery.stratum_probabilities() @ system.counts) - 100) <= 1e-6
