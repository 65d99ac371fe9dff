"""`sortition verify` on a draw bundle: it accepts the genuine bundle (full pool or public
extract, with `--recompute`), finds every kind of tampering and names it, and exits 0, 1 or 2
as the README says; also called as a library (`verify_bundle`). Anchoring, chains and hostile
bundles have their own modules (test_anchoring, test_chain, test_hostile)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_runner import invoke, run
from cli_runner import verify_unanchored as verify
from conftest import BUNDLE_SEED as SEED
from conftest import copy_bundle


def test_verify_accepts_the_bundle_with_the_full_pool_and_the_extract(bundle_setup):
    h = bundle_setup["audit"]["lottery"]["sha256"]
    for pool in (bundle_setup["pool"], bundle_setup["public"]):
        code, text = verify(bundle_setup["bundle"], pool, "--expect-lottery-hash", h,
                            "--expect-seed", SEED, "-q", bundle_setup["quotas"])
        assert code == 0, text
        assert "verified" in text


def test_verify_recompute(bundle_setup):
    code, text = verify(bundle_setup["bundle"], bundle_setup["public"], "--recompute")
    assert code == 0, text
    assert "recomputed leximin marginals agree" in text


def _edit_pool(bundle_setup, tmp_path, edit) -> Path:
    table = pq.read_table(bundle_setup["public"])
    out = tmp_path / "pool.parquet"
    pq.write_table(edit(table), out)
    return out


def test_tamper_one_feature_value_names_the_strata(bundle_setup, tmp_path):
    def edit(t):
        area = t.column("area").to_pylist()
        area[10] = "rural" if area[10] == "urban" else "urban"
        return t.set_column(t.column_names.index("area"), "area", pa.array(area))
    code, text = verify(bundle_setup["bundle"], _edit_pool(bundle_setup, tmp_path, edit))
    assert code == 1
    assert "fingerprint" in text and "stratum" in text and "changed" in text


def test_tamper_one_id(bundle_setup, tmp_path):
    def edit(t):
        ids = t.column("id").to_pylist()
        ids[3] = ids[3] + "x"
        return t.set_column(0, "id", pa.array(ids))
    code, text = verify(bundle_setup["bundle"], _edit_pool(bundle_setup, tmp_path, edit))
    assert code == 1
    assert "ids or values changed without changing any stratum's size" in text


@pytest.mark.parametrize("how", ["added", "removed"])
def test_tamper_rows_added_or_removed(bundle_setup, tmp_path, how):
    def edit(t):
        if how == "removed":
            return t.slice(1)
        extra = t.slice(0, 1).set_column(0, "id", pa.array(["ZZ-new"]))
        return pa.concat_tables([t, extra])
    code, text = verify(bundle_setup["bundle"], _edit_pool(bundle_setup, tmp_path, edit))
    assert code == 1
    assert ("499 people now" if how == "removed" else "501 people now") in text


def test_tamper_quota_bound_given(bundle_setup, tmp_path):
    lines = bundle_setup["quotas"].read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    f, v, lo, hi = rows[0].split(",")
    rows[0] = ",".join([f, v, lo, str(int(hi) + 1)])
    (tmp_path / "q.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    code, text = verify(bundle_setup["bundle"], bundle_setup["public"], "-q", tmp_path / "q.csv")
    assert code == 1
    assert "quotas" in text and f"{f}={v}" in text


def test_tamper_quota_bound_in_audit(bundle_setup, tmp_path):
    b = copy_bundle(bundle_setup, tmp_path)
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    audit["inputs"]["quotas"]["quotas"][0][3] += 1
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    code, text = verify(b, bundle_setup["public"])
    assert code == 1
    assert "a bound was edited" in text


def test_tamper_seed_by_one_character(bundle_setup, tmp_path):
    b = copy_bundle(bundle_setup, tmp_path)
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    audit["seed"] = SEED[:-1] + "8"
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    code, text = verify(b, bundle_setup["public"])
    assert code == 1
    assert "the draw from the seed gives" in text or "the seed gives" in text


def test_expected_seed_and_hash_must_match(bundle_setup):
    code, text = verify(bundle_setup["bundle"], bundle_setup["public"], "--expect-seed", SEED + " ")
    assert code == 1 and "announced" in text
    code, text = verify(bundle_setup["bundle"], bundle_setup["public"],
                        "--expect-lottery-hash", "0" * 64)
    assert code == 1 and "published beforehand" in text


def test_tamper_panel_csv_id_swapped(bundle_setup, tmp_path):
    b = copy_bundle(bundle_setup, tmp_path)
    ids = set(bundle_setup["audit"]["draw"]["ids"])
    other = next(i for i in pq.read_table(bundle_setup["public"]).column("id").to_pylist()
                 if i not in ids)
    lines = (b / "panel.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(",")
    cells[0] = other
    lines[5] = ",".join(cells)
    (b / "panel.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = verify(b, bundle_setup["public"])
    assert code == 1
    assert "panel.csv, line 6" in text


def test_tamper_lottery_edited(bundle_setup, tmp_path):
    b = copy_bundle(bundle_setup, tmp_path)
    data = (b / "lottery.json").read_text(encoding="utf-8")
    lines = data.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith('  {"weight": '))
    j = next(k for k, line in enumerate(lines) if k > i and line.startswith('  {"weight": '))
    wi = json.loads(lines[i].rstrip(","))["weight"]
    lines[i] = lines[i].replace(f'"weight": {wi}', f'"weight": {wi - 1}', 1)
    wj = json.loads(lines[j].rstrip(","))["weight"]
    lines[j] = lines[j].replace(f'"weight": {wj}', f'"weight": {wj + 1}', 1)
    (b / "lottery.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = verify(b, bundle_setup["public"])
    assert code == 1
    assert "the lottery file was changed" in text


def test_missing_file_is_a_difference_malformed_audit_an_input_error(bundle_setup, tmp_path):
    b = copy_bundle(bundle_setup, tmp_path)
    (b / "probabilities.csv").unlink()
    code, text = verify(b, bundle_setup["public"])
    assert code == 1 and "probabilities.csv" in text
    # a malformed bundle is unusable input (exit 2, which from verify means "not verified" too)
    (b / "audit.json").write_text("{not json", encoding="utf-8")
    code, text = verify(b, bundle_setup["public"])
    assert code == 2 and "audit.json: not valid JSON" in text


def test_verify_bad_inputs_exit_2(bundle_setup, tmp_path):
    assert verify(tmp_path / "nope", bundle_setup["public"])[0] == 2
    assert verify(bundle_setup["bundle"], tmp_path / "nope.parquet")[0] == 2


def test_verify_json_lists_the_differences(bundle_setup, tmp_path):
    b = copy_bundle(bundle_setup, tmp_path)
    audit = json.loads((b / "audit.json").read_text(encoding="utf-8"))
    audit["lottery"]["method"] = "something else"
    audit["probabilities"]["max"] = 0.5
    (b / "audit.json").write_text(json.dumps(audit, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    res = invoke("verify", b, "--pool", bundle_setup["public"], "--json", "--unanchored-ok")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["verified"] is False
    assert any("lottery.method" in d for d in doc["differences"])
    assert any("probabilities.max" in d for d in doc["differences"])
    assert doc["difference_count"] == len(doc["differences"])


def test_tampered_transparent_lottery_is_found(bundle_setup, tmp_path):
    """The tickets' people are not in lottery.json (they would link every id to its stratum):
    they follow from the pool; what the file states of them (max_change) is re-checked."""
    code, text = run("draw", bundle_setup["pool"], "-q", bundle_setup["quotas"], "-k", "100",
                     "--seed", SEED,
                     "--panels", "20", "-o", tmp_path / "t")
    assert code == 0, text
    path = tmp_path / "t" / "lottery.json"
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text)
    stated = json.dumps(doc["transparent"]["max_change"])
    path.write_text(text.replace(f'"max_change": {stated}', '"max_change": 0.0', 1),
                    encoding="utf-8")
    code, out = verify(tmp_path / "t", bundle_setup["public"])
    assert code == 1 and "transparent.max_change" in out
    lines = text.splitlines()
    lines[-2] = lines[-2][:-1] + ', "panels": [["x"]]}'  # an old-style ticket list
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = verify(tmp_path / "t", bundle_setup["public"])
    assert code == 2 and "ticket lists of ids are no longer published" in out


def test_verify_as_a_library_call(bundle_setup, tmp_path):
    """`verify_bundle`, as a program embedding the check calls it: the same verdicts as the
    command line, a difference per tampered file or missing one, and InputError (exit 2 on
    the command line) for a malformed audit.json."""
    from sortition.core.errors import InputError
    from sortition.operations.verify import verify_bundle

    audit = bundle_setup["audit"]
    good = verify_bundle(bundle_setup["bundle"], bundle_setup["public"],
                         expect_lottery_hash=audit["lottery"]["sha256"], expect_seed=SEED)
    assert good.ok and good.anchored and good.differences == []
    assert good.checked
    loose = verify_bundle(bundle_setup["bundle"], bundle_setup["public"])
    assert loose.ok and not loose.anchored and len(loose.anchors.missing) == 2
    b = copy_bundle(bundle_setup, tmp_path)
    panel = (b / "panel.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (b / "panel.csv").write_text(panel[0] + "".join(reversed(panel[1:])), encoding="utf-8")
    bad = verify_bundle(b, bundle_setup["public"])
    assert not bad.ok and any("panel.csv" in d for d in bad.differences), bad.differences
    (tmp_path / "empty").mkdir()
    assert verify_bundle(tmp_path / "empty", bundle_setup["public"]).differences == [
        "audit.json: not found"]
    (b / "audit.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputError):
        verify_bundle(b, bundle_setup["public"])
