"""The one largest-remainder rule (`sortition.core.rounding`), used for quota targets, calls
per cell, a lottery's integer weights and a transparent lottery's tickets."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from sortition.core.rounding import largest_remainder


def test_whole_parts_then_largest_remainders():
    # 5 units over 3 : 1 : 1 with denominator 5 → exact, nothing left over
    assert largest_remainder([15, 5, 5], 5, 5) == [3, 1, 1]
    # 10/3 = 3.33, 10/3, 10/3 … of 10 units in thirds: one unit missing, to the first (a tie)
    assert largest_remainder([10, 10, 10], 3, 10) == [4, 3, 3]
    # remainders 2, 1, 0 (mod 3): the missing units go to the largest ones
    assert largest_remainder([5, 4, 3], 3, 4) == [2, 1, 1]
    assert largest_remainder([], 1, 0) == []
    assert largest_remainder([0, 0], 7, 0) == [0, 0]


def test_ties_go_to_the_earlier_share():
    assert largest_remainder([1, 1, 1, 1], 2, 2) == [1, 1, 0, 0]
    assert largest_remainder([3, 1, 1, 1], 4, 1) == [1, 0, 0, 0]
    assert largest_remainder([1, 3, 1, 3], 4, 2) == [0, 1, 0, 1]
    assert largest_remainder([1, 3, 3, 1], 4, 2) == [0, 1, 1, 0]


def test_fractions_and_floats():
    assert largest_remainder([Fraction(7, 2), Fraction(3, 2)], Fraction(1), 5) == [4, 1]
    assert largest_remainder([2.5, 2.5], 1, 5) == [3, 2]
    assert largest_remainder([0.25 * 8, 0.75 * 8], 1, 8) == [2, 6]


def test_refused():
    with pytest.raises(ValueError, match="denominator"):
        largest_remainder([1, 2], 0, 3)
    with pytest.raises(ValueError, match="non-negative"):
        largest_remainder([-1, 4], 1, 3)
    with pytest.raises(ValueError, match="cannot make"):
        largest_remainder([1, 1], 1, 5)  # 2 units of shares cannot make 5
    with pytest.raises(ValueError, match="cannot make"):
        largest_remainder([3, 3], 1, 5)


shares = st.lists(st.integers(0, 10**6), min_size=1, max_size=30)


@given(shares, st.integers(0, 10**4))
@strategies.examples(200)
def test_sums_and_stays_within_one_unit(weights, total):
    """The result adds up to `total`, each share is its exact quota rounded down or up, and a
    larger remainder is never rounded down while a smaller one (or an equal, later one) is
    rounded up."""
    if sum(weights) == 0:
        weights = [1, *weights]
    numerators = [w * total for w in weights]
    out = largest_remainder(numerators, sum(weights), total)
    assert sum(out) == total
    quota = [Fraction(n, sum(weights)) for n in numerators]
    up = [x > q for x, q in zip(out, quota, strict=True)]
    for x, q in zip(out, quota, strict=True):
        assert x in (math.floor(q), math.ceil(q))
    rem = [q - math.floor(q) for q in quota]
    for i in range(len(out)):
        for j in range(len(out)):
            if up[j] and not up[i] and rem[i] > 0:
                assert (rem[j], -j) > (rem[i], -i)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=20), st.integers(1, 500))
@strategies.examples(100)
def test_same_answer_for_int_and_fraction_shares(weights, total):
    if sum(weights) == 0:
        return
    d = sum(weights)
    exact = largest_remainder([w * total for w in weights], d, total)
    assert largest_remainder([Fraction(w * total, d) for w in weights], 1, total) == exact
