"""The inputs of a lottery or a draw, loaded once: the pool and its strata, the quotas, both
fingerprints and, with households, the representatives of the public pre-draw (`households`).

Without households no fingerprint is needed, so `check` and `probabilities` load through
`lottery_pool`. `write_public_pool` writes the pool's public extract (`sortition public-pool`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..core.errors import InputError
from ..core.textopts import check_text
from .fingerprint import (
    PoolFingerprint,
    check_extract_target,
    pool_fingerprint,
    quotas_fingerprint,
    write_public_extract,
)
from .households import eligible_pool
from .pool import Pool, check_public_ids, load_pool, load_recorded_pool
from .quotas import Quotas, load_quotas, resolve_quotas
from .strata import Strata, build_strata


@dataclass
class Inputs:
    """A pool and quotas, loaded, with their fingerprints."""

    pool: Pool
    strata: Strata
    quotas: Quotas
    size: int
    fingerprint: PoolFingerprint
    quotas_sha256: str
    quotas_path: Path
    timings: dict[str, float] = field(default_factory=dict)
    everyone: Pool | None = None  # with households: the whole pool (`pool` = representatives)
    household_seed: str | None = None

    @property
    def whole(self) -> Pool:
        """Everybody in the pool file (the lottery's pool may be household representatives)."""
        return self.everyone if self.everyone is not None else self.pool

    def members(self, s: int) -> list[str]:
        """Ids of stratum s, sorted by UTF-8 bytes."""
        rows = np.flatnonzero(self.strata.rows() == s)
        ids = self.pool.ids.take(pa.array(rows)).to_pylist()
        return sorted(ids, key=lambda i: i.encode("utf-8"))

    def all_members(self) -> list[list[str]]:
        row_stratum = self.strata.rows()
        order = np.argsort(row_stratum, kind="stable")
        ids = self.pool.ids.take(pa.array(order)).to_pylist()
        bounds = np.searchsorted(row_stratum[order], np.arange(len(self.strata) + 1))
        return [sorted(ids[bounds[s]:bounds[s + 1]], key=lambda i: i.encode("utf-8"))
                for s in range(len(self.strata))]


def load_inputs(pool_path: Path, quotas_path: Path, size: int | None, *,
                id_column: str | None = None, encoding: str = "utf-8",
                check_values: bool = True, household_column: str | None = None,
                household_seed: str | None = None,
                features: list[str] | None = None, quotas: Quotas | None = None,
                recorded: bool = False, id_is_public: bool = False) -> Inputs:
    """Load and fingerprint a pool and quotas; with households, keep one person per household
    (the public pre-draw of `households`) for the lottery. `recorded`: the column names are
    a bundle's, and the pool may be its public extract (`pool.load_recorded_pool`), whose ids
    were accepted when it was drawn; otherwise ids that are contact data are refused unless
    `id_is_public` (`pool.check_public_ids`)."""
    t = time.perf_counter()
    if quotas is None:
        quotas = load_quotas(quotas_path, size)
    k = quotas.size  # quotas passed in are checked too: loaded without a size, they have none
    if k is None:
        raise InputError(f"{quotas_path}: CSV quotas need --size")
    if household_column is None and household_seed is not None:
        raise InputError("--household-seed needs --household-column")
    check_text("--household-seed", household_seed)  # before the pool is loaded
    features = list(features or quotas.all_features)
    load = load_recorded_pool if recorded else load_pool
    whole = load(pool_path, features, id_column=id_column, encoding=encoding,
                 quotas=quotas if check_values else None, household_column=household_column)
    if not recorded:
        check_public_ids(whole, id_is_public=id_is_public)
    whole_strata = build_strata(whole, features)
    loaded = time.perf_counter() - t
    t = time.perf_counter()
    fp = pool_fingerprint(whole, whole_strata)
    fingerprinted = time.perf_counter() - t
    pool, strata, everyone = whole, whole_strata, None
    if household_column is not None:
        pool = eligible_pool(whole, household_seed, fp.sha256)
        strata, everyone = build_strata(pool, features), whole
    return Inputs(pool, strata, quotas, int(k), fp,
                  quotas_fingerprint(quotas, int(k)), Path(quotas_path),
                  {"load": loaded, "fingerprint": fingerprinted}, everyone, household_seed)


def lottery_pool(pool_path: Path, quotas_path: Path, quotas: Quotas, id_column: str | None,
                 encoding: str, household_column: str | None, household_seed: str | None
                 ) -> tuple[Pool, Strata, Pool]:
    """(the lottery's pool, its strata, the whole pool): with households, the representatives.

    Without households no fingerprint is needed, so `check` and `probabilities` skip it.
    """
    if household_column is None and household_seed is None:
        pool = load_pool(pool_path, quotas.all_features, id_column=id_column,
                         encoding=encoding, quotas=quotas)
        return pool, build_strata(pool, quotas.all_features), pool
    inputs = load_inputs(pool_path, quotas_path, quotas.size, id_column=id_column,
                         encoding=encoding, household_column=household_column,
                         household_seed=household_seed, quotas=quotas,
                         id_is_public=True)  # `check`, `probabilities`: nothing published
    return inputs.pool, inputs.strata, inputs.whole


@dataclass
class PublicPool:
    """The public extract written by `write_public_pool`, and what it was made from."""

    out: Path
    pool: Pool
    quotas: Quotas
    fingerprint: PoolFingerprint


def write_public_pool(pool_path: Path, quotas_path: Path, out: Path, *, size: int | None = None,
                      id_column: str | None = None, id_is_public: bool = False,
                      encoding: str = "utf-8", household_column: str | None = None,
                      force: bool = False) -> PublicPool:
    """`sortition public-pool`: the pool's public extract (ids and quota features, sorted by
    id; with `household_column`, opaque household numbers), which gives the same fingerprint
    as the full pool."""
    check_extract_target(out, inputs=[pool_path, quotas_path], force=force)
    quotas = resolve_quotas(quotas_path, size)
    pool = load_pool(pool_path, quotas.all_features, id_column=id_column, encoding=encoding,
                     quotas=quotas, household_column=household_column)
    check_public_ids(pool, id_is_public=id_is_public)
    fp = pool_fingerprint(pool, build_strata(pool, quotas.all_features))
    write_public_extract(pool, out, inputs=[quotas_path], force=force)
    return PublicPool(Path(out), pool, quotas, fp)
