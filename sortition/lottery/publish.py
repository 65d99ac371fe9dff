"""The published lottery: `lottery.json`, exact and canonical, and its hash.

The solver's lottery has floating-point weights. The published one has **integer weights over a
stated denominator, summing exactly to it**, so that the draw needs no floating point and anyone
can recompute every marginal exactly. Its **hash** is the SHA-256 of the exact bytes of
`lottery.json` (which therefore does not contain it); it can be published before the seed exists.

A lottery is either *stratified* — panels as seats per stratum; the people inside each stratum
are chosen at draw time — or *transparent* (`--panels M`): M equally likely tickets, so that a
number 1..M drawn with balls or dice alone determines the panel. The people on each ticket follow
from the pool by a documented assignment (`assign_tickets`); they are not written in
`lottery.json`, which would link everyone's id to their stratum in a public file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np

from ..core.bundleio import count, field, obj, show, strict_json, texts
from ..core.errors import InputError
from ..core.limits import (
    MAX_DENOMINATOR,
    MAX_LOTTERY_CELLS,
    MAX_PANEL_SIZE,
    MAX_PANELS,
    MAX_SYNTH_ROWS,
    count_problem,
    ticket_seats_problem,
)
from ..core.rounding import largest_remainder
from .check import RelaxedQuota, relaxation_json
from .compute import Lottery
from .panels import QuotaSystem

FORMAT = "sortition-lottery"
VERSION = 2  # 2: a fixed `method`; a transparent lottery no longer lists each ticket's ids
DENOMINATOR = 10**12
# The `method` field is fixed: a free text inside the hashed bytes would let an operator who
# knows the seed vary the hash (hence the draw) without changing the lottery. How the solver
# got there is a diagnostic (`probabilities --json`, timings), not part of the commitment.
METHOD = "exact"
# Bounds of the numbers read back from a lottery.json (see read_lottery).
MAX_PEOPLE = MAX_SYNTH_ROWS


@dataclass
class PublishedLottery:
    """A lottery as published in `lottery.json`: its panels (seats per stratum) and weights,
    the inputs' fingerprints, and, for a transparent lottery, its tickets."""

    algorithm: str
    method: str
    panel_size: int
    features: list[str]
    keys: list[tuple[str, ...]]
    counts: list[int]  # people per stratum
    denominator: int
    weights: list[int]  # per panel, sum == denominator
    panels: np.ndarray  # (P, S) int64 seats per stratum
    pool_sha256: str
    quotas_sha256: str
    id_column: str | None
    gap: float
    tickets: list[list[str]] | None = None  # transparent: ids of each ticket (`attach_tickets`)
    max_change: float | None = None  # transparent: largest change of a person's probability
    base_probabilities: list[float] | None = None  # transparent: per stratum, before rounding
    household_seed: str | None = None  # households: the public seed of the pre-draw
    extra: dict = dc_field(default_factory=dict)
    n_tickets: int | None = None  # transparent lottery: M (the weights are tickets, sum M)
    relaxation: list[RelaxedQuota] = dc_field(default_factory=list)  # `--relax`: bounds drawn

    @property
    def relaxed(self) -> bool:
        return bool(self.relaxation)
    gamma: float | None = None  # goldilocks: its parameter γ (None for the other algorithms)

    @property
    def transparent(self) -> bool:
        return self.n_tickets is not None

    def stratum_probabilities(self) -> list[float]:
        """Each stratum's per-person probability, computed exactly from the integer weights.

        (Σ_j w_j x_js) / (D n_s) is a ratio of Python integers, and Python rounds its true
        division correctly, so every implementation gets the same float.
        """
        seats = [0] * len(self.keys)
        for w, row in zip(self.weights, self.panels.tolist(), strict=True):
            for s, x in enumerate(row):
                if x:
                    seats[s] += w * x
        return [seats[s] / (self.denominator * n) if n else 0.0
                for s, n in enumerate(self.counts)]

    def ticket_counts(self) -> dict[str, int]:
        """Transparent lottery: on how many tickets each person appears."""
        out: dict[str, int] = {}
        for t in self.tickets or []:
            for i in t:
                out[i] = out.get(i, 0) + 1
        return out

    def to_bytes(self) -> bytes:
        """The canonical text: fixed key order, one stratum and one panel per line, UTF-8."""
        def j(v: object) -> str:
            return json.dumps(v, ensure_ascii=False)

        probs = self.stratum_probabilities()
        lines = ["{", f' "format": {j(FORMAT)},', f' "version": {VERSION},',
                 f' "algorithm": {j(self.algorithm)},',
                 *([] if self.gamma is None else [f' "gamma": {j(float(self.gamma))},']),
                 f' "method": {j(self.method)},',
                 f' "panel_size": {self.panel_size},',
                 f' "pool": {{"sha256": {j(self.pool_sha256)}, "people": {sum(self.counts)}, '
                 f'"id_column": {j(self.id_column)}'
                 + ("" if self.household_seed is None
                    else f', "household_seed": {j(self.household_seed)}') + "},",
                 f' "quotas": {{"sha256": {j(self.quotas_sha256)}}},',
                 *([f' "relaxation": {j(relaxation_json(self.relaxation))},']
                   if self.relaxation else []),
                 f' "certified_gap": {j(float(self.gap))},',
                 f' "features": {j(self.features)},', ' "strata": [']
        for s, (key, n) in enumerate(zip(self.keys, self.counts, strict=True)):
            comma = "," if s + 1 < len(self.keys) else ""
            lines.append(f'  {{"values": {j(list(key))}, "people": {n}, '
                         f'"probability": {j(probs[s])}}}{comma}')
        lines += [" ],", f' "denominator": {self.denominator},', ' "panels": [']
        for p, (w, row) in enumerate(zip(self.weights, self.panels.tolist(), strict=True)):
            seats = [[s, x] for s, x in enumerate(row) if x]
            comma = "," if p + 1 < len(self.weights) else ""
            lines.append(f'  {{"weight": {w}, "seats": {j(seats)}}}{comma}')
        if self.n_tickets is None:
            lines += [" ]", "}"]
        else:
            lines += [" ],", f' "transparent": {{"tickets": {self.n_tickets}, '
                      f'"max_change": {j(float(self.max_change or 0.0))}, '
                      f'"base_probabilities": {j(self.base_probabilities or [])}}}', "}"]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def read_relaxation(items: object, source: str) -> list[RelaxedQuota]:
    """`relaxation` read back strictly (InputError naming the entry): each entry one quota
    (one or two features and as many values), `from` its bounds, `to` looser ones, in order."""
    if not isinstance(items, list) or not items:
        raise InputError(f"{source}, relaxation: {show(items)} is not a non-empty list (a "
                         "lottery without relaxed bounds has no relaxation key)")
    out: list[RelaxedQuota] = []
    for k, e in enumerate(items):
        where = f"{source}, relaxation[{k}]"
        if not isinstance(e, dict) or set(e) != {"features", "values", "from", "to"}:
            raise InputError(f"{where}: expected an object with features, values, from and to")
        names = texts(e, "features", where, None)
        values = texts(e, "values", where, None)
        pairs = []
        for key in ("from", "to"):
            v = e[key]
            if (not isinstance(v, list) or len(v) != 2
                    or not all(type(x) is int and 0 <= x <= MAX_PANEL_SIZE.value for x in v)
                    or v[0] > v[1]):
                raise InputError(f"{where}, {key}: {show(v)} is not [min, max] with 0 ≤ min ≤ "
                                 "max")
            pairs.append(v)
        (lo, hi), (new_lo, new_hi) = pairs
        if not 1 <= len(names) == len(values) <= 2:
            raise InputError(f"{where}: {len(names)} feature(s) for {len(values)} value(s)")
        if new_lo > lo or new_hi < hi or (new_lo, new_hi) == (lo, hi):
            raise InputError(f"{where}: to {show([new_lo, new_hi])} does not loosen from "
                             f"{show([lo, hi])}")
        out.append(RelaxedQuota(tuple(names), tuple(values), lo, hi, new_lo, new_hi))
    if relaxation_json(out) != items:
        raise InputError(f"{source}, relaxation: entries out of order or repeated (one per "
                         "quota, one-way quotas then cross quotas, by feature and value)")
    if len({(r.features, r.values) for r in out}) != len(out):
        raise InputError(f"{source}, relaxation: a quota is listed twice")
    return out


def integer_weights(weights: np.ndarray, denominator: int = DENOMINATOR) -> list[int]:
    """Round probabilities to integers summing exactly to `denominator` (largest remainder;
    ties to the earlier panel)."""
    w = np.maximum(np.asarray(weights, dtype=float), 0.0)
    w = w / w.sum()
    return largest_remainder([float(x) * denominator for x in w.tolist()], 1, denominator)


def publish(lottery: Lottery, *, pool_sha256: str, quotas_sha256: str,
            id_column: str | None, relaxation: list[RelaxedQuota] | None = None
            ) -> PublishedLottery:
    """The exact published form of a solver's lottery (panels of weight 0 are dropped);
    `relaxation`: the relaxed bounds it was computed for (`--relax`), recorded in it."""
    ints = integer_weights(lottery.weights)
    keep = [i for i, w in enumerate(ints) if w > 0]
    published = PublishedLottery(
        lottery.algorithm, METHOD, int(lottery.size), list(lottery.features),
        [tuple(k) for k in lottery.keys], [int(n) for n in lottery.counts.tolist()],
        DENOMINATOR, [ints[i] for i in keep], lottery.panels[keep].astype(np.int64),
        pool_sha256, quotas_sha256, id_column, 0.0)
    published.relaxation = list(relaxation or [])
    if lottery.algorithm == "goldilocks":
        published.gamma = float(lottery.details.get("gamma", 1.0))
    target = np.asarray(lottery.target, dtype=float)
    exact = np.array(published.stratum_probabilities())
    published.gap = max(float(lottery.gap), float(np.maximum(target - exact, 0.0).max()))
    return published


def transparent_problem(tickets: int, panel_size: int, people: int) -> str | None:
    """Why `tickets` equally likely panels cannot serve this pool, or None."""
    problem = (count_problem("--panels", tickets, maximum=MAX_PANELS)
               or ticket_seats_problem(tickets, panel_size))
    if problem:
        return problem
    if tickets * panel_size < people:
        return (f"--panels {tickets}: {tickets} panels of {panel_size} seats hold "
                f"{tickets * panel_size:,} places for {people:,} people, so most of the pool "
                "would have no chance at all; a transparent lottery needs panels × panel size "
                "≥ pool size (use it on a respondent pool, not a contact base)")
    return None


def make_transparent(published: PublishedLottery, members: list[list[str]], tickets: int
                     ) -> PublishedLottery:
    """Round the lottery to `tickets` equally likely panels of people.

    Each panel gets a whole number of tickets (largest remainder of tickets × weight). Inside a
    stratum, its people (sorted by id) fill the seats of successive tickets in turn, cyclically,
    so each appears on ⌊T/n⌋ or ⌈T/n⌉ tickets (T: the stratum's seats over all tickets) and never
    twice on one ticket. A person's probability becomes (tickets holding them) / M.
    """
    m = int(tickets)
    problem = transparent_problem(m, published.panel_size, sum(published.counts))
    if problem:
        raise InputError(problem)
    quota = largest_remainder([w * m for w in published.weights], published.denominator, m)
    keep = [i for i, q in enumerate(quota) if q > 0]
    panels = published.panels[keep]
    weights = [quota[i] for i in keep]
    result = PublishedLottery(
        published.algorithm, published.method, published.panel_size, published.features,
        published.keys, published.counts, m, weights, panels, published.pool_sha256,
        published.quotas_sha256, published.id_column, published.gap,
        assign_tickets(panels, weights, members), 0.0, n_tickets=m)
    result.household_seed = published.household_seed
    result.relaxation = list(published.relaxation)
    result.gamma = published.gamma
    before = published.stratum_probabilities()
    result.base_probabilities = before
    result.max_change = max_probability_change(before, members, result.ticket_counts(), m)
    return result


def attach_tickets(published: PublishedLottery, members: list[list[str]]) -> None:
    """Give a transparent lottery read back its tickets' people, from the pool's strata
    (`members[s]`: stratum s's ids sorted by UTF-8 bytes); nothing for a stratified one."""
    if published.transparent:
        published.tickets = assign_tickets(published.panels, published.weights, members)


def assign_tickets(panels: np.ndarray, copies: list[int], members: list[list[str]]
                   ) -> list[list[str]]:
    """The people on each ticket: panel p fills `copies[p]` successive tickets; inside a
    stratum its people (sorted by id) take the seats of successive tickets in turn, cyclically.
    """
    pointer = [0] * panels.shape[1]
    out: list[list[str]] = []
    for p, n_copies in enumerate(copies):
        row = panels[p].tolist()
        for _ in range(n_copies):
            ids: list[str] = []
            for s, x in enumerate(row):
                group = members[s]
                for k in range(x):
                    ids.append(group[(pointer[s] + k) % len(group)])
                pointer[s] = (pointer[s] + x) % max(1, len(group))
            out.append(ids)
    return out


def max_probability_change(base: list[float], members: list[list[str]],
                           appear: dict[str, int], tickets: int) -> float:
    """Largest |tickets holding a person / M − the person's probability before rounding|."""
    worst = 0.0
    for s, group in enumerate(members):
        for i in group:
            worst = max(worst, abs(appear.get(i, 0) / tickets - base[s]))
    return worst


def read_lottery(data: bytes, source: str) -> PublishedLottery:
    """Parse and check the structure of a `lottery.json`; InputError names what is wrong.

    The file is hostile input (it comes with a bundle): strict JSON, every field's type checked,
    and the size of the panels × strata table checked before it is allocated.
    """
    doc = strict_json(data, source)

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise InputError(f"{source}: {what}")

    need(isinstance(doc, dict) and doc.get("format") == FORMAT,
         f"not a lottery file (format should be {FORMAT!r})")
    need(doc.get("version") == VERSION, f"unsupported version {show(doc.get('version'))}")
    features = texts(doc, "features", source, None)
    strata = field(doc, "strata", list, source)
    keys: list[tuple[str, ...]] = []
    counts: list[int] = []
    stated: list[float] = []
    for k, s in enumerate(strata):
        where = f"{source}, strata[{k}]"
        values = texts(s, "values", where, None)
        need(len(values) == len(features), f"strata[{k}]: {len(values)} values for "
                                           f"{len(features)} features")
        keys.append(tuple(values))
        counts.append(count(s, "people", where, MAX_PEOPLE, minimum=0))
        stated.append(float(field(s, "probability", float, where)))
    size = count(doc, "panel_size", source, MAX_PANEL_SIZE)
    d = count(doc, "denominator", source, MAX_DENOMINATOR, minimum=1)
    rows = field(doc, "panels", list, source)
    cells = len(rows) * len(keys)
    need(cells <= MAX_LOTTERY_CELLS.value,
         f"{len(rows):,} panels × {len(keys):,} strata are {cells:,} cells, at most "
         f"{MAX_LOTTERY_CELLS.value:,} ({MAX_LOTTERY_CELLS.why})")
    weights = [count(p, "weight", f"{source}, panels[{r}]", MAX_DENOMINATOR, minimum=0)
               for r, p in enumerate(rows)]
    panels = np.zeros((len(rows), len(keys)), dtype=np.int64)
    for r, p in enumerate(rows):
        for pair in field(p, "seats", list, f"{source}, panels[{r}]"):
            need(isinstance(pair, list) and len(pair) == 2
                 and all(type(v) is int for v in pair),
                 f"panels[{r}].seats: {show(pair)} is not a pair [stratum, seats]")
            s, x = pair
            need(0 <= s < len(keys), f"panel {r + 1}: stratum {s} out of range")
            need(0 <= x <= size, f"panel {r + 1}: {x} seats in stratum {s}, the panel has "
                                 f"{size}")
            panels[r, s] = x
    pool = obj(doc, "pool", source)
    id_column = field(pool, "id_column", (str, type(None)), f"{source}, pool", optional=True)
    seed = field(pool, "household_seed", (str, type(None)), f"{source}, pool", optional=True)
    transparent = obj(doc, "transparent", source, optional=True) if "transparent" in doc \
        else None
    tickets = None
    if transparent is not None:
        need("panels" not in transparent,
             "transparent.panels: ticket lists of ids are no longer published (they linked "
             "every id to its stratum); this lottery was written by an older version")
    gap = field(doc, "certified_gap", float, source, optional=True)
    pub = PublishedLottery(
        field(doc, "algorithm", str, source), field(doc, "method", str, source, optional=True)
        or "", size, list(features), keys, counts, d, weights, panels,
        field(doc, "pool.sha256", str, source), field(doc, "quotas.sha256", str, source),
        id_column, float(gap or 0.0), tickets,
        None if transparent is None else float(
            field(transparent, "max_change", float, f"{source}, transparent", optional=True)
            or 0.0))
    pub.extra["stated_probabilities"] = stated
    pub.household_seed = seed
    if "relaxation" in doc:
        pub.relaxation = read_relaxation(doc["relaxation"], source)
    if "gamma" in doc or pub.algorithm == "goldilocks":
        gamma = field(doc, "gamma", (int, float), source)
        need(math.isfinite(gamma) and gamma > 0, f"gamma {show(gamma)} is not a number > 0")
        need(pub.algorithm == "goldilocks",
             f"gamma is Goldilocks' parameter; the algorithm is {pub.algorithm!r}")
        pub.gamma = float(gamma)
    if transparent is not None:
        where = f"{source}, transparent"
        base = field(transparent, "base_probabilities", list, where)
        for k, x in enumerate(base):
            need(isinstance(x, int | float) and not isinstance(x, bool),
                 f"transparent.base_probabilities[{k}]: {show(x)} is not a number")
        pub.base_probabilities = [float(x) for x in base]
        pub.n_tickets = count(transparent, "tickets", where, MAX_PANELS)
        need(sum(weights) == pub.n_tickets and d == pub.n_tickets,
             f"transparent.tickets: {pub.n_tickets} stated, the panel weights sum to "
             f"{sum(weights)} over a denominator of {d}")
    return pub


def published_objective(pub: PublishedLottery) -> dict | None:
    """The objective of the lottery's algorithm, from lottery.json alone (so anyone can
    recompute it): `name`, `value`, and `bound` — the certified best value, from
    `certified_gap`. None for LEXIMIN, whose objective is the sorted probabilities themselves
    (their smallest is the `min` already recorded)."""
    p = np.array(pub.stratum_probabilities())
    counts = np.array(pub.counts, dtype=float)
    held = counts > 0
    if pub.algorithm == "leximin" or not held.any():
        return None
    if pub.algorithm == "goldilocks":
        where = held & (p > 0)
        avg = pub.panel_size / float(counts.sum())
        value = float(p[where].max() / avg + (pub.gamma or 1.0) * avg / p[where].min())
        return {"name": "goldilocks", "gamma": pub.gamma, "value": value,
                "bound": value - pub.gap}
    if pub.algorithm == "diversimax":
        distinct = sorted({int((row > 0).sum()) for row in pub.panels})
        return {"name": "distinct strata on the panel", "value": distinct[0],
                "bound": distinct[-1]}
    if pub.algorithm == "nash":
        where = held & (p > 0)
        return {"name": "nash welfare (sum of the log-probabilities)",
                "value": float(counts[where] @ np.log(p[where])), "bound": None}
    low = float(p[held].min())
    return {"name": "smallest probability", "value": low, "bound": low + pub.gap}


def lottery_problems(pub: PublishedLottery, system: QuotaSystem) -> list[str]:
    """What is wrong inside a published lottery, whoever wrote it (empty: nothing).

    `system`: the quotas over the lottery's own strata (their sizes included). One place for
    what `verify` checks of every lottery it meets, and `replace` of a committed one.
    """
    out: list[str] = []
    if pub.method != METHOD:
        out.append(f"method {pub.method!r} is not {METHOD!r} (a fixed value: no free text in "
                   "the hashed bytes)")
    if sum(pub.weights) != pub.denominator:
        out.append(f"weights sum to {sum(pub.weights)}, not to the denominator "
                   f"{pub.denominator}")
    bad = [p + 1 for p in range(len(pub.weights)) if not system.satisfied(pub.panels[p])]
    if bad:
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        out.append(f"panel(s) {', '.join(map(str, bad[:10]))}{more} break the quotas or the "
                   "stratum sizes")
    exact = pub.stratum_probabilities()
    stated = pub.extra.get("stated_probabilities", [])
    off = [s for s, (a, b) in enumerate(zip(exact, stated, strict=True)) if a != b]
    for s in off[:10]:
        out.append(f"stratum {', '.join(pub.keys[s])}: probability {stated[s]!r} stated, "
                   f"{exact[s]!r} from the weights")
    if len(off) > 10:
        out.append(f"… and {len(off) - 10} more stated probabilities")
    total = math.fsum(p * n for p, n in zip(exact, pub.counts, strict=True))
    if abs(total - pub.panel_size) > 1e-6:
        out.append(f"probabilities sum to {total}, not to the panel size {pub.panel_size}")
    return out
