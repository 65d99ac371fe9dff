"""The command line: help texts, `quotas` and `check`, exit statuses and error messages."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq
import pytest
from cli_runner import invoke

ROOT = Path(__file__).resolve().parents[1]
OCCITANIE_SPEC = ROOT / "quotas" / "occitanie-2020.toml"
COMMANDS = ["synth", "quotas", "check", "demo"]


def flat(text: str) -> str:
    """The text with box-drawing borders removed and whitespace collapsed."""
    kept = "".join(" " if 0x2500 <= ord(c) <= 0x257F else c for c in text)
    return " ".join(kept.split())


def stderr_of(result) -> str:
    try:
        return result.stderr
    except (ValueError, AttributeError):
        return result.output


def assert_clean_exit(result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------
# Help


def test_top_level_help_lists_the_commands():
    result = invoke(*["--help"])
    assert_clean_exit(result, 0)
    for command in COMMANDS:
        assert command in result.output
    assert "Exit status" in flat(result.output)


def test_no_arguments_shows_help():
    result = invoke(*[])
    assert "Usage" in result.output
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    result = invoke(*[command, "--help"])
    assert_clean_exit(result, 0)
    text = flat(result.output)
    assert "Usage" in text
    assert f"sortition {command}" in text
    assert "Example" in text


def test_check_help_mentions_case_sensitive_matching():
    text = flat(invoke(*["check", "--help"]).output)
    assert "case-sensitive" in text
    assert "'Woman' and 'woman' are different values" in text
    for option in ("--quotas", "--size", "--id-column", "--encoding", "--json", "--report"):
        assert option in text


def test_version():
    result = invoke(*["--version"])
    assert_clean_exit(result, 0)
    assert "sortition" in result.output


# ---------------------------------------------------------------------------
# quotas


def test_quotas_writes_csv(tmp_path):
    out = tmp_path / "OUT.csv"
    result = invoke(*["quotas", str(OCCITANIE_SPEC), "--size", "100", "--out", str(out)])
    assert_clean_exit(result, 0)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "feature,value,min,max"
    assert len(lines) == 1 + 2 + 5 + 13 + 2 + 4
    assert "gender,woman,50,50" in lines
    assert "department,34 Hérault,19,21" in lines
    text = flat(result.output)
    assert "population share" in text
    assert "Quotas for a panel of 100" in text
    assert "31 Haute-Garonne" in text


def test_quotas_size_changes_the_bounds(tmp_path):
    out = tmp_path / "q60.csv"
    result = invoke(*["quotas", str(OCCITANIE_SPEC), "-k", "60", "-o", str(out)])
    assert_clean_exit(result, 0)
    assert "gender,woman,30,30" in out.read_text(encoding="utf-8").splitlines()
    assert "Quotas for a panel of 60" in flat(result.output)


def test_quotas_writes_toml(tmp_path):
    out = tmp_path / "resolved.toml"
    result = invoke(*["quotas", str(OCCITANIE_SPEC), "--out", str(out)])
    assert_clean_exit(result, 0)
    again = invoke(*["quotas", str(out), "--json"])
    assert_clean_exit(again, 0)
    data = json.loads(again.stdout)
    assert data["size"] == 100
    assert {"feature": "gender", "value": "woman", "min": 50, "max": 50}.items() \
        <= data["quotas"][0].items()


def test_quotas_json():
    result = invoke(*["quotas", str(OCCITANIE_SPEC), "--size", "150", "--json"])
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert data["size"] == 150
    assert data["cross"] == []
    for feature in ("gender", "age_band", "department", "area", "diploma"):
        rows = [q for q in data["quotas"] if q["feature"] == feature]
        assert sum(q["target"] for q in rows) == 150


CROSS_SPEC = """\
size = 10
[features.gender]
shares = { woman = 0.5, man = 0.5 }
[features.age_band]
shares = { young = 0.4, old = 0.6 }
tolerance = 1
[[cross]]
features = ["gender", "age_band"]
tolerance = 1
[cross.shares]
woman = { young = 0.2, old = 0.3 }
man = { young = 0.2, old = 0.3 }
"""


def test_quotas_with_cross_quotas_refuses_csv(tmp_path):
    spec = tmp_path / "cross.toml"
    spec.write_text(CROSS_SPEC, encoding="utf-8")
    out = tmp_path / "x.csv"
    result = invoke(*["quotas", str(spec), "--out", str(out)])
    assert_clean_exit(result, 2)
    assert not out.exists()
    assert ".toml" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cross.toml"]
    # the same spec is fine with a .toml output
    good = tmp_path / "x.toml"
    assert_clean_exit(invoke(*["quotas", str(spec), "--out", str(good)]), 0)
    assert "[[cross]]" in good.read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "text", "culprits"), [
    ("bad.csv", "feature,value,min,max\ngender,woman,5,2\n", ["line 2", "min 5 > max 2"]),
    ("bad.csv", "feature,value,min,max\ngender,woman,-1,2\n", ["line 2", "'-1'"]),
    ("bad.csv", "who,what,min,max\ngender,woman,1,2\n", ["line 1", "who,what,min,max"]),
    ("bad.toml", "size = 10\n[features.gender]\nshares = { woman = 0.5, man = 0.6 }\n",
     ["features.gender.shares", "1.1"]),
    ("bad.toml", "size = 10\nsizes = 3\n", ["'sizes'"]),
    ("bad.toml", "size = [\n", ["not valid TOML"]),
    ("bad.csv", "feature,value,min,max\ngender,woman,0,inf\n", ["line 2", "'inf'"]),
])
def test_quotas_bad_file(tmp_path, name, text, culprits):
    spec = tmp_path / name
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "out.csv"
    result = invoke(*["quotas", str(spec), "--size", "10", "--out", str(out)])
    assert_clean_exit(result, 2)
    assert not out.exists()
    assert str(spec) in result.output
    for culprit in culprits:
        assert culprit in result.output
    assert "error" in stderr_of(result)


def test_quotas_error_shows_bracketed_text_verbatim(tmp_path):
    spec = tmp_path / "quotas[red].csv"
    spec.write_text("feature,value,min,max\ngender,[b]woman,5,2\n", encoding="utf-8")
    result = invoke(*["quotas", str(spec), "--size", "10"])
    assert_clean_exit(result, 2)
    assert str(spec) in result.output
    assert "gender=[b]woman" in result.output


def test_quotas_missing_file_and_missing_size(tmp_path):
    result = invoke(*["quotas", str(tmp_path / "nowhere.toml")])
    assert_clean_exit(result, 2)
    assert "nowhere.toml" in result.output
    csv_quotas = tmp_path / "q.csv"
    csv_quotas.write_text("feature,value,min,max\ngender,woman,1,2\n", encoding="utf-8")
    result = invoke(*["quotas", str(csv_quotas)])
    assert_clean_exit(result, 2)
    assert "--size" in result.output


# ---------------------------------------------------------------------------
# check


@pytest.fixture
def check_ready():
    """The check command needs sortition.lottery.check and its display tables."""
    pytest.importorskip("sortition.lottery.check")
    display = pytest.importorskip("sortition.operations.display")
    if not hasattr(display, "check_tables"):
        pytest.skip("sortition.operations.display.check_tables is not available yet")


QUOTAS_CSV = """\
feature,value,min,max
gender,woman,2,3
gender,man,2,3
age_band,young,1,3
age_band,old,1,3
"""

POOL_ROWS = [
    ("p1", "woman", "young"),
    ("p2", "woman", "old"),
    ("p3", "woman", "old"),
    ("p4", "man", "young"),
    ("p5", "man", "old"),
    ("p6", "man", "young"),
]


def make_case(tmp_path: Path, rows=POOL_ROWS, quotas: str = QUOTAS_CSV,
              header: str = "id,gender,age_band,phone") -> tuple[Path, Path]:
    pool = tmp_path / "pool.csv"
    lines = [header] + [",".join((*r, f"06{i:08d}")) for i, r in enumerate(rows)]
    pool.write_text("\n".join(lines) + "\n", encoding="utf-8")
    q = tmp_path / "quotas.csv"
    q.write_text(quotas, encoding="utf-8")
    return pool, q


def run_check(pool: Path, quotas: Path, *extra: str):
    return invoke(*["check", str(pool), "--quotas", str(quotas), "--size", "4",
                               "--time-limit", "20", *extra])


def test_check_feasible(tmp_path, check_ready):
    pool, q = make_case(tmp_path)
    report = tmp_path / "report.json"
    result = run_check(pool, q, "--report", str(report))
    assert_clean_exit(result, 0)
    assert "feasible" in flat(result.output)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["feasible"] is True
    assert data["people"] == 6


def test_check_json(tmp_path, check_ready):
    pool, q = make_case(tmp_path)
    result = run_check(pool, q, "--json")
    assert_clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    assert data["feasible"] is True
    assert data["size"] == 4
    assert "0600000000" not in result.output  # contact columns never reach the output


def test_check_parquet_pool(tmp_path, check_ready):
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"id": list(range(len(POOL_ROWS))),
                             "gender": [r[1] for r in POOL_ROWS],
                             "age_band": [r[2] for r in POOL_ROWS]}), path)
    _, q = make_case(tmp_path)
    assert_clean_exit(run_check(path, q, "--json"), 0)


def test_check_infeasible(tmp_path, check_ready):
    quotas = QUOTAS_CSV.replace("age_band,young,1,3", "age_band,young,1,3\nage_band,middle,1,2")
    pool, q = make_case(tmp_path, quotas=quotas)
    report = tmp_path / "report.json"
    result = run_check(pool, q, "--report", str(report))
    assert_clean_exit(result, 1)
    text = flat(result.output)
    assert "middle" in text
    assert "short" in text
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["feasible"] is False
    assert any(s["value"] == "middle" for s in data["shortfalls"])


def test_check_infeasible_json(tmp_path, check_ready):
    quotas = QUOTAS_CSV.replace("gender,woman,2,3", "gender,woman,4,4")
    pool, q = make_case(tmp_path, quotas=quotas)
    result = run_check(pool, q, "--json")
    assert_clean_exit(result, 1)
    data = json.loads(result.stdout)
    assert data["feasible"] is False
    assert any("woman" in r for r in data["reasons"])


def _bad_pool(tmp_path: Path, kind: str) -> tuple[Path, list[str], list[str]]:
    """A pool with one kind of problem, the culprits its message must name, extra options."""
    pool, _ = make_case(tmp_path)
    if kind == "missing file":
        pool = tmp_path / "nowhere.csv"
        return pool, ["nowhere.csv", "not found"], []
    if kind == "folder":
        pool = tmp_path / "folder.parquet"
        pool.mkdir()
        return pool, ["folder.parquet", "folder"], []
    if kind == "corrupt parquet":
        pool = tmp_path / "pool.parquet"
        pool.write_bytes(random.Random(5).randbytes(2000))
        return pool, ["pool.parquet", "Parquet"], []
    if kind == "ragged rows":
        pool.write_text("id,gender,age_band\np1,woman,old\np2,man\np3,man,old,x\n",
                        encoding="utf-8")
        return pool, ["lines 3, 4"], []
    if kind == "empty file":
        pool.write_text("", encoding="utf-8")
        return pool, ["empty"], []
    if kind == "missing column":
        pool.write_text("id,gender\np1,woman\n", encoding="utf-8")
        return pool, ["'age_band'"], []
    if kind == "empty pool":
        pool.write_text("id,gender,age_band\n", encoding="utf-8")
        return pool, ["empty"], []
    if kind == "duplicate ids":
        make_case(tmp_path, rows=[*POOL_ROWS, ("p2", "man", "old")])
        return pool, ["'p2' (rows 2, 7)"], []
    if kind == "empty values":
        make_case(tmp_path, rows=[*POOL_ROWS, ("p7", "", "old")])
        return pool, ["column gender", "row 7"], []
    if kind == "unknown values":
        make_case(tmp_path, rows=[*POOL_ROWS, ("p7", "Woman", "old"), ("p8", "other", "old")])
        return pool, ["column gender", "'Woman'", "'other'"], []
    if kind == "cp1252":
        pool.write_bytes("id,gender,age_band\np1,femme âgée,old\n".encode("cp1252"))
        return pool, ["--encoding cp1252"], []
    if kind == "missing id column":
        return pool, ["'pid'"], ["--id-column", "pid"]
    if kind == "several problems":
        make_case(tmp_path, rows=[*POOL_ROWS, ("p1", "", "old")])
        return pool, ["'p1' (rows 1, 7)", "column gender", "row 7"], []
    raise AssertionError(kind)


BAD_POOLS = ["missing file", "folder", "corrupt parquet", "ragged rows", "empty file",
             "missing column", "empty pool", "duplicate ids", "empty values", "unknown values",
             "cp1252", "missing id column", "several problems"]


@pytest.mark.parametrize("kind", BAD_POOLS)
def test_check_bad_pool(tmp_path, check_ready, kind):
    pool, culprits, extra = _bad_pool(tmp_path, kind)
    q = tmp_path / "quotas.csv"
    report = tmp_path / "report.json"
    result = run_check(pool, q, "--report", str(report), *extra)
    assert_clean_exit(result, 2)
    assert str(pool) in result.output
    for culprit in culprits:
        assert culprit in result.output
    assert "error" in stderr_of(result)
    assert not report.exists()


@pytest.mark.parametrize("kind", ["duplicate ids", "unknown values"])
def test_check_bad_pool_json(tmp_path, check_ready, kind):
    pool, culprits, extra = _bad_pool(tmp_path, kind)
    result = run_check(pool, tmp_path / "quotas.csv", "--json", *extra)
    assert_clean_exit(result, 2)
    assert result.stdout.strip() == ""
    for culprit in culprits:
        assert culprit in result.output


def test_check_bad_quotas(tmp_path, check_ready):
    pool, q = make_case(tmp_path, quotas="feature,value,min,max\ngender,woman,3,1\n")
    report = tmp_path / "report.json"
    result = run_check(pool, q, "--report", str(report))
    assert_clean_exit(result, 2)
    assert str(q) in result.output and "min 3 > max 1" in result.output
    assert not report.exists()


def test_check_needs_a_size_with_csv_quotas(tmp_path, check_ready):
    pool, q = make_case(tmp_path)
    result = invoke(*["check", str(pool), "--quotas", str(q)])
    assert_clean_exit(result, 2)
    assert "--size" in result.output


# ---------------------------------------------------------------------------
# demo


def test_demo_runs_end_to_end_and_compares_with_legacy(tmp_path):
    out_dir = tmp_path / "demo"
    result = invoke(*["demo", "--rows", "20000", "--out", str(out_dir)])
    assert_clean_exit(result, 0)
    text = flat(result.output)
    assert "feasible" in text
    assert "LEXIMIN every person between" in text
    assert "certified gap" in text
    assert "legacy estimated from 1,000 seeded runs" in text
    assert "replaced from the lists" in text
    assert "verified:" in text and "back to the contact base" in text
    probs = pa.csv.read_csv(out_dir / "probabilities.csv")
    pool_ids = pq.read_table(out_dir / "respondents.parquet", columns=["id"]).column("id")
    assert probs.column_names == ["id", "probability"]
    assert probs.num_rows == len(pool_ids)
    for name in ("calls.parquet", "calls.audit.json", "respondents.audit.json", "answers.csv",
                 "declined.txt", "bundle/report.html", "replacements.csv",
                 "bundle-2/audit.json", "public-pool.parquet", "panel-contacts.csv"):
        assert (out_dir / name).exists(), name
    assert not (out_dir / "bundle" / "replacements.csv").exists()  # not public
    assert sorted(pool_ids.to_pylist()) == probs.column("id").cast(pa.string()).to_pylist()
    assert abs(sum(probs.column("probability").to_pylist()) - 100) < 1e-6
    first = (out_dir / "bundle" / "panel.csv").read_bytes()
    again = invoke(*["demo", "--rows", "20000", "--out", str(out_dir)])
    assert_clean_exit(again, 0)  # its own folder (manifest): replaced, same bytes
    assert (out_dir / "bundle" / "panel.csv").read_bytes() == first
    (out_dir / "notes.txt").write_text("mine\n", encoding="utf-8")
    refused = invoke(*["demo", "--rows", "20000", "--out", str(out_dir)])
    assert refused.exit_code == 2 and "notes.txt" in flat(refused.output)
    assert (out_dir / "notes.txt").read_text(encoding="utf-8") == "mine\n"


def test_demo_fairness_comparison_counts_people():
    import tempfile

    from sortition.operations.demo import DEMO_SIZE, fairness_comparison, run_demo

    with tempfile.TemporaryDirectory() as d:
        result = run_demo(Path(d), rows=8000, seed=7)
    cmp = fairness_comparison(result)
    people = int(result.strata.counts.sum())
    assert 0 <= cmp["legacy_people_below_leximin_min"] <= people
    assert cmp["leximin_people_at_min"] >= 1
    assert cmp["leximin_min"] <= DEMO_SIZE / people + 1e-12  # nobody beats the average at the min
    assert cmp["gap"] <= 1e-6
