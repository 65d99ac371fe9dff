"""Shared test setup."""

from __future__ import annotations

import pytest
from rich.console import Console

import sortition.cli as cli


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Print on wide consoles so tables and messages are not wrapped mid-phrase."""
    monkeypatch.setattr(cli, "out", Console(width=250))
    monkeypatch.setattr(cli, "err", Console(stderr=True, width=250))
