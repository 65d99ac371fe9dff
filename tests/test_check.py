"""Feasibility check: verdicts, explanations, minimal relaxations and impossible strata.

Small random instances are checked against brute-force enumeration of every panel, so the
solver's answers (not just their format) are tested.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import strategies
from cli_runner import with_hash_seed
from conftest import quota_membership, seat_vectors
from hypothesis import HealthCheck, event, given
from hypothesis import strategies as st

from sortition.core.errors import InfeasibleError
from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota, flex_bounds
from sortition.inputs.strata import Strata, strata_from_counts
from sortition.lottery.check import (
    FeasibilityReport,
    RelaxedQuota,
    apply_relaxation,
    check_feasibility,
    feature_table,
    find_relaxation,
)

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------
# Helpers


def _brute(strata: Strata, quotas: Quotas, size: int) -> dict:
    counts = [int(n) for n in strata.counts.tolist()]
    panels = seat_vectors(counts, size)
    a, lo, hi = quota_membership(strata.features, strata.keys, quotas)
    sums = panels @ a.T
    ok = np.all((sums >= lo) & (sums <= hi), axis=1)
    violation = (np.maximum(0, lo - sums) + np.maximum(0, sums - hi)).sum(axis=1)
    feasible = panels[ok]
    possible = (feasible > 0).any(axis=0) if len(feasible) else np.zeros(len(counts), bool)
    return {
        "feasible": bool(ok.any()),
        "min_violation": int(violation.min()) if len(panels) else None,
        "impossible": [(strata.keys[i], counts[i]) for i in range(len(counts))
                       if counts[i] > 0 and not possible[i]],
    }


def _assert_witness(report: FeasibilityReport, strata: Strata, quotas: Quotas) -> None:
    assert report.witness is not None
    counts = dict(zip(strata.keys, strata.counts.tolist(), strict=True))
    assert sum(report.witness.values()) == report.size
    for key, n in report.witness.items():
        assert 1 <= n <= counts[key]
    for q in quotas.values:
        j = strata.features.index(q.feature)
        got = sum(n for k, n in report.witness.items() if k[j] == q.value)
        assert q.min <= got <= q.max, (q, got)
    for c in quotas.cross:
        j0, j1 = (strata.features.index(f) for f in c.features)
        got = sum(n for k, n in report.witness.items()
                  if k[j0] == c.values[0] and k[j1] == c.values[1])
        assert c.min <= got <= c.max, (c, got)


def vq(feature: str, value: str, lo: int, hi: int) -> ValueQuota:
    return ValueQuota(feature, value, lo, hi)


def two_by_two(my: int = 5, mo: int = 5, wy: int = 5, wo: int = 5) -> Strata:
    return strata_from_counts(["gender", "age"], {("man", "young"): my, ("man", "old"): mo,
                                                  ("woman", "young"): wy, ("woman", "old"): wo})


# ---------------------------------------------------------------------------
# Hand-made cases


def test_feasible_instance_has_valid_witness() -> None:
    strata = two_by_two(6, 4, 3, 7)
    quotas = Quotas([vq("gender", "man", 4, 6), vq("gender", "woman", 4, 6),
                     vq("age", "young", 3, 5), vq("age", "old", 5, 7)],
                    [CrossQuota(("gender", "age"), ("woman", "young"), 1, 2)])
    report = check_feasibility(strata, quotas, 10)
    assert report.feasible and report.status == "feasible"
    assert report.reasons == [] and report.shortfalls == []
    assert report.relaxation is None
    assert report.pool_size == 20 and report.size == 10
    _assert_witness(report, strata, quotas)
    assert report.impossible_checked and report.impossible_strata == []
    json.dumps(report.to_dict())  # serialisable
    assert "seconds" not in report.to_dict()
    assert report.to_dict(include_timing=True)["seconds"] >= 0


def test_pool_too_small() -> None:
    strata = two_by_two(1, 1, 1, 1)
    quotas = Quotas([vq("gender", "man", 0, 5), vq("gender", "woman", 0, 5)])
    report = check_feasibility(strata, quotas, 5)
    assert not report.feasible and report.status == "infeasible"
    assert "not enough people: 4 in the pool, 5 needed" in report.reasons
    assert report.relaxation is None
    assert any("no change to the quotas can help" in w for w in report.warnings)


def test_minima_sum_above_size() -> None:
    strata = two_by_two()
    quotas = Quotas([vq("gender", "man", 3, 5), vq("gender", "woman", 3, 5)])
    report = check_feasibility(strata, quotas, 5)
    assert report.status == "infeasible"
    assert "feature gender: minima sum to 6 > panel size 5" in report.reasons


def test_maxima_sum_below_size() -> None:
    strata = two_by_two()
    quotas = Quotas([vq("gender", "man", 0, 2), vq("gender", "woman", 0, 2)])
    report = check_feasibility(strata, quotas, 5)
    assert report.status == "infeasible"
    assert "feature gender: maxima sum to 4 < panel size 5" in report.reasons


def test_maxima_sum_counts_people_without_a_quota() -> None:
    """Values without a quota are unconstrained, so low maxima alone are not infeasible."""
    strata = two_by_two()
    quotas = Quotas([vq("gender", "man", 0, 2)])
    report = check_feasibility(strata, quotas, 5)
    assert report.feasible
    assert any("without a quota (woman)" in w for w in report.warnings)


def test_shortfall_against_pool() -> None:
    strata = two_by_two(10, 10, 1, 1)
    quotas = Quotas([vq("gender", "man", 0, 10), vq("gender", "woman", 5, 10)])
    report = check_feasibility(strata, quotas, 10)
    assert report.status == "infeasible"
    assert "gender=woman: minimum 5 but only 2 in the pool (short by 3)" in report.reasons
    assert report.shortfalls == [{"feature": "gender", "value": "woman", "pool": 2, "min": 5,
                                  "max": 10, "shortfall": 3, "kind": "value"}]
    assert report.relaxation == [RelaxedQuota(("gender",), ("woman",), 5, 10, 2, 10)]


def test_absent_value_with_positive_minimum_is_infeasible() -> None:
    strata = two_by_two()
    quotas = Quotas([vq("gender", "man", 0, 5), vq("gender", "woman", 0, 5),
                     vq("gender", "other", 1, 2)])
    report = check_feasibility(strata, quotas, 5)
    assert report.status == "infeasible"
    assert any(r.startswith("gender=other: minimum 1 but nobody in the pool")
               for r in report.reasons)
    assert report.shortfalls[0]["pool"] == 0 and report.shortfalls[0]["shortfall"] == 1
    assert report.relaxation == [RelaxedQuota(("gender",), ("other",), 1, 2, 0, 2)]


def test_absent_value_with_zero_minimum_is_a_warning() -> None:
    strata = two_by_two()
    quotas = Quotas([vq("gender", "man", 0, 5), vq("gender", "woman", 0, 5),
                     vq("gender", "other", 0, 2)])
    report = check_feasibility(strata, quotas, 5)
    assert report.feasible
    assert any(w.startswith("gender=other: nobody in the pool") for w in report.warnings)
    _assert_witness(report, strata, quotas)


def test_cross_quota_makes_instance_infeasible() -> None:
    strata = two_by_two()
    one_way = [vq("gender", "man", 2, 3), vq("gender", "woman", 2, 3),
               vq("age", "young", 4, 5), vq("age", "old", 0, 1)]
    assert check_feasibility(strata, Quotas(one_way), 5).feasible
    cross = [CrossQuota(("gender", "age"), ("woman", "old"), 2, 2)]
    quotas = Quotas(one_way, cross)
    report = check_feasibility(strata, quotas, 5)
    assert report.status == "infeasible"
    # Every single check passes: only the exact solve can see the conflict.
    assert report.shortfalls == []
    assert len(report.reasons) == 1 and report.reasons[0].startswith("no panel of 5")
    assert report.relaxation_total == 1 and report.relaxation_optimal
    fixed = apply_relaxation(quotas, report.relaxation)
    again = check_feasibility(strata, fixed, 5)
    assert again.feasible
    _assert_witness(again, strata, fixed)


def test_relaxation_is_minimal_by_hand() -> None:
    """Pool has 2 women and 10 men; seats 5; women min 5, men max 3.

    Panels (w, m) with w <= 2: (2, 3) needs women's minimum lowered by 3; (1, 4) needs 4 + 1;
    so the unique smallest change is women's minimum 5 -> 2, total 3.
    """
    strata = strata_from_counts(["gender"], {("woman",): 2, ("man",): 10})
    quotas = Quotas([vq("gender", "woman", 5, 5), vq("gender", "man", 0, 3)])
    report = check_feasibility(strata, quotas, 5)
    assert report.status == "infeasible"
    assert report.relaxation_total == 3
    assert report.relaxation == [RelaxedQuota(("gender",), ("woman",), 5, 5, 2, 5)]
    r = report.relaxation[0]
    assert (r.feature, r.value, r.change, r.label) == ("gender", "woman", 3, "gender=woman")
    fixed = report.apply_relaxation(quotas)
    assert [(q.min, q.max) for q in fixed.values] == [(2, 5), (0, 3)]
    assert check_feasibility(strata, fixed, 5).feasible


def test_relaxation_prefers_fewest_quotas_changed() -> None:
    """Minima 3 + 3 for 4 seats: lowering one minimum by 2 beats lowering both by 1."""
    strata = strata_from_counts(["gender"], {("woman",): 4, ("man",): 4})
    quotas = Quotas([vq("gender", "woman", 3, 4), vq("gender", "man", 3, 4)])
    report = check_feasibility(strata, quotas, 4)
    assert report.relaxation_total == 2
    assert report.relaxation is not None and len(report.relaxation) == 1
    assert check_feasibility(strata, report.apply_relaxation(quotas), 4).feasible


def test_relaxation_of_cross_quota_keeps_metadata() -> None:
    strata = two_by_two(5, 5, 5, 1)
    cross = CrossQuota(("gender", "age"), ("woman", "old"), 3, 4, share=0.25, target=3)
    quotas = Quotas([vq("gender", "man", 0, 5)], [cross], size=5, source="spec.toml")
    report = check_feasibility(strata, quotas, 5)
    assert report.relaxation == [RelaxedQuota(("gender", "age"), ("woman", "old"), 3, 4, 1, 4)]
    d = report.to_dict()["relaxation"][0]
    assert d["feature"] == "gender x age" and d["value"] == "woman x old"
    assert d["features"] == ["gender", "age"] and d["values"] == ["woman", "old"]
    fixed = report.apply_relaxation(quotas)
    assert fixed.cross[0].share == 0.25 and fixed.cross[0].target == 3
    assert fixed.size == 5 and fixed.source == "spec.toml"
    assert (fixed.cross[0].min, fixed.cross[0].max) == (1, 4)
    assert quotas.cross[0].min == 3  # the original is untouched


def test_impossible_strata() -> None:
    """old <= 1 seat and man & old == 1 seat leave no room for woman & old."""
    strata = two_by_two(3, 3, 3, 4)
    quotas = Quotas([vq("gender", "man", 2, 2), vq("gender", "woman", 2, 2),
                     vq("age", "young", 0, 4), vq("age", "old", 0, 1)],
                    [CrossQuota(("gender", "age"), ("man", "old"), 1, 1)])
    report = check_feasibility(strata, quotas, 4)
    assert report.feasible and report.impossible_checked
    assert report.impossible_strata == [(("woman", "old"), 4)]
    assert report.impossible_people == 4
    assert report.to_dict()["impossible_strata"] == [
        {"stratum": {"gender": "woman", "age": "old"}, "people": 4}]


def test_time_limit_exhausted_is_unknown() -> None:
    strata = two_by_two()
    quotas = Quotas([vq("gender", "man", 2, 3), vq("gender", "woman", 2, 3)])
    report = check_feasibility(strata, quotas, 5, time_limit=1e-9)  # out before any solve
    assert report.status == "unknown" and not report.feasible
    assert any("time limit" in r for r in report.reasons)


def test_feature_table_rows() -> None:
    strata = two_by_two(6, 4, 3, 7)
    quotas = Quotas([vq("gender", "man", 4, 6), vq("gender", "woman", 4, 6)],
                    [CrossQuota(("gender", "age"), ("woman", "young"), 1, 4)])
    rows = feature_table(strata, quotas, 10)
    assert [(r["feature"], r["value"], r["pool"], r["min"], r["max"]) for r in rows] == [
        ("gender", "man", 10, 4, 6), ("gender", "woman", 10, 4, 6),
        ("gender x age", "woman x young", 3, 1, 4)]
    assert rows[0]["pool_share"] == pytest.approx(0.5)
    assert rows[2]["pool_share"] == pytest.approx(0.15)


# ---------------------------------------------------------------------------
# Determinism


_SCRIPT = textwrap.dedent("""
    import json
    from sortition.lottery.check import check_feasibility
    from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota
    from sortition.inputs.strata import strata_from_counts

    def cases():
        counts = {}
        for i, g in enumerate(["m", "w", "x"]):
            for j, a in enumerate(["a1", "a2", "a3", "a4"]):
                for k, r in enumerate(["u", "r"]):
                    counts[(g, a, r)] = (i * 7 + j * 3 + k * 5) % 6 + 1
        strata = strata_from_counts(["g", "a", "r"], counts)
        vs = [ValueQuota("g", "m", 4, 6), ValueQuota("g", "w", 4, 6), ValueQuota("g", "x", 0, 2),
              ValueQuota("a", "a1", 2, 4), ValueQuota("a", "a2", 2, 4),
              ValueQuota("a", "a3", 2, 4), ValueQuota("a", "a4", 0, 3),
              ValueQuota("r", "u", 6, 9), ValueQuota("r", "r", 2, 5)]
        ok = Quotas(vs, [CrossQuota(("g", "r"), ("x", "r"), 0, 0)])
        bad = Quotas(vs, [CrossQuota(("g", "a"), ("w", "a1"), 3, 4),
                          CrossQuota(("g", "a"), ("m", "a1"), 3, 4)])
        return [check_feasibility(strata, q, 12).to_dict() for q in (ok, bad)]

    if __name__ == "__main__":
        print(json.dumps(cases()))
""")


def test_deterministic_within_and_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "det.py"
    script.write_text(_SCRIPT)
    namespace: dict = {}
    exec(compile(_SCRIPT, str(script), "exec"), namespace)
    first, second = namespace["cases"](), namespace["cases"]()
    assert first == second
    assert first[0]["status"] == "feasible" and first[0]["witness"]
    assert first[1]["status"] == "infeasible" and first[1]["relaxation"]
    res = with_hash_seed("12345", script, cwd=ROOT, env={
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert json.loads(out) == json.loads(json.dumps(first))


# ---------------------------------------------------------------------------
# Property: the solver agrees with brute force


def instances() -> st.SearchStrategy[strategies.Instance]:
    """Near the feasibility edge: the guide panel may overfill a stratum, one bound in four
    ignores it, some values have no quota, some quotas name a value no one has, and now and
    then the pool is smaller than the panel."""
    return strategies.instances(keys=(1, 9), counts=st.integers(1, 6), size=(1, 8),
                                too_small=True, exceed=True, slack=3, wild=4, skip=6,
                                absent=True, cross=(0, 2))


@strategies.examples(150, HealthCheck.too_slow)
@given(instances())
def test_matches_brute_force(instance: tuple[Strata, Quotas, int]) -> None:
    strata, quotas, size = instance
    report = check_feasibility(strata, quotas, size)
    truth = _brute(strata, quotas, size)
    assert report.status in ("feasible", "infeasible")
    exact_only = bool(report.reasons) and report.reasons[0].startswith("no panel")
    event(f"{report.status}, impossible strata: {bool(report.impossible_strata)}, "
          f"pool too small: {report.pool_size < size}, found by the exact solve: {exact_only}")
    assert report.feasible == truth["feasible"]
    if report.feasible:
        assert report.reasons == [] and report.relaxation is None
        _assert_witness(report, strata, quotas)
        assert report.impossible_checked
        assert report.impossible_strata == truth["impossible"]
    elif report.pool_size < size:
        assert report.relaxation is None
    else:
        assert report.reasons
        assert report.relaxation is not None and report.relaxation_optimal
        assert report.relaxation_total == truth["min_violation"]
        for r in report.relaxation:
            assert 0 <= r.new_min <= r.old_min and r.old_max <= r.new_max
            assert r.new_max <= max(size, r.old_max)
        fixed = apply_relaxation(quotas, report.relaxation)
        assert _brute(strata, fixed, size)["feasible"]
        again = check_feasibility(strata, fixed, size)
        assert again.feasible
        _assert_witness(again, strata, fixed)


# ---------------------------------------------------------------------------
# Property: soft quotas, the relaxation the rule picks (brute force)


def _brute_relaxation(strata: Strata, quotas: Quotas, size: int) -> set | None:
    """The rule's relaxation by enumeration. A panel needs exactly the slack that brings its
    counts within the bounds, and any relaxation admitting it has at least that slack on every
    bound; so the rule's choice is the least such need by (total, quotas changed, then the
    slacks in order: one-way quotas before cross quotas, by the bytes of their features and
    values, each minimum before its maximum). None when no panel is within the flex bounds."""
    counts = [int(n) for n in strata.counts.tolist()]
    panels = seat_vectors(counts, size)
    a, lo, hi = quota_membership(strata.features, strata.keys, quotas)
    every = [((q.feature,), (q.value,), q) for q in quotas.values] + \
        [(tuple(c.features), tuple(c.values), c) for c in quotas.cross]
    flex = np.array([flex_bounds(q, size) for _, _, q in every], dtype=np.int64).reshape(-1, 2)
    sums = panels @ a.T
    dlo, dhi = np.maximum(0, lo - sums), np.maximum(0, sums - hi)
    within = np.all((lo - dlo >= flex[:, 0]) & (hi + dhi <= flex[:, 1]), axis=1)
    if not within.any():
        return None

    def position(g: int) -> tuple:
        fs, vs, _ = every[g]
        return (len(fs), *[x.encode("utf-8") for f, v in zip(fs, vs, strict=True)
                           for x in (f, v)])

    order = sorted(range(len(every)), key=position)
    best = min((int(dlo[p].sum() + dhi[p].sum()), int(((dlo[p] + dhi[p]) > 0).sum()),
                tuple(v for g in order for v in (int(dlo[p, g]), int(dhi[p, g]))), p)
               for p in np.flatnonzero(within).tolist())
    p = best[3]
    return {(fs, vs, q.min, q.max, q.min - int(dlo[p, g]), q.max + int(dhi[p, g]))
            for g, (fs, vs, q) in enumerate(every) if dlo[p, g] or dhi[p, g]}


@st.composite
def flex_instances(draw: st.DrawFn) -> tuple[Strata, Quotas, int]:
    strata, quotas, size = draw(instances())

    def soft(q):
        if draw(st.integers(0, 2)) == 0:
            return q  # none declared: anywhere within [0, size]
        return replace(q, min_flex=draw(st.integers(0, q.min)),
                       max_flex=draw(st.integers(q.max, max(size, q.max))))

    return strata, Quotas([soft(q) for q in quotas.values],
                          [soft(c) for c in quotas.cross]), size


@strategies.examples(150, HealthCheck.too_slow)
@given(flex_instances())
def test_relaxation_is_the_smallest_within_flex_by_the_rule(instance) -> None:
    strata, quotas, size = instance
    report = check_feasibility(strata, quotas, size)
    if report.feasible or report.pool_size < size:
        event("feasible or pool too small")
        return
    truth = _brute_relaxation(strata, quotas, size)
    event("no relaxation within flex" if truth is None else f"relaxed {len(truth)} quota(s)")
    if truth is None:
        assert report.beyond_flex and report.relaxation is None
        assert any("flex bounds" in r for r in report.reasons)
        with pytest.raises(InfeasibleError, match="flex bounds"):
            find_relaxation(strata, quotas, size)
        return
    assert report.relaxation_optimal and not report.beyond_flex
    found = {(r.features, r.values, r.old_min, r.old_max, r.new_min, r.new_max)
             for r in report.relaxation}
    assert found == truth
    assert {(r.features, r.values, r.new_min, r.new_max)
            for r in find_relaxation(strata, quotas, size)} == \
        {(f, v, lo, hi) for f, v, _, _, lo, hi in truth}
    fixed = apply_relaxation(quotas, report.relaxation)
    assert _brute(strata, fixed, size)["feasible"]


def test_tie_rule_relaxes_the_later_quota() -> None:
    """Two ways of one seat each: the quota first in byte order keeps its bound."""
    strata = two_by_two(5, 5, 5, 5)
    quotas = Quotas([vq("age", "old", 0, 1), vq("age", "young", 0, 1)])
    report = check_feasibility(strata, quotas, 3)
    assert [(r.label, r.new_min, r.new_max) for r in report.relaxation] == [
        ("age=young", 0, 2)]
    soft = Quotas([vq("age", "old", 0, 1), replace(vq("age", "young", 0, 1), max_flex=1)])
    assert [(r.label, r.new_max) for r in find_relaxation(strata, soft, 3)] == [("age=old", 2)]
    assert find_relaxation(strata, Quotas([vq("age", "old", 0, 3)]), 3) == []


def test_quota_on_a_feature_the_strata_lack() -> None:
    """Nobody has any of its values: a positive minimum fails, maxima constrain nothing."""
    strata = strata_from_counts(["gender"], {("man",): 3, ("woman",): 3})
    quotas = Quotas([vq("gender", "man", 1, 3), vq("region", "north", 0, 2)])
    report = check_feasibility(strata, quotas, 4)
    assert report.feasible
    assert any(w.startswith("feature region: named by the quotas") for w in report.warnings)
    quotas = Quotas([vq("gender", "man", 1, 3), vq("region", "north", 1, 2)])
    report = check_feasibility(strata, quotas, 4)
    assert report.status == "infeasible"
    assert report.reasons == ["region=north: minimum 1 but nobody in the pool has this value "
                              "(short by 1)"]
    assert report.relaxation_total == 1
