"""The specification is the contract: its own programs, run as printed, reproduce real bundles.

docs/draw-spec.md section 9 ("The whole algorithm in 25 lines"), section 12.3 (the replacement
lists) and docs/bundle-format.md section 3.6 (the people on a transparent lottery's tickets) are
extracted from the Markdown at test time, by their headings (`conftest.spec_program`), and
executed unchanged. Their inputs come from what a garant holds: the bundle the command line
wrote and the pool's public extract (`sortition public-pool`), read as the two documents say.
The rules of bundle format section 2.1 (how a pool's cells become the text compared with quota
values, how a CSV is read, how households are numbered) are pinned through the command line too.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import hashlib
import io
import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_runner import run
from conftest import run_spec_programs, spec_program

from sortition.core.drawspec import SPEC, Stream
from sortition.draw.replacements import replacement_lists
from sortition.lottery.panels import QuotaSystem

ROOT = Path(__file__).resolve().parent.parent
DRAW = ("draw-spec.md", "The whole algorithm in 25 lines")
LISTS = ("draw-spec.md", "Reference program")
AWARE = ("draw-spec.md", "Dropout-aware reference program")
TICKETS = ("bundle-format.md", "Transparent")
SPEC_NS = run_spec_programs(DRAW, LISTS, AWARE, TICKETS)
TRIGGERS = "=+-@\t\r'"  # draw-spec section 17


def value(cell: str) -> str:
    """A cell of a CSV this tool wrote, back to its value (draw-spec section 17)."""
    return cell[1:] if len(cell) >= 2 and cell[0] == "'" and cell[1] in TRIGGERS else cell


def csv_field(v: str) -> str:
    """A field as draw-spec section 12.2 writes it: the cell rule, then quoting where needed."""
    c = "'" + v if v[:1] and v[0] in TRIGGERS else v
    return '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\r\n') else c


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header = [value(c) for c in rows[0]]
    return [dict(zip(header, (value(c) for c in r), strict=True)) for r in rows[1:]]


class Garant:
    """What a garant holds: a bundle and the public extract, read by the documents alone."""

    def __init__(self, bundle: Path, extract: Path, household_seed: str | None = None):
        self.lottery_bytes = (bundle / "lottery.json").read_bytes()
        self.lottery = json.loads(self.lottery_bytes)
        self.audit = json.loads((bundle / "audit.json").read_text(encoding="utf-8"))
        self.h = hashlib.sha256(self.lottery_bytes).hexdigest()
        self.seed = self.audit["seed"].encode("utf-8")
        self.panel_csv = read_csv(bundle / "panel.csv")
        features = self.lottery["features"]
        index = {tuple(s["values"]): t for t, s in enumerate(self.lottery["strata"])}
        people = read_csv(extract)
        if household_seed is not None:  # draw-spec section 15: the lottery's pool
            people = self.representatives(people, household_seed)
        self.stratum = {p["id"]: index[tuple(p[f] for f in features)] for p in people}
        self.members: list[list[str]] = [[] for _ in index]
        for i, t in self.stratum.items():
            self.members[t].append(i)
        assert [len(m) for m in self.members] == [s["people"] for s in self.lottery["strata"]]

    def representatives(self, people: list[dict[str, str]], seed: str) -> list[dict[str, str]]:
        words, below = SPEC_NS["words"], SPEC_NS["below"]
        w = words(seed.encode("utf-8"), self.audit["inputs"]["pool"]["sha256"], "households")
        homes: dict[int, list[dict[str, str]]] = {}
        for p in people:
            homes.setdefault(int(p["household"]), []).append(p)
        keep = []
        for number in sorted(homes):
            home = sorted(homes[number], key=lambda p: p["id"])
            keep.append(home[below(w, len(home))] if len(home) > 1 else home[0])
        return keep

    @property
    def drawn(self) -> list[str]:
        ids = [p["id"] for p in self.panel_csv]
        assert ids == self.audit["draw"]["ids"]
        return ids

    def quota_groups(self) -> tuple[list[list[int]], list[int], list[int]]:
        """Draw-spec section 12.1: one group per quota row, then per cross quota row."""
        features, strata = self.lottery["features"], self.lottery["strata"]
        doc = self.audit["inputs"]["quotas"]
        groups, lo, hi = [], [], []
        for f, v, mn, mx in doc["quotas"]:
            j = features.index(f)
            groups.append([t for t, s in enumerate(strata) if s["values"][j] == v])
            lo.append(mn)
            hi.append(mx)
        for f0, v0, f1, v1, mn, mx in doc["cross"]:
            j0, j1 = features.index(f0), features.index(f1)
            groups.append([t for t, s in enumerate(strata)
                           if s["values"][j0] == v0 and s["values"][j1] == v1])
            lo.append(mn)
            hi.append(mx)
        return groups, lo, hi

    def replacements_csv(self) -> bytes:
        """The lists by the program of section 12.3, written as section 12.2 says."""
        panel = [(self.stratum[i], i) for i in self.drawn]
        x = [0] * len(self.members)
        for t, _ in panel:
            x[t] += 1
        groups, lo, hi = self.quota_groups()
        r = self.audit["replacements"]["per_member"]
        recorded = self.audit["replacements"].get("dropout_rates")
        if recorded is None:
            lists = SPEC_NS["replacement_lists"](x, panel, self.members, groups, lo, hi, r,
                                                 self.seed, self.h)
        else:  # section 12.6: each stratum's rate is the largest of its values'
            rates = {(f, v): Fraction(rate) for f, v, rate in recorded["rates"]}
            features = self.lottery["features"]
            p = [max(rates[(f, v)] for f, v in zip(features, st["values"], strict=True)
                     if (f, v) in rates) for st in self.lottery["strata"]]
            lists = SPEC_NS["dropout_aware_lists"](x, panel, self.members, groups, lo, hi, r,
                                                   self.seed, self.h, p)
        lines = ["member_id,rank,replacement_id"]
        lines += [f"{csv_field(m)},{k},{csv_field(p)}" for _, m in panel
                  for k, p in enumerate(lists[m], start=1)]
        return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec")
    pool, q = d / "pool.csv", d / "q.csv"
    assert run("synth", "--rows", 300, "--seed", 2, "--out", pool)[0] == 0
    assert run("quotas", ROOT / "quotas" / "occitanie-2020.toml", "--size", 20,
               "--out", q)[0] == 0
    common = ["draw", pool, "-q", q, "-k", 20, "--seed", "the seed — été"]
    rates = d / "rates.csv"
    rates.write_text("feature,value,rate\nage_band,18-24,0.3\nage_band,25-34,.2\n"
                     "age_band,35-49,0.1\nage_band,50-64,0.08\nage_band,65+,0.05\n"
                     "area,rural,0.15\n", encoding="utf-8")
    aware = ["--dropout-rates", rates]
    for name, extra in (("plain", ["--replacements", 2]),
                        ("transparent", ["--panels", 15, "--replacements", 3]),
                        ("households", ["--household-column", "household",
                                        "--household-seed", "hh", "--replacements", 2]),
                        ("aware", ["--replacements", 3, *aware]),
                        ("aware-households", ["--household-column", "household",
                                              "--household-seed", "hh", "--replacements", 2,
                                              *aware])):
        code, out = run(*common, *extra, "-o", d / name)
        assert code == 0, out
    assert run("public-pool", pool, "-q", q, "-k", 20, "-o", d / "public.csv")[0] == 0
    assert run("public-pool", pool, "-q", q, "-k", 20, "--household-column", "household",
               "-o", d / "public-h.csv")[0] == 0
    return d


def test_the_draw_program_reproduces_a_stratified_bundle(made):
    g = Garant(made / "plain", made / "public.csv")
    weights = [p["weight"] for p in g.lottery["panels"]]
    assert sum(weights) == g.lottery["denominator"]
    j = SPEC_NS["panel_index"](weights, g.seed, g.h)
    assert j + 1 == g.audit["draw"]["panel_number"]
    seats = dict(map(tuple, g.lottery["panels"][j]["seats"]))
    people = [p for s in sorted(seats)
              for p in SPEC_NS["choose"](g.members[s], seats[s], g.seed, g.h, s)]
    assert people == g.drawn
    assert len(people) == g.lottery["panel_size"]


def test_the_programs_reproduce_a_transparent_bundle(made):
    g = Garant(made / "transparent", made / "public.csv")
    m = g.lottery["denominator"]
    assert m == g.lottery["transparent"]["tickets"] == 15
    assert g.audit["draw"]["number_from"] == "seed"
    number = SPEC_NS["ticket"](m, g.seed, g.h)
    assert number == g.audit["draw"]["panel_number"]
    tickets = SPEC_NS["ticket_people"](g.lottery["panels"], g.members)
    assert len(tickets) == m
    assert tickets[number - 1] == g.drawn
    # each person's probability is (tickets holding them) / M: probabilities.csv, by class
    held = Counter(i for t in tickets for i in t)
    classes = Counter(held[i] / m for i in g.stratum)
    expected = "probability,people\n" + "".join(
        f"{p!r},{n}\n" for p, n in sorted(classes.items()))
    assert (made / "transparent" / "probabilities.csv").read_text() == expected
    lists = g.replacements_csv()
    assert lists == (made / "transparent.replacements.csv").read_bytes()
    # people on no ticket (probability 0) are listed like anyone else (draw-spec 12.1)
    listed = {value(r[2]) for r in csv.reader(io.StringIO(lists.decode()))} - {"replacement_id"}
    assert {i for i in listed if held[i] == 0}


def test_the_list_program_reproduces_the_replacement_lists(made):
    g = Garant(made / "plain", made / "public.csv")
    text = g.replacements_csv()
    assert text == (made / "plain.replacements.csv").read_bytes()
    assert hashlib.sha256(text).hexdigest() == g.audit["replacements"]["sha256"]
    assert g.audit["replacements"]["shortfall"]  # the example exercises other strata too


def test_the_programs_reproduce_a_household_bundle(made):
    g = Garant(made / "households", made / "public-h.csv", household_seed="hh")
    assert g.lottery["pool"]["household_seed"] == "hh"
    weights = [p["weight"] for p in g.lottery["panels"]]
    j = SPEC_NS["panel_index"](weights, g.seed, g.h)
    seats = dict(map(tuple, g.lottery["panels"][j]["seats"]))
    assert [p for s in sorted(seats)
            for p in SPEC_NS["choose"](g.members[s], seats[s], g.seed, g.h, s)] == g.drawn
    text = g.replacements_csv()
    assert text == (made / "households.replacements.csv").read_bytes()
    assert hashlib.sha256(text).hexdigest() == g.audit["replacements"]["sha256"]


def test_the_dropout_aware_program_reproduces_the_lists(made):
    """Section 12.6's program, as printed, on dropout-aware bundles: the lists the command line
    wrote, their commitment, and lists that differ from section 12.2's."""
    for name, extract, household_seed in (("aware", "public.csv", None),
                                          ("aware-households", "public-h.csv", "hh")):
        g = Garant(made / name, made / extract, household_seed=household_seed)
        record = g.audit["replacements"]["dropout_rates"]
        assert record["sha256"] == hashlib.sha256(
            (made / "rates.csv").read_bytes()).hexdigest()
        assert record["rates"][1] == ["age_band", "25-34", ".2"]  # as written
        text = g.replacements_csv()
        assert text == (made / f"{name}.replacements.csv").read_bytes()
        assert hashlib.sha256(text).hexdigest() == g.audit["replacements"]["sha256"]
    plain = (made / "plain.replacements.csv").read_bytes()
    assert (made / "aware.replacements.csv").read_bytes().splitlines()[1:] != \
        plain.splitlines()[1:]


# ------------------------------------------------------------- the programs' own known answers

SEED = "Convention citoyenne Occitanie 2020 — tirage du 12 mars".encode()
HASH = hashlib.sha256(b"example lottery").hexdigest()
MEMBERS = [f"p{i:02d}" for i in range(1, 11)]


def test_spec_reference_program_agrees():
    """The 25-line program printed in the spec gives the spec's known answers and the module's
    results (section 8)."""
    from sortition.core.drawspec import choose_in_stratum, panel_index, seed_bytes, ticket

    ref = run_spec_programs(DRAW)
    assert len(spec_program(*DRAW).strip("\n").splitlines()) <= 25
    assert ref["ticket"](1000, SEED, HASH) == 381
    assert ref["choose"](MEMBERS, 3, SEED, HASH, 4) == ["p10", "p05", "p09"]
    assert ref["below"](ref["words"](SEED, HASH, "people/0"), 2**63 + 1) == 126572874966445948
    for i in range(50):
        seed = seed_bytes(f"seed-{i}")
        weights = [0, 5, 0, 7, 11, 1]
        assert ref["panel_index"](weights, seed, HASH) == panel_index(weights, 24, seed, HASH)
        assert ref["ticket"](97, seed, HASH) == ticket(97, seed, HASH)
        assert ref["choose"](MEMBERS, 10, seed, HASH, i) == choose_in_stratum(
            MEMBERS, 10, seed, HASH, i)
    assert SPEC == "sortition-draw-v1"


def test_ticket_program_known_answer():
    """The example under bundle format section 3.6's program."""
    panels = [{"weight": 2, "seats": [[0, 2]]}, {"weight": 1, "seats": [[0, 3]]}]
    members = [[f"p{i}" for i in (5, 3, 1, 4, 2)]]
    assert SPEC_NS["ticket_people"](panels, members) == [
        ["p1", "p2"], ["p3", "p4"], ["p5", "p1", "p2"]]


def test_dropout_aware_program_known_answer():
    """Section 12.7's table, by the program of 12.6 alone, and the library's lists agree."""
    members = [[f"{c}{i}" for i in range(1, 9)] for c in "fmnc"]
    panel = [(t, p) for t in range(4) for p in SPEC_NS["choose"](members[t], 2, SEED, HASH, t)]
    assert [p for _, p in panel] == ["f5", "f2", "m8", "m1", "n6", "n7", "c4", "c6"]
    p = [Fraction(1, 2), Fraction(1, 5), Fraction(1, 10), Fraction(1, 10)]
    lists = SPEC_NS["dropout_aware_lists"]([2, 2, 2, 2], panel, members, [[0], [1], [2], [3]],
                                           [1] * 4, [3] * 4, 2, SEED, HASH, p)
    assert lists == {"f5": ["f6", "n1"], "f2": ["f8", "f3"], "m8": ["m5", "c3"],
                     "m1": ["m4", "m6"], "n6": ["n3", "n8"], "n7": ["n5", "n4"],
                     "c4": ["c2", "c1"], "c6": ["c7", "c8"]}
    system = QuotaSystem(counts=np.array([8, 8, 8, 8]), size=8,
                         groups=[np.array([t]) for t in range(4)],
                         lo=np.array([1] * 4), hi=np.array([3] * 4),
                         labels=[f"area={v}" for v in ("far", "mid", "near", "city")])
    got = replacement_lists(system, np.array([2, 2, 2, 2]), panel, lambda t: members[t], 2,
                            SEED, HASH, rates=p)
    assert got.rows == [(m, k, q) for m, qs in lists.items()
                        for k, q in enumerate(qs, start=1)]


def test_list_program_known_answer():
    """Section 12.4's table, by the program of 12.3 alone."""
    members = [[f"o{i}" for i in range(1, 7)], [f"y{i}" for i in range(1, 5)]]
    panel = [(0, "o5"), (0, "o2"), (1, "y4")]
    lists = SPEC_NS["replacement_lists"]([2, 1], panel, members, [[1]], [1], [2], 3, SEED, HASH)
    assert lists == {"o5": ["o1", "o6", "y1"], "o2": ["o3", "o4"], "y4": ["y3", "y2"]}
    assert Stream(SEED, HASH, "replacements").block(0).hex() == (
        "59f3638806f9dcfcbe20ba03f1700520ba6b1a8fb8dd382d07fb4b5dfc48ca23")


# ---------------------------------------------------- bundle format 2.1: reading a pool's cells


def extract(tmp: Path, pool: Path, features: dict[str, list[str]], *extra: object
            ) -> tuple[int, str, list[dict[str, str]]]:
    """`public-pool` on `pool` with quotas naming exactly the values `features` expects: exit
    0 only if every cell became one of those texts. Returns the extract's rows."""
    q = tmp / "q.csv"
    with q.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["feature", "value", "min", "max"])
        for f, values in features.items():
            for v in values:
                w.writerow([f, v, 0, 1])
    out = tmp / "public.csv"
    code, text = run("public-pool", pool, "-q", q, "-k", 1, "-o", out, "--force", *extra)
    return code, text, read_csv(out) if code == 0 else []


@pytest.mark.parametrize(("column", "texts"), [
    (pa.array([7, -3, 0, 7], pa.int64()), ["7", "-3", "0", "7"]),
    (pa.array([1, 2, 3, 200], pa.uint8()), ["1", "2", "3", "200"]),
    (pa.array([7.0, -0.0, 1e15, None]), None),  # a null is an empty value
    (pa.array([7.0, -0.0, 1e15, 2.0]), ["7", "0", "1000000000000000", "2"]),
    (pa.array([7.5, 7.0, -0.0, 0.000025]), ["7.5", "7", "-0", "0.000025"]),
    (pa.array([1.5e-7, 1.5e-6, 1.5e9, 1.5e10]), ["1.5e-7", "0.0000015", "1500000000", "1.5e+10"]),
    (pa.array([0.1, 1.5, 2.0, 3.0], pa.float32()), ["0.1", "1.5", "2", "3"]),
    (pa.array([True, False, True, True]), ["true", "false", "true", "true"]),
    (pa.array([datetime.date(2020, 1, 2)] * 4), ["2020-01-02"] * 4),
    (pa.array([datetime.datetime(2020, 1, 2, 3, 4, 5)] * 4, pa.timestamp("us")),
     ["2020-01-02 03:04:05.000000"] * 4),
    (pa.array([datetime.datetime(2020, 1, 2, 3, 4, 5)] * 4, pa.timestamp("ms")),
     ["2020-01-02 03:04:05.000"] * 4),
    (pa.array([datetime.datetime(2020, 1, 2, 3, 4, 5)] * 4, pa.timestamp("ns"))
     .cast(pa.timestamp("ns", tz="Europe/Paris")), ["2020-01-02 04:04:05.000000000+0100"] * 4),
    (pa.array([datetime.time(3, 4, 5)] * 4, pa.time64("us")), ["03:04:05.000000"] * 4),
    (pa.array([decimal.Decimal("1.50")] * 4), ["1.50"] * 4),
    (pa.array(["x", " x\u00a0", "\u3000x\x1c", "x\u2029"]).dictionary_encode(), ["x"] * 4),
    (pa.array(["Woman", "woman", "e\u0301", "\u00e9"]), ["Woman", "woman", "e\u0301", "\u00e9"]),
    (pa.array(["x\u200b", "\ufeffx", "a  b", "a b"]), ["x\u200b", "\ufeffx", "a  b", "a b"]),
], ids=["int", "uint8", "null", "whole-floats", "floats", "float-exponents", "float32", "bool",
        "date", "timestamp-us", "timestamp-ms", "timestamp-tz", "time", "decimal", "whitespace",
        "case-unicode", "kept-characters"])
def test_parquet_cells_become_the_documented_text(tmp_path, column, texts):
    pool = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(4)], "f": column}), pool)
    code, out, rows = extract(tmp_path, pool, {"f": sorted(set(texts or ["7"]))})
    if texts is None:
        assert code == 2 and "column f: empty value in 1 row (row 4)" in out, out
        return
    assert code == 0, out
    assert {r["id"]: r["f"] for r in rows} == {f"p{i}": t for i, t in enumerate(texts)}


def test_integer_and_whole_float_ids_are_decimal_text(tmp_path):
    pool = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"id": [7.0, 12.0], "f": ["a", "a"]}), pool)
    assert [r["id"] for r in extract(tmp_path, pool, {"f": ["a"]})[2]] == ["12", "7"]


def test_quota_values_are_stripped_and_nothing_else(tmp_path):
    pool = tmp_path / "pool.csv"
    pool.write_text("id,f\n1,woman\n2, woman \n", encoding="utf-8")
    code, out, _ = extract(tmp_path, pool, {"f": [" woman\u00a0"]})
    assert code == 0, out
    code, out, _ = extract(tmp_path, pool, {"f": ["Woman"]})
    assert code == 2 and "'woman' (2 rows, first row 1)" in out and "case-sensitive" in out


@pytest.mark.parametrize(("raw", "encoding", "expected"), [
    (b"id;g;h\n1;a,b;c\n", None, {"g": "a,b", "h": "c"}),  # more ; than ,
    ("id,nom;prénom,g,h\n1,x;y,a,c\n".encode(), None, {"g": "a", "h": "c"}),  # ties → ,
    (b"id\tg\th,x\n1\ta\tc,d\n", None, {"g": "a", "h,x": "c,d"}),  # more tabs → tab
    (b'\xef\xbb\xbf "id" ,"g",h\r\n1,"a ""q"", b",c\r\n\r\n', None, {"g": 'a "q", b', "h": "c"}),
    ("id,g,h\n1,é,c\n".encode("cp1252"), "cp1252", {"g": "é", "h": "c"}),
    (b"id,g,h\n1,'=x,c\n", None, {"g": "'=x", "h": "c"}),  # the operator's CSV: as it is
], ids=["semicolon", "tie", "tab", "bom-quotes-crlf", "cp1252", "leading-apostrophe"])
def test_csv_pools_are_read_as_documented(tmp_path, raw, encoding, expected):
    pool = tmp_path / "pool.txt"
    pool.write_bytes(raw)
    features = {f: [v] for f, v in expected.items()}
    code, out, rows = extract(tmp_path, pool, features,
                              *(["--encoding", encoding] if encoding else []))
    assert code == 0, out
    assert rows == [{"id": "1", **expected}]


def test_household_numbers_of_the_documented_example(tmp_path):
    """Bundle format 4.2: ids a b c d with cells X, empty, X, missing → 1 2 1 3."""
    pool = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"id": ["d", "c", "b", "a"], "home": [None, "X", " ", "X"],
                             "f": ["v"] * 4}), pool)
    code, out, rows = extract(tmp_path, pool, {"f": ["v"]}, "--household-column", "home")
    assert code == 0, out
    assert {r["id"]: r["household"] for r in rows} == {"a": "1", "b": "2", "c": "1", "d": "3"}
    csv_text = io.StringIO()
    csv.writer(csv_text).writerows([["id", "home", "f"], ["a", "8 Rue Haute", "v"],
                                    ["b", "8 rue Haute", "v"]])
    (tmp_path / "pool.csv").write_text(csv_text.getvalue(), encoding="utf-8")
    code, out, rows = extract(tmp_path, tmp_path / "pool.csv", {"f": ["v"]},
                              "--household-column", "home")
    assert [r["household"] for r in rows] == ["1", "2"]  # no case folding
