"""Every size the tool accepts, bounded in one place.

Each cap sits well above the largest legitimate case (10 000+ strata, 1.3 M-row pools and public
extracts, 13 M-row synthetic pools, panels of a few hundred) and well below what would hang the
tool or exhaust memory. A value outside its bounds is refused at once, before any work, with a
one-line reason (InputError, exit 2), so no option can turn a typo into an hour-long run or a
MemoryError traceback.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Cap:
    """An upper bound and why it is there (quoted in the refusal)."""

    value: int
    why: str


# The largest synthetic pool: synth builds it in memory (a few hundred bytes per row);
# 13 M-row pools pass with room to spare.
MAX_SYNTH_ROWS = Cap(20_000_000, "a synthetic pool is built in memory; 20 million rows already "
                                 "need several GB")
# The panel size: assemblies have tens to hundreds of members.
MAX_PANEL_SIZE = Cap(100_000, "a panel is an assembly of people, not a sample; for a call list "
                              "use `invite --size`")
# The call list is drawn from a contact base, which cannot exceed the largest pool the tool reads.
MAX_CALLS = Cap(20_000_000, "a call list is drawn from a contact base, and no base that large "
                            "fits in memory")
# Replacement lists: each member's list is used from the top; nobody reaches rank 100.
MAX_REPLACEMENTS = Cap(100, "a longer list per member is never used, and every rank costs a "
                            "pass over the panel")
# Transparent lottery tickets: a number drawn with balls or dice picks one of them.
MAX_PANELS = Cap(100_000, "a transparent lottery is drawn with balls or dice; 100,000 tickets "
                          "already need five dice")
# Tickets × panel size: lottery.json lists every ticket's people, so this bounds its size.
MAX_TICKET_SEATS = Cap(10_000_000, "lottery.json lists the people of every ticket, "
                                   "panels × panel size ids in all")
# Legacy runs: each runs the greedy draw once (about 1 ms for a panel of 100).
MAX_LEGACY_RUNS = Cap(100_000, "each run is a full greedy draw; 100,000 runs take minutes and "
                               "estimate the probabilities far more finely than needed")
# Monte Carlo trials of `simulate` (about 50 µs each for a panel of 100).
MAX_TRIALS = Cap(1_000_000, "a million trials give the coverage to ±0.1 percentage point")
# Solver time limit, seconds: the largest pools are solved in minutes.
MAX_TIME_LIMIT = Cap(86_400, "one day; the largest pools are solved in minutes")


def count_problem(option: str, value: object, *, maximum: Cap, minimum: int = 1) -> str | None:
    """Why `value` is not a usable count for `option`, or None (for callers that collect)."""
    if isinstance(value, bool):
        return f"{option} {value!r}: must be a whole number"
    try:
        n = operator.index(value)  # ints and numpy integers; floats and text are refused
    except TypeError:
        return f"{option} {value!r}: must be a whole number"
    if n < minimum:
        return f"{option} {n}: must be at least {minimum:,}"
    if n > maximum.value:
        return f"{option} {n}: at most {maximum.value:,} ({maximum.why})"
    return None


def check_count(option: str, value: object, *, maximum: Cap, minimum: int = 1) -> int:
    """`value` as an int when minimum ≤ value ≤ maximum, else InputError naming the option."""
    problem = count_problem(option, value, maximum=maximum, minimum=minimum)
    if problem:
        raise InputError(problem)
    return operator.index(value)  # type: ignore[call-overload]


def check_seconds(option: str, value: float | None, *,
                  maximum: Cap = MAX_TIME_LIMIT) -> float | None:
    """A time limit in seconds: None (no limit) or a positive finite number up to `maximum`."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"{option} {value!r}: must be a number of seconds")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{option} {value!r}: must be a number of seconds") from None
    if math.isnan(seconds) or seconds <= 0:
        raise InputError(f"{option} {seconds:g}: must be positive")
    if seconds > maximum.value:
        raise InputError(f"{option} {seconds:g}: at most {maximum.value:,} seconds "
                         f"({maximum.why})")
    return seconds


def ticket_seats_problem(tickets: int, panel_size: int) -> str | None:
    """Why `tickets` transparent panels of `panel_size` seats are too many to list, or None."""
    seats = int(tickets) * int(panel_size)
    if seats > MAX_TICKET_SEATS.value:
        return (f"--panels {tickets}: {tickets:,} panels of {panel_size:,} seats are {seats:,} "
                f"places, at most {MAX_TICKET_SEATS.value:,} ({MAX_TICKET_SEATS.why})")
    return None
