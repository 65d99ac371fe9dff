"""The call list (`sortition invite`); the respondent pool is tested in test_respondents.py.

Pools are small synthetic ones (a few thousand rows), written once per module. The draw is
re-derived here from the text of docs/draw-spec.md section 14 with `Stream` only.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import strategies
from cli_runner import invoke, with_hash_seed
from conftest import moved_household, write_answers
from hypothesis import given
from hypothesis import strategies as st

from sortition.core.audits import ids_sha256
from sortition.core.drawspec import Stream, seed_bytes
from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.recruitment.invite import (
    CONTACT_COLUMNS,
    apportion,
    call_order,
    check_calls_audit,
    population_margins,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = "Loto 2026-03-04: 5 12 19 33 41 / 2"
SPEC_SEED = seed_bytes("Convention citoyenne Occitanie 2020 — tirage du 12 mars")
SPEC_HASH = "206d43e7571f9b132f01d2f8b0960b414a8f796b05dbc4bfa134237b2ceb1737"
MEMBERS = [f"p{i:02d}" for i in range(1, 11)]
AGE_RATES = {"18-24": 0.2, "25-34": 0.3, "35-49": 0.45, "50-64": 0.55, "65+": 0.6}


@pytest.fixture(scope="module")
def base(contact_base) -> Path:
    """The shared contact base (tests/conftest.py), as this module's tests call it."""
    return contact_base


@pytest.fixture(scope="module")
def rates_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rates") / "rates.csv"
    lines = ["feature,value,rate"] + [f"age_band,{v},{r}" for v, r in AGE_RATES.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def invite(base: Path, out: Path, size: int = 400, seed: str = SEED, *extra) -> Path:
    result = invoke(*["invite", base, "--size", size, "--seed", seed, "--out", out, *extra])
    assert result.exit_code == 0, result.output
    return out


def audit_of(path: Path) -> dict:
    return json.loads(path.with_name(f"{path.stem}.audit.json").read_text(encoding="utf-8"))


def without_run(audit: dict) -> dict:
    return {k: v for k, v in audit.items() if k != "run"}


def population(feature: str) -> dict[str, float]:
    return population_margins([feature])[0][feature]


# Determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(base, rates_file, tmp_path):
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("OC0001\nOC0002\nnobody\n", encoding="utf-8")
    extra = ["--by", "gender", "--by", "age_band", "--response-rates", rates_file,
             "--exclude", exclude]
    a = invite(base, tmp_path / "a" / "calls.parquet", 400, SEED, *extra)
    b = invite(base, tmp_path / "b" / "calls.parquet", 400, SEED, *reversed_by(extra))
    assert a.read_bytes() == b.read_bytes()
    assert without_run(audit_of(a)) == without_run(audit_of(b))
    # and in another process with another hash seed
    c = tmp_path / "c" / "calls.parquet"
    proc = with_hash_seed("12345", "-m", "sortition", "invite", base, "--size", "400",
                          "--seed", SEED, "--out", c, *extra)
    assert proc.returncode == 0, proc.stderr
    assert c.read_bytes() == a.read_bytes()
    text = lambda p: json.dumps(without_run(audit_of(p)), sort_keys=True)  # noqa: E731
    assert text(c) == text(a)


def reversed_by(extra: list) -> list:
    """The same options with the --by features given in the other order."""
    return ["--by", "age_band", "--by", "gender", *extra[4:]]


def test_different_seed_gives_another_list(base, tmp_path):
    a = audit_of(invite(base, tmp_path / "a.parquet", 300, "seed one"))
    b = audit_of(invite(base, tmp_path / "b.parquet", 300, "seed two"))
    assert a["drawn_ids"]["sha256"] != b["drawn_ids"]["sha256"]
    assert a["streams"]["hash"] == b["streams"]["hash"]  # same base


# Uniform and stratified --------------------------------------------------------------------


def test_uniform_call_list(base, tmp_path):
    out = invite(base, tmp_path / "calls.parquet", 250)
    table = pq.read_table(out)
    source = pq.read_table(base)
    assert table.column_names == ["call_order"] + source.column_names
    assert table.column("call_order").to_pylist() == list(range(1, 251))
    ids = table.column("id").to_pylist()
    assert len(set(ids)) == 250 and set(ids) <= set(source.column("id").to_pylist())
    audit = audit_of(out)
    assert audit["parameters"]["mode"] == "uniform"
    assert audit["sizes"] == {"base": 4000, "excluded": 0, "eligible": 4000, "drawn": 250}
    assert audit["drawn_ids"]["sha256"] == ids_sha256(ids)
    assert audit["inputs"]["base"]["features"] == []


def test_uniform_draw_follows_the_spec(base, tmp_path):
    """One cell: the partial Fisher–Yates of section 7 on the `calls` stream, then the order."""
    out = invite(base, tmp_path / "calls.parquet", 40)
    audit = audit_of(out)
    h = audit["streams"]["hash"]
    a = sorted(pq.read_table(base, columns=["id"]).column("id").to_pylist(),
               key=lambda i: i.encode("utf-8"))
    stream = Stream(SEED.encode("utf-8"), h, "calls")
    for i in range(40):
        j = i + stream.below(len(a) - i)
        a[i], a[j] = a[j], a[i]
    b = sorted(a[:40], key=lambda i: i.encode("utf-8"))
    order = Stream(SEED.encode("utf-8"), h, "calls/order")
    for i in range(len(b)):
        j = i + order.below(len(b) - i)
        b[i], b[j] = b[j], b[i]
    assert pq.read_table(out).column("id").to_pylist() == b


def test_spec_known_answers():
    assert call_order(MEMBERS, SPEC_SEED, SPEC_HASH) == "p01 p03 p10 p09 p06 p07 p08 p05 p04 " \
        "p02".split()
    assert Stream(SPEC_SEED, SPEC_HASH, "calls").block(0).hex() == \
        "d9b1c0702f5cd0329a82e5765fde13390365a59eca7d645abc36f83bdd59de8d"
    assert apportion([3, 1, 1], [10, 1, 10], 5)[0] == [3, 1, 1]
    text = (ROOT / "docs" / "draw-spec.md").read_text(encoding="utf-8")
    assert "`p01 p03 p10 p09 p06 p07 p08 p05 p04 p02`" in text


def deviation(out: Path, feature: str, size: int) -> dict[str, float]:
    drawn = Counter(pq.read_table(out, columns=[feature]).column(feature).to_pylist())
    return {v: drawn.get(v, 0) - size * s for v, s in population(feature).items()}


def test_stratified_matches_the_margins(base, tmp_path):
    """IPF matches each margin exactly and no cell is capped here, so the unrounded calls of a
    value are N × its share; largest remainder moves each cell by less than one call, so a
    value is off by less than the number of cells that have it (5 per gender, 2 per age band).
    """
    size = 600
    out = invite(base, tmp_path / "calls.parquet", size, SEED, "--by", "gender",
                 "--by", "age_band")
    audit = audit_of(out)
    assert audit["fit"]["max_share_error"] < 1e-9
    cells = Counter()
    for c in audit["cells"]:
        assert c["calls"] < c["eligible"]  # nobody capped
        for f, v in zip(audit["parameters"]["features"], c["values"], strict=True):
            cells[(f, v)] += 1
    for feature in ("gender", "age_band"):
        for row in audit["per_value"][feature]:
            assert row["expected"] == pytest.approx(row["target"], abs=1e-3)
        for v, d in deviation(out, feature, size).items():
            assert abs(d) < cells[(feature, v)], (feature, v, d)
    uniform = invite(base, tmp_path / "uniform.parquet", size)
    # the synthetic pool under-represents the young: uniform calls inherit that bias
    strat = sum(abs(d) for d in deviation(out, "age_band", size).values())
    unif = sum(abs(d) for d in deviation(uniform, "age_band", size).values())
    assert strat <= 4 < 40 < unif


def test_five_features(base, tmp_path):
    """Many small cells (hundreds for 4 000 people): each cell is rounded by less than one
    call, so a value's calls differ from its expected calls by less than its number of cells.
    (With 50 000 calls on the 1.3 M base, cells are large and values are off by 0.1 % at most.)
    """
    out = invite(base, tmp_path / "calls.parquet", 500, SEED, "--by", "gender", "--by",
                 "age_band", "--by", "department", "--by", "area", "--by", "diploma")
    audit = audit_of(out)
    assert audit["parameters"]["by"] == ["age_band", "area", "department", "diploma", "gender"]
    assert sum(c["calls"] for c in audit["cells"]) == 500
    assert all(c["calls"] <= c["eligible"] for c in audit["cells"])
    features = audit["parameters"]["features"]
    for feature in features:
        j = features.index(feature)
        for row in audit["per_value"][feature]:
            cells = [c for c in audit["cells"] if c["values"][j] == row["value"]]
            assert row["drawn"] == sum(c["calls"] for c in cells)
            assert abs(row["drawn"] - row["expected"]) < len(cells)


def expected_respondent_error(out: Path) -> float:
    ages = Counter(pq.read_table(out, columns=["age_band"]).column("age_band").to_pylist())
    resp = {v: n * AGE_RATES[v] for v, n in ages.items()}
    total = sum(resp.values())
    return max(abs(resp.get(v, 0) / total - s) for v, s in population("age_band").items())


def test_response_rates_balance_the_expected_respondents(base, rates_file, tmp_path):
    by = ["--by", "gender", "--by", "age_band"]
    plain = invite(base, tmp_path / "plain.parquet", 800, SEED, *by)
    weighted = invite(base, tmp_path / "weighted.parquet", 800, SEED, *by,
                      "--response-rates", rates_file)
    assert expected_respondent_error(weighted) < 0.01 < 0.05 < expected_respondent_error(plain)
    assert pq.read_table(weighted).num_rows == 800
    audit = audit_of(weighted)
    assert audit["inputs"]["response_rates"]["model"] == "independent multiplicative " \
        "response rates"
    for row in audit["per_value"]["age_band"]:
        assert row["expected_respondents_share"] == pytest.approx(row["population_share"],
                                                                  abs=0.01)


def test_response_rates_without_margins(base, rates_file, tmp_path):
    """Without --by, the expected respondents follow the base's own composition."""
    out = invite(base, tmp_path / "calls.parquet", 800, SEED, "--response-rates", rates_file)
    ages = Counter(pq.read_table(out, columns=["age_band"]).column("age_band").to_pylist())
    pool = Counter(pq.read_table(base, columns=["age_band"]).column("age_band").to_pylist())
    resp = {v: n * AGE_RATES[v] for v, n in ages.items()}
    for v in AGE_RATES:
        assert resp[v] / sum(resp.values()) == pytest.approx(pool[v] / 4000, abs=0.01)
    assert audit_of(out)["inputs"]["base"]["features"] == ["age_band"]


# Exclusion ---------------------------------------------------------------------------------


def test_exclude_list_and_unknown_ids(base, tmp_path):
    everyone = pq.read_table(base, columns=["id"]).column("id").to_pylist()
    listed = everyone[:3000]
    exclude = tmp_path / "previous.csv"
    exclude.write_text("id,note\n" + "".join(f"{i},x\n" for i in listed) + "ghost,x\n",
                       encoding="utf-8")
    out = tmp_path / "calls.parquet"
    result = invoke(*["invite", base, "--size", 1000, "--seed", SEED, "--out", out,
                     "--exclude", exclude])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "'ghost'" in result.output
    drawn = set(pq.read_table(out).column("id").to_pylist())
    assert drawn == set(everyone[3000:])
    audit = audit_of(out)
    assert audit["sizes"] == {"base": 4000, "excluded": 3000, "eligible": 1000, "drawn": 1000}
    assert audit["inputs"]["exclude"]["not_in_base"] == 1
    # one more than the eligible people: exit 1, nothing written
    again = tmp_path / "again.parquet"
    result = invoke(*["invite", base, "--size", 1001, "--seed", SEED, "--out", again,
                     "--exclude", exclude])
    assert result.exit_code == 1
    assert "only 1,000 eligible" in result.output
    assert not again.exists() and not (tmp_path / "again.audit.json").exists()


def test_plain_exclude_list(base, tmp_path):
    exclude = tmp_path / "ex.txt"
    exclude.write_text("\ufeffOC0010\n\n  OC0011  \r\nOC0010\n", encoding="utf-8")
    out = invite(base, tmp_path / "calls.parquet", 3998, SEED, "--exclude", exclude)
    ids = set(pq.read_table(out).column("id").to_pylist())
    assert "OC0010" not in ids and "OC0011" not in ids and len(ids) == 3998


# Privacy -----------------------------------------------------------------------------------


def test_no_contact_data_in_public_audits(base, rates_file, tmp_path):
    calls = invite(base, tmp_path / "calls.parquet", 300, SEED, "--by", "gender", "--by",
                   "department", "--response-rates", rates_file)
    answers = write_answers(calls, tmp_path / "answers.csv")
    result = invoke(*["respondents", calls, "--answers", answers, "--out",
                     tmp_path / "pool.parquet"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(calls)
    for audit in (tmp_path / "calls.audit.json", tmp_path / "pool.audit.json"):
        text = audit.read_text(encoding="utf-8")
        for column in CONTACT_COLUMNS:
            for value in table.column(column).to_pylist():
                assert value not in text, (audit.name, column)


def test_contact_column_refused_as_a_rate_feature(base, tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text("feature,value,rate\nphone,06 00 00 00 00,0.5\n", encoding="utf-8")
    result = invoke(*["invite", base, "--size", 10, "--seed", SEED, "--out",
                     tmp_path / "c.parquet", "--response-rates", rates])
    assert result.exit_code == 2
    assert "row 1" in result.output and "contact column" in result.output


# Input errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "10", "--seed", ""], "seed is empty"),
    (["--size", "0", "--seed", "x"], "--size 0"),
    (["--size", "10", "--seed", "x", "--by", "household"], "do not cover"),
    (["--size", "5000", "--seed", "x"], "only 4,000 eligible"),
])
def test_refusals(base, tmp_path, args, message):
    out = tmp_path / "calls.parquet"
    result = invoke(*["invite", base, "--out", out, *args])
    assert result.exit_code == (1 if "eligible" in message else 2), result.output
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_value_missing_from_the_margins(tmp_path):
    table = synthesize_pool(200, 3)
    genders = table.column("gender").to_pylist()
    genders[6] = "Woman"
    table = table.set_column(1, "gender", pa.array(genders))
    path = tmp_path / "base.csv"
    write_pool(table, path)
    result = invoke(*["invite", path, "--size", 10, "--seed", "x", "--by", "gender",
                     "--out", tmp_path / "calls.parquet"])
    assert result.exit_code == 2
    assert "column gender" in result.output and "'Woman'" in result.output
    assert "first row 7" in result.output
    assert not (tmp_path / "calls.parquet").exists()


def test_bad_rates_file(base, tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text("feature,value,rate\nage_band,18-24,1.5\nage_band,25-34,abc\n",
                     encoding="utf-8")
    result = invoke(*["invite", base, "--size", 10, "--seed", "x", "--out",
                     tmp_path / "c.parquet", "--response-rates", rates])
    assert result.exit_code == 2
    assert "row 1, column rate: '1.5'" in result.output
    assert "row 2, column rate: 'abc'" in result.output
    rates.write_text("feature,value,rate\nage_band,18-24,0.5\n", encoding="utf-8")
    result = invoke(*["invite", base, "--size", 10, "--seed", "x", "--out",
                     tmp_path / "c.parquet", "--response-rates", rates])
    assert result.exit_code == 2 and "no rate for age_band='25-34'" in result.output


# Respondents -------------------------------------------------------------------------------


# Apportionment -----------------------------------------------------------------------------


@strategies.examples(150)
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), min_size=1, max_size=12),
       st.data())
def test_apportion_properties(cells, data):
    weights = [w for w, _ in cells]
    caps = [c for _, c in cells]
    room = sum(c for w, c in cells if w > 0)
    if room == 0:
        return
    n = data.draw(st.integers(1, room))
    seats, shares = apportion(weights, caps, n)
    assert sum(seats) == n
    assert all(0 <= s <= c for s, c in zip(seats, caps, strict=True))
    assert all(s == 0 for s, w in zip(seats, weights, strict=True) if w == 0)
    assert all(abs(s - q) < 1 for s, q in zip(seats, shares, strict=True))
    if not any(s == c for s, c in zip(seats, caps, strict=True)):  # nothing capped
        total = sum(weights)
        for s, w in zip(seats, weights, strict=True):  # plain largest remainder
            assert n * w // total <= s <= n * w // total + 1


# Help --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["invite", "respondents"])
def test_help(command):
    result = invoke(*[command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and f"sortition {command}" in result.output


# Households --------------------------------------------------------------------------------


def flat(output: str) -> str:
    return " ".join(output.split())


def test_invite_records_the_household_column(base, tmp_path):
    calls = invite(base, tmp_path / "calls.parquet", 2000, SEED, "--by", "gender",
                   "--household-column", "household")
    plain = invite(base, tmp_path / "plain" / "calls.parquet", 2000, SEED, "--by", "gender")
    block, plain_block = audit_of(calls)["inputs"]["base"], audit_of(plain)["inputs"]["base"]
    households = pq.read_table(base, columns=["household"]).column("household").to_pylist()
    assert block["household_column"] == "household"
    assert block["households"] == len(set(households))
    assert plain_block["household_column"] is None and plain_block["households"] is None
    assert block["sha256"] != plain_block["sha256"]  # the fingerprint covers the households
    text = (tmp_path / "calls.audit.json").read_text(encoding="utf-8")
    assert not any(v in text for v in households)  # opaque numbers only
    # the call list is not restricted by households, and keeps the household column
    called = Counter(pq.read_table(calls, columns=["household"]).column("household").to_pylist())
    assert max(called.values()) > 1
    assert check_calls_audit(tmp_path / "calls.audit.json") == []
    assert check_calls_audit(tmp_path / "calls.audit.json", base) == []
    # one person's household changed in the base: the recorded column catches it
    edited = tmp_path / "edited.parquet"
    pq.write_table(moved_household(pq.read_table(base)), edited)
    differences = check_calls_audit(tmp_path / "calls.audit.json", edited)
    assert any("fingerprint" in d for d in differences)
    assert any("drawn ids" in d for d in differences)
    assert check_calls_audit(tmp_path / "plain" / "calls.audit.json", edited) == []


def test_invite_missing_household_column(base, tmp_path):
    out = tmp_path / "new" / "calls.parquet"
    result = invoke(*["invite", base, "--size", 10, "--seed", "x", "--out", out,
                     "--household-column", "foyer"])
    assert result.exit_code == 2
    assert f"{base}: household column 'foyer' not found (columns: id, gender" in \
        flat(result.output)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


