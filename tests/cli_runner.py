"""Run the command line in-process, as tests need it: exit status and flattened output
(`run`), or the whole result, for its exact stdout (`invoke`)."""

from __future__ import annotations

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
