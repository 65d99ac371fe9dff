"""Scale benchmark: synthetic Occitanie pools of growing size, plus the Nature 2021 examples.

    python benchmarks/run.py [--sizes 500,1000,2000,5000,20000,1300000,13000000]
                             [--algorithm leximin[,goldilocks,…]] [--time-limit 300] [--peer]
                             [--json-out benchmarks/results/run-<date>.json]

For each size a synthetic Occitanie pool (panel 100, quotas/occitanie-2020.toml) is generated
once into benchmarks/results/pools/ with the first seed 1, 2, 3, ... whose quotas are feasible,
and reused afterwards. Every measurement (size x tool x algorithm) runs in a fresh child process,
so the peak RSS reported is that run's own. Solves get a time limit; a solve that hits it is
recorded as "timeout" with the load and stratify figures it did reach. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    CHUNK_ROWS,
    PANEL_SIZE,
    PAPER_DIR_DEFAULT,
    PAPER_INSTANCES,
    RESULTS,
    git_state,
    run_child,
)

DEFAULT_SIZES = "500,1000,2000,5000,20000,1300000,13000000"
# The "many strata" family (issue 11): synth --extended pools, nearly one stratum per person.
# rows: (quota file, panel size); 7 features up to 2 000 rows, 8 (with opinion) above.
MANY_STRATA = {
    600: ("quotas/occitanie-2020-extended.toml", 100),
    2000: ("quotas/occitanie-2020-extended.toml", 100),
    12000: ("quotas/occitanie-2020-extended-opinion.toml", 150),
    50000: ("quotas/occitanie-2020-extended-opinion.toml", 150),
}
DEFAULT_MANY_STRATA = "600,2000,12000,50000"
# Flanigan et al. 2021, LEXIMIN with Gurobi 9.0.3 (data/peers/flanigan2021/README.md)
PAPER_RESULTS = {
    "example_small_20": {"min_probability": 0.100, "seconds": 2.7},
    "example_large_200": {"min_probability": 0.100, "seconds": 1161.8},
}

# Wide enough for the results table when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 200)


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _quotas_path() -> Path:
    from sortition.core.resources import occitanie_quotas

    return occitanie_quotas()


# ---------------------------------------------------------------------------
# Pools


def ensure_pool(rows: int, pools_dir: Path, logs: Path, *, max_seeds: int,
                chunked_above: int, check_limit: float, extended: bool = False) -> dict:
    """The first feasible seed's pool for `rows` (generated once, then reused)."""
    from sortition.core.resources import builtin_path

    quotas = builtin_path(MANY_STRATA[rows][0]) if extended else _quotas_path()
    size = MANY_STRATA[rows][1] if extended else PANEL_SIZE
    prefix = "extended" if extended else "occitanie"
    tried = []
    for seed in range(1, max_seeds + 1):
        path = pools_dir / f"{prefix}-{rows}-seed{seed}.parquet"
        sidecar = path.with_suffix(".json")
        info = None
        if sidecar.exists():
            info = json.loads(sidecar.read_text(encoding="utf-8"))
            if info.get("feasible") and not path.exists():
                info = None  # the pool file was removed: generate it again
        if info is None:
            console.print(f"[dim]generating {rows:,} rows, seed {seed}…[/dim]")
            chunk = CHUNK_ROWS if rows > chunked_above else 0
            info = _prepare(rows, seed, path, quotas, logs, chunk, check_limit, size,
                            extended)
            if info.get("status") != "ok" and not chunk and rows > CHUNK_ROWS:
                # Direct generation failed (memory?): concatenate different-seed chunks.
                console.print(f"[yellow]direct generation of {rows:,} rows failed "
                              f"({info.get('note')}); generating in chunks[/yellow]")
                info = _prepare(rows, seed, path, quotas, logs, CHUNK_ROWS, check_limit)
            if info.get("status") != "ok":
                return {"rows": rows, "seed": seed, "status": "error", "path": str(path),
                        "note": f"pool generation failed: {info.get('note')}",
                        "seeds_tried": tried + [seed]}
            sidecar.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        tried.append(seed)
        if info.get("feasible"):
            info["seeds_tried"] = tried
            return info
        path.unlink(missing_ok=True)  # infeasible: keep only its sidecar
    return {"rows": rows, "seed": None, "status": "error",
            "note": f"no feasible seed among 1..{max_seeds}", "seeds_tried": tried}


def _prepare(rows: int, seed: int, path: Path, quotas: Path, logs: Path, chunk: int,
             check_limit: float, size: int = PANEL_SIZE, extended: bool = False) -> dict:
    res = run_child("prepare", ["--rows", str(rows), "--seed", str(seed), "--out", str(path),
                                "--quotas", str(quotas), "--size", str(size),
                                "--chunk-rows", str(chunk), "--check-limit", str(check_limit)]
                    + (["--extended"] if extended else []),
                    work_dir=logs, name=f"prepare-{path.stem}", solve_limit=None,
                    before_solve_limit=4 * 3600.0)
    info = {"rows": rows, "seed": seed, "path": str(path), **res.data}
    info["generation_peak_rss_mib"] = info.pop("peak_rss_mib", None)
    return info


# ---------------------------------------------------------------------------
# Runs


def run_ours(instance: str, pool: Path, quotas: Path, size: int, algorithm: str,
             time_limit: float, logs: Path, probs_dir: Path) -> dict:
    probs = probs_dir / f"{instance}-{algorithm}.csv"
    res = run_child("ours", ["--pool", str(pool), "--quotas", str(quotas), "--size", str(size),
                             "--algorithm", algorithm, "--time-limit", str(time_limit),
                             "--probs-out", str(probs)],
                    work_dir=logs, name=f"{instance}-sortition-{algorithm}",
                    solve_limit=time_limit, grace=max(60.0, 0.25 * time_limit))
    return {"instance": instance, "tool": "sortition", "algorithm": algorithm, "size": size,
            "wall_seconds": res.wall_seconds, "log": str(res.log), **res.data}


def export_for_peer(instance: str, pool: Path, quotas: Path, size: int, out_dir: Path,
                    logs: Path) -> tuple[Path, Path, dict]:
    people = out_dir / f"{instance}.people.csv"
    features = out_dir / f"{instance}.features.csv"
    if people.exists() and features.exists():
        return people, features, {"status": "ok", "cached": True}
    res = run_child("export", ["--pool", str(pool), "--quotas", str(quotas), "--size", str(size),
                               "--people-out", str(people), "--features-out", str(features)],
                    work_dir=logs, name=f"{instance}-export", solve_limit=None)
    return people, features, res.data


def run_peer(instance: str, people: Path, features: Path, size: int, algorithm: str,
             time_limit: float, logs: Path) -> dict:
    scratch = logs / f"{instance}-peer-{algorithm}-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    res = run_child("peer", ["--people", str(people), "--features", str(features),
                             "--size", str(size), "--algorithm", algorithm,
                             "--scratch", str(scratch)],
                    work_dir=logs, name=f"{instance}-peer-{algorithm}",
                    solve_limit=time_limit, grace=0.0)
    return {"instance": instance, "tool": "sortition-algorithms", "algorithm": algorithm,
            "size": size, "wall_seconds": res.wall_seconds, "log": str(res.log), **res.data}


def comparisons(runs: list[dict]) -> list[dict]:
    """Peer vs ours on each instance: time ratio and difference of minimum probabilities."""
    out = []
    ours = {r["instance"]: r for r in runs if r["tool"] == "sortition"}
    for r in runs:
        if r["tool"] != "sortition-algorithms":
            continue
        o = ours.get(r["instance"])
        if o is None:
            continue
        row = {"instance": r["instance"], "peer_algorithm": r["algorithm"],
               "peer_status": r.get("status"), "ours_status": o.get("status"),
               "peer_solve_seconds": r.get("solve_seconds"),
               "peer_solve_seconds_at_least": r.get("solve_seconds_at_least"),
               "ours_solve_seconds": o.get("solve_seconds"),
               "peer_min_probability": r.get("min_probability"),
               "ours_min_probability": o.get("min_probability"), "note": r.get("note", "")}
        if o.get("status") == "ok" and r.get("status") in ("ok", "fallback") \
                and r.get("solve_seconds") and o.get("solve_seconds"):
            row["time_ratio_peer_over_ours"] = r["solve_seconds"] / o["solve_seconds"]
        elif o.get("status") == "ok" and r.get("solve_seconds_at_least") \
                and o.get("solve_seconds"):
            row["time_ratio_at_least"] = r["solve_seconds_at_least"] / o["solve_seconds"]
        if o.get("min_probability") is not None and r.get("min_probability") is not None:
            row["min_difference_ours_minus_peer"] = o["min_probability"] - r["min_probability"]
        out.append(row)
    return out


# ---------------------------------------------------------------------------
# Output


def _s(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _solve(r: dict) -> str:
    if r.get("solve_seconds") is not None:
        return _s(r["solve_seconds"])
    if r.get("solve_seconds_at_least") is not None:
        return f"> {_s(r['solve_seconds_at_least'])}"
    return "—"


def _ratio(ratio: float | None, at_least: float | None) -> str:
    if ratio is not None:
        return f"{ratio:.3g}×"
    return "—" if at_least is None else f"> {at_least:.3g}×"


def _p(x: float | None) -> str:
    return "—" if x is None else f"{x:.6f}"


def results_table(runs: list[dict]) -> Table:
    t = Table(title="Benchmark runs (times in seconds, peak RSS in MiB)")
    for col in ("instance", "tool", "algorithm", "rows", "seed", "strata", "load", "stratify",
                "solve", "write", "peak RSS", "panels", "min prob.", "max prob.", "gini", "gap",
                "status"):
        t.add_column(col, justify="left" if col in ("instance", "tool", "status") else "right")
    for r in runs:
        status = r.get("status", "?")
        color = {"ok": "green", "timeout": "yellow", "fallback": "yellow"}.get(status, "red")
        t.add_row(r["instance"], r["tool"], r["algorithm"],
                  f"{r['rows']:,}" if r.get("rows") is not None else "—",
                  str(r.get("seed") or "—"), str(r.get("strata") or "—"),
                  _s(r.get("load_seconds")), _s(r.get("stratify_seconds")),
                  _solve(r), _s(r.get("write_seconds")),
                  _s(r.get("peak_rss_mib"), 4), str(r.get("panels") or "—"),
                  _p(r.get("min_probability")), _p(r.get("max_probability")),
                  "—" if r.get("gini") is None else f"{r['gini']:.3f}",
                  "—" if r.get("gap") is None else f"{r['gap']:.1e}",
                  f"[{color}]{status}[/{color}]")
    return t


def comparison_table(rows: list[dict], algorithm: str) -> Table:
    t = Table(title=f"sortition-algorithms (peer) vs sortition (ours, {algorithm})")
    for col in ("instance", "peer algorithm", "peer status", "peer solve", "our solve",
                "peer/ours time", "peer min", "our min", "our min − peer min"):
        t.add_column(col, justify="left" if col in ("instance", "peer status") else "right")
    for r in rows:
        ratio = r.get("time_ratio_peer_over_ours")
        diff = r.get("min_difference_ours_minus_peer")
        t.add_row(r["instance"], r["peer_algorithm"], r.get("peer_status") or "—",
                  _solve({"solve_seconds": r.get("peer_solve_seconds"),
                          "solve_seconds_at_least": r.get("peer_solve_seconds_at_least")}),
                  _s(r.get("ours_solve_seconds")),
                  _ratio(ratio, r.get("time_ratio_at_least")),
                  _p(r.get("peer_min_probability")), _p(r.get("ours_min_probability")),
                  "—" if diff is None else f"{diff:+.2e}")
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES,
                    help="comma-separated pool sizes (rows); empty for none")
    ap.add_argument("--algorithm", default="leximin",
                    help="comma-separated, run side by side: leximin, maximin, nash, "
                         "goldilocks, diversimax")
    ap.add_argument("--time-limit", type=float, default=300.0,
                    help="seconds per solve (ours and the peer's)")
    ap.add_argument("--peer", action="store_true",
                    help="also run sortition-algorithms (LEXIMIN and maximin) on the same files")
    ap.add_argument("--peer-max-rows", type=int, default=20000,
                    help="skip the peer on larger pools (its model has one variable per person)")
    ap.add_argument("--peer-algorithms", default="leximin,maximin",
                    help="the peer's algorithms to run (leximin, maximin)")
    ap.add_argument("--no-paper", action="store_true", help="skip the Nature 2021 instances")
    ap.add_argument("--paper-dir", type=Path, default=PAPER_DIR_DEFAULT)
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--pools-dir", type=Path, default=RESULTS / "pools")
    ap.add_argument("--max-seeds", type=int, default=20)
    ap.add_argument("--chunked-above", type=int, default=10**12,
                    help="generate pools above this many rows in chunks of "
                         f"{CHUNK_ROWS:,} (default: only if direct generation fails)")
    ap.add_argument("--many-strata", default="",
                    help="also the many-strata family (synth --extended pools), sizes among "
                         f"{DEFAULT_MANY_STRATA} (e.g. --many-strata {DEFAULT_MANY_STRATA}); "
                         "--sizes '' runs it alone")
    ap.add_argument("--check-limit", type=float, default=120.0,
                    help="time limit of each feasibility check during the seed search")
    a = ap.parse_args(argv)
    algorithms = [x.strip() for x in a.algorithm.split(",") if x.strip()]
    known = ("leximin", "maximin", "nash", "goldilocks", "diversimax")
    if not algorithms or any(x not in known for x in algorithms):
        ap.error(f"--algorithm {a.algorithm}: choose among {', '.join(known)}")

    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    json_out = a.json_out or RESULTS / f"run-{stamp}.json"
    logs = RESULTS / "logs" / stamp
    probs_dir = RESULTS / "probabilities" / stamp
    a.pools_dir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()]
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "algorithm": a.algorithm, "time_limit": a.time_limit, "panel_size": PANEL_SIZE,
        "machine": {"cores": os.cpu_count(), "memory_gib": _mem_total_gib(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_start": os.getloadavg()},
        "versions": {n: _version(n) for n in ("sortition", "ortools", "numpy", "pyarrow",
                                              "sortition-algorithms", "gurobipy")},
        "git": git_state(),
    }
    runs: list[dict] = []
    pools: list[dict] = []
    report = {"meta": meta, "pools": pools, "runs": runs, "comparisons": []}

    def save() -> None:
        report["comparisons"] = comparisons(runs)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n",
                            encoding="utf-8")

    peer_algorithms = [x.strip() for x in a.peer_algorithms.split(",") if x.strip()]
    if a.peer and _version("sortition-algorithms") is None:
        console.print("[red]--peer: sortition-algorithms is not installed "
                      "(pip install sortition-algorithms); running without it[/red]")
        meta["peer_note"] = "sortition-algorithms not installed"
        a.peer = False

    def peer_runs(instance: str, pool: Path, quotas: Path, size: int, rows: int | None,
                  extra: dict) -> None:
        if not a.peer:
            return
        if rows is not None and rows > a.peer_max_rows:
            for alg in peer_algorithms:
                runs.append({"instance": instance, "tool": "sortition-algorithms",
                             "algorithm": alg, "rows": rows, **extra, "status": "skipped",
                             "note": f"more than --peer-max-rows {a.peer_max_rows:,} rows"})
            return
        people, features, exp = export_for_peer(instance, pool, quotas, size,
                                                a.pools_dir / "peer", logs)
        if exp.get("status") != "ok":
            for alg in peer_algorithms:
                runs.append({"instance": instance, "tool": "sortition-algorithms",
                             "algorithm": alg, **extra, "status": "error",
                             "note": f"CSV export failed: {exp.get('note')}"})
            return
        for alg in peer_algorithms:
            console.print(f"[dim]{instance}: sortition-algorithms {alg}…[/dim]")
            r = run_peer(instance, people, features, size, alg, a.time_limit, logs)
            r.update(extra)
            runs.append(r)
            _line(r)
            save()

    for rows in sizes:
        info = ensure_pool(rows, a.pools_dir, logs, max_seeds=a.max_seeds,
                           chunked_above=a.chunked_above, check_limit=a.check_limit)
        pools.append(info)
        instance = f"occitanie-{rows}"
        if info.get("seed") is None or info.get("status") == "error":
            runs.append({"instance": instance, "tool": "sortition", "algorithm": a.algorithm,
                         "rows": rows, "status": "error", "note": info.get("note")})
            save()
            continue
        pool = Path(info["path"])
        for algorithm in algorithms:
            console.print(f"[dim]{instance} (seed {info['seed']}): sortition {algorithm}…[/dim]")
            r = run_ours(instance, pool, _quotas_path(), PANEL_SIZE, algorithm, a.time_limit,
                         logs, probs_dir)
            r["seed"] = info["seed"]
            runs.append(r)
            _line(r)
            save()
        peer_runs(instance, pool, _quotas_path(), PANEL_SIZE, rows, {"seed": info["seed"]})

    for rows in [int(x) for x in a.many_strata.split(",") if x.strip()]:
        if rows not in MANY_STRATA:
            console.print(f"[red]--many-strata {rows}: not one of {DEFAULT_MANY_STRATA}[/red]")
            continue
        info = ensure_pool(rows, a.pools_dir, logs, max_seeds=a.max_seeds,
                           chunked_above=a.chunked_above, check_limit=a.check_limit,
                           extended=True)
        pools.append(info)
        instance = f"extended-{rows}"
        if info.get("seed") is None or info.get("status") == "error":
            runs.append({"instance": instance, "tool": "sortition", "algorithm": a.algorithm,
                         "rows": rows, "status": "error", "note": info.get("note")})
            save()
            continue
        from sortition.core.resources import builtin_path

        quotas, size = builtin_path(MANY_STRATA[rows][0]), MANY_STRATA[rows][1]
        pool = Path(info["path"])
        for algorithm in algorithms:
            console.print(f"[dim]{instance} (seed {info['seed']}): sortition {algorithm}…[/dim]")
            r = run_ours(instance, pool, quotas, size, algorithm, a.time_limit, logs, probs_dir)
            r["seed"] = info["seed"]
            runs.append(r)
            _line(r)
            save()
        peer_runs(instance, pool, quotas, size, rows, {"seed": info["seed"]})

    if not a.no_paper:
        for name, size in PAPER_INSTANCES.items():
            folder = a.paper_dir / name
            pool, quotas = folder / "respondents.csv", folder / "categories.csv"
            if not pool.exists() or not quotas.exists():
                runs.append({"instance": name, "tool": "sortition", "algorithm": a.algorithm,
                             "status": "error", "note": f"{folder}: instance not found"})
                continue
            for algorithm in algorithms:
                console.print(f"[dim]{name} (panel {size}): sortition {algorithm}…[/dim]")
                r = run_ours(name, pool, quotas, size, algorithm, a.time_limit, logs, probs_dir)
                r["paper"] = PAPER_RESULTS[name]
                runs.append(r)
                _line(r)
                save()
            peer_runs(name, pool, quotas, size, None, {})

    meta["machine"]["load_average_end"] = os.getloadavg()
    save()
    console.print(results_table(runs))
    if a.peer:
        console.print(comparison_table(report["comparisons"], a.algorithm))
    for r in runs:
        if r.get("note"):
            console.print(f"[dim]{r['instance']} / {r['tool']} {r['algorithm']}: "
                          f"{r['note']}[/dim]", highlight=False)
    for r in runs:
        if r.get("paper") and r.get("min_probability") is not None:
            console.print(f"{r['instance']}: {r['algorithm']} minimum probability "
                          f"{r['min_probability']:.6f} in {r['solve_seconds']:.3g} s (the "
                          f"paper's LEXIMIN with Gurobi: {r['paper']['min_probability']:.3f} "
                          f"in {r['paper']['seconds']} s)")
    console.print(f"wrote {json_out}")
    return 0


def _line(r: dict) -> None:
    console.print(f"  {r['instance']} {r['tool']} {r['algorithm']}: {r.get('status')}, "
                  f"solve {_s(r.get('solve_seconds'))} s, min {_p(r.get('min_probability'))}, "
                  f"peak RSS {_s(r.get('peak_rss_mib'), 4)} MiB", highlight=False)


if __name__ == "__main__":
    sys.exit(main())
