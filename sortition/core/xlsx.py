"""Spreadsheets: pools and quota files read from `.xlsx`, private outputs written as `.xlsx`.

**Reading** uses python-calamine (the optional extra `sortition[xlsx]`): a Rust reader with no
pandas, several times faster than openpyxl, which loads a sheet into compact Rust memory whose
size can be checked before a Python object is made. A sheet is read whole, so the file and its
cells are capped (`limits.MAX_XLSX_BYTES`, `MAX_XLSX_CELLS`). Every cell becomes text, by the
rules of `cell_text`, so that the CSV validation (`pool.load_pool`, `quotas`) runs unchanged
on the same Arrow table of strings. Row 1 is the header; rows with no value are skipped; row
numbers in messages are the spreadsheet's own.

**Sheet selection:** `pool.xlsx` is the first sheet, `pool.xlsx#Feuil2` the sheet named
`Feuil2` (`split_sheet`), in every command that takes a pool, a base or quotas.

**Writing** (`write_xlsx_table`) needs no dependency: the few XML parts of a one-sheet workbook
are written with `zipfile`, every cell an inline string (`t="inlineStr"`), so no cell can ever
be a formula or a number, and the bytes are the same on every run (fixed zip dates, no
creation time). Cells go through the same reversible rule as CSV (`fileio.neutralise`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import limits
from .errors import InputError
from .fileio import neutralise_table

SUFFIX = ".xlsx"
INSTALL = "reading .xlsx needs python-calamine: install sortition[xlsx] " \
          "(pip install 'sortition[xlsx]')"
EXACT = 2 ** 53  # integers up to here are exact in the double a spreadsheet stores


def split_sheet(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """`book.xlsx#Sheet` → (book.xlsx, "Sheet"); any other path → (path, None).

    A file whose real name holds `#` is taken as it is when it exists.
    """
    text = str(path)
    head, sep, sheet = text.rpartition("#")
    if sep and head.lower().endswith(SUFFIX) and sheet and not Path(text).exists():
        return Path(head), sheet
    return Path(path), None


def is_xlsx(path: str | Path) -> bool:
    """Whether a path (with or without `#Sheet`) names a spreadsheet."""
    return split_sheet(path)[0].suffix.lower() == SUFFIX


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: how a spreadsheet names a column."""
    letters = ""
    index += 1
    while index:
        index, r = divmod(index - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def cell_text(value: object) -> str | None:
    """A cell as text, or None when it has no exact text form (a duration, a huge number).

    Text as it is; an integer-valued number without ".0" (7.0 → "7"), other numbers by the
    shortest text that reads back the same (7.5 → "7.5"); booleans TRUE/FALSE, as shown;
    dates and times in ISO 8601 (2020-01-02, 2020-01-02T03:04:05, 03:04:00). Formula cells
    give their last computed value; a formula error (#N/A) reads as an empty cell.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value) if abs(value) < EXACT else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value)) if abs(value) < EXACT else None
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return None  # a duration (timedelta), or a type this tool does not know


def _refusal(value: object) -> str:
    if isinstance(value, dt.timedelta):
        return f"a duration ({value}), not text"
    if isinstance(value, int | float):
        return (f"the number {value!r} has more digits than a spreadsheet keeps exactly "
                "(format the column as text in the spreadsheet, and type the ids again)")
    return f"a {type(value).__name__} cell, not text"


@dataclass
class Sheet:
    """One sheet as text: the header (row 1) and, per column, the cells of the data rows."""

    file: Path
    name: str
    header: list[str]
    columns: list[list[str]]
    rows: np.ndarray  # the spreadsheet's row number (1-based) of each data row

    @property
    def label(self) -> str:
        """How messages name it: `pool.xlsx, sheet Feuil1`."""
        return f"{self.file}, sheet {self.name}"

    def table(self, names: list[str]) -> pa.Table:
        """The named columns as an Arrow table of strings (what the CSV reader gives)."""
        index = {n: i for i, n in enumerate(self.header)}
        return pa.table({n: pa.array(self.columns[index[n]], type=pa.string()) for n in names})


def _calamine(file: Path):
    """The reader module, or exit 2 saying which extra to install."""
    try:
        import python_calamine
    except ImportError:
        raise InputError(f"{file}: {INSTALL}") from None
    return python_calamine


def _open(file: Path):
    python_calamine = _calamine(file)
    try:
        size = file.stat().st_size
    except OSError as e:
        raise InputError(f"{file}: cannot read the file ({e.strerror or e})") from None
    if size > limits.MAX_XLSX_BYTES.value:
        raise InputError(f"{file}: {size:,} bytes, at most {limits.MAX_XLSX_BYTES.value:,} for a "
                         f".xlsx file ({limits.MAX_XLSX_BYTES.why}); save it as CSV or Parquet")
    try:
        with zipfile.ZipFile(file) as z:
            unzipped = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputError(f"{file}: not a readable .xlsx file (not a zip archive; is it an "
                         "older .xls, or a CSV renamed?)") from None
    if unzipped > limits.MAX_XLSX_UNZIPPED.value:
        raise InputError(f"{file}: unpacks to {unzipped:,} bytes, at most "
                         f"{limits.MAX_XLSX_UNZIPPED.value:,} ({limits.MAX_XLSX_UNZIPPED.why})")
    try:
        return python_calamine.CalamineWorkbook.from_path(str(file))
    except (python_calamine.CalamineError, OSError, ValueError) as e:
        raise InputError(f"{file}: not a readable .xlsx file ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def read_sheet(path: str | Path) -> Sheet:
    """The sheet `path` names (`book.xlsx` or `book.xlsx#Sheet`), every cell as text.

    Exit 2 (InputError) naming the file, sheet, row and column for: a missing extra, a file
    over the caps or not an .xlsx, an unknown sheet, an empty header row, a value under an
    empty header cell, a cell with no exact text form.
    """
    file, wanted = split_sheet(path)
    if not file.exists():
        raise InputError(f"{file}: file not found")
    python_calamine = _calamine(file)
    book = _open(file)
    try:
        names = list(book.sheet_names)
        if not names:
            raise InputError(f"{file}: the workbook has no sheet")
        name = names[0] if wanted is None else wanted
        if name not in names:
            raise InputError(f"{file}: no sheet named {name!r} (sheets: "
                             f"{', '.join(repr(n) for n in names)})")
        try:
            sheet = book.get_sheet_by_name(name)
            end = sheet.end
            cells = 0 if end is None else (end[0] + 1) * (end[1] + 1)
            if cells > limits.MAX_XLSX_CELLS.value:
                raise InputError(f"{file}, sheet {name}: {end[0] + 1:,} rows × {end[1] + 1:,} "
                                 f"columns, at most {limits.MAX_XLSX_CELLS.value:,} cells "
                                 f"({limits.MAX_XLSX_CELLS.why}); save it as CSV or Parquet")
            grid = sheet.to_python(skip_empty_area=False) if end is not None else []
        except python_calamine.CalamineError as e:
            raise InputError(f"{file}, sheet {name}: unreadable ({_first_line(e)})") from None
    finally:
        book.close()
    return _as_text(file, name, grid)


def _as_text(file: Path, name: str, grid: list[list[object]]) -> Sheet:
    label = f"{file}, sheet {name}"
    if not grid or not any(c != "" for c in grid[0]):
        raise InputError(f"{label}, row 1: empty (expected the header row: column names)")
    problems: list[str] = []

    def text(value: object, row: int, col: int) -> str:
        if value == "" or value is None:
            return ""
        t = cell_text(value)
        if t is None:
            if len(problems) < 10:
                problems.append(f"{label}, row {row}, column {column_letter(col)}: "
                                f"{_refusal(value)}")
            return ""
        return t

    width = max(len(r) for r in grid)
    # names stripped, as in a CSV header
    header = [text(c, 1, j).strip() for j, c in enumerate(grid[0])]
    header += [""] * (width - len(header))
    data = [(i + 1, r) for i, r in enumerate(grid[1:], start=1) if any(c != "" for c in r)]
    keep: list[int] = []
    for j, h in enumerate(header):
        if h:
            keep.append(j)
            continue
        used = [row for row, r in data if j < len(r) and r[j] != ""]
        if used:
            shown = ", ".join(str(n) for n in used[:5])
            problems.append(f"{label}, column {column_letter(j)}: empty column name in row 1, "
                            f"yet {len(used)} value(s) below it (row(s) {shown}); name the "
                            "column or clear it")
    columns = [[text(r[j] if j < len(r) else "", row, j) for row, r in data] for j in keep]
    if problems:
        raise InputError(problems)
    return Sheet(file=file, name=name, header=[header[j] for j in keep], columns=columns,
                 rows=np.array([row for row, _ in data], dtype=np.int64))


# Writing ---------------------------------------------------------------------------------------

_FORBIDDEN = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"  # not allowed in XML 1.0
_DATE = (1980, 1, 1, 0, 0, 0)
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/></Relationships>'),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
        '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
        'borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="49" fontId="0" '
        'fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'),
}


_XSTRING = re.compile("_(?=x[0-9A-Fa-f]{4}_)")  # starts OOXML's escape of a character


def _escape(text: str) -> str:
    """XML text; a literal `_xHHHH_` gets its `_` escaped (`_x005F_`), as readers decode it."""
    text = _XSTRING.sub("_x005F_", text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def _text_column(arr: pa.ChunkedArray) -> list[str | None]:
    """A column's cells as text (None: no cell). Non-text values by Arrow's cast, as in CSV."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            arr = pc.cast(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return [None if v is None else str(v) for v in arr.to_pylist()]
    return arr.to_pylist()


def write_xlsx_table(table: pa.Table, path: Path, shown: Path | None = None) -> None:
    """The one writer of Arrow tables as `.xlsx`: the cell rule (`fileio.neutralise_table`,
    as for CSV), then every cell an inline string. A control character XML cannot hold is
    refused (exit 2) rather than altered. `shown`: the final name, for that message."""
    table = neutralise_table(table)
    names = table.column_names
    columns = [_text_column(c) for c in table.columns]
    bad = re.compile(_FORBIDDEN)
    for name, cells in zip(names, columns, strict=True):
        for i, v in enumerate([name, *cells]):
            hit = bad.search(v) if v is not None else None
            if hit:
                raise InputError(f"{shown or path}: column {name!r}, row {i + 1}: the control "
                                 f"character U+{ord(hit.group()):04X} cannot be written in "
                                 "a .xlsx file (XML forbids it); write .csv or .parquet "
                                 "instead")
    letters = [column_letter(j) for j in range(len(names))]

    def row_xml(number: int, cells: list[str | None]) -> str:
        parts = [f'<row r="{number}">']
        for letter, v in zip(letters, cells, strict=True):
            if v:
                parts.append(f'<c r="{letter}{number}" t="inlineStr"><is>'
                             f'<t xml:space="preserve">{_escape(v)}</t></is></c>')
        parts.append("</row>")
        return "".join(parts)

    def info(name: str) -> zipfile.ZipInfo:
        z = zipfile.ZipInfo(name, date_time=_DATE)
        z.compress_type = zipfile.ZIP_DEFLATED
        z.external_attr = 0o600 << 16
        return z

    with zipfile.ZipFile(path, "w") as z:
        for name in ("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml",
                     "xl/_rels/workbook.xml.rels", "xl/styles.xml"):
            z.writestr(info(name), _PARTS[name].encode("utf-8"))
        with z.open(info("xl/worksheets/sheet1.xml"), "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                     b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                     b'2006/main"><sheetData>')
            fh.write(row_xml(1, names).encode("utf-8"))
            buf: list[str] = []
            for i in range(table.num_rows):
                buf.append(row_xml(i + 2, [c[i] for c in columns]))
                if len(buf) >= 1000:
                    fh.write("".join(buf).encode("utf-8"))
                    buf.clear()
            fh.write("".join(buf).encode("utf-8"))
            fh.write(b"</sheetData></worksheet>")
