"""Run the command line in-process, as tests need it: exit status and flattened output."""

from __future__ import annotations

from typer.testing import CliRunner

from sortition.cli import app


def run(*args: object) -> tuple[int, str]:
    """Exit status and output on one line; a traceback or non-exit exception fails the test."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, " ".join(res.output.split())
