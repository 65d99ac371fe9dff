"""The output policy (`sortition/core/outputs.py`): no command destroys what it did not write.

Table-driven: every writing command × every forbidden target, with `--force` wherever the
command has it, must exit 2 with a message that names what it would have destroyed, and every
file and folder that existed must still be there, byte for byte. Then: `--force` does replace
what the tool wrote; an interrupted run is recovered by the next one; contact files are 0600;
the report shows no absolute path.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run

from sortition.core.outputs import NEW, OLD, PENDING, write_folder, write_pair
from sortition.inputs.synth import synthesize_pool, write_pool

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below `root`: kind, and bytes for files, target for links."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A small operator's world: inputs, a bundle chain, a home, a foreign folder, links."""
    w = tmp_path_factory.mktemp("world")
    write_pool(synthesize_pool(500, 1), w / "pool.csv")
    assert run("quotas", SPEC, "--size", "100", "--out", w / "quotas.csv")[0] == 0
    code, text = run("draw", w / "pool.csv", "-q", w / "quotas.csv", "-k", "100", "--seed", "s0",
                     "-o", w / "b0", "--replacements", "2")
    assert code == 0, text
    panel = json.loads((w / "b0" / "audit.json").read_text(encoding="utf-8"))["draw"]["ids"]
    (w / "declined.txt").write_text(panel[0] + "\n", encoding="utf-8")
    code, text = run("replace", w / "b0", "--pool", w / "pool.csv", "--declined",
                     w / "declined.txt", "--seed", "s1", "-o", w / "b1")
    assert code == 0, text
    code, text = run("invite", w / "pool.csv", "--size", "60", "--seed", "c", "-o",
                     w / "calls.parquet")
    assert code == 0, text
    import pyarrow.parquet as pq

    ids = pq.read_table(w / "calls.parquet", columns=["id"]).column("id").to_pylist()
    (w / "answers.csv").write_text("id,answer\n" + "".join(f"{i},yes\n" for i in ids),
                                   encoding="utf-8")
    for name in ("home", "foreign", "work"):
        (w / name).mkdir()
    (w / "home" / ".bashrc").write_text("# mine\n", encoding="utf-8")
    (w / "foreign" / "notes.txt").write_text("not yours\n", encoding="utf-8")
    (w / "foreign" / "audit.json").write_text('{"schema": "sortition-audit"}\n',
                                              encoding="utf-8")
    (w / "work" / "draft.txt").write_text("work in progress\n", encoding="utf-8")
    (w / "spec.toml").write_bytes(SPEC.read_bytes())
    os.symlink(w / "pool.csv", w / "link-pool.csv")
    os.symlink(w / "home", w / "link-home")
    os.symlink(w / "b0", w / "link-b0")
    return {"w": w, "pool": w / "pool.csv", "quotas": w / "quotas.csv", "b0": w / "b0",
            "b1": w / "b1", "calls": w / "calls.parquet", "answers": w / "answers.csv",
            "declined": w / "declined.txt", "home": w / "home", "foreign": w / "foreign",
            "work": w / "work", "spec": w / "spec.toml"}


def _common(w, *rest):
    return [w["pool"], "-q", w["quotas"], "-k", "100", *rest]


# Every writing command: (how to call it with the target, whether it has --force, its inputs)
COMMANDS = {
    "synth": lambda w, t: ["synth", "--rows", "50", "-o", t],
    "quotas": lambda w, t: ["quotas", w["spec"], "--size", "100", "-o", t],
    "check --report": lambda w, t: ["check", *_common(w), "--report", t],
    "probabilities": lambda w, t: ["probabilities", *_common(w), "-o", t],
    "probabilities --strata-out": lambda w, t: ["probabilities", *_common(w), "-o",
                                                w["work"] / "p.csv", "--strata-out", t],
    "lottery": lambda w, t: ["lottery", *_common(w), "-o", t],
    "draw": lambda w, t: ["draw", *_common(w), "--seed", "x", "-o", t],
    "draw --private-out": lambda w, t: ["draw", *_common(w), "--seed", "x", "-o",
                                        w["work"] / "new-bundle", "--private-out", t],
    "draw --lottery": lambda w, t: ["draw", *_common(w), "--seed", "x", "--lottery", w["b0"],
                                    "-o", t],
    "public-pool": lambda w, t: ["public-pool", *_common(w), "-o", t],
    "invite": lambda w, t: ["invite", w["pool"], "--size", "10", "--seed", "x", "-o", t],
    "respondents": lambda w, t: ["respondents", w["calls"], "--answers", w["answers"], "-o", t],
    "respondents --rates-out": lambda w, t: ["respondents", w["calls"], "--answers",
                                             w["answers"], "-o", w["work"] / "resp.csv",
                                             "--rates-out", t],
    "replace": lambda w, t: ["replace", w["b1"], "--pool", w["pool"], "--declined",
                             w["declined"], "--seed", "x", "-o", t],
    "demo": lambda w, t: ["demo", "--rows", "2000", "-o", t],
}
NO_FORCE = {"lottery", "demo"}  # a lottery is never replaced; the demo owns its folder itself
# The input file each command reads (the pool unless said here); synth and demo read none.
INPUT = {"quotas": "spec", "respondents": "calls", "respondents --rates-out": "calls",
         "replace": "declined"}

# Every forbidden target: (the path, a fragment the refusal must show)
TARGETS = {
    "input file": (None, ("the input", "not a folder")),
    "input's folder": (lambda w: w["w"], ("a folder holding",)),
    "current folder": (lambda w: Path("."), ("the current folder",)),
    "home folder": (lambda w: w["home"], ("the home folder",)),
    "root": (lambda w: Path("/"), ("a folder holding",)),
    "foreign folder": (lambda w: w["foreign"], ("did not write", "is a folder")),
    "bundle of the chain": (lambda w: w["b0"], ("chain", "the input", "is a folder",
                                                "already exists", "did not write")),
    "symlink to the pool": (lambda w: w["w"] / "link-pool.csv", ("symbolic link",)),
    "symlink to home": (lambda w: w["w"] / "link-home", ("symbolic link",)),
    "symlink to a bundle": (lambda w: w["w"] / "link-b0", ("symbolic link",)),
}
# Adding lottery.json inside a folder replaces nothing: for `lottery` only targets that are
# not folders, or that already hold a lottery, are refusals.
SKIP = {("lottery", k) for k in ("input's folder", "current folder", "home folder", "root",
                                 "foreign folder", "symlink to home")}
SKIP |= {(c, "input file") for c in ("synth", "demo")}  # they read no file
# A plain draw builds on no bundle: `draw -o b0 --force` may replace the bundle b0 it wrote
# (tested below); `draw --lottery b0` is the case where b0 is an input.
SKIP.add(("draw", "bundle of the chain"))
LOTTERY_REFUSALS = ("not a folder", "already exists")  # lottery -o names a folder to add to
CASES = [(c, k) for c in COMMANDS for k in TARGETS if (c, k) not in SKIP]


@pytest.mark.parametrize(("command", "kind"), CASES, ids=[f"{c}|{k}" for c, k in CASES])
def test_forbidden_targets_are_refused_and_nothing_changes(world, monkeypatch, command, kind):
    monkeypatch.setenv("HOME", str(world["home"]))
    monkeypatch.chdir(world["work"])
    target, fragments = TARGETS[kind]
    path = world[INPUT.get(command, "pool")] if target is None else target(world)
    args = COMMANDS[command](world, path)
    if command not in NO_FORCE:
        args.append("--force")
    before = snapshot(world["w"])
    code, text = run(*args)
    assert code == 2, f"{command} → {kind}: exit {code}: {text}"
    if command == "lottery":
        fragments = (*fragments, *LOTTERY_REFUSALS)
    assert any(f in text for f in fragments), text
    assert snapshot(world["w"]) == before


def test_force_replaces_a_bundle_this_tool_wrote(world, tmp_path):
    target = tmp_path / "bundle"
    args = ["draw", *_common(world), "--seed", "y", "-o", target]
    assert run(*args)[0] == 0
    first = (target / "panel.csv").read_bytes(), (target / "lottery.json").read_bytes()
    code, text = run(*args)
    assert code == 2 and "not empty" in text
    assert run(*args, "--force")[0] == 0
    again = (target / "panel.csv").read_bytes(), (target / "lottery.json").read_bytes()
    assert again == first  # same inputs, same seed, same bytes
    (target / "mine.txt").write_text("added by the operator\n", encoding="utf-8")
    code, text = run(*args, "--force")
    assert code == 2 and "'mine.txt'" in text and "did not write" in text
    assert (target / "mine.txt").exists()


def test_force_replaces_an_output_file_but_never_an_input(world, tmp_path):
    out = tmp_path / "probs.csv"
    args = ["probabilities", *_common(world), "-o", out]
    assert run(*args)[0] == 0
    assert run(*args)[0] == 2
    assert run(*args, "--force")[0] == 0
    code, text = run("public-pool", *_common(world), "-o", world["quotas"], "--force")
    assert code == 2 and "the input" in text


def test_demo_replaces_only_its_own_folder(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work\n", encoding="utf-8")
    code, text = run("demo", "--rows", "2000", "-o", out)
    assert code == 2 and "did not write" in text
    assert (out / "thesis.tex").read_text(encoding="utf-8") == "years of work\n"


def test_interrupted_bundle_swap_is_restored_by_the_next_run(world, tmp_path):
    target = tmp_path / "bundle"
    args = ["draw", *_common(world), "--seed", "z", "-o", target]
    assert run(*args)[0] == 0
    before = snapshot(target)
    # a run killed between the two renames: the old bundle aside, no bundle in place
    os.replace(target, tmp_path / f".bundle{OLD}")
    (tmp_path / f".bundle{NEW}").mkdir()
    (tmp_path / f".bundle{NEW}" / "panel.csv").write_text("id\n", encoding="utf-8")
    code, text = run(*args)  # no --force: the restored bundle is there, so it is refused
    assert code == 2 and "not empty" in text
    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_killed_process_leaves_the_previous_bundle_recoverable(tmp_path):
    """A real kill (os._exit) between the two renames of the swap."""
    target = tmp_path / "b"
    write_folder(target, {"audit.json": b'{"schema": "sortition-audit"}\n', "panel.csv": b"1\n"})
    script = f"""
import os, sortition.core.outputs as o
real = os.replace
def killing(a, b):
    real(a, b)
    if str(b).endswith({OLD!r}):
        os._exit(9)
o.os.replace = killing
files = {{"audit.json": b'{{"schema": "sortition-audit"}}', "panel.csv": b"2\\n"}}
o.write_folder({str(target)!r}, files)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=False)
    assert proc.returncode == 9
    assert not target.exists()  # the window the next run must repair
    write_folder(tmp_path / "other", {"panel.csv": b"x\n"})  # another target: untouched
    assert not target.exists()
    write_folder(target, {"audit.json": b'{"schema": "sortition-audit"}\n', "panel.csv": b"3\n"})
    assert (target / "panel.csv").read_bytes() == b"3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "other"]


@pytest.mark.parametrize("killed_after", ["pending written", "primary renamed"])
def test_pairs_appear_together(tmp_path, killed_after):
    primary, secondary = tmp_path / "lottery.json", tmp_path / "lottery.json.sha256"
    script = f"""
import os, sortition.core.outputs as o
from pathlib import Path
real = os.replace
def killing(a, b):
    if {killed_after!r} == "pending written" and str(b) == {str(primary)!r}:
        os._exit(9)
    real(a, b)
    if {killed_after!r} == "primary renamed" and str(b) == {str(primary)!r}:
        os._exit(9)
o.os.replace = killing
o.write_pair(Path({str(primary)!r}), lambda p: p.write_bytes(b"L"), Path({str(secondary)!r}),
             lambda p: b"H")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=False)
    assert proc.returncode == 9
    code, text = run("lottery", tmp_path / "missing.csv", "-q", SPEC, "-o", tmp_path)
    assert code == 2
    if killed_after == "pending written":  # undone: neither file
        assert not primary.exists() and not secondary.exists()
    else:  # completed: both
        assert primary.read_bytes() == b"L" and secondary.read_bytes() == b"H"
        assert "interrupted" in text
    assert not [p for p in tmp_path.iterdir() if PENDING in p.name or OLD in p.name]


def test_write_pair_replaces_both(tmp_path):
    a, b = tmp_path / "pool.csv", tmp_path / "pool.audit.json"
    write_pair(a, lambda p: p.write_bytes(b"1"), b, lambda p: p.read_bytes() * 2)
    write_pair(a, lambda p: p.write_bytes(b"3"), b, lambda p: p.read_bytes() * 2)
    assert (a.read_bytes(), b.read_bytes()) == (b"3", b"33")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.audit.json", "pool.csv"]


def test_contact_files_are_private(world, tmp_path):
    code, text = run("draw", *_common(world), "--seed", "p", "-o", tmp_path / "b",
                     "--private-out", tmp_path / "contacts.csv")
    assert code == 0, text
    assert stat.S_IMODE((tmp_path / "contacts.csv").stat().st_mode) == 0o600
    assert run("synth", "--rows", "50", "-o", tmp_path / "base.parquet")[0] == 0
    assert stat.S_IMODE((tmp_path / "base.parquet").stat().st_mode) == 0o600
    assert run("invite", world["pool"], "--size", "10", "--seed", "x", "-o",
               tmp_path / "calls.csv")[0] == 0
    assert stat.S_IMODE((tmp_path / "calls.csv").stat().st_mode) == 0o600
    public = stat.S_IMODE((tmp_path / "b" / "panel.csv").stat().st_mode)
    assert public == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_report_shows_no_absolute_path(world, tmp_path):
    target = tmp_path / "operators-secret-folder" / "bundle"
    assert run("draw", *_common(world), "--seed", "r", "-o", target)[0] == 0
    html = (target / "report.html").read_text(encoding="utf-8")
    audit = (target / "audit.json").read_text(encoding="utf-8")
    for text in (html, audit):
        assert str(tmp_path) not in text and "operators-secret-folder" not in text
