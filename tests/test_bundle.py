"""The draw's public bundle and `verify`: determinism, tampering, privacy, exit statuses."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sortition.cli import app
from sortition.draw.panel import draw_panel
from sortition.inputs.fingerprint import pool_fingerprint
from sortition.inputs.load import load_inputs
from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota, write_quotas
from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.lottery.publish import read_lottery
from sortition.lottery.run import run_lottery

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
SEED = "loto 2026-11-30 — 4 17 22 38 41 (n° 7)"
PERSONAL = ("name", "phone", "email", "address")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A 500-row synthetic pool, its quotas, one bundle and the pool's public extract."""
    d = tmp_path_factory.mktemp("bundle")
    pool = d / "pool.parquet"
    write_pool(synthesize_pool(500, 1), pool)
    runner = CliRunner()
    res = runner.invoke(app, ["quotas", str(SPEC), "--size", "100", "--out",
                              str(d / "quotas.csv")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["draw", str(pool), "-q", str(d / "quotas.csv"), "-k", "100",
                              "--seed", SEED, "-o", str(d / "bundle"),
                              "--private-out", str(d / "private.csv")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["public-pool", str(pool), "-q", str(d / "quotas.csv"), "-k", "100",
                              "-o", str(d / "public.parquet")])
    assert res.exit_code == 0, res.output
    audit = json.loads((d / "bundle" / "audit.json").read_text(encoding="utf-8"))
    return {"dir": d, "pool": pool, "quotas": d / "quotas.csv", "bundle": d / "bundle",
            "audit": audit, "public": d / "public.parquet"}


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, " ".join(res.output.split())


def copy_bundle(setup, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(setup["bundle"], target)
    return target


def verify(bundle: Path, pool: Path, *extra: str) -> tuple[int, str]:
    return run("verify", bundle, "--pool", pool, "--unanchored-ok", *extra)


# ---------------------------------------------------------------------------
# The bundle


def test_bundle_has_the_promised_files(setup):
    names = sorted(p.name for p in setup["bundle"].iterdir())
    assert names == ["audit.json", "lottery.json", "panel.csv", "probabilities.csv",
                     "report.html", "verify.html"]
    audit = setup["audit"]
    assert audit["seed"] == SEED
    assert len(audit["draw"]["ids"]) == 100
    assert all(q["min"] <= q["achieved"] <= q["max"] for q in audit["quotas_achieved"])
    assert set(audit["run"]) == {"versions"}  # no timings: same inputs, same bytes
    panel = (setup["bundle"] / "panel.csv").read_text(encoding="utf-8").splitlines()
    assert panel[0] == "id,gender,age_band,department,area,diploma"
    assert [line.split(",")[0] for line in panel[1:]] == audit["draw"]["ids"]


def test_probabilities_csv_reads_back_and_sums_to_the_panel_size(setup):
    """The public probabilities.csv has no id: each probability once, ascending, with how
    many people have it (per-person figures would link ids to strata)."""
    lines = (setup["bundle"] / "probabilities.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "probability,people"
    values = [float(line.split(",")[0]) for line in lines[1:]]
    people = [int(line.split(",")[1]) for line in lines[1:]]
    assert all(repr(v) == line.split(",")[0] for v, line in zip(values, lines[1:], strict=True))
    assert values == sorted(set(values))
    assert sum(people) == 500
    assert abs(math.fsum(v * n for v, n in zip(values, people, strict=True)) - 100) < 1e-9


def test_lottery_weights_are_exact_integers(setup):
    pub = read_lottery((setup["bundle"] / "lottery.json").read_bytes(), "lottery.json")
    assert sum(pub.weights) == pub.denominator
    assert all(isinstance(w, int) and w > 0 for w in pub.weights)
    probs = pub.stratum_probabilities()
    assert abs(math.fsum(p * n for p, n in zip(probs, pub.counts, strict=True)) - 100) < 1e-9
    assert pub.extra["stated_probabilities"] == probs


def test_no_personal_column_reaches_the_bundle(setup):
    pool = pq.read_table(setup["pool"])
    blob = b"".join(p.read_bytes() for p in setup["bundle"].iterdir())
    for name in ("panel.csv", "probabilities.csv"):
        header = (setup["bundle"] / name).read_text(encoding="utf-8").splitlines()[0]
        assert not set(header.split(",")) & set(PERSONAL)
    for column in PERSONAL:
        for value in pool.column(column).to_pylist()[:500]:
            assert value.encode("utf-8") not in blob, (column, value)


def test_private_export_has_the_contacts_of_the_panel_only(setup):
    private = pa.csv.read_csv(setup["dir"] / "private.csv")
    assert private.num_rows == 100
    assert set(PERSONAL) <= set(private.column_names)
    assert private.column("id").cast(pa.string()).to_pylist() == setup["audit"]["draw"]["ids"]


def test_public_extract_has_no_personal_column_and_the_same_fingerprint(setup):
    table = pq.read_table(setup["public"])
    assert table.column_names == ["id", "age_band", "area", "department", "diploma", "gender"]
    ids = table.column("id").to_pylist()
    assert ids == sorted(ids)
    a = load_inputs(setup["pool"], setup["quotas"], 100)
    b = load_inputs(setup["public"], setup["quotas"], 100)
    assert a.fingerprint.sha256 == b.fingerprint.sha256 == setup["audit"]["inputs"]["pool"][
        "sha256"]


def test_fingerprint_ignores_row_order_and_file_format(setup, tmp_path):
    table = pq.read_table(setup["pool"])
    shuffled = table.take(pa.array(np.random.default_rng(3).permutation(table.num_rows)))
    pa.csv.write_csv(shuffled, tmp_path / "pool.csv")
    inputs = load_inputs(tmp_path / "pool.csv", setup["quotas"], 100)
    assert inputs.fingerprint.sha256 == setup["audit"]["inputs"]["pool"]["sha256"]
    assert pool_fingerprint(inputs.pool, inputs.strata).strata == inputs.fingerprint.strata


# ---------------------------------------------------------------------------
# Determinism


def _draw_in_process(setup, out: Path, hashseed: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    subprocess.run([sys.executable, "-m", "sortition", "draw", str(setup["pool"]), "-q",
                    str(setup["quotas"]), "-k", "100", "--seed", SEED, "-o", str(out)],
                   check=True, env=env, capture_output=True)


def test_same_command_twice_gives_identical_files(setup, tmp_path):
    # same bundle name (report.html shows it), different parent folders and hash seeds
    a, b = tmp_path / "a" / "bundle", tmp_path / "b" / "bundle"
    a.parent.mkdir()
    b.parent.mkdir()
    _draw_in_process(setup, a, "1")
    _draw_in_process(setup, b, "4242")
    names = sorted(f.name for f in a.iterdir())
    assert names == sorted(f.name for f in b.iterdir())
    for name in names:  # every file, audit.json and report.html included: byte-identical
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in names:
        assert (a / name).read_bytes() == (setup["bundle"] / name).read_bytes(), name


# ---------------------------------------------------------------------------
# verify


def test_verify_accepts_the_bundle_with_the_full_pool_and_the_extract(setup):
    h = setup["audit"]["lottery"]["sha256"]
    for pool in (setup["pool"], setup["public"]):
        code, text = verify(setup["bundle"], pool, "--expect-lottery-hash", h,
                            "--expect-seed", SEED, "-q", setup["quotas"])
        assert code == 0, text
        assert "verified" in text


def test_verify_recompute(setup):
    code, text = verify(setup["bundle"], setup["public"], "--recompute")
    assert code == 0, text
    assert "recomputed leximin marginals agree" in text


def _edit_pool(setup, tmp_path, edit) -> Path:
    table = pq.read_table(setup["public"])
    out = tmp_path / "pool.parquet"
    pq.write_table(edit(table), out)
    return out


def test_tamper_one_feature_value_names_the_strata(setup, tmp_path):
    def edit(t):
        area = t.column("area").to_pylist()
        area[10] = "rural" if area[10] == "urban" else "urban"
        return t.set_column(t.column_names.index("area"), "area", pa.array(area))
    code, text = verify(setup["bundle"], _edit_pool(setup, tmp_path, edit))
    assert code == 1
    assert "fingerprint" in text and "stratum" in text and "changed" in text


def test_tamper_one_id(setup, tmp_path):
    def edit(t):
        ids = t.column("id").to_pylist()
        ids[3] = ids[3] + "x"
        return t.set_column(0, "id", pa.array(ids))
    code, text = verify(setup["bundle"], _edit_pool(setup, tmp_path, edit))
    assert code == 1
    assert "ids or values changed without changing any stratum's size" in text


@pytest.mark.parametrize("how", ["added", "removed"])
def test_tamper_rows_added_or_removed(setup, tmp_path, how):
    def edit(t):
        if how == "removed":
            return t.slice(1)
        extra = t.slice(0, 1).set_column(0, "id", pa.array(["ZZ-new"]))
        return pa.concat_tables([t, extra])
    code, text = verify(setup["bundle"], _edit_pool(setup, tmp_path, edit))
    assert code == 1
    assert ("499 people now" if how == "removed" else "501 people now") in text


def test_tamper_quota_bound_given(setup, tmp_path):
    lines = setup["quotas"].read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    f, v, lo, hi = rows[0].split(",")
    rows[0] = ",".join([f, v, lo, str(int(hi) + 1)])
    (tmp_path / "q.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    code, text = verify(setup["bundle"], setup["public"], "-q", tmp_path / "q.csv")
    assert code == 1
    assert "quotas" in text and f"{f}={v}" in text


def test_tamper_quota_bound_in_audit(setup, tmp_path):
    b = copy_bundle(setup, tmp_path)
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    audit["inputs"]["quotas"]["quotas"][0][3] += 1
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    code, text = verify(b, setup["public"])
    assert code == 1
    assert "a bound was edited" in text


def test_tamper_seed_by_one_character(setup, tmp_path):
    b = copy_bundle(setup, tmp_path)
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    audit["seed"] = SEED[:-1] + "8"
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    code, text = verify(b, setup["public"])
    assert code == 1
    assert "the draw from the seed gives" in text or "the seed gives" in text


def test_expected_seed_and_hash_must_match(setup):
    code, text = verify(setup["bundle"], setup["public"], "--expect-seed", SEED + " ")
    assert code == 1 and "announced" in text
    code, text = verify(setup["bundle"], setup["public"], "--expect-lottery-hash", "0" * 64)
    assert code == 1 and "published beforehand" in text


def test_tamper_panel_csv_id_swapped(setup, tmp_path):
    b = copy_bundle(setup, tmp_path)
    ids = set(setup["audit"]["draw"]["ids"])
    other = next(i for i in pq.read_table(setup["public"]).column("id").to_pylist()
                 if i not in ids)
    lines = (b / "panel.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(",")
    cells[0] = other
    lines[5] = ",".join(cells)
    (b / "panel.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = verify(b, setup["public"])
    assert code == 1
    assert "panel.csv, line 6" in text


def test_tamper_lottery_edited(setup, tmp_path):
    b = copy_bundle(setup, tmp_path)
    data = (b / "lottery.json").read_text(encoding="utf-8")
    lines = data.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith('  {"weight": '))
    j = next(k for k, line in enumerate(lines) if k > i and line.startswith('  {"weight": '))
    wi = json.loads(lines[i].rstrip(","))["weight"]
    lines[i] = lines[i].replace(f'"weight": {wi}', f'"weight": {wi - 1}', 1)
    wj = json.loads(lines[j].rstrip(","))["weight"]
    lines[j] = lines[j].replace(f'"weight": {wj}', f'"weight": {wj + 1}', 1)
    (b / "lottery.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = verify(b, setup["public"])
    assert code == 1
    assert "the lottery file was changed" in text


def test_missing_file_is_a_difference_malformed_audit_an_input_error(setup, tmp_path):
    b = copy_bundle(setup, tmp_path)
    (b / "probabilities.csv").unlink()
    code, text = verify(b, setup["public"])
    assert code == 1 and "probabilities.csv" in text
    # a malformed bundle is unusable input (exit 2, which from verify means "not verified" too)
    (b / "audit.json").write_text("{not json", encoding="utf-8")
    code, text = verify(b, setup["public"])
    assert code == 2 and "audit.json: not valid JSON" in text


def test_verify_bad_inputs_exit_2(setup, tmp_path):
    assert verify(tmp_path / "nope", setup["public"])[0] == 2
    assert verify(setup["bundle"], tmp_path / "nope.parquet")[0] == 2


# ---------------------------------------------------------------------------
# draw: options and refusals


def test_draw_refusals_exit_2(setup, tmp_path):
    base = ["draw", setup["pool"], "-q", setup["quotas"], "-k", "100"]
    code, text = run(*base, "--seed", "", "-o", tmp_path / "x")
    assert code == 2 and "seed is empty" in text
    code, text = run(*base, "--seed", "s", "-o", setup["bundle"])
    assert code == 2 and "not empty" in text and "--force" in text
    code, text = run(*base, "--seed", "s", "-o", tmp_path / "b",
                     "--private-out", tmp_path / "b" / "private.csv")
    assert code == 2 and "inside the public bundle" in text
    code, text = run(*base, "--seed", "s", "-o", tmp_path / "c", "--algorithm", "legacy")
    assert code == 2 and "legacy" in text
    code, text = run(*base, "--seed", "s", "-o", tmp_path / "d", "--panels", "3")
    assert code == 2 and "panels × panel size ≥ pool size" in text
    assert not any((tmp_path / n).exists() for n in "bcd")


def test_draw_from_a_published_lottery(setup, tmp_path):
    code, text = run("lottery", setup["pool"], "-q", setup["quotas"], "-k", "100",
                     "-o", tmp_path / "lot")
    assert code == 0, text
    digest = (tmp_path / "lot" / "lottery.json.sha256").read_text().split()[0]
    assert digest in text
    assert (tmp_path / "lot" / "lottery.json").read_bytes() == \
        (setup["bundle"] / "lottery.json").read_bytes()
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100", "--seed", SEED,
                     "--lottery", tmp_path / "lot", "-o", tmp_path / "b")
    assert code == 0, text
    assert (tmp_path / "b" / "panel.csv").read_bytes() == \
        (setup["bundle"] / "panel.csv").read_bytes()
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "99", "--seed", SEED,
                     "--lottery", tmp_path / "lot", "-o", tmp_path / "c")
    assert code == 2 and "computed for other quotas" in text
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100", "--seed", SEED,
                     "--lottery", tmp_path / "lot", "-o", tmp_path / "d", "--algorithm", "nash")
    assert code == 2 and "its algorithm is leximin" in text


def test_force_replaces_the_bundle(setup, tmp_path):
    b = copy_bundle(setup, tmp_path)
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100",
                     "--seed", "another seed", "-o", b, "--force")
    assert code == 0, text
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    assert audit["seed"] == "another seed"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------------
# Transparent lottery


def _tickets(pub, public_pool):
    """The people on each ticket, from the pool by the documented assignment."""
    from sortition.lottery.publish import attach_tickets

    rows = pq.read_table(public_pool).to_pylist()
    index = {tuple(k): s for s, k in enumerate(pub.keys)}
    members = [[] for _ in pub.keys]
    for row in sorted(rows, key=lambda r: r["id"].encode("utf-8")):
        members[index[tuple(row[f] for f in pub.features)]].append(row["id"])
    attach_tickets(pub, members)
    return pub.tickets


def test_transparent_lottery(setup, tmp_path):
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100", "--seed", SEED,
                     "--panels", "20", "-o", tmp_path / "t")
    assert code == 0, text
    raw = (tmp_path / "t" / "lottery.json").read_bytes()
    pub = read_lottery(raw, "lottery.json")
    assert pub.transparent and pub.n_tickets == 20 and pub.tickets is None
    audit = json.loads((tmp_path / "t" / "audit.json").read_text(encoding="utf-8"))
    ids = set(pq.read_table(setup["public"]).column("id").to_pylist())
    off_panel = ids - set(audit["draw"]["ids"])
    assert not any(i.encode("utf-8") in raw for i in sorted(off_panel)[:50])  # no ticket lists
    tickets = _tickets(pub, setup["public"])
    assert len(tickets) == 20 and sum(pub.weights) == 20
    counts = pub.ticket_counts()
    assert len(counts) == 500  # 20 × 100 ≥ 500: everyone is on some ticket
    number = audit["draw"]["panel_number"]
    assert audit["draw"]["ids"] == tickets[number - 1]
    # Largest-remainder rounding of panel weights bounds no person's change by 1/M in general
    # (one person sits on several panels); the change is recorded, and small.
    assert 0 <= audit["lottery"]["max_change"] <= 2 / 20
    code, text = verify(tmp_path / "t", setup["public"])
    assert code == 0, text
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100", "--seed", SEED,
                     "--panels", "20", "--ticket", "7", "-o", tmp_path / "u")
    assert code == 0, text
    audit = json.loads((tmp_path / "u" / "audit.json").read_text(encoding="utf-8"))
    assert audit["draw"]["panel_number"] == 7
    assert audit["draw"]["ids"] == tickets[6]
    code, text = verify(tmp_path / "u", setup["public"])
    assert code == 0, text
    assert "given by the operator" in text


# ---------------------------------------------------------------------------
# Statistics: drawn frequencies match the lottery's probabilities


def test_selection_frequencies_match_probabilities(tmp_path):
    """Fixed seeds, so not flaky: each person's frequency within 4.5 standard deviations,
    and a chi-square over strata below its 0.001 critical value."""
    table = pa.table({
        "id": [f"p{i:02d}" for i in range(14)],
        "g": ["a"] * 5 + ["b"] * 9,
        "h": ["x", "y", "x", "y", "x", "x", "y", "y", "y", "x", "y", "x", "y", "y"],
    })
    pq.write_table(table, tmp_path / "pool.parquet")
    quotas = Quotas([ValueQuota("g", "a", 2, 2), ValueQuota("g", "b", 2, 3),
                     ValueQuota("h", "x", 1, 3), ValueQuota("h", "y", 1, 4)],
                    [CrossQuota(("g", "h"), ("a", "y"), 1, 1)], 4)
    write_quotas(quotas, tmp_path / "q.toml")
    inputs = load_inputs(tmp_path / "pool.parquet", tmp_path / "q.toml", 4)
    pub = run_lottery(inputs, "leximin")
    digest = "ab" * 32
    runs = 3000
    hits: dict[str, int] = {}
    for k in range(runs):
        drawn = draw_panel(pub, digest, f"seed-{k}".encode(), inputs.members)
        for _, i in drawn.people:
            hits[i] = hits.get(i, 0) + 1
    probs = dict(zip(inputs.pool.ids.to_pylist(),
                     np.array(pub.stratum_probabilities())[inputs.strata.row_stratum].tolist(),
                     strict=True))
    for i, p in probs.items():
        sd = math.sqrt(runs * p * (1 - p)) or 1.0
        assert abs(hits.get(i, 0) - runs * p) <= 4.5 * sd, (i, hits.get(i, 0), runs * p)
    chi2, dof = 0.0, 0
    for s in range(len(inputs.strata)):
        members = inputs.members(s)
        expected = runs * probs[members[0]] * len(members)
        if expected > 0:
            chi2 += (sum(hits.get(i, 0) for i in members) - expected) ** 2 / expected
            dof += 1
    assert chi2 < 25.0, chi2  # far above the 0.001 critical value for these few strata


def test_probabilities_csv_quotes_odd_ids_and_writes_repr_floats():
    """The operator's per-person file (`sortition probabilities --out`), and the public
    classes of the bundle."""
    from sortition.lottery.compute import probabilities_csv, probability_classes_csv

    ids = pa.array(["b", "a,x", 'q"z', "c", "é", "Z", "=1+1", "-2"])
    p = np.array([0.1, 1 / 3, 2e-5, 0.1, 1.0, 0.0, 0.5, 0.5])
    assert probabilities_csv(ids, p).decode("utf-8") == (
        "id,probability\n'-2,0.5\n'=1+1,0.5\nZ,0.0\n\"a,x\",0.3333333333333333\nb,0.1\nc,0.1\n"
        '"q""z",2e-05\né,1.0\n')
    assert probability_classes_csv(p).decode("utf-8") == (
        "probability,people\n0.0,1\n2e-05,1\n0.1,2\n0.3333333333333333,1\n0.5,2\n1.0,1\n")


def test_ticket_needs_a_transparent_lottery(setup, tmp_path):
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100", "--seed", SEED,
                     "--ticket", "3", "-o", tmp_path / "x")
    assert code == 2 and "transparent lottery" in text
    assert not (tmp_path / "x").exists()


def test_verify_json_lists_the_differences(setup, tmp_path):
    b = copy_bundle(setup, tmp_path)
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    audit["lottery"]["method"] = "something else"
    audit["probabilities"]["max"] = 0.5
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    res = CliRunner().invoke(app, ["verify", str(b), "--pool", str(setup["public"]), "--json",
                                   "--unanchored-ok"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["verified"] is False
    assert any("lottery.method" in d for d in doc["differences"])
    assert any("probabilities.max" in d for d in doc["differences"])
    assert doc["difference_count"] == len(doc["differences"])


def test_tampered_transparent_lottery_is_found(setup, tmp_path):
    """The tickets' people are not in lottery.json (they would link every id to its stratum):
    they follow from the pool; what the file states of them (max_change) is re-checked."""
    code, text = run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100", "--seed", SEED,
                     "--panels", "20", "-o", tmp_path / "t")
    assert code == 0, text
    path = tmp_path / "t" / "lottery.json"
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text)
    stated = json.dumps(doc["transparent"]["max_change"])
    path.write_text(text.replace(f'"max_change": {stated}', '"max_change": 0.0', 1),
                    encoding="utf-8")
    code, out = verify(tmp_path / "t", setup["public"])
    assert code == 1 and "transparent.max_change" in out
    lines = text.splitlines()
    lines[-2] = lines[-2][:-1] + ', "panels": [["x"]]}'  # an old-style ticket list
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = verify(tmp_path / "t", setup["public"])
    assert code == 2 and "ticket lists of ids are no longer published" in out
