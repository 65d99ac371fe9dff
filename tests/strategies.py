"""Shared hypothesis strategies: only text the product can actually receive, and the one
generator of quota instances every brute-force property draws from.

A lone surrogate ('\\ud800') has no UTF-8 encoding, so no file, seed or command line can carry
one; a NUL cannot appear in a command-line argument (argv strings are NUL-terminated). Every
test that generates text takes it from here, so a random run cannot draw an impossible input.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

from sortition.core.drawspec import seed_bytes
from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota
from sortition.inputs.strata import Strata, strata_from_counts

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


def guide_panel(draw, counts, size: int, *, within: bool = True) -> np.ndarray:
    """A random panel of `size` seats over the strata of sizes `counts`, quotas are then drawn
    around (`draw` is hypothesis's `st.data()`/composite draw). within=True: a real panel, so
    quotas drawn around it with slack are feasible; within=False: seats may exceed a stratum
    or the pool, so quotas drawn around it sit on both sides of the feasibility edge."""
    room = np.asarray(counts, dtype=np.int64).copy()
    present = np.flatnonzero(room > 0).tolist()
    guide = np.zeros(len(room), dtype=np.int64)
    for _ in range(size):
        s = draw(st.sampled_from(np.flatnonzero(room > 0).tolist() if within else present))
        guide[s] += 1
        room[s] -= 1
    return guide


class Instance(NamedTuple):
    """A pool (as strata), quotas and a panel size: what every lottery and check takes."""

    strata: Strata
    quotas: Quotas
    size: int

    @property
    def features(self) -> list[str]:
        return list(self.strata.features)


@st.composite
def instances(draw, *, features: tuple[int, int] = (2, 3), values: tuple[int, int] = (2, 3),
              keys: tuple[int, int] = (1, 9), counts: st.SearchStrategy[int] | None = None,
              size: tuple[int, int] = (1, 8), too_small: bool = False, exceed: bool = False,
              slack: int = 2, wild: int = 0, skip: int = 0, absent: bool = False,
              cross: tuple[int, int] = (0, 2)) -> Instance:
    """Small quota instances for brute-force properties, the one generator all of them use.

    Features f0, f1… carry values v0, v1…; `keys` distinct combinations are present with
    sizes from `counts` (default 1-6; zero drops the stratum). A guide panel of `size` seats
    is drawn first and every quota's bounds lie within `slack` of the guide's count, so most
    instances are feasible; the knobs move them towards the edge:

    - too_small: one in four instances keeps its size even above the pool's;
    - exceed: the guide may put more seats in a stratum than it holds (edge on both sides);
    - wild: one bound in `wild` ignores the guide (anywhere in 0..size);
    - skip: one value in `skip` carries no quota; absent: quotas on a value no one has;
    - cross: how many cross quotas, each on two features in order and a value of each.
    """
    nf = draw(st.integers(*features))
    names = [f"f{i}" for i in range(nf)]
    vals = {f: [f"v{j}" for j in range(draw(st.integers(*values)))] for f in names}
    combos = list(itertools.product(*(vals[f] for f in names)))
    n_keys = draw(st.integers(min(keys[0], len(combos)), min(keys[1], len(combos))))
    present = draw(st.lists(st.sampled_from(combos), min_size=n_keys, max_size=n_keys,
                            unique=True))
    sizes = st.integers(1, 6) if counts is None else counts
    strata = strata_from_counts(names, {key: draw(sizes) for key in present})
    pool = int(strata.counts.sum())
    assume(pool >= size[0])
    k = draw(st.integers(size[0], size[1] if too_small else max(size[0], min(size[1], pool))))
    if too_small and draw(st.integers(0, 3)):
        k = min(k, pool)  # a pool too small is only an occasional case
    guide = guide_panel(draw, strata.counts, k, within=not exceed and k <= pool)

    def bounds(members: np.ndarray) -> tuple[int, int]:
        if wild and draw(st.integers(0, wild - 1)) == 0:
            lo = draw(st.integers(0, k))
            return lo, lo + draw(st.integers(0, k))
        g = int(guide @ members)
        return max(0, g - draw(st.integers(0, slack))), g + draw(st.integers(0, slack))

    def members(cond: dict[int, str]) -> np.ndarray:
        return np.array([all(key[j] == v for j, v in cond.items()) for key in strata.keys],
                        dtype=np.int64).reshape(len(strata.keys))

    vq: list[ValueQuota] = []
    for j, f in enumerate(names):
        for v in vals[f] + (["absent"] if absent and draw(st.booleans()) else []):
            if skip and draw(st.integers(0, skip - 1)) == 0:
                continue  # a value without a quota
            vq.append(ValueQuota(f, v, *bounds(members({j: v}))))
    cq: list[CrossQuota] = []
    for _ in range(draw(st.integers(*cross)) if nf >= 2 else 0):
        j0, j1 = sorted(draw(st.lists(st.integers(0, nf - 1), min_size=2, max_size=2,
                                      unique=True)))
        pair = (names[j0], names[j1])
        v0, v1 = draw(st.sampled_from(vals[pair[0]])), draw(st.sampled_from(vals[pair[1]]))
        if any(c.features == pair and c.values == (v0, v1) for c in cq):
            continue  # one quota per group
        cq.append(CrossQuota(pair, (v0, v1), *bounds(members({j0: v0, j1: v1}))))
    return Instance(strata, Quotas(values=vq, cross=cq, size=k), k)


def examples(n: int, *suppress: HealthCheck, **extra: object) -> settings:
    """The one hypothesis setting tests use: `n` examples, no deadline (solver times vary on a
    shared machine), and the health checks a test knowingly trips (`suppress`). Everything
    else comes from the profile tests/conftest.py loads — in CI derandomised, without an example
    database — so no test can make CI depend on chance; `extra` is for what a test needs beyond
    that (e.g. `derandomize=True` everywhere)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=list(suppress),
                    **extra)
