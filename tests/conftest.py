"""Shared test setup: hypothesis profiles, the wide console, and the programs printed in the
specification (`spec_program`, imported by the tests as `from conftest import spec_program`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

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
