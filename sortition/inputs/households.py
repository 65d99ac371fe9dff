"""Households: at most one person per household on a panel, by a public pre-draw.

Before the lottery, each household with several people in the pool is represented by one of
them, chosen uniformly at random with the *household seed* — a public text announced before the
lottery is computed (like the draw seed, but earlier, so that the lottery hash can still be
published before the draw seed exists). Households are taken in the order of their opaque
numbers; each one's members are sorted by id (UTF-8 bytes) and member `below(size)` of the
stream `households` (docs/draw-spec.md, with the pool fingerprint in place of the lottery hash)
represents it. The lottery is then computed over the representatives only, so no panel and no
replacement list can hold two people of one household.

Effect on probabilities: a person in a household of h people in the pool is eligible with
probability 1/h; once the pre-draw is public, every probability reported is exact given it — the
representative's lottery probability, and 0 for the other members. (So people sharing a home
share one chance, as one ticket per household.)
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from ..core import drawspec as drawing
from ..core.errors import InputError
from ..core.textopts import seed_option
from .pool import Pool, subset


def representatives(pool: Pool, seed: str, pool_sha256: str) -> np.ndarray:
    """Rows (0-based, increasing) of the people who represent their household."""
    if pool.households is None:
        return np.arange(len(pool), dtype=np.int64)
    seed_b = seed_option("--household-seed", seed, "the household pre-draw")
    order = pc.array_sort_indices(pool.ids).to_numpy()  # rows by id
    by_household = order[np.argsort(pool.households[order], kind="stable")]
    numbers = pool.households[by_household]
    starts = np.flatnonzero(np.r_[True, numbers[1:] != numbers[:-1]])
    sizes = np.diff(np.r_[starts, len(numbers)])
    keep = by_household[starts].copy()  # households alone: their only member
    stream = drawing.Stream(seed_b, pool_sha256, drawing.HOUSEHOLDS)
    for k in np.flatnonzero(sizes > 1).tolist():
        keep[k] = by_household[starts[k] + stream.below(int(sizes[k]))]
    return np.sort(keep)


def eligible_pool(pool: Pool, seed: str | None, pool_sha256: str) -> Pool:
    """The pool of household representatives (the pool itself without households)."""
    if pool.households is None:
        return pool
    if seed is None:
        raise InputError(f"--household-column {pool.household_column}: give the household seed "
                         "(--household-seed TEXT), a public text announced before the lottery "
                         "is computed")
    return subset(pool, representatives(pool, seed, pool_sha256))


# The two directions between the whole pool and the lottery's pool (`eligible_pool`): the one
# place that knows a representative's row in the pool file is `eligible.rows`.


def for_everyone(eligible: Pool, values: np.ndarray, people: int) -> np.ndarray:
    """Per-person values of the representatives, spread over the whole pool of `people` rows
    (0 elsewhere); the values themselves without households."""
    if eligible.rows is None:
        return values
    out = np.zeros(people, dtype=float)
    out[eligible.rows] = values
    return out


def of_representatives(eligible: Pool, values: np.ndarray) -> np.ndarray:
    """Per-person values over the whole pool, restricted to the lottery's pool (the household
    representatives, in their order; everybody without households): the figures that say
    something about fairness."""
    return values if eligible.rows is None else values[eligible.rows]
