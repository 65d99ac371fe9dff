"""Largest remainder: whole units shared in proportion, the one rounding rule of the tool.

Used for the quota targets of a TOML specification (`inputs.quotas.apportion`), the calls per
cell (`recruitment.invite.apportion`, docs/draw-spec.md section 14), a lottery's integer weights
and a transparent lottery's tickets per panel (`lottery.publish`, docs/bundle-format.md sections
3.4 and 3.6).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

Number = int | Fraction | float


def largest_remainder(numerators: Sequence[Number], denominator: Number,
                      total: int) -> list[int]:
    """`total` units shared in proportion to numerator / denominator, as whole numbers.

    Each share first gets ⌊numerator / denominator⌋; the units still missing go one each to
    the shares with the largest remainders (numerator mod denominator), and between equal
    remainders to the **earlier** share. Integers and fractions are exact; floats are used as
    they are (a float's whole and fractional parts are exact). The shares must be
    non-negative and add up to `total` within less than one unit per share (ValueError
    otherwise), so the result always sums to exactly `total`.
    """
    if denominator <= 0:
        raise ValueError(f"the denominator must be positive, got {denominator!r}")
    if any(n < 0 for n in numerators):
        raise ValueError("the shares must be non-negative")
    whole = [int(n // denominator) for n in numerators]
    missing = total - sum(whole)
    if not 0 <= missing <= len(whole):
        raise ValueError(f"shares adding up to about {sum(whole)} cannot make {total} units")
    remainders = [n % denominator for n in numerators]
    order = sorted(range(len(whole)), key=lambda i: (-remainders[i], i))
    for i in order[:missing]:
        whole[i] += 1
    return whole
