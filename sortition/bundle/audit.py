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
from pathlib import Path

import numpy as np

from ..core import drawspec as drawing
from ..core.audits import RESPONDENTS_SCHEMA as RESPONDENTS
from ..core.audits import audit_path_for
from ..core.fileio import csv_field
from ..core.outputs import BUNDLE_SCHEMA
from ..draw.panel import Drawn
from ..draw.replacements import rates_record
from ..inputs.fingerprint import quotas_document
from ..inputs.load import Inputs
from ..inputs.quotas import Quotas
from ..inputs.rates import DropoutRates
from ..lottery.publish import PublishedLottery

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
    eligible = per_stratum[inputs.strata.row_stratum]
    if inputs.everyone is None:
        return eligible
    out = np.zeros(len(inputs.everyone))
    out[inputs.pool.rows] = eligible
    return out


def panel_csv(drawn: Drawn, published: PublishedLottery) -> bytes:
    """`id` and the quota features of each selected person, in draw order."""
    lines = [",".join(csv_field(c) for c in ["id", *published.features])]
    for s, i in drawn.people:
        lines.append(",".join(csv_field(v) for v in [i, *published.keys[s]]))
    return ("\n".join(lines) + "\n").encode("utf-8")


def quota_attainment(published: PublishedLottery, quotas: Quotas, drawn: Drawn
                     ) -> list[dict]:
    """Per quota: min, max and the seats the drawn panel gives it, sorted by feature and value."""
    keys = published.keys
    feats = published.features
    out = []
    for q in quotas.values:
        j = feats.index(q.feature)
        got = sum(1 for s, _ in drawn.people if keys[s][j] == q.value)
        out.append({"feature": q.feature, "value": q.value, "min": q.min, "max": q.max,
                    "achieved": got})
    for c in quotas.cross:
        j0, j1 = feats.index(c.features[0]), feats.index(c.features[1])
        got = sum(1 for s, _ in drawn.people
                  if keys[s][j0] == c.values[0] and keys[s][j1] == c.values[1])
        out.append({"feature": f"{c.features[0]} & {c.features[1]}",
                    "value": f"{c.values[0]} & {c.values[1]}", "min": c.min, "max": c.max,
                    "achieved": got})
    # canonical order (as in the quotas' fingerprint), whatever the quota file's order
    return sorted(out, key=lambda q: (q["feature"].encode("utf-8"), q["value"].encode("utf-8")))


def eligible_values(inputs: Inputs, values: np.ndarray) -> np.ndarray:
    """Values over the whole pool restricted to the lottery's pool (household representatives;
    everybody without households): the figures that say something about fairness."""
    return values if inputs.everyone is None else values[inputs.pool.rows]


def probability_figures(probabilities: np.ndarray) -> dict:
    low, high = float(probabilities.min()), float(probabilities.max())
    return {"min": low, "max": high, "sum": float(math_fsum(probabilities)),
            "people_at_min": int((probabilities <= low * (1 + 1e-9)).sum())}


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
        "probabilities": {"file": "probabilities.csv",
                          **probability_figures(eligible_values(inputs, probabilities))},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


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
