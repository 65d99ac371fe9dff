"""Dropout-aware replacement lists through the command line (`draw --dropout-rates FILE`,
docs/draw-spec.md section 12.5): the rates recorded in audit.json, the lists re-derived and
checked by `verify`, used by `simulate` and `replace`, the rates file refused with one line
naming the file, line and value, and `respondents --rates-out` writing a rates file."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from cli_runner import run
from cli_runner import verify_unanchored as verify

ROOT = Path(__file__).resolve().parent.parent
SEED = "loto 2026-12-02 — dropout-aware"
RATES = ("feature,value,rate\nage_band,18-24,0.3\nage_band,25-34,0.2\nage_band,35-49,0.1\n"
         "age_band,50-64,0.08\nage_band,65+,0.05\narea,rural,0.15\n")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("aware")
    pool, quotas, rates = d / "pool.parquet", d / "quotas.csv", d / "rates.csv"
    rates.write_text(RATES, encoding="utf-8")
    for args in (("synth", "--rows", 800, "--seed", 4, "--out", pool),
                 ("quotas", ROOT / "quotas" / "occitanie-2020.toml", "--size", 40,
                  "--out", quotas),
                 ("draw", pool, "-q", quotas, "-k", 40, "--seed", SEED, "--replacements", 3,
                  "--dropout-rates", rates, "-o", d / "aware"),
                 ("draw", pool, "-q", quotas, "-k", 40, "--seed", SEED, "--replacements", 3,
                  "--lottery", d / "aware", "-o", d / "plain"),
                 ("public-pool", pool, "-q", quotas, "-k", 40, "-o", d / "public.csv")):
        code, text = run(*args)
        assert code == 0, text
    return {"dir": d, "pool": pool, "quotas": quotas, "rates": rates,
            "audit": json.loads((d / "aware" / "audit.json").read_text(encoding="utf-8"))}


def test_draw_says_how_to_anchor_the_rates(drawn, tmp_path):
    d = drawn["dir"]
    code, text = run("draw", drawn["pool"], "-q", drawn["quotas"], "-k", 40, "--seed", SEED,
                     "--replacements", 1, "--dropout-rates", drawn["rates"], "--lottery",
                     d / "aware", "-o", tmp_path / "again")
    assert code == 0, text
    assert f"--expect-dropout-rates {drawn['rates']}" in text


def test_the_rates_are_recorded_and_the_lists_differ(drawn):
    record = drawn["audit"]["replacements"]["dropout_rates"]
    assert record["sha256"] == hashlib.sha256(drawn["rates"].read_bytes()).hexdigest()
    assert record["rates"][0] == ["age_band", "18-24", "0.3"]
    assert len(record["rates"]) == 6
    plain = json.loads((drawn["dir"] / "plain" / "audit.json").read_text(encoding="utf-8"))
    assert "dropout_rates" not in plain["replacements"]
    assert plain["draw"] == drawn["audit"]["draw"]  # the same panel
    aware = (drawn["dir"] / "aware.replacements.csv").read_bytes()
    assert aware != (drawn["dir"] / "plain.replacements.csv").read_bytes()
    assert hashlib.sha256(aware).hexdigest() == drawn["audit"]["replacements"]["sha256"]


def test_verify_rederives_the_dropout_aware_lists(drawn):
    for pool in (drawn["pool"], drawn["dir"] / "public.csv"):
        code, text = verify(drawn["dir"] / "aware", pool, "--replacements",
                            drawn["dir"] / "aware.replacements.csv")
        assert code == 0, text
        assert "dropout-aware" in text and drawn["audit"]["replacements"]["dropout_rates"][
            "sha256"] in text


def _anchored(drawn, bundle: Path, *extra: object) -> tuple[int, str]:
    lottery = hashlib.sha256((drawn["dir"] / "aware" / "lottery.json").read_bytes()).hexdigest()
    return run("verify", bundle, "--pool", drawn["pool"], "--expect-lottery-hash", lottery,
               "--expect-seed", SEED, *extra)


def test_dropout_rates_are_anchored_only_by_the_published_file(drawn, tmp_path):
    """Rates chosen after the seed could steer the lists: without the rates file published
    beforehand the draw is consistent but not anchored; with it, anchored; with another file,
    or with rates in audit.json that are not the file's, a difference."""
    aware = drawn["dir"] / "aware"
    code, text = _anchored(drawn, aware)
    assert code == 1 and "consistent but NOT anchored" in text, text
    assert "were not checked against the rates file published beforehand" in text
    code, text = _anchored(drawn, aware, "--expect-dropout-rates", drawn["rates"])
    assert code == 0 and "are those of the file published beforehand" in text, text
    assert "anchored: every lottery hash, seed, ticket and rates file" in text
    other = tmp_path / "other.csv"
    other.write_text(RATES.replace("0.3", "0.4"), encoding="utf-8")
    code, text = _anchored(drawn, aware, "--expect-dropout-rates", other)
    assert code == 1 and "replacements.dropout_rates, sha256:" in text, text
    # the same file's hash, other rows: audit.json was edited after the draw
    edited = _tampered(drawn, tmp_path,
                       lambda r: r["dropout_rates"]["rates"][5].__setitem__(2, "0.16"))
    code, text = _anchored(drawn, edited, "--expect-dropout-rates", drawn["rates"])
    assert code == 1 and "replacements.dropout_rates.rates[5]: ['area', 'rural', '0.16'] " \
        "recorded" in text and "has ['area', 'rural', '0.15']" in text, text
    # lists that are not dropout-aware: a rates file given is a difference
    code, text = run("verify", drawn["dir"] / "plain", "--pool", drawn["pool"],
                     "--unanchored-ok", "--expect-dropout-rates", drawn["rates"])
    assert code == 1 and "made dropout-aware replacement lists" in text, text
    code, text = _anchored(drawn, aware, "--expect-dropout-rates", tmp_path / "missing.csv")
    assert code == 2 and "missing.csv" in text
    os.mkfifo(tmp_path / "fifo.csv")  # refused before it is opened: nothing blocks
    code, text = _anchored(drawn, aware, "--expect-dropout-rates", tmp_path / "fifo.csv")
    assert code == 2 and "fifo.csv: a FIFO, not a regular file" in text, text


def _tampered(drawn, tmp_path, edit) -> Path:
    target = tmp_path / "aware"
    shutil.copytree(drawn["dir"] / "aware", target)
    audit = json.loads((target / "audit.json").read_text(encoding="utf-8"))
    edit(audit["replacements"])
    (target / "audit.json").write_text(json.dumps(audit), encoding="utf-8")
    return target


@pytest.mark.parametrize(("edit", "code", "expected"), [
    (lambda r: r["dropout_rates"]["rates"][0].__setitem__(2, "0.9"), 1,
     "audit.json, replacements.sha256"),
    (lambda r: r.pop("dropout_rates"), 1, "audit.json, replacements.sha256"),
    (lambda r: r["dropout_rates"]["rates"].pop(0), 1, "no rate for the people with"),
    (lambda r: r["dropout_rates"]["rates"][0].__setitem__(2, "2"), 2,
     "replacements.dropout_rates.rates[0]: rate '2' for age_band=18-24 is not between"),
    (lambda r: r["dropout_rates"].__setitem__("rates", "0.3"), 2,
     "replacements.dropout_rates.rates"),
    (lambda r: r["dropout_rates"]["rates"].append(["age_band", "18-24", "0.1"]), 2,
     "a second rate for age_band=18-24"),
])
def test_verify_finds_tampered_rates(drawn, tmp_path, edit, code, expected):
    found, text = verify(_tampered(drawn, tmp_path, edit), drawn["pool"])
    assert found == code, text
    assert expected in text
    assert "Traceback" not in text


def test_simulate_and_replace_use_the_dropout_aware_lists(drawn, tmp_path):
    d = drawn["dir"]
    figures = {}
    for name in ("plain", "aware"):
        code, text = run("simulate", d / name, "--pool", drawn["pool"], "--seed", "s",
                         "--rates", drawn["rates"], "--trials", 2000)
        assert code == 0, text
        figures[name] = text
    assert figures["plain"] != figures["aware"]
    # the lists follow from the seed, the lottery and the people drawn, not the panel's number
    nameless = _tampered(drawn, tmp_path / "nameless", lambda r: None)
    audit = json.loads((nameless / "audit.json").read_text(encoding="utf-8"))
    audit["draw"]["panel_number"] = None
    (nameless / "audit.json").write_text(json.dumps(audit), encoding="utf-8")
    code, text = run("simulate", nameless, "--pool", drawn["pool"], "--seed", "s",
                     "--rates", drawn["rates"], "--trials", 2000)
    assert code == 0 and text == figures["aware"].replace(str(d / "aware"), str(nameless)), text
    member = drawn["audit"]["draw"]["ids"][0]
    first = next(r for r in csv.DictReader((d / "aware.replacements.csv").open(encoding="utf-8"))
                 if r["member_id"] == member)
    (tmp_path / "declined.txt").write_text(member + "\n", encoding="utf-8")
    shutil.copytree(d / "aware", tmp_path / "aware")
    code, text = run("replace", tmp_path / "aware", "--pool", drawn["pool"], "--declined",
                     tmp_path / "declined.txt", "--seed", "round 1", "--out", tmp_path / "r1")
    assert code == 0, text
    audit = json.loads((tmp_path / "r1" / "audit.json").read_text(encoding="utf-8"))
    assert audit["replacements"][0]["joined"] == first["replacement_id"]
    code, text = verify(tmp_path / "r1", drawn["pool"])
    assert code == 0, text


@pytest.mark.parametrize(("text", "expected"), [
    ("feature,value,rate\nage_band,18-24,1e-1\n", "rates.csv, row 1: rate '1e-1' for "
     "age_band=18-24 is not a number written as a plain decimal"),
    ("feature,value,rate\nage_band,18-24,-0.1\n", "rates.csv, row 1: rate '-0.1'"),
    ("feature,value,rate\nage_band,18-24,0.1234567\n", "at most 6 decimals"),
    ("feature,value,rate\nage_band,teen,0.1\n", "rates.csv, row 1: 'teen' is not a value of "
     "age_band"),
    ("feature,value,rate\nage_band,18-24,0.3\n", "rates.csv: no rate for the people with"),
])
def test_draw_refuses_bad_rates(drawn, tmp_path, text, expected):
    rates = tmp_path / "rates.csv"
    rates.write_text(text, encoding="utf-8")
    code, out = run("draw", drawn["pool"], "-q", drawn["quotas"], "-k", 40, "--seed", SEED,
                    "--replacements", 2, "--dropout-rates", rates, "-o", tmp_path / "b")
    assert code == 2, out
    assert expected in out
    assert not (tmp_path / "b").exists()


def test_draw_needs_replacements_for_rates(drawn, tmp_path):
    code, out = run("draw", drawn["pool"], "-q", drawn["quotas"], "-k", 40, "--seed", SEED,
                    "--dropout-rates", drawn["rates"], "-o", tmp_path / "b")
    assert code == 2
    assert "--dropout-rates" in out and "needs --replacements" in out
