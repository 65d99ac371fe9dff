"""Shared test setup: hypothesis profiles, the wide console, and the programs printed in the
specification (`spec_program`, imported by the tests as `from conftest import spec_program`)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import settings
from rich.console import Console

import sortition.cli as cli

# CI must not go red by chance: the same examples on every run, no example database carried
# between runs, and a failing example printed as a blob that reproduces it. Developers keep
# random exploration (and the local example database) with the default `dev` profile.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev")
_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _CI else "dev"))


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Print on wide consoles so tables and messages are not wrapped mid-phrase."""
    monkeypatch.setattr(cli, "out", Console(width=250))
    monkeypatch.setattr(cli, "err", Console(stderr=True, width=250))


DOCS = Path(__file__).resolve().parent.parent / "docs"


def spec_program(doc: str, heading: str) -> str:
    """The first Python block of the section of `docs/<doc>` whose heading is `heading` (the
    heading's text without its `#`s and number, e.g. "The whole algorithm in 25 lines"), exactly
    as printed: found by its heading, never by line number, and read up to the next heading of
    the same or a higher level."""
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines(keepends=True)
    for i, line in enumerate(lines):
        m = re.match(r"(#+) +(?:[0-9.]+ +)?(.*?)\s*$", line)
        if m and m[2] == heading:
            level = len(m[1])
            section = []
            for rest in lines[i + 1:]:
                h = re.match(r"(#+) ", rest)
                if h and len(h[1]) <= level:
                    break
                section.append(rest)
            block = re.search(r"^```python\n(.*?)^```", "".join(section), re.S | re.M)
            assert block, f"{doc}, section {heading!r}: no Python block"
            return block[1]
    raise AssertionError(f"{doc}: no section headed {heading!r}")


def run_spec_programs(*sections: tuple[str, str]) -> dict:
    """Execute the programs of the given (doc, heading) sections, unchanged, in one namespace
    (a later program may use an earlier one's functions, as section 12.3 uses section 9's)."""
    ns: dict = {}
    for doc, heading in sections:
        exec(compile(spec_program(doc, heading), f"{doc} ({heading})", "exec"), ns)
    return ns


BUNDLE_SEED = "loto 2026-11-30 — 4 17 22 38 41 (n° 7)"


@pytest.fixture(scope="session")
def bundle_setup(tmp_path_factory) -> dict:
    """A 500-row synthetic pool, quotas for 100, one bundle drawn from it (seed `BUNDLE_SEED`,
    with a private export) and the pool's public extract: for tests/test_bundle.py and
    tests/test_verify.py, which must not change these files (`copy_bundle` first)."""
    from cli_runner import run

    d = tmp_path_factory.mktemp("bundle")
    pool, quotas = d / "pool.parquet", d / "quotas.csv"
    for args in (("synth", "--rows", 500, "--seed", 1, "--out", pool),
                 ("quotas", DOCS.parent / "quotas" / "occitanie-2020.toml", "--size", 100,
                  "--out", quotas),
                 ("draw", pool, "-q", quotas, "-k", 100, "--seed", BUNDLE_SEED,
                  "-o", d / "bundle", "--private-out", d / "private.csv"),
                 ("public-pool", pool, "-q", quotas, "-k", 100, "-o", d / "public.parquet")):
        code, text = run(*args)
        assert code == 0, text
    audit = json.loads((d / "bundle" / "audit.json").read_text(encoding="utf-8"))
    return {"dir": d, "pool": pool, "quotas": quotas, "bundle": d / "bundle",
            "audit": audit, "public": d / "public.parquet"}


def copy_bundle(bundle_setup: dict, tmp_path: Path) -> Path:
    """A copy of the shared bundle, to tamper with."""
    target = tmp_path / "copy"
    shutil.copytree(bundle_setup["bundle"], target)
    return target


@pytest.fixture(scope="session")
def contact_base(tmp_path_factory) -> Path:
    """A 4,000-row synthetic contact base (seed 11), for the call list and respondents tests."""
    from cli_runner import run

    path = tmp_path_factory.mktemp("base") / "base.parquet"
    code, text = run("synth", "--rows", 4000, "--seed", 11, "--out", path)
    assert code == 0, text
    return path


def moved_household(table: pa.Table) -> pa.Table:
    """The table with its first person moved into the household of the next person outside
    theirs (a different partition into households, so different household numbers)."""
    values = table.column("household").to_pylist()
    other = next(v for v in values if v != values[0])
    values[0] = other
    return table.set_column(table.column_names.index("household"), "household",
                            pa.array(values, type=pa.string()))


def write_answers(calls: Path, path: Path, skip: int = 20) -> Path:
    """Answers for all calls but the last `skip`, cycling through the three answers."""
    import pyarrow.parquet as pq

    ids = pq.read_table(calls, columns=["id"]).column("id").to_pylist()
    choices = [" Yes", "no", "UNREACHABLE", "yes "]
    lines = ["id,answer"] + [f"{i},{choices[k % 4]}" for k, i in enumerate(ids[:-skip])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def quota_membership(features: list[str], keys, quotas) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """The tests' one quota-membership oracle, written without the package's code: a 0/1
    matrix (quotas × keys) whose row g says which value tuples `keys` — strata keys or people,
    values in `features` order — quota g counts (every one-way quota in order, then every cross
    quota), and the quotas' minima and maxima."""
    rows, lo, hi = [], [], []
    for q in quotas.values:
        j = features.index(q.feature)
        rows.append([key[j] == q.value for key in keys])
        lo.append(q.min)
        hi.append(q.max)
    for c in quotas.cross:
        j0, j1 = (features.index(f) for f in c.features)
        rows.append([key[j0] == c.values[0] and key[j1] == c.values[1] for key in keys])
        lo.append(c.min)
        hi.append(c.max)
    a = np.array(rows, dtype=np.int64).reshape(len(rows), len(keys))
    return a, np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)


def seat_vectors(counts, size: int) -> np.ndarray:
    """The brute force's panels before any quota: every seat vector 0 ≤ x_s ≤ counts[s] with
    Σ x = size, one row each, in lexicographic order."""
    counts = [int(c) for c in counts]
    rows = np.zeros((1, 0), dtype=np.int64)
    left = sum(counts)
    for c in counts:
        left -= c
        partial = rows.sum(axis=1)
        parts = []
        for k in range(c + 1):
            ok = (partial + k <= size) & (partial + k + left >= size)
            parts.append(np.hstack([rows[ok], np.full((int(ok.sum()), 1), k, dtype=np.int64)]))
        rows = np.vstack(parts)
    rows = rows[rows.sum(axis=1) == size]
    return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows
