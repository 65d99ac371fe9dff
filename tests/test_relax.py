"""Soft quotas end to end: `check` proposes the relaxation, `lottery/draw --relax` commit to it
in lottery.json, `verify` checks the draw against it and shows it; a relaxed lottery is drawn
from only with --relax and the same relaxation; tampering with it is caught."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cli_runner import run

from sortition.core.errors import InputError
from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.lottery.publish import read_lottery

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
RELAXED = [{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [15, 18]}]


def soft_quotas(plain: Path, out: Path, *, woman=(17, 18), flex: int = 3,
                woman_flex: tuple[int, int] | None = None) -> Path:
    """The resolved Occitanie quotas for 30 seats, women 17–18 (with men 15: infeasible), and
    flex columns: `flex` seats either side, or `woman_flex` for that row."""
    rows = plain.read_text(encoding="utf-8").splitlines()
    lines = [rows[0] + ",min_flex,max_flex"]
    for row in rows[1:]:
        f, v, lo, hi = row.rsplit(",", 3)
        lo, hi = (woman if (f, v) == ("gender", "woman") else (int(lo), int(hi)))
        lo_f, hi_f = max(0, lo - flex), min(30, hi + flex)
        if (f, v) == ("gender", "woman") and woman_flex is not None:
            lo_f, hi_f = woman_flex
        lines.append(f"{f},{v},{lo},{hi},{lo_f},{hi_f}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("relax")
    write_pool(synthesize_pool(600, 3), d / "pool.csv")
    assert run("quotas", SPEC, "--size", "30", "--out", d / "q.csv")[0] == 0
    soft = soft_quotas(d / "q.csv", d / "soft.csv")
    assert run("public-pool", d / "pool.csv", "-q", soft, "-k", "30", "-o", d / "pub.csv")[0] == 0
    code, out = run("lottery", d / "pool.csv", "-q", soft, "-k", "30", "-o", d / "lot", "--relax")
    assert code == 0, out
    assert "relaxed quota (recorded in lottery.json): gender=woman: min 17 → 15" in out
    code, out = run("draw", d / "pool.csv", "-q", soft, "-k", "30", "--lottery", d / "lot",
                    "--relax", "--seed", "s", "-o", d / "b", "--replacements", "2")
    assert code == 0, out
    return {"dir": d, "soft": soft, "hash": sha(d / "lot" / "lottery.json")}


def verify(d: Path, bundle: Path, h: str, *extra: object) -> tuple[int, dict]:
    code, out = run("verify", bundle, "--pool", d / "pub.csv", "--expect-lottery-hash", h,
                    "--expect-seed", "s", "--json", *extra)
    return code, json.loads(out)


def test_check_proposes_the_relaxation_within_flex(made, tmp_path):
    d = made["dir"]
    code, out = run("check", d / "pool.csv", "-q", made["soft"], "-k", "30", "--json")
    assert code == 1
    report = json.loads(out)
    assert [(r["feature"], r["value"], r["new_min"], r["new_max"]) for r in report["relaxation"]] \
        == [("gender", "woman", 15, 18)]
    assert report["relaxation_total"] == 2 and report["relaxation_optimal"]
    # the flex bounds forbid lowering women below 16: men's maximum is raised instead
    tight = soft_quotas(d / "q.csv", tmp_path / "tight.csv", woman_flex=(16, 18))
    report = json.loads(run("check", d / "pool.csv", "-q", tight, "-k", "30", "--json")[1])
    assert [(r["value"], r["new_min"], r["new_max"]) for r in report["relaxation"]] == [
        ("man", 13, 15)]
    # no room at all: exit 1, and the reason says the flex bounds are the limit
    none = soft_quotas(d / "q.csv", tmp_path / "none.csv", flex=0)
    code, out = run("check", d / "pool.csv", "-q", none, "-k", "30", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["relaxation"] is None and report["relaxation_beyond_flex"] is True
    assert any("flex bounds" in r for r in report["reasons"])
    code, out = run("lottery", d / "pool.csv", "-q", none, "-k", "30", "-o", tmp_path / "l",
                    "--relax")
    assert code == 1 and "flex bounds" in out
    assert not (tmp_path / "l").exists()


def test_the_lottery_records_the_relaxed_bounds(made):
    d = made["dir"]
    text = (d / "lot" / "lottery.json").read_text(encoding="utf-8")
    assert text.splitlines()[8] == (' "relaxation": [{"features": ["gender"], "values": '
                                    '["woman"], "from": [17, 18], "to": [15, 18]}],')
    pub = read_lottery(text.encode("utf-8"), "lottery.json")
    assert [(r.label, r.new_min) for r in pub.relaxation] == [("gender=woman", 15)]
    audit = json.loads((d / "b" / "audit.json").read_text(encoding="utf-8"))
    assert audit["relaxation"] == RELAXED
    woman = [q for q in audit["quotas_achieved"] if q["value"] == "woman"][0]
    assert (woman["min"], woman["max"]) == (15, 18) and 15 <= woman["achieved"] <= 18
    assert ["gender", "woman", 17, 18] in audit["inputs"]["quotas"]["quotas"]  # as set
    report = (d / "b" / "report.html").read_text(encoding="utf-8")
    assert "Relaxed quotas" in report and "17–18" in report and "15–18" in report


def test_without_relax_nothing_is_relaxed(made, tmp_path):
    d = made["dir"]
    code, out = run("lottery", d / "pool.csv", "-q", made["soft"], "-k", "30",
                    "-o", tmp_path / "l")
    assert code == 1 and not (tmp_path / "l").exists()
    # feasible quotas: --relax changes nothing, byte for byte
    for name, extra in (("a", []), ("b", ["--relax"])):
        code, out = run("lottery", d / "pool.csv", "-q", d / "q.csv", "-k", "30",
                        "-o", tmp_path / name, *extra)
        assert code == 0, out
    assert (tmp_path / "a" / "lottery.json").read_bytes() == \
        (tmp_path / "b" / "lottery.json").read_bytes()
    assert b"relaxation" not in (tmp_path / "a" / "lottery.json").read_bytes()


def test_a_relaxed_lottery_needs_relax_and_the_same_relaxation(made, tmp_path):
    d = made["dir"]
    code, out = run("draw", d / "pool.csv", "-q", made["soft"], "-k", "30", "--lottery",
                    d / "lot", "--seed", "s", "-o", tmp_path / "b")
    assert code == 2
    assert "computed for relaxed quotas (gender=woman: min 17 → 15): give --relax" in out
    assert not (tmp_path / "b").exists()
    # other flex bounds (the fingerprint does not cover them): --relax gives another relaxation
    other = soft_quotas(d / "q.csv", tmp_path / "other.csv", woman_flex=(16, 18))
    code, out = run("draw", d / "pool.csv", "-q", other, "-k", "30", "--lottery", d / "lot",
                    "--relax", "--seed", "s", "-o", tmp_path / "b")
    assert code == 2
    assert "it records the relaxation gender=woman: min 17 → 15, but --relax gives" in out
    assert not (tmp_path / "b").exists()
    none = soft_quotas(d / "q.csv", tmp_path / "none.csv", flex=0)
    code, out = run("draw", d / "pool.csv", "-q", none, "-k", "30", "--lottery", d / "lot",
                    "--relax", "--seed", "s", "-o", tmp_path / "b")
    assert code == 2 and "cannot be relaxed within their flex bounds now" in out


def test_verify_checks_and_shows_the_relaxation(made):
    d = made["dir"]
    lists = d / "b.replacements.csv"
    code, res = verify(d, d / "b", made["hash"], "--replacements", lists)
    assert code == 0 and res["verified"] and res["anchored"], res["differences"]
    assert res["relaxation"] == RELAXED
    assert any("relaxed quotas, recorded in lottery.json" in c
               and "gender=woman: min 17 → 15" in c for c in res["checked"])
    code, res = verify(d, d / "b", made["hash"], "--quotas", made["soft"], "--recompute")
    assert code == 0, res["differences"]
    assert any("recomputed relaxation agrees" in c for c in res["checked"])
    assert any("within the flex bounds of" in c for c in res["checked"])
    code, res = verify(d, d / "b", made["hash"], "--recompute")
    assert code == 0 and any("the relaxation is not recomputed" in c for c in res["checked"])


def test_verify_with_quota_flex_that_does_not_allow_it(made, tmp_path):
    d = made["dir"]
    tight = soft_quotas(d / "q.csv", tmp_path / "tight.csv", woman_flex=(16, 18))
    code, res = verify(d, d / "b", made["hash"], "--quotas", tight)
    assert code == 1
    assert any("gender=woman relaxed to [15, 18], beyond the flex bounds [16, 18]" in x
               for x in res["differences"]), res["differences"]


def _copy(d: Path, tmp: Path) -> Path:
    bundle = tmp / "b"
    shutil.copytree(d / "b", bundle)
    return bundle


def test_tampering_with_the_relaxation_is_caught(made, tmp_path):
    d = made["dir"]
    bundle = _copy(d, tmp_path)
    audit = json.loads((bundle / "audit.json").read_text(encoding="utf-8"))
    audit["relaxation"][0]["to"] = [16, 18]
    (bundle / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    code, res = verify(d, bundle, made["hash"])
    assert code == 1
    assert "audit.json, relaxation: differs from the relaxation recorded in lottery.json" in \
        res["differences"]
    del audit["relaxation"]
    (bundle / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    assert verify(d, bundle, made["hash"])[0] == 1
    # the relaxation in lottery.json changed: the lottery is no longer the one committed to,
    # and its panels break the bounds now stated
    bundle = _copy(d, tmp_path / "x")
    lot = bundle / "lottery.json"
    lot.write_bytes(lot.read_bytes().replace(b'"to": [15, 18]', b'"to": [16, 18]'))
    code, res = verify(d, bundle, made["hash"])
    assert code == 1
    joined = "\n".join(res["differences"])
    assert "the lottery file was changed" in joined
    assert "audit.json, relaxation: differs" in joined
    # and from [17, 18] → a bound the quotas do not have
    bundle = _copy(d, tmp_path / "y")
    lot = bundle / "lottery.json"
    lot.write_bytes(lot.read_bytes().replace(b'"from": [17, 18]', b'"from": [16, 18]'))
    code, res = verify(d, bundle, made["hash"])
    assert code == 1
    assert any("relaxed from [16, 18], but the quotas say [17, 18]" in x
               for x in res["differences"])


@pytest.mark.parametrize(("entry", "culprit"), [
    ("[]", "not a non-empty list"),
    ('"x"', "not a non-empty list"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [17, 18]}]', "relaxation[0]"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [18, 18]}]',
     "does not loosen"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [17, 18]}]',
     "does not loosen"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [15, 1.5]}]',
     "relaxation[0], to"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [-1, 18]}]',
     "relaxation[0], to"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [19, 18], "to": [15, 19]}]',
     "relaxation[0], from"),
    ('[{"features": ["gender"], "values": ["woman", "x"], "from": [17, 18], "to": [15, 18]}]',
     "1 feature(s) for 2 value(s)"),
    ('[{"features": [], "values": [], "from": [17, 18], "to": [15, 18]}]', "0 feature(s)"),
    ('[{"features": [1], "values": ["woman"], "from": [17, 18], "to": [15, 18]}]',
     "features[0]"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [15, 18]}, '
     '{"features": ["gender"], "values": ["man"], "from": [15, 15], "to": [15, 16]}]',
     "out of order"),
    ('[{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [15, 18]}, '
     '{"features": ["gender"], "values": ["woman"], "from": [17, 18], "to": [15, 18]}]',
     "listed twice"),
])
def test_a_malformed_relaxation_is_refused(made, tmp_path, entry, culprit):
    d = made["dir"]
    data = (d / "lot" / "lottery.json").read_bytes()
    line = data.split(b"\n")[8]
    bad = data.replace(line, b' "relaxation": ' + entry.encode() + b",")
    with pytest.raises(InputError, match="relaxation") as info:
        read_lottery(bad, "lottery.json")
    assert culprit in str(info.value)
    # through verify: a hostile bundle, exit 2 naming the field
    bundle = _copy(d, tmp_path)
    (bundle / "lottery.json").write_bytes(bad)
    code, out = run("verify", bundle, "--pool", d / "pub.csv", "--unanchored-ok")
    assert code == 2 and "relaxation" in out


def test_replacements_keep_to_the_relaxed_bounds(made, tmp_path):
    d = made["dir"]
    bundle = _copy(d, tmp_path)
    shutil.copy(d / "b.replacements.csv", tmp_path / "b.replacements.csv")
    ids = json.loads((bundle / "audit.json").read_text(encoding="utf-8"))["draw"]["ids"]
    (tmp_path / "declined.txt").write_text(f"{ids[0]}\n{ids[5]}\n", encoding="utf-8")
    code, out = run("replace", bundle, "--pool", d / "pool.csv", "--declined",
                    tmp_path / "declined.txt", "--seed", "r", "-o", tmp_path / "b2")
    assert code == 0, out
    audit = json.loads((tmp_path / "b2" / "audit.json").read_text(encoding="utf-8"))
    woman = [q for q in audit["quotas_achieved"] if q["quota"] == "gender=woman"]
    assert (woman[0]["min"], woman[0]["max"]) == (15, 18), audit["quotas_achieved"]
    args = ["verify", tmp_path / "b2", "--pool", d / "pub.csv", "--expect-seed", "s",
            "--expect-seed", "r", "--expect-lottery-hash", made["hash"], "--json"]
    if (tmp_path / "b2" / "lottery.json").exists():
        args += ["--expect-lottery-hash", sha(tmp_path / "b2" / "lottery.json")]
    code, out = run(*args)
    res = json.loads(out)
    assert code == 0 and res["verified"], res["differences"]


def test_probabilities_relax(made, tmp_path):
    d = made["dir"]
    code, out = run("probabilities", d / "pool.csv", "-q", made["soft"], "-k", "30", "--out",
                    tmp_path / "p.csv", "--json")
    assert code == 1
    code, out = run("probabilities", d / "pool.csv", "-q", made["soft"], "-k", "30", "--out",
                    tmp_path / "p.csv", "--json", "--relax")
    assert code == 0, out
    assert json.loads(out)["relaxation"] == RELAXED


def test_quotas_shows_the_flex_bounds(tmp_path):
    """`quotas` on soft quotas: the table has min_flex/max_flex columns (blank where a quota
    declares none), --json carries them, and --out keeps them."""
    spec = tmp_path / "soft.toml"
    spec.write_text("size = 10\n[features.gender]\nshares = { woman = 0.5, man = 0.5 }\n"
                    "flex = { below = 2, above = 1 }\n"
                    "[features.area]\nshares = { urban = 0.6, rural = 0.4 }\n",
                    encoding="utf-8")
    code, out = run("quotas", spec)
    assert code == 0, out
    assert "┃ min ┃ max ┃ min_flex ┃ max_flex ┃" in out
    assert "│ woman │ 50.00 % │ 5 │ 5 │ 5 │ 3 │ 6 │" in out  # min 5 − 2, max 5 + 1
    assert "│ urban │ 60.00 % │ 6 │ 6 │ 6 │ │ │" in out  # none declared: blank
    assert "blank: not declared, anywhere in [0, panel size]" in out
    rows = json.loads(run("quotas", spec, "--json")[1])["quotas"]
    assert [(r["value"], r["min_flex"], r["max_flex"]) for r in rows] == [
        ("woman", 3, 6), ("man", 3, 6), ("urban", None, None), ("rural", None, None)]
    code, out = run("quotas", spec, "--out", tmp_path / "again.toml")
    assert code == 0, out
    assert "min_flex = 3, max_flex = 6" in (tmp_path / "again.toml").read_text(encoding="utf-8")
    code, out = run("quotas", SPEC, "--size", "30")
    assert code == 0 and "min_flex" not in out  # no soft quota: no flex columns
