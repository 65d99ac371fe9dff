"""The whole recruitment chain: contact base → call list → respondents → draw → verify."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from cli_runner import run

from sortition.inputs.synth import synthesize_pool, write_pool

SPEC = Path(__file__).resolve().parents[1] / "quotas" / "occitanie-2020.toml"


def test_verify_follows_the_chain_back_to_the_base(tmp_path):
    write_pool(synthesize_pool(30000, 5), tmp_path / "base.parquet")
    code, text = run("invite", tmp_path / "base.parquet", "--size", "2500", "--seed", "calls",
                     "--by", "gender", "--by", "age_band", "--by", "department",
                     "--out", tmp_path / "calls.parquet")
    assert code == 0, text
    ids = pq.read_table(tmp_path / "calls.parquet", columns=["id"]).column("id").to_pylist()
    rng = random.Random(4)
    answers = "id,answer\n" + "".join(f"{i},{rng.choice(['yes', 'yes', 'no'])}\n" for i in ids)
    (tmp_path / "answers.csv").write_text(answers, encoding="utf-8")
    code, text = run("respondents", tmp_path / "calls.parquet", "--answers",
                     tmp_path / "answers.csv", "--out", tmp_path / "pool.parquet")
    assert code == 0, text
    assert run("quotas", SPEC, "--size", "100", "--out", tmp_path / "q.csv")[0] == 0
    code, text = run("draw", tmp_path / "pool.parquet", "-q", tmp_path / "q.csv", "-k", "100",
                     "--seed", "draw", "-o", tmp_path / "bundle")
    assert code == 0, text
    code, text = run("verify", "--unanchored-ok", tmp_path / "bundle", "--pool",
                     tmp_path / "pool.parquet",
                     "--base", tmp_path / "base.parquet")
    assert code == 0, text
    assert "the call list is the one the seed draws from base.parquet" in text
    # an answer changed after the fact
    lines = answers.splitlines()
    k = next(n for n, line in enumerate(lines) if line.endswith(",yes"))
    lines[k] = lines[k][:-4] + ",no"
    (tmp_path / "answers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = run("verify", "--unanchored-ok", tmp_path / "bundle", "--pool",
                     tmp_path / "pool.parquet")
    assert code == 1 and "chain, respondents: answers file" in text
    (tmp_path / "answers.csv").write_text(answers, encoding="utf-8")
    # the base edited
    base = pq.read_table(tmp_path / "base.parquet")
    changed = base.column("id").to_pylist()
    changed[7] += "x"
    pq.write_table(base.set_column(0, "id", pa.array(changed)), tmp_path / "base.parquet")
    code, text = run("verify", "--unanchored-ok", tmp_path / "bundle", "--pool",
                     tmp_path / "pool.parquet",
                     "--base", tmp_path / "base.parquet")
    assert code == 1 and "chain, call list" in text
