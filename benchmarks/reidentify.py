"""The attacker of issue 10: who off the panel can be linked to their features from the public
bundle alone?

    python benchmarks/reidentify.py                 # draw a 2 000-person bundle and attack it
    python benchmarks/reidentify.py --bundle DIR    # attack an existing bundle

The attacker reads only the public files of a draw bundle (`lottery.json`, `panel.csv`,
`probabilities.csv`, `audit.json`, and `replacements.csv` when a bundle has one) — never the
pool or its extract. For every id it finds in them, it narrows the strata the person can be in:

* a per-person probability (`id,probability`) keeps the strata of `lottery.json` with that
  probability;
* a replacement candidate keeps the strata whose swap with the member's keeps every quota (the
  quotas are in `audit.json`, the panel's seats in `panel.csv`);
* a transparent lottery's ticket lists its ids in stratum order: each id gets its stratum;
* a per-stratum hash in `audit.json` (`inputs.pool.strata[].sha256`) is tested against the
  header and every set of candidate ids of the stratum's size (ids whose strata are not yet
  ruled out), when there are few enough sets.

A person off the panel is *re-identified* when their stratum — every feature — is determined,
and *partly* when at least one feature is. `attack` returns both counts; the test
`tests/test_publish.py` asserts that both are 0 on a bundle of this version.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import json
import sys
import tempfile
from math import comb
from pathlib import Path

MAX_SETS = 20_000  # candidate id sets hashed per stratum


def _rows(path: Path) -> list[list[str]]:
    from sortition.core.fileio import restore

    text = path.read_text(encoding="utf-8")
    return [[restore(c) for c in row] for row in csv.reader(io.StringIO(text, newline=""))]


def _compatible(s: int, keys: list[tuple], counts: list[int], x: list[int], features: list[str],
                quotas: dict) -> set[int]:
    """Strata t whose swap with a member of stratum s keeps every quota (the lists' promise)."""
    groups = []
    for f, v, lo, hi in quotas["quotas"]:
        j = features.index(f)
        groups.append(([t for t, k in enumerate(keys) if k[j] == v], lo, hi))
    for f0, v0, f1, v1, lo, hi in quotas.get("cross", []):
        j0, j1 = features.index(f0), features.index(f1)
        groups.append(([t for t, k in enumerate(keys) if k[j0] == v0 and k[j1] == v1], lo, hi))
    out = {s}
    for t in range(len(keys)):
        y = list(x)
        y[s] -= 1
        y[t] += 1
        if y[t] <= counts[t] and all(lo <= sum(y[u] for u in g) <= hi for g, lo, hi in groups):
            out.add(t)
    return out


def attack(bundle: Path) -> dict:
    """Count the people off the panel whose features the public bundle determines."""
    bundle = Path(bundle)
    audit = json.loads((bundle / "audit.json").read_text(encoding="utf-8"))
    lottery = json.loads((bundle / "lottery.json").read_text(encoding="utf-8"))
    features = list(lottery["features"])
    keys = [tuple(s["values"]) for s in lottery["strata"]]
    counts = [int(s["people"]) for s in lottery["strata"]]
    index = {k: t for t, k in enumerate(keys)}
    everyone = set(range(len(keys)))
    panel_rows = _rows(bundle / "panel.csv")[1:]
    panel = {r[0] for r in panel_rows}
    x = [0] * len(keys)
    for r in panel_rows:
        x[index[tuple(r[1:])]] += 1
    possible: dict[str, set[int]] = {}

    def narrow(i: str, strata: set[int]) -> None:
        possible[i] = possible.get(i, everyone) & strata

    probs = _rows(bundle / "probabilities.csv")
    if probs and probs[0][:1] == ["id"]:  # per person: a probability names its strata
        by_p: dict[str, set[int]] = {}
        for t, s in enumerate(lottery["strata"]):
            by_p.setdefault(repr(float(s["probability"])), set()).add(t)
        transparent = "transparent" in lottery
        for i, p in probs[1:]:
            if not transparent:
                narrow(i, by_p.get(p, set()))
            else:
                possible.setdefault(i, everyone)
    if (bundle / "replacements.csv").exists():
        stratum_of = {r[0]: index[tuple(r[1:])] for r in panel_rows}
        cache: dict[int, set[int]] = {}
        for member, _, candidate in _rows(bundle / "replacements.csv")[1:]:
            s = stratum_of[member]
            if s not in cache:
                cache[s] = _compatible(s, keys, counts, x, features,
                                       audit["inputs"]["quotas"])
            narrow(candidate, cache[s])
    tickets = lottery.get("transparent", {}).get("panels", [])
    for j, ticket in enumerate(tickets):
        panel_j = _ticket_panel(lottery, j)
        order = [s for s, n in lottery["panels"][panel_j]["seats"] for _ in range(n)]
        for i, s in zip(ticket, order, strict=False):
            narrow(i, {s})
    _hashes(audit, features, keys, possible, narrow)
    off = {i: s for i, s in possible.items() if i not in panel}
    full = sum(1 for s in off.values() if len(s) == 1)
    partly = sum(1 for s in off.values() if s and any(
        len({keys[t][j] for t in s}) == 1 for j in range(len(features))))
    return {"ids_seen_off_panel": len(off), "reidentified": full, "partly": partly}


def _ticket_panel(lottery: dict, ticket: int) -> int:
    total = 0
    for j, p in enumerate(lottery["panels"]):
        total += int(p["weight"])
        if ticket < total:
            return j
    return len(lottery["panels"]) - 1


def _hashes(audit: dict, features: list[str], keys: list[tuple], possible: dict, narrow) -> None:
    """Test the per-stratum hashes, if any, against sets of candidate ids."""
    pool = audit["inputs"]["pool"]
    if pool.get("household_column") is not None:
        return  # household numbers are not public: the lines cannot be rebuilt
    order = sorted(features, key=lambda f: f.encode("utf-8"))
    header = "\t".join(["sortition-pool-v1", "id", *order]) + "\n"
    changed = True
    while changed:  # a stratum solved narrows the candidates of the others
        changed = False
        for s in pool.get("strata", []):
            if "sha256" not in s:
                continue
            t = keys.index(tuple(s["values"])) if tuple(s["values"]) in keys else None
            if t is None:
                continue
            values = dict(zip(features, s["values"], strict=True))
            candidates = sorted((i for i, p in possible.items() if t in p and len(p) > 1),
                                key=lambda i: i.encode("utf-8"))
            k = int(s["people"])
            if not candidates or k > len(candidates) or comb(len(candidates), k) > MAX_SETS:
                continue
            for group in itertools.combinations(candidates, k):
                text = header + "".join(
                    "\t".join([i, *(values[f] for f in order)]) + "\n" for i in group)
                if hashlib.sha256(text.encode("utf-8")).hexdigest() == s["sha256"]:
                    for i in group:
                        narrow(i, {t})
                    changed = True
                    break


def draw_bundle(folder: Path, rows: int = 2000, size: int = 100, replacements: int = 3,
                seed: int = 1) -> Path:
    """A synthetic pool of `rows` people and a bundle drawn from it (panel `size`, lists)."""
    import sortition

    spec = Path(__file__).resolve().parents[1] / "quotas" / "occitanie-2020.toml"
    sortition.write_synthetic_pool(folder / "pool.parquet", rows, seed)
    sortition.resolve_quotas(spec, size, out=folder / "q.csv")
    drawn = sortition.draw_bundle(folder / "pool.parquet", folder / "q.csv", size=size,
                                  seed="attack", replacements=replacements,
                                  out_dir=folder / "bundle")
    return drawn.out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="attack this bundle instead of drawing one")
    args = parser.parse_args(argv)
    if args.bundle is not None:
        print(json.dumps(attack(args.bundle)))
        return 0
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(attack(draw_bundle(Path(d)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
