"""Small operator files and private tables: a text file read whole with its SHA-256, a small
CSV (answers, exclusions, response rates) read with its row numbers, the one reader of id
lists (`invite --exclude`, `replace --declined`) and of rate files (`invite --response-rates`,
`simulate --rates`), problems capped for the screen, and a table written as Parquet, CSV or
.xlsx by its extension.

Every one of these files is read like a CSV pool (docs/bundle-format.md section 2.1): UTF-8
unless `--encoding` says otherwise, a byte-order mark ignored, the delimiter (`,`, `;` or a
tab) judged on the first line, cells stripped of surrounding whitespace.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from .bundleio import MissingFile, read_given
from .errors import InputError
from .fileio import write_csv_table
from .limits import MAX_TEXT_BYTES
from .xlsx import write_xlsx_table


def read_text(path: Path, encoding: str, what: str) -> tuple[str, str]:
    """The file's text (BOM removed) and the SHA-256 of its bytes: a regular file of at most
    MAX_TEXT_BYTES (a FIFO or a device would block or never end)."""
    try:
        data = read_given(path, MAX_TEXT_BYTES, str(path))
    except MissingFile:
        raise InputError(f"{path}: {what} not found") from None
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"--encoding {encoding}: unknown text encoding") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise InputError(f"{path}, line {line}: not valid {encoding} text") from None
    return text.lstrip("\ufeff"), hashlib.sha256(data).hexdigest()


def delimiter_of(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def read_table_csv(path: Path, text: str, required: Sequence[str]
                   ) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """Rows (numbered from 1 after the header) of a small CSV, only the `required` columns."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InputError(f"{path}: empty file (expected a header row: {','.join(required)})")
    delimiter = delimiter_of(lines[first])
    reader = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=delimiter)
    header = [c.strip() for c in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}, header: missing column(s) {', '.join(missing)} (found: "
                         f"{', '.join(header)})")
    where = [header.index(c) for c in required]
    rows: list[tuple[int, list[str]]] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) <= max(where):
            problems.append(f"{path}, row {number}: {len(row)} cell(s), the header has "
                            f"{len(header)}")
            continue
        rows.append((number, [row[i].strip() for i in where]))
    if problems:
        raise InputError(capped_problems(problems))
    return rows, header


@dataclass
class IdList:
    """Ids read from a file, in file order, each once."""

    ids: list[str]
    lines: dict[str, int]  # the first line of each id, for messages
    sha256: str  # of the file's bytes


def read_ids(path: Path, what: str, encoding: str = "utf-8") -> IdList:
    """One id per line, or a CSV with an `id` column (a first line that is exactly `id` is a
    header). The first non-blank line decides: split at its delimiter, it is a CSV header when
    it has several cells or is `id` (each cell stripped of whitespace and `"`). Blank lines and
    empty ids are skipped; an id given twice counts once, at its first line."""
    path = Path(path)
    text, sha = read_text(path, encoding, what)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    found: dict[str, int] = {}
    if first is not None:
        head = lines[first]
        cells = [c.strip().strip('"').strip() for c in head.split(delimiter_of(head))]
        if len(cells) > 1 or cells == ["id"]:
            if "id" not in cells:
                raise InputError(f"{path}, line {first + 1}: a CSV {what} needs an 'id' column "
                                 f"(found: {', '.join(cells)})")
            rows, _ = read_table_csv(path, text, ("id",))
            for number, (i,) in rows:
                if i:
                    found.setdefault(i, first + 1 + number)  # its line, quoted newlines aside
        else:
            for number, line in enumerate(lines, start=1):
                i = line.strip()
                if i:
                    found.setdefault(i, number)
    return IdList(list(found), found, sha)


RATE_COLUMNS = ("feature", "value", "rate")


def read_rate_table(path: Path, what: str, encoding: str = "utf-8", *, zero: bool,
                    check: Callable[[str, str], str | None] | None = None
                    ) -> tuple[dict[tuple[str, str], float], str]:
    """A CSV `feature,value,rate` (other columns ignored): {(feature, value): rate} in file
    order, and the SHA-256 of the file. A rate is a number between 0 and 1 (0 itself only
    when `zero`); a feature or value may not be empty nor given twice; `check(feature, value)`
    may name one more problem of a row. Every problem, with its row, in one InputError."""
    path = Path(path)
    text, sha = read_text(path, encoding, what)
    rows, _ = read_table_csv(path, text, RATE_COLUMNS)
    span = "[0, 1]" if zero else "(0, 1]"
    problems: list[str] = []
    out: dict[tuple[str, str], float] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, (feature, value, rate_text) in rows:
        where = f"{path}, row {number}"
        if not feature or not value:
            problems.append(f"{where}, column {'feature' if not feature else 'value'}: empty")
            continue
        problem = check(feature, value) if check is not None else None
        if problem:
            problems.append(f"{where}, {problem}")
            continue
        try:
            rate = float(rate_text)
        except ValueError:
            rate = float("nan")
        if not (0.0 <= rate <= 1.0 if zero else 0.0 < rate <= 1.0):  # also refuses NaN
            problems.append(f"{where}, column rate: {rate_text!r} is not a number in {span}")
            continue
        if (feature, value) in seen:
            problems.append(f"{where}: {feature}={value!r} already has a rate "
                            f"(row {seen[(feature, value)]})")
            continue
        seen[(feature, value)] = number
        out[(feature, value)] = rate
    if not rows:
        problems.append(f"{path}: no rates (expected rows feature,value,rate)")
    if problems:
        raise InputError(capped_problems(problems))
    return out, sha


def capped_problems(problems: list[str], limit: int = 10) -> list[str]:
    if len(problems) <= limit:
        return problems
    return problems[:limit] + [f"… and {len(problems) - limit} more problem(s)"]


def write_table(table: pa.Table, path: Path, like: Path) -> None:
    """Parquet (zstd), CSV or .xlsx, by the extension of `like` (the final name)."""
    import pyarrow.parquet as pq

    if like.suffix.lower() == ".csv":
        write_csv_table(table, path)
    elif like.suffix.lower() == ".xlsx":
        write_xlsx_table(table, path, shown=like)
    else:
        pq.write_table(table, path, compression="zstd")
