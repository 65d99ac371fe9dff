"""The pool: people who may be drawn, read from Parquet (primary) or CSV.

Only the id column and the quota feature columns are read: contact columns (names, phones,
emails, addresses) never enter the computation, so they cannot leak into a public output.
Values are compared exactly and case-sensitively after stripping surrounding whitespace.
Ids are text: a Parquet integer 7 becomes "7", and a CSV "007" stays "007".
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..core.errors import InputError
from ..core.fileio import csv_header_line, restore, restore_array, restore_table
from ..core.textopts import check_text
from ..core.xlsx import is_xlsx, read_sheet, split_sheet
from .quotas import Quotas
from .synth import COLUMNS as SYNTH

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
MAX_EXAMPLES = 5


@dataclass
class Pool:
    """Ids and quota features of every person in the pool.

    `values[f]` lists the distinct values of feature `f`, sorted by UTF-8 bytes; `codes[f]` is
    an int32 array giving, for each row, the index of its value in `values[f]`.
    """

    path: Path
    ids: pa.Array  # string ids, whitespace-stripped, in file order
    features: list[str]
    values: dict[str, list[str]]
    codes: dict[str, np.ndarray]
    id_column: str | None = "id"  # None when ids are row numbers from 1
    notes: list[str] = field(default_factory=list)
    encoding: str = "utf-8"  # of a CSV pool, to read it again (`read_rows`)
    household_column: str | None = None
    # opaque household numbers (1, 2, …: households in the order of their smallest member id);
    # a person with an empty household cell is a household alone
    households: np.ndarray | None = None
    rows: np.ndarray | None = None  # for a subset of a pool (`subset`): the rows in the file
    # a CSV this tool wrote (`written_here`): its cells are read back through `fileio.restore`
    written_here: bool = False

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, feature: str) -> np.ndarray:
        """The values of `feature`, one per row (an object array of str)."""
        return np.asarray(self.values[feature], dtype=object)[self.codes[feature]]

    def value_counts(self, feature: str) -> dict[str, int]:
        counts = np.bincount(self.codes[feature], minlength=len(self.values[feature]))
        return {v: int(c) for v, c in zip(self.values[feature], counts.tolist(), strict=True)}


def _rows_text(rows: list[int], total: int, word: str = "row") -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_EXAMPLES])
    more = f" and {total - MAX_EXAMPLES} more" if total > MAX_EXAMPLES else ""
    plural = "s" if total > 1 else ""
    return f"{total} {word}{plural} ({word}{plural} {shown}{more})"


def _do(total: int) -> str:
    return "does" if total == 1 else "do"


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    if path.suffix.lower() in CSV_SUFFIXES:
        return False
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError as e:
        raise InputError(f"{path}: cannot read the pool file ({e.strerror or e})") from None


def _csv_header(path: Path, encoding: str) -> tuple[list[str], str, str]:
    """Column names and delimiter of a CSV file, judged on its first line (also returned)."""
    try:
        with path.open("rb") as fh:
            first = fh.readline(1 << 20)
    except OSError as e:
        raise InputError(f"{path}: cannot read the pool file ({e.strerror or e})") from None
    try:
        line = first.decode(encoding)
    except UnicodeDecodeError:
        raise InputError(
            f"{path}, line 1: not valid {encoding}; if the file was saved by Excel on Windows, "
            "try --encoding cp1252"
        ) from None
    line = line.lstrip("\ufeff").rstrip("\r\n")
    if not line.strip():
        raise InputError(f"{path}: empty file or empty first line (expected a header row)")
    delimiter = ";" if line.count(";") > line.count(",") else ","
    if "\t" in line and line.count("\t") > max(line.count(";"), line.count(",")):
        delimiter = "\t"
    names = [c.strip().strip('"').strip() for c in line.split(delimiter)]
    return names, delimiter, line


AUDITED_SCHEMAS = ("sortition-calls", "sortition-respondents")


def written_here(path: Path, first_line: str, features: list[str],
                 household_column: str | None) -> bool:
    """Whether a CSV pool was written by this tool, so that its cells are read back through
    the cell rule (`fileio`); a pool the operator wrote is read as it is.

    Recognised by their role: a call list or a respondent pool (their audit, `<stem>.audit.json`
    of schema sortition-calls or sortition-respondents, is written beside them in one step), a
    public extract (its exact header: `id`, `household` with households, the features sorted
    by UTF-8 bytes) and a synthetic pool (the exact header of `sortition synth`).
    """
    extract = ["id", *(["household"] if household_column else []),
               *sorted(features, key=lambda f: f.encode("utf-8"))]
    if first_line in (csv_header_line(extract), csv_header_line(list(SYNTH))):
        return True
    audit = path.parent / f"{path.stem}.audit.json"
    try:
        if audit.is_file() and audit.stat().st_size < (1 << 26):
            import json

            return json.loads(audit.read_bytes().decode("utf-8")).get("schema") \
                in AUDITED_SCHEMAS
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return False
    return False


def _read_csv(path: Path, columns: list[str], all_columns: list[str], delimiter: str,
              encoding: str, string_columns: list[str]) -> pa.Table:
    bad_rows: list[tuple[int | None, int, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    def read(use_threads: bool) -> pa.Table:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding, use_threads=use_threads,
                                           column_names=all_columns, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid,
                                             newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types={c: (pa.string() if c in string_columns
                                  else pa.dictionary(pa.int32(), pa.string())) for c in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    try:
        table = read(use_threads=True)
        if bad_rows:  # read again on one thread: only then does Arrow know the line numbers
            bad_rows.clear()
            read(use_threads=False)
    except pa.ArrowInvalid as e:
        msg = str(e)
        if "UTF8" in msg or "UTF-8" in msg:
            raise InputError(
                f"{path}: not valid {encoding} text; if the file was saved by Excel on Windows, "
                "try --encoding cp1252"
            ) from None
        raise InputError(f"{path}: unreadable CSV ({msg.splitlines()[0]})") from None
    except (UnicodeDecodeError, LookupError) as e:
        raise InputError(f"{path}: cannot decode as {encoding} ({e})") from None
    if bad_rows:
        lines = [n for n, _, _ in bad_rows if n is not None]
        exp = bad_rows[0][1]
        raise InputError(
            f"{path}: {_rows_text(lines, len(bad_rows), 'line')} {_do(len(bad_rows))} not have "
            f"the header's "
            f"{exp} cells (ragged rows; check the delimiter and quoting)"
        )
    return table


def _readable(t: pa.DataType) -> bool:
    """Cell types that become text by the rules of docs/bundle-format.md section 2.1."""
    if pa.types.is_dictionary(t):
        return _readable(t.value_type)
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_date(t)
            or pa.types.is_timestamp(t) or pa.types.is_time(t) or pa.types.is_decimal(t)
            or pa.types.is_null(t))


def _check_cell_types(table: pa.Table, src: str) -> None:
    """Refuse, naming the column (and a row), what has no text of its own: binary, list, struct…
    columns, and NaN or infinite numbers (exit 2, never a traceback)."""
    problems: list[str] = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if not _readable(t):
            shown = t.value_type if pa.types.is_dictionary(t) else t
            problems.append(f"{src}, column {name}: {shown} cells cannot be read as text (give "
                            "text, numbers, booleans or dates)")
        elif pa.types.is_floating(t):
            bad = pc.invert(pc.fill_null(pc.is_finite(column), True))
            if pc.any(bad).as_py():
                row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0]) + 1
                problems.append(f"{src}, column {name}: a number that is not finite (NaN or "
                                f"infinite) in data row {row}")
    if problems:
        raise InputError(problems)


def _trim(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.string())
        elif pa.types.is_floating(arr.type):
            # 7.0 written by pandas for an integer column with gaps reads back as "7"
            # beyond ±2^63 no integer can be exact: the float text is kept
            small = pc.less_equal(pc.abs(arr), 2.0 ** 62)
            if pc.all(pc.fill_null(small, True)).as_py():
                as_int = pc.cast(arr, pa.int64(), safe=False)
                if pc.all(pc.or_kleene(pc.equal(pc.cast(as_int, arr.type), arr),
                                       pc.is_null(arr))).as_py():
                    arr = as_int
            arr = arr.cast(pa.string())
        else:
            arr = arr.cast(pa.string())
    return pc.utf8_trim_whitespace(arr)


def _encode(arr: pa.ChunkedArray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct stripped values sorted by UTF-8 bytes, each row's index into them, and a mask
    of empty or missing cells.

    Works on dictionary-encoded columns, so stripping and sorting touch each distinct value once.
    """
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(_trim(arr))
    chunks = arr.chunks
    raw: list[list[str | None]] = [c.dictionary.to_pylist() for c in chunks]
    stripped = [[None if v is None else str(v).strip() for v in d] for d in raw]
    distinct = sorted({v for d in stripped for v in d if v}, key=lambda v: v.encode("utf-8"))
    index = {v: i for i, v in enumerate(distinct)}
    codes = np.empty(len(arr), dtype=np.int32)
    empty = np.zeros(len(arr), dtype=bool)
    start = 0
    for chunk, d in zip(chunks, stripped, strict=True):
        remap = np.array([index.get(v, -1) if v else -1 for v in d] or [-1], dtype=np.int32)
        idx = chunk.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.intp)
        mapped = remap[idx] if len(d) else np.full(len(chunk), -1, dtype=np.int32)
        if chunk.null_count:
            mapped[np.asarray(chunk.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = -1
        codes[start:start + len(chunk)] = mapped
        start += len(chunk)
    empty = codes < 0
    used = np.bincount(codes[~empty], minlength=len(distinct)) > 0
    if not used.all():  # dictionary entries no row uses, e.g. unused pandas categories
        distinct = [v for v, u in zip(distinct, used.tolist(), strict=True) if u]
        codes[~empty] = (np.cumsum(used) - 1).astype(np.int32)[codes[~empty]]
    codes[empty] = 0
    return distinct, codes, empty


def _duplicated(ids: pa.Array) -> list[str]:
    """Ids that occur more than once.

    A vectorised 64-bit polynomial hash of each id's UTF-8 bytes finds candidates in one sort;
    candidates are then compared exactly, so a hash collision can never report a false duplicate.
    """
    ids = ids.cast(pa.string()) if not pa.types.is_string(ids.type) else ids
    n = len(ids)
    if n < 2:
        return []
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset:ids.offset + n + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
    starts = offsets[:-1].astype(np.int64)
    lens = np.diff(offsets).astype(np.int64)
    h = lens.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    width = int(lens[0])
    if 0 < width <= 64 and (lens == width).all():
        # all ids of one length (the usual case): the same hash over a strided (n, width) view,
        # without gathering bytes (13 M ids: 4 s → about 1 s)
        rows = data[int(offsets[0]):int(offsets[0]) + n * width].reshape(n, width)
        with np.errstate(over="ignore"):
            for j in range(width):
                h = h * np.uint64(1099511628211) + (rows[:, j] + np.uint64(1))
        return _confirm(ids, h)
    with np.errstate(over="ignore"):
        for j in range(min(int(lens.max()), 64)):  # longer ids collide only on their first 64 bytes
            live = np.flatnonzero(lens > j) if j else None
            byte = np.zeros(n, dtype=np.uint64)
            if live is None:
                byte[lens > 0] = data[starts[lens > 0]] + np.uint64(1)
            else:
                byte[live] = data[starts[live] + j] + np.uint64(1)
            h = h * np.uint64(1099511628211) + byte
    return _confirm(ids, h)


def _confirm(ids: pa.Array, h: np.ndarray) -> list[str]:
    """Ids whose hash is shared, compared exactly: the duplicates, sorted by UTF-8 bytes."""
    hs = np.sort(h)
    if not (hs[1:] == hs[:-1]).any():
        return []
    dup_hashes = np.unique(hs[1:][hs[1:] == hs[:-1]])
    candidates = np.flatnonzero(np.isin(h, dup_hashes))
    seen: dict[str, int] = {}
    for v in ids.take(pa.array(candidates)).to_pylist():
        seen[v] = seen.get(v, 0) + 1
    return sorted((v for v, c in seen.items() if c > 1), key=lambda v: v.encode("utf-8"))


def _shown(hits: np.ndarray, numbers: np.ndarray | None) -> list[int]:
    """Row numbers for messages: from 1 in a CSV or Parquet file, the sheet's own in a
    spreadsheet (`numbers`: the row number of each data row)."""
    hits = np.asarray(hits, dtype=np.int64)
    return (numbers[hits] if numbers is not None else hits + 1).tolist()


def _first_rows(mask: pa.Array | pa.ChunkedArray,
                numbers: np.ndarray | None = None) -> tuple[list[int], int]:
    hits = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))
    return _shown(hits[:MAX_EXAMPLES], numbers), int(hits.size)


def load_pool(
    path: str | Path,
    features: list[str],
    *,
    id_column: str | None = None,
    encoding: str = "utf-8",
    quotas: Quotas | None = None,
    household_column: str | None = None,
) -> Pool:
    """Read and validate a pool; report every problem at once as an InputError.

    `id_column=None` means the default `id`: when the pool has no such column the ids are the
    row numbers from 1 (and a note says so); a named id column that is missing is an error.
    A spreadsheet (`pool.xlsx`, `pool.xlsx#Sheet`) is read as text (`xlsx.read_sheet`) into the
    same table the CSV reader gives, then checked by the same code; messages name its sheet.
    """
    check_text("--id-column", id_column)
    check_text("--household-column", household_column)
    check_text("--encoding", encoding)
    path = Path(path)
    file = split_sheet(path)[0]
    if not file.exists():
        raise InputError(f"{file}: pool file not found")
    if file.is_dir():
        raise InputError(f"{file}: is a folder, not a pool file")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"--encoding {encoding}: unknown text encoding") from None
    sheet = read_sheet(path) if is_xlsx(path) else None
    src = sheet.label if sheet is not None else str(path)  # how messages name the file
    numbers = sheet.rows if sheet is not None else None
    parquet = sheet is None and _is_parquet(path)
    if sheet is not None:
        first_line = ",".join('"' + c.replace('"', '""') + '"' for c in sheet.header)
        ours = written_here(file, first_line, features, household_column)
        if ours:
            sheet.header = [restore(c) for c in sheet.header]
        all_columns = list(sheet.header)
        delimiter = ","
    elif parquet:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") \
                from None
        all_columns = list(schema.names)
        delimiter = ","
        ours = False
    else:
        all_columns, delimiter, first_line = _csv_header(path, encoding)
        ours = written_here(path, first_line, features, household_column)
        if ours:
            all_columns = [restore(c) for c in all_columns]
    problems: list[str] = []
    notes: list[str] = []
    dupes = sorted({c for c in all_columns if all_columns.count(c) > 1})
    if dupes:
        problems.append(f"{src}, header: duplicated column name(s) {', '.join(dupes)}")
    explicit_id = id_column is not None
    id_col: str | None = id_column if explicit_id else "id"
    if id_col not in all_columns:
        if explicit_id:
            problems.append(f"{src}: id column {id_col!r} not found (columns: "
                            f"{', '.join(all_columns)})")
        else:
            notes.append(f"{src}: no 'id' column, so the ids are the row numbers from 1 "
                         "(name another column with --id-column)")
        id_col = None
    if id_col is not None and id_col in features:
        problems.append(f"{src}: column {id_col!r} cannot be both the id and a quota feature")
    missing = [f for f in features if f not in all_columns]
    if missing:
        problems.append(f"{src}: feature column(s) {', '.join(repr(m) for m in missing)} not "
                        f"found (columns: {', '.join(all_columns)})")
    if household_column is not None:
        if household_column not in all_columns:
            problems.append(f"{src}: household column {household_column!r} not found "
                            f"(columns: {', '.join(all_columns)})")
        elif household_column == id_col or household_column in features:
            problems.append(f"{src}: column {household_column!r} cannot be the household "
                            "column and also the id or a quota feature")
    if problems:
        raise InputError(problems)
    needed = ([id_col] if id_col else []) + [f for f in features if f != id_col]
    if household_column is not None:
        needed.append(household_column)
    if parquet:
        try:
            if needed:
                dict_cols = [f for f in features if f != id_col]
                table = pq.read_table(path, columns=needed, read_dictionary=dict_cols)
            else:  # no column needed: only the row count
                table = pa.table({"rows": pa.nulls(pq.ParquetFile(path).metadata.num_rows)})
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") \
                from None
    elif sheet is not None:
        table = sheet.table(needed or all_columns[:1])
        if ours:
            table = pa.table([restore_array(c) for c in table.columns],
                             names=table.column_names)
    else:
        table = _read_csv(path, needed or all_columns[:1], all_columns, delimiter, encoding,
                          [id_col] if id_col else [])
        if ours:
            table = pa.table([restore_array(c) for c in table.columns],
                             names=table.column_names)
    _check_cell_types(table, src)
    n = table.num_rows
    if n == 0:
        raise InputError(f"{src}: the pool is empty (no data rows)")

    if id_col:
        ids = _trim(table.column(id_col))
        empty = pc.or_kleene(pc.is_null(ids), pc.equal(ids, ""))
        rows, count = _first_rows(pc.fill_null(empty, True), numbers)
        if count:
            problems.append(f"{src}, column {id_col}: empty id in {_rows_text(rows, count)}")
        ids = pc.fill_null(ids, "").combine_chunks()
        if pc.any(pc.match_substring_regex(ids, "[\t\r\n]")).as_py():  # one pass if clean
            multiline = pc.match_substring_regex(ids, "[\r\n]")
            rows, count = _first_rows(multiline, numbers)
            if count:
                problems.append(f"{src}, column {id_col}: id spanning several lines in "
                                f"{_rows_text(rows, count)} (an unclosed quote?)")
            rows, count = _first_rows(pc.match_substring(ids, "\t"), numbers)
            if count:  # tabs separate fields in the pool fingerprint's encoding
                problems.append(f"{src}, column {id_col}: tab character in the id in "
                                f"{_rows_text(rows, count)}")
        dup_values = [v for v in _duplicated(ids) if v]
        if dup_values:
            examples = []
            for v in dup_values[:MAX_EXAMPLES]:
                where = np.flatnonzero(pc.equal(ids, v).to_numpy(zero_copy_only=False))
                shown = ", ".join(str(r) for r in _shown(where[:4], numbers))
                examples.append(f"{v!r} (rows {shown})")
            more = f" and {len(dup_values) - MAX_EXAMPLES} more" \
                if len(dup_values) > MAX_EXAMPLES else ""
            problems.append(f"{src}, column {id_col}: {len(dup_values)} duplicated id(s): "
                            f"{'; '.join(examples)}{more}")
    else:
        ids = pc.cast(pa.array(np.arange(1, n + 1, dtype=np.int64)), pa.string())

    values: dict[str, list[str]] = {}
    codes: dict[str, np.ndarray] = {}
    for f in features:
        values[f], codes[f], empty = _encode(table.column(f))
        hits = np.flatnonzero(empty)
        if hits.size:
            rows = _shown(hits[:MAX_EXAMPLES], numbers)
            problems.append(f"{src}, column {f}: empty value in {_rows_text(rows, hits.size)}")
            continue
        broken = [i for i, v in enumerate(values[f]) if "\n" in v or "\r" in v]
        if broken:
            hits = np.flatnonzero(np.isin(codes[f], broken))
            rows = _shown(hits[:MAX_EXAMPLES], numbers)
            problems.append(f"{src}, column {f}: value spanning several lines in "
                            f"{_rows_text(rows, hits.size)} (an unclosed quote?)")
            continue
        tabbed = [i for i, v in enumerate(values[f]) if "\t" in v]
        if tabbed:
            hits = np.flatnonzero(np.isin(codes[f], tabbed))
            rows = _shown(hits[:MAX_EXAMPLES], numbers)
            problems.append(f"{src}, column {f}: tab character in the value in "
                            f"{_rows_text(rows, hits.size)}")
            continue
        if quotas is not None:
            allowed = quotas.values_of(f)
            unknown = [v for v in values[f] if v not in allowed]
            if unknown:
                counts = np.bincount(codes[f], minlength=len(values[f]))
                parts = []
                for v in unknown[:10]:
                    i = values[f].index(v)
                    first = _shown(np.array([np.argmax(codes[f] == i)]), numbers)[0]
                    parts.append(f"{v!r} ({int(counts[i])} rows, first row {first})")
                more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
                problems.append(
                    f"{src}, column {f}: {len(unknown)} value(s) no quota mentions: "
                    f"{', '.join(parts)}{more} (quota values: {', '.join(allowed)}; matching is "
                    "exact and case-sensitive)"
                )
    if problems:
        raise InputError(problems)
    households = None
    if household_column is not None:
        households = _household_numbers(ids, table.column(household_column))
    return Pool(path=path, ids=ids, features=list(features), values=values, codes=codes,
                id_column=id_col, notes=notes, encoding=encoding,
                household_column=household_column, households=households, written_here=ours)


# Words that make a column name contact data (compared without case, accents or separators).
CONTACT_WORDS = frozenset({
    "name", "names", "firstname", "lastname", "fullname", "surname", "givenname", "nom",
    "prenom", "phone", "telephone", "tel", "mobile", "portable", "cellphone", "mail",
    "email", "courriel", "address", "adresse", "street", "rue"})
# Values that look like an e-mail address or a phone number (checked on a sample of ids).
CONTACT_VALUE = (r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
                 r"|^(\+|00)[1-9][0-9 .()\-]{7,}$|^0[1-9]([ .\-]?[0-9]){8}$")
ID_SAMPLE = 1000


def is_contact_name(name: str) -> bool:
    """Whether a column name says contact data: `email`, `E-mail`, `phone_number`, `Prénom`…"""
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFKD", name.casefold())
                    if not unicodedata.combining(c))
    words = [w for w in "".join(c if c.isalnum() else " " for c in plain).split() if w]
    return "".join(words) in CONTACT_WORDS or any(w in CONTACT_WORDS for w in words)


def check_public_ids(pool: Pool, *, id_is_public: bool = False) -> None:
    """Refuse (exit 2) ids that are contact data: they are published (panel.csv, audit.json)
    and reach the garants with every off-panel person. A column named like contact data, or
    whose sampled values mostly look like e-mail addresses or phone numbers, needs the
    operator's explicit `--id-column-is-public`."""
    if id_is_public or pool.id_column is None:
        return
    where = f"{pool.path}, column {pool.id_column}"
    fix = ("ids are published (panel.csv, audit.json); name another id column with "
           "--id-column, or add --id-column-is-public if these ids may be made public")
    if is_contact_name(pool.id_column):
        raise InputError(f"{where}: the id column's name says contact data; {fix}")
    n = len(pool.ids)
    sample = pool.ids.take(pa.array(np.linspace(0, n - 1, min(n, ID_SAMPLE)).astype(np.int64)))
    looks = pc.match_substring_regex(sample, CONTACT_VALUE)
    hits = int(pc.sum(looks).as_py() or 0)
    if hits * 2 > len(sample):
        raise InputError(f"{where}: {hits} of {len(sample)} sampled ids look like e-mail "
                         f"addresses or phone numbers; {fix}")


def _household_numbers(ids: pa.Array, column: pa.ChunkedArray) -> np.ndarray:
    """Opaque numbers 1, 2, …: households ordered by their smallest member id (UTF-8 bytes).

    They reveal nothing of the household column (often an address) and do not depend on the
    file's row order. An empty cell makes the person a household alone.
    """
    values = _trim(column).combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    empty = pc.fill_null(pc.equal(values, ""), True).to_numpy(zero_copy_only=False)
    encoded = pc.dictionary_encode(values)
    codes = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    n = len(ids)
    codes[empty] = len(encoded.dictionary) + np.arange(int(empty.sum()))  # alone
    order = pc.array_sort_indices(ids).to_numpy()
    in_order = codes[order]
    _, first, inverse = np.unique(in_order, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, len(first) + 1)
    numbers = np.empty(n, dtype=np.int64)
    numbers[order] = rank[inverse.ravel()]
    return numbers


def load_recorded_pool(path: str | Path, features: list[str], *, id_column: str | None,
                       household_column: str | None, encoding: str = "utf-8",
                       quotas: Quotas | None = None) -> Pool:
    """A pool as a bundle recorded it: the full file, or its public extract — which calls its
    columns `id` and `household` whatever the full pool's names were."""
    try:
        return load_pool(path, features, id_column=id_column, encoding=encoding, quotas=quotas,
                         household_column=household_column)
    except InputError:
        if id_column in (None, "id") and household_column in (None, "household"):
            raise
        return load_pool(path, features, id_column="id" if id_column else None,
                         encoding=encoding, quotas=quotas,
                         household_column=household_column and "household")


def subset(pool: Pool, rows: np.ndarray) -> Pool:
    """The pool restricted to `rows` (0-based, increasing): e.g. one person per household."""
    rows = np.asarray(rows, dtype=np.int64)
    taken = pa.array(rows)
    codes = {f: c[rows] for f, c in pool.codes.items()}
    values = {}
    for f in pool.features:  # keep only values still present, re-coded, still sorted
        used = np.unique(codes[f])
        values[f] = [pool.values[f][i] for i in used.tolist()]
        remap = np.full(len(pool.values[f]), -1, dtype=np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        codes[f] = remap[codes[f]]
    base = pool.rows if pool.rows is not None else np.arange(len(pool), dtype=np.int64)
    return Pool(path=pool.path, ids=pool.ids.take(taken), features=list(pool.features),
                values=values, codes=codes, id_column=pool.id_column, notes=list(pool.notes),
                encoding=pool.encoding, household_column=pool.household_column,
                households=None if pool.households is None else pool.households[rows],
                rows=base[rows], written_here=pool.written_here)


def read_rows(pool: Pool, rows: np.ndarray) -> pa.Table:
    """Every column of the given rows (0-based, in that order) of the pool's file.

    For the operator's private export only: this is the one place contact columns are read.
    """
    if pool.rows is not None:  # a subset: its rows in the file
        rows = pool.rows[np.asarray(rows, dtype=np.int64)]
    if is_xlsx(pool.path):
        sheet = read_sheet(pool.path)
        table = sheet.table(sheet.header)
        if pool.written_here:
            table = restore_table(table)
    elif _is_parquet(pool.path):
        table = pq.read_table(pool.path)
    else:
        names, delimiter, _ = _csv_header(pool.path, pool.encoding)
        table = _read_csv(pool.path, names, names, delimiter, pool.encoding, names)
        if pool.written_here:  # the values it was written from, to be written again once
            table = restore_table(table)
    return table.take(pa.array(np.asarray(rows, dtype=np.int64)))
