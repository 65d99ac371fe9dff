"""Locate the built-in census margins and quota specifications.

In an installed wheel they live in `sortition/_builtin/`; in a checkout (or an editable
install) they are the top-level `data/` and `quotas/` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # sortition/, above this core/ folder


def builtin_path(relative: str) -> Path:
    """Path of a built-in file such as `data/occitanie/age.csv` or `quotas/occitanie-2020.toml`."""
    for root in (_PACKAGE / "_builtin", _PACKAGE.parent):
        candidate = root / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"built-in file {relative!r} is missing from this installation")


def occitanie_data_dir() -> Path:
    return builtin_path("data/occitanie")


def occitanie_quotas() -> Path:
    return builtin_path("quotas/occitanie-2020.toml")
