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

import pytest
from browser_driver import Browser, chromium
from cli_runner import run

from sortition.synth import synthesize_pool, write_pool
from sortition.verifier import page_bytes, page_sha256

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
PAGE = ROOT / "sortition" / "verifier" / "verify.html"

pytestmark = pytest.mark.skipif(
    chromium() is None,
    reason="browser tests of verify.html skipped: no Chromium (install the Debian package "
           "'chromium'; .ci/run does so when it can)")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("browser")
    write_pool(synthesize_pool(600, 5), d / "pool.csv")
    assert run("quotas", SPEC, "--size", "30", "--out", d / "q.csv")[0] == 0
    for name, extra in {"pub.csv": [], "pubh.csv": ["--household-column", "household"]}.items():
        code, text = run("public-pool", d / "pool.csv", "-q", d / "q.csv", "-k", "30",
                         "-o", d / name, *extra)
        assert code == 0, text
    draws = {
        "plain": [],
        "lists": ["--replacements", "2"],
        "households": ["--household-column", "household", "--household-seed", "hh",
                       "--replacements", "1"],
        "transparent": ["--panels", "25"],
        "ticket": ["--panels", "25", "--ticket", "5"],
    }
    for name, extra in draws.items():
        code, text = run("draw", d / "pool.csv", "-q", d / "q.csv", "-k", "30", "--seed",
                         f"seed {name}", "-o", d / name, *extra)
        assert code == 0, text
    panel = json.loads((d / "lists" / "audit.json").read_text(encoding="utf-8"))["draw"]["ids"]
    (d / "declined.txt").write_text(f"{panel[0]}\n{panel[3]}\n", encoding="utf-8")
    code, text = run("replace", d / "lists", "--pool", d / "pool.csv", "--declined",
                     d / "declined.txt", "--seed", "round one", "-o", d / "round1")
    assert code == 0, text
    return {"dir": d}


def announced(d: Path, name: str) -> dict:
    """What a garant was told in public about bundle `name`."""
    if name == "round1":
        out = announced(d, "lists")
        out["round_seed"] = "round one"
        if (d / name / "lottery.json").exists():
            out["round_hash"] = sha(d / name / "lottery.json")
        return out
    out = {"seed": f"seed {name}", "hash": sha(d / name / "lottery.json")}
    if name == "ticket":
        out["ticket"] = "5"
    return out


def cli_verify(d: Path, bundle: Path, pool: Path, a: dict) -> dict:
    args = ["verify", bundle, "--pool", pool, "--json"]
    for seed in (a.get("seed"), a.get("round_seed")):
        if seed:
            args += ["--expect-seed", seed]
    for h in (a.get("hash"), a.get("round_hash")):
        if h:
            args += ["--expect-lottery-hash", h]
    if a.get("ticket"):
        args += ["--expect-ticket", a["ticket"]]
    code, text = run(*args)
    assert code in (0, 1), text
    return json.loads(text)


def page_verify(browser: Browser, bundle: Path, pool: Path, a: dict,
                previous: Path | None = None) -> dict:
    """The verdict verify.html shows, after a garant's clicks (the same path as the UI)."""
    browser.open(PAGE)
    browser.set_files("#bundle", sorted(p for p in bundle.iterdir() if p.is_file()))
    browser.set_files("#pool", [pool])
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


def test_known_answer_vectors_in_the_page(browser):
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
    assert k["ok"] is True
    assert browser.evaluate("document.getElementById('kat').textContent") == "✓ OK"


@pytest.mark.parametrize("name", ["plain", "lists", "households", "transparent", "ticket",
                                  "round1"])
def test_genuine_bundles_agree_with_verify(browser, made, name):
    d = made["dir"]
    pool = d / ("pubh.csv" if name == "households" else "pub.csv")
    a = announced(d, name)
    cli = cli_verify(d, d / name, pool, a)
    page = page_verify(browser, d / name, pool, a,
                       previous=d / "lists" if name == "round1" else None)
    assert cli["verified"] and cli["anchored"], cli["differences"] + cli["not_anchored"]
    assert page["differences"] == [] and page["not_anchored"] == [], page["lines"]
    assert page["verified"] and page["anchored"] and page["ok"]
    audit = json.loads((d / name / "audit.json").read_text(encoding="utf-8"))
    recorded = (audit.get("panel") or audit["draw"])["ids"]
    assert page["summary"]["ids"] == recorded  # the same panel as the one verify re-derived
    if name != "round1":
        assert page["summary"]["panel_number"] == cli["panel_number"]


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


def _tamper_lists(b: Path, a: dict) -> None:
    rows = (b / "replacements.csv").read_text(encoding="utf-8").split("\n")
    member, rank, rep = rows[1].split(",")
    other = rows[3].split(",")[2]
    _edit_line(b / "replacements.csv", 1, f"{member},{rank},{rep}", f"{member},{rank},{other}")


def _tamper_audit_ids(b: Path, a: dict) -> None:
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    ids = audit["draw"]["ids"]
    ids[0], ids[1] = ids[1], ids[0]
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1) + "\n",
                                  encoding="utf-8")


TAMPERS = {
    "panel line": (_tamper_panel, "panel.csv"),
    "lottery byte": (_tamper_lottery, "lottery.json"),
    "wrong seed": (_wrong_seed, "seed"),
    "wrong hash": (_wrong_hash, "lottery.json"),
    "replacements line": (_tamper_lists, "replacements.csv"),
    "audit ids": (_tamper_audit_ids, "audit.json"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_bundles_are_caught_like_verify(browser, made, tmp_path, tamper):
    d = made["dir"]
    change, named = TAMPERS[tamper]
    bundle = tmp_path / "lists"
    shutil.copytree(d / "lists", bundle)
    a = announced(d, "lists")
    change(bundle, a)
    cli = cli_verify(d, bundle, d / "pub.csv", a)
    page = page_verify(browser, bundle, d / "pub.csv", a)
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
