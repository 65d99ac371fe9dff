"""Replacement lists: for every panel member, R ordered people who can take the seat.

A member who declines must be replaced at once, without a new draw and without breaking a quota,
and the choice of replacement must be as public as the draw itself. So the lists are drawn from
the public seed (stream `replacements`, docs/draw-spec.md section 12) by a fixed procedure that
anyone can redo, and every listed swap is checked to keep the panel within all its quotas.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core import drawspec as drawing
from ..core.errors import InputError
from ..core.fileio import csv_field, restore
from ..core.limits import MAX_REPLACEMENTS, check_count
from ..inputs.load import Inputs
from ..inputs.rates import DropoutRates, rates_from_rows, stratum_rates
from ..lottery.panels import QuotaSystem, quota_system
from .panel import Drawn, seat_counts

HEADER = ("member_id", "rank", "replacement_id")


@dataclass
class ReplacementLists:
    """The lists, as the rows of `replacements.csv`, and who got fewer than R."""

    rows: list[tuple[str, int, str]]  # (member_id, rank from 1, replacement_id)
    shortfall: dict[str, int]  # member_id → how many fewer than R were found, in draw order
    strata: dict[str, int] = field(default_factory=dict)  # replacement_id → stratum index

    def csv_bytes(self) -> bytes:
        """`member_id,rank,replacement_id`, LF line ends, UTF-8, quoting only where needed."""
        lines = [",".join(HEADER)]
        for member, rank, replacement in self.rows:
            lines.append(f"{csv_field(member)},{rank},{csv_field(replacement)}")
        return ("\n".join(lines) + "\n").encode("utf-8")


def read_replacements_csv(data: bytes, source: str) -> list[tuple[str, int, str]]:
    """Parse `replacements.csv` (as written by `csv_bytes`, so its ids go back through the cell
    rule); InputError names the bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not UTF-8 text ({e})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != HEADER:
        raise InputError(f"{source}: the first line must be {','.join(HEADER)}")
    rows: list[tuple[str, int, str]] = []
    for fields in reader:
        where = f"{source}, line {reader.line_num}"
        if len(fields) != 3:
            raise InputError(f"{where}: expected 3 fields, found {len(fields)}")
        member, rank, replacement = fields
        if not rank.isascii() or not rank.isdigit():
            raise InputError(f"{where}: rank {rank!r} is not a whole number")
        rows.append((restore(member), int(rank), restore(replacement)))
    return rows


def stratum_lookup(ids: pa.Array | Sequence[str], row_stratum: np.ndarray,
                   wanted: Sequence[str]) -> dict[str, int]:
    """The stratum of each wanted id (ids absent from the pool are left out), in one pass."""
    pool_ids = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(list(ids),
                                                                                 pa.string())
    wanted_list = list(dict.fromkeys(wanted))
    rows = pc.index_in(pa.array(wanted_list, type=pa.string()), value_set=pool_ids).to_pylist()
    return {i: int(row_stratum[r]) for i, r in zip(wanted_list, rows, strict=True)
            if r is not None}


class _Order:
    """One stratum's people off the panel, in replacement order, shuffled only as far as needed.

    `a` is a Fisher–Yates shuffle in progress: a[:made] is the order so far. `pending` holds the
    people of that prefix who are neither listed nor excluded for good, in order; they were
    passed over only because of a household already on some member's list.
    """

    def __init__(self, ids: list[str]) -> None:
        self.a = ids
        self.made = 0
        self.pending: list[str] = []

    def first(self, stream: drawing.Stream, banned: Callable[[str], bool],
              fits: Callable[[str], bool]) -> str | None:
        """The first person of the order who is not yet listed, not banned and fits."""
        for k, p in enumerate(self.pending):
            if fits(p):
                del self.pending[k]
                return p
        a = self.a
        while self.made < len(a):
            i = self.made
            j = i + stream.below(len(a) - i)
            a[i], a[j] = a[j], a[i]
            self.made += 1
            p = a[i]
            if banned(p):
                continue
            if fits(p):
                return p
            self.pending.append(p)
        return None


def validate_panel(system: QuotaSystem, panel_seats: np.ndarray,
                   people: list[tuple[int, str]]) -> np.ndarray:
    """The seat vector, once it is known to match the people and to meet every quota: both
    lists and simulation reason from a valid panel (ValueError otherwise)."""
    x = np.asarray(panel_seats, dtype=np.int64)
    if x.shape != system.counts.shape:
        raise ValueError(f"{x.shape[0] if x.ndim else 0} seat counts for "
                         f"{system.n_strata} strata")
    seats = seat_counts(people, system.n_strata)
    if seats.shape != x.shape or (seats != x).any():
        raise ValueError("the panel's people do not match its seats per stratum")
    if len({i for _, i in people}) != len(people):
        raise ValueError("a person appears twice on the panel")
    if not system.satisfied(x):
        raise ValueError("the panel does not satisfy the quotas, so no swap can keep them")
    return x


def compatible_strata(system: QuotaSystem, x: np.ndarray, s: int,
                      membership: np.ndarray | None = None) -> np.ndarray:
    """Boolean (S,): strata t ≠ s such that seats x − e_s + e_t satisfy every quota."""
    a = system.membership() if membership is None else membership
    base = a @ x - a[:, s]
    sums = base[:, None] + a  # (G, S): group sums after swapping s for each t
    ok = ((sums >= system.lo[:, None]) & (sums <= system.hi[:, None])).all(axis=0)
    ok &= x + 1 <= system.counts
    ok[s] = False
    return ok


def replacement_lists(system: QuotaSystem, panel_seats: np.ndarray,
                      people: list[tuple[int, str]], members: Callable[[int], list[str]],
                      r: int, seed: bytes, lottery_hash: str,
                      household_of: Callable[[str], str | None] | None = None,
                      rates: Sequence[Fraction] | None = None) -> ReplacementLists:
    """R ordered replacements per member, by the procedure of docs/draw-spec.md section 12.

    Rounds by rank (rank 1 for every member in draw order, then rank 2…), so that the first
    members drawn do not use up a small stratum. Each member takes the first acceptable person of
    its own stratum's order; failing that, a compatible stratum chosen with probability in
    proportion to its unlisted people, then that stratum's first acceptable person. A member who
    finds nobody in a round gets nothing later either, and its shortfall is recorded.

    With `rates` (each stratum's dropout rate, exact), the lists are **dropout-aware**
    (section 12.5): the stratum is the one whose candidate is least likely to fail — to drop
    out, or to find the quota room its swap needs already used by the swaps listed before —
    counted in exact arithmetic; ties go to the member's own stratum, then to the fewest quota
    counts changed, then to a draw in proportion to unlisted people.
    """
    if isinstance(r, bool) or not isinstance(r, int | np.integer) or r < 0:
        raise ValueError(f"the number of replacements must be a non-negative integer, got {r!r}")
    r = int(r)
    x = validate_panel(system, panel_seats, people)
    stream = drawing.Stream(seed, lottery_hash, drawing.REPLACEMENTS)
    on_panel = {i for _, i in people}
    households: dict[str, str | None] = {}

    def household(p: str) -> str | None:
        if household_of is None:
            return None
        if p not in households:
            households[p] = household_of(p)
        return households[p]

    panel_households = {h for _, i in people if (h := household(i)) is not None}
    membership = system.membership()
    off_panel = system.counts - x  # people of each stratum who are not on the panel
    listed = np.zeros(system.n_strata, dtype=np.int64)
    orders: dict[int, _Order] = {}
    compatible: dict[int, np.ndarray] = {}
    lists: list[list[str]] = [[] for _ in people]
    mine: list[set[str]] = [set() for _ in people]  # households on each member's list
    strata_of: dict[str, int] = {}

    def order(t: int) -> _Order:
        if t not in orders:
            ids = [i for i in members(t) if i not in on_panel]
            ids.sort(key=lambda i: i.encode("utf-8"))
            if any(ids[k] == ids[k + 1] for k in range(len(ids) - 1)):
                raise ValueError(f"duplicate member ids in stratum {t}")
            if len(ids) != off_panel[t]:
                raise ValueError(f"stratum {t}: {len(ids)} people off the panel, the quota "
                                 f"system counts {int(off_panel[t])}")
            orders[t] = _Order(ids)
        return orders[t]

    def banned(p: str) -> bool:
        return household(p) in panel_households

    aware = None if rates is None else _DropoutAware(system, x, membership, rates)

    def find(m: int, s: int) -> tuple[str, int] | None:
        def fits(p: str) -> bool:
            h = household(p)
            return h is None or h not in mine[m]

        if aware is not None:
            if s not in compatible:
                compatible[s] = compatible_strata(system, x, s, membership)
            return aware.find(s, compatible[s], off_panel - listed, need, stream,
                              lambda t: order(t).first(stream, banned, fits))
        p = order(s).first(stream, banned, fits)
        if p is not None:
            return p, s
        if s not in compatible:
            compatible[s] = compatible_strata(system, x, s, membership)
        left = compatible[s].copy()
        while True:
            weights = np.where(left, off_panel - listed, 0)
            total = int(weights.sum())
            if total <= 0:
                return None
            pick = stream.below(total)
            t = int(np.searchsorted(np.cumsum(weights), pick, side="right"))
            p = order(t).first(stream, banned, fits)
            if p is not None:
                return p, t
            left[t] = False

    active = [True] * len(people)
    # replacements the members of each stratum still need (dropout-aware lists leave them to
    # them: another member takes a person of stratum t only from its surplus)
    need = np.bincount([s for s, _ in people], minlength=system.n_strata) * r
    for rnd in range(r):
        for m, (s, _member) in enumerate(people):
            if not active[m]:
                continue
            found = find(m, int(s))
            if found is None:
                active[m] = False
                need[s] -= r - len(lists[m])
                continue
            need[s] -= 1
            p, t = found
            if aware is not None:
                aware.listed(int(s), t, r - 1 - rnd)
            lists[m].append(p)
            listed[t] += 1
            strata_of[p] = t
            h = household(p)
            if h is not None:
                mine[m].add(h)
    if aware is not None:  # the member's own stratum first, then the others, latest first
        lists = [[p for p in got if strata_of[p] == s] + [p for p in got if strata_of[p] != s][::-1]
                 for (s, _), got in zip(people, lists, strict=True)]
    rows = [(member, rank, p) for (_, member), got in zip(people, lists, strict=True)
            for rank, p in enumerate(got, start=1)]
    shortfall = {member: r - len(got) for (_, member), got in zip(people, lists, strict=True)
                 if len(got) < r}
    return ReplacementLists(rows, shortfall, strata_of)


TAIL_CAP = 8  # the bound looks at most this many swaps ahead: exact numbers stay small


def _tail(load: Fraction, room: int) -> Fraction:
    """An upper bound on the chance that `room` or more listed swaps use a room, when each is
    used independently and their chances add up to `load`: the expected number of sets of
    k = min(room, 8) swaps all used, at most load**k / k! (1 and more: no bound)."""
    k = min(room, TAIL_CAP)
    return load ** k / math.factorial(k)


class _DropoutAware:
    """The stratum choice of the dropout-aware lists (docs/draw-spec.md section 12.5).

    For a member of stratum s, a candidate of stratum t fails when it drops out (rate p_t) or,
    for t ≠ s, when the quota room its swap needs is used up. `lo`/`hi` hold, per quota group,
    the expected number of listed swaps that will use the room it may lose / gain; the chance
    that `room` or more of them are used is at most load**room / room!, added over the groups
    the swap moves, and counted twice: once for the candidate, once for the swaps listed before
    it that it may now block. Everything is a Fraction or an integer: the same lists on every
    machine.
    """

    def __init__(self, system: QuotaSystem, x: np.ndarray, membership: np.ndarray,
                 rates: Sequence[Fraction]) -> None:
        if len(rates) != system.n_strata:
            raise ValueError(f"{len(rates)} dropout rates for {system.n_strata} strata")
        self.p = [Fraction(v) for v in rates]
        if any(not 0 <= v <= 1 for v in self.p):
            raise ValueError("a dropout rate is not between 0 and 1")
        self.groups = [frozenset(np.flatnonzero(membership[:, t]).tolist())
                       for t in range(system.n_strata)]
        size = membership @ x
        self.room_lo = (size - system.lo).tolist()  # seats each group may lose
        self.room_hi = (system.hi - size).tolist()  # seats each group may gain
        self.lo: dict[int, Fraction] = {}
        self.hi: dict[int, Fraction] = {}

    def key(self, s: int, t: int, share_lo: dict[int, Fraction],
            share_hi: dict[int, Fraction]) -> tuple[Fraction, int]:
        """(q_t, d_t): the chance the candidate fails, and how many quota counts its swap
        changes."""
        if t == s:
            return self.p[s], 0
        gs, gt = self.groups[s], self.groups[t]
        lose, gain = gs - gt, gt - gs
        b = sum((share_lo[g] for g in lose if g in share_lo), Fraction(0)) + sum(
            (share_hi[g] for g in gain if g in share_hi), Fraction(0))
        p = self.p[t]  # 2 b: its own chance of being blocked, and as much for those it blocks
        return p + (1 - p) * min(Fraction(1), 2 * b), len(lose) + len(gain)

    def find(self, s: int, compatible: np.ndarray, unlisted: np.ndarray, need: np.ndarray,
             stream: drawing.Stream, first: Callable[[int], str | None]
             ) -> tuple[str, int] | None:
        """The member's next replacement and its stratum: among s (if it has unlisted people)
        and the strata compatible with s that have more unlisted people than their own members
        still need (`need`), the smallest key; ties to s, else drawn in proportion to that
        surplus. A stratum whose order yields nobody is set aside and the choice made again."""
        left = unlisted.tolist()
        surplus = (unlisted - need).tolist()
        c = [t for t in range(len(left))
             if (left[t] > 0 if t == s else compatible[t] and surplus[t] > 0)]
        share_lo = {g: _tail(v, self.room_lo[g]) for g, v in self.lo.items()
                    if g in self.groups[s]}
        share_hi = {g: _tail(v, self.room_hi[g]) for g, v in self.hi.items()}
        keys = {t: self.key(s, t, share_lo, share_hi) for t in c}
        while c:
            best = min(keys[t] for t in c)
            tied = [t for t in c if keys[t] == best]
            if s in tied:
                t = s
            else:
                weights = [surplus[u] for u in tied]
                pick = stream.below(sum(weights))
                k, acc = 0, weights[0]
                while acc <= pick:
                    k += 1
                    acc += weights[k]
                t = tied[k]
            p = first(t)
            if p is not None:
                return p, t
            c.remove(t)
        return None

    def listed(self, s: int, t: int, behind: int) -> None:
        """A candidate of stratum t listed for a member of s, counted as used with chance
        p_s ** (behind + 1) · (1 − p_t) — as if `behind` people of the member's own rate came
        before it on the list — added to the load of every group its swap moves."""
        if t == s:
            return
        use = self.p[s] ** (behind + 1) * (1 - self.p[t])
        gs, gt = self.groups[s], self.groups[t]
        for g in gs - gt:
            self.lo[g] = self.lo.get(g, Fraction(0)) + use
        for g in gt - gs:
            self.hi[g] = self.hi.get(g, Fraction(0)) + use


def check_replacements(system: QuotaSystem, panel_seats: np.ndarray,
                       people: list[tuple[int, str]], rows: list[tuple[str, int, str]], *,
                       stratum_of: Callable[[str], int | None],
                       household_of: Callable[[str], str | None] | None = None,
                       r: int | None = None) -> list[str]:
    """Every way the lists break their promise, one readable line each ([] when all is well).

    Checked: each swap keeps every quota (naming the quota broken), nobody listed twice, nobody
    from the panel, ranks 1..k per member (at most r), and, given households, no replacement
    from a household on the panel and no two in one member's list from the same household.
    """
    out: list[str] = []
    x = np.asarray(panel_seats, dtype=np.int64)
    seats = seat_counts(people, system.n_strata)
    if seats.shape != x.shape or (seats != x).any():
        out.append("the panel's people do not match its seats per stratum")
    member_stratum = {i: int(s) for s, i in people}
    panel_households: dict[str, str] = {}
    if household_of is not None:
        for _, i in people:
            h = household_of(i)
            if h is not None:
                panel_households.setdefault(h, i)
    membership = system.membership()
    sums = membership @ x
    first_seen: dict[str, tuple[str, int]] = {}
    ranks: dict[str, list[int]] = {}
    member_households: dict[tuple[str, str], str] = {}
    for member, rank, rep in rows:
        what = f"{rep!r} (rank {rank} for {member!r})"
        ranks.setdefault(member, []).append(rank)
        if member not in member_stratum:
            out.append(f"{what}: {member!r} is not on the panel")
        if rep in first_seen:
            m0, k0 = first_seen[rep]
            out.append(f"{what}: already listed (rank {k0} for {m0!r})")
        else:
            first_seen[rep] = (member, rank)
        if rep in member_stratum:
            out.append(f"{what}: is on the panel")
        t = stratum_of(rep)
        if t is None:
            out.append(f"{what}: is not in the pool")
        elif member in member_stratum:
            s = member_stratum[member]
            after = sums - membership[:, s] + membership[:, t]
            broken = [f"{system.labels[g]} ({int(after[g])} seats, min {int(system.lo[g])}, "
                      f"max {int(system.hi[g])})"
                      for g in range(len(system.groups))
                      if not system.lo[g] <= after[g] <= system.hi[g]]
            if broken:
                out.append(f"{what}: swapping {member!r} for {rep!r} breaks "
                           + "; ".join(broken))
            elif t != s and x[t] + 1 > system.counts[t]:
                out.append(f"{what}: swapping {member!r} for {rep!r} gives stratum {t} more "
                           "seats than people")
        if household_of is not None:
            h = household_of(rep)
            if h is not None and h in panel_households:
                out.append(f"{what}: shares household {h!r} with panel member "
                           f"{panel_households[h]!r}")
            if h is not None:
                other = member_households.setdefault((member, h), rep)
                if other != rep:
                    out.append(f"{what}: same household {h!r} as {other!r} on the list of "
                               f"{member!r}")
    for member, got in ranks.items():
        expected = list(range(1, len(got) + 1))
        if sorted(got) != expected:
            out.append(f"{member!r}: ranks {', '.join(map(str, got))} (should be 1 to "
                       f"{len(got)}, each once)")
        if r is not None and len(got) > r:
            out.append(f"{member!r}: {len(got)} replacements listed, more than {r}")
    return out


def lists_of_draw(audit: dict, lottery_hash: str, inputs: Inputs):
    """A draw bundle's replacement lists, re-derived from its seed, lottery hash and panel and
    the pool (`None` without lists): public material plus the pool give them, so neither
    `replace`, `simulate` nor `verify` needs the list file."""
    record = audit.get("replacements")
    if record is None:
        return None
    ids = [str(i) for i in audit["draw"]["ids"]]
    where = stratum_lookup(inputs.pool.ids, inputs.strata.rows(), ids)
    missing = [i for i in ids if i not in where]
    if missing:
        raise InputError(f"{inputs.whole.path}: panel member(s) not in the pool: "
                         f"{', '.join(missing[:5])}")
    # The lists follow from the seed, the lottery hash and the people drawn (spec section 12),
    # not from the panel's number: a bundle whose number is missing still gives them.
    drawn = Drawn(0, False, [(where[i], i) for i in ids])
    return draw_replacements(inputs, drawn, int(record["per_member"]),
                             str(audit["seed"]).encode("utf-8"), lottery_hash,
                             recorded_rates(record, inputs))


def draw_replacements(inputs: Inputs, drawn: Drawn, r: int, seed: bytes, lottery_hash: str,
                      rates: DropoutRates | None = None):
    """The replacement lists of the drawn panel (see `replacements` and docs/draw-spec.md);
    dropout-aware with `rates` (section 12.5)."""
    r = check_count("--replacements", r, maximum=MAX_REPLACEMENTS)
    system = quota_system(inputs.strata, inputs.quotas, inputs.size)
    seats = seat_counts(drawn.people, system.n_strata)
    per_stratum = None if rates is None else stratum_rates(
        inputs.strata.keys, inputs.strata.features, rates)
    return replacement_lists(system, seats, drawn.people, inputs.members, r, seed,
                             lottery_hash, rates=per_stratum)


def known_values(inputs: Inputs) -> dict[str, list[str]]:
    """The quota features and the values the pool has of each: what a rate may name."""
    return {f: sorted({k[j] for k in inputs.strata.keys})
            for j, f in enumerate(inputs.strata.features)}


RATES_FIELD = "replacements.dropout_rates"


def rates_record(rates: DropoutRates) -> dict:
    """`audit.json`'s `replacements.dropout_rates`: the rates file's SHA-256 and the rates as
    read (feature, value, rate as written) — public figures, not personal data."""
    return {"sha256": rates.sha256, "rates": [list(row) for row in rates.rows]}


def recorded_rates(record: dict, inputs: Inputs) -> DropoutRates | None:
    """The dropout rates a draw's `replacements` block records (None: the lists of section
    12.2), read as hostile input: InputError naming the field."""
    block = record.get("dropout_rates")
    if block is None:
        return None
    where = f"audit.json, {RATES_FIELD}"
    if not isinstance(block, dict) or not isinstance(block.get("sha256"), str) \
            or not isinstance(block.get("rates"), list):
        raise InputError(f"{where}: expected an object with sha256 (text) and rates (a list)")
    rows = []
    for k, row in enumerate(block["rates"]):
        if not isinstance(row, list) or len(row) != 3 or \
                not all(isinstance(v, str) for v in row):
            raise InputError(f"{where}.rates[{k}]: expected [feature, value, rate] as 3 texts")
        rows.append((f"{where}.rates[{k}]", *row))
    found = rates_from_rows(rows, known_values(inputs), source=where)
    found.sha256 = block["sha256"]
    return found


def list_dict(lists) -> dict[str, list[str]]:
    """Replacement lists (`replacements.ReplacementLists`, or None) as member → ids by rank."""
    out: dict[str, list[str]] = {}
    for member, _, candidate in (lists.rows if lists is not None else []):
        out.setdefault(member, []).append(candidate)
    return out
