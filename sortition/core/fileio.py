"""Cells of the CSV files this tool writes, by one rule (atomic writing lives in `outputs`).

**Spreadsheet cells.** A spreadsheet evaluates a cell that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return (`=HYPERLINK(…)`, `+cmd|' /C calc'!A0`), so an id or a contact value from a
pool could run code on the machine of whoever opens a CSV written here. Every text cell of every
CSV this tool writes — header cells included — therefore goes through `neutralise`: a cell
starting with one of `= + - @ TAB CR '` gets one more `'` in front (a spreadsheet shows the text
and does not evaluate it). The apostrophe itself is in the list so that the rule can be undone
exactly: `restore` removes one leading `'` when the next character is in the list, and
`restore(neutralise(v)) == v` for every text. Hashes and fingerprints are always computed on the
values as loaded, never on the written cells. Readers undo the rule only for files this tool
wrote (docs/bundle-format.md, section 2): a pool the operator wrote is read as it is. The
`.xlsx` writer (`xlsx.write_xlsx_table`) applies the same rule through `neutralise_table`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

TRIGGERS = "=+-@\t\r'"  # the first characters that get a leading "'"
_STARTS = "^[=+\\-@\t\r']"  # the same, as a regular expression
_ESCAPED = "^'[=+\\-@\t\r']"


def neutralise(value: str) -> str:
    """The cell written for `value`: `'` added in front when it starts with a trigger."""
    return "'" + value if value[:1] and value[0] in TRIGGERS else value


def restore(cell: str) -> str:
    """The value a cell written by `neutralise` stands for (its exact inverse)."""
    return cell[1:] if len(cell) >= 2 and cell[0] == "'" and cell[1] in TRIGGERS else cell


def csv_field(value: str) -> str:
    """One CSV cell: neutralised, then quoted (quotes doubled) only when it holds a comma, a
    quote or a line break."""
    value = neutralise(value)
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _map_text(arr: pa.Array | pa.ChunkedArray, pattern: str, change) -> pa.Array:
    """Apply `change` to the cells matching `pattern` of a text (or dictionary of text) column;
    other columns are returned as they are. Vectorised: only the matches are rewritten."""
    if pa.types.is_dictionary(arr.type) and _is_text(arr.type.value_type):
        arr = arr.cast(arr.type.value_type)
    if not _is_text(arr.type):
        return arr
    hits = pc.match_substring_regex(arr, pattern)
    if not pc.any(hits).as_py():
        return arr
    return pc.if_else(hits, change(arr), arr)


def neutralise_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`neutralise` on every cell of a text column (non-text columns unchanged)."""
    return _map_text(arr, _STARTS, lambda a: pc.binary_join_element_wise(
        pa.scalar("'", type=a.type), a, pa.scalar("", type=a.type)))


def restore_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`restore` on every cell of a text column (non-text columns unchanged)."""
    return _map_text(arr, _ESCAPED, lambda a: pc.utf8_slice_codeunits(a, 1))


def neutralise_table(table: pa.Table) -> pa.Table:
    """The table as written to a CSV: header and text cells neutralised."""
    return pa.table([neutralise_array(c) for c in table.columns],
                    names=[neutralise(n) for n in table.column_names])


def restore_table(table: pa.Table) -> pa.Table:
    """A table read from a CSV this tool wrote, back to the values it was written from."""
    return pa.table([restore_array(c) for c in table.columns],
                    names=[restore(n) for n in table.column_names])


def write_csv_table(table: pa.Table, path: Path) -> None:
    """The one writer of Arrow tables as CSV: the cell rule, then Arrow's writer (header and
    text cells quoted, LF line ends)."""
    import pyarrow.csv as pacsv

    pacsv.write_csv(neutralise_table(table), path,
                    write_options=pacsv.WriteOptions(quoting_style="needed"))


def csv_header_line(names: list[str]) -> str:
    """The first line `write_csv_table` writes for these column names (without its LF)."""
    return ",".join('"' + neutralise(n).replace('"', '""') + '"' for n in names)
