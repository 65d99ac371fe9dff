"""Small operator files and private tables: a text file read whole with its SHA-256, a small
CSV (answers, exclusions, response rates) read with its row numbers, problems capped for the
screen, and a table written as Parquet, CSV or .xlsx by its extension.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from .errors import InputError
from .fileio import write_csv_table
from .xlsx import write_xlsx_table


def read_text(path: Path, encoding: str, what: str) -> tuple[str, str]:
    """The file's text (BOM removed) and the SHA-256 of its bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
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
