"""The one mapping from quotas to strata (`quota_system`) and the one way quota rows enter a
solver model (`add_quotas_lp`, `add_quotas_cp`): a seat vector is feasible in either model
exactly when `QuotaSystem.satisfied` says so."""

from __future__ import annotations

import itertools

import numpy as np
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from sortition.bundle.audit import quota_seats, replacement_attainment
from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota
from sortition.inputs.strata import strata_from_counts
from sortition.lottery.panels import add_quotas_cp, add_quotas_lp, quota_label, quota_system

FEATURES = ["a", "b"]
COUNTS = {("a0", "b0"): 2, ("a0", "b1"): 1, ("a1", "b0"): 2, ("a1", "b1"): 2}


def _quotas() -> Quotas:
    values = [ValueQuota("a", "a0", 1, 2), ValueQuota("b", "b1", 0, 1),
              ValueQuota("a", "nobody", 0, 3), ValueQuota("c", "c0", 0, 1)]
    cross = [CrossQuota(("a", "b"), ("a1", "b0"), 1, 1)]
    return Quotas(values, cross, 3, "test")


def _system():
    return quota_system(strata_from_counts(FEATURES, COUNTS), _quotas(), 3)


def test_every_row_is_a_group_in_quota_order():
    system = _system()
    assert [g.tolist() for g in system.groups] == [[0, 1], [1, 3], [], [], [2]]
    assert system.labels == ["a=a0", "b=b1", "a=nobody", "c=c0", "a=a1 & b=b0"]
    assert system.features == [("a",), ("b",), ("a",), ("c",), ("a", "b")]
    assert system.values == [("a0",), ("b1",), ("nobody",), ("c0",), ("a1", "b0")]
    assert [quota_label(f, v) for f, v in zip(system.features, system.values,
                                              strict=True)] == system.labels
    assert system.rows() == [([0, 1], 1, 2), ([1, 3], 0, 1), ([], 0, 3), ([], 0, 1),
                             ([2], 1, 1)]
    kept = np.array([1, 0, 1, 0])
    assert system.rows(kept) == [([0, 1], 0, 1), ([1, 3], 0, 1), ([], 0, 3), ([], 0, 1),
                                 ([2], 0, 0)]


def _vectors(system):
    return [np.array(x) for x in itertools.product(*(range(n + 1)
                                                     for n in system.counts.tolist()))]


def _lp_feasible(system, x) -> bool:
    solver = pywraplp.Solver.CreateSolver("SCIP")
    xs = [solver.IntVar(float(v), float(v), "") for v in x.tolist()]
    add_quotas_lp(solver, xs, system)
    return solver.Solve() == pywraplp.Solver.OPTIMAL


def _cp_feasible(system, x) -> bool:
    model = cp_model.CpModel()
    xs = [model.new_int_var(int(v), int(v), "") for v in x.tolist()]
    add_quotas_cp(model, xs, system)
    return cp_model.CpSolver().solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def test_both_models_accept_exactly_the_satisfying_panels():
    system = _system()
    vectors = _vectors(system)
    satisfied = [system.satisfied(x) for x in vectors]
    assert any(satisfied) and not all(satisfied)
    assert [_lp_feasible(system, x) for x in vectors] == satisfied
    assert [_cp_feasible(system, x) for x in vectors] == satisfied


def test_kept_seats_and_seats_given_up():
    """`kept` seats count towards every quota; with `less`, a stratum's seats are x − less
    (what `replace` asks: people who join minus members released)."""
    system = _system()
    kept = np.array([1, 0, 0, 0])  # one member of a0/b0 stays: a=a0 needs 0 to 1 more
    for x in _vectors(system):
        if x.sum() != 2:
            continue
        expected = system.satisfied(x + kept)
        solver = pywraplp.Solver.CreateSolver("SCIP")
        xs = [solver.IntVar(float(v), float(v), "") for v in x.tolist()]
        add_quotas_lp(solver, xs, system, size=2, kept=kept)
        assert (solver.Solve() == pywraplp.Solver.OPTIMAL) == expected, x
        model = cp_model.CpModel()
        ys = [model.new_int_var(int(v), int(v), "") for v in x.tolist()]
        add_quotas_cp(model, ys, system, size=2, kept=kept)
        assert (cp_model.CpSolver().solve(model) == cp_model.OPTIMAL) == expected, x
        # the same panel written as 3 joining and 1 released from the kept stratum
        solver = pywraplp.Solver.CreateSolver("SCIP")
        join = [solver.IntVar(float(v + (s == 0)), float(v + (s == 0)), "")
                for s, v in enumerate(x.tolist())]
        leave = [solver.IntVar(float(s == 0), float(s == 0), "") for s in range(len(x))]
        add_quotas_lp(solver, join, system, size=2, less=leave, kept=kept)
        assert (solver.Solve() == pywraplp.Solver.OPTIMAL) == expected, x


def test_attainment_counts_once_for_both_shapes():
    system = _system()
    seats = np.array([1, 0, 1, 1])  # a0/b0, a1/b0, a1/b1
    rows = quota_seats(system, seats)
    assert [(r["features"], r["values"], r["achieved"]) for r in rows] == [
        (("a",), ("a0",), 1), (("b",), ("b1",), 1), (("a",), ("nobody",), 0),
        (("c",), ("c0",), 0), (("a", "b"), ("a1", "b0"), 1)]
    shown = replacement_attainment(system, seats)
    assert [q["quota"] for q in shown] == sorted(system.labels, key=str.encode)
    assert shown[0] == {"quota": "a=a0", "min": 1, "max": 2, "achieved": 1}
