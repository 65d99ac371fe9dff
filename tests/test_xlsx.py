"""Spreadsheets: pools, bases and quota files read from .xlsx with the CSV checks and messages
(naming sheet, row and column); the private export and the call list written as .xlsx."""

from __future__ import annotations

import datetime as dt
import json
import stat
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("python_calamine", reason="the sortition[xlsx] extra is not installed")
openpyxl = pytest.importorskip("openpyxl")

from cli_runner import run  # noqa: E402

import sortition.core.limits as limits  # noqa: E402
from sortition.core.errors import InputError  # noqa: E402
from sortition.core.xlsx import cell_text, column_letter, read_sheet, split_sheet  # noqa: E402
from sortition.inputs.fingerprint import pool_fingerprint  # noqa: E402
from sortition.inputs.pool import load_pool  # noqa: E402
from sortition.inputs.quotas import Quotas, ValueQuota, load_quotas  # noqa: E402
from sortition.inputs.strata import build_strata  # noqa: E402
from sortition.recruitment.invite import check_calls_audit  # noqa: E402

FEATURES = ["gender", "age_band"]
HEADER = ["id", "gender", "age_band"]
ROWS = [["007", "woman", "18-24"], ["2", "man", "25-34"], ["3", "woman", "65+"],
        ["4", "man", "65+"], ["5", "woman", "25-34"]]


def book(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A workbook with these sheets; text cells stay text (openpyxl would make `=…` a formula)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for i, row in enumerate(rows, start=1):
            for j, value in enumerate(row, start=1):
                if value is None:
                    continue
                cell = ws.cell(row=i, column=j, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"
    wb.save(path)
    return path


def pool_book(path: Path, rows=ROWS, header=HEADER, name: str = "Feuil1") -> Path:
    return book(path, {name: [header, *rows]})


def load_error(path: Path | str, features=FEATURES, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        load_pool(path, features, **kwargs)
    assert info.value.exit_code == 2
    for line in info.value.problems:
        assert "\n" not in line
    return str(info.value)


def csv_text(rows, header=HEADER) -> str:
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


# Reading a pool ---------------------------------------------------------------------------------


def test_xlsx_and_csv_with_the_same_content_load_the_same(tmp_path):
    xlsx = pool_book(tmp_path / "pool.xlsx")
    (tmp_path / "pool.csv").write_text(csv_text(ROWS), encoding="utf-8")
    a, b = load_pool(xlsx, FEATURES), load_pool(tmp_path / "pool.csv", FEATURES)
    assert a.ids.to_pylist() == b.ids.to_pylist() == [r[0] for r in ROWS]  # "007" stays
    assert a.values == b.values
    assert all((a.codes[f] == b.codes[f]).all() for f in FEATURES)
    fa = pool_fingerprint(a, build_strata(a, FEATURES))
    fb = pool_fingerprint(b, build_strata(b, FEATURES))
    assert fa.sha256 == fb.sha256


def test_numbers_and_values_are_read_as_written(tmp_path):
    rows = [[7, " woman ", "18-24"], [8.0, "man", 1990], [9, "man", 1990.0]]
    pool = load_pool(pool_book(tmp_path / "p.xlsx", rows), FEATURES)
    assert pool.ids.to_pylist() == ["7", "8", "9"]
    assert pool.values == {"gender": ["man", "woman"], "age_band": ["18-24", "1990"]}


@pytest.mark.parametrize(("value", "text"), [
    ("x", "x"), (7, "7"), (7.0, "7"), (-3.0, "-3"), (7.5, "7.5"), (0.1, "0.1"), (True, "TRUE"),
    (False, "FALSE"), (dt.date(2020, 1, 2), "2020-01-02"),
    (dt.datetime(2020, 1, 2, 3, 4, 5), "2020-01-02T03:04:05"), (dt.time(3, 4), "03:04:00"),
    (dt.timedelta(hours=5), None), (2.0 ** 60, None), (float("nan"), None),
])
def test_cell_text_rules(value, text):
    assert cell_text(value) == text


def test_types_in_a_sheet_become_text(tmp_path):
    path = book(tmp_path / "t.xlsx", {"S": [
        ["id", "when", "flag", "at"],
        ["1", dt.date(2020, 1, 2), True, dt.time(9, 30)],
    ]})
    sheet = read_sheet(path)
    assert sheet.columns == [["1"], ["2020-01-02"], ["TRUE"], ["09:30:00"]]


def test_a_sheet_by_name_and_the_first_sheet_by_default(tmp_path):
    path = book(tmp_path / "p.xlsx", {"Notes": [["id", "gender", "age_band"], ["x", "a", "b"]],
                                      "Pool 2024": [HEADER, *ROWS]})
    assert load_pool(path, FEATURES).ids.to_pylist() == ["x"]
    pool = load_pool(f"{path}#Pool 2024", FEATURES)
    assert pool.ids.to_pylist() == [r[0] for r in ROWS]
    assert split_sheet(f"{path}#Pool 2024") == (path, "Pool 2024")
    assert split_sheet(tmp_path / "a#b.csv") == (tmp_path / "a#b.csv", None)


def test_blank_rows_are_skipped_and_rows_are_the_sheets_own(tmp_path):
    rows = [ROWS[0], [], [None, None, None], ["2", "", "25-34"], ROWS[2], [], []]
    message = load_error(pool_book(tmp_path / "pool.xlsx", rows))
    assert "pool.xlsx, sheet Feuil1, column gender: empty value in 1 row (row 5)" in message


def test_trailing_unnamed_empty_columns_are_ignored(tmp_path):
    path = pool_book(tmp_path / "p.xlsx", [[*r, None, None] for r in ROWS],
                     header=[*HEADER, None, None])
    assert read_sheet(path).header == HEADER


# Error paths, as for CSV: each exit 2, one line naming the file, sheet, row and column.

ERRORS = [
    ("missing column", [["id", "gender"], ["1", "woman"]], {},
     ["p.xlsx, sheet Feuil1: feature column(s) 'age_band' not found"]),
    ("empty value", [HEADER, ["1", "woman", "18-24"], ["2", "man", None]], {},
     ["sheet Feuil1, column age_band: empty value in 1 row (row 3)"]),
    ("empty id", [HEADER, ["1", "woman", "18-24"], [None, "man", "65+"]], {},
     ["sheet Feuil1, column id: empty id in 1 row (row 3)"]),
    ("duplicate id", [HEADER, ["1", "woman", "18-24"], ["2", "man", "65+"], [1, "man", "65+"]],
     {}, ["sheet Feuil1, column id: 1 duplicated id(s): '1' (rows 2, 4)"]),
    ("unknown value", [HEADER, ["1", "woman", "18-24"], ["2", "Man", "65+"]],
     {"quotas": Quotas(values=[ValueQuota("gender", v, 0, 2) for v in ("woman", "man")])},
     ["sheet Feuil1, column gender: 1 value(s) no quota mentions: 'Man' (1 rows, first row 3)"]),
    ("duplicated header", [["id", "gender", "gender", "age_band"], ["1", "a", "b", "c"]], {},
     ["sheet Feuil1, header: duplicated column name(s) gender"]),
    ("value under a blank header", [["id", "gender", None, "age_band"], ["1", "a", "x", "c"]],
     {}, ["sheet Feuil1, column C: empty column name in row 1, yet 1 value(s) below it "
          "(row(s) 2)"]),
    ("value beyond the header", [HEADER, ["1", "a", "b"], ["2", "a", "b", "stray"]], {},
     ["sheet Feuil1, column D: empty column name"]),
    ("empty header row", [[None], ["1", "a", "b"]], {},
     ["sheet Feuil1, row 1: empty (expected the header row"]),
    ("a duration", [HEADER, ["1", "woman", dt.timedelta(hours=3)]], {},
     ["sheet Feuil1, row 2, column C: a duration (3:00:00), not text"]),
    ("a number beyond exact digits", [HEADER, [2 ** 60, "woman", "18-24"]], {},
     ["sheet Feuil1, row 2, column A: the number", "format the column as text"]),
    ("header only", [["id", "gender", "age_band"]], {},
     ["the pool is empty (no data rows)"]),
    ("a tab in an id", [HEADER, ["a\tb", "woman", "18-24"]], {},
     ["column id: tab character in the id in 1 row (row 2)"]),
]


@pytest.mark.parametrize(("rows", "kwargs", "culprits"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors_name_the_sheet_row_and_column(tmp_path, rows, kwargs, culprits):
    path = book(tmp_path / "p.xlsx", {"Feuil1": rows})
    message = load_error(path, **kwargs)
    for culprit in culprits:
        assert culprit in message


def test_unknown_sheet_corrupt_and_missing_files(tmp_path):
    path = pool_book(tmp_path / "p.xlsx")
    assert "p.xlsx: no sheet named 'Nope' (sheets: 'Feuil1')" in load_error(f"{path}#Nope")
    (tmp_path / "bad.xlsx").write_bytes(b"id,gender\n1,woman\n")
    assert "bad.xlsx: not a readable .xlsx file" in load_error(tmp_path / "bad.xlsx")
    with zipfile.ZipFile(tmp_path / "empty.xlsx", "w") as z:
        z.writestr("hello.txt", "not a workbook")
    assert "empty.xlsx: not a readable .xlsx file" in load_error(tmp_path / "empty.xlsx")
    truncated = tmp_path / "cut.xlsx"
    truncated.write_bytes(path.read_bytes()[:300])
    assert "cut.xlsx: not a readable .xlsx file" in load_error(truncated)
    assert "nothing.xlsx: pool file not found" in load_error(tmp_path / "nothing.xlsx#S")


def test_caps_on_the_file_its_unpacked_size_and_its_cells(tmp_path, monkeypatch):
    path = pool_book(tmp_path / "p.xlsx")
    size = path.stat().st_size
    monkeypatch.setattr(limits, "MAX_XLSX_BYTES", limits.Cap(size - 1, "test"))
    assert f"p.xlsx: {size:,} bytes, at most {size - 1:,} for a .xlsx file" in load_error(path)
    monkeypatch.setattr(limits, "MAX_XLSX_BYTES", limits.Cap(1 << 30, "test"))
    monkeypatch.setattr(limits, "MAX_XLSX_UNZIPPED", limits.Cap(1000, "test"))
    assert "p.xlsx: unpacks to" in load_error(path)
    monkeypatch.setattr(limits, "MAX_XLSX_UNZIPPED", limits.Cap(1 << 30, "test"))
    monkeypatch.setattr(limits, "MAX_XLSX_CELLS", limits.Cap(17, "test"))
    assert "p.xlsx, sheet Feuil1: 6 rows × 3 columns, at most 17 cells" in load_error(path)


def test_without_the_extra_a_spreadsheet_is_refused_clearly(tmp_path, monkeypatch):
    path = pool_book(tmp_path / "p.xlsx")
    monkeypatch.setitem(sys.modules, "python_calamine", None)  # import fails
    assert "install sortition[xlsx]" in load_error(path)
    code, output = run("check", path, "-q", quotas_book(tmp_path / "q.xlsx"), "-k", "2")
    assert code == 2 and "install sortition[xlsx]" in output


def test_errors_through_the_command_line(tmp_path):
    path = book(tmp_path / "p.xlsx", {"Feuil1": [HEADER, ["1", "woman", "18-24"],
                                                 ["2", None, "65+"]]})
    code, output = run("check", path, "-q", quotas_book(tmp_path / "q.xlsx"), "-k", "2")
    assert code == 2
    assert "p.xlsx, sheet Feuil1, column gender: empty value in 1 row (row 3)" in output
    code, output = run("check", f"{path}#Other", "-q", tmp_path / "q.xlsx", "-k", "2")
    assert code == 2 and "no sheet named 'Other'" in output


# Quotas ----------------------------------------------------------------------------------------


def quotas_book(path: Path, rows=None, name: str = "Quotas") -> Path:
    rows = rows if rows is not None else [["gender", "woman", 1, 3], ["gender", "man", 1, 3]]
    return book(path, {name: [["feature", "value", "min", "max"], *rows]})


def test_quotas_from_xlsx_match_csv(tmp_path):
    (tmp_path / "q.csv").write_text("feature,value,min,max\ngender,woman,1,3\n"
                                    "gender,man,1,3\n", encoding="utf-8")
    a = load_quotas(quotas_book(tmp_path / "q.xlsx", [["gender", "woman", 1.0, "3"], [],
                                                      ["gender", "man", 1, 3]]), 4)
    b = load_quotas(tmp_path / "q.csv", 4)
    assert a.values == b.values and a.size == b.size == 4
    book(tmp_path / "two.xlsx", {"Notes": [["x"]], "Q": [["category", "name", "min", "max"],
                                                         ["gender", "woman", 0, 2]]})
    assert load_quotas(f"{tmp_path / 'two.xlsx'}#Q", 2).values == [
        ValueQuota("gender", "woman", 0, 2)]


@pytest.mark.parametrize(("row", "culprits"), [
    (["gender", "woman", 5, 2], ["sheet Quotas, row 2: min 5 > max 2 for gender=woman"]),
    (["gender", "woman", 1.5, 2], ["sheet Quotas, row 2, column min: '1.5' is not a whole"]),
    (["gender", "woman", -1, 2], ["sheet Quotas, row 2, column min: '-1' is negative"]),
    (["gender", None, 1, 2], ["sheet Quotas, row 2, column value: empty value"]),
    (["gender", "woman", 1, None], ["sheet Quotas, row 2, column max: '' is not a whole"]),
    (["gender", "man", 1, 2], ["sheet Quotas, row 3: duplicated quota gender=man (first on "
                               "row 2)"]),
])
def test_quota_errors_name_the_sheet_and_row(tmp_path, row, culprits):
    path = quotas_book(tmp_path / "q.xlsx", [row, ["gender", "man", 1, 2]])
    with pytest.raises(InputError) as info:
        load_quotas(path, 4)
    for culprit in culprits:
        assert culprit in str(info.value)


@pytest.mark.parametrize(("row", "culprits"), [
    (["gender", "woman", 1, 2, 0, 4], []),
    (["gender", "woman", 1, 2, 2, 3], ["sheet Quotas, row 2: gender=woman: min_flex 2 is above "
                                       "min 1"]),
    (["gender", "woman", 1, 2, 0, 1], ["sheet Quotas, row 2: gender=woman: max_flex 1 is below "
                                       "max 2"]),
    (["gender", "woman", 1, 2, 0, 9], ["sheet Quotas, row 2: gender=woman: max_flex 9 is above "
                                       "the panel size 4"]),
    (["gender", "woman", 1, 2, 0.5, 3], ["sheet Quotas, row 2, column min_flex: '0.5' is not "
                                         "a whole"]),
    (["gender", "woman", 1, 2, None, 3], ["sheet Quotas, row 2, column min_flex: '' is not a "
                                          "whole"]),
])
def test_quota_sheet_flex_columns(tmp_path, row, culprits):
    path = book(tmp_path / "q.xlsx", {"Quotas": [
        ["feature", "value", "min", "max", "min_flex", "max_flex"], row,
        ["gender", "man", 1, 2, 1, 2]]})
    if not culprits:
        q = load_quotas(path, 4)
        assert [(v.min_flex, v.max_flex) for v in q.values] == [(0, 4), (1, 2)]
        return
    with pytest.raises(InputError) as info:
        load_quotas(path, 4)
    for culprit in culprits:
        assert culprit in str(info.value)


def test_quota_sheet_header_and_sheet_errors(tmp_path):
    path = book(tmp_path / "q.xlsx", {"Q": [["feature", "value", "lo", "hi"], ["g", "w", 1, 2]]})
    with pytest.raises(InputError, match=r"q.xlsx, sheet Q, row 1: unrecognised quota header"):
        load_quotas(path, 4)
    with pytest.raises(InputError, match="no sheet named 'Nope'"):
        load_quotas(f"{path}#Nope", 4)
    with pytest.raises(InputError, match="header but no quota rows"):
        load_quotas(book(tmp_path / "h.xlsx", {"Q": [["feature", "value", "min", "max"]]}), 4)


# Writing: the private export and the call list --------------------------------------------------

FORMULA = '=HYPERLINK("http://x","y")'


def contact_pool(path: Path) -> Path:
    rows = [[FORMULA, "woman", "18-24", "+33 6 12 34 56 78", "'quoted"]]
    rows += [[f"p{i}", "woman" if i % 2 else "man", "65+", f"0{i}", "-"] for i in range(1, 12)]
    return book(path, {"Feuil1": [[*HEADER, "phone", "note"], *rows]})


def cells_of(path: Path) -> list[list[str]]:
    sheet = read_sheet(path)
    return [sheet.header, *(list(r) for r in zip(*sheet.columns, strict=True))]


def assert_all_inline_text(path: Path) -> None:
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>" not in xml and "<f " not in xml and "<v>" not in xml
    assert xml.count("<c ") == xml.count('t="inlineStr"') > 0


def test_private_export_as_xlsx(tmp_path):
    pool = contact_pool(tmp_path / "pool.xlsx")
    q = quotas_book(tmp_path / "q.xlsx", [["gender", "woman", 5, 7], ["gender", "man", 5, 7]])
    private = tmp_path / "private.xlsx"
    code, output = run("draw", pool, "-q", q, "-k", "12", "--seed", "s", "-o", tmp_path / "b",
                       "--private-out", private)
    assert code == 0, output
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert_all_inline_text(private)
    cells = cells_of(private)
    assert cells[0] == [*HEADER, "phone", "note", "draw_order"]
    by_id = {r[0]: r for r in cells[1:]}
    assert len(by_id) == 12
    # the one cell rule, as in CSV: a formula-looking cell gets a leading "'"
    assert by_id["'" + FORMULA][1:5] == ["woman", "18-24", "'+33 6 12 34 56 78", "''quoted"]
    assert by_id["p1"][4] == "'-"
    again = tmp_path / "again.xlsx"
    code, _ = run("draw", pool, "-q", q, "-k", "12", "--seed", "s", "-o", tmp_path / "b2",
                  "--private-out", again)
    assert code == 0 and again.read_bytes() == private.read_bytes()  # deterministic bytes
    code, output = run("draw", pool, "-q", q, "-k", "12", "--seed", "s", "-o", tmp_path / "b3",
                       "--private-out", private)
    assert code == 2 and "already exists (use --force" in output


def test_call_list_as_xlsx_round_trips(tmp_path):
    base = contact_pool(tmp_path / "base.xlsx")
    calls = tmp_path / "calls.xlsx"
    code, output = run("invite", f"{base}#Feuil1", "--size", "12", "--seed", "s", "-o", calls)
    assert code == 0, output
    assert stat.S_IMODE(calls.stat().st_mode) == 0o600
    assert_all_inline_text(calls)
    audit = tmp_path / "calls.audit.json"
    assert json.loads(audit.read_text())["calls_file"] == "calls.xlsx"
    assert check_calls_audit(audit) == []
    assert check_calls_audit(audit, Path(f"{base}#Feuil1")) == []
    # read back as a pool this tool wrote: the cell rule is undone exactly
    pool = load_pool(calls, ["gender"], id_column="id")
    assert FORMULA in pool.ids.to_pylist()
    (tmp_path / "answers.csv").write_text("id,answer\n" + "".join(
        f"p{i},yes\n" for i in range(1, 6)), encoding="utf-8")
    code, output = run("respondents", calls, "--answers", tmp_path / "answers.csv", "-o",
                       tmp_path / "resp.parquet")
    assert code == 0, output
    import pyarrow.parquet as pq

    resp = pq.read_table(tmp_path / "resp.parquet").to_pylist()
    assert {r["id"]: r["note"] for r in resp}["p1"] == "-"  # restored, not "'-"


def test_outputs_never_replace_the_spreadsheet_read(tmp_path):
    base = contact_pool(tmp_path / "base.xlsx")
    before = base.read_bytes()
    code, output = run("invite", f"{base}#Feuil1", "--size", "3", "--seed", "s", "-o", base,
                       "--force")
    assert code == 2 and "is the input" in output
    assert base.read_bytes() == before


def test_a_control_character_xml_cannot_hold_is_refused(tmp_path):
    (tmp_path / "base.csv").write_text("id,gender,note\na,woman,x\x01y\nb,man,z\n",
                                       encoding="utf-8")
    calls = tmp_path / "calls.xlsx"
    code, output = run("invite", tmp_path / "base.csv", "--size", "2", "--seed", "s", "-o",
                       calls)
    assert code == 2 and "column 'note'" in output and "U+0001" in output
    assert not calls.exists() and not (tmp_path / "calls.audit.json").exists()


def test_column_letters():
    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


TRICKY = ["=1+1", "+cmd", "-", "@x", "\tx", "\rx", "'", "''x", "a\r\nb", " lead", "trail ",
          'x<&>"y', "é€😀", "_x000D_", "a_x0041_b", "_x005F_x0041_", "_x0041__x0042_", "7",
          "007", "TRUE", "2020-01-02"]


def test_written_cells_read_back_exactly(tmp_path):
    import pyarrow as pa

    from sortition.core.fileio import restore
    from sortition.core.xlsx import write_xlsx_table

    path = tmp_path / "t.xlsx"
    write_xlsx_table(pa.table({"=v": TRICKY, "n": list(range(-3, len(TRICKY) - 3))}), path)
    assert_all_inline_text(path)
    sheet = read_sheet(path)
    assert [restore(c) for c in sheet.header] == ["=v", "n"]
    assert [restore(c) for c in sheet.columns[0]] == TRICKY
    assert sheet.columns[1] == [str(i) for i in range(-3, len(TRICKY) - 3)]
