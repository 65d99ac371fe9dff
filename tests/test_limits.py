"""Size caps (`sortition.core.limits`) and free-text options that are not UTF-8
(`sortition.core.textopts`).

Every size option is tried with a huge value on a tiny pool through the command line: without
its cap it would hang or run out of memory, so a quick exit 2 naming the option and the cap
shows the value was refused before any work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import strategies
import typer.main
from cli_runner import run
from hypothesis import given
from hypothesis import strategies as st

from sortition.cli import app
from sortition.core import limits
from sortition.core.errors import InputError
from sortition.core.textopts import check_text, seed_option
from sortition.inputs.synth import synthesize_pool, write_pool

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"
HUGE = "1000000000000"
FAST = 20.0  # seconds: the refusals take well under one; without the caps these runs never end


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A 500-row pool, its quotas for a panel of 100, and a bundle with replacement lists."""
    d = tmp_path_factory.mktemp("limits")
    pool = d / "pool.parquet"
    write_pool(synthesize_pool(500, 1), pool)
    code, text = run("quotas", SPEC, "--size", "100", "--out", d / "quotas.csv")
    assert code == 0, text
    code, text = run("draw", pool, "-q", d / "quotas.csv", "-k", "100", "--seed", "s",
                     "--replacements", "2", "-o", d / "bundle")
    assert code == 0, text
    return {"dir": d, "pool": pool, "quotas": d / "quotas.csv", "bundle": d / "bundle"}


def refused(*args: object) -> str:
    """Run the command; it must end with exit 2, fast, and no traceback. Returns the output."""
    start = time.perf_counter()
    code, text = run(*args)
    assert time.perf_counter() - start < FAST, text
    assert code == 2, text
    return text


def pool_args(setup: dict, command: str) -> list[object]:
    return [command, setup["pool"], "-q", setup["quotas"], "-k", "100"]


# ---------------------------------------------------------------------------
# Size options through the command line


def test_synth_rows(tmp_path):
    text = refused("synth", "--rows", HUGE, "-o", tmp_path / "p.parquet")
    assert f"--rows {HUGE}: at most 20,000,000" in text
    for bad in ("0", "-5"):
        assert f"--rows {bad}: must be at least 1" in refused("synth", "--rows", bad, "-o",
                                                              tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()


def test_demo_rows(tmp_path):
    text = refused("demo", "--rows", HUGE, "--out", tmp_path / "demo")
    assert f"--rows {HUGE}: at most 20,000,000" in text
    assert not (tmp_path / "demo").exists()


def test_panel_size():
    assert f"--size {HUGE}: at most 100,000" in refused("quotas", SPEC, "--size", HUGE)
    assert "--size 0: must be at least 1" in refused("quotas", SPEC, "--size", "0")
    assert "--size -3: must be at least 1" in refused("quotas", SPEC, "--size", "-3")


def test_check_time_limit(setup):
    text = refused(*pool_args(setup, "check"), "--time-limit", "1e12")
    assert "--time-limit 1e+12: at most 86,400 seconds" in text
    for bad in ("0", "-1", "nan"):
        assert f"--time-limit {bad}" in refused(*pool_args(setup, "check"), "--time-limit", bad)


def test_probabilities_runs_and_time_limit(setup, tmp_path):
    out = tmp_path / "p.csv"
    text = refused(*pool_args(setup, "probabilities"), "-o", out, "--algorithm", "legacy",
                   "--runs", HUGE)
    assert f"--runs {HUGE}: at most 100,000" in text
    text = refused(*pool_args(setup, "probabilities"), "-o", out, "--runs", "0")
    assert "--runs 0: must be at least 1" in text
    text = refused(*pool_args(setup, "probabilities"), "-o", out, "--time-limit", "-2")
    assert "--time-limit -2: must be positive" in text
    assert not out.exists()


def test_lottery_panels(setup, tmp_path):
    out = tmp_path / "lot"
    text = refused(*pool_args(setup, "lottery"), "-o", out, "--panels", "5000000")
    assert "--panels 5000000: at most 100,000" in text
    assert "--panels 0: must be at least 1" in refused(*pool_args(setup, "lottery"), "-o", out,
                                                        "--panels", "0")
    assert not (out / "lottery.json").exists()


def test_transparent_lottery_seats(setup, tmp_path):
    # 100 000 tickets is allowed, but not of 200 seats each: 20 million ids in lottery.json.
    code, text = run("quotas", SPEC, "--size", "200", "--out", tmp_path / "q200.csv")
    assert code == 0, text
    text = refused("lottery", setup["pool"], "-q", tmp_path / "q200.csv", "-k", "200",
                   "-o", tmp_path / "lot", "--panels", "100000")
    assert "--panels 100000: 100,000 panels of 200 seats are 20,000,000 places, at most " \
           "10,000,000" in text


def test_draw_replacements(setup, tmp_path):
    base = [*pool_args(setup, "draw"), "--seed", "s", "-o", tmp_path / "b"]
    text = refused(*base, "--replacements", HUGE)
    assert f"--replacements {HUGE}: at most 100 (" in text
    for bad in ("0", "-1"):
        assert f"--replacements {bad}: must be at least 1" in refused(*base, "--replacements",
                                                                      bad)
    assert "--panels 5000000: at most 100,000" in refused(*base, "--panels", "5000000")
    assert "--time-limit 1e+300: at most" in refused(*base, "--time-limit", "1e300")
    assert not (tmp_path / "b").exists()


def test_simulate_trials(setup):
    base = ["simulate", setup["bundle"], "--pool", setup["pool"], "--seed", "x"]
    assert f"--trials {HUGE}: at most 1,000,000" in refused(*base, "--trials", HUGE)
    assert "--trials 0: must be at least 1" in refused(*base, "--trials", "0")


def test_invite_size(setup, tmp_path):
    out = tmp_path / "calls.parquet"
    text = refused("invite", setup["pool"], "--size", HUGE, "--seed", "s", "--out", out)
    assert f"--size {HUGE}: at most 20,000,000" in text
    text = refused("invite", setup["pool"], "--size", "-1", "--seed", "s", "--out", out)
    assert "--size -1: must be at least 1" in text
    assert not out.exists()


# ---------------------------------------------------------------------------
# The caps let the legitimate cases through


CAPPED = {"--rows": limits.MAX_SYNTH_ROWS, "--runs": limits.MAX_LEGACY_RUNS,
          "--trials": limits.MAX_TRIALS, "--replacements": limits.MAX_REPLACEMENTS,
          "--panels": limits.MAX_PANELS}


def test_every_default_is_within_its_cap():
    group = typer.main.get_command(app)
    seen = set()
    for command in group.commands.values():
        for param in command.params:
            name = max(param.opts, key=len)
            if name in CAPPED and param.default is not None:
                limits.check_count(name, param.default, maximum=CAPPED[name])
                seen.add(name)
            if name == "--time-limit" and param.default is not None:
                limits.check_seconds(name, param.default)
    assert seen == {"--rows", "--runs", "--trials"}


def test_largest_legitimate_cases_pass():
    from sortition.operations.demo import LEGACY_RUNS, REPLACEMENTS

    limits.check_count("--rows", 13_000_000, maximum=limits.MAX_SYNTH_ROWS)
    limits.check_count("--size", 1_300_000, maximum=limits.MAX_CALLS)  # calling a whole base
    limits.check_count("--size", 1_000, maximum=limits.MAX_PANEL_SIZE)
    limits.check_count("--runs", LEGACY_RUNS, maximum=limits.MAX_LEGACY_RUNS)
    limits.check_count("--replacements", REPLACEMENTS, maximum=limits.MAX_REPLACEMENTS)
    assert limits.ticket_seats_problem(limits.MAX_PANELS.value, 100) is None
    assert limits.check_seconds("--time-limit", 3600) == 3600.0


def test_check_count_refuses_non_integers():
    for bad in (True, 2.5, "3", None):
        with pytest.raises(InputError, match="--runs .*: must be a whole number"):
            limits.check_count("--runs", bad, maximum=limits.MAX_LEGACY_RUNS)
    import numpy as np

    assert limits.check_count("--runs", np.int64(5), maximum=limits.MAX_LEGACY_RUNS) == 5
    for bad in (float("inf"), float("nan"), 0, -1.0, True):
        with pytest.raises(InputError, match="--time-limit"):
            limits.check_seconds("--time-limit", bad)


def test_library_entry_points_refuse_too():
    from sortition.inputs.quotas import load_quotas
    from sortition.lottery.legacy import legacy_probabilities

    with pytest.raises(InputError, match="--rows .*at most"):
        synthesize_pool(10**12, 1)
    with pytest.raises(InputError, match="--size .*at most"):
        load_quotas(SPEC, 10**12)
    with pytest.raises(InputError, match="--runs .*at most"):
        legacy_probabilities(None, None, 100, seed=0, runs=10**12)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Text options that are not valid UTF-8


def subprocess_run(*args: bytes | str | Path) -> subprocess.CompletedProcess:
    """Run the real program with argv bytes, as a shell would pass them."""
    argv = [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([os.fsencode(sys.executable), b"-m", b"sortition", *argv], env=env,
                          capture_output=True, timeout=120)


def test_seed_bytes_not_utf8_in_argv(setup, tmp_path):
    proc = subprocess_run("draw", setup["pool"], "-q", setup["quotas"], "-k", "100",
                          b"--seed", b"\xff\xfe", "-o", tmp_path / "b")
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2, err
    assert "--seed: not valid UTF-8 text (byte 0xff at position 1)" in err
    assert "Traceback" not in err and "empty" not in err
    assert not (tmp_path / "b").exists()
    # Latin-1 text after valid UTF-8: the first bad byte and its position in the argument.
    proc = subprocess_run("invite", setup["pool"], "--size", "10", b"--seed", b"tirage \xe9t\xe9",
                          "--out", tmp_path / "c.parquet")
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2, err
    assert "--seed: not valid UTF-8 text (byte 0xe9 at position 8)" in err


def test_lone_surrogates_in_text_options(setup, tmp_path):
    draw = [*pool_args(setup, "draw"), "-o", tmp_path / "b"]
    text = refused(*draw, "--seed", "\ud800")
    assert "--seed: not valid UTF-8 text (lone surrogate U+D800 at position 1)" in text
    assert "--title: not valid UTF-8 text (byte 0xff at position 3)" in refused(
        *draw, "--seed", "s", "--title", "ab\udcff")
    assert "--id-column: not valid UTF-8 text" in refused(*draw, "--seed", "s",
                                                          "--id-column", "\udce9")
    assert "--household-column: not valid UTF-8 text" in refused(
        *draw, "--seed", "s", "--household-column", "\udce9", "--household-seed", "h")
    assert "--household-seed: not valid UTF-8 text" in refused(
        *draw, "--seed", "s", "--household-column", "household", "--household-seed", "h\udce9")
    assert not (tmp_path / "b").exists()
    assert "--seed: not valid UTF-8 text" in refused(
        "simulate", setup["bundle"], "--pool", setup["pool"], "--seed", "\udcff")
    assert "--seed: not valid UTF-8 text" in refused(
        "replace", setup["bundle"], "--pool", setup["pool"], "--seed", "\udcff",
        "--declined", tmp_path / "none.txt", "-o", tmp_path / "r")
    assert "--by: not valid UTF-8 text" in refused(
        "invite", setup["pool"], "--size", "10", "--seed", "s", "--by", "\udcff",
        "--out", tmp_path / "c.parquet")
    assert "--expect-seed: not valid UTF-8 text" in refused(
        "verify", setup["bundle"], "--pool", setup["pool"], "--expect-seed", "\udcff")


def test_empty_seed_keeps_its_message():
    with pytest.raises(InputError, match="--seed: the seed is empty; give the public text "
                                         "announced for the draw"):
        seed_option("--seed", "", "the draw")


@given(raw=st.binary(max_size=12))
def test_check_text_accepts_exactly_the_utf8_arguments(raw):
    text = raw.decode("utf-8", "surrogateescape")  # what Python makes of argv bytes
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        with pytest.raises(InputError) as refusal:
            check_text("--title", text)
        assert f"(byte 0x{raw[e.start]:02x} at position {e.start + 1})" in str(refusal.value)
    else:
        assert check_text("--title", text) == text


@given(text=strategies.texts(max_size=20))
def test_check_text_passes_any_utf8_text(text):
    assert check_text("--title", text) == text
