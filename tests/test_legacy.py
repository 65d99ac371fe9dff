"""The legacy greedy draw: valid panels, exact probabilities on tiny pools, determinism.

The exact check re-implements the procedure person by person with fractions, so it tests both
the greedy rules and the claim that drawing strata instead of people changes nothing.
"""

from __future__ import annotations

import hashlib
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import strategies
from cli_runner import with_hash_seed
from conftest import quota_membership
from hypothesis import HealthCheck, assume, event, given
from hypothesis import strategies as st

from sortition.core.errors import InfeasibleError, InputError
from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota
from sortition.inputs.strata import Strata, strata_from_counts
from sortition.lottery.legacy import LegacyEstimate, legacy_panel, legacy_probabilities

ROOT = Path(__file__).resolve().parents[1]
NATURE_SMALL = ROOT / "data" / "peers" / "flanigan2021" / "example_small_20"

# ---------------------------------------------------------------------------
# Helpers


def _in_group(features: list[str], key: tuple[str, ...], cond: dict[str, str]) -> bool:
    return all(key[features.index(f)] == v for f, v in cond.items())


def _violations(strata: Strata, quotas: Quotas, size: int, seats: np.ndarray) -> list[str]:
    """Everything wrong with a panel, checked independently of the module."""
    problems = []
    if seats.shape != strata.counts.shape or seats.dtype != np.int64:
        problems.append(f"shape {seats.shape} / dtype {seats.dtype}")
        return problems
    if int(seats.sum()) != size:
        problems.append(f"{int(seats.sum())} seats instead of {size}")
    if (seats < 0).any() or (seats > strata.counts).any():
        problems.append("seats outside 0..counts")
    a, lo, hi = quota_membership(strata.features, strata.keys, quotas)
    for g, n in enumerate((a @ seats).tolist()):
        if not lo[g] <= n <= hi[g]:
            problems.append(f"quota {g}: {n} seats outside [{lo[g]}, {hi[g]}]")
    return problems


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def feasible_instances(features: tuple[int, int] = (1, 3), count: int = 3,
                       size: tuple[int, int] = (1, 8), slack: int = 2,
                       cross: tuple[int, int] = (0, 3)) -> st.SearchStrategy[strategies.Instance]:
    """A small pool, a panel drawn from it first, and every quota loosened around that panel:
    always feasible, which the greedy draw needs to say anything."""
    return strategies.instances(features=features, keys=(1, 27), counts=st.integers(0, count),
                                size=size, slack=slack, cross=cross)


def _exact_legacy(people: list[tuple[str, ...]], features: list[str], quotas: Quotas,
                  size: int) -> tuple[dict[frozenset[int], Fraction], Fraction]:
    """The exact distribution of the legacy draw's panels (sets of people, given that an attempt
    succeeds) and one attempt's success probability, by following every choice of the
    procedure on individual people."""
    a, los, his = quota_membership(features, people, quotas)
    member = a.astype(bool).tolist()
    groups = list(zip([None] * len(member), los.tolist(), his.tolist(), strict=True))
    memo: dict[frozenset[int], dict[frozenset[int], Fraction]] = {}

    def outcomes(chosen: frozenset[int]) -> dict[frozenset[int], Fraction]:
        if chosen in memo:
            return memo[chosen]
        seats = [sum(1 for i in chosen if member[g][i]) for g in range(len(groups))]
        result: dict[frozenset[int], Fraction] = {}
        if len(chosen) == size:
            if all(seats[g] >= lo for g, (_, lo, _) in enumerate(groups)):
                result[chosen] = Fraction(1)
            memo[chosen] = result
            return result
        available = [i for i in range(len(people)) if i not in chosen
                     and all(seats[g] + 1 <= hi for g, (_, _, hi) in enumerate(groups)
                             if member[g][i])]
        candidates = available
        best: Fraction | None = None
        for g, (_, lo, _) in enumerate(groups):
            if seats[g] < lo:
                in_g = [i for i in available if member[g][i]]
                if not in_g:
                    memo[chosen] = result
                    return result
                urgency = Fraction(lo - seats[g], len(in_g))
                if best is None or urgency > best:
                    best, candidates = urgency, in_g
        for i in candidates:
            for final, p in outcomes(chosen | {i}).items():
                result[final] = result.get(final, Fraction(0)) + p / len(candidates)
        memo[chosen] = result
        return result

    final = outcomes(frozenset())
    success = sum(final.values(), Fraction(0))
    if success:
        final = {s: p / success for s, p in final.items()}
    return final, success


def _people(strata: Strata) -> list[tuple[str, ...]]:
    return [key for key, n in zip(strata.keys, strata.counts.tolist(), strict=True)
            for _ in range(n)]


def _exact_person_probabilities(final: dict[frozenset[int], Fraction],
                                n_people: int) -> list[Fraction]:
    return [sum((p for s, p in final.items() if i in s), Fraction(0)) for i in range(n_people)]


def _exact_stratum_moments(strata: Strata, final: dict[frozenset[int], Fraction]
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-person probability and variance of the seats, per stratum."""
    owner = [s for s, n in enumerate(strata.counts.tolist()) for _ in range(n)]
    mean = [Fraction(0)] * len(strata)
    square = [Fraction(0)] * len(strata)
    for chosen, p in final.items():
        seats = [0] * len(strata)
        for i in chosen:
            seats[owner[i]] += 1
        for s, x in enumerate(seats):
            mean[s] += p * x
            square[s] += p * x * x
    probability = np.array([float(m / n) for m, n in zip(mean, strata.counts.tolist(),
                                                         strict=True)])
    variance = np.array([float(q - m * m) for q, m in zip(square, mean, strict=True)])
    return probability, variance


# ---------------------------------------------------------------------------
# Panels


@strategies.examples(150, HealthCheck.too_slow)
@given(feasible_instances(), st.integers(0, 2**32 - 1))
def test_every_panel_meets_every_quota(instance, seed):
    strata, quotas, size = instance
    try:
        seats = legacy_panel(strata, quotas, size, _rng(seed), max_attempts=300)
    except InfeasibleError as e:  # a greedy draw can get stuck on a feasible instance
        assert "legacy could not find a panel" in str(e)
        event("legacy got stuck every time")
        return
    event("panel found")
    assert _violations(strata, quotas, size, seats) == []


@strategies.examples(40, HealthCheck.too_slow)
@given(feasible_instances(), st.integers(0, 2**32 - 1))
def test_estimate_accounts_for_every_seat(instance, seed):
    strata, quotas, size = instance
    try:
        est = legacy_probabilities(strata, quotas, size, seed=seed, runs=30, max_attempts=300)
    except InfeasibleError:
        event("legacy got stuck every time")
        return
    assert float(np.sum(est.stratum_probabilities * strata.counts)) == pytest.approx(size,
                                                                                    rel=1e-12)
    assert ((est.stratum_probabilities >= 0) & (est.stratum_probabilities <= 1)).all()
    assert (est.standard_errors >= 0).all()
    assert est.min_probability == est.stratum_probabilities.min()
    assert est.max_probability == est.stratum_probabilities.max()


def _two_feature_pool() -> Strata:
    return strata_from_counts(["gender", "leaning"], {
        ("f", "lib"): 2, ("f", "con"): 1, ("m", "lib"): 1, ("m", "con"): 4,
    })


def _two_feature_quotas(cross: bool = False) -> Quotas:
    values = [ValueQuota("gender", "f", 1, 2), ValueQuota("gender", "m", 1, 3),
              ValueQuota("leaning", "lib", 2, 3), ValueQuota("leaning", "con", 1, 2)]
    crosses = [CrossQuota(("gender", "leaning"), ("f", "lib"), 0, 1)] if cross else []
    return Quotas(values=values, cross=crosses)


def test_panel_layout_and_cross_quota():
    strata = _two_feature_pool()
    quotas = _two_feature_quotas(cross=True)
    rng = _rng(5)
    for _ in range(200):
        seats = legacy_panel(strata, quotas, 4, rng)
        assert seats.dtype == np.int64 and seats.shape == (len(strata),)
        assert _violations(strata, quotas, 4, seats) == []


def test_infeasible_instances_raise():
    strata = strata_from_counts(["gender", "leaning"], {("f", "con"): 3, ("m", "lib"): 3})
    # Each quota is satisfiable alone, but two women means two conservatives.
    quotas = Quotas(values=[
        ValueQuota("gender", "f", 2, 2), ValueQuota("gender", "m", 2, 2),
        ValueQuota("leaning", "lib", 3, 3), ValueQuota("leaning", "con", 1, 1),
    ])
    with pytest.raises(InfeasibleError, match="legacy could not find a panel") as info:
        legacy_panel(strata, quotas, 4, _rng(0))
    assert info.value.exit_code == 1
    with pytest.raises(InfeasibleError):
        legacy_probabilities(strata, quotas, 4, seed=0, runs=10)
    # A minimum larger than the pool fails at once.
    short = Quotas(values=[ValueQuota("gender", "f", 4, 6), ValueQuota("gender", "m", 0, 6)])
    with pytest.raises(InfeasibleError, match="gender=f"):
        legacy_panel(strata, short, 5, _rng(0))
    with pytest.raises(InfeasibleError, match="fewer than the panel size"):
        legacy_panel(strata, short, 7, _rng(0))


def test_bad_arguments_are_input_errors():
    strata = _two_feature_pool()
    quotas = _two_feature_quotas()
    with pytest.raises(InputError, match="not among the strata features"):
        legacy_panel(strata, Quotas(values=[ValueQuota("age", "old", 0, 1)]), 1, _rng(0))
    with pytest.raises(InputError, match="runs"):
        legacy_probabilities(strata, quotas, 4, seed=0, runs=0)
    with pytest.raises(InputError, match="seed"):
        legacy_probabilities(strata, quotas, 4, seed=-1, runs=5)
    with pytest.raises(InputError, match="max_attempts"):
        legacy_panel(strata, quotas, 4, _rng(0), max_attempts=0)


# ---------------------------------------------------------------------------
# Probabilities


def _tangled_instance() -> tuple[Strata, Quotas, int]:
    """Several groups fill up on the same seat, and they share strata."""
    keys = [("v0", "v0"), ("v0", "v1"), ("v1", "v0"), ("v1", "v1"), ("v2", "v0"), ("v2", "v1")]
    strata = strata_from_counts(["f0", "f1"], dict(zip(keys, [2, 2, 3, 1, 3, 1], strict=True)))
    values = [ValueQuota("f0", "v0", 3, 3), ValueQuota("f0", "v1", 2, 2),
              ValueQuota("f0", "v2", 2, 2), ValueQuota("f1", "v0", 4, 6),
              ValueQuota("f1", "v1", 1, 4)]
    cross = [CrossQuota(("f0", "f1"), (a, b), lo, hi) for (a, b), lo, hi in zip(
        keys, [0, 0, 0, 0, 0, 1], [2, 4, 4, 2, 1, 2], strict=True)]
    return strata, Quotas(values=values, cross=cross), 7


def _assert_close_to_exact(est: LegacyEstimate, strata: Strata,
                           final: dict[frozenset[int], Fraction]) -> None:
    """Within 5 exact standard errors (plus a few seats' worth for rare events)."""
    exact, variance = _exact_stratum_moments(strata, final)
    se = np.sqrt(variance / est.runs) / strata.counts
    slack = 5 * se + 3 / (est.runs * strata.counts) + 1e-12
    assert (np.abs(est.stratum_probabilities - exact) <= slack).all(), (
        est.stratum_probabilities, exact, se)


@pytest.mark.parametrize("case", ["two features", "with a cross quota", "tangled"])
def test_estimate_matches_exact_legacy_probabilities(case):
    if case == "tangled":
        strata, quotas, size = _tangled_instance()
    else:
        strata, quotas, size = (_two_feature_pool(),
                                _two_feature_quotas(cross=case == "with a cross quota"), 4)
    people = _people(strata)
    final, success = _exact_legacy(people, strata.features, quotas, size)
    assert 0 < success <= 1
    exact = _exact_person_probabilities(final, len(people))
    start = 0
    for n in strata.counts.tolist():
        assert len(set(exact[start:start + n])) == 1  # people of one stratum are exchangeable
        start += n
    runs = 20_000 if case != "tangled" else 5_000
    est = legacy_probabilities(strata, quotas, size, seed=11, runs=runs)
    exact_stratum, _ = _exact_stratum_moments(strata, final)
    assert float(np.sum(exact_stratum * strata.counts)) == pytest.approx(size)
    for p, e, se in zip(est.stratum_probabilities, exact_stratum, est.standard_errors,
                        strict=True):
        if se == 0:
            assert p == pytest.approx(e, abs=1e-12)
        else:
            assert abs(p - e) <= 4 * se, (p, e, se)
    _assert_close_to_exact(est, strata, final)
    if success < 1:
        assert est.failures > 0


@strategies.examples(25, HealthCheck.too_slow, HealthCheck.filter_too_much, derandomize=True)
@given(st.one_of(feasible_instances(features=(1, 2), count=2, size=(1, 5)),
                feasible_instances(features=(2, 2), count=2, size=(1, 6), slack=1,
                                   cross=(1, 4))),
       st.integers(0, 2**32 - 1))
def test_random_instances_match_exact_legacy_probabilities(instance, seed):
    strata, quotas, size = instance
    people = _people(strata)
    assume(len(people) <= 11)
    final, success = _exact_legacy(people, strata.features, quotas, size)
    try:
        est = legacy_probabilities(strata, quotas, size, seed=seed, runs=1500,
                                   max_attempts=300)
    except InfeasibleError:
        assert success < Fraction(1, 20)  # stuck 300 times in a row: success must be rare
        event("legacy got stuck every time")
        return
    assert success > 0
    _assert_close_to_exact(est, strata, final)


@pytest.mark.parametrize("lib_first", [True, False])
def test_urgency_ties_go_to_the_first_listed_quota(lib_first):
    # Both leaning minimums start with urgency 1/2, so the quota listed first is served first;
    # with at most one woman, that order changes who is likely to sit.
    strata = strata_from_counts(["gender", "leaning"], {
        ("f", "lib"): 1, ("m", "lib"): 1, ("f", "con"): 1, ("m", "con"): 1,
    })
    leaning = [ValueQuota("leaning", "lib", 1, 2), ValueQuota("leaning", "con", 1, 2)]
    if not lib_first:
        leaning.reverse()
    quotas = Quotas(values=leaning + [ValueQuota("gender", "f", 0, 1),
                                      ValueQuota("gender", "m", 0, 2)])
    first, other = ("lib", "con") if lib_first else ("con", "lib")
    expected = {("f", first): 0.5, ("m", first): 0.5, ("f", other): 0.25, ("m", other): 0.75}
    people = list(strata.keys)
    final, _ = _exact_legacy(people, strata.features, quotas, 2)
    exact = _exact_person_probabilities(final, len(people))
    assert [float(p) for p in exact] == [expected[k] for k in people]
    est = legacy_probabilities(strata, quotas, 2, seed=3, runs=4000)
    for key, p, se in zip(strata.keys, est.stratum_probabilities, est.standard_errors,
                          strict=True):
        assert abs(p - expected[key]) <= 4 * se + 1e-12, (key, p, se)


def test_progress_is_reported():
    calls: list[tuple[int, int]] = []
    legacy_probabilities(_two_feature_pool(), _two_feature_quotas(), 4, seed=1, runs=250,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (250, 250)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert all(t == 250 for _, t in calls)
    assert 50 <= len(calls) <= 130


# ---------------------------------------------------------------------------
# Determinism

_DETERMINISM_SCRIPT = textwrap.dedent("""
    import hashlib, itertools
    from sortition.lottery.legacy import legacy_probabilities
    from sortition.inputs.quotas import Quotas, ValueQuota
    from sortition.inputs.strata import strata_from_counts

    regions = ["nord", "sud", "est", "ouest", "centre", "île", "côte"]
    ages = ["18-34", "35-54", "55+"]
    counts = {(r, a, g): 1 + (i * 7) % 5
              for i, (r, a, g) in enumerate(itertools.product(regions, ages, ["f", "m"]))}
    strata = strata_from_counts(["region", "age", "gender"], counts)
    values = [ValueQuota("region", r, 1, 3) for r in regions]
    values += [ValueQuota("age", a, 3, 6) for a in ages]
    values += [ValueQuota("gender", g, 6, 6) for g in ["m", "f"]]
    est = legacy_probabilities(strata, Quotas(values=values), 12, seed=2024, runs=300)
    h = hashlib.sha256()
    h.update(est.stratum_probabilities.tobytes())
    h.update(est.standard_errors.tobytes())
    h.update(str(est.failures).encode())
    print(h.hexdigest())
""")


def _run_determinism_script(hash_seed: str) -> str:
    out = with_hash_seed(hash_seed, "-c", _DETERMINISM_SCRIPT, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_same_seed_gives_identical_arrays():
    strata, quotas = _two_feature_pool(), _two_feature_quotas(cross=True)
    a = legacy_probabilities(strata, quotas, 4, seed=7, runs=300)
    b = legacy_probabilities(strata, quotas, 4, seed=7, runs=300)
    c = legacy_probabilities(strata, quotas, 4, seed=8, runs=300)
    assert isinstance(a, LegacyEstimate)
    assert (a.runs, a.seed) == (300, 7)
    assert np.array_equal(a.stratum_probabilities, b.stratum_probabilities)
    assert np.array_equal(a.standard_errors, b.standard_errors)
    assert a.failures == b.failures
    assert not np.array_equal(a.stratum_probabilities, c.stratum_probabilities)
    # legacy_panel draws from the same stream in the same way
    rng1, rng2 = _rng(9), _rng(9)
    for _ in range(20):
        assert np.array_equal(legacy_panel(strata, quotas, 4, rng1),
                              legacy_panel(strata, quotas, 4, rng2))


def test_determinism_across_processes_and_hash_seeds():
    first = _run_determinism_script("1")
    assert first == _run_determinism_script("987654")
    namespace: dict = {}
    digests: list[str] = []
    namespace["print"] = digests.append
    exec(_DETERMINISM_SCRIPT, namespace)  # the same computation in this process
    assert digests == [first]
    assert len(first) == len(hashlib.sha256().hexdigest())


# ---------------------------------------------------------------------------
# The Nature 2021 small example


@pytest.mark.skipif(not NATURE_SMALL.is_dir(), reason="Nature 2021 replication data not present")
def test_nature_small_example_is_unfair_under_legacy():
    from sortition.inputs.pool import load_pool
    from sortition.inputs.quotas import load_quotas
    from sortition.inputs.strata import build_strata

    quotas = load_quotas(NATURE_SMALL / "categories.csv")
    pool = load_pool(NATURE_SMALL / "respondents.csv", ["gender", "leaning"])
    strata = build_strata(pool, ["gender", "leaning"])
    est = legacy_probabilities(strata, quotas, 20, seed=2021, runs=2000)
    assert est.min_probability < 0.05  # LEXIMIN guarantees everyone 10 % on this pool
    assert float(np.sum(est.stratum_probabilities * strata.counts)) == pytest.approx(20)
    person = est.person_probabilities(strata)
    assert person.shape == (len(pool),)
    for s in range(len(strata)):
        assert np.unique(person[strata.row_stratum == s]).size == 1
