"""Commit before the seed: `verify` says verified only for an anchored draw.

A bundle can be consistent in every byte and still be chosen: an operator who knew the seed
could pick the lottery (the first one, or a replacement's new lottery), vary a free field of
it, or pick the ticket. These tests play that operator; `verify` must catch each attempt, or
at least refuse to call the draw anchored.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import invoke, run

from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.lottery.publish import read_lottery

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
S0, S1 = "loto 2026-12-01: 3 9 27", "loto 2026-12-08: 1 2 40"


def _hash(text: str) -> str:
    return text.split("publish it before the seed): ")[1].split()[0]


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    """Lottery committed, panel drawn (no lists), four decline, new lottery committed, drawn."""
    d = tmp_path_factory.mktemp("anchor")
    write_pool(synthesize_pool(500, 3), d / "pool.csv")
    assert run("quotas", SPEC, "--size", "100", "-o", d / "q.csv")[0] == 0
    common = [d / "pool.csv", "-q", d / "q.csv", "-k", "100"]
    code, text = run("lottery", *common, "-o", d / "lot")
    assert code == 0, text
    h0 = _hash(text)
    code, text = run("draw", *common, "--seed", S0, "--lottery", d / "lot", "-o", d / "b0")
    assert code == 0, text
    panel = json.loads((d / "b0" / "audit.json").read_text(encoding="utf-8"))["draw"]["ids"]
    (d / "no.txt").write_text("".join(f"{panel[k]}\n" for k in (3, 50, 70, 90)),
                              encoding="utf-8")
    replace = ["replace", d / "b0", "--pool", d / "pool.csv", "--declined", d / "no.txt"]
    code, text = run(*replace, "--prepare", "-o", d / "lot1")
    assert code == 0, text
    h1 = _hash(text)
    assert (d / "lot1" / "lottery.json.sha256").read_text(encoding="utf-8").startswith(h1)
    # several panels, so that a one-panel lottery chosen afterwards is another lottery
    assert len(read_lottery((d / "lot1" / "lottery.json").read_bytes(), "x").weights) > 1
    code, text = run(*replace, "--seed", S1, "--lottery", d / "lot1", "-o", d / "b1")
    assert code == 0, text
    assert "computed in this run" not in text
    return {"d": d, "h0": h0, "h1": h1, "replace": replace, "common": common}


def verify(bundle: Path, pool: Path, *extra) -> tuple[int, str]:
    return run("verify", bundle, "--pool", pool, *extra)


def anchors(c: dict) -> list:
    return ["--expect-lottery-hash", c["h0"], "--expect-lottery-hash", c["h1"],
            "--expect-seed", S0, "--expect-seed", S1]


def test_the_whole_chain_verifies_when_anchored(chain):
    d = chain["d"]
    code, text = verify(d / "b1", d / "pool.csv", *anchors(chain))
    assert code == 0, text
    assert "anchored: every lottery hash, seed, ticket and rates file is the one published" in text
    assert "b1/lottery.json: the lottery is the one whose hash was published" in text


def test_unanchored_is_exit_1_unless_accepted(chain):
    d = chain["d"]
    code, text = verify(d / "b1", d / "pool.csv")
    assert code == 1 and "consistent but NOT anchored" in text
    assert "b1/lottery.json: no lottery hash published beforehand" in text
    assert "b0/audit.json: the seed" in text
    res = invoke(*["verify", str(d / "b1"), "--pool", str(d / "pool.csv"),
                                   "--json", "--unanchored-ok"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["verified"] is True and doc["anchored"] is False
    assert len(doc["not_anchored"]) == 4  # two lotteries, two seeds
    code, text = verify(d / "b1", d / "pool.csv", "--expect-lottery-hash", chain["h0"],
                        "--expect-seed", S0, "--expect-seed", S1)
    assert code == 1 and "b1/lottery.json" in text  # the new lottery is not anchored


def test_a_new_lottery_chosen_after_the_seed_is_caught(chain, tmp_path):
    """The operator, knowing S1, replaces the new lottery by a one-panel lottery that seats
    the people they want (a genuine panel of the reduced problem), and redraws."""
    d = chain["d"]
    pub = read_lottery((d / "lot1" / "lottery.json").read_bytes(), "lottery.json")
    favourite = min(range(len(pub.weights)), key=lambda p: pub.weights[p])
    pub.weights = [pub.denominator]
    pub.panels = pub.panels[[favourite]]
    (tmp_path / "lot").mkdir()
    (tmp_path / "lot" / "lottery.json").write_bytes(pub.to_bytes())
    shutil.copytree(d / "b0", tmp_path / "b0")
    code, text = run("replace", tmp_path / "b0", "--pool", d / "pool.csv", "--declined",
                     d / "no.txt", "--seed", S1, "--lottery", tmp_path / "lot",
                     "-o", tmp_path / "b1")
    assert code == 0, text  # a well-formed lottery of the reduced problem
    forged = tmp_path / "b1"
    # without the published hash: consistent, but not anchored (exit 1)
    code, text = verify(forged, d / "pool.csv", "--expect-seed", S0, "--expect-seed", S1,
                        "--expect-lottery-hash", chain["h0"])
    assert code == 1 and "not a lottery hash published beforehand" in text
    code, text = verify(forged, d / "pool.csv", "--expect-seed", S0, "--expect-seed", S1)
    assert code == 1 and "NOT anchored" in text
    # with the hash published by --prepare: a difference
    code, text = verify(forged, d / "pool.csv", *anchors(chain))
    assert code == 1 and "is not a lottery hash published beforehand" in text, text
    # and --recompute shows it is not the fairest lottery, whatever the hashes
    code, text = verify(forged, d / "pool.csv", "--recompute", "--unanchored-ok")
    assert code == 1 and "b1: the new lottery: recomputed leximin marginals differ" in text


def test_stated_probabilities_are_checked_in_a_new_lottery(chain, tmp_path):
    d = chain["d"]
    text = (d / "lot1" / "lottery.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    first = doc["strata"][0]["probability"]
    forged = text.replace(f'"probability": {json.dumps(first)}', '"probability": 0.999', 1)
    assert forged != text
    (tmp_path / "lot").mkdir()
    (tmp_path / "lot" / "lottery.json").write_text(forged, encoding="utf-8")
    shutil.copytree(d / "b0", tmp_path / "b0")
    code, text = run("replace", tmp_path / "b0", *chain["replace"][2:], "--seed", S1,
                     "--lottery", tmp_path / "lot", "-o", tmp_path / "b1")
    assert code == 2 and "probability 0.999 stated" in text


def test_the_method_field_is_not_free(chain, tmp_path):
    """Varying free text inside the hashed bytes would change the hash, hence the panel."""
    d = chain["d"]
    shutil.copytree(d / "b0", tmp_path / "b0")
    path = tmp_path / "b0" / "lottery.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"method": "exact"',
                                                             '"method": "exact "'),
                    encoding="utf-8")
    code, text = verify(tmp_path / "b0", d / "pool.csv", "--unanchored-ok")
    assert code == 1 and "method 'exact ' is not 'exact'" in text


def test_the_prepared_lottery_is_deterministic_and_never_replaced(chain, tmp_path):
    d = chain["d"]
    code, text = run(*chain["replace"], "--prepare", "-o", tmp_path / "again")
    assert code == 0 and _hash(text) == chain["h1"]
    code, text = run(*chain["replace"], "--prepare", "-o", tmp_path / "again")
    assert code == 2 and "already exists" in text
    code, text = run(*chain["replace"], "--prepare", "--seed", "x", "-o", tmp_path / "x")
    assert code == 2 and "not both" in text
    code, text = run(*chain["replace"], "-o", tmp_path / "x")
    assert code == 2 and "--seed: missing" in text
    assert (d / "lot1" / "lottery.json").exists()


def test_a_new_lottery_computed_with_the_seed_is_flagged(chain, tmp_path):
    d = chain["d"]
    shutil.copytree(d / "b0", tmp_path / "b0")
    code, text = run("replace", tmp_path / "b0", "--pool", d / "pool.csv", "--declined",
                     d / "no.txt", "--seed", S1, "-o", tmp_path / "b1")
    assert code == 0 and "computed in this run, after the seed was known" in text
    # same installation, same bytes as the prepared one: its hash is the published one
    code, text = verify(tmp_path / "b1", d / "pool.csv", *anchors(chain))
    assert code == 0, text


def test_an_operator_given_ticket_must_be_anchored(chain, tmp_path):
    d = chain["d"]
    code, text = run("lottery", *chain["common"], "--panels", "20", "-o", tmp_path / "t")
    assert code == 0, text
    h = _hash(text)
    code, text = run("draw", *chain["common"], "--seed", S0, "--lottery", tmp_path / "t",
                     "--ticket", "4", "-o", tmp_path / "b")
    assert code == 0, text
    base = ["--expect-lottery-hash", h, "--expect-seed", S0]
    code, text = verify(tmp_path / "b", d / "pool.csv", *base)
    assert code == 1 and "ticket 4 was given by the operator" in text
    code, text = verify(tmp_path / "b", d / "pool.csv", *base, "--expect-ticket", "4")
    assert code == 0, text
    code, text = verify(tmp_path / "b", d / "pool.csv", *base, "--expect-ticket", "5")
    assert code == 1 and "ticket 5 was drawn in public" in text
    code, text = verify(d / "b0", d / "pool.csv", "--expect-lottery-hash", chain["h0"],
                        "--expect-seed", S0, "--expect-ticket", "5")
    assert code == 1 and "came from the seed" in text


def test_a_published_value_that_matches_nothing_is_a_difference(chain):
    d = chain["d"]
    code, text = verify(d / "b0", d / "pool.csv", "--expect-lottery-hash", chain["h0"],
                        "--expect-seed", S0, "--expect-seed", "another seed")
    assert code == 1 and "expected 'loto" not in text
    assert "another seed" in text
