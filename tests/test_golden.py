"""Golden outputs: the public files of a fixed scenario stay byte-identical across refactors.

The scenario (synthetic pool, the Occitanie quotas, a draw with replacement lists, a transparent
lottery, a replacement) runs through the command line; every public file it writes is compared
with the copy under tests/golden/. A change that alters them on purpose regenerates the goldens
in the same commit, saying why:

    python tests/test_golden.py   # rewrites tests/golden/
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_runner import run  # noqa: E402

from sortition.bundle.verifier import page_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
QUOTAS = ROOT / "quotas" / "occitanie-2020.toml"


def scenario(work: Path) -> dict[str, Path]:
    """Run the scenario in `work`; the public files it wrote, by golden name."""
    pool = work / "pool.parquet"
    steps = [
        ("synth", "--rows", 4000, "--seed", 11, "--out", pool),
        ("probabilities", pool, "-q", QUOTAS, "-k", 40, "--out", work / "probabilities.csv"),
        ("public-pool", pool, "-q", QUOTAS, "--out", work / "public.csv"),
        ("lottery", pool, "-q", QUOTAS, "-k", 40, "--out", work / "lottery"),
        ("draw", pool, "-q", QUOTAS, "-k", 40, "--seed", "golden seed 2026",
         "--lottery", work / "lottery", "--replacements", 2, "--out", work / "bundle"),
        ("draw", pool, "-q", QUOTAS, "-k", 40, "--seed", "golden transparent",
         "--panels", 120, "--out", work / "transparent"),
    ]
    for step in steps:
        code, out = run(*step)
        assert code == 0, (step[0], out)
    panel = (work / "bundle" / "panel.csv").read_text(encoding="utf-8").splitlines()
    declined = [line.split(",")[0] for line in panel[1:4]]
    (work / "declined.txt").write_text("\n".join(declined) + "\n", encoding="utf-8")
    code, out = run("replace", work / "bundle", "--pool", pool, "--declined",
                    work / "declined.txt", "--seed", "golden replace", "--out", work / "bundle2")
    assert code == 0, out
    files: dict[str, Path] = {
        "probabilities.csv": work / "probabilities.csv",
        "public.csv": work / "public.csv",
    }
    for folder in ("lottery", "bundle", "transparent", "bundle2"):
        for f in sorted((work / folder).iterdir()):
            if f.is_file() and f.name != "verify.html":  # the packaged page: test below
                files[f"{folder}/{f.name}"] = f
    return files


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return scenario(tmp_path_factory.mktemp("golden"))


def test_the_same_public_files_are_written(produced: dict[str, Path]) -> None:
    expected = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file())
    assert sorted(produced) == expected


def test_every_bundle_carries_the_packaged_verifier_page(produced: dict[str, Path]) -> None:
    """verify.html is not kept as golden copies: each bundle's is the packaged page, byte for
    byte (its hash is in the README, kept true by test_browser_verifier)."""
    folders = {produced[n].parent for n in produced if n.startswith(("bundle", "transparent"))}
    assert len(folders) == 3
    for folder in folders:
        assert (folder / "verify.html").read_bytes() == page_bytes()


@pytest.mark.parametrize("name", sorted(
    str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()))
def test_golden_file_is_byte_identical(produced: dict[str, Path], name: str) -> None:
    assert name in produced, f"{name} is no longer written"
    assert produced[name].read_bytes() == (GOLDEN / name).read_bytes(), name


if __name__ == "__main__":
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = scenario(Path(tmp))
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, path in out.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, GOLDEN / name)
    print(f"wrote {len(out)} golden files to {GOLDEN}")
