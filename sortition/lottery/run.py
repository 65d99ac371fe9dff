"""The `lottery` step for loaded inputs: compute the lottery and publish it (`publish`), check
that a reused one is the one for these inputs, and read or write `lottery.json` with its
`.sha256` (a published lottery is never replaced).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..core.errors import InputError
from ..core.outputs import check_file, recover_pair, write_pair
from ..inputs.load import Inputs
from ..inputs.quotas import Quotas
from ..inputs.strata import strata_from_counts
from .compute import LOTTERY_ALGORITHMS, Lottery, check_algorithm_gamma, compute_lottery
from .panels import quota_system
from .publish import PublishedLottery, make_transparent, publish, transparent_problem

DRAWABLE = LOTTERY_ALGORITHMS


def run_lottery(inputs: Inputs, algorithm: str, *, panels: int | None = None,
                time_limit: float | None = None,
                log: Callable[[str], None] | None = None,
                computed: Lottery | None = None,
                accept_gap: float | None = None,
                gamma: float | None = None) -> PublishedLottery:
    """Compute the lottery (and round it to `panels` tickets for a transparent lottery).

    `computed`: a lottery already computed for these inputs, to publish instead. `gamma`:
    Goldilocks' parameter (default 1), refused with the other algorithms.
    """
    if algorithm not in DRAWABLE:
        raise InputError(f"--algorithm {algorithm}: no lottery to draw from (choose "
                         f"{', '.join(DRAWABLE)}; legacy is for `probabilities` only)")
    problem = None if panels is None else transparent_problem(panels, inputs.size,
                                                                 len(inputs.pool))
    if problem:  # before any solving
        raise InputError(problem)
    check_algorithm_gamma(algorithm, gamma)
    t = time.perf_counter()
    lottery = computed if computed is not None else compute_lottery(
        inputs.strata, inputs.quotas, inputs.size, algorithm, time_limit=time_limit, log=log,
        accept_gap=accept_gap, gamma=gamma)
    published = publish(lottery, pool_sha256=inputs.fingerprint.sha256,
                        quotas_sha256=inputs.quotas_sha256, id_column=inputs.pool.id_column)
    published.household_seed = inputs.household_seed
    if panels is not None:
        published = make_transparent(published, inputs.all_members(), panels)
    inputs.timings["lottery"] = time.perf_counter() - t
    return published


def check_reuse(published: PublishedLottery, inputs: Inputs, source: str, *,
                algorithm: str | None, panels: int | None, gamma: float | None = None
                ) -> None:
    """A reused lottery must be the one for these inputs and options (else exit 2)."""
    problems = []
    if published.pool_sha256 != inputs.fingerprint.sha256:
        problems.append(f"it was computed for another pool (pool fingerprint "
                        f"{published.pool_sha256[:16]}…, this pool "
                        f"{inputs.fingerprint.sha256[:16]}…)")
    if published.quotas_sha256 != inputs.quotas_sha256:
        problems.append(f"it was computed for other quotas (quotas fingerprint "
                        f"{published.quotas_sha256[:16]}…, these quotas "
                        f"{inputs.quotas_sha256[:16]}…)")
    if published.household_seed != inputs.household_seed:
        problems.append(f"its household seed is {published.household_seed!r}, this draw's is "
                        f"{inputs.household_seed!r}")
    if published.panel_size != inputs.size:
        problems.append(f"its panel size is {published.panel_size}, --size says {inputs.size}")
    if algorithm is not None and algorithm != published.algorithm:
        problems.append(f"its algorithm is {published.algorithm}, --algorithm says {algorithm}")
    if gamma is not None and gamma != published.gamma:
        problems.append(f"its gamma is {published.gamma}, --gamma says {gamma}")
    if panels is not None and (not published.transparent or published.n_tickets != panels):
        have = (f"{published.n_tickets} panels" if published.transparent
                else "not a transparent lottery")
        problems.append(f"--panels {panels} but the lottery has {have}")
    if problems:
        raise InputError([f"{source}: {p}" for p in problems])


def read_lottery_bytes(lottery_dir: Path) -> tuple[bytes, str]:
    path = Path(lottery_dir)
    if path.is_dir():
        path = path / "lottery.json"
    try:
        return path.read_bytes(), str(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read the lottery ({e.strerror or e})") from None


def check_lottery_target(out_dir: Path, *, inputs: list[Path | None]) -> Path:
    """`DIR/lottery.json`, if it may be written: a published lottery is never replaced.

    A lottery written by a run killed before its `.sha256` is completed first (both files are
    one pair, `outputs.write_pair`): it then exists, and is refused like any other.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    target, sha = out_dir / "lottery.json", _hash_file(out_dir / "lottery.json")
    if out_dir.is_dir() and recover_pair(target, sha) == "completed":
        digest = sha.read_text(encoding="utf-8").split()[0]
        raise InputError(f"{target}: an interrupted run had written this lottery; its {sha.name} "
                         f"is now completed (SHA-256 {digest}). A lottery is never replaced: "
                         "publish that hash, or choose another folder")
    for path in (target, sha):
        if os.path.lexists(path):
            raise InputError(f"{path}: already exists (a published lottery is never "
                             "overwritten; choose another folder)")
        check_file(path, inputs=inputs, force=False)
    return target


def _hash_file(lottery: Path) -> Path:
    return lottery.with_name(lottery.name + ".sha256")


def write_lottery(out_dir: Path, published: PublishedLottery, *, inputs: list[Path | None]
                  ) -> str:
    """Write DIR/lottery.json then DIR/lottery.json.sha256 (a pair: both or neither); return
    the hash to publish."""
    target = check_lottery_target(out_dir, inputs=inputs)
    data = published.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    write_pair(target, lambda tmp: tmp.write_bytes(data), _hash_file(target),
               lambda _tmp: f"{digest}  lottery.json\n".encode())
    return digest


def quota_system_for(published: PublishedLottery, quotas: Quotas):
    """The quota constraints over the lottery's own strata (for checking its panels)."""
    strata = strata_from_counts(published.features,
                                dict(zip(published.keys, published.counts, strict=True)))
    return strata, quota_system(strata, quotas, published.panel_size)
