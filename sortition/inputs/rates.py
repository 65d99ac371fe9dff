"""Dropout rates by feature value: the CSV `feature,value,rate` of `simulate --rates` and
`draw --dropout-rates`, read once here, exactly.

A rate is a plain decimal between 0 and 1 with at most 6 decimals (`0`, `0.25`, `1`), kept as
the exact fraction it writes (`fractions.Fraction`): the dropout-aware replacement lists
(docs/draw-spec.md section 12.5) compute with it in exact arithmetic, so that every machine and
the browser verifier derive the same lists; the simulation turns it into the nearest float. A
person's rate is the largest rate given for one of their values (docs/draw-spec.md section 13).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..core.errors import InputError
from ..core.fileio import restore
from ..core.tables import read_table_csv, read_text

DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]{0,6})?|\.[0-9]{1,6})")  # at most 6 decimals
MAX_RATE_CHARS = 32  # a longer rate is refused: no useful rate needs more digits


def parse_rate(text: str) -> Fraction | None:
    """The exact value of a rate written as a plain decimal between 0 and 1, else None."""
    if len(text) > MAX_RATE_CHARS or not DECIMAL.fullmatch(text):
        return None
    value = Fraction(text)
    return value if value <= 1 else None


@dataclass
class DropoutRates:
    """Rates as read: (feature, value, rate text) in the file's order, their exact values, and
    the SHA-256 of the file's bytes (None when they did not come from a file)."""

    rows: list[tuple[str, str, str]]
    sha256: str | None = None
    source: str = "the dropout rates"  # names them in messages: the file, or where recorded

    @property
    def rates(self) -> dict[tuple[str, str], Fraction]:
        return {(f, v): Fraction(r) for f, v, r in self.rows}


def rates_from_rows(rows: Iterable[tuple[str, str, str, str]],
                    known: Mapping[str, Collection[str]] | None = None,
                    source: str = "the dropout rates") -> DropoutRates:
    """(where, feature, value, rate text) rows checked one by one: a decimal rate between 0
    and 1, a quota feature and value (`known`), one rate per value. InputError names `where`."""
    out: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for where, feature, value, text in rows:
        if parse_rate(text) is None:
            try:
                number = float(text) if len(text) <= MAX_RATE_CHARS else None
            except ValueError:
                number = None
            if number is not None and 0.0 <= number <= 1.0:
                raise InputError(f"{where}: rate {text!r} for {feature}={value} is not a number "
                                 "written as a plain decimal (like 0.25, at most 6 decimals)")
            if number is None:
                raise InputError(f"{where}: rate {text!r} for {feature}={value} is not a "
                                 "number (write it as a plain decimal, like 0.25)")
            raise InputError(f"{where}: rate {text!r} for {feature}={value} is not between 0 "
                             "and 1")
        if known is not None:
            if feature not in known:
                raise InputError(f"{where}: {feature!r} is not a quota feature "
                                 f"({', '.join(known)})")
            if value not in known[feature]:
                raise InputError(f"{where}: {value!r} is not a value of {feature}")
        if (feature, value) in seen:
            raise InputError(f"{where}: a second rate for {feature}={value}")
        seen.add((feature, value))
        out.append((feature, value, text))
    return DropoutRates(out, source=source)


def load_rates(path: Path, known: Mapping[str, Collection[str]] | None = None
               ) -> DropoutRates:
    """Dropout rates from a CSV `feature,value,rate`, read like every small table
    (`tables.read_table_csv`: UTF-8, BOM allowed, `,`/`;`/tab, blank rows skipped; rows
    numbered from 1 after the header); a feature or value cell written by this tool's cell rule
    is read back exactly, as
    `respondents --rates-out` writes them); InputError names the file, line and value.
    `known`: the quota features and their values, to catch a misspelt one rather than silently
    ignore it."""
    path = Path(path)
    text, sha256 = read_text(path, "utf-8", "dropout rates")
    table, _ = read_table_csv(path, text, ("feature", "value", "rate"))
    rows = ((f"{path}, row {number}", restore(feature), restore(value), rate)
            for number, (feature, value, rate) in table)
    found = rates_from_rows(rows, known)
    found.sha256, found.source = sha256, str(path)
    return found


def read_rates(path: Path, known: Mapping[str, Collection[str]] | None = None
               ) -> dict[tuple[str, str], Fraction]:
    """(feature, value) → exact rate, from a CSV `feature,value,rate` (see `load_rates`)."""
    return load_rates(path, known).rates


def stratum_rates(keys: Sequence[Sequence[str]], features: Sequence[str],
                  found: DropoutRates) -> list[Fraction]:
    """Each stratum's dropout rate: the largest rate given for one of its values. Every stratum
    needs one (InputError naming the first stratum without, and where the rates come from)."""
    rates, source = found.rates, found.source
    out: list[Fraction] = []
    for key in keys:
        given = [rates[(f, v)] for f, v in zip(features, key, strict=True) if (f, v) in rates]
        if not given:
            values = ", ".join(f"{f}={v}" for f, v in zip(features, key, strict=True))
            raise InputError(f"{source}: no rate for the people with {values}: give a rate to "
                             "one of these values")
        out.append(max(given))
    return out
