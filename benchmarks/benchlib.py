"""Shared machinery of `run.py` and `ci.py`: one measurement per fresh child process.

Run as a script, this file is the child: `python benchmarks/benchlib.py MODE --result FILE ...`.
The child appends one JSON object per line to FILE as each phase ends (so that a child killed at
its wall-clock limit still leaves its load and stratify times behind) and never relies on its
stdout, which solvers may fill with their own logs. Modes:

* `prepare`   synthesise an Occitanie pool, write it, and check that the quotas are feasible
* `ours`      load, stratify, solve and write probabilities with `sortition`
* `export`    write a pool and its resolved quotas as the CSV files the peer library reads
* `peer`      load and solve with the peer library `sortition-algorithms` (if importable)
* `reference` a fixed single-threaded LP + MIP workload, the yardstick of `ci.py`

The parent side is `run_child`: it starts the child in its own session, polls its result file,
and kills it (by its process group) at the wall-clock limit, reading its peak RSS first.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PAPER_DIR_DEFAULT = REPO / "data" / "peers" / "flanigan2021"
PAPER_INSTANCES = {"example_small_20": 20, "example_large_200": 200}
PANEL_SIZE = 100  # the Occitanie panel
CHUNK_ROWS = 1_300_000  # chunk size when a very large pool is generated piecewise

# The reference workload: fixed, seeded, single-threaded, and of the same kind as a LEXIMIN
# solve (Python model building, a GLOP linear program, a small SCIP integer program).
REFERENCE_LP = (500, 320, 12345)  # variables, constraints, seed
REFERENCE_MIP = (30, 10, 7)


# ---------------------------------------------------------------------------
# Small helpers (used by both sides)


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """Peak resident set size (VmHWM) of a process, in MiB; None when unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    if pid == "self":
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return None


def pool_path(pools_dir: Path, rows: int, seed: int) -> Path:
    return pools_dir / f"occitanie-{rows}-seed{seed}.parquet"


def git_state() -> dict:
    """The checkout measured: commit and whether the work tree had changes (read-only git)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                                 text=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def strata_fingerprint(keys: list[tuple[str, ...]], counts: list[int]) -> str:
    """A short digest of an instance (its strata and their sizes): same digest, same instance."""
    text = json.dumps([[list(k), int(n)] for k, n in zip(keys, counts, strict=True)],
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Parent side


@dataclass
class ChildResult:
    """What a child reported, merged over its phases, plus how it ended."""

    data: dict = field(default_factory=dict)
    phases: list[str] = field(default_factory=list)
    killed: bool = False
    returncode: int | None = None
    wall_seconds: float = 0.0
    log: Path | None = None


def _read_lines(path: Path) -> list[dict]:
    out = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


def run_child(mode: str, args: list[str], *, work_dir: Path, name: str,
              solve_limit: float | None, before_solve_limit: float = 3600.0,
              grace: float = 60.0) -> ChildResult:
    """Run `benchlib.py MODE ARGS` in a fresh process and collect its phases.

    The child is killed `before_solve_limit` seconds after its start if it has not begun solving,
    or `solve_limit + grace` seconds after it reported the start of its solve.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    result_file = work_dir / f"{name}.jsonl"
    log_file = work_dir / f"{name}.log"
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), mode, "--result", str(result_file),
           *args]
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # as the sortition command line does (see sortition/__init__)
    start = time.perf_counter()
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        deadline = start + before_solve_limit
        solve_seen = False
        solve_start = 0.0
        killed = False
        last_rss: float | None = None
        while proc.poll() is None:
            time.sleep(0.2)
            rss = peak_rss_mib(proc.pid)
            if rss is not None:
                last_rss = rss
            if not solve_seen and solve_limit is not None:
                if any(p.get("phase") == "solve_start" for p in _read_lines(result_file)):
                    solve_seen = True
                    solve_start = time.perf_counter()
                    deadline = solve_start + solve_limit + grace
            if time.perf_counter() > deadline:
                killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
    res = ChildResult(killed=killed, returncode=proc.returncode,
                      wall_seconds=time.perf_counter() - start, log=log_file)
    for line in _read_lines(result_file):
        res.phases.append(str(line.get("phase", "")))
        res.data.update({k: v for k, v in line.items() if k != "phase"})
    if killed:
        res.data.setdefault("peak_rss_mib", last_rss)
        if last_rss is not None:
            res.data["peak_rss_mib"] = max(last_rss, res.data.get("peak_rss_mib") or 0.0)
        res.data["status"] = "timeout"
        if solve_seen and res.data.get("solve_seconds") is None:
            res.data["solve_seconds_at_least"] = time.perf_counter() - solve_start
        limit = f"{solve_limit:g} s solve limit + {grace:g} s grace" if solve_seen \
            else f"{before_solve_limit:g} s before the solve"
        res.data["note"] = _join(res.data.get("note"), f"killed at the wall-clock limit ({limit})")
    elif "status" not in res.data:
        res.data["status"] = "error"
        res.data["note"] = _join(res.data.get("note"),
                                 f"child exited with status {proc.returncode}: {_tail(log_file)}")
    return res


def _join(a: str | None, b: str) -> str:
    return b if not a else f"{a}; {b}"


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])[-400:]


def reference_seconds(work_dir: Path, repeats: int = 5) -> tuple[float, list[float]]:
    """The reference workload, each repetition in a fresh process: (best, all times)."""
    times = []
    for i in range(repeats):
        res = run_child("reference", [], work_dir=work_dir, name=f"reference-{i}",
                        solve_limit=None, before_solve_limit=120.0)
        if res.data.get("status") != "ok":
            raise RuntimeError(f"the reference workload failed: {res.data.get('note')}")
        times.append(float(res.data["seconds"]))
    return min(times), times


# ---------------------------------------------------------------------------
# Child side


class _Emitter:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, phase: str, **data: object) -> None:
        data = {"phase": phase, **data, "peak_rss_mib": peak_rss_mib()}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _child_prepare(a: argparse.Namespace, emit: _Emitter) -> None:
    """Generate the pool (directly, or in chunks of CHUNK_ROWS) and check feasibility."""
    import gc

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from sortition import (
        build_strata,
        check_feasibility,
        load_pool,
        load_quotas,
        synthesize_pool,
        write_pool,
    )

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if a.chunk_rows and a.rows > a.chunk_rows:
        # Chunk k is a separate synthetic pool of seed (seed + k); ids and households are
        # renumbered across chunks so that they stay unique. Chunks are streamed to one file.
        tmp = out.with_name(out.name + ".partial")
        writer = None
        done = 0
        households = 0
        chunks = 0
        width = len(str(a.rows))
        try:
            while done < a.rows:
                n = min(a.chunk_rows, a.rows - done)
                table = synthesize_pool(n, a.seed + chunks)
                ids = pc.binary_join_element_wise(
                    "OC", pc.utf8_lpad(pc.cast(pa.array(range(done + 1, done + n + 1)),
                                               pa.string()), width=width, padding="0"), "")
                hh = pc.cast(pc.utf8_slice_codeunits(table.column("household"), 1), pa.int64())
                hh_max = pc.max(hh).as_py()
                hh = pc.binary_join_element_wise(
                    "H", pc.utf8_lpad(pc.cast(pc.add(hh, households), pa.string()),
                                      width=max(6, width), padding="0"), "")
                table = table.set_column(0, "id", ids)
                table = table.set_column(table.schema.get_field_index("household"), "household",
                                         hh)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
                households += int(hh_max)
                done += n
                chunks += 1
                del table, ids, hh
                gc.collect()
            writer.close()
            os.replace(tmp, out)
        finally:
            if tmp.exists():
                tmp.unlink()
        emit("generate", generate_seconds=time.perf_counter() - t0, chunks=chunks,
             generation=f"{chunks} chunks of up to {a.chunk_rows:,} rows (seeds {a.seed}.."
                        f"{a.seed + chunks - 1}), ids renumbered")
    else:
        table = synthesize_pool(a.rows, a.seed, extended=a.extended)
        t1 = time.perf_counter()
        write_pool(table, out, force=True)
        emit("generate", generate_seconds=t1 - t0, write_pool_seconds=time.perf_counter() - t1,
             chunks=1, generation="direct")
        del table
        gc.collect()
    emit("generated", pool_bytes=out.stat().st_size)
    quotas = load_quotas(a.quotas, a.size)
    pool = load_pool(out, quotas.all_features, quotas=quotas)
    strata = build_strata(pool, quotas.all_features)
    t2 = time.perf_counter()
    report = check_feasibility(strata, quotas, a.size, time_limit=a.check_limit)
    emit("check", check_seconds=time.perf_counter() - t2, feasible=bool(report.feasible),
         check_status=report.status, strata=len(strata), rows=len(pool), status="ok")


def _child_ours(a: argparse.Namespace, emit: _Emitter) -> None:
    import numpy as np

    from sortition import (
        InfeasibleError,
        SolverTimeout,
        SortitionError,
        build_strata,
        compute_probabilities,
        load_pool,
        load_quotas,
        write_probabilities,
    )

    t0 = time.perf_counter()
    quotas = load_quotas(a.quotas, a.size)
    pool = load_pool(a.pool, quotas.all_features, quotas=quotas)
    emit("load", load_seconds=time.perf_counter() - t0, rows=len(pool))
    t1 = time.perf_counter()
    strata = build_strata(pool, quotas.all_features)
    emit("stratify", stratify_seconds=time.perf_counter() - t1, strata=len(strata),
         fingerprint=strata_fingerprint(strata.keys, strata.counts.tolist()))
    emit("solve_start")
    times: list[float] = []
    refs: list[float] = []
    result = None
    if a.interleave_reference:
        reference_workload()  # warm-up: the first run in a process loads solver plugins
    try:
        for _ in range(max(1, a.repeat)):
            if a.interleave_reference:
                # timed right next to each solve, so both see the same machine load
                t_ref = time.perf_counter()
                reference_workload()
                refs.append(time.perf_counter() - t_ref)
            t2 = time.perf_counter()
            result = compute_probabilities(strata, quotas, a.size, a.algorithm,
                                           time_limit=a.time_limit)
            times.append(time.perf_counter() - t2)
    except SolverTimeout as e:
        bound = "" if e.bound is None else f" (best certified bound {e.bound:.9g})"
        emit("solve", solve_seconds=time.perf_counter() - t2, status="timeout",
             certified_upper_bound=e.bound, note=f"{e.problems[0]}{bound}")
        return
    except InfeasibleError as e:
        emit("solve", solve_seconds=time.perf_counter() - t2, status="infeasible",
             note=str(e).splitlines()[0])
        return
    except (SortitionError, RuntimeError, ValueError) as e:
        emit("solve", solve_seconds=time.perf_counter() - t2, status="error",
             note=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return
    assert result is not None
    lottery = result.lottery
    p = np.asarray(result.stratum_probabilities)
    emit("solve", solve_seconds=min(times), solve_times=times, adjacent_reference=refs,
         min_probability=float(p.min()),
         max_probability=float(p.max()), gap=result.gap,
         gini=gini(p, np.asarray(strata.counts)),
         panels=None if lottery is None else int(len(lottery.panels)),
         method=None if lottery is None else lottery.method)
    t3 = time.perf_counter()
    person = result.person_probabilities()
    if a.probs_out:
        write_probabilities(pool.ids, person, a.probs_out, force=True)
    emit("write", write_seconds=time.perf_counter() - t3, status="ok")


def gini(values, weights) -> float:
    """Gini coefficient of the per-person probabilities (`values` per stratum, `weights` its
    people): 1 − 2 × the area under the Lorenz curve, exact for grouped values."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    v, w = v[keep], w[keep]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    total = float(v @ w)
    if total <= 0:
        return 0.0
    pop = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    lorenz = np.concatenate([[0.0], np.cumsum(v * w) / total])
    return float(1.0 - np.sum((pop[1:] - pop[:-1]) * (lorenz[1:] + lorenz[:-1])))


def _child_export(a: argparse.Namespace, emit: _Emitter) -> None:
    """The pool as `id,<features>` CSV and the resolved quotas as `feature,value,min,max`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from sortition import load_pool, load_quotas, write_quotas
    from sortition.core.outputs import atomic_path

    t0 = time.perf_counter()
    quotas = load_quotas(a.quotas, a.size)
    write_quotas(quotas, a.features_out, force=True)
    pool = load_pool(a.pool, quotas.all_features, quotas=quotas)
    columns = {"id": pool.ids}
    for f in quotas.all_features:
        dictionary = pa.DictionaryArray.from_arrays(pa.array(pool.codes[f]),
                                                    pa.array(pool.values[f], pa.string()))
        columns[f] = dictionary.cast(pa.string())
    with atomic_path(a.people_out) as tmp:
        pacsv.write_csv(pa.table(columns), tmp)
    emit("export", export_seconds=time.perf_counter() - t0, rows=len(pool), status="ok")


def _child_peer(a: argparse.Namespace, emit: _Emitter) -> None:
    """Drive the peer library through its public API only."""
    try:
        import sortition_algorithms as sa
        from sortition_algorithms import committee_generation as cg
    except ImportError as e:
        emit("load", status="unavailable", note=f"sortition-algorithms is not importable ({e})")
        return
    from importlib.metadata import version

    emit("version", peer_version=version("sortition-algorithms"),
         gurobi_available=bool(getattr(cg, "GUROBI_AVAILABLE", False)))
    t0 = time.perf_counter()
    source = sa.CSVFileDataSource(features_file=Path(a.features), people_file=Path(a.people),
                                  already_selected_file=None,
                                  selected_file=Path(a.scratch) / "selected.csv",
                                  remaining_file=Path(a.scratch) / "remaining.csv")
    data = sa.SelectionData(source)
    features, _ = data.load_features(a.size)
    settings = sa.Settings(id_column="id", columns_to_keep=[], selection_algorithm=a.algorithm)
    people, _ = data.load_people(settings, features)
    emit("load", load_seconds=time.perf_counter() - t0, rows=int(people.count))
    emit("solve_start")
    t1 = time.perf_counter()
    committees = weights = None
    note = ""
    status = "ok"
    if a.algorithm == "leximin":
        try:
            committees, weights, _ = cg.find_distribution_leximin(features, people, a.size, [])
        except RuntimeError as e:
            if "gurobi" not in str(e).lower():
                raise
            emit("leximin_refused", leximin_available=False,
                 note="leximin unavailable (find_distribution_leximin: "
                      f"{str(e.args[0] if e.args else e)[:120]}); its selection entry point "
                      "falls back to maximin")
            # The distribution function refuses; the selection entry point instead switches
            # to maximin and says so only in its report: run it and read the report.
            t1 = time.perf_counter()
            _, report = sa.find_random_sample(features, people, a.size, [],
                                              selection_algorithm="leximin")
            text = report.as_text()
            fell_back = "maximin" in text.lower()
            status = "fallback" if fell_back else "ok"
            note = ("leximin unavailable: fell back to maximin (no gurobipy; its report says: "
                    f"{_first_line_with(text, 'maximin')!r})" if fell_back
                    else "leximin distribution refused without Gurobi; selection ran leximin")
    elif a.algorithm == "maximin":
        committees, weights, _ = cg.find_distribution_maximin(features, people, a.size, [])
    else:
        raise ValueError(f"unsupported peer algorithm {a.algorithm!r}")
    solve_seconds = time.perf_counter() - t1
    if committees is None:
        emit("solve", solve_seconds=solve_seconds, status=status, note=note)
        return
    prob: dict[str, float] = {}
    panels = 0
    for committee, w in zip(committees, weights, strict=True):
        if w <= 0:
            continue
        panels += 1
        for pid in committee:
            prob[pid] = prob.get(pid, 0.0) + float(w)
    ids = [str(pid) for pid in people]
    values = [prob.get(pid, 0.0) for pid in ids]
    emit("solve", solve_seconds=solve_seconds, min_probability=min(values),
         max_probability=max(values), panels=panels, status=status, note=note)


def _first_line_with(text: str, word: str) -> str:
    for line in text.splitlines():
        if word in line.lower():
            return line.strip()[:200]
    return ""


def reference_workload() -> float:
    """The fixed workload; returns its objective values' sum (to keep the work observable)."""
    import numpy as np
    from ortools.linear_solver import pywraplp

    n, m, seed = REFERENCE_LP
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 10, size=(m, n)).astype(float)
    b = a.sum(axis=1) * 0.3
    c = rng.random(n)
    lp = pywraplp.Solver.CreateSolver("GLOP")
    x = [lp.NumVar(0.0, 1.0, "") for _ in range(n)]
    for i in range(m):
        ct = lp.Constraint(-lp.infinity(), float(b[i]))
        for j in np.flatnonzero(a[i]).tolist():
            ct.SetCoefficient(x[j], float(a[i, j]))
    obj = lp.Objective()
    for j in range(n):
        obj.SetCoefficient(x[j], float(c[j]))
    obj.SetMaximization()
    lp.Solve()
    total = obj.Value()

    n, m, seed = REFERENCE_MIP
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, 30, size=(m, n)).astype(float)
    b = a.sum(axis=1) * 0.25
    c = rng.integers(1, 50, size=n).astype(float)
    ip = pywraplp.Solver.CreateSolver("SCIP")
    ip.SetNumThreads(1)
    ip.SetSolverSpecificParametersAsString("randomization/randomseedshift = 0\n")
    y = [ip.IntVar(0.0, 3.0, "") for _ in range(n)]
    for i in range(m):
        ct = ip.Constraint(-ip.infinity(), float(b[i]))
        for j in range(n):
            ct.SetCoefficient(y[j], float(a[i, j]))
    obj = ip.Objective()
    for j in range(n):
        obj.SetCoefficient(y[j], float(c[j]))
    obj.SetMaximization()
    ip.Solve()
    return total + obj.Value()


def _child_reference(a: argparse.Namespace, emit: _Emitter) -> None:
    import numpy  # noqa: F401  (imports are not part of the timed work)
    from ortools.linear_solver import pywraplp  # noqa: F401

    t0 = time.perf_counter()
    value = reference_workload()
    emit("reference", seconds=time.perf_counter() - t0, value=value, status="ok")


CHILDREN: dict[str, Callable[[argparse.Namespace, _Emitter], None]] = {
    "prepare": _child_prepare,
    "ours": _child_ours,
    "export": _child_export,
    "peer": _child_peer,
    "reference": _child_reference,
}


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="one benchmark measurement (a child process)")
    parser.add_argument("mode", choices=sorted(CHILDREN))
    parser.add_argument("--result", required=True)
    parser.add_argument("--pool")
    parser.add_argument("--quotas")
    parser.add_argument("--size", type=int)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out")
    parser.add_argument("--chunk-rows", type=int, default=0)
    parser.add_argument("--extended", action="store_true",
                        help="prepare: synth --extended (profession, habitat, opinion)")
    parser.add_argument("--check-limit", type=float, default=120.0)
    parser.add_argument("--algorithm", default="leximin")
    parser.add_argument("--time-limit", type=float)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--interleave-reference", action="store_true")
    parser.add_argument("--probs-out")
    parser.add_argument("--people")
    parser.add_argument("--features")
    parser.add_argument("--people-out")
    parser.add_argument("--features-out")
    parser.add_argument("--scratch")
    a = parser.parse_args(argv)
    emit = _Emitter(Path(a.result))
    try:
        CHILDREN[a.mode](a, emit)
    except MemoryError:
        emit("failed", status="error", note="out of memory")
        return 1
    except Exception as e:  # a benchmark records every failure rather than dying silently
        traceback.print_exc()
        first = str(e).splitlines()[0] if str(e) else ""
        emit("failed", status="error", note=f"{type(e).__name__}: {first}"[:400])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
