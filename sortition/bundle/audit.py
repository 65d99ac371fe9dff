"""What a draw's public bundle says, computed: `audit.json`'s document (`audit_document`), the
rows of `panel.csv`, everyone's probability (`probabilities.csv`, by class) and its figures, the
seats each quota got, the replacement lists' commitment, and the link to the respondent pool's
own audit (the chain). `bundle.write` writes these files; `operations.verify` recomputes them.

`audit.json` is deterministic — the same inputs and seed give the same bytes on the same
installation. Its `run` block holds the versions (which differ between installations);
timings go to the operator's screen, never into a public file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace as dc_replace
from pathlib import Path

import numpy as np

from ..core import drawspec as drawing
from ..core.audits import RESPONDENTS_SCHEMA as RESPONDENTS
from ..core.audits import audit_path_for
from ..core.fileio import csv_field
from ..core.outputs import BUNDLE_SCHEMA
from ..draw.panel import Drawn, seat_counts
from ..draw.replacements import rates_record
from ..inputs.fingerprint import quotas_document
from ..inputs.households import for_everyone, of_representatives
from ..inputs.load import Inputs
from ..inputs.quotas import Quotas
from ..inputs.rates import DropoutRates
from ..inputs.strata import Strata
from ..lottery.check import apply_relaxation, relaxation_json
from ..lottery.compute import at_minimum
from ..lottery.panels import QuotaSystem, quota_label, quota_system
from ..lottery.publish import PublishedLottery, published_objective

SCHEMA = BUNDLE_SCHEMA
SCHEMA_VERSION = 2  # 2: no per-stratum hashes, lists committed by hash, probabilities by class


def person_probabilities(published: PublishedLottery, inputs: Inputs) -> np.ndarray:
    """Each row's probability under the published lottery (exact from its integers), for the
    whole pool file: 0 for people who do not represent their household."""
    if published.transparent:
        appear = published.ticket_counts()
        m = int(published.n_tickets or 0)
        return np.array([appear.get(i, 0) / m for i in inputs.whole.ids.to_pylist()])
    per_stratum = np.array(published.stratum_probabilities(), dtype=float)
    return for_everyone(inputs.pool, per_stratum[inputs.strata.rows()], len(inputs.whole))


def panel_csv(drawn: Drawn, published: PublishedLottery) -> bytes:
    """`id` and the quota features of each selected person, in draw order."""
    lines = [",".join(csv_field(c) for c in ["id", *published.features])]
    for s, i in drawn.people:
        lines.append(",".join(csv_field(v) for v in [i, *published.keys[s]]))
    return ("\n".join(lines) + "\n").encode("utf-8")


def quota_seats(system: QuotaSystem, seats: np.ndarray) -> list[dict]:
    """The seats a panel (seats per stratum) gives each quota row, with the row's features,
    values and bounds, in the system's row order: the one count behind both shapes of
    `quotas_achieved` (a draw bundle's, `quota_attainment`; a replacement bundle's,
    `replacement_attainment`)."""
    sums = [int(np.asarray(seats)[g].sum()) for g in system.groups]
    return [{"features": fs, "values": vs, "min": lo, "max": hi, "achieved": got}
            for fs, vs, lo, hi, got in zip(system.features, system.values, system.lo.tolist(),
                                           system.hi.tolist(), sums, strict=True)]


def drawn_inputs(inputs: Inputs, published: PublishedLottery) -> Inputs:
    """The inputs with the quotas the lottery was drawn under: relaxed as it records
    (`--relax`), else unchanged. Their fingerprint stays the quotas' own."""
    if not published.relaxed:
        return inputs
    return dc_replace(inputs, quotas=apply_relaxation(inputs.quotas, published.relaxation))


def quota_attainment(published: PublishedLottery, quotas: Quotas, drawn: Drawn
                     ) -> list[dict]:
    """A draw bundle's `quotas_achieved`: per quota, `feature` and `value` (`f0 & f1`,
    `v0 & v1` when crossed), min, max and the drawn panel's seats, sorted by feature and value
    (docs/bundle-format.md section 9). Counted over the lottery's own strata, with the bounds
    drawn under: relaxed ones for a relaxed lottery (`drawn_inputs`)."""
    strata = Strata(list(published.features), [tuple(k) for k in published.keys],
                    np.asarray(published.counts, dtype=np.int64))
    system = quota_system(strata, quotas, published.panel_size)
    out = [{"feature": " & ".join(q["features"]), "value": " & ".join(q["values"]),
            "min": q["min"], "max": q["max"], "achieved": q["achieved"]}
           for q in quota_seats(system, seat_counts(drawn.people, system.n_strata))]
    # canonical order (as in the quotas' fingerprint), whatever the quota file's order
    return sorted(out, key=lambda q: (q["feature"].encode("utf-8"), q["value"].encode("utf-8")))


def replacement_attainment(system: QuotaSystem, seats: np.ndarray) -> list[dict]:
    """A replacement bundle's `quotas_achieved`: per quota, its label (`feature=value`,
    `f0=v0 & f1=v1`), min, max and the new panel's seats, sorted by label (docs/bundle-format.md
    section 12.2)."""
    out = [{"quota": quota_label(q["features"], q["values"]), "min": q["min"], "max": q["max"],
            "achieved": q["achieved"]} for q in quota_seats(system, seats)]
    return sorted(out, key=lambda q: q["quota"].encode("utf-8"))


def probability_figures(probabilities: np.ndarray) -> dict:
    low, high = float(probabilities.min()), float(probabilities.max())
    return {"min": low, "max": high, "sum": float(math_fsum(probabilities)),
            "people_at_min": int(at_minimum(probabilities).sum())}


def math_fsum(values: np.ndarray) -> float:
    import math

    return math.fsum(values.tolist())


def lists_record(lists, per_member: int, rates: DropoutRates | None = None) -> dict:
    """`audit.json`'s `replacements` block: the lists' commitment, never the lists; for
    dropout-aware lists, the rates they were chosen with (`dropout_rates`)."""
    record = {"per_member": per_member, "listed": len(lists.rows),
              "sha256": hashlib.sha256(lists.csv_bytes()).hexdigest(),
              "shortfall": dict(lists.shortfall)}
    if rates is not None:
        record["dropout_rates"] = rates_record(rates)
    return record


def audit_document(inputs: Inputs, published: PublishedLottery, lottery_hash: str, seed: str,
                   drawn: Drawn, attainment: list[dict], probabilities: np.ndarray,
                   files: dict[str, bytes], ticket_given: bool) -> dict:
    """Everything a garant checks, in a fixed order; the `run` block is added apart."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "draw_spec": drawing.SPEC,
        "inputs": {
            "pool": {**inputs.fingerprint.as_json(), "id_column": inputs.pool.id_column,
                     "household_column": inputs.pool.household_column,
                     "household_seed": inputs.household_seed,
                     "eligible": len(inputs.pool),
                     "source_audit": source_audit(inputs.whole.path)},
            "quotas": {"sha256": inputs.quotas_sha256,
                       **quotas_document(inputs.quotas, inputs.size)},
        },
        "parameters": {"algorithm": published.algorithm, "panel_size": inputs.size,
                       "panels": published.n_tickets,
                       "ticket": drawn.number if ticket_given else None},
        "lottery": {"file": "lottery.json", "sha256": lottery_hash, "method": published.method,
                    "panels": len(published.weights), "denominator": published.denominator,
                    "certified_gap": published.gap, "transparent": published.transparent,
                    "max_change": published.max_change,
                    "people_on_no_ticket": (len(inputs.pool) - len(published.ticket_counts())
                                            if published.transparent else None)},
        "seed": seed,
        "draw": {"panel_number": drawn.number,
                 "number_from": "ticket given by the operator" if ticket_given else "seed",
                 "ids": [i for _, i in drawn.people]},
        "quotas_achieved": attainment,
        **({"relaxation": relaxation_json(published.relaxation)} if published.relaxed else {}),
        "probabilities": {"file": "probabilities.csv",
                          **probability_figures(of_representatives(inputs.pool, probabilities)),
                          **objective_record(published)},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


def objective_record(published: PublishedLottery) -> dict:
    """`probabilities.objective` for the algorithms whose objective is not the smallest
    probability ordered LEXIMIN-wise (from lottery.json alone: see `published_objective`);
    nothing for LEXIMIN, whose min and max are already there."""
    objective = published_objective(published)
    return {} if objective is None else {"objective": objective}


def source_audit(pool_path: Path) -> dict | None:
    """The respondent pool's own audit (`<stem>.audit.json` beside it), which links it to the
    call list and so to the contact base: its name and SHA-256, for `verify` to follow."""
    path = audit_path_for(Path(pool_path))
    if not path.is_file():
        return None
    data = path.read_bytes()
    try:
        if json.loads(data.decode("utf-8")).get("schema") != RESPONDENTS:
            return None  # e.g. a call list's audit: not a respondent pool's
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest()}
