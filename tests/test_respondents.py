"""The respondent pool (`sortition respondents`): who is kept, the answers file's rules and
messages (one line per problem naming the file, row and column; exit 2, nothing written), exit
1 when nobody said yes, households, and the audit that links the pool to the call list and the
answers (`check_respondents_audit`)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_runner import invoke, run
from conftest import moved_household, write_answers

from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.recruitment.invite import check_calls_audit, ids_sha256
from sortition.recruitment.respondents import check_respondents_audit

SEED = "Loto 2026-03-04: 5 12 19 33 41 / 2"


def call_list(contact_base: Path, out: Path, size: int, *extra: object) -> Path:
    code, text = run("invite", contact_base, "--size", size, "--seed", SEED, "--out", out,
                     *extra)
    assert code == 0, text
    return out


def flat(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def stage(contact_base, tmp_path) -> dict[str, Path]:
    calls = call_list(contact_base, tmp_path / "calls.parquet", 200, "--by", "gender", "--by",
                   "age_band")
    answers = write_answers(calls, tmp_path / "answers.csv")
    pool = tmp_path / "pool.parquet"
    result = invoke(*["respondents", calls, "--answers", answers, "--out", pool])
    assert result.exit_code == 0, result.output
    return {"calls": calls, "answers": answers, "pool": pool,
            "calls_audit": tmp_path / "calls.audit.json", "audit": tmp_path / "pool.audit.json"}


def test_respondents_keep_the_yes_rows(stage):
    calls = pq.read_table(stage["calls"])
    pool = pq.read_table(stage["pool"])
    ids = calls.column("id").to_pylist()
    yes = [i for k, i in enumerate(ids[:-20]) if k % 4 in (0, 3)]
    assert pool.column("id").to_pylist() == yes  # in call order
    assert pool.column_names == calls.column_names
    audit = json.loads(stage["audit"].read_text(encoding="utf-8"))
    assert audit["counts"] == {"calls": 200, "yes": 90, "no": 45, "unreachable": 65,
                               "unreachable_answered": 45, "missing": 20}
    assert audit["features"] == ["age_band", "gender"]
    assert audit["respondent_ids"]["sha256"] == ids_sha256(yes)
    assert sum(r["respondents"] for r in audit["per_value"]["gender"]) == 90


def test_respondents_csv_output_and_missing_calls_audit(stage, tmp_path):
    stage["calls_audit"].rename(tmp_path / "elsewhere.json")
    out = tmp_path / "pool-2.csv"  # pool.csv's audit would be pool.parquet's: refused
    result = invoke(*["respondents", stage["calls"], "--answers", stage["answers"], "--out",
                     out])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output
    audit = json.loads((tmp_path / "pool-2.audit.json").read_text(encoding="utf-8"))
    assert audit["inputs"]["calls_audit"] is None
    assert audit["features"] == []
    assert pacsv.read_csv(out).num_rows == 90
    assert any("none recorded" in d
               for d in check_respondents_audit(tmp_path / "pool-2.audit.json"))


@pytest.mark.parametrize(("line", "message"), [
    ("{id},maybe", "row 3, column answer: 'maybe' is not yes, no or unreachable"),
    ("stranger,yes", "row 3, column id: 'stranger' is not in"),
    ("{first},no", "row 3, column id: '{first}' already answered in row 1"),
])
def test_bad_answers(stage, tmp_path, line, message):
    ids = pq.read_table(stage["calls"], columns=["id"]).column("id").to_pylist()
    answers = tmp_path / "bad.csv"
    answers.write_text(f"id,answer\n{ids[0]},yes\n{ids[1]},no\n"
                       + line.format(id=ids[2], first=ids[0]) + "\n", encoding="utf-8")
    out = tmp_path / "new" / "pool.parquet"
    result = invoke(*["respondents", stage["calls"], "--answers", answers, "--out", out])
    assert result.exit_code == 2
    assert message.format(first=ids[0]) in result.output
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_nobody_said_yes(stage, tmp_path):
    answers = tmp_path / "none.csv"
    answers.write_text("id,answer\n", encoding="utf-8")
    out = tmp_path / "empty.parquet"
    result = invoke(*["respondents", stage["calls"], "--answers", answers, "--out", out])
    assert result.exit_code == 1 and "nobody answered yes" in result.output
    assert not out.exists()


def test_checks_pass_on_untouched_files(stage, contact_base):
    assert check_respondents_audit(stage["audit"]) == []
    assert check_calls_audit(stage["calls_audit"]) == []
    assert check_calls_audit(stage["calls_audit"], contact_base) == []


def test_check_detects_an_edited_calls_audit(stage):
    data = json.loads(stage["calls_audit"].read_text(encoding="utf-8"))
    data["seed"] = "another seed"
    stage["calls_audit"].write_text(json.dumps(data), encoding="utf-8")
    assert any("call list audit" in d for d in check_respondents_audit(stage["audit"]))
    assert any("call order" in d for d in check_calls_audit(stage["calls_audit"]))


def test_check_detects_edited_answers(stage):
    text = stage["answers"].read_text(encoding="utf-8")
    stage["answers"].write_text(text.replace(",no\n", ",yes\n", 1), encoding="utf-8")
    assert any("answers file" in d for d in check_respondents_audit(stage["audit"]))


def test_check_detects_an_edited_pool(stage):
    table = pq.read_table(stage["pool"])
    pq.write_table(table.slice(1), stage["pool"])
    differences = check_respondents_audit(stage["audit"])
    assert any("fingerprint" in d for d in differences)
    assert any("stratum" in d for d in differences)


def test_check_detects_a_changed_call_list_or_base(stage, contact_base, tmp_path):
    table = pq.read_table(stage["calls"])
    order = table.column("call_order").to_pylist()
    order[0], order[1] = order[1], order[0]
    pq.write_table(table.set_column(0, "call_order", pa.array(order)), stage["calls"])
    assert any("call order" in d for d in check_calls_audit(stage["calls_audit"]))
    other = tmp_path / "other-base.parquet"
    write_pool(synthesize_pool(4000, 12), other)
    differences = check_calls_audit(stage["calls_audit"], other)
    assert any("fingerprint" in d for d in differences)
    assert any("drawn ids" in d for d in differences)


@pytest.fixture
def household_stage(contact_base, tmp_path) -> dict[str, Path]:
    calls = call_list(contact_base, tmp_path / "calls.parquet", 1500, "--by", "gender",
                   "--household-column", "household")
    answers = write_answers(calls, tmp_path / "answers.csv")
    pool = tmp_path / "pool.parquet"
    result = invoke(*["respondents", calls, "--answers", answers, "--out", pool])
    assert result.exit_code == 0, result.output
    return {"calls": calls, "answers": answers, "pool": pool,
            "calls_audit": tmp_path / "calls.audit.json", "audit": tmp_path / "pool.audit.json"}


def test_respondents_use_the_recorded_household_column(household_stage, contact_base):
    audit = json.loads(household_stage["audit"].read_text(encoding="utf-8"))
    households = pq.read_table(household_stage["pool"], columns=["household"]) \
        .column("household").to_pylist()
    assert audit["household_column"] == "household"
    assert audit["pool"]["households"] == len(set(households)) < len(households)
    assert check_respondents_audit(household_stage["audit"]) == []
    assert check_calls_audit(household_stage["calls_audit"], contact_base) == []
    # one respondent's household changed in the pool
    pq.write_table(moved_household(pq.read_table(household_stage["pool"])),
                   household_stage["pool"])
    differences = check_respondents_audit(household_stage["audit"])
    assert any("fingerprint" in d for d in differences)


def test_respondents_household_column_option(household_stage, tmp_path):
    household_stage["calls_audit"].rename(tmp_path / "elsewhere.json")
    out = tmp_path / "given" / "pool.parquet"
    result = invoke(*["respondents", household_stage["calls"], "--answers",
                     household_stage["answers"], "--out", out, "--household-column",
                     "household"])
    assert result.exit_code == 0, result.output
    audit = json.loads((out.parent / "pool.audit.json").read_text(encoding="utf-8"))
    assert audit["household_column"] == "household" and audit["pool"]["households"]
    out = tmp_path / "none" / "pool.parquet"
    result = invoke(*["respondents", household_stage["calls"], "--answers",
                     household_stage["answers"], "--out", out])
    assert result.exit_code == 0, result.output
    audit = json.loads((out.parent / "pool.audit.json").read_text(encoding="utf-8"))
    assert audit["household_column"] is None and audit["pool"]["households"] is None
    out = tmp_path / "missing" / "pool.parquet"
    result = invoke(*["respondents", household_stage["calls"], "--answers",
                     household_stage["answers"], "--out", out, "--household-column", "foyer"])
    assert result.exit_code == 2
    assert f"{household_stage['calls']}: household column 'foyer' not found" in \
        flat(result.output)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_answers_file_missing_or_without_its_columns(stage, tmp_path):
    out = tmp_path / "new" / "pool.parquet"
    code, text = run("respondents", stage["calls"], "--answers", tmp_path / "nope.csv",
                     "--out", out)
    assert code == 2 and f"{tmp_path / 'nope.csv'}: answers file not found" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("id,reply\nOC0001,yes\n", encoding="utf-8")
    code, text = run("respondents", stage["calls"], "--answers", bad, "--out", out)
    assert code == 2 and str(bad) in text and "answer" in text, text
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_every_problem_of_an_answers_file_on_its_own_line(stage, tmp_path):
    ids = pq.read_table(stage["calls"], columns=["id"]).column("id").to_pylist()
    answers = tmp_path / "bad.csv"
    answers.write_text(f"id,answer\n{ids[0]},yes\nstranger,no\n{ids[1]},perhaps\n{ids[0]},no\n"
                       ",yes\n", encoding="utf-8")
    out = tmp_path / "new" / "pool.parquet"
    res = invoke("respondents", stage["calls"], "--answers", answers, "--out", out)
    assert res.exit_code == 2
    lines = [" ".join(line.split()) for line in res.output.splitlines() if line.strip()]
    for expected in (f"{answers}, row 2, column id: 'stranger' is not in {stage['calls']}",
                     f"{answers}, row 3, column answer: 'perhaps' is not yes, no or unreachable",
                     f"{answers}, row 4, column id: '{ids[0]}' already answered in row 1",
                     f"{answers}, row 5, column id: empty id"):
        assert any(expected in line for line in lines), (expected, lines)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_answers_semicolons_bom_and_case(stage, tmp_path):
    """The operator's spreadsheet export: `;`, a BOM, CRLF, answers in any case and spacing."""
    ids = pq.read_table(stage["calls"], columns=["id"]).column("id").to_pylist()
    answers = tmp_path / "excel.csv"
    answers.write_bytes(("\ufeffid;answer\r\n" + f"{ids[0]}; YES \r\n{ids[1]};No\r\n")
                        .encode("utf-8"))
    out = tmp_path / "excel" / "pool.parquet"
    code, text = run("respondents", stage["calls"], "--answers", answers, "--out", out)
    assert code == 0, text
    assert pq.read_table(out).column("id").to_pylist() == [ids[0]]
    audit = json.loads((out.parent / "pool.audit.json").read_text(encoding="utf-8"))
    assert audit["counts"]["yes"] == 1 and audit["counts"]["no"] == 1


def test_rates_out_writes_one_minus_acceptance(stage, tmp_path):
    """`--rates-out`: per feature value, no / (yes + no) among the answered calls (the
    unreachable left out), 4 decimals, in the format draw --dropout-rates and simulate --rates
    read back."""
    from fractions import Fraction

    from sortition.inputs.rates import read_rates

    rates = tmp_path / "rates.csv"
    code, text = run("respondents", stage["calls"], "--answers", stage["answers"], "--out",
                     tmp_path / "again.parquet", "--rates-out", rates)
    assert code == 0, text
    assert "proxy for dropout rates" in text
    calls = pq.read_table(stage["calls"]).to_pylist()
    answers = dict(line.split(",") for line in
                   stage["answers"].read_text(encoding="utf-8").splitlines()[1:])
    found = read_rates(rates)
    assert {f for f, _ in found} == {"age_band", "gender"}
    for (feature, value), rate in found.items():
        said = [answers.get(c["id"], "").strip().lower() for c in calls if c[feature] == value]
        yes, no = said.count("yes"), said.count("no")
        assert abs(rate - Fraction(no, yes + no)) <= Fraction(1, 20000)
        assert 10000 % rate.denominator == 0  # 4 decimal places
    code, text = run("respondents", stage["calls"], "--answers", stage["answers"], "--out",
                     tmp_path / "third.parquet", "--rates-out", stage["answers"])
    assert code == 2 and "--rates-out" in text  # never over an input
    for target, said in ((tmp_path / "fourth.parquet", "the same file as --out"),
                         (tmp_path / "fourth.audit.json", "the same file as --out's")):
        code, text = run("respondents", stage["calls"], "--answers", stage["answers"], "--out",
                         tmp_path / "fourth.parquet", "--rates-out", target, "--force")
        assert code == 2 and said in text, text  # nor over its own other output
        assert not (tmp_path / "fourth.parquet").exists()
