"""The built-in Occitanie example, end to end: pool → quotas → feasibility → fair lottery →
draw → verification.

The LEXIMIN probabilities are compared with the legacy greedy procedure's (estimated from seeded
runs), which is what practitioners used before 2021. The panel is drawn with a fixed public seed
into a public bundle, and the bundle is verified from the pool's public extract, as a garant
would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audit import DrawResult, Inputs, run_draw
from .check import FeasibilityReport, check_feasibility
from .errors import InputError
from .fingerprint import pool_fingerprint, quotas_fingerprint, write_public_extract
from .lottery import Probabilities, compute_probabilities, write_probabilities
from .pool import load_pool
from .quotas import Quotas, load_quotas, write_quotas
from .resources import occitanie_quotas
from .strata import Strata, build_strata
from .synth import synthesize_pool, write_pool
from .verify import Verification, verify_bundle

DEMO_SIZE = 100
LEGACY_RUNS = 1000
DEMO_SEED = "Convention citoyenne pour l'Occitanie 2020 — démonstration"


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
    leximin: Probabilities | None = None
    legacy: Probabilities | None = None
    probabilities_path: Path | None = None
    draw: DrawResult | None = None
    public_pool_path: Path | None = None
    verification: Verification | None = None


def run_demo(out_dir: Path, *, rows: int = 1_300_000, seed: int = 2020,
             progress: Callable[[str], object] | None = None) -> DemoResult:
    """Synthesise the Occitanie pool, resolve the quotas for 100 seats, check feasibility,
    compute the LEXIMIN probabilities and compare them with the legacy procedure's."""
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
    result = DemoResult(out_dir, pool_path, quotas_path, rows, seed, quotas, strata, report,
                        timings)
    if not report.feasible:
        return result

    t = time.perf_counter()
    say(f"computing the LEXIMIN lottery over {len(strata):,} strata")
    result.leximin = compute_probabilities(strata, quotas, DEMO_SIZE, "leximin")
    result.probabilities_path = out_dir / "probabilities.csv"
    write_probabilities(pool.ids, result.leximin.person_probabilities(),
                        result.probabilities_path)
    timings["leximin"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"estimating the legacy procedure's probabilities ({LEGACY_RUNS:,} seeded runs)")
    result.legacy = compute_probabilities(strata, quotas, DEMO_SIZE, "legacy", seed=seed,
                                          runs=LEGACY_RUNS)
    timings["legacy"] = time.perf_counter() - t

    t = time.perf_counter()
    say("drawing the panel with a public seed and writing the public bundle")
    fp = pool_fingerprint(pool, strata)
    inputs = Inputs(pool, strata, quotas, DEMO_SIZE, fp, quotas_fingerprint(quotas, DEMO_SIZE),
                    quotas_path)
    result.draw = run_draw(inputs, seed=DEMO_SEED, out_dir=out_dir / "bundle",
                           algorithm="leximin", panels=None, lottery_dir=None, force=True,
                           private_out=out_dir / "panel-contacts.csv",
                           title="Convention citoyenne pour l'Occitanie 2020 (démonstration)",
                           computed=result.leximin.lottery)
    timings["draw"] = time.perf_counter() - t

    t = time.perf_counter()
    say("verifying the bundle from the pool's public extract, as a garant would")
    result.public_pool_path = out_dir / "public-pool.parquet"
    write_public_extract(pool, result.public_pool_path)
    result.verification = verify_bundle(out_dir / "bundle", result.public_pool_path,
                                        expect_lottery_hash=result.draw.lottery_hash,
                                        expect_seed=DEMO_SEED)
    timings["verify"] = time.perf_counter() - t
    return result


def fairness_comparison(result: DemoResult) -> dict[str, float | int]:
    """LEXIMIN against legacy, per person: the spread of probabilities and who loses out.

    `below` counts the people the legacy procedure gives less than LEXIMIN's minimum by more
    than three standard errors of its estimate (seats per run taken as Poisson), so that
    estimation noise does not count as unfairness.
    """
    if result.leximin is None or result.legacy is None:
        return {}
    counts = result.strata.counts.astype(float)
    lex, leg = result.leximin.stratum_probabilities, result.legacy.stratum_probabilities
    floor = float(lex.min())
    at_min = lex <= floor * (1 + 1e-9)
    runs = max(1, int(result.legacy.details.get("runs", 1)))
    error = np.sqrt(np.maximum(leg, floor) / (runs * np.maximum(counts, 1.0)))
    below = leg + 3 * error < floor
    people = float(counts.sum())
    lottery = result.leximin.lottery
    return {
        "leximin_min": floor,
        "leximin_max": float(lex.max()),
        "leximin_people_at_min": int(counts[at_min].sum()),
        "leximin_strata_at_min": int(at_min.sum()),
        "panels": 0 if lottery is None else len(lottery.panels),
        "gap": float(result.leximin.gap or 0.0),
        "legacy_runs": int(result.legacy.details.get("runs", 0)),
        "legacy_min": float(leg.min()),
        "legacy_max": float(leg.max()),
        "legacy_people_below_leximin_min": int(counts[below].sum()),
        "legacy_share_below_leximin_min": float(counts[below].sum() / people),
        "legacy_people_never_selected": int(counts[leg == 0].sum()),
    }
