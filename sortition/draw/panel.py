"""The draw of the panel: seed → panel number → people, exactly as docs/draw-spec.md says, from
a published lottery (for a transparent lottery, a ticket given by the operator may replace the
seed's number).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..core import drawspec as drawing
from ..core.errors import InputError
from ..lottery.publish import PublishedLottery


@dataclass
class Drawn:
    number: int  # 1-based panel (or ticket) number
    ticket_given: bool
    people: list[tuple[int, str]]  # (stratum, id) in draw order


def seat_counts(people: Sequence[tuple[int, str]] | Sequence[int], n_strata: int) -> np.ndarray:
    """Seats per stratum (int64, length `n_strata`) of people given as (stratum, id) pairs or
    as their strata alone."""
    strata = [p if isinstance(p, int | np.integer) else p[0] for p in people]
    return np.bincount(np.array(strata, dtype=np.int64), minlength=n_strata).astype(np.int64)


def draw_panel(published: PublishedLottery, lottery_hash: str, seed: bytes,
               members: Callable[[int], list[str]], ticket: int | None = None) -> Drawn:
    """Seed → panel number → people, exactly as docs/draw-spec.md says."""
    if published.transparent:
        tickets = published.tickets
        if tickets is None:  # defensive: read back without `attach_tickets`
            raise RuntimeError("internal error: the tickets' people were not attached")
        if ticket is not None:
            if not 1 <= ticket <= len(tickets):
                raise InputError(f"--ticket {ticket}: the lottery has tickets 1 to "
                                 f"{len(tickets)}")
            number, given = ticket, True
        else:
            number, given = drawing.ticket(len(tickets), seed, lottery_hash), False
        ids = tickets[number - 1]
        stratum_of = _stratum_lookup(published, members, ids)
        return Drawn(number, given, [(stratum_of[i], i) for i in ids])
    if ticket is not None:
        raise InputError(f"--ticket {ticket}: only a transparent lottery (--panels M) has "
                         "equally likely numbered panels; this one's panels have unequal "
                         "weights, so the panel must come from the seed")
    index = drawing.panel_index(published.weights, published.denominator, seed, lottery_hash)
    people = drawing.draw_people(published.panels[index].tolist(), members, seed, lottery_hash)
    return Drawn(index + 1, False, people)


def _stratum_lookup(published: PublishedLottery, members: Callable[[int], list[str]],
                    ids: list[str]) -> dict[str, int]:
    wanted = set(ids)
    out: dict[str, int] = {}
    for s in range(len(published.keys)):
        for i in members(s):
            if i in wanted:
                out[i] = s
    return out
