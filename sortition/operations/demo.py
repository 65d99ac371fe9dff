"""The built-in Occitanie example: the whole recruitment process, replayed end to end.

A synthetic contact base (1.3 M rows by default) → a call list of 50 000 stratified on the census
margins → simulated answers (older and more educated people accept more often, as in real
recruitment) → the respondent pool → feasibility → the LEXIMIN lottery, compared with the legacy
greedy procedure → the panel of 100 drawn with a public seed, with replacement lists → a few
simulated dropouts replaced → `verify` of the whole chain, from the final bundle back through
the first draw and the respondents to the call list and the base.

The demo owns its output folder through a manifest (`.sortition-demo.json`, written first): a
second run replaces a folder only when it finds that manifest and nothing but the demo's own
files, so `sortition demo -o ~` or a folder of the operator's is refused (`outputs`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..bundle.write import DrawResult, run_draw
from ..core.limits import MAX_SYNTH_ROWS, check_count
from ..core.outputs import NEW, OLD, PENDING, bundle_problem, check_folder, write_text
from ..core.resources import builtin_path, occitanie_quotas
from ..inputs.fingerprint import pool_fingerprint, quotas_fingerprint, write_public_extract
from ..inputs.load import Inputs
from ..inputs.pool import load_pool
from ..inputs.quotas import Quotas, load_quotas, write_quotas
from ..inputs.strata import Strata, build_strata
from ..inputs.synth import synthesize_pool, write_pool
from ..lottery.check import FeasibilityReport, check_feasibility
from ..lottery.compute import (
    Probabilities,
    at_minimum,
    compute_probabilities,
    write_probabilities,
)
from ..lottery.legacy import clearly_below
from ..recruitment.invite import InviteResult, run_invite
from ..recruitment.respondents import RespondentsResult, run_respondents
from .replace import ReplaceResult, prepare_replace, run_replace
from .verify import Verification, verify_bundle

DEMO_SIZE = 100
EXTENDED_QUOTAS = "quotas/occitanie-2020-extended.toml"  # demo --extended (illustrative shares)
LEGACY_RUNS = 1000
CALLS = 50_000
REPLACEMENTS = 3
DROPOUTS = 5
DEMO_SEED = "Convention citoyenne pour l'Occitanie 2020 — démonstration"
CALLS_SEED = "Occitanie 2020 — liste d'appels (démonstration)"
REPLACE_SEED = "Occitanie 2020 — remplacements (démonstration)"
BY = ("gender", "age_band", "department", "area", "diploma")
# Simulated acceptance (a model for the demo, not data): the young and the less educated accept
# less often, as practitioners report.
ACCEPT_AGE = {"18-24": 0.55, "25-34": 0.75, "35-49": 0.95, "50-64": 1.1, "65+": 1.2}
ACCEPT_DIPLOMA = {"none/CEP/BEPC": 0.8, "CAP/BEP": 0.9, "baccalaureate": 1.0,
                  "higher education": 1.2}
ACCEPT_BASE = 0.42
UNREACHABLE = 0.25
MANIFEST = ".sortition-demo.json"
MANIFEST_SCHEMA = "sortition-demo"
DEMO_FILES = ("base.parquet", "calls.parquet", "calls.audit.json", "answers.csv",
              "respondents.parquet", "respondents.audit.json", "quotas.csv", "probabilities.csv",
              "panel-contacts.csv", "replacements.csv", "declined.txt", "public-pool.parquet")
DEMO_BUNDLES = ("bundle", "bundle-2")
DEMO_LOTTERY = "lottery-2"  # the replacement's new lottery, committed before its seed
LOTTERY_FILES = frozenset({"lottery.json", "lottery.json.sha256"})


@dataclass
class DemoResult:
    """Everything `run_demo` produced, step by step (files, results, timings)."""

    out_dir: Path
    pool_path: Path  # the respondent pool (the lottery's pool)
    quotas_path: Path
    rows: int
    seed: int
    quotas: Quotas
    strata: Strata
    report: FeasibilityReport
    timings: dict[str, float] = field(default_factory=dict)
    base_path: Path | None = None
    calls: InviteResult | None = None
    answers: dict[str, int] = field(default_factory=dict)
    respondents: RespondentsResult | None = None
    leximin: Probabilities | None = None
    legacy: Probabilities | None = None
    probabilities_path: Path | None = None
    draw: DrawResult | None = None
    replaced: ReplaceResult | None = None
    replacement_lottery_hash: str | None = None  # committed with `replace --prepare`
    public_pool_path: Path | None = None
    verification: Verification | None = None

    @property
    def ok(self) -> bool:
        """The quotas were feasible and the final bundle verified and anchored (exit 0)."""
        return self.report.feasible and (self.verification is None
                                         or (self.verification.ok
                                             and self.verification.anchored))


def call_count(rows: int) -> int:
    """50 000 calls for the 1.3 M-row base; proportionally fewer, but at least 4 000 (or
    everybody), for smaller demos."""
    return min(rows, max(4_000, round(CALLS * rows / 1_300_000)))


def simulate_answers(calls: pa.Table, seed: int) -> pa.Table:
    """yes / no / unreachable for every call, from the acceptance model above (seeded)."""
    rng = np.random.default_rng(seed)
    age = np.array([ACCEPT_AGE.get(v, 1.0) for v in calls.column("age_band").to_pylist()])
    dip = np.array([ACCEPT_DIPLOMA.get(v, 1.0) for v in calls.column("diploma").to_pylist()])
    accept = np.minimum(0.95, ACCEPT_BASE * age * dip)
    reached = rng.random(calls.num_rows) >= UNREACHABLE
    yes = reached & (rng.random(calls.num_rows) < accept)
    answer = np.where(yes, "yes", np.where(reached, "no", "unreachable"))
    return pa.table({"id": calls.column("id"), "answer": pa.array(answer.tolist())})


def run_demo(out_dir: Path, *, rows: int = 1_300_000, seed: int = 2020,
             progress: Callable[[str], object] | None = None,
             extended: bool = False) -> DemoResult:
    """Replay the recruitment process on a synthetic Occitanie base (see the module docstring).

    `extended`: the base has the illustrative profession, habitat and opinion columns, and the
    quotas are quotas/occitanie-2020-extended.toml (7 features: nearly one stratum per
    respondent).
    """
    say = progress or (lambda _msg: None)
    check_count("--rows", rows, maximum=MAX_SYNTH_ROWS)  # before touching the folder
    out_dir = Path(out_dir)
    check_folder(out_dir, inputs=(), force=True, owned=demo_problem)
    _clear_demo(out_dir)
    write_text(out_dir / MANIFEST, json.dumps(
        {"schema": MANIFEST_SCHEMA, "files": list(DEMO_FILES), "bundles": list(DEMO_BUNDLES),
         "lottery": DEMO_LOTTERY},
        indent=1) + "\n")
    timings: dict[str, float] = {}

    t = time.perf_counter()
    say(f"synthesising a contact base of {rows:,} Occitanie residents (seed {seed})")
    base_path = out_dir / "base.parquet"
    write_pool(synthesize_pool(rows, seed, extended=extended), base_path)
    timings["synthesise"] = time.perf_counter() - t

    t = time.perf_counter()
    n_calls = call_count(rows)
    say(f"drawing a call list of {n_calls:,}, stratified on the census margins")
    calls_path = out_dir / "calls.parquet"
    calls = run_invite(base_path, size=n_calls, seed=CALLS_SEED, out=calls_path, by=BY)
    timings["invite"] = time.perf_counter() - t

    t = time.perf_counter()
    say("simulating the answers (biased acceptance) and building the respondent pool")
    answers = simulate_answers(pq.read_table(calls_path, columns=["id", "age_band", "diploma"]),
                               seed)
    answers_path = out_dir / "answers.csv"
    write_text(answers_path, "id,answer\n" + "".join(
        f"{i},{a}\n" for i, a in zip(answers.column("id").to_pylist(),
                                     answers.column("answer").to_pylist(), strict=True)))
    pool_path = out_dir / "respondents.parquet"
    respondents = run_respondents(calls_path, answers_path, pool_path)
    counted = {a: 0 for a in ("yes", "no", "unreachable")}
    for a in answers.column("answer").to_pylist():
        counted[a] += 1
    timings["respondents"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"resolving the Occitanie 2020 quotas{' (extended, illustrative)' if extended else ''} "
        f"for a panel of {DEMO_SIZE}")
    quotas = load_quotas(builtin_path(EXTENDED_QUOTAS) if extended else occitanie_quotas(),
                         DEMO_SIZE)
    quotas_path = out_dir / "quotas.csv"
    write_quotas(quotas, quotas_path)
    pool = load_pool(pool_path, quotas.all_features, quotas=quotas)
    strata = build_strata(pool, quotas.all_features)
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"checking feasibility over {len(strata):,} strata")
    report = check_feasibility(strata, quotas, DEMO_SIZE)
    timings["check"] = time.perf_counter() - t
    result = DemoResult(out_dir, pool_path, quotas_path, rows, seed, quotas, strata, report,
                        timings, base_path, calls, counted, respondents)
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
    say("drawing the panel with a public seed, with replacement lists, into a public bundle")
    fp = pool_fingerprint(pool, strata)
    inputs = Inputs(pool, strata, quotas, DEMO_SIZE, fp, quotas_fingerprint(quotas, DEMO_SIZE),
                    quotas_path)
    result.draw = run_draw(inputs, seed=DEMO_SEED, out_dir=out_dir / "bundle",
                           algorithm="leximin", panels=None, lottery_dir=None,
                           private_out=out_dir / "panel-contacts.csv",
                           title="Convention citoyenne pour l'Occitanie 2020 (démonstration)",
                           computed=result.leximin.lottery, replacements=REPLACEMENTS,
                           replacements_out=out_dir / "replacements.csv",
                           legacy_runs=LEGACY_RUNS,
                           legacy_estimate=result.legacy.stratum_probabilities)
    timings["draw"] = time.perf_counter() - t

    t = time.perf_counter()
    panel = result.draw.audit["draw"]["ids"]
    picks = np.random.default_rng(seed + 1).choice(len(panel), size=min(DROPOUTS, len(panel)),
                                                   replace=False)
    declined = [panel[i] for i in sorted(picks.tolist())]
    say(f"{len(declined)} members decline: replacing them")
    write_text(out_dir / "declined.txt", "".join(f"{i}\n" for i in declined))
    # commit, then reveal: the new lottery (if the lists leave seats open) and its hash first
    prepared = prepare_replace(out_dir / "bundle", inputs, declined, out_dir / "lottery-2",
                               declined_source=str(out_dir / "declined.txt"))
    result.replacement_lottery_hash = prepared.lottery_hash
    completion = (None if prepared.lottery_path is None
                  else prepared.lottery_path.read_bytes())
    result.replaced = run_replace(out_dir / "bundle", inputs, declined, REPLACE_SEED,
                                  out_dir / "bundle-2", completion=completion,
                                  declined_source=str(out_dir / "declined.txt"))
    timings["replace"] = time.perf_counter() - t

    t = time.perf_counter()
    say("verifying the chain, as a garant would: bundle-2 → bundle → respondents → call list "
        "→ base")
    result.public_pool_path = out_dir / "public-pool.parquet"
    write_public_extract(pool, result.public_pool_path)
    hashes = [result.draw.lottery_hash]
    if prepared.lottery_hash is not None:
        hashes.append(prepared.lottery_hash)
    result.verification = verify_bundle(out_dir / "bundle-2", pool_path,
                                        expect_lottery_hash=hashes,
                                        expect_seed=[DEMO_SEED, REPLACE_SEED],
                                        base_path=base_path)
    timings["verify"] = time.perf_counter() - t
    return result


def fairness_comparison(result: DemoResult) -> dict[str, float | int]:
    """LEXIMIN against legacy, per person: the spread of probabilities and who loses out.

    `below` counts the people the legacy procedure leaves clearly below LEXIMIN's minimum
    (`legacy.clearly_below`: by more than three standard errors of its estimate).
    """
    if result.leximin is None or result.legacy is None:
        return {}
    counts = result.strata.counts.astype(float)
    lex, leg = result.leximin.stratum_probabilities, result.legacy.stratum_probabilities
    floor = float(lex.min())
    at_min = at_minimum(lex)
    below = clearly_below(leg, counts, int(result.legacy.details.get("runs", 1)), floor)
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


def _demo_names() -> set[str]:
    """Every name the demo writes in its folder, with the hidden leftovers of a killed write."""
    names = {MANIFEST, *DEMO_FILES, *DEMO_BUNDLES, DEMO_LOTTERY}
    return names | {f".{n}{suffix}" for n in names for suffix in (NEW, OLD, PENDING)}


def demo_problem(folder: Path) -> str | None:
    """Why `folder` is not a demo folder this tool wrote (None when it is)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes().decode("utf-8"))
        ours = isinstance(manifest, dict) and manifest.get("schema") == MANIFEST_SCHEMA
    except (OSError, ValueError):
        ours = False
    if not ours or (folder / MANIFEST).is_symlink():
        return f"it has no {MANIFEST} of a demo run"
    names = _demo_names()
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name not in names or entry.is_symlink():
            return f"it holds {entry.name!r}, which the demo does not write"
        if entry.is_dir(follow_symlinks=False):
            if entry.name == DEMO_LOTTERY:
                if not {e.name for e in os.scandir(entry.path)} <= LOTTERY_FILES:
                    return f"its folder {entry.name!r} is not the lottery the demo wrote"
            elif (entry.name.removeprefix(".").split(".sortition-")[0] not in DEMO_BUNDLES
                    or bundle_problem(Path(entry.path), need_audit=False) is not None):
                return f"its folder {entry.name!r} is not a bundle the demo wrote"
        elif not entry.is_file(follow_symlinks=False):
            return f"it holds {entry.name!r}, which is not a regular file"
    return None


def _clear_demo(folder: Path) -> None:
    """Remove a previous demo's files (checked by `demo_problem`), so none is mixed with ours."""
    import shutil

    if not folder.is_dir():
        return
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name == MANIFEST:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
