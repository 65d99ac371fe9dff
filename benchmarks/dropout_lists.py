"""Dropout-aware replacement lists against the lists of draw-spec section 12.2, by `simulate`.

For each of N draw seeds, the panel is drawn from a published lottery; both kinds of lists are
made for it (R per member; the dropout-aware ones with the rates file, docs/draw-spec.md
section 12.5), and each is replayed by the dropout simulation (section 13) with the same rates,
the same simulation seed and the same number of trials. Prints, per draw seed and pooled, the
share of trials in which every seat was refilled with every quota met, and the pooled
difference with a 95 % (and 99.9 %) confidence interval: trials are independent Bernoulli
draws, and the interval of the difference of the two pooled proportions ignores their
(positive) correlation, so it is conservative.

    python benchmarks/dropout_lists.py DEMO/respondents.parquet DEMO/quotas.csv \\
        --size 100 --lottery DEMO/bundle --rates rates.csv --draws 20 --trials 10000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

from sortition.draw.panel import draw_panel
from sortition.draw.replacements import draw_replacements, known_values
from sortition.inputs.load import load_inputs
from sortition.inputs.rates import load_rates
from sortition.lottery.panels import quota_system
from sortition.lottery.publish import attach_tickets, read_lottery
from sortition.lottery.run import read_lottery_bytes
from sortition.operations.simulate import simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pool", type=Path)
    ap.add_argument("quotas", type=Path)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--lottery", type=Path, required=True)
    ap.add_argument("--rates", type=Path, required=True)
    ap.add_argument("--replacements", type=int, default=3)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--trials", type=int, default=10000)
    ap.add_argument("--seed-prefix", default="dropout-aware benchmark, draw ")
    ap.add_argument("--simulation-seed", default="dropout-aware benchmark, simulation")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    inputs = load_inputs(args.pool, args.quotas, args.size)
    data, source = read_lottery_bytes(args.lottery)
    published = read_lottery(data, source)
    attach_tickets(published, inputs.all_members())
    h = hashlib.sha256(data).hexdigest()
    rates = load_rates(args.rates, known_values(inputs))
    system = quota_system(inputs.strata, inputs.quotas, inputs.size)
    keys, features = list(inputs.strata.keys), list(inputs.strata.features)
    rows_out = []
    totals = {"today": 0, "aware": 0}
    print(f"{'draw seed':<12} {'panel':>6} {'today':>8} {'aware':>8} {'lists s':>8}")
    for d in range(1, args.draws + 1):
        seed = f"{args.seed_prefix}{d}".encode()
        drawn = draw_panel(published, h, seed, inputs.members)
        seats = np.bincount([s for s, _ in drawn.people], minlength=system.n_strata)
        row = {"draw_seed": seed.decode(), "panel": drawn.number}
        for kind, r in (("today", None), ("aware", rates)):
            t = time.perf_counter()
            lists = draw_replacements(inputs, drawn, args.replacements, seed, h, r)
            row[f"{kind}_seconds"] = time.perf_counter() - t
            sim = simulate(system, keys, features, seats, drawn.people, lists.rows,
                           stratum_of=lists.strata.get, rate=0.0, rates=rates.rates,
                           trials=args.trials, seed=args.simulation_seed.encode(),
                           lottery_hash=h)
            row[kind] = sim.covered
            totals[kind] += round(sim.covered * args.trials)
        rows_out.append(row)
        print(f"{d:<12} {drawn.number:>6} {row['today']:>8.4f} {row['aware']:>8.4f} "
              f"{row['aware_seconds']:>8.2f}", flush=True)
    n = args.draws * args.trials
    p1, p2 = totals["today"] / n, totals["aware"] / n
    se = math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n)
    summary = {"trials": n, "today": p1, "aware": p2, "difference": p2 - p1,
               "ci95": [p2 - p1 - 1.96 * se, p2 - p1 + 1.96 * se],
               "ci999": [p2 - p1 - 3.29 * se, p2 - p1 + 3.29 * se],
               "draws_better": sum(r["aware"] > r["today"] for r in rows_out),
               "draws_worse": sum(r["aware"] < r["today"] for r in rows_out)}
    print(f"pooled over {n:,} trials: today's lists {p1:.4f}, dropout-aware {p2:.4f}, "
          f"difference {p2 - p1:+.4f} (95 % CI {summary['ci95'][0]:+.4f} to "
          f"{summary['ci95'][1]:+.4f}; 99.9 % CI {summary['ci999'][0]:+.4f} to "
          f"{summary['ci999'][1]:+.4f}); aware better in {summary['draws_better']} draws, "
          f"worse in {summary['draws_worse']}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"summary": summary, "draws": rows_out}, indent=1))


if __name__ == "__main__":
    main()
