"""The draw (`sortition.core.drawspec`) against docs/draw-spec.md: known answers, byte layout,
properties.

The known-answer values below are literals copied from the spec; the block layout and the
rejection case are recomputed here with hashlib and struct directly, without the module.
Statistical tests run over a fixed list of seeds, so they are deterministic.
"""

from __future__ import annotations

import ast
import hashlib
import re
import struct
from collections import Counter
from pathlib import Path

import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from sortition.core import drawspec
from sortition.core.drawspec import (
    SPEC,
    Stream,
    choose_in_stratum,
    draw_people,
    panel_index,
    seed_bytes,
    shuffle_prefix,
    ticket,
)

SEED_TEXT = "Convention citoyenne Occitanie 2020 — tirage du 12 mars"
SEED = SEED_TEXT.encode("utf-8")
HASH = hashlib.sha256(b"example lottery").hexdigest()
MEMBERS = [f"p{i:02d}" for i in range(1, 11)]
SPEC_PATH = Path(__file__).resolve().parent.parent / "docs" / "draw-spec.md"

seeds = strategies.seeds()
hashes = st.binary(min_size=1, max_size=16).map(lambda b: hashlib.sha256(b).hexdigest())
fast = strategies.examples(60)


def independent_block(seed: bytes, lottery_hash: str, label: str, k: int) -> bytes:
    """Block k written out from the spec's layout, field by field."""
    label_b, hash_b = label.encode("ascii"), lottery_hash.encode("ascii")
    message = (b"sortition-draw-v1"
               + struct.pack(">I", len(label_b)) + label_b
               + struct.pack(">I", len(hash_b)) + hash_b
               + struct.pack(">Q", len(seed)) + seed
               + struct.pack(">Q", k))
    return hashlib.sha256(message).digest()


# Known answers (docs/draw-spec.md, section 8)

def test_known_inputs():
    assert SPEC == "sortition-draw-v1"
    assert seed_bytes(SEED_TEXT) == SEED
    assert len(SEED) == 57 and b"\xe2\x80\x94" in SEED
    assert HASH == "206d43e7571f9b132f01d2f8b0960b414a8f796b05dbc4bfa134237b2ceb1737"


def test_known_blocks():
    stream = Stream(SEED, HASH, "panel")
    assert stream.block(0).hex() == (
        "7e463ab9f4b5b7bc83499aa98af5d255d75f9289b18f055b8bf0e2e10c0a1471")
    assert stream.block(1).hex() == (
        "9310bd09118b66e11e63bbafabdda65d309359def29e4d4dad6070ede0aff30a")
    assert Stream(SEED, HASH, "people/4").block(0).hex() == (
        "e7b8701a555105b9353e10ed5b11fcbb9a3453173d60b03e04e0416aa170e1b8")
    assert stream.consumed == 0


def test_known_below():
    stream = Stream(SEED, HASH, "panel")
    assert [stream.below(1000) for _ in range(3)] == [380, 5, 659]
    assert stream.consumed == 24
    assert Stream(SEED, HASH, "panel").below(10**12) == 667497576380


def test_known_panel_ticket_people():
    weights = [w * 10**11 for w in (1, 2, 3, 4)]
    assert panel_index(weights, 10**12, SEED, HASH) == 3
    assert ticket(1000, SEED, HASH) == 381
    stream = Stream(SEED, HASH, "people/4")
    assert [stream.below(10 - i) for i in range(3)] == [9, 3, 6]
    assert choose_in_stratum(MEMBERS, 3, SEED, HASH, 4) == ["p10", "p05", "p09"]


def test_known_rejection():
    n = 2**63 + 1
    stream = Stream(SEED, HASH, "people/0")
    assert stream.below(n) == 126572874966445948
    assert stream.consumed == 32  # three words rejected, the fourth accepted
    words = struct.unpack(">4Q", independent_block(SEED, HASH, "people/0", 0))
    limit = (2**64 // n) * n
    assert limit == n
    assert all(x >= limit for x in words[:3]) and words[3] < limit
    assert words[3] % n == 126572874966445948


def test_rejection_with_fixed_seed_crossing_blocks():
    # "seed-7" rejects three words of block 0 and accepts the fourth; "seed-0" rejects one.
    n = 2**63 + 1
    for text, rejected in (("seed-7", 3), ("seed-0", 1)):
        seed = seed_bytes(text)
        words = struct.unpack(">4Q", independent_block(seed, HASH, "panel", 0))
        assert all(x >= n for x in words[:rejected]) and words[rejected] < n
        stream = Stream(seed, HASH, "panel")
        assert stream.below(n) == words[rejected] % n
        assert stream.consumed == 8 * (rejected + 1)
    # After seed-7's four words, the next value comes from block 1.
    stream = Stream(seed_bytes("seed-7"), HASH, "panel")
    stream.below(n)
    first_of_block1 = struct.unpack(">Q", independent_block(b"seed-7", HASH, "panel", 1)[:8])[0]
    assert first_of_block1 < (2**64 // 1000) * 1000
    assert stream.below(1000) == first_of_block1 % 1000


def test_spec_message_layout():
    """The 167-byte message in the spec is what the module hashes, and matches the layout."""
    text = SPEC_PATH.read_text(encoding="utf-8")
    hexes = [b.replace("\n", "") for b in re.findall(r"```\n([0-9a-f\n]+)```", text)]
    message = bytes.fromhex(hexes[2])
    assert len(message) == 167
    assert bytes.fromhex(hexes[0]) == SEED
    assert hexes[1] == HASH
    assert hashlib.sha256(message).digest() == Stream(SEED, HASH, "panel").block(0)
    assert hashlib.sha256(message).digest() == independent_block(SEED, HASH, "panel", 0)


# Byte layout and stream mechanics

def test_first_block_independent():
    for label in ("panel", "people/0", "people/17", "calls", "dropouts/2"):
        for k in (0, 1, 5):
            assert Stream(SEED, HASH, label).block(k) == independent_block(SEED, HASH, label, k)


def test_read_is_concatenation_of_blocks():
    expected = b"".join(independent_block(SEED, HASH, "panel", k) for k in range(4))
    stream = Stream(SEED, HASH, "panel")
    got = b"".join(stream.read(n) for n in (5, 0, 27, 1, 31, 33, 31))
    assert got == expected
    assert stream.consumed == 128
    assert stream.read(0) == b"" and stream.consumed == 128


def test_below_one_consumes_nothing():
    stream = Stream(SEED, HASH, "panel")
    assert stream.below(1) == 0 and stream.consumed == 0
    assert stream.below(2**64) == int.from_bytes(stream.block(0)[:8], "big")


def test_people_streams_are_independent_of_other_strata():
    members = [["a", "b", "c"], ["x", "y"], ["m", "n", "o", "p"]]
    full = draw_people([2, 1, 3], members, SEED, HASH)
    assert [s for s, _ in full] == [0, 0, 1, 2, 2, 2]
    alone = draw_people([0, 0, 3], members, SEED, HASH)
    assert alone == [p for p in full if p[0] == 2]
    assert alone == [(2, m) for m in choose_in_stratum(members[2], 3, SEED, HASH, 2)]


# Properties

@fast
@given(seed=seeds, lottery_hash=hashes, n=st.integers(1, 2**64))
def test_below_in_range(seed, lottery_hash, n):
    stream = Stream(seed, lottery_hash, "panel")
    for _ in range(3):
        assert 0 <= stream.below(n) < n


@fast
@given(seed=seeds, weights=st.lists(st.integers(0, 5), min_size=1, max_size=8))
def test_panel_index_skips_zero_weights(seed, weights):
    if sum(weights) == 0:
        weights = [*weights, 1]
    j = panel_index(weights, sum(weights), seed, HASH)
    assert 0 <= j < len(weights) and weights[j] > 0


@fast
@given(seed=seeds,
       members=st.lists(strategies.texts(min_size=1, max_size=6), min_size=1, max_size=12,
                        unique=True),
       data=st.data())
def test_choose_distinct_and_order_free(seed, members, data):
    k = data.draw(st.integers(0, len(members)))
    stratum = data.draw(st.integers(0, 30))
    shuffled = data.draw(st.permutations(members))
    chosen = choose_in_stratum(members, k, seed, HASH, stratum)
    assert len(chosen) == k == len(set(chosen))
    assert set(chosen) <= set(members)
    assert choose_in_stratum(shuffled, k, seed, HASH, stratum) == chosen


LABELS = ["panel", "people/0", "people/1", "people/10", "calls", "replacements",
          "dropouts/0", "dropouts/1"]


@fast
@given(seed=seeds, a=st.sampled_from(LABELS), b=st.sampled_from(LABELS))
def test_labels_give_different_streams(seed, a, b):
    if a != b:
        assert Stream(seed, HASH, a).block(0) != Stream(seed, HASH, b).block(0)


@fast
@given(text=strategies.seed_texts(max_size=30), data=st.data())
def test_one_character_changes_the_stream(text, data):
    i = data.draw(st.integers(0, len(text) - 1))
    other = data.draw(strategies.characters(argv=True, exclude=text[i]))
    changed = text[:i] + other + text[i + 1:]
    before = Stream(seed_bytes(text), HASH, "panel").read(64)
    assert before != Stream(seed_bytes(changed), HASH, "panel").read(64)


def test_seed_is_not_normalised():
    composed, decomposed = "tirage é", "tirage e\u0301"
    assert seed_bytes(composed) != seed_bytes(decomposed)
    assert Stream(seed_bytes(composed), HASH, "panel").block(0) != Stream(
        seed_bytes(decomposed), HASH, "panel").block(0)
    assert seed_bytes("x\n") != seed_bytes("x")


def test_members_sorted_by_code_point():
    # Code point order, not locale order: "Z" < "a" < "é" < "😀".
    members = ["é", "a", "😀", "Z"]
    assert sorted(members, key=lambda m: m.encode("utf-8")) == sorted(members)
    assert choose_in_stratum(members, 4, SEED, HASH, 0) == choose_in_stratum(
        ["Z", "a", "é", "😀"], 4, SEED, HASH, 0)


# Statistics over a fixed list of seeds (deterministic)

CHI2_3DF_P001 = 16.266
CHI2_9DF_P001 = 27.877
FIXED_SEEDS = [seed_bytes(f"seed-{i}") for i in range(4000)]


def test_panel_frequencies_chi_square():
    weights = [1, 2, 3, 4]
    counts = Counter(panel_index(weights, 10, seed, HASH) for seed in FIXED_SEEDS)
    expected = [len(FIXED_SEEDS) * w / 10 for w in weights]
    chi2 = sum((counts[j] - e) ** 2 / e for j, e in enumerate(expected))
    assert chi2 < CHI2_3DF_P001, (counts, chi2)


def test_member_frequencies():
    n, k, trials = len(MEMBERS), 3, len(FIXED_SEEDS)
    chosen = Counter()
    first = Counter()
    for seed in FIXED_SEEDS:
        picks = choose_in_stratum(MEMBERS, k, seed, HASH, 4)
        chosen.update(picks)
        first[picks[0]] += 1
    p = k / n
    mean, sd = trials * p, (trials * p * (1 - p)) ** 0.5
    # Each member: binomial(4000, 0.3); 4.5 sd is p < 1e-5 each, far below 0.001 for all ten.
    assert all(abs(chosen[m] - mean) < 4.5 * sd for m in MEMBERS), chosen
    # Jointly: inclusion counts have covariance trials * p(1-p) * n/(n-1) on the subspace
    # orthogonal to (1, …, 1) (their sum is fixed), so this is chi-square with n-1 df.
    chi2 = sum((chosen[m] - mean) ** 2 for m in MEMBERS) / (trials * p * (1 - p) * n / (n - 1))
    assert chi2 < CHI2_9DF_P001, (chosen, chi2)
    # The first person chosen is uniform over the ten.
    chi2_first = sum((first[m] - trials / n) ** 2 / (trials / n) for m in MEMBERS)
    assert chi2_first < CHI2_9DF_P001, (first, chi2_first)


# Errors

def test_empty_seed_refused():
    with pytest.raises(ValueError, match="empty"):
        seed_bytes("")
    with pytest.raises(ValueError, match="empty"):
        Stream(b"", HASH, "panel")
    with pytest.raises(ValueError):
        ticket(10, b"", HASH)


@pytest.mark.parametrize("bad", ["", HASH[:-1], HASH + "0", HASH.upper(), "g" * 64,
                                 " " + HASH[1:]])
def test_bad_hash_refused(bad):
    with pytest.raises(ValueError, match="lottery hash"):
        Stream(SEED, bad, "panel")
    with pytest.raises(ValueError, match="lottery hash"):
        panel_index([1], 1, SEED, bad)


def test_bad_weights_refused():
    with pytest.raises(ValueError, match="sum"):
        panel_index([1, 2, 3], 7, SEED, HASH)
    with pytest.raises(ValueError, match="non-negative"):
        panel_index([2, -1], 1, SEED, HASH)
    with pytest.raises(ValueError):
        panel_index([0, 0], 0, SEED, HASH)
    with pytest.raises(ValueError):
        panel_index([0.5, 0.5], 1, SEED, HASH)


def test_bad_counts_refused():
    with pytest.raises(ValueError, match="cannot choose"):
        choose_in_stratum(["a", "b"], 3, SEED, HASH, 0)
    with pytest.raises(ValueError, match="cannot choose"):
        draw_people([1, 2], [["a"], ["b"]], SEED, HASH)
    with pytest.raises(ValueError, match="duplicate"):
        choose_in_stratum(["a", "a"], 1, SEED, HASH, 0)
    with pytest.raises(ValueError):
        draw_people([1], [["a"], ["b"]], SEED, HASH)
    stream = Stream(SEED, HASH, "panel")
    for n in (0, -1, 2**64 + 1):
        with pytest.raises(ValueError):
            stream.below(n)
    with pytest.raises(ValueError):
        ticket(0, SEED, HASH)
    with pytest.raises(ValueError):
        Stream(SEED, HASH, "personnes/é")


# --- stream labels: the spec's list is the code's list ------------------------------------------


def _indexed(label: str) -> str:
    """`people/<s>`, `people/4` → `people/` (a label followed by a decimal number)."""
    return re.sub(r"/(?:<[^>]+>|[0-9]+)$", "/", label)


def spec_labels() -> set[str]:
    """Every stream label docs/draw-spec.md defines: the first column of the table of section 4
    ("Labels: one stream per purpose"), and any label a later section names (`Stream(S, H,
    "…")`, "stream `…`", "streams `…` and `…`", "label `…`")."""
    text = SPEC_PATH.read_text(encoding="utf-8")
    start = text.index("## 4. Labels: one stream per purpose")
    table = text[start:text.index("\n## 5.", start)]
    found = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.M))
    assert len(found) >= 8, found  # the table was read
    found |= set(re.findall(r'Stream\(S, H, "([^"]+)"\)', text))
    label = r"`([a-z]+(?:/[a-z]+|/<[a-z]+>|/[0-9]+)?)`"  # a label as the spec writes one
    for m in re.finditer(rf"\b(?:streams?|label) ({label}(?:(?:,| and| or) {label})*)", text):
        found |= set(re.findall(label, m[1]))
    return {_indexed(label) for label in found}


def test_stream_labels_are_the_spec_labels():
    code = set(drawspec.LABELS) | set(drawspec.INDEXED_LABELS)
    assert len(code) == len(drawspec.LABELS) + len(drawspec.INDEXED_LABELS)
    assert spec_labels() == code
    assert drawspec.people_label(17) == "people/17"
    assert drawspec.dropouts_label(1) == "dropouts/1"


def test_every_stream_label_comes_from_drawspec():
    """No module spells a label itself: every `Stream(…)` in the package takes its label from
    `sortition.core.drawspec` (a name or a call), never from a string written there."""
    package = Path(__file__).resolve().parent.parent / "sortition"
    found = 0
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr",
                                                           getattr(node.func, "id", None))
                    == "Stream"):
                continue
            label = node.args[2] if len(node.args) > 2 else next(
                (k.value for k in node.keywords if k.arg == "label"), None)
            assert label is not None, f"{path}:{node.lineno}"
            found += 1
            assert not isinstance(label, ast.Constant | ast.JoinedStr), \
                f"{path.relative_to(package)}:{node.lineno}: a label written in place"
            if isinstance(label, ast.Attribute | ast.Name):
                name = label.attr if isinstance(label, ast.Attribute) else label.id
                assert name in {"PANEL", "CALLS", "CALLS_ORDER", "REPLACEMENTS", "SIMULATE",
                                "HOUSEHOLDS", "label"}, f"{path}:{node.lineno}: {name}"
    assert found >= 8


def test_blocks_are_the_blocks():
    stream = Stream(SEED, HASH, "panel")
    assert stream.blocks(0, 1) == stream.block(0) + stream.block(1)
    assert stream.blocks(3, 2) == b""
    assert stream.blocks(5, 7) == b"".join(stream.block(k) for k in range(5, 8))
    assert stream.consumed == 0


def test_shuffle_prefix_is_section_7():
    a = list(MEMBERS)
    shuffle_prefix(a, 3, Stream(SEED, HASH, "people/4"))
    assert a[:3] == ["p10", "p05", "p09"]
    assert sorted(a) == MEMBERS
    whole = list(MEMBERS)
    stream = Stream(SEED, HASH, "calls/order")
    shuffle_prefix(whole, len(whole), stream)
    assert whole == "p01 p03 p10 p09 p06 p07 p08 p05 p04 p02".split()  # section 14
    assert stream.consumed == 8 * (len(MEMBERS) - 1)  # the last step reads nothing


def test_draw_people_takes_a_function_too():
    members = [[f"s{s}-{i}" for i in range(5)] for s in range(3)]
    asked = []

    def of(s: int) -> list[str]:
        asked.append(s)
        return members[s]

    assert draw_people([2, 0, 1], of, SEED, HASH) == draw_people([2, 0, 1], members, SEED, HASH)
    assert asked == [0, 2]  # only strata with seats
