"""Dropout simulation: how often would the replacement lists keep the panel whole?

Before inviting anyone, the operator wants to know whether R replacements per member are enough,
and which quotas are at risk if some groups decline more than others. Each trial lets members
and replacements drop out at random and replaces dropouts from the lists, as the operator would.
The trials are drawn from the public seed (stream `simulate`, docs/draw-spec.md section 13), so
the figures can be reproduced; they change nothing in the draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..bundle.read import bundle_inputs, origin_lists, panel_ids, read_bundle
from ..core import drawspec as drawing
from ..core.errors import InputError
from ..core.limits import MAX_TRIALS, check_count
from ..core.textopts import seed_option
from ..draw.panel import seat_counts
from ..draw.replacements import stratum_lookup, validate_panel
from ..inputs.rates import read_rates
from ..lottery.panels import QuotaSystem, quota_system

THRESHOLD = 0.05  # a quota broken in at least this share of trials is reported as risky
_CHUNK = 1024  # trials whose random words are generated at once
_MASK = (1 << 53) - 1


@dataclass
class Simulation:
    """The share of trials fully covered, and per quota group how often it broke."""

    trials: int
    covered: float  # share of trials with every dropout replaced and every quota kept
    per_value: list[dict]  # one per quota group: feature, value, min, max, dropout_rate,
    #                        members, p_broken
    risky: list[dict]  # per_value entries with p_broken ≥ threshold, worst first


def uniforms(seed: bytes, lottery_hash: str, start: int, count: int,
             label: str = drawing.SIMULATE) -> np.ndarray:
    """Words start … start+count−1 of a stream as below(2**53) / 2**53, in one go.

    below(2**53) never rejects (2**53 divides 2**64) and keeps a word's low 53 bits, so word w
    of the stream is exactly the w-th value: they can be computed from whole blocks at once.
    """
    stream = drawing.Stream(seed, lottery_hash, label)
    if count <= 0:
        return np.zeros(0, dtype=np.float64)
    first, last = start // 4, (start + count - 1) // 4
    data = stream.blocks(first, last)
    words = np.frombuffer(data, dtype=">u8")[start - 4 * first:start - 4 * first + count]
    return (words & np.uint64(_MASK)).astype(np.float64) / float(1 << 53)


def person_rate(key: tuple[str, ...], features: list[str], rate: float,
                rates: Mapping[tuple[str, str], float | Fraction] | None) -> float:
    """A person's dropout probability: the largest rate given for one of their values, else
    the default (the most cautious reading when several of their values have a rate)."""
    given = [rates[(f, v)] for f, v in zip(features, key, strict=True)
             if rates and (f, v) in rates]
    return float(max(given)) if given else rate


def _check_rate(what: str, value: float | Fraction) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: {value!r} is not a number") from None
    if not 0.0 <= v <= 1.0:  # also refuses NaN
        raise InputError(f"{what}: {value!r} is not between 0 and 1")
    return v


def _describe(system: QuotaSystem, g: int) -> tuple[str, str, list[tuple[str, str]]]:
    """(feature, value) of a quota group, as the audit names quotas ("a & b" when crossed),
    and the (feature, value) pairs that define it (the label alone for a system built by hand,
    without its quotas' names)."""
    if not system.features:
        return system.labels[g], "", []
    features, values = system.features[g], system.values[g]
    return " & ".join(features), " & ".join(values), list(zip(features, values, strict=True))


def simulate(system: QuotaSystem, keys: list[tuple[str, ...]], features: list[str],
             panel_seats: np.ndarray, people: list[tuple[int, str]],
             rows: list[tuple[str, int, str]], *, stratum_of: Callable[[str], int | None],
             rate: float, rates: Mapping[tuple[str, str], float | Fraction] | None = None,
             trials: int,
             seed: bytes, lottery_hash: str, threshold: float = THRESHOLD) -> Simulation:
    """Replay random dropouts `trials` times; see docs/draw-spec.md section 13 for the model.

    `stratum_of` gives each replacement's stratum (e.g. `ReplacementLists.strata.get`).
    """
    rate = _check_rate("dropout rate", rate)
    rates = {k: _check_rate(f"dropout rate for {k[0]}={k[1]}", v)
             for k, v in (rates or {}).items()}
    for f, _v in rates:
        if f not in features:
            raise InputError(f"dropout rate for {f}: not a quota feature "
                             f"({', '.join(features)})")
    trials = check_count("--trials", trials, maximum=MAX_TRIALS)
    x = validate_panel(system, panel_seats, people)
    n_groups = len(system.groups)
    membership = system.membership()
    lo, hi = system.lo.tolist(), system.hi.tolist()
    start = (membership @ x).tolist()
    member_index = {i: m for m, (_, i) in enumerate(people)}
    member_stratum = [int(s) for s, _ in people]

    # Replacements in row order (first appearance), and each member's list by rank.
    rep_index: dict[str, int] = {}
    rep_stratum: list[int] = []
    by_member: list[list[tuple[int, int]]] = [[] for _ in people]
    for member, rank, rep in rows:
        if member not in member_index:
            raise InputError(f"replacement list: {member!r} is not on the panel")
        if rep not in rep_index:
            t = stratum_of(rep)
            if t is None:
                raise InputError(f"replacement list: {rep!r} is not in the pool")
            rep_index[rep] = len(rep_stratum)
            rep_stratum.append(int(t))
        by_member[member_index[member]].append((rank, rep_index[rep]))
    moves: dict[tuple[int, int], tuple[list[int], list[int]]] = {}

    def move(s: int, t: int) -> tuple[list[int], list[int]]:
        """Groups that gain a seat, and groups that lose one, when s is swapped for t."""
        if (s, t) not in moves:
            d = membership[:, t] - membership[:, s]
            moves[(s, t)] = (np.flatnonzero(d > 0).tolist(), np.flatnonzero(d < 0).tolist())
        return moves[(s, t)]

    candidates = [[(c, *move(member_stratum[m], rep_stratum[c])) for _, c in sorted(lst)]
                  for m, lst in enumerate(by_member)]
    groups_of = [np.flatnonzero(membership[:, s]).tolist() for s in range(system.n_strata)]

    rate_of = {t: person_rate(keys[t], features, rate, rates)
               for t in sorted(set(member_stratum) | set(rep_stratum))}
    p_members = np.array([rate_of[s] for s in member_stratum], dtype=np.float64)
    p_reps = np.array([rate_of[t] for t in rep_stratum], dtype=np.float64)
    n_members, n_reps = len(people), len(rep_stratum)
    width = n_members + n_reps

    covered = 0
    broken_count = np.zeros(n_groups, dtype=np.int64)
    for first in range(0, trials, _CHUNK):
        size = min(_CHUNK, trials - first)
        u = uniforms(seed, lottery_hash, first * width, size * width).reshape(size, width)
        dropped = np.less(u[:, :n_members], p_members)
        rep_dropped = (u[:, n_members:] < p_reps).tolist()
        any_dropped = dropped.any(axis=1).tolist()
        for i in range(size):
            if not any_dropped[i]:
                covered += 1
                continue
            cur = list(start)
            used: set[int] = set()
            gone = rep_dropped[i]
            uncovered: list[int] = []
            for m in np.flatnonzero(dropped[i]).tolist():
                for c, plus, minus in candidates[m]:
                    if gone[c] or c in used:
                        continue
                    if (all(cur[g] < hi[g] for g in plus)
                            and all(cur[g] > lo[g] for g in minus)):
                        for g in plus:
                            cur[g] += 1
                        for g in minus:
                            cur[g] -= 1
                        used.add(c)
                        break
                else:
                    uncovered.append(m)
            for m in uncovered:  # seats the lists could not fill are left empty
                for g in groups_of[member_stratum[m]]:
                    cur[g] -= 1
            broken = {g for g in range(n_groups) if not lo[g] <= cur[g] <= hi[g]}
            for m in uncovered:
                broken.update(groups_of[member_stratum[m]])
            if not uncovered and not broken:
                covered += 1
            for g in broken:
                broken_count[g] += 1

    per_value = []
    seats_in = membership @ x
    for g in range(n_groups):
        feature, value, pairs = _describe(system, g)
        in_group = [m for m, s in enumerate(member_stratum) if membership[g, s]]
        if in_group:
            dropout_rate = math.fsum(p_members[in_group].tolist()) / len(in_group)
        else:  # nobody to average over: the rate its own values would give
            given = [rates[pv] for pv in pairs if pv in rates]
            dropout_rate = float(max(given)) if given else rate
        per_value.append({"feature": feature, "value": value, "min": lo[g], "max": hi[g],
                          "dropout_rate": dropout_rate, "members": int(seats_in[g]),
                          "p_broken": int(broken_count[g]) / trials})
    per_value.sort(key=lambda e: (e["feature"].encode("utf-8"), e["value"].encode("utf-8")))
    risky = sorted((e for e in per_value if e["p_broken"] >= threshold),
                   key=lambda e: -e["p_broken"])
    return Simulation(trials, covered / trials, per_value, risky)


def run_simulation(bundle: Path, pool_path: Path, *, seed: str, rate: float,
                   rates_path: Path | None, trials: int, id_column: str | None = None,
                   encoding: str = "utf-8") -> Simulation:
    """`sortition simulate`: the bundle's panel and replacement lists, replayed with dropouts."""
    if not 0 <= rate <= 1:
        raise InputError(f"--dropout-rate {rate}: must be between 0 and 1")
    seed_b = seed_option("--seed", seed)
    check_count("--trials", trials, maximum=MAX_TRIALS)
    previous = read_bundle(bundle)
    if previous.origin.get("replacements") is None:
        raise InputError(f"{bundle}: drawn without replacement lists (draw with "
                         "--replacements R)")
    inputs = bundle_inputs(bundle, pool_path, None, id_column=id_column, encoding=encoding)
    lists = origin_lists(previous, inputs)
    rows = lists.rows if lists is not None else []
    system = quota_system(inputs.strata, inputs.quotas, inputs.size)
    panel = panel_ids(previous.audit)
    wanted = sorted(set(panel) | {r for _, _, r in rows}, key=lambda i: i.encode("utf-8"))
    where = stratum_lookup(inputs.pool.ids, inputs.strata.rows(), wanted)
    missing = [i for i in panel if i not in where]
    if missing:
        raise InputError(f"{pool_path}: panel member(s) not in the pool: "
                         f"{', '.join(missing[:5])}")
    people = [(where[i], i) for i in panel]
    seats = seat_counts(people, system.n_strata)
    known = {f: sorted({k[j] for k in inputs.strata.keys})
             for j, f in enumerate(inputs.strata.features)}
    rates = None if rates_path is None else read_rates(rates_path, known)
    lottery_hash = str((previous.audit.get("lottery") or {}).get("sha256") or "0" * 64)
    return simulate(system, list(inputs.strata.keys), list(inputs.strata.features), seats,
                    people, rows, stratum_of=where.get, rate=rate, rates=rates, trials=trials,
                    seed=seed_b, lottery_hash=lottery_hash)
