"""Shared hypothesis strategies: only text the product can actually receive.

A lone surrogate ('\\ud800') has no UTF-8 encoding, so no file, seed or command line can carry
one; a NUL cannot appear in a command-line argument (argv strings are NUL-terminated). Every
test that generates text takes it from here, so a random run cannot draw an impossible input.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sortition.core.drawspec import seed_bytes

_NOT_UTF8 = ("Cs",)  # surrogates: not encodable as UTF-8
_NOT_IN_ARGV = "\x00"  # C strings end at NUL


def characters(*, argv: bool = False, exclude: str = "") -> st.SearchStrategy[str]:
    """One character encodable as UTF-8 (and, with argv, passable on a command line)."""
    return st.characters(exclude_categories=_NOT_UTF8,
                         exclude_characters=exclude + (_NOT_IN_ARGV if argv else ""))


def texts(min_size: int = 0, max_size: int | None = None, *,
          argv: bool = False) -> st.SearchStrategy[str]:
    """Text encodable as UTF-8 (ids, labels, file contents); argv=True: also a valid argument."""
    return st.text(characters(argv=argv), min_size=min_size, max_size=max_size)


def seed_texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """A public seed as typed after --seed: non-empty, UTF-8, no NUL."""
    return texts(min_size=1, max_size=max_size, argv=True)


def seeds(max_size: int = 40) -> st.SearchStrategy[bytes]:
    """A public seed's bytes, as the draw receives them."""
    return seed_texts(max_size).map(seed_bytes)


def guide_panel(draw, counts, size: int):
    """A random panel of `size` seats within the stratum sizes `counts`: quotas drawn around it
    are usually feasible (`draw` is hypothesis's `st.data()`/composite draw)."""
    import numpy as np

    room = np.asarray(counts, dtype=np.int64).copy()
    guide = np.zeros(len(room), dtype=np.int64)
    for _ in range(size):
        s = draw(st.sampled_from(np.flatnonzero(room > 0).tolist()))
        guide[s] += 1
        room[s] -= 1
    return guide


def examples(n: int, *suppress: HealthCheck, **extra: object) -> settings:
    """The one hypothesis setting tests use: `n` examples, no deadline (solver times vary on a
    shared machine), and the health checks a test knowingly trips (`suppress`). Everything
    else comes from the profile tests/conftest.py loads — in CI derandomised, without an example
    database — so no test can make CI depend on chance; `extra` is for what a test needs beyond
    that (e.g. `derandomize=True` everywhere)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=list(suppress),
                    **extra)
