"""Fingerprints of the inputs: what garants compare to know a draw used the pool and quotas it says.

**Pool.** The fingerprint is the SHA-256 of the pool's *public extract* — ids and quota features
only, never a contact column — in this encoding (version 1), UTF-8 throughout:

    sortition-pool-v1 TAB id TAB <feature> TAB <feature> … LF      (features sorted by UTF-8 bytes)
    <id> TAB <value> TAB <value> … LF                            (one line per person)

When households are used, a `household` field follows the id (header and every line): the
opaque household number of `sortition.inputs.pool` (1, 2, … by smallest member id), never the
household column's own values (often an address).

with the people in the order of their ids' UTF-8 bytes. Ids and values never contain a tab, CR
or LF (the pool loader refuses them) and are whitespace-stripped, so the encoding is
unambiguous. The same bytes result from the full pool and from the extract written by
`sortition public-pool`, whatever the file format, row order or extra columns.

Each stratum is recorded with its values and its number of people, and **no hash of its own**:
the ids of a small stratum can be guessed, and a hash over a stratum's lines would then confirm
who is in it — the features of people off the panel (docs/bundle-format.md, section 4). When a
pool changes, comparing the counts names the strata that gained or lost people.

**Quotas** are fingerprinted in their resolved form (integer bounds for the panel size), as the
SHA-256 of a canonical JSON text (see `quotas_document`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError
from ..core.fileio import write_csv_table
from ..core.outputs import atomic_path, check_file
from .pool import Pool
from .quotas import CrossQuota, Quotas, ValueQuota
from .strata import Strata

POOL_ENCODING = "sortition-pool-v1"


@dataclass
class StratumCount:
    values: tuple[str, ...]  # in the strata's feature order
    people: int


@dataclass
class PoolFingerprint:
    sha256: str
    people: int
    features: list[str]  # in the strata's feature order
    strata: list[StratumCount]
    households: int | None = None  # number of households, when they are used

    def as_json(self) -> dict:
        return {"sha256": self.sha256, "encoding": POOL_ENCODING, "people": self.people,
                "households": self.households,
                "features": list(self.features),
                "strata": [{"values": list(s.values), "people": s.people}
                           for s in self.strata]}


def _sorted_features(features: list[str]) -> list[str]:
    return sorted(features, key=lambda f: f.encode("utf-8"))


def public_extract(pool: Pool) -> pa.Table:
    """Ids and quota features, sorted by id: the table garants may receive."""
    columns: dict[str, pa.Array] = {"id": pool.ids.cast(pa.string())}
    if pool.households is not None:
        columns["household"] = pa.array(pool.households).cast(pa.string())
    for f in _sorted_features(pool.features):
        columns[f] = pa.DictionaryArray.from_arrays(
            pa.array(pool.codes[f], type=pa.int32()),
            pa.array(pool.values[f], type=pa.string())).cast(pa.string())
    table = pa.table(columns)
    return table.take(pc.sort_indices(table, sort_keys=[("id", "ascending")]))


def _lines(extract: pa.Table) -> pa.Array:
    """One encoded line per row of the extract (with its LF), as a large_string array."""
    cols = [extract.column(c).combine_chunks().cast(pa.large_string())
            for c in extract.column_names]
    tab = pa.scalar("\t", type=pa.large_string())
    joined = pc.binary_join_element_wise(*cols, tab)
    newline = pa.array(np.full(extract.num_rows, "\n", dtype=object), type=pa.large_string())
    return pc.binary_join_element_wise(joined, newline, pa.scalar("", type=pa.large_string()))


def _buffer(lines: pa.Array) -> tuple[np.ndarray, memoryview]:
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[
        lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    return offsets, memoryview(data) if data is not None else memoryview(b"")


def pool_fingerprint(pool: Pool, strata: Strata) -> PoolFingerprint:
    """The pool's fingerprint and the size of each stratum (see the module docstring)."""
    features = _sorted_features(pool.features)
    extra = ["household"] if pool.households is not None else []
    header = ("\t".join([POOL_ENCODING, "id", *extra, *features]) + "\n").encode("utf-8")
    lines = _lines(public_extract(pool))
    offsets, data = _buffer(lines)
    whole = hashlib.sha256(header)
    whole.update(data[int(offsets[0]):int(offsets[-1])])
    if strata.row_stratum is None:
        raise ValueError("strata built from counts: no rows to fingerprint")
    counts = np.bincount(strata.row_stratum, minlength=len(strata))
    hashes = [StratumCount(tuple(key), int(counts[s])) for s, key in enumerate(strata.keys)]
    n_households = (None if pool.households is None
                    else int(np.unique(pool.households).size))
    return PoolFingerprint(whole.hexdigest(), len(pool), list(strata.features), hashes,
                           n_households)


def check_extract_target(out: Path, *, inputs: Iterable[Path | None] = (),
                         force: bool = False) -> None:
    """The extract may be written there (see `outputs`): exit 2 with the reason if not."""
    check_file(out, inputs=inputs, force=force)
    if Path(out).suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"--out {out}: output must be a .parquet or .csv file")


def write_public_extract(pool: Pool, out: Path, *, inputs: Iterable[Path | None] = (),
                         force: bool = False) -> None:
    """Write the extract as Parquet or CSV (by the file's extension), atomically.

    Never over an input (the full pool above all: it holds the contacts); an existing file
    only with `force`.
    """
    import pyarrow.parquet as pq

    out = Path(out)
    check_extract_target(out, inputs=[pool.path, *inputs], force=force)
    table = public_extract(pool)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".csv":
            write_csv_table(table, tmp)
        else:
            pq.write_table(table, tmp, compression="zstd")


def quotas_document(quotas: Quotas, size: int) -> dict:
    """The resolved quotas as plain data, in a canonical order (UTF-8 byte order)."""
    def key(row: list) -> list:
        return [x.encode("utf-8") if isinstance(x, str) else x for x in row]

    values = sorted(([q.feature, q.value, int(q.min), int(q.max)] for q in quotas.values),
                    key=key)
    cross = sorted(([c.features[0], c.values[0], c.features[1], c.values[1], int(c.min),
                     int(c.max)] for c in quotas.cross), key=key)
    return {"panel_size": int(size), "quotas": values, "cross": cross}


def quotas_from_document(doc: dict) -> Quotas:
    """The resolved quotas back from `quotas_document` (as recorded in an audit)."""
    values = [ValueQuota(str(f), str(v), int(lo), int(hi)) for f, v, lo, hi in doc["quotas"]]
    cross = [CrossQuota((str(f0), str(f1)), (str(v0), str(v1)), int(lo), int(hi))
             for f0, v0, f1, v1, lo, hi in doc.get("cross", [])]
    return Quotas(values, cross, int(doc["panel_size"]), "audit.json")


def quotas_fingerprint(quotas: Quotas, size: int) -> str:
    """SHA-256 of the canonical JSON of `quotas_document` (compact, keys sorted, UTF-8)."""
    text = json.dumps(quotas_document(quotas, size), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stratum_differences(recorded: list[dict], found: PoolFingerprint, limit: int = 10
                        ) -> list[str]:
    """Which strata differ in size between a recorded fingerprint and the pool given: one line
    each. A change of ids or values that keeps every stratum's size names no stratum (there
    is no per-stratum hash to compare: see the module docstring)."""
    before = {tuple(s["values"]): s for s in recorded}
    after = {s.values: s for s in found.strata}
    out: list[str] = []
    keys = sorted(set(before) | set(after), key=lambda k: [v.encode("utf-8") for v in k])
    for k in keys:
        label = ", ".join(f"{f}={v}" for f, v in zip(found.features, k, strict=False))
        b, a = before.get(k), after.get(k)
        if b is None:
            assert a is not None  # k is a key of one of the two
            out.append(f"stratum {label}: not in the recorded pool ({a.people} people now)")
        elif a is None:
            out.append(f"stratum {label}: missing ({b['people']} people recorded)")
        elif b.get("people") != a.people:
            out.append(f"stratum {label}: changed ({b.get('people')} people recorded, "
                       f"{a.people} now)")
    if not out:
        out.append("every stratum has its recorded number of people: ids or values changed "
                   "without changing any stratum's size")
    if len(out) > limit:
        out = out[:limit] + [f"… and {len(out) - limit} more strata"]
    return out
