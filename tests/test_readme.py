"""The README's shell examples run as printed, so they cannot drift from the tool.

**Marking.** Every ```` ```sh ```` block of README.md has, on the line just before its fence,
one of:

* `<!-- example: run -->` — run by this test;
* `<!-- example: not run (REASON) -->` — not run, for the reason given (it installs packages or
  creates a virtual environment, it runs the test suite itself, or it holds placeholders such as
  `<hash>` for values published elsewhere).

A block without a mark, or with another mark, fails `test_every_block_is_marked`.

**Running.** The runnable blocks run in README order, each with `bash -euo pipefail` in a
fresh temporary folder of its own holding a copy of the repository's `quotas/` (the README's
commands are typed from the repository root): a block is complete by itself, as for a reader
who jumps to its section, and two blocks may write files of the same name. `sortition` and
`python` are those of the interpreter running the tests (its script folder comes first on
PATH). Every block must exit 0.

**Sizes.** Some examples are sized for a real run (a 200,000-row contact base, a demo of 50,000
rows). The test makes them small by the explicit substitutions of `SMALLER`: each is an exact
text of the README replaced by a smaller one; a substitution that no longer matches the README
fails the test, so the table cannot silently stop applying. Everything else runs as printed.
The whole test takes about half a minute on two cores.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUN = "<!-- example: run -->"
NOT_RUN = re.compile(r"<!-- example: not run \([^()]+\) -->")

# README text → what the test runs instead (only sizes and counts: every command keeps its
# options and meaning). Each key must occur in the README.
SMALLER = {
    "sortition synth --rows 200000 --seed 3 --out base.parquet":
        "sortition synth --rows 30000 --seed 3 --out base.parquet",
    "sortition invite base.parquet --size 5000 ":
        "sortition invite base.parquet --size 1500 ",
    "--dropout-rate 0.1 --trials 10000": "--dropout-rate 0.1 --trials 200",
    "sortition demo --rows 50000 --out demo": "sortition demo --rows 20000 --out demo",
    "sortition demo --extended --rows 100000 --out demo-ext":
        "sortition demo --extended --rows 20000 --out demo-ext",
    "--algorithm legacy --runs 2000 --seed 7": "--algorithm legacy --runs 200 --seed 7",
}


def blocks() -> list[tuple[int, str | None, str]]:
    """(line of the fence, its mark or None, the block's text) for every sh block."""
    lines = README.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() == "```sh":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            mark = lines[i - 1].strip() if i else ""
            found.append((i + 1, mark or None, "\n".join(lines[i + 1:end]) + "\n"))
    return found


def test_every_block_is_marked():
    unmarked = [n for n, mark, _ in blocks() if mark != RUN and not NOT_RUN.fullmatch(mark or "")]
    assert not unmarked, f"README.md: sh blocks at lines {unmarked} have no example mark"
    # the two install commands at the top are not run
    first_two = blocks()[:2]
    assert all("venv" in text and NOT_RUN.fullmatch(mark) for _, mark, text in first_two)


def test_substitutions_apply():
    runnable = "".join(text for _, mark, text in blocks() if mark == RUN)
    stale = [k for k in SMALLER if k not in runnable]
    assert not stale, f"SMALLER no longer matches README.md: {stale}"


def test_runnable_blocks_exit_0(tmp_path):
    scripts = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
           "COLUMNS": "200"}
    for line, mark, text in blocks():
        if mark != RUN:
            continue
        for old, new in SMALLER.items():
            text = text.replace(old, new)
        here = tmp_path / f"block-{line}"
        shutil.copytree(ROOT / "quotas", here / "quotas")
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=here, env=env,
                             capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            pytest.fail(f"README.md, block at line {line} exited {res.returncode}:\n{text}\n"
                        f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}")
