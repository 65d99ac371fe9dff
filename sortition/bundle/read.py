"""A public bundle read back: its audit, its current panel and its history (every previous
bundle of a replacement chain), the replacement lists of the draw at its root re-derived and
checked against their commitment, and the pool and quotas it was drawn from. Everything is read
by the `bundleio` rules: a malformed or hostile bundle is an input error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

from ..core.bundleio import (
    MissingFile,
    count,
    field,
    file_hashes,
    obj,
    previous_bundle,
    read_regular,
    strict_json,
    texts,
    typed,
)
from ..core.errors import InputError
from ..core.limits import MAX_AUDIT_BYTES, MAX_LOTTERY_BYTES, MAX_PANEL_SIZE
from ..draw.replacements import lists_of_draw
from ..inputs.fingerprint import quotas_from_document
from ..inputs.load import Inputs, load_inputs
from ..inputs.quotas import Quotas, load_quotas
from ..lottery.check import apply_relaxation
from ..lottery.publish import read_lottery
from .audit import SCHEMA

A = "audit.json"


@dataclass
class Bundle:
    """A public bundle read back: what `replace` and `verify` need of it."""

    path: Path
    audit: dict
    audit_sha256: str
    panel: list[str]  # current panel ids, in panel order
    origin: dict  # the draw bundle's audit: its replacement lists are re-derived from it
    excluded: list[str]  # everyone ever on the panel or declined, in the chain
    round: int  # 0 for a draw bundle, k for the k-th replace
    chain: list[Path] = dc_field(default_factory=list)  # this bundle and every previous one


def panel_ids(audit: dict) -> list[str]:
    """The current panel of a bundle's audit (checked by `read_bundle`)."""
    return list((audit.get("panel") or audit.get("draw") or {}).get("ids", []))


def read_bundle(path: Path, *, _seen: tuple[Path, ...] = ()) -> Bundle:
    """Read a bundle and its history (each previous bundle: the sibling folder `../NAME` its
    audit records), by the bundleio rules; a malformed or hostile one is an InputError."""
    path = Path(path)
    label = f"{path}/audit.json"
    try:
        raw = read_regular(path, "audit.json", MAX_AUDIT_BYTES, label=label)
    except MissingFile:
        raise InputError(f"{path}: not a public bundle (no audit.json)") from None
    audit = strict_json(raw, label)
    if not isinstance(audit, dict) or audit.get("schema") != SCHEMA:
        raise InputError(f"{label}: not a sortition audit (schema should be {SCHEMA!r})")
    file_hashes(audit, "files", label)  # well-formed, or exit 2
    if audit.get("kind") == "replace":
        panel = texts(audit, "panel.ids", label, MAX_PANEL_SIZE)
        prev_dir, seen = previous_bundle(path, audit, label, _seen)
        prev = read_bundle(prev_dir, _seen=seen)
        origin = prev.origin
        excluded = list(dict.fromkeys([*prev.excluded, *panel]))
        rnd = typed(audit, "round", int, label)
        chain = [path, *prev.chain]
    else:
        panel = texts(audit, "draw.ids", label, MAX_PANEL_SIZE)
        origin = audit
        excluded = list(panel)
        rnd = 0
        chain = [path]
    return Bundle(path, audit, hashlib.sha256(raw).hexdigest(), panel, origin, excluded, rnd,
                  chain)


def origin_lists(bundle: Bundle, inputs: Inputs):
    """The replacement lists of the draw bundle at the root of the chain, re-derived from its
    seed, lottery hash and panel and the pool, and checked against the commitment its
    audit.json holds (the list file is not public); `None` when it was drawn without lists."""
    audit = bundle.origin
    try:
        lists = lists_of_draw(audit, str(audit["lottery"]["sha256"]), inputs)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{bundle.chain[-1]}/audit.json: incomplete draw record ({e})") \
            from None
    if lists is not None and hashlib.sha256(lists.csv_bytes()).hexdigest() != \
            audit["replacements"].get("sha256"):
        raise InputError(f"{bundle.chain[-1]}/audit.json, replacements.sha256: the lists the "
                         "seed and this pool give do not hash to the recorded commitment")
    return lists


def bundle_inputs(bundle: Path, pool_path: Path, quotas_path: Path | None, *,
                  id_column: str | None = None, encoding: str = "utf-8") -> Inputs:
    """The pool and quotas of a bundle (its recorded quotas unless a file is given), with the
    recorded id column, features order and household pre-draw. The quotas are relaxed as the
    lottery of the draw at the root of the chain records (`--relax`): its panel, its lists and
    every replacement keep to the bounds it was drawn under; the fingerprint stays the quotas'."""
    read = read_bundle(bundle)
    audit = read.audit
    label = f"{bundle}/audit.json"
    obj(audit, "inputs", label)
    quotas = quotas_block(audit)
    size = quotas.size or 0
    if quotas_path is not None:
        quotas = load_quotas(quotas_path, size)
    pool = obj(audit, "inputs.pool", label)
    texts(pool, "features", f"{label}, inputs.pool", None)
    for key in ("id_column", "household_column", "household_seed"):
        typed(pool, key, (str, type(None)), f"{label}, inputs.pool", optional=True)
    inputs = load_inputs(pool_path, Path(quotas_path or Path(bundle) / "audit.json"), size,
                         id_column=pool.get("id_column") if id_column is None else id_column,
                         household_column=pool.get("household_column"),
                         household_seed=pool.get("household_seed"), encoding=encoding,
                         features=list(pool["features"]), quotas=quotas,
                         recorded=True)
    origin = read.chain[-1]
    try:
        data = read_regular(origin, "lottery.json", MAX_LOTTERY_BYTES,
                            label=f"{origin}/lottery.json")
    except MissingFile:
        return inputs  # `verify` reports it; nothing else can be re-derived
    relaxation = read_lottery(data, f"{origin}/lottery.json").relaxation
    if relaxation:
        inputs.quotas = apply_relaxation(inputs.quotas, relaxation)
    return inputs


def quotas_block(audit: dict) -> Quotas:
    """The quotas recorded in `inputs.quotas`, read back (InputError naming the field)."""
    doc = obj(audit, "inputs.quotas", A)
    count(doc, "panel_size", f"{A}, inputs.quotas", MAX_PANEL_SIZE)
    field(doc, "sha256", str, f"{A}, inputs.quotas")
    rows = field(doc, "quotas", list, f"{A}, inputs.quotas")
    cross = field(doc, "cross", list, f"{A}, inputs.quotas", optional=True) or []
    for what, table, width in (("quotas", rows, 4), ("cross", cross, 6)):
        for k, row in enumerate(table):
            if (not isinstance(row, list) or len(row) != width
                    or not all(isinstance(v, str) for v in row[:width - 2])
                    or not all(isinstance(v, int) and not isinstance(v, bool)
                               for v in row[width - 2:])):
                raise InputError(f"{A}, inputs.quotas.{what}[{k}]: expected {width - 2} "
                                 f"strings then min and max as whole numbers")
    return quotas_from_document(doc)
