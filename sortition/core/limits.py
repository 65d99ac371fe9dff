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
from typing import SupportsIndex, cast

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


# --- Reading a spreadsheet (sortition/core/xlsx.py). A sheet is read whole into memory (python-
# calamine holds every cell, then each becomes a Python str), unlike CSV and Parquet, which Arrow
# streams. Excel itself stops at 1,048,576 rows; a 1 M-row pool of ten columns is ~60 MB zipped.
MAX_XLSX_BYTES = Cap(256 << 20, "a spreadsheet is read whole into memory; larger pools belong "
                                "in CSV or Parquet")
# The zip's unpacked size, checked before reading: a small file can unpack to gigabytes.
MAX_XLSX_UNZIPPED = Cap(4 << 30, "a spreadsheet is unpacked in memory; 4 GB of XML is already "
                                 "far beyond Excel's own million rows")
# rows × columns of the sheet read (its used range): each cell costs ~100 bytes once in Python.
MAX_XLSX_CELLS = Cap(30_000_000, "each cell becomes a Python string in memory (~100 bytes); "
                                 "30 million cells already need about 3 GB")

# --- Reading a bundle (sortition/core/bundleio.py). A bundle is hostile input: every file is read
# whole into memory, so each has a size cap, checked before reading more than cap + 1 bytes.
# audit.json: ids of the panel, the pool's per-stratum hashes (10,000+ strata take ~2 MB).
MAX_AUDIT_BYTES = Cap(64 << 20, "an audit holds a panel's ids and one line per stratum; the "
                                "largest real ones are a few MB")
# lottery.json: a transparent lottery lists up to MAX_TICKET_SEATS ids (~25 bytes each).
MAX_LOTTERY_BYTES = Cap(512 << 20, "a transparent lottery lists at most 10 million ids; a "
                                   "stratified one a line per stratum and per panel")
# panel.csv, probabilities.csv (one line per person of the pool: ~30 MB for 1.3 M people,
# ~500 MB for the largest 20 M-row pool), replacements.csv (≤ 100 ranks per member).
MAX_TABLE_BYTES = Cap(1 << 30, "probabilities.csv lists every person of the pool, at most "
                               "20 million lines")
# Id lists, answers and dropout rates: read whole, as text.
MAX_TEXT_BYTES = Cap(256 << 20, "id lists, answers and rates files are read whole into memory; "
                                "256 MB holds some 20 million ids")
# JSON nesting: the formats nest at most 5 deep; 64 leaves room and stays far from Python's
# recursion limit (a file of 200,000 `[` would otherwise crash the parser).
MAX_JSON_DEPTH = Cap(64, "the audit and lottery formats nest at most 5 levels")
# Characters of one JSON number: weights and denominators have ≤ 13 digits, floats ≤ 25
# characters; longer numbers cost quadratic time to convert and mean nothing here.
MAX_NUMBER_CHARS = Cap(40, "no recorded number needs more than 25 characters")
# Rounds of `replace` in one chain: verify re-derives every round before the last.
MAX_CHAIN = Cap(100, "a panel is not replaced a hundred times; every round of the chain is "
                     "verified again")
# A lottery's denominator and weights: 10^12 for a stratified lottery, the tickets otherwise.
MAX_DENOMINATOR = Cap(10**12, "a stratified lottery's weights are over 10^12, a transparent "
                              "one's over its tickets")
# Stratified lottery: panels × strata, the cells of the matrix built to check it (8 bytes each);
# 10,000+ strata × a few thousand panels pass.
MAX_LOTTERY_CELLS = Cap(100_000_000, "the panels are checked as a panels × strata table of "
                                     "8-byte integers; 100 million cells already take 800 MB")


def count_problem(option: str, value: object, *, maximum: Cap, minimum: int = 1) -> str | None:
    """Why `value` is not a usable count for `option`, or None (for callers that collect)."""
    if isinstance(value, bool):
        return f"{option} {value!r}: must be a whole number"
    try:
        n = operator.index(cast(SupportsIndex, value))  # ints, numpy integers; no floats, text
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
    return operator.index(cast(SupportsIndex, value))


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
