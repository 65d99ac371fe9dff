"""Performance regression check: LEXIMIN (and Nash on one pool) quality and speed on a quick,
fixed set of instances.

    python benchmarks/ci.py            # compare with benchmarks/baselines.json; exit 1 if worse
    python benchmarks/ci.py --update    # measure and rewrite the baselines (deliberately)

Cases: the two public Nature 2021 instances (example_small_20, example_large_200, copied in
data/peers/) and synthetic Occitanie pools of 200, 500, 2 000 and 20 000 rows (panel 100, fixed
seeds recorded in the baselines), and Nash on the 2 000-row pool (`ALGORITHMS`). For each,
a fresh child process loads, stratifies and solves the lottery under a time limit. A reference
workload (a fixed single-threaded LP + MIP) is timed in the same child right before each
repetition of the solve, and the best solve time is compared as a multiple of the best
reference time, so that a slower or faster machine — or a machine whose load changes during
the run — does not move the check. (It is also timed 5 times in fresh processes at the start,
for the record.)

A case fails when
* its solve does not finish with status ok (a timeout, an error or "infeasible" is a failure),
* its instance is not the baseline's (strata fingerprint differs: the generator, the quotas or
  the data changed; rerun with --update if that is intended),
* its minimum probability is below the baseline's by more than MIN_PROB_TOL, or
* its time/reference ratio exceeds RATIO_FACTOR times the baseline ratio. Times below
  TIME_FLOOR x reference count as TIME_FLOOR x reference, so that millisecond solves are not
  judged on timer noise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    HERE,
    PANEL_SIZE,
    PAPER_DIR_DEFAULT,
    git_state,
    reference_seconds,
    run_child,
)

BASELINES = HERE / "baselines.json"
MIN_PROB_TOL = 1e-6
RATIO_FACTOR = 2.0
TIME_FLOOR = 0.2  # in units of the reference workload's time
TIME_LIMIT = 120.0  # per solve, seconds
MAX_SEEDS = 20

# name: (kind, rows or paper folder, panel size, repetitions of the solve: best time kept)
CASES: dict[str, tuple[str, str | int, int, int]] = {
    "example_small_20": ("paper", "example_small_20", 20, 5),
    "example_large_200": ("paper", "example_large_200", 200, 5),
    "occitanie-200": ("synthetic", 200, PANEL_SIZE, 3),
    "occitanie-500": ("synthetic", 500, PANEL_SIZE, 3),
    "occitanie-2000": ("synthetic", 2000, PANEL_SIZE, 3),
    "occitanie-20000": ("synthetic", 20000, PANEL_SIZE, 2),
    # many strata (issue 11): synth --extended, 7 features, 1 434 strata for 2 000 people
    "extended-2000": ("extended", 2000, PANEL_SIZE, 2),
    # Nash's cutting planes: 614 strata did not finish in 120 s before their grid start
    "occitanie-2000-nash": ("synthetic", 2000, PANEL_SIZE, 2),
}
ALGORITHMS = {"occitanie-2000-nash": "nash"}  # every other case: LEXIMIN
EXTENDED_QUOTAS = "quotas/occitanie-2020-extended.toml"

console = Console(width=None if sys.stdout.isatty() else 160)


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _occitanie_quotas() -> Path:
    from sortition.core.resources import occitanie_quotas

    return occitanie_quotas()


def _quotas(kind: str) -> Path:
    from sortition.core.resources import builtin_path

    return builtin_path(EXTENDED_QUOTAS) if kind == "extended" else _occitanie_quotas()


def _prepare(rows: int, seed: int, work: Path, kind: str = "synthetic") -> dict:
    path = work / f"{kind}-{rows}-seed{seed}.parquet"
    res = run_child("prepare", ["--rows", str(rows), "--seed", str(seed), "--out", str(path),
                                "--quotas", str(_quotas(kind)), "--size", str(PANEL_SIZE),
                                "--check-limit", "60"]
                    + (["--extended"] if kind == "extended" else []),
                    work_dir=work, name=f"prepare-{rows}-{seed}", solve_limit=None,
                    before_solve_limit=300.0)
    return {"path": path, **res.data}


def _instance(name: str, baseline: dict | None, update: bool, paper_dir: Path,
              work: Path) -> tuple[Path, Path, int, int | None, str | None]:
    """(pool, quotas, panel size, seed, problem) for a case."""
    kind, what, size, _ = CASES[name]
    if kind == "paper":
        folder = paper_dir / str(what)
        pool, quotas = folder / "respondents.csv", folder / "categories.csv"
        if not pool.exists() or not quotas.exists():
            return pool, quotas, size, None, (f"{folder}: instance not found (give its parent "
                                              "folder with --paper-dir)")
        return pool, quotas, size, None, None
    rows = int(what)
    if not update:
        if baseline is None or baseline.get("seed") is None:
            return Path(), Path(), size, None, "no baseline seed: run with --update first"
        seeds = [int(baseline["seed"])]
    else:
        seeds = list(range(1, MAX_SEEDS + 1))
    for seed in seeds:
        info = _prepare(rows, seed, work, kind)
        if info.get("status") != "ok":
            return Path(), Path(), size, seed, f"pool generation failed: {info.get('note')}"
        if info.get("feasible"):
            return info["path"], _quotas(kind), size, seed, None
    return Path(), Path(), size, None, (f"seed {seeds[0]} no longer gives feasible quotas"
                                        if not update else f"no feasible seed in 1..{MAX_SEEDS}")


def _solve(name: str, pool: Path, quotas: Path, size: int, repeat: int, work: Path,
           time_limit: float) -> dict:
    algorithm = ALGORITHMS.get(name, "leximin")
    res = run_child("ours", ["--pool", str(pool), "--quotas", str(quotas), "--size", str(size),
                             "--algorithm", algorithm, "--time-limit", str(time_limit),
                             "--repeat", str(repeat), "--interleave-reference"],
                    work_dir=work, name=f"{name}-{algorithm}",
                    solve_limit=time_limit * repeat, grace=30.0, before_solve_limit=300.0)
    return res.data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--update", action="store_true",
                    help="measure and rewrite the baselines instead of checking them")
    ap.add_argument("--baselines", type=Path, default=BASELINES)
    ap.add_argument("--paper-dir", type=Path, default=PAPER_DIR_DEFAULT,
                    help="folder holding example_small_20/ and example_large_200/")
    ap.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                    help="seconds per solve (a timeout is a failure)")
    a = ap.parse_args(argv)

    baselines: dict = {}
    if a.baselines.exists():
        baselines = json.loads(a.baselines.read_text(encoding="utf-8"))
    elif not a.update:
        console.print(f"[red]{a.baselines} not found: create it with --update[/red]")
        return 1
    base_cases = baselines.get("cases", {})

    failures: list[str] = []
    rows_out: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="sortition-bench-") as tmp:
        work = Path(tmp)
        try:
            ref, ref_times = reference_seconds(work)
        except RuntimeError as e:
            console.print(f"[red]FAIL[/red] {e}", highlight=False)
            return 1
        console.print(f"reference workload: {ref:.3f} s (best of "
                      f"{', '.join(f'{t:.3f}' for t in ref_times)})", highlight=False)
        for name, (_, _, _, repeat) in CASES.items():
            base = base_cases.get(name)
            row: dict = {"case": name, "base": base}
            pool, quotas, size, seed, problem = _instance(name, base, a.update, a.paper_dir,
                                                          work)
            row["seed"] = seed
            if problem:
                row.update(status="error", note=problem)
            else:
                row.update(_solve(name, pool, quotas, size, repeat, work, a.time_limit))
                row["seed"] = seed
            if row.get("status") == "ok":
                t = float(row["solve_seconds"])
                # the reference timed next to each solve, in the same process, absorbs changes
                # of machine load during the run; the separate reference is the fallback
                adjacent = [x for x in row.get("adjacent_reference") or [] if x > 0]
                own = min(adjacent) if adjacent else ref
                row["reference_seconds"] = own
                row["ratio"] = max(t, TIME_FLOOR * own) / own
            rows_out.append(row)
            failures += _judge(row, base, a.update)

    _print_table(rows_out, ref)
    if a.update:
        if failures:
            for f in failures:
                console.print(f"[red]FAIL[/red] {f}", highlight=False)
            console.print("[red]baselines not updated: every case must finish with status ok"
                          "[/red]")
            return 1
        _write_baselines(a.baselines, rows_out, ref, ref_times)
        console.print(f"wrote {a.baselines}")
        return 0
    for f in failures:
        console.print(f"[red]FAIL[/red] {f}", highlight=False)
    passed = len(rows_out) - len({f.split(':')[0] for f in failures})
    console.print(f"benchmarks: {passed} passed, {len(rows_out) - passed} failed")
    return 1 if failures else 0


def _judge(row: dict, base: dict | None, update: bool) -> list[str]:
    name = row["case"]
    if row.get("status") != "ok":
        return [f"{name}: status {row.get('status')} ({row.get('note') or 'no detail'})"]
    if update:
        return []
    if base is None:
        return [f"{name}: no baseline for this case (run with --update)"]
    out = []
    if base.get("fingerprint") and row.get("fingerprint") != base["fingerprint"]:
        out.append(f"{name}: the instance changed ({row.get('strata')} strata, fingerprint "
                   f"{row.get('fingerprint')}; baseline {base.get('strata')} strata, "
                   f"{base['fingerprint']}): if intended, rerun with --update")
    low = float(base["min_probability"]) - MIN_PROB_TOL
    if float(row["min_probability"]) < low:
        out.append(f"{name}: minimum probability {row['min_probability']:.9f} is below the "
                   f"baseline {base['min_probability']:.9f} by more than {MIN_PROB_TOL:g}")
    limit = RATIO_FACTOR * float(base["ratio"])
    if row["ratio"] > limit:
        out.append(f"{name}: solve took {row['solve_seconds']:.3f} s = {row['ratio']:.3f} x "
                   f"reference, more than {RATIO_FACTOR:g} x the baseline ratio "
                   f"{base['ratio']:.3f} (limit {limit:.3f})")
    return out


def _print_table(rows: list[dict], ref: float) -> None:
    t = Table(title=f"Regression check (reference workload {ref:.3f} s)")
    for col in ("case", "strata", "min prob.", "baseline", "solve s", "x ref", "baseline x ref",
                "status"):
        t.add_column(col, justify="left" if col in ("case", "status") else "right")
    for r in rows:
        base = r.get("base") or {}
        status = r.get("status", "?")
        color = "green" if status == "ok" else "red"
        t.add_row(r["case"], str(r.get("strata") or "—"),
                  "—" if r.get("min_probability") is None else f"{r['min_probability']:.6f}",
                  "—" if base.get("min_probability") is None
                  else f"{base['min_probability']:.6f}",
                  "—" if r.get("solve_seconds") is None else f"{r['solve_seconds']:.3f}",
                  "—" if r.get("ratio") is None else f"{r['ratio']:.3f}",
                  "—" if base.get("ratio") is None else f"{base['ratio']:.3f}",
                  f"[{color}]{status}[/{color}]")
    console.print(t)


def _write_baselines(path: Path, rows: list[dict], ref: float, ref_times: list[float]) -> None:
    cases = {}
    for r in rows:
        kind, what, size, repeat = CASES[r["case"]]
        cases[r["case"]] = {
            "kind": kind, "algorithm": ALGORITHMS.get(r["case"], "leximin"),
            "rows": r.get("rows"), "panel_size": size, "seed": r.get("seed"),
            "strata": r.get("strata"), "fingerprint": r.get("fingerprint"),
            "min_probability": r["min_probability"], "solve_seconds": r["solve_seconds"],
            "solve_repeats": repeat, "ratio": r["ratio"], "panels": r.get("panels"),
            "method": r.get("method"),
        }
    data = {
        "about": "Baselines of benchmarks/ci.py. Rewrite only deliberately, with "
                 "`python benchmarks/ci.py --update`, after checking the change.",
        "recorded": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "versions": {n: _version(n) for n in ("sortition", "ortools", "numpy", "pyarrow")},
        "git": git_state(),
        "reference_seconds": ref, "reference_times": ref_times,
        "rules": {"min_probability_tolerance": MIN_PROB_TOL, "ratio_factor": RATIO_FACTOR,
                  "time_floor_in_reference_units": TIME_FLOOR, "time_limit": TIME_LIMIT},
        "cases": cases,
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
