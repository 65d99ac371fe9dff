"""The draw's public bundle: its files, determinism, privacy, reuse of a lottery, transparent
lotteries, exit statuses of `draw` (what `verify` checks of it: tests/test_verify.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq
import pytest
from cli_runner import run, with_hash_seed
from cli_runner import verify_unanchored as verify
from conftest import BUNDLE_SEED as SEED
from conftest import copy_bundle

from sortition.core.errors import InputError
from sortition.draw.panel import draw_panel
from sortition.inputs.fingerprint import pool_fingerprint
from sortition.inputs.load import load_inputs
from sortition.inputs.quotas import CrossQuota, Quotas, ValueQuota, load_quotas, write_quotas
from sortition.lottery.publish import read_lottery
from sortition.lottery.run import run_lottery

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
PERSONAL = ("name", "phone", "email", "address")


# ---------------------------------------------------------------------------
# The bundle


def test_bundle_has_the_promised_files(bundle_setup):
    names = sorted(p.name for p in bundle_setup["bundle"].iterdir())
    assert names == ["audit.json", "lottery.json", "panel.csv", "probabilities.csv",
                     "report.html", "verify.html"]
    audit = bundle_setup["audit"]
    assert audit["seed"] == SEED
    assert len(audit["draw"]["ids"]) == 100
    assert all(q["min"] <= q["achieved"] <= q["max"] for q in audit["quotas_achieved"])
    assert set(audit["run"]) == {"versions"}  # no timings: same inputs, same bytes
    panel = (bundle_setup["bundle"] / "panel.csv").read_text(encoding="utf-8").splitlines()
    assert panel[0] == "id,gender,age_band,department,area,diploma"
    assert [line.split(",")[0] for line in panel[1:]] == audit["draw"]["ids"]


def test_probabilities_csv_reads_back_and_sums_to_the_panel_size(bundle_setup):
    """The public probabilities.csv has no id: each probability once, ascending, with how
    many people have it (per-person figures would link ids to strata)."""
    lines = (bundle_setup["bundle"] / "probabilities.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "probability,people"
    values = [float(line.split(",")[0]) for line in lines[1:]]
    people = [int(line.split(",")[1]) for line in lines[1:]]
    assert all(repr(v) == line.split(",")[0] for v, line in zip(values, lines[1:], strict=True))
    assert values == sorted(set(values))
    assert sum(people) == 500
    assert abs(math.fsum(v * n for v, n in zip(values, people, strict=True)) - 100) < 1e-9


def test_lottery_weights_are_exact_integers(bundle_setup):
    pub = read_lottery((bundle_setup["bundle"] / "lottery.json").read_bytes(), "lottery.json")
    assert sum(pub.weights) == pub.denominator
    assert all(isinstance(w, int) and w > 0 for w in pub.weights)
    probs = pub.stratum_probabilities()
    assert abs(math.fsum(p * n for p, n in zip(probs, pub.counts, strict=True)) - 100) < 1e-9
    assert pub.extra["stated_probabilities"] == probs


def test_no_personal_column_reaches_the_bundle(bundle_setup):
    pool = pq.read_table(bundle_setup["pool"])
    blob = b"".join(p.read_bytes() for p in bundle_setup["bundle"].iterdir())
    for name in ("panel.csv", "probabilities.csv"):
        header = (bundle_setup["bundle"] / name).read_text(encoding="utf-8").splitlines()[0]
        assert not set(header.split(",")) & set(PERSONAL)
    for column in PERSONAL:
        for value in pool.column(column).to_pylist()[:500]:
            assert value.encode("utf-8") not in blob, (column, value)


def test_private_export_has_the_contacts_of_the_panel_only(bundle_setup):
    private = pa.csv.read_csv(bundle_setup["dir"] / "private.csv")
    assert private.num_rows == 100
    assert set(PERSONAL) <= set(private.column_names)
    ids = private.column("id").cast(pa.string()).to_pylist()
    assert ids == bundle_setup["audit"]["draw"]["ids"]


def test_public_extract_has_no_personal_column_and_the_same_fingerprint(bundle_setup):
    table = pq.read_table(bundle_setup["public"])
    assert table.column_names == ["id", "age_band", "area", "department", "diploma", "gender"]
    ids = table.column("id").to_pylist()
    assert ids == sorted(ids)
    a = load_inputs(bundle_setup["pool"], bundle_setup["quotas"], 100)
    b = load_inputs(bundle_setup["public"], bundle_setup["quotas"], 100)
    assert a.fingerprint.sha256 == b.fingerprint.sha256 == bundle_setup["audit"]["inputs"]["pool"][
        "sha256"]


def test_fingerprint_ignores_row_order_and_file_format(bundle_setup, tmp_path):
    table = pq.read_table(bundle_setup["pool"])
    shuffled = table.take(pa.array(np.random.default_rng(3).permutation(table.num_rows)))
    pa.csv.write_csv(shuffled, tmp_path / "pool.csv")
    inputs = load_inputs(tmp_path / "pool.csv", bundle_setup["quotas"], 100)
    assert inputs.fingerprint.sha256 == bundle_setup["audit"]["inputs"]["pool"]["sha256"]
    assert pool_fingerprint(inputs.pool, inputs.strata).strata == inputs.fingerprint.strata


def test_quotas_given_without_a_size_are_an_input_error(bundle_setup):
    """`load_inputs(quotas=…)` with CSV quotas loaded without a size: exit 2, as when it
    loads them itself (not a TypeError once the pool is loaded)."""
    quotas = load_quotas(bundle_setup["quotas"])
    assert quotas.size is None
    with pytest.raises(InputError, match="CSV quotas need --size"):
        load_inputs(bundle_setup["pool"], bundle_setup["quotas"], None, quotas=quotas)


# ---------------------------------------------------------------------------
# Determinism


def _draw_in_process(bundle_setup, out: Path, hashseed: str) -> None:
    res = with_hash_seed(hashseed, "-m", "sortition", "draw", bundle_setup["pool"], "-q",
                         bundle_setup["quotas"], "-k", "100", "--seed", SEED, "-o", out)
    assert res.returncode == 0, res.stderr


def test_same_command_twice_gives_identical_files(bundle_setup, tmp_path):
    # same bundle name (report.html shows it), different parent folders and hash seeds
    a, b = tmp_path / "a" / "bundle", tmp_path / "b" / "bundle"
    a.parent.mkdir()
    b.parent.mkdir()
    _draw_in_process(bundle_setup, a, "1")
    _draw_in_process(bundle_setup, b, "4242")
    names = sorted(f.name for f in a.iterdir())
    assert names == sorted(f.name for f in b.iterdir())
    for name in names:  # every file, audit.json and report.html included: byte-identical
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in names:
        assert (a / name).read_bytes() == (bundle_setup["bundle"] / name).read_bytes(), name


# ---------------------------------------------------------------------------
# verify


# ---------------------------------------------------------------------------
# draw: options and refusals


def test_draw_refusals_exit_2(bundle_setup, tmp_path):
    base = ["draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100"]
    code, text = run(*base, "--seed", "", "-o", tmp_path / "x")
    assert code == 2 and "seed is empty" in text
    code, text = run(*base, "--seed", "s", "-o", bundle_setup["bundle"])
    assert code == 2 and "not empty" in text and "--force" in text
    code, text = run(*base, "--seed", "s", "-o", tmp_path / "b",
                     "--private-out", tmp_path / "b" / "private.csv")
    assert code == 2 and "inside the public bundle" in text
    code, text = run(*base, "--seed", "s", "-o", tmp_path / "c", "--algorithm", "legacy")
    assert code == 2 and "legacy" in text
    code, text = run(*base, "--seed", "s", "-o", tmp_path / "d", "--panels", "3")
    assert code == 2 and "panels × panel size ≥ pool size" in text
    assert not any((tmp_path / n).exists() for n in "bcd")


def test_draw_from_a_published_lottery(bundle_setup, tmp_path):
    code, text = run("lottery", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
                     "-o", tmp_path / "lot")
    assert code == 0, text
    digest = (tmp_path / "lot" / "lottery.json.sha256").read_text().split()[0]
    assert digest in text
    assert (tmp_path / "lot" / "lottery.json").read_bytes() == \
        (bundle_setup["bundle"] / "lottery.json").read_bytes()
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
                     "--seed", SEED,
                     "--lottery", tmp_path / "lot", "-o", tmp_path / "b")
    assert code == 0, text
    assert (tmp_path / "b" / "panel.csv").read_bytes() == \
        (bundle_setup["bundle"] / "panel.csv").read_bytes()
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "99",
                     "--seed", SEED,
                     "--lottery", tmp_path / "lot", "-o", tmp_path / "c")
    assert code == 2 and "computed for other quotas" in text
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
                     "--seed", SEED,
                     "--lottery", tmp_path / "lot", "-o", tmp_path / "d", "--algorithm", "nash")
    assert code == 2 and "its algorithm is leximin" in text


def test_force_replaces_the_bundle(bundle_setup, tmp_path):
    b = copy_bundle(bundle_setup, tmp_path)
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
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


def test_transparent_lottery(bundle_setup, tmp_path):
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
                     "--seed", SEED,
                     "--panels", "20", "-o", tmp_path / "t")
    assert code == 0, text
    raw = (tmp_path / "t" / "lottery.json").read_bytes()
    pub = read_lottery(raw, "lottery.json")
    assert pub.transparent and pub.n_tickets == 20 and pub.tickets is None
    audit = json.loads((tmp_path / "t" / "audit.json").read_text(encoding="utf-8"))
    ids = set(pq.read_table(bundle_setup["public"]).column("id").to_pylist())
    off_panel = ids - set(audit["draw"]["ids"])
    assert not any(i.encode("utf-8") in raw for i in sorted(off_panel)[:50])  # no ticket lists
    tickets = _tickets(pub, bundle_setup["public"])
    assert len(tickets) == 20 and sum(pub.weights) == 20
    counts = pub.ticket_counts()
    assert len(counts) == 500  # 20 × 100 ≥ 500: everyone is on some ticket
    number = audit["draw"]["panel_number"]
    assert audit["draw"]["ids"] == tickets[number - 1]
    # Largest-remainder rounding of panel weights bounds no person's change by 1/M in general
    # (one person sits on several panels); the change is recorded, and small.
    assert 0 <= audit["lottery"]["max_change"] <= 2 / 20
    code, text = verify(tmp_path / "t", bundle_setup["public"])
    assert code == 0, text
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
                     "--seed", SEED,
                     "--panels", "20", "--ticket", "7", "-o", tmp_path / "u")
    assert code == 0, text
    audit = json.loads((tmp_path / "u" / "audit.json").read_text(encoding="utf-8"))
    assert audit["draw"]["panel_number"] == 7
    assert audit["draw"]["ids"] == tickets[6]
    code, text = verify(tmp_path / "u", bundle_setup["public"])
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


def test_ticket_needs_a_transparent_lottery(bundle_setup, tmp_path):
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
                     "--seed", SEED,
                     "--ticket", "3", "-o", tmp_path / "x")
    assert code == 2 and "transparent lottery" in text
    assert not (tmp_path / "x").exists()


