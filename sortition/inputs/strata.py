"""Strata: people with identical quota features.

Every fairness computation runs on strata counts, not on people, so its cost grows with the
number of feature combinations (about a thousand for Occitanie), not with the pool size.
Strata are ordered by their feature values (UTF-8 byte order of each value, features in quota
order), so the numbering is the same whatever the row order of the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pool import Pool


@dataclass
class Strata:
    """The pool's feature combinations, with how many people share each."""

    features: list[str]
    keys: list[tuple[str, ...]]  # one tuple of values (in `features` order) per stratum, sorted
    counts: np.ndarray  # int64, people per stratum
    row_stratum: np.ndarray | None = None  # int32 stratum of each row; None if built from counts

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self) -> np.ndarray:
        """`row_stratum`, for strata built from a pool (those built from counts have no rows:
        a caller that needs them was handed the wrong strata)."""
        if self.row_stratum is None:
            raise ValueError("these strata were built from counts and have no rows")
        return self.row_stratum

    def members(self, feature: str, value: str) -> np.ndarray:
        """Indices of the strata whose `feature` equals `value`."""
        j = self.features.index(feature)
        return np.array([i for i, key in enumerate(self.keys) if key[j] == value], dtype=np.int64)

    def value_counts(self, feature: str) -> dict[str, int]:
        """People in the pool per value of `feature` (values in sorted order)."""
        j = self.features.index(feature)
        out: dict[str, int] = {}
        for key, n in zip(self.keys, self.counts.tolist(), strict=True):
            out[key[j]] = out.get(key[j], 0) + int(n)
        return dict(sorted(out.items(), key=lambda kv: kv[0].encode("utf-8")))


def build_strata(pool: Pool, features: list[str]) -> Strata:
    """Group the pool's rows by their values of `features`."""
    n = len(pool)
    if not features:
        return Strata([], [()], np.array([n], dtype=np.int64), np.zeros(n, dtype=np.int32))
    # Mixed-radix key over each feature's (sorted) value codes: sorting the key sorts the strata
    # lexicographically by value, because pool value codes follow UTF-8 byte order.
    key = np.zeros(n, dtype=np.int64)
    radices = [len(pool.values[f]) for f in features]
    if np.prod([float(r) for r in radices]) >= 2.0**62:
        raise ValueError("too many feature combinations to index")
    for f, r in zip(features, radices, strict=True):
        key = key * r + pool.codes[f].astype(np.int64)
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    keys: list[tuple[str, ...]] = []
    for k in uniq.tolist():
        parts = []
        for f, r in zip(reversed(features), reversed(radices), strict=True):
            parts.append(pool.values[f][k % r])
            k //= r
        keys.append(tuple(reversed(parts)))
    return Strata(list(features), keys, counts.astype(np.int64), inverse.astype(np.int32))


def strata_from_counts(features: list[str], counts: dict[tuple[str, ...], int]) -> Strata:
    """Strata given directly as counts (for tests and for public extracts)."""
    items = sorted(((k, int(v)) for k, v in counts.items() if v > 0),
                   key=lambda kv: tuple(x.encode("utf-8") for x in kv[0]))
    return Strata(list(features), [k for k, _ in items],
                  np.array([v for _, v in items], dtype=np.int64), None)
