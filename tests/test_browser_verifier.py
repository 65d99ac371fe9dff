"""verify.html in a real browser: it must agree with `sortition verify`.

The system Chromium is driven over the DevTools protocol (tests/browser_driver.py): the page is
opened from disk, the bundle's files and the public pool extract are given to its file inputs as
a garant would choose them, the seed and hash are typed, the button is clicked and the verdict
the page shows is read back. Without Chromium these tests skip, saying so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pytest
from browser_driver import Browser, chromium
from cli_runner import run

from sortition.bundle.verifier import page_bytes, page_sha256
from sortition.inputs.rates import load_rates
from sortition.inputs.synth import synthesize_pool, write_pool

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
PAGE = ROOT / "sortition" / "bundle" / "verifier" / "verify.html"

pytestmark = pytest.mark.skipif(
    chromium() is None,
    reason="browser tests of verify.html skipped: no Chromium (install the Debian package "
           "'chromium'; .ci/run does so when it can)")


RATES = ("feature,value,rate\nage_band,18-24,0.3\nage_band,25-34,0.2\nage_band,35-49,0.1\n"
         "age_band,50-64,0.08\nage_band,65+,0.05\narea,rural,0.15\n")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lists_file(bundle: Path) -> Path:
    """The replacement lists `sortition draw` writes beside the bundle (garant material)."""
    return bundle.parent / f"{bundle.name}.replacements.csv"


def trigger_ids(table: pa.Table) -> pa.Table:
    """The pool with ids a spreadsheet would evaluate (and a comma, a quote): every CSV the tool
    writes holds them through the cell rule, and the page must undo it to agree."""
    marks = ["=", "-", "'", "@", "+", "", "'=", "a,", 'q"']
    ids = [marks[k % len(marks)] + str(i) for k, i in enumerate(table.column("id").to_pylist())]
    return table.set_column(table.column_names.index("id"), "id", pa.array(ids, pa.string()))


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("browser")
    write_pool(synthesize_pool(600, 5), d / "pool.csv")
    write_pool(trigger_ids(synthesize_pool(600, 5)), d / "cells.parquet")
    assert run("quotas", SPEC, "--size", "30", "--out", d / "q.csv")[0] == 0
    for name, pool, extra in (("pub.csv", "pool.csv", []),
                              ("pubh.csv", "pool.csv", ["--household-column", "household"]),
                              ("pubc.csv", "cells.parquet", [])):
        code, text = run("public-pool", d / pool, "-q", d / "q.csv", "-k", "30",
                         "-o", d / name, *extra)
        assert code == 0, text
    draws = {
        "plain": [],
        "lists": ["--replacements", "2"],
        "households": ["--household-column", "household", "--household-seed", "hh",
                       "--replacements", "1"],
        "transparent": ["--panels", "25"],
        "ticket": ["--panels", "25", "--ticket", "5"],
        "aware": ["--replacements", "3", "--dropout-rates", d / "rates.csv"],
        "aware-h": ["--household-column", "household", "--household-seed", "hh",
                    "--replacements", "2", "--dropout-rates", d / "rates.csv"],
    }
    (d / "rates.csv").write_text(RATES, encoding="utf-8")
    for name, extra in draws.items():
        code, text = run("draw", d / "pool.csv", "-q", d / "q.csv", "-k", "30", "--seed",
                         f"seed {name}", "-o", d / name, *extra)
        assert code == 0, text
    code, text = run("draw", d / "cells.parquet", "-q", d / "q.csv", "-k", "30", "--seed",
                     "seed cells", "-o", d / "cells", "--replacements", "2")
    assert code == 0, text
    # quotas that cannot all be met (women 17–18 and men 15 of 30): drawn with --relax
    rows = (d / "q.csv").read_text(encoding="utf-8").splitlines()
    soft = [rows[0] + ",min_flex,max_flex"]
    for row in rows[1:]:
        f, v, lo, hi = row.rsplit(",", 3)
        lo, hi = (17, 18) if (f, v) == ("gender", "woman") else (int(lo), int(hi))
        soft.append(f"{f},{v},{lo},{hi},{max(0, lo - 3)},{min(30, hi + 3)}")
    (d / "soft.csv").write_text("\n".join(soft) + "\n", encoding="utf-8")
    code, text = run("draw", d / "pool.csv", "-q", d / "soft.csv", "-k", "30", "--seed",
                     "seed relaxed", "-o", d / "relaxed", "--replacements", "2", "--relax")
    assert code == 0, text
    panel = json.loads((d / "relaxed" / "audit.json").read_text(encoding="utf-8"))["draw"]["ids"]
    (d / "roundr.txt").write_text(f"{panel[0]}\n{panel[3]}\n", encoding="utf-8")
    code, text = run("replace", d / "relaxed", "--pool", d / "pool.csv", "--declined",
                     d / "roundr.txt", "--seed", "round one", "-o", d / "roundr")
    assert code == 0, text
    panel = json.loads((d / "lists" / "audit.json").read_text(encoding="utf-8"))["draw"]["ids"]
    # round1: two members whose seats need a new lottery; round1b: one a list swap fills
    aware = json.loads((d / "aware" / "audit.json").read_text(encoding="utf-8"))["draw"]["ids"]
    for name, declined, origin in (("round1", [panel[0], panel[3]], "lists"),
                                   ("round1b", [panel[1]], "lists"),
                                   ("round1a", [aware[2]], "aware")):
        (d / f"{name}.txt").write_text("".join(f"{i}\n" for i in declined), encoding="utf-8")
        code, text = run("replace", d / origin, "--pool", d / "pool.csv", "--declined",
                         d / f"{name}.txt", "--seed", "round one", "-o", d / name)
        assert code == 0, text
    # roundg: the same seats as round1, the new lottery Goldilocks (replace --algorithm)
    code, text = run("replace", d / "lists", "--pool", d / "pool.csv", "--declined",
                     d / "round1.txt", "--prepare", "-a", "goldilocks", "-o", d / "lotg")
    assert code == 0, text
    code, text = run("replace", d / "lists", "--pool", d / "pool.csv", "--declined",
                     d / "round1.txt", "--seed", "round one", "--lottery", d / "lotg",
                     "-o", d / "roundg")
    assert code == 0, text
    return {"dir": d}


PREVIOUS = {"round1": "lists", "round1b": "lists", "roundr": "relaxed", "round1a": "aware",
            "roundg": "lists"}


def announced(d: Path, name: str) -> dict:
    """What a garant was told in public about bundle `name`."""
    if name.startswith("round"):
        out = announced(d, PREVIOUS.get(name, "lists"))
        out["round_seed"] = "round one"
        if (d / name / "lottery.json").exists():
            out["round_hash"] = sha(d / name / "lottery.json")
        return out
    out = {"seed": f"seed {name}", "hash": sha(d / name / "lottery.json")}
    if name == "ticket":
        out["ticket"] = "5"
    if name.startswith("aware"):  # dropout-aware lists: the rates file published beforehand
        out["rates"] = d / "rates.csv"
    return out


def cli_verify(d: Path, bundle: Path, pool: Path, a: dict, lists: Path | None = None) -> dict:
    args = ["verify", bundle, "--pool", pool, "--json"]
    if lists is not None:
        args += ["--replacements", lists]
    for seed in (a.get("seed"), a.get("round_seed")):
        if seed:
            args += ["--expect-seed", seed]
    for h in (a.get("hash"), a.get("round_hash")):
        if h:
            args += ["--expect-lottery-hash", h]
    if a.get("ticket"):
        args += ["--expect-ticket", a["ticket"]]
    if a.get("rates"):
        args += ["--expect-dropout-rates", a["rates"]]
    code, text = run(*args)
    assert code in (0, 1), text
    return json.loads(text)


def page_verify(browser: Browser, bundle: Path, pool: Path, a: dict,
                previous: Path | None = None, lists: Path | None = None) -> dict:
    """The verdict verify.html shows, after a garant's clicks (the same path as the UI)."""
    browser.open(PAGE)
    browser.set_files("#bundle", sorted(p for p in bundle.iterdir() if p.is_file()))
    browser.set_files("#pool", [pool])
    if lists is not None:
        browser.set_files("#lists", [lists])
    if a.get("rates"):
        browser.set_files("#rates", [a["rates"]])
    if previous is not None:
        browser.set_files("#previous", sorted(p for p in previous.iterdir() if p.is_file()))
    fields = {"seed": a.get("seed", ""), "hash": a.get("hash", ""),
              "ticket": a.get("ticket", ""), "round-seed": a.get("round_seed", ""),
              "round-hash": a.get("round_hash", "")}
    browser.evaluate("".join(f"document.getElementById({json.dumps(k)}).value = "
                             f"{json.dumps(v)};" for k, v in fields.items()) + "1")
    browser.evaluate("window.sortitionResult = null; document.getElementById('run').click(); 1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        result = browser.evaluate("window.sortitionResult")
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("verify.html gave no verdict within 120 s")


def test_known_answer_vectors_in_the_page(browser, tmp_path):
    """docs/draw-spec.md section 8, through the page's own stream, below, panel and choose."""
    browser.open(PAGE)
    k = browser.evaluate("window.sortitionKnownAnswers()")
    assert k["block0"] == "7e463ab9f4b5b7bc83499aa98af5d255d75f9289b18f055b8bf0e2e10c0a1471"
    assert k["block1"] == "9310bd09118b66e11e63bbafabdda65d309359def29e4d4dad6070ede0aff30a"
    assert k["below1000"] == [380, 5, 659]
    assert k["below1e12"] == "667497576380"
    assert k["panelIndex"] == 3 and k["ticket"] == 381
    assert k["people4block0"] == ("e7b8701a555105b9353e10ed5b11fcbb9a3453173d60b03e04e0416aa1"
                                  "70e1b8")
    assert k["people4"] == ["p10", "p05", "p09"]
    assert k["rejection"] == "126572874966445948"
    # draw-spec section 17: the spreadsheet cell rule, and back
    assert k["cells"] == ["'=1+1", "'=HYPERLINK(\"x\")", "'@SUM(1+1)", "'+cmd|' /C calc'!A0",
                          "'-5", "'\tx", "'\rx", "''x", "''", "'''", "a=1", "OC0001", "é",
                          " =x", ""]
    assert k["hyperlinkLine"] == '"\'=HYPERLINK(""x"")"'
    assert k["cellsBack"] is True
    # bundle-format sections 4.1 and 4.2: the worked pool fingerprints
    assert k["poolFingerprint"] == ("0fc379403844b4aa28fa43724824bc18ca7cd42d5cf0fc25d7ea3eaca"
                                    "32e7f60")
    assert k["poolFingerprintHouseholds"] == ("bfcd44d85c88ad201a0e7fcaf44ee44373b38fe9565ec8"
                                              "69ad2e13afc7b5a5de")
    # draw-spec section 12.7: the dropout-aware lists, and rates read exactly (section 12.5)
    assert k["dropoutAware"][:4] == ["f5,1,f6", "f5,2,n1", "f2,1,f8", "f2,2,f3"]
    assert k["rates"][:4] == ["0/1", "1/1", "1/1", "1/2"] and set(k["rates"][4:]) == {None}
    # a rates file is read as sortition reads it: the page's rows are load_rates's
    path = tmp_path / "rates.csv"
    path.write_bytes(k["ratesFileText"].encode("utf-8"))
    assert path.read_bytes().startswith(b"\xef\xbb\xbfrate;") and b"\r\n\r\n" in path.read_bytes()
    assert k["ratesFile"] == [list(row) for row in load_rates(path).rows]
    assert k["ok"] is True
    assert browser.evaluate("document.getElementById('kat').textContent") == "✓ OK"


POOLS = {"households": "pubh.csv", "cells": "pubc.csv", "aware-h": "pubh.csv"}  # else pub.csv
WITH_LISTS = {"lists": "lists", "households": "households", "cells": "cells", "round1": "lists",
              "round1b": "lists", "relaxed": "relaxed", "roundr": "relaxed", "aware": "aware",
              "aware-h": "aware-h", "round1a": "aware"}


@pytest.mark.parametrize("name", ["plain", "lists", "households", "transparent", "ticket",
                                  "cells", "round1", "round1b", "relaxed", "roundr", "aware",
                                  "aware-h", "round1a", "roundg"])
def test_genuine_bundles_agree_with_verify(browser, made, name):
    d = made["dir"]
    pool = d / POOLS.get(name, "pub.csv")
    a = announced(d, name)
    lists = lists_file(d / WITH_LISTS[name]) if name in WITH_LISTS else None
    cli = cli_verify(d, d / name, pool, a, lists)
    page = page_verify(browser, d / name, pool, a,
                       previous=(d / PREVIOUS.get(name, "lists") if name.startswith("round")
                                 else None),
                       lists=lists)
    assert cli["verified"] and cli["anchored"], cli["differences"] + cli["not_anchored"]
    assert page["differences"] == [] and page["not_anchored"] == [], page["lines"]
    assert page["verified"] and page["anchored"] and page["ok"]
    if lists is not None:  # the lists re-derived match the commitment; the file is exactly them
        for checked in (cli["checked"], page["checked"]):
            assert any("match the commitment in audit.json" in c for c in checked), checked
            assert any(f"{lists.name} is exactly what the seed gives" in c for c in checked)
    audit = json.loads((d / name / "audit.json").read_text(encoding="utf-8"))
    recorded = (audit.get("panel") or audit["draw"])["ids"]
    assert page["summary"]["ids"] == recorded  # the same panel as the one verify re-derived
    if name.startswith("aware"):  # the dropout-aware procedure, said so by both
        for checked in (cli["checked"], page["checked"]):
            assert any("dropout-aware" in c for c in checked), checked
    if name in ("round1b", "round1a"):  # the list swap is checked against the seed's lists
        assert [e["how"] for e in audit["replacements"]] == ["replacement list"]
        assert any("each list swap takes" in c for c in page["checked"]), page["checked"]
    if not name.startswith("round"):
        assert page["summary"]["panel_number"] == cli["panel_number"]
    if name == "relaxed":  # the relaxation is checked, and shown, by both
        assert audit["relaxation"] == [{"features": ["gender"], "values": ["woman"],
                                        "from": [17, 18], "to": [15, 18]}]
        shown = "relaxed quotas, recorded in lottery.json"
        for checked in (cli["checked"], page["checked"]):
            assert any(shown in c and "gender=woman: min 17 → 15" in c for c in checked)


def test_a_tampered_relaxation_is_caught_like_verify(browser, made, tmp_path):
    """audit.json showing another relaxation than the one lottery.json commits to."""
    d = made["dir"]
    bundle = tmp_path / "relaxed"
    shutil.copytree(d / "relaxed", bundle)
    _rewrite_audit(bundle, lambda audit: audit["relaxation"][0].update(to=[16, 18]))
    a = announced(d, "relaxed")
    cli = cli_verify(d, bundle, d / "pub.csv", a)
    page = page_verify(browser, bundle, d / "pub.csv", a)
    for verdict in (cli, page):
        assert not verdict["verified"]
        assert any("audit.json, relaxation: differs" in x for x in verdict["differences"])


def test_tampered_dropout_rates_are_caught_like_verify(browser, made, tmp_path):
    """A rate changed in audit.json: other lists than the committed ones, for both checkers."""
    d = made["dir"]
    bundle = tmp_path / "aware"
    shutil.copytree(d / "aware", bundle)
    _rewrite_audit(bundle, lambda audit: audit["replacements"]["dropout_rates"]["rates"][0]
                   .__setitem__(2, "0.95"))
    a = announced(d, "aware")
    cli = cli_verify(d, bundle, d / "pub.csv", a)
    page = page_verify(browser, bundle, d / "pub.csv", a)
    for verdict in (cli, page):
        assert not verdict["verified"]
        assert any("replacements.sha256" in line for line in verdict["differences"]), verdict
    _rewrite_audit(bundle, lambda audit: audit["replacements"]["dropout_rates"]["rates"][0]
                   .__setitem__(2, "1e-1"))
    page = page_verify(browser, bundle, d / "pub.csv", a)
    assert any("not a plain decimal" in line for line in page["differences"]), page


def test_dropout_rates_are_anchored_like_verify(browser, made, tmp_path):
    """Dropout-aware lists are anchored only by the rates file published beforehand: without
    it both checkers say not anchored; another file, or rates in audit.json that are not the
    file's, is a difference for both; a rates file given for lists that are not dropout-aware
    too."""
    d = made["dir"]
    a = announced(d, "aware")
    without = {k: v for k, v in a.items() if k != "rates"}
    for verdict in (cli_verify(d, d / "aware", d / "pub.csv", without),
                    page_verify(browser, d / "aware", d / "pub.csv", without)):
        assert verdict["verified"] and not verdict["anchored"], verdict
        assert any("were not checked against the rates file published beforehand" in x
                   for x in verdict["not_anchored"]), verdict
    other = tmp_path / "other.csv"
    other.write_text(RATES.replace("0.15", "0.25"), encoding="utf-8")
    for verdict in (cli_verify(d, d / "aware", d / "pub.csv", {**a, "rates": other}),
                    page_verify(browser, d / "aware", d / "pub.csv", {**a, "rates": other})):
        assert not verdict["verified"]
        assert any("replacements.dropout_rates, sha256:" in x and "other.csv" in x
                   for x in verdict["differences"]), verdict
    bundle = tmp_path / "aware"
    shutil.copytree(d / "aware", bundle)
    _rewrite_audit(bundle, lambda audit: audit["replacements"]["dropout_rates"]["rates"][5]
                   .__setitem__(2, "0.16"))
    for verdict in (cli_verify(d, bundle, d / "pub.csv", a),
                    page_verify(browser, bundle, d / "pub.csv", a)):
        assert any("replacements.dropout_rates.rates[5]:" in x and "0.16" in x
                   for x in verdict["differences"]), verdict
    plain = announced(d, "lists")
    for verdict in (cli_verify(d, d / "lists", d / "pub.csv", {**plain, "rates": a["rates"]}),
                    page_verify(browser, d / "lists", d / "pub.csv",
                                {**plain, "rates": a["rates"]})):
        assert any("made dropout-aware replacement lists" in x
                   for x in verdict["differences"]), verdict


def test_the_cell_rule_is_exercised(made):
    """The `cells` bundle really holds cells written through the rule (else its agreement above
    would prove nothing about it)."""
    d = made["dir"]
    for path in (d / "cells" / "panel.csv", lists_file(d / "cells"), d / "pubc.csv"):
        text = path.read_text(encoding="utf-8")
        assert "\n'=" in text or "\n\"'=" in text, path
        assert "\n''" in text or "\n\"''" in text, path


def test_unanchored_is_said_so(browser, made):
    d = made["dir"]
    page = page_verify(browser, d / "plain", d / "pub.csv", {})
    assert page["verified"] and not page["anchored"] and not page["ok"]
    assert len(page["not_anchored"]) == 2
    verdict = browser.evaluate("document.getElementById('verdict').textContent")
    assert "NOT ANCHORED" in verdict and "NON ANCRÉ" in verdict


def _edit_line(path: Path, k: int, old: str, new: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert old in lines[k]
    lines[k] = lines[k].replace(old, new, 1)
    path.write_text("\n".join(lines), encoding="utf-8")


def _tamper_panel(b: Path, a: dict) -> None:
    line = (b / "panel.csv").read_text(encoding="utf-8").split("\n")[2]
    _edit_line(b / "panel.csv", 2, line.split(",")[0], line.split(",")[0] + "X")


def _tamper_lottery(b: Path, a: dict) -> None:
    data = bytearray((b / "lottery.json").read_bytes())
    k = data.index(b'"weight": ') + len(b'"weight": ')
    data[k] = ord("1") if data[k] != ord("1") else ord("2")
    (b / "lottery.json").write_bytes(bytes(data))


def _wrong_seed(b: Path, a: dict) -> None:
    a["seed"] = a["seed"] + "!"


def _wrong_hash(b: Path, a: dict) -> None:
    a["hash"] = "0" * 64


def _rewrite_audit(b: Path, change) -> None:
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    change(audit)
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1) + "\n",
                                  encoding="utf-8")


def _tamper_commitment(b: Path, a: dict) -> None:
    """Another list file committed to: audit.json's hash of the lists changed."""
    def change(audit: dict) -> None:
        h = audit["replacements"]["sha256"]
        audit["replacements"]["sha256"] = ("0" if h[0] != "0" else "1") + h[1:]
    _rewrite_audit(b, change)


def _tamper_list_file(b: Path, a: dict) -> None:
    """The list file handed to the garant: a replacement moved to another member's line."""
    path = b.parent / a["lists"]
    rows = path.read_text(encoding="utf-8").split("\n")
    member, rank, rep = rows[1].split(",")
    other = rows[3].split(",")[2]
    _edit_line(path, 1, f"{member},{rank},{rep}", f"{member},{rank},{other}")


def _tamper_audit_ids(b: Path, a: dict) -> None:
    def change(audit: dict) -> None:
        ids = audit["draw"]["ids"]
        ids[0], ids[1] = ids[1], ids[0]
    _rewrite_audit(b, change)


TAMPERS = {
    "panel line": (_tamper_panel, "panel.csv"),
    "lottery byte": (_tamper_lottery, "lottery.json"),
    "wrong seed": (_wrong_seed, "seed"),
    "wrong hash": (_wrong_hash, "lottery.json"),
    "replacements commitment": (_tamper_commitment, "replacements.sha256"),
    "replacements file line": (_tamper_list_file, "lists.replacements.csv"),
    "audit ids": (_tamper_audit_ids, "audit.json"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_bundles_are_caught_like_verify(browser, made, tmp_path, tamper):
    d = made["dir"]
    change, named = TAMPERS[tamper]
    bundle = tmp_path / "lists"
    shutil.copytree(d / "lists", bundle)
    lists = lists_file(bundle)
    shutil.copy(lists_file(d / "lists"), lists)  # the garant's copy of the list file
    a = announced(d, "lists")
    a["lists"] = lists.name
    change(bundle, a)
    cli = cli_verify(d, bundle, d / "pub.csv", a, lists)
    page = page_verify(browser, bundle, d / "pub.csv", a, lists=lists)
    assert not cli["verified"] and not page["verified"] and not page["ok"]
    assert any(named in line for line in cli["differences"]), cli["differences"]
    assert any(named in line for line in page["differences"]), page["differences"]
    verdict = browser.evaluate("document.getElementById('verdict').textContent")
    assert "NOT VERIFIED" in verdict and "NON VÉRIFIÉ" in verdict


def test_page_escapes_what_files_say(browser, made, tmp_path):
    """Values from files are hostile: they are shown as text, never as markup."""
    d = made["dir"]
    bundle = tmp_path / "lists"
    shutil.copytree(d / "lists", bundle)
    audit = json.loads((bundle / "audit.json").read_text(encoding="utf-8"))
    audit["seed"] = '<img src=x onerror="window.pwned=1">'
    (bundle / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    page = page_verify(browser, bundle, d / "pub.csv", announced(d, "lists"))
    assert not page["verified"]
    assert browser.evaluate("document.querySelectorAll('#log img').length") == 0
    assert browser.evaluate("window.pwned === undefined") is True


def test_the_page_is_the_packaged_one():
    assert PAGE.read_bytes() == page_bytes()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert page_sha256() in readme, "update the SHA-256 of verify.html in the README"
    text = page_bytes().decode("utf-8")
    assert "http://" not in text and "https://" not in text  # nothing from the network
    assert "default-src 'none'" in text
    assert ".innerHTML" not in text and "insertAdjacentHTML" not in text
    assert "document.write" not in text


def test_a_15000_person_extract(browser, tmp_path):
    """Fast enough for real pools: measured and printed, not asserted."""
    write_pool(synthesize_pool(15000, 3), tmp_path / "pool.csv")
    assert run("quotas", SPEC, "--size", "100", "--out", tmp_path / "q.csv")[0] == 0
    code, text = run("draw", tmp_path / "pool.csv", "-q", tmp_path / "q.csv", "-k", "100",
                     "--seed", "big", "--replacements", "2", "-o", tmp_path / "b")
    assert code == 0, text
    code, text = run("public-pool", tmp_path / "pool.csv", "-q", tmp_path / "q.csv", "-k",
                     "100", "-o", tmp_path / "pub.csv")
    assert code == 0, text
    a = {"seed": "big", "hash": sha(tmp_path / "b" / "lottery.json")}
    t = time.perf_counter()
    page = page_verify(browser, tmp_path / "b", tmp_path / "pub.csv", a)
    wall = time.perf_counter() - t
    assert page["ok"], page["differences"]
    print(f"\nverify.html on a 15,000-person extract (100 seats, 2 replacements each): "
          f"{page['seconds']:.2f} s in the page, {wall:.2f} s with loading and file reading")


def test_a_tampered_replacement_round_is_caught_like_verify(browser, made, tmp_path):
    d = made["dir"]
    for name in ("lists", "round1"):
        shutil.copytree(d / name, tmp_path / name)
    _tamper_panel(tmp_path / "round1", {})
    a = announced(d, "round1")
    cli = cli_verify(d, tmp_path / "round1", d / "pub.csv", a)
    page = page_verify(browser, tmp_path / "round1", d / "pub.csv", a,
                       previous=tmp_path / "lists")
    assert not cli["verified"] and not page["verified"]
    assert any("panel.csv" in line for line in cli["differences"]), cli["differences"]
    assert any("panel.csv" in line for line in page["differences"]), page["differences"]


def test_a_changed_pool_names_the_same_strata_as_verify(browser, made, tmp_path):
    """audit.json records each stratum's size (no hash of its own): both name the strata whose
    size changed, the same way."""
    d = made["dir"]
    lines = (d / "pub.csv").read_text(encoding="utf-8").split("\n")
    k = next(k for k, line in enumerate(lines) if '"urban"' in line)
    lines[k] = lines[k].replace('"urban"', '"rural"')
    pool = tmp_path / "pub.csv"
    pool.write_text("\n".join(lines), encoding="utf-8")
    a = announced(d, "plain")
    cli = cli_verify(d, d / "plain", pool, a)
    page = page_verify(browser, d / "plain", pool, a)
    assert not cli["verified"] and not page["verified"]

    def strata(differences: list[str]) -> list[str]:
        return [line.split(": ", 1)[1] for line in differences
                if line.startswith("pool ") and ": stratum " in line]
    assert len(strata(cli["differences"])) == 2, cli["differences"]
    assert strata(page["differences"]) == strata(cli["differences"]), page["differences"]
