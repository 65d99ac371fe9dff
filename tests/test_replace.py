"""Dropouts (`replace`) and households: quotas kept, nobody else changed when avoidable,
reproducible, verifiable through the history; one person per household."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import strategies
from cli_runner import run
from conftest import run_spec_programs
from hypothesis import HealthCheck, assume, event, given
from hypothesis import strategies as st

from sortition.bundle.read import origin_lists, read_bundle
from sortition.bundle.write import run_draw
from sortition.core.errors import InfeasibleError, InputError
from sortition.draw.replacements import list_dict
from sortition.inputs.load import load_inputs
from sortition.inputs.quotas import Quotas, ValueQuota, write_quotas
from sortition.inputs.synth import synthesize_pool, write_pool
from sortition.lottery.panels import quota_system
from sortition.operations.replace import run_replace

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "quotas" / "occitanie-2020.toml"


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("replace")
    write_pool(synthesize_pool(2000, 1), d / "pool.parquet")
    assert run("quotas", SPEC, "--size", "100", "--out", d / "quotas.csv")[0] == 0
    code, text = run("draw", d / "pool.parquet", "-q", d / "quotas.csv", "-k", "100",
                     "--seed", "first", "-o", d / "b0")
    assert code == 0, text
    audit = json.loads((d / "b0" / "audit.json").read_text(encoding="utf-8"))
    return {"dir": d, "pool": d / "pool.parquet", "quotas": d / "quotas.csv",
            "b0": d / "b0", "panel": audit["draw"]["ids"]}


def _b0(drawn: dict, tmp_path: Path) -> Path:
    """The drawn bundle, copied into tmp_path: a replacement bundle is written beside the
    bundle it replaces (it refers to it as ../b0)."""
    if not (tmp_path / "b0").exists():
        shutil.copytree(drawn["b0"], tmp_path / "b0")
    return tmp_path / "b0"


def _declined(tmp_path: Path, ids: list[str], csv: bool = False) -> Path:
    path = tmp_path / ("declined.csv" if csv else "declined.txt")
    text = ("id,reason\n" + "".join(f"{i},ill\n" for i in ids)) if csv else "\n".join(ids)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _audit(path: Path) -> dict:
    return json.loads((path / "audit.json").read_text(encoding="utf-8"))


def _quotas_hold(d: dict, panel: list[str]) -> bool:
    inputs = load_inputs(d["pool"], d["quotas"], 100)
    system = quota_system(inputs.strata, inputs.quotas, 100)
    rows = pa.compute.index_in(pa.array(panel), value_set=inputs.pool.ids).to_numpy()
    seats = np.bincount(inputs.strata.row_stratum[rows], minlength=system.n_strata)
    return system.satisfied(seats)


def test_replace_keeps_the_quotas_and_everybody_else(drawn, tmp_path):
    panel = drawn["panel"]
    declined = [panel[10], panel[40], panel[77]]
    code, text = run("replace", _b0(drawn, tmp_path), "--pool", drawn["pool"], "--declined",
                     _declined(tmp_path, declined, csv=True), "--seed", "second",
                     "-o", tmp_path / "b1")
    assert code == 0, text
    audit = _audit(tmp_path / "b1")
    new = audit["panel"]["ids"]
    assert len(new) == 100 and len(set(new)) == 100
    assert not set(declined) & set(new)
    changed = {panel[p] for p in range(100) if new[p] != panel[p]}
    assert changed == set(declined) | set(audit["released"])
    assert _quotas_hold(drawn, new)
    assert audit["previous"]["path"] == "../b0" or audit["previous"]["path"].endswith("b0")
    code, text = run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", drawn["pool"])
    assert code == 0, text


def test_same_seed_same_replacements(drawn, tmp_path):
    declined = _declined(tmp_path, [drawn["panel"][5]])
    for name in ("x", "y"):
        assert run("replace", _b0(drawn, tmp_path), "--pool", drawn["pool"], "--declined", declined,
                   "--seed", "again", "-o", tmp_path / name)[0] == 0
    x, y = (tmp_path / n / "panel.csv" for n in ("x", "y"))
    assert x.read_bytes() == y.read_bytes()
    a, b = _audit(tmp_path / "x"), _audit(tmp_path / "y")
    a.pop("run")
    b.pop("run")
    assert a == b


def test_replace_twice_and_verify_the_history(drawn, tmp_path):
    panel = drawn["panel"]
    assert run("replace", _b0(drawn, tmp_path), "--pool", drawn["pool"], "--declined",
               _declined(tmp_path, [panel[1]]), "--seed", "r1", "-o", tmp_path / "b1")[0] == 0
    new = _audit(tmp_path / "b1")["panel"]["ids"]
    second = tmp_path / "second.txt"
    second.write_text(new[50] + "\n", encoding="utf-8")
    code, text = run("replace", tmp_path / "b1", "--pool", drawn["pool"], "--declined", second,
                     "--seed", "r2", "-o", tmp_path / "b2")
    assert code == 0, text
    audit = _audit(tmp_path / "b2")
    assert audit["round"] == 2
    assert panel[1] not in audit["panel"]["ids"]  # nobody who declined comes back
    code, text = run("verify", "--unanchored-ok", tmp_path / "b2", "--pool", drawn["pool"])
    assert code == 0, text
    assert "previous bundle b1 verifies" in text


def test_tampering_anywhere_in_the_history_is_found(drawn, tmp_path):
    shutil.copytree(drawn["b0"], tmp_path / "b0")
    assert run("replace", tmp_path / "b0", "--pool", drawn["pool"], "--declined",
               _declined(tmp_path, [drawn["panel"][3]]), "--seed", "t",
               "-o", tmp_path / "b1")[0] == 0
    panel_csv = (tmp_path / "b1" / "panel.csv")
    original = panel_csv.read_bytes()
    lines = original.decode().splitlines()
    lines[2], lines[3] = lines[3], lines[2]
    panel_csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", drawn["pool"])
    assert code == 1 and "panel.csv" in text
    panel_csv.write_bytes(original)
    assert run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", drawn["pool"])[0] == 0
    earlier = tmp_path / "b0" / "audit.json"
    earlier.write_text(earlier.read_text(encoding="utf-8").replace('"first"', '"firsT"'),
                       encoding="utf-8")
    code, text = run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", drawn["pool"])
    assert code == 1 and "previous bundle was changed" in text


def test_replace_errors(drawn, tmp_path):
    base = ["replace", _b0(drawn, tmp_path), "--pool", drawn["pool"], "--seed", "e",
            "-o", tmp_path / "o"]
    code, text = run(*base, "--declined", _declined(tmp_path, ["nobody-such"]))
    assert code == 2 and "not in the pool" in text
    outsider = next(i for i in pq.read_table(drawn["pool"]).column("id").to_pylist()
                    if i not in set(drawn["panel"]))
    code, text = run(*base, "--declined", _declined(tmp_path, [outsider]))
    assert code == 2 and "not on the panel" in text
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    assert run(*base, "--declined", empty)[0] == 2
    code, text = run("replace", _b0(drawn, tmp_path), "--pool", drawn["pool"], "--seed", "",
                     "--declined", _declined(tmp_path, [drawn["panel"][0]]), "-o", tmp_path / "o")
    assert code == 2 and "seed is empty" in text
    assert not (tmp_path / "o").exists()


def test_run_replace_without_a_folder_for_the_new_bundle(drawn, tmp_path):
    """Nothing to write (no out_dir) and no `relative_to`: the new audit.json cannot name the
    previous bundle, an input error before any work (not a TypeError after all of it)."""
    inputs = load_inputs(drawn["pool"], drawn["quotas"], 100)
    with pytest.raises(InputError, match="relative_to"):
        run_replace(_b0(drawn, tmp_path), inputs, [drawn["panel"][0]], "r", None)


def test_more_dropouts_than_the_pool_can_cover_exits_1(tmp_path):
    """Everyone is on the panel: nobody is left to replace the one who declined."""
    table = pa.table({"id": [f"p{i}" for i in range(6)], "g": ["a", "a", "a", "b", "b", "b"]})
    pq.write_table(table, tmp_path / "pool.parquet")
    write_quotas(Quotas([ValueQuota("g", "a", 3, 3), ValueQuota("g", "b", 3, 3)], [], 6),
                 tmp_path / "q.toml")
    assert run("draw", tmp_path / "pool.parquet", "-q", tmp_path / "q.toml", "-k", "6",
               "--seed", "s", "-o", tmp_path / "b0")[0] == 0
    code, text = run("replace", tmp_path / "b0", "--pool", tmp_path / "pool.parquet",
                     "--declined", _declined(tmp_path, ["p1"]), "--seed", "s2",
                     "-o", tmp_path / "b1")
    assert code == 1
    assert "g=a needs at least 3 seats" in text
    assert not (tmp_path / "b1").exists()


# ---------------------------------------------------------------------------
# Property: quotas hold after replace; nobody else changes when a completion exists


@st.composite
def small_cases(draw):
    n = draw(st.integers(8, 24))
    g = draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n))
    h = draw(st.lists(st.sampled_from("xyz"), min_size=n, max_size=n))
    k = draw(st.integers(2, min(6, n - 1)))
    slack = draw(st.integers(0, 2))
    return g, h, k, slack, draw(st.integers(1, k)), draw(st.integers(0, 10**6))


def _completion_exists(inputs, system, kept_seats, avail, seats) -> bool:
    strata = [s for s in range(system.n_strata) if avail[s] > 0]
    for combo in itertools.combinations_with_replacement(strata, seats):
        x = kept_seats.copy()
        ok = True
        for s in combo:
            x[s] += 1
        for s in strata:
            if x[s] - kept_seats[s] > avail[s]:
                ok = False
        if ok and system.satisfied(x):
            return True
    return False


@strategies.examples(25, HealthCheck.too_slow, HealthCheck.function_scoped_fixture)
@given(small_cases())
def test_replace_property(tmp_path_factory, case):
    g, h, k, slack, n_declined, salt = case
    d = tmp_path_factory.mktemp("prop")
    n = len(g)
    pq.write_table(pa.table({"id": [f"p{i:02d}" for i in range(n)], "g": g, "h": h}),
                   d / "pool.parquet")
    share = {v: g.count(v) / n for v in "ab"}
    quotas = Quotas([ValueQuota("g", v, max(0, round(k * share[v]) - slack),
                                round(k * share[v]) + slack) for v in "ab" if share[v] > 0]
                    + [ValueQuota("h", v, 0, k) for v in "xyz" if v in h], [], k)
    write_quotas(quotas, d / "q.toml")
    inputs = load_inputs(d / "pool.parquet", d / "q.toml", k)
    try:
        result = run_draw(inputs, seed=f"s{salt}", out_dir=d / "b0", algorithm="leximin",
                          panels=None, lottery_dir=None, legacy_runs=0)
    except InfeasibleError:
        return
    panel = result.audit["draw"]["ids"]
    declined = panel[:n_declined]
    try:
        rep = run_replace(d / "b0", inputs, declined, f"r{salt}", d / "b1")
    except InfeasibleError:
        return
    system = quota_system(inputs.strata, inputs.quotas, k)
    rows = pa.compute.index_in(pa.array(rep.panel), value_set=inputs.pool.ids).to_numpy()
    seats = np.bincount(inputs.strata.row_stratum[rows], minlength=system.n_strata)
    assert system.satisfied(seats)
    assert len(set(rep.panel)) == k and not set(declined) & set(rep.panel)
    if rep.released:  # only when no completion keeps everybody else
        kept = [i for i in panel if i not in set(declined)]
        krows = pa.compute.index_in(pa.array(kept), value_set=inputs.pool.ids).to_numpy()
        kept_seats = np.bincount(inputs.strata.row_stratum[krows], minlength=system.n_strata)
        avail = inputs.strata.counts - np.bincount(
            inputs.strata.row_stratum[pa.compute.index_in(
                pa.array(panel), value_set=inputs.pool.ids).to_numpy()],
            minlength=system.n_strata)
        assert not _completion_exists(inputs, system, kept_seats, avail, len(declined))
    else:
        assert [p for p in panel if p not in set(declined)] == \
            [p for p in rep.panel if p in set(panel)]


# ---------------------------------------------------------------------------
# Households


def test_households_one_person_each_even_when_every_household_has_two(tmp_path):
    pool = synthesize_pool(1200, 3)
    ids = pool.column("id").to_pylist()
    pairs = pa.array([f"H{i // 2}" for i in range(len(ids))])  # every household: two people
    pool = pool.set_column(pool.column_names.index("household"), "household", pairs)
    write_pool(pool, tmp_path / "pool.parquet")
    assert run("quotas", SPEC, "--size", "60", "--out", tmp_path / "q.csv")[0] == 0
    base = ["draw", tmp_path / "pool.parquet", "-q", tmp_path / "q.csv", "-k", "60",
            "--seed", "s", "--household-column", "household"]
    code, text = run(*base, "-o", tmp_path / "no-seed")
    assert code == 2 and "--household-seed" in text
    code, text = run(*base, "--household-seed", "hh", "--replacements", "2",
                     "-o", tmp_path / "b0")
    if code == 1:
        pytest.skip(f"quotas infeasible for this synthetic pool: {text}")
    assert code == 0, text
    audit = _audit(tmp_path / "b0")
    household = dict(zip(ids, pairs.to_pylist(), strict=True))
    panel = audit["draw"]["ids"]
    assert len({household[i] for i in panel}) == len(panel)
    assert audit["inputs"]["pool"]["eligible"] == 600
    assert not (tmp_path / "b0" / "replacements.csv").exists()  # not public: beside it
    rows = [line.split(",") for line in
            (tmp_path / "b0.replacements.csv").read_text().splitlines()[1:]]
    assert rows
    on_panel = {household[i] for i in panel}
    listed = [household[r] for _, _, r in rows]
    assert not set(listed) & on_panel  # no swap brings in a panel member's household
    assert len(set(listed)) == len(listed)  # nor two people of one household
    classes = [line.split(",") for line in
               (tmp_path / "b0" / "probabilities.csv").read_text().splitlines()[1:]]
    probs = [float(p) for p, n in classes for _ in range(int(n))]  # no ids: classes only
    assert len(probs) == 1200 and sum(1 for p in probs if p == 0.0) >= 600
    assert abs(sum(probs) - 60) < 1e-9
    assert "address" not in (tmp_path / "b0" / "audit.json").read_text()
    code, text = run("probabilities", tmp_path / "pool.parquet", "-q", tmp_path / "q.csv",
                     "-k", "60", "--household-column", "household", "--household-seed", "hh",
                     "--out", tmp_path / "p.csv")
    assert code == 0, text
    alone = [float(line.split(",")[1]) for line in
             (tmp_path / "p.csv").read_text().splitlines()[1:]]
    assert len(alone) == 1200 and sum(1 for p in alone if p == 0.0) >= 600
    assert abs(sum(alone) - 60) < 1e-6
    code, text = run("check", tmp_path / "pool.parquet", "-q", tmp_path / "q.csv", "-k", "60",
                     "--household-column", "household", "--household-seed", "hh")
    assert code == 0 and "600 people" in text
    code, text = run("public-pool", tmp_path / "pool.parquet", "-q", tmp_path / "q.csv",
                     "-k", "60", "--household-column", "household", "-o", tmp_path / "pub.csv")
    assert code == 0, text
    assert "H1" not in (tmp_path / "pub.csv").read_text()  # opaque numbers only
    code, text = run("verify", "--unanchored-ok", tmp_path / "b0", "--pool", tmp_path / "pub.csv")
    assert code == 0, text
    code, text = run("replace", tmp_path / "b0", "--pool", tmp_path / "pub.csv", "--declined",
                     _declined(tmp_path, panel[:2]), "--seed", "r", "-o", tmp_path / "b1")
    assert code == 0, text
    new = _audit(tmp_path / "b1")["panel"]["ids"]
    assert len({household[i] for i in new}) == len(new)
    assert run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", tmp_path / "pub.csv")[0] == 0


def test_replacement_lists_are_used_and_verified(drawn, tmp_path):
    code, text = run("draw", drawn["pool"], "-q", drawn["quotas"], "-k", "100", "--seed", "L",
                     "--replacements", "3", "-o", tmp_path / "b0")
    assert code == 0, text
    lists = tmp_path / "b0.replacements.csv"  # garant material, beside the bundle
    lines = lists.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "member_id,rank,replacement_id"
    rows = [line.split(",") for line in lines[1:]]
    panel = _audit(tmp_path / "b0")["draw"]["ids"]
    assert not {r for _, _, r in rows} & set(panel)
    assert len({r for _, _, r in rows}) == len(rows)  # nobody listed twice
    for member, _, repl in rows:  # every listed swap keeps every quota
        swapped = [repl if i == member else i for i in panel]
        assert _quotas_hold(drawn, swapped)
    assert run("verify", "--unanchored-ok", tmp_path / "b0", "--pool", drawn["pool"],
               "--replacements", lists)[0] == 0
    listed = [m for m, rank, _ in rows if rank == "1"]
    declined = _declined(tmp_path, listed[:3])
    code, text = run("replace", tmp_path / "b0", "--pool", drawn["pool"], "--declined",
                     declined, "--seed", "R", "-o", tmp_path / "b1")
    assert code == 0, text
    audit = _audit(tmp_path / "b1")
    assert [r["how"] for r in audit["replacements"]] == ["replacement list"] * 3
    assert audit["released"] == []
    assert run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", drawn["pool"])[0] == 0
    # a new lottery slipped into a replacement that needs none: a difference, recomputed or not
    forged = tmp_path / "forged"
    shutil.copytree(tmp_path / "b1", forged)
    shutil.copy(tmp_path / "b0" / "lottery.json", forged / "lottery.json")
    audit["lottery"] = {"file": "lottery.json", "sha256": hashlib.sha256(
        (forged / "lottery.json").read_bytes()).hexdigest()}
    (forged / "audit.json").write_text(json.dumps(audit), encoding="utf-8")
    code, text = run("verify", "--unanchored-ok", forged, "--pool", drawn["pool"], "--recompute")
    assert code == 1 and "this replacement needs no new lottery" in text, text
    lists.write_text("\n".join([lines[0], *lines[2:], lines[1]]) + "\n", encoding="utf-8")
    code, text = run("verify", "--unanchored-ok", tmp_path / "b0", "--pool", drawn["pool"],
                     "--replacements", lists)
    assert code == 1 and "b0.replacements.csv, line 2" in text
    # the list file is not needed
    assert run("verify", "--unanchored-ok", tmp_path / "b0", "--pool", drawn["pool"])[0] == 0
    audit = _audit(tmp_path / "b0")  # the commitment is what binds the lists
    audit["replacements"]["sha256"] = "0" * 64
    (tmp_path / "b0" / "audit.json").write_text(json.dumps(audit), encoding="utf-8")
    code, text = run("verify", "--unanchored-ok", tmp_path / "b0", "--pool", drawn["pool"])
    assert code == 1 and "replacements.sha256" in text


def test_completion_lottery_is_published_and_checked(drawn, tmp_path):
    """Without replacement lists the open seats go to a new lottery, published in the bundle;
    verify draws again from that file, and an edited file is caught."""
    shutil.copytree(drawn["b0"], tmp_path / "b0")
    code, text = run("replace", tmp_path / "b0", "--pool", drawn["pool"], "--declined",
                     _declined(tmp_path, [drawn["panel"][20]]), "--seed", "c",
                     "-o", tmp_path / "b1")
    assert code == 0, text
    audit = _audit(tmp_path / "b1")
    assert audit["lottery"] is not None and (tmp_path / "b1" / "lottery.json").exists()
    assert audit["previous"]["path"] == "../b0"
    assert run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", drawn["pool"])[0] == 0
    lottery = tmp_path / "b1" / "lottery.json"
    text = lottery.read_text(encoding="utf-8")
    lottery.write_text(text.replace('"panel_size": 1,', '"panel_size": 2,', 1)
                       if '"panel_size": 1,' in text else text + " ", encoding="utf-8")
    code, out = run("verify", "--unanchored-ok", tmp_path / "b1", "--pool", drawn["pool"])
    assert code == 1 and "lottery.json: SHA-256 differs" in out


# ---------------------------------------------------------------------------
# The list choice (docs/draw-spec.md section 16): joint, and nobody released when avoidable


def _tiny_bundle(d: Path, people: dict[str, tuple[str, ...]], features: list[str],
                 quotas: Quotas, k: int, shape):
    """A draw bundle of a hand-made pool whose panel has the seats per stratum `shape` (a
    dict, or a test of {stratum key: seats}), from the first seed among s0, s1, … whose draw
    gives it. Returns the inputs and the panel."""
    from sortition.core.drawspec import panel_index, seed_bytes
    from sortition.lottery.publish import read_lottery

    ids = sorted(people)
    pq.write_table(pa.table({"id": ids, **{f: [people[i][j] for i in ids]
                                           for j, f in enumerate(features)}}),
                   d / "pool.parquet")
    write_quotas(quotas, d / "q.toml")
    inputs = load_inputs(d / "pool.parquet", d / "q.toml", k)
    run_draw(inputs, seed="s0", out_dir=d / "lot", algorithm="leximin", panels=None,
             lottery_dir=None, legacy_runs=0)
    data = (d / "lot" / "lottery.json").read_bytes()
    lottery = read_lottery(data, "lottery.json")
    digest = hashlib.sha256(data).hexdigest()
    if isinstance(shape, dict):
        shape = shape.__eq__
    seed = next(f"s{i}" for i in range(500) if shape({
        tuple(key): v for key, v in zip(lottery.keys, lottery.panels[panel_index(
            lottery.weights, lottery.denominator, seed_bytes(f"s{i}"), digest)].tolist(),
            strict=True) if v}))
    result = run_draw(inputs, seed=seed, out_dir=d / "b0", algorithm="leximin", panels=None,
                      lottery_dir=d / "lot", legacy_runs=0)
    return inputs, result.audit["draw"]["ids"]


def test_joint_choice_covers_what_greedy_swaps_cannot(tmp_path):
    """Seat 1's first candidate fits alone but blocks seat 2's only candidate: the choice
    takes seat 1's second candidate, and both seats come from the lists (no lottery)."""
    people = {f"x{i}": ("x",) for i in range(1, 5)} | {f"y{i}": ("y",) for i in range(1, 5)}
    quotas = Quotas([ValueQuota("h", "x", 1, 2), ValueQuota("h", "y", 1, 2)], [], 3)
    inputs, panel = _tiny_bundle(tmp_path, people, ["h"], quotas, 3, {("x",): 1, ("y",): 2})
    d1, d2 = [i for i in panel if i.startswith("y")]
    free_x = [i for i in sorted(people) if i.startswith("x") and i not in panel]
    free_y = [i for i in sorted(people) if i.startswith("y") and i not in panel]
    # every listed swap keeps every quota on its own (section 12's promise)
    lists = {d1: [free_x[0], free_y[0]], d2: [free_x[1]]}
    rep = run_replace(tmp_path / "b0", inputs, [d1, d2], "r", tmp_path / "b1", lists=lists)
    assert rep.released == [] and rep.lottery_hash is None
    assert {(r.left, r.joined, r.how, r.rank) for r in rep.replacements} == {
        (d1, free_y[0], "replacement list", 2), (d2, free_x[1], "replacement list", 1)}
    assert rep.audit["lottery"] is None


def test_no_release_when_the_list_swap_is_what_blocks(tmp_path):
    """Regression (the reported bug): the first declined seat's list swap fitted, the second
    seat then could not be filled, and a member who had accepted was released — although two
    people left complete the panel with everybody else. Now the swap is not made."""
    people = {"a1": ("a", "x"), "a2": ("a", "x"), "a3": ("a", "x"), "b1": ("a", "y"),
              "c1": ("b", "x"), "d1": ("b", "y")}
    quotas = Quotas([ValueQuota("g", "a", 0, 2), ValueQuota("g", "b", 0, 3),
                     ValueQuota("h", "x", 0, 2), ValueQuota("h", "y", 0, 3)], [], 3)
    inputs, panel = _tiny_bundle(tmp_path, people, ["g", "h"], quotas, 3,
                                 {("a", "x"): 2, ("b", "y"): 1})
    first, kept = [i for i in panel if i.startswith("a")]
    spare = next(i for i in ("a1", "a2", "a3") if i not in panel)
    lists = {first: [spare]}  # d1's seat: nobody fits (none left)
    for seed in ("r", "r2", "r3"):
        rep = run_replace(tmp_path / "b0", inputs, [first, "d1"], seed, tmp_path / "b1",
                          force=True, lists=lists)
        assert rep.released == []
        assert kept in rep.panel and sorted(rep.panel) == sorted([kept, "b1", "c1"])
        assert [r.how for r in rep.replacements] == ["new lottery"] * 2


def _spec_list_choice():
    return run_spec_programs(("draw-spec.md", "Replacing dropouts"))["list_choice"]


def _fewest_by_brute_force(system, kept, avail, seats: int) -> int | None:
    """The fewest kept members whose release lets the people left complete the panel."""
    z = _release_by_brute_force(system, kept, avail, seats)
    return None if z is None else int(sum(z))


def _release_by_brute_force(system, kept, avail, seats: int) -> tuple[int, ...] | None:
    """Releases per stratum (§16): the fewest in total, then the lexicographically smallest
    (`itertools.product` enumerates in that order)."""
    for r in range(int(kept.sum()) + 1):
        for z in itertools.product(*[range(int(v) + 1) for v in kept]):
            if sum(z) == r and _completion_exists(None, system, kept - np.array(z), avail,
                                                  seats + r):
                return z
    return None


def _greedy(system, x, stratum, panel, order, cands) -> list[int | None]:
    """The former rule (for the statistics only): seat by seat, the first fitting swap."""
    x, out, used = x.copy(), [], set()
    for p, cs in zip(order, cands, strict=True):
        out.append(None)
        for i, (c, t) in enumerate(cs):
            y = x.copy()
            y[stratum[panel[p]]] -= 1
            y[t] += 1
            if c not in used and system.satisfied(y):
                x, out[-1] = y, i
                used.add(c)
                break
    return out


@st.composite
def list_cases(draw):
    n_features = draw(st.integers(2, 3))
    n = draw(st.integers(6, 12))
    rows = draw(st.lists(st.tuples(*[st.sampled_from("01")] * n_features),
                         min_size=n, max_size=n))
    k = draw(st.integers(3, min(5, n - 1)))
    bounds = {}
    for f in range(n_features):
        for v in sorted({r[f] for r in rows}):
            mid = round(k * sum(r[f] == v for r in rows) / n)
            bounds[(f, v)] = (max(0, mid - draw(st.integers(0, 1))),
                              min(k, mid + draw(st.integers(0, 1))))
    return rows, k, bounds, draw(st.integers(1, 3)), draw(st.booleans()), draw(
        st.integers(0, 10**6))


@strategies.examples(150, HealthCheck.too_slow,
                     HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much)
@given(case=list_cases(), data=st.data())
def test_list_choice_property(tmp_path_factory, case, data):
    """Small pools, lists from the draw or made up (every swap fitting alone, other strata
    first, so that greedy swaps may block each other): the quotas hold, the declined are gone,
    a member who accepted is released only when the brute force finds no panel keeping them
    all (and then as few as possible), the list choice is the specification's, and no lottery
    is run when the lists cover every seat."""
    rows, k, bounds, per_member, made_up, salt = case
    d = tmp_path_factory.mktemp("lists")
    features = ["f0", "f1", "f2"][:len(rows[0])]
    ids = [f"p{i:02d}" for i in range(len(rows))]
    pq.write_table(pa.table({"id": ids, **{f: [r[j] for r in rows]
                                           for j, f in enumerate(features)}}),
                   d / "pool.parquet")
    write_quotas(Quotas([ValueQuota(features[f], v, lo, hi)
                         for (f, v), (lo, hi) in bounds.items()], [], k), d / "q.toml")
    inputs = load_inputs(d / "pool.parquet", d / "q.toml", k)
    try:
        drawn = run_draw(inputs, seed=f"s{salt}", out_dir=d / "b0", algorithm="leximin",
                         panels=None, lottery_dir=None, legacy_runs=0,
                         replacements=per_member)
    except InfeasibleError:
        event("quotas infeasible")
        return
    system = quota_system(inputs.strata, inputs.quotas, k)
    stratum = dict(zip(inputs.pool.ids.to_pylist(), inputs.strata.row_stratum.tolist(),
                       strict=True))
    panel = drawn.audit["draw"]["ids"]
    x = np.bincount([stratum[i] for i in panel], minlength=system.n_strata)
    lists = list_dict(origin_lists(read_bundle(d / "b0"), inputs))
    if made_up:  # any people whose swap fits alone, in any order, nobody twice
        taken: set[str] = set()
        lists = {}
        for m in panel:
            fits = [p for p in ids if p not in panel and p not in taken and system.satisfied(
                x - np.eye(system.n_strata, dtype=np.int64)[stratum[m]]
                + np.eye(system.n_strata, dtype=np.int64)[stratum[p]])]
            # other strata first: swaps across strata are the ones that block each other
            mine = sorted(data.draw(st.permutations(fits)),
                          key=lambda p, m=m: stratum[p] == stratum[m])[:per_member]
            taken.update(mine)
            lists[m] = mine
    declined = data.draw(st.permutations(panel))[:data.draw(st.integers(1, min(4, k)))]
    gone = set(declined)
    kept = x - np.bincount([stratum[i] for i in declined], minlength=system.n_strata)
    avail = system.counts - x
    try:
        rep = run_replace(d / "b0", inputs, declined, f"r{salt}", d / "b1", lists=lists)
    except InfeasibleError:
        assert _fewest_by_brute_force(system, kept, avail, len(declined)) is None
        return
    seats = np.bincount([stratum[i] for i in rep.panel], minlength=system.n_strata)
    assert system.satisfied(seats)
    assert len(set(rep.panel)) == k and not gone & set(rep.panel)
    for p, i in enumerate(panel):  # a member who accepted keeps their seat unless released
        assert rep.panel[p] == i or i in gone or i in rep.released
    exists = _completion_exists(None, system, kept, avail, len(declined))
    assert (rep.released == []) == exists
    if rep.released:
        released = np.bincount([stratum[i] for i in rep.released], minlength=system.n_strata)
        assert tuple(released.tolist()) == _release_by_brute_force(system, kept, avail,
                                                                   len(declined))
        kept = kept - released
    order = [p for p, i in enumerate(panel) if i in gone]
    cands = [[(c, stratum[c]) for c in lists.get(panel[p], []) if c not in panel]
             for p in order]
    pick = _spec_list_choice()(kept.tolist(), avail.tolist(), cands, len(rep.released),
                               [g.tolist() for g in system.groups], system.lo.tolist(),
                               system.hi.tolist())
    expected = {(p + 1, cands[j][i][0]) for j, (p, i) in enumerate(zip(order, pick,
                                                                       strict=True))
                if i is not None}
    assert {(r.position, r.joined) for r in rep.replacements
            if r.how == "replacement list"} == expected
    event(f"released={len(rep.released)} open={pick.count(None)}/{len(pick)} "
          f"lists={'made up' if made_up else 'drawn'}")
    event(f"greedy swaps would differ: {_greedy(system, x, stratum, panel, order, cands) != pick}")
    if None not in pick and not rep.released:
        assert rep.lottery_hash is None and rep.audit["lottery"] is None


@strategies.examples(15, HealthCheck.too_slow, HealthCheck.function_scoped_fixture)
@given(k=st.integers(3, 5), data=st.data())
def test_list_choice_where_greedy_swaps_fail(tmp_path_factory, k, data):
    """Built so that greedy swaps fail: the panel is one seat below the maximum of `h=x`;
    seat 1's list is [an x, a y], the later seats' lists hold one x each. Greedy takes seat 1's
    x and then no later seat fits; the choice takes seat 1's y and seat 2's x (and leaves the
    rest to the lottery), as the specification's program says, releasing nobody."""
    hi = data.draw(st.integers(1, k - 1))
    m = data.draw(st.integers(2, min(3, k - hi + 1)))
    nx = hi + m + data.draw(st.integers(0, 2))
    # x's fair share of the seats strictly between hi - 1 and hi: LEXIMIN uses both kinds
    ny = max(k * nx // hi - nx + 1, k - hi + 3)
    assume(hi == 1 or k * nx < hi * (nx + ny) and k * nx > (hi - 1) * (nx + ny))
    noise = data.draw(st.lists(st.sampled_from("01"), min_size=nx + ny, max_size=nx + ny))
    people = {f"{h}{i}": (h, noise[j]) for j, (h, i) in enumerate(
        [("x", i) for i in range(nx)] + [("y", i) for i in range(ny)])}
    quotas = Quotas([ValueQuota("h", "x", hi - 1, hi), ValueQuota("h", "y", k - hi, k - hi + 1),
                     ValueQuota("g", "0", 0, k), ValueQuota("g", "1", 0, k)], [], k)
    d = tmp_path_factory.mktemp("trap")
    inputs, panel = _tiny_bundle(d, people, ["h", "g"], quotas, k, lambda seats: sum(
        v for key, v in seats.items() if key[0] == "x") == hi - 1)
    declined = [i for i in panel if i.startswith("y")][:m]
    free_x = [i for i in sorted(people) if i.startswith("x") and i not in panel]
    free_y = [i for i in sorted(people) if i.startswith("y") and i not in panel]
    lists = {declined[0]: [free_x[0], free_y[0]]}
    lists |= {member: [free_x[j]] for j, member in enumerate(declined[1:], start=1)}
    rep = run_replace(d / "b0", inputs, declined, "r", d / "b1", lists=lists)
    assert rep.released == []
    system = quota_system(inputs.strata, inputs.quotas, k)
    stratum = dict(zip(inputs.pool.ids.to_pylist(), inputs.strata.row_stratum.tolist(),
                       strict=True))
    x = np.bincount([stratum[i] for i in panel], minlength=system.n_strata)
    kept = x - np.bincount([stratum[i] for i in declined], minlength=system.n_strata)
    order = [panel.index(i) for i in declined]
    cands = [[(c, stratum[c]) for c in lists[i]] for i in declined]
    pick = _spec_list_choice()(kept.tolist(), (system.counts - x).tolist(), cands, 0,
                               [g.tolist() for g in system.groups], system.lo.tolist(),
                               system.hi.tolist())
    assert pick == [1, 0] + [None] * (m - 2)
    assert pick != _greedy(system, x, stratum, panel, order, cands)
    assert {(r.left, r.joined, r.rank) for r in rep.replacements
            if r.how == "replacement list"} == {(declined[0], free_y[0], 2),
                                                (declined[1], free_x[1], 1)}
    assert (rep.audit["lottery"] is None) == (m == 2)
