"""Run the command line in-process, as tests need it: exit status and flattened output
(`run`), or the whole result, for its exact stdout (`invoke`); and in a fresh interpreter with
a given hash seed (`with_hash_seed`)."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner, Result

from sortition.cli import app


def invoke(*args: object) -> Result:
    """The command's result; a traceback or non-exit exception fails the test."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def run(*args: object) -> tuple[int, str]:
    """Exit status and output on one line; a traceback or non-exit exception fails the test."""
    res = invoke(*args)
    return res.exit_code, " ".join(res.output.split())


def verify_unanchored(bundle: object, pool: object, *extra: object) -> tuple[int, str]:
    """`sortition verify BUNDLE --pool POOL --unanchored-ok …`: the consistency checks alone
    (anchoring has its own tests, tests/test_anchoring.py)."""
    return run("verify", bundle, "--pool", pool, "--unanchored-ok", *extra)


def with_hash_seed(hash_seed: str, *argv: object, cwd: object = None,
                   env: dict[str, str] | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python ARGV…` in a fresh interpreter whose string hashing uses `hash_seed`
    (PYTHONHASHSEED): for the tests that outputs do not depend on hash-table order. ARGV is
    e.g. `"-m", "sortition", "draw", …` or `"-c", SCRIPT`; `env` adds variables. Output is
    text; the exit status is the caller's to check."""
    full = {**os.environ, **(env or {}), "PYTHONHASHSEED": hash_seed}
    return subprocess.run([sys.executable, *map(str, argv)], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
