"""Shared test setup: hypothesis profiles and the wide console."""

from __future__ import annotations

import os

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
