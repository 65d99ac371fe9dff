"""The built-in Occitanie example, end to end: pool → quotas → feasibility.

Later stages (lottery, draw, verification) are added to the same run as they land.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .check import FeasibilityReport, check_feasibility
from .errors import InputError
from .pool import load_pool
from .quotas import Quotas, load_quotas, write_quotas
from .resources import occitanie_quotas
from .strata import Strata, build_strata
from .synth import synthesize_pool, write_pool

DEMO_SIZE = 100


@dataclass
class DemoResult:
    out_dir: Path
    pool_path: Path
    quotas_path: Path
    rows: int
    seed: int
    quotas: Quotas
    strata: Strata
    report: FeasibilityReport
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(out_dir: Path, *, rows: int = 1_300_000, seed: int = 2020,
             progress: Callable[[str], object] | None = None) -> DemoResult:
    """Synthesise the Occitanie pool, resolve the quotas for 100 seats, check feasibility."""
    say = progress or (lambda _msg: None)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    say(f"synthesising a pool of {rows:,} Occitanie contacts (seed {seed})")
    pool_path = out_dir / "pool.parquet"
    write_pool(synthesize_pool(rows, seed), pool_path)
    timings["synthesise"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"resolving the Occitanie 2020 quotas for a panel of {DEMO_SIZE}")
    quotas = load_quotas(occitanie_quotas(), DEMO_SIZE)
    quotas_path = out_dir / "quotas.csv"
    write_quotas(quotas, quotas_path)
    timings["quotas"] = time.perf_counter() - t

    t = time.perf_counter()
    say("loading the pool")
    pool = load_pool(pool_path, quotas.all_features, quotas=quotas)
    strata = build_strata(pool, quotas.all_features)
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"checking feasibility over {len(strata):,} strata")
    report = check_feasibility(strata, quotas, DEMO_SIZE)
    timings["check"] = time.perf_counter() - t

    return DemoResult(out_dir, pool_path, quotas_path, rows, seed, quotas, strata, report,
                      timings)
