"""The shared instance generator keeps its promises: the brute-force properties of check,
legacy, lottery and the objectives rely on them (feasible when drawn around a real panel, the
edge cases reachable when asked for)."""

from __future__ import annotations

import numpy as np
import strategies
from hypothesis import HealthCheck, find, given
from hypothesis import strategies as st
from test_check import instances as edge_instances
from test_lottery import all_panels


def _well_formed(inst: strategies.Instance) -> None:
    assert inst.quotas.size == inst.size >= 1
    assert len(inst.strata.keys) == len(inst.strata.counts) and (inst.strata.counts > 0).all()
    for q in [*inst.quotas.values, *inst.quotas.cross]:
        assert 0 <= q.min <= q.max
    groups = [(c.features, c.values) for c in inst.quotas.cross]
    assert len(groups) == len(set(groups))
    assert all(a < b for (a, b), _ in groups)  # features in order, never a feature twice


@strategies.examples(60, HealthCheck.too_slow, HealthCheck.filter_too_much)
@given(strategies.instances(counts=st.integers(0, 3), slack=1, cross=(0, 3)))
def test_instances_drawn_around_a_real_panel_are_feasible(inst):
    _well_formed(inst)
    assert inst.size <= int(inst.strata.counts.sum())
    assert len(all_panels(inst)) > 0


@strategies.examples(60, HealthCheck.too_slow)
@given(edge_instances())
def test_edge_instances_are_well_formed(inst):
    _well_formed(inst)


def _reaches(condition) -> strategies.Instance:
    return find(edge_instances(), condition, settings=strategies.examples(
        2000, HealthCheck.too_slow, database=None))


def test_edge_instances_reach_every_case_the_check_test_counts_on():
    def pool(i: strategies.Instance) -> int:
        return int(i.strata.counts.sum())

    small = _reaches(lambda i: pool(i) < i.size)
    assert pool(small) < small.size
    infeasible = _reaches(lambda i: pool(i) >= i.size and len(all_panels(i)) == 0)
    assert len(all_panels(infeasible)) == 0
    assert _reaches(lambda i: any(q.value == "absent" for q in i.quotas.values))
    assert _reaches(lambda i: len(i.quotas.cross) == 2)
    # a value without a quota: fewer one-way quotas than values present
    assert _reaches(lambda i: len(i.quotas.values) < sum(
        len({k[j] for k in i.strata.keys}) for j in range(len(i.features))))
    # the guide overfills: a group's minimum above everyone in it
    assert _reaches(lambda i: any(
        q.min > int(np.sum([n for k, n in zip(i.strata.keys, i.strata.counts.tolist(),
                                              strict=True)
                            if k[i.features.index(q.feature)] == q.value]))
        for q in i.quotas.values))
