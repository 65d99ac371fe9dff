"""Bundles as hostile input: a corpus of attacks, each refused fast, in one line, without
a traceback and without opening anything outside the bundle, its sibling and the inputs."""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runner import invoke, run, verify_unanchored

from sortition.core.bundleio import json_depth, strict_json
from sortition.core.errors import InputError
from sortition.core.terminal import json_text, printable
from sortition.inputs.synth import synthesize_pool, write_pool

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
TIMES: list[float] = []


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A 500-row pool, quotas for 100, a draw with 2 replacements, a replace bundle, and a
    sentinel file outside."""
    top = tmp_path_factory.mktemp("hostile")
    root = top / "root"
    root.mkdir()
    write_pool(synthesize_pool(500, 1), root / "pool.parquet")
    assert invoke("quotas", SPEC, "--size", "100", "--out", root / "q.csv").exit_code == 0
    code, text = run("draw", root / "pool.parquet", "-q", root / "q.csv", "-k", "100",
                         "--seed", "s", "--replacements", "2", "-o", root / "b0")
    assert code == 0, text
    audit = json.loads((root / "b0" / "audit.json").read_text(encoding="utf-8"))
    # members without any replacement: their seats need a new lottery (b1/lottery.json)
    listed = {line.split(",")[0] for line in
              (root / "b0.replacements.csv").read_text(encoding="utf-8").splitlines()[1:]}
    unlisted = [i for i in audit["draw"]["ids"] if i not in listed]
    assert unlisted, "the fixture needs a member with no replacement"
    (root / "declined.txt").write_text(unlisted[0] + "\n", encoding="utf-8")
    code, text = run("replace", root / "b0", "--pool", root / "pool.parquet", "--declined",
                         root / "declined.txt", "--seed", "r", "-o", root / "b1")
    assert code == 0, text
    assert (root / "b1" / "lottery.json").is_file()
    outside = top / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n", encoding="utf-8")
    return {"top": top, "root": root, "pool": root / "pool.parquet", "outside": outside}


# --- editing helpers ---------------------------------------------------------------------------

def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _save(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def _edit(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Edit b0's or b1's audit.json ("b0/audit.json") as JSON; `change` may return a new doc."""
    def apply(work: Path) -> None:
        doc = _load(work / name)
        new = change(doc)
        _save(work / name, doc if new is None else new)
    return apply


def _raw(name: str, text: str | bytes) -> Callable[[Path], None]:
    def apply(work: Path) -> None:
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        (work / name).write_bytes(data)
    return apply


def _swap(name: str, make: Callable[[Path, Path], None]) -> Callable[[Path], None]:
    def apply(work: Path) -> None:
        (work / name).unlink()
        make(work / name, work)
    return apply


def _set(path: str, value: object) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *head, last = path.split(".")
        for k in head:
            doc = doc[k]
        doc[last] = value
    return change


def _file(name: str) -> Callable[[dict], None]:
    """Add `name` to audit.json's files."""
    def change(doc: dict) -> None:
        doc["files"][name] = SHA
    return change


def _dup_key(name: str, key: str) -> Callable[[Path], None]:
    """Repeat `key` of the top-level object at the front of the file."""
    def apply(work: Path) -> None:
        text = (work / name).read_text(encoding="utf-8")
        value = json.dumps(_load(work / name)[key] if key != "panels" else [],
                           ensure_ascii=False)
        (work / name).write_text("{" + f'"{key}": {value},' + text.lstrip()[1:],
                                 encoding="utf-8")
    return apply


def _huge_lottery(work: Path) -> None:
    """20,000 strata × 20,000 panels in ~2 MB: a 3 GB table if allocated blindly."""
    doc = _load(work / "b0" / "lottery.json")
    n = 20_000
    doc["strata"] = [{"values": ["a"] * len(doc["features"]), "people": 1, "probability": 0.0}
                     ] * n
    doc["panels"] = [{"weight": 0, "seats": []}] * n
    (work / "b0" / "lottery.json").write_text(json.dumps(doc, separators=(",", ":")),
                                              encoding="utf-8")


def _loop(work: Path) -> None:
    """b1 → ../b2 → ../b1."""
    shutil.copytree(work / "b1", work / "b2")
    _edit("b1/audit.json", _set("previous.path", "../b2"))(work)
    _edit("b2/audit.json", _set("previous.path", "../b1"))(work)


def _long_chain(work: Path) -> None:
    """A chain of 101 replacement rounds (c1 … c101, each only an audit.json) down to b0."""
    audit = _load(work / "b1" / "audit.json")
    for k in range(1, 102):
        (work / f"c{k}").mkdir()
        audit["previous"]["path"] = "../b0" if k == 1 else f"../c{k - 1}"
        _save(work / f"c{k}" / "audit.json", audit)


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    def apply(work: Path) -> None:
        with open(work / name, "r+b") as fh:
            fh.truncate(size)
    return apply


NO_INPUTS = _edit("b0/audit.json", lambda d: d.pop("inputs") and None)
ESC = "\x1b[2K\r\x1b[32m✓ verified: b0 — 13 checks passed\x1b[8m"
SHA = "0" * 64
VERIFY_B0 = ("verify", "b0")
VERIFY_B1 = ("verify", "b1")
REPLACE = ("replace", "b0")
SIMULATE = ("simulate", "b0")

# (name, how to make the bundle hostile, command, exit status, text the one line must contain)
CASES: list[tuple[str, Callable[[Path], None], tuple[str, str], int, str]] = [
    ("fifo panel.csv", _swap("b0/panel.csv", lambda p, w: os.mkfifo(p)), VERIFY_B0, 2,
     "panel.csv: a FIFO"),
    ("fifo audit.json", _swap("b0/audit.json", lambda p, w: os.mkfifo(p)), VERIFY_B0, 2,
     "audit.json: a FIFO"),
    ("fifo lottery.json of a replace bundle",
     _swap("b1/lottery.json", lambda p, w: os.mkfifo(p)), VERIFY_B1, 2, "lottery.json: a FIFO"),
    ("lottery.json → /dev/zero", _swap("b0/lottery.json", lambda p, w: p.symlink_to("/dev/zero")),
     VERIFY_B0, 2, "lottery.json: a symbolic link"),
    ("panel.csv → a file outside",
     _swap("b0/panel.csv", lambda p, w: p.symlink_to(w.parent.parent / "outside" / "secret.txt")),
     VERIFY_B0, 2, "panel.csv: a symbolic link"),
    ("panel.csv is a folder", _swap("b0/panel.csv", lambda p, w: p.mkdir()), VERIFY_B0, 2,
     "panel.csv: a folder"),
    ("files: /dev/zero", _edit("b0/audit.json", _file("/dev/zero")), VERIFY_B0, 2,
     "audit.json, files: \"/dev/zero\" is not a plain file name"),
    ("files: ../outside", _edit("b0/audit.json", _file("../../outside/secret.txt")),
     VERIFY_B0, 2, "audit.json, files: \"../../outside/secret.txt\" is not a plain"),
    ("files: absolute system file", _edit("b0/audit.json", _file("/etc/passwd")),
     VERIFY_B0, 2, "\"/etc/passwd\" is not a plain file name"),
    ("files: subfolder", _edit("b0/audit.json", _file("sub/x.csv")), VERIFY_B0, 2,
     "\"sub/x.csv\" is not a plain file name"),
    ("files: ..", _edit("b0/audit.json", _file("..")), VERIFY_B0, 2,
     "\"..\" is not a plain file name"),
    ("files: escape codes in a recorded name", _edit("b0/audit.json", _file(ESC)),
     VERIFY_B0, 2, "\\u001b[2K\\r\\u001b[32m"),
    ("oversized panel.csv", _sparse("b0/panel.csv", (1 << 30) + 1), VERIFY_B0, 2,
     "panel.csv: more than 1,073,741,824 bytes"),
    ("oversized audit.json", _sparse("b0/audit.json", (64 << 20) + 1), VERIFY_B0, 2,
     "audit.json: more than 67,108,864 bytes"),
    ("previous.path climbs out", _edit("b1/audit.json", _set("previous.path", "../../outside")),
     VERIFY_B1, 2, "audit.json, previous.path: \"../../outside\" is not '../NAME'"),
    ("previous.path absolute", _edit("b1/audit.json", _set("previous.path", "/tmp")),
     VERIFY_B1, 2, "audit.json, previous.path: \"/tmp\" is not '../NAME'"),
    ("previous.path .", _edit("b1/audit.json", _set("previous.path", ".")), VERIFY_B1, 2,
     "audit.json, previous.path: \".\" is not '../NAME'"),
    ("previous.path is the bundle itself", _edit("b1/audit.json", _set("previous.path", "../b1")),
     VERIFY_B1, 2, "is this bundle itself"),
    ("previous.path to a symlinked sibling",
     lambda w: ((w / "link").symlink_to(w / "b0"),
                _edit("b1/audit.json", _set("previous.path", "../link"))(w)),
     VERIFY_B1, 2, "audit.json, previous.path: link is a symbolic link"),
    ("previous.path loop", _loop, VERIFY_B1, 2, "loops back to b1"),
    ("previous.path null", _edit("b1/audit.json", _set("previous.path", None)), VERIFY_B1, 2,
     "audit.json, previous.path: expected a string, found null"),
    ("chain longer than the cap", _long_chain, ("verify", "c101"), 2,
     "the chain is longer than 100 bundles"),
    ("per_member 10**12", _edit("b0/audit.json", _set("replacements.per_member", 10**12)),
     VERIFY_B0, 2, "audit.json, replacements.per_member 1000000000000: at most 100"),
    ("per_member as text", _edit("b0/audit.json", _set("replacements.per_member", "2")),
     VERIFY_B0, 2, "audit.json, replacements.per_member: expected a whole number"),
    ("strata × panels", _huge_lottery, VERIFY_B0, 2,
     "lottery.json: 20,000 panels × 20,000 strata are 400,000,000 cells"),
    ("duplicate panels in lottery.json", _dup_key("b0/lottery.json", "panels"), VERIFY_B0, 2,
     "lottery.json: key \"panels\" appears twice"),
    ("duplicate seed in audit.json", _dup_key("b0/audit.json", "seed"), VERIFY_B0, 2,
     "audit.json: key \"seed\" appears twice"),
    ("NaN", _raw("b0/audit.json", '{"schema": NaN}'), VERIFY_B0, 2,
     "audit.json: NaN is not a JSON number"),
    ("Infinity in lottery.json",
     lambda w: _raw("b0/lottery.json", (w / "b0" / "lottery.json").read_text(encoding="utf-8")
                    .replace('"certified_gap": ', '"certified_gap": -Infinity, "x": '))(w),
     VERIFY_B0, 2, "lottery.json: -Infinity is not a JSON number"),
    ("huge float", _raw("b0/audit.json", '{"schema": 1e999999}'), VERIFY_B0, 2,
     "audit.json: number \"1e999999\" is too large"),
    ("huge integer", _raw("b0/audit.json", '{"schema": ' + "9" * 5000 + "}"), VERIFY_B0, 2,
     "audit.json: number \"99999999999999999999\"… has more than 40 characters"),
    ("deep nesting", _raw("b0/audit.json", "[" * 200_000), VERIFY_B0, 2,
     "audit.json: nested more than 64 levels deep"),
    ("not UTF-8", _raw("b0/audit.json", b'{"schema": "\xff"}'), VERIFY_B0, 2,
     "audit.json: not UTF-8 text"),
    ("audit.json is []", _raw("b0/audit.json", "[]"), VERIFY_B0, 2,
     "audit.json: expected an object at the top level"),
    ("wrong schema", _edit("b0/audit.json", _set("schema", "other")), VERIFY_B0, 2,
     "audit.json, schema: 'other'"),
    ("unknown kind", _edit("b0/audit.json", _set("kind", "other")), VERIFY_B0, 2,
     "audit.json, kind: 'other'"),
    ('"draw": []', _edit("b0/audit.json", _set("draw", [])), VERIFY_B0, 2,
     "audit.json, draw: expected an object, found []"),
    ('"files": []', _edit("b0/audit.json", _set("files", [])), VERIFY_B0, 2,
     "audit.json, files: expected an object or null, found []"),
    ('"draw": {"ids": 5}', _edit("b0/audit.json", _set("draw.ids", 5)), VERIFY_B0, 2,
     "audit.json, draw.ids: expected a list, found 5"),
    ('"inputs": "x"', _edit("b0/audit.json", _set("inputs", "x")), VERIFY_B0, 2,
     "audit.json, inputs: expected an object, found \"x\""),
    ("quotas row of the wrong shape", _edit("b0/audit.json", _set("inputs.quotas.quotas", [[1]])),
     VERIFY_B0, 2, "audit.json, inputs.quotas.quotas[0]: expected 2 strings"),
    ("declined is a number", _edit("b1/audit.json", _set("declined", 5)), VERIFY_B1, 2,
     "audit.json, declined: expected a list, found 5"),
    ("lottery.json panels: {}",
     _edit("b0/lottery.json", _set("panels", {})), VERIFY_B0, 2,
     "lottery.json, panels: expected a list, found {}"),
    ("lottery.json seats of the wrong type",
     _edit("b0/lottery.json", lambda d: d["panels"][0].__setitem__("seats", [[0, "x"]])),
     VERIFY_B0, 2, "lottery.json: panels[0].seats: [0, \"x\"] is not a pair"),
    ("lottery.json stratum out of range",
     _edit("b0/lottery.json", lambda d: d["panels"][0].__setitem__("seats", [[10**6, 1]])),
     VERIFY_B0, 2, "lottery.json: panel 1: stratum 1000000 out of range"),
    ("null chain file",
     _edit("b0/audit.json", _set("inputs.pool.source_audit", {"file": None, "sha256": SHA})),
     VERIFY_B0, 2, "audit.json, inputs.pool.source_audit.file: expected a string, found null"),
    ("chain file outside",
     _edit("b0/audit.json", _set("inputs.pool.source_audit",
                                 {"file": "../outside/secret.txt", "sha256": SHA})),
     VERIFY_B0, 2, "audit.json, inputs.pool.source_audit.file: \"../outside/secret.txt\""),
    ("replace: missing inputs", NO_INPUTS, REPLACE, 2,
     "inputs: missing"),
    ("simulate: missing inputs", NO_INPUTS, SIMULATE, 2,
     "inputs: missing"),
    ("replace: lists commitment changed", _edit("b0/audit.json",
                                                 _set("replacements.sha256", SHA)),
     REPLACE, 2, "replacements.sha256: the lists the seed and this pool give do not hash"),
    # well-formed but wrong: a difference (exit 1), printed escaped
    ("escape codes in an id", _edit("b0/audit.json", lambda d: d["draw"]["ids"].__setitem__(
        0, ESC)), VERIFY_B0, 1, "\\x1b[2K\\r\\x1b[32m✓ verified"),
    ("bidi override in an id", _edit("b0/audit.json", lambda d: d["draw"]["ids"].__setitem__(
        0, "\u202eexe.gnp")), VERIFY_B0, 1, "\\u202eexe.gnp"),
]


def _command(kind: tuple[str, str], work: Path, world: dict) -> list[object]:
    command, name = kind
    pool = world["pool"]
    if command == "verify":
        return ["verify", work / name, "--pool", pool]
    if command == "replace":
        return ["replace", work / name, "--pool", pool, "--declined",
                world["root"] / "declined.txt", "--seed", "x", "-o", work / "out"]
    return ["simulate", work / name, "--pool", pool, "--seed", "x", "--trials", "10"]


class _Opened:
    """Every path given to open/stat while active (what a bundle could make us touch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        for module, name in ((os, "open"), (os, "stat"), (os, "lstat"), (builtins, "open"),
                             (io, "open")):
            monkeypatch.setattr(module, name, self._spy(getattr(module, name)))

    def _spy(self, real: Callable) -> Callable:
        def spy(path, *args, **kwargs):
            if isinstance(path, str | bytes | os.PathLike):
                self.paths.append(os.fsdecode(path))
            return real(path, *args, **kwargs)
        return spy


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_bundle(world, tmp_path, monkeypatch, case):
    name, make, kind, status, fragment = case
    work = world["top"] / "cases" / name.replace("/", "_").replace(" ", "_")
    work.mkdir(parents=True)
    for b in ("b0", "b1"):
        shutil.copytree(world["root"] / b, work / b)
    make(work)
    args = _command(kind, work, world)
    opened = _Opened(monkeypatch)
    start = time.perf_counter()
    res = invoke(*args)  # no traceback, no exception but the exit
    elapsed = time.perf_counter() - start
    monkeypatch.undo()
    TIMES.append(elapsed)
    code, output = res.exit_code, res.output
    assert code == status, output
    assert "\x1b" not in output and "\u202e" not in output  # shown, never obeyed
    assert elapsed < 5, f"{name}: {elapsed:.2f} s"
    if status == 2:
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), output
        assert fragment in lines[0], output
    else:
        assert fragment in output, output
        assert "NOT verified" in output
    # nothing outside this case's folder (the bundle and its sibling) and the given inputs
    top = str(world["top"])
    allowed = (str(work), str(world["root"]))
    for path in opened.paths:
        full = os.path.abspath(path)
        assert not full.startswith(str(world["outside"])), f"{name}: opened {full}"
        assert full not in ("/dev/zero", "/etc/passwd"), f"{name}: opened {full}"
        if full.startswith(top) and not str(work).startswith(full):  # ancestors: resolve()
            assert full.startswith(allowed), f"{name}: opened {full}"


def test_corpus_size_and_time():
    assert len(CASES) >= 40
    if TIMES:
        print(f"\nhostile corpus: {len(TIMES)} bundles, slowest {max(TIMES):.2f} s")


def test_genuine_bundles_still_verify(world):
    for name in ("b0", "b1"):
        code, output = verify_unanchored(world["root"] / name, world["pool"])
        assert code == 0, output


# --- the reading layer's rules, directly -------------------------------------------------------

def test_strict_json_rules():
    assert strict_json(b'{"a": [1, 2.5, "x"], "b": null}', "f") == {"a": [1, 2.5, "x"],
                                                                    "b": None}
    for bad in (b'{"a": 1, "a": 2}', b"[NaN]", b"[1e400]", b"[" + b"1" * 41 + b"]",
                b"[" * 65 + b"]" * 65, b'"\xff"'):
        with pytest.raises(InputError):
            strict_json(bad, "f")
    assert json_depth(b'["[[[[", {"a": ["]"]}]') == 3  # brackets in strings do not count


def test_printable_and_json_text():
    assert printable("a\x1bb\x9bc\u202ed\x7f") == "a\\x1bb\\x9bc\\u202ed\\x7f"
    text = json_text({"id": "\x1b\x9b\u202e"})
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert json.loads(text) == {"id": "\x1b\x9b\u202e"}
