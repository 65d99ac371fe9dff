"""`sortition verify`: a garant's independent check of a public bundle.

Everything is recomputed from the bundle, the pool (full or its public extract) and, if given,
the quotas: fingerprints, the lottery's hash and panels, the stated probabilities, the draw
from the seed, `panel.csv`, `probabilities.csv`, the replacement lists against their
commitment, the quota attainment and the file hashes.
Every mismatch is a *difference* naming the file and the field (or stratum), expected vs found
(exit 1); a missing file of the bundle is a difference too. The bundle is hostile input: it is
read only through `bundleio` (regular files, plain names, size caps, strict JSON, typed fields),
and a malformed or hostile bundle — like an unusable command-line input — is an input error
(exit 2, which from `verify` also means "not verified").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import numpy as np

from ..bundle.audit import (
    SCHEMA,
    SCHEMA_VERSION,
    panel_csv,
    person_probabilities,
    probability_figures,
    quota_attainment,
)
from ..bundle.read import bundle_inputs, quotas_block, read_bundle
from ..bundle.verifier import page_bytes, page_sha256
from ..core import drawspec as drawing
from ..core.bundleio import (
    MissingFile,
    count,
    field,
    file_hashes,
    obj,
    plain_name,
    previous_bundle,
    read_regular,
    regular_file,
    strict_json,
    texts,
)
from ..core.errors import InputError, SortitionError
from ..core.limits import (
    MAX_AUDIT_BYTES,
    MAX_LOTTERY_BYTES,
    MAX_PANEL_SIZE,
    MAX_PANELS,
    MAX_REPLACEMENTS,
    MAX_TABLE_BYTES,
)
from ..core.textopts import check_text
from ..core.xlsx import split_sheet
from ..draw.panel import Drawn, draw_panel, seat_counts
from ..draw.replacements import (
    check_replacements,
    draw_replacements,
    read_replacements_csv,
    recorded_rates,
    stratum_lookup,
)
from ..inputs.fingerprint import (
    pool_fingerprint,
    quotas_document,
    quotas_fingerprint,
    stratum_differences,
)
from ..inputs.households import eligible_pool, of_representatives
from ..inputs.load import Inputs
from ..inputs.pool import load_recorded_pool
from ..inputs.quotas import CrossQuota, Quotas, ValueQuota, flex_bounds, load_quotas
from ..inputs.rates import DropoutRates, load_rates
from ..inputs.strata import build_strata
from ..lottery.check import (
    apply_relaxation,
    find_relaxation,
    relaxation_json,
    relaxation_label,
)
from ..lottery.compute import compute_lottery, probability_classes_csv
from ..lottery.panels import quota_system
from ..lottery.publish import (
    PublishedLottery,
    attach_tickets,
    lottery_problems,
    max_probability_change,
    published_objective,
    read_lottery,
)
from ..lottery.run import quota_system_for
from ..recruitment.invite import check_calls_audit
from ..recruitment.respondents import check_respondents_audit
from .replace import plan_replace, run_replace

MARGINAL_TOL = 1e-6
VERIFIER = "verify.html"


@dataclass
class Anchors:
    """What the garant knew *before* each draw: the lottery hashes and seeds published
    beforehand, and a ticket drawn in public. A bundle can be consistent in every byte and still
    prove nothing about fairness: an operator who knew the seed could have chosen the lottery
    (or the ticket) to pick a given person. Only these commitments rule that out."""

    lottery_hashes: list[str] = dc_field(default_factory=list)
    seeds: list[str] = dc_field(default_factory=list)
    ticket: int | None = None
    # the dropout rates file published beforehand: dropout-aware lists follow from the rates,
    # and rates chosen after the seed could steer which strata the replacements come from
    rates: DropoutRates | None = None
    missing: list[str] = dc_field(default_factory=list)  # what nothing anchors, one line each
    used_hashes: set[str] = dc_field(default_factory=set)
    used_seeds: set[str] = dc_field(default_factory=set)
    used_rates: bool = False
    mismatched: bool = False  # a lottery, seed or rates file met that is not the one given


@dataclass
class Verification:
    """What `verify_bundle` found: the differences (none: verified), the checks passed, the
    bundle's summary and what the published commitments anchor."""

    bundle: Path
    differences: list[str] = dc_field(default_factory=list)
    checked: list[str] = dc_field(default_factory=list)
    summary: dict = dc_field(default_factory=dict)
    anchors: Anchors = dc_field(default_factory=Anchors)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def anchored(self) -> bool:
        """Every lottery, seed and operator-given ticket in the chain matches a value the
        garant says was published beforehand."""
        return not self.anchors.missing

    def to_dict(self) -> dict:
        """What `verify --json` prints: the verdict, the anchoring, every difference and check,
        and the bundle's summary."""
        return {"verified": self.ok, "anchored": self.anchored,
                "not_anchored": self.anchors.missing, "differences": self.differences,
                "checked": self.checked, **self.summary}


# The cap of each file a bundle may hold; any other name (in `files`) gets the largest one.
CAPS = {"audit.json": MAX_AUDIT_BYTES, "lottery.json": MAX_LOTTERY_BYTES}
A = "audit.json"


def _read(bundle: Path, name: str, result: Verification, missing: str | None = None
          ) -> bytes | None:
    """A file of the bundle (bundleio rules); missing is a difference, hostile an InputError."""
    try:
        return read_regular(bundle, name, CAPS.get(name, MAX_TABLE_BYTES),
                            where=f"{A}, files")
    except MissingFile as e:
        result.differences.append(missing or e.problems[0])
        return None


def _draw_audit(audit: dict) -> None:
    """Every field of a draw bundle's audit.json the checks use, with its type (InputError)."""
    pool = obj(audit, "inputs.pool", A)
    field(pool, "sha256", str, f"{A}, inputs.pool")
    for key in ("id_column", "household_column", "household_seed"):
        field(audit, f"inputs.pool.{key}", (str, type(None)), A, optional=True)
    field(audit, "inputs.pool.eligible", (int, type(None)), A, optional=True)
    texts(audit, "inputs.pool.features", A, None)
    for k, s in enumerate(field(audit, "inputs.pool.strata", list, A, optional=True) or []):
        where = f"inputs.pool.strata[{k}]"
        texts(s, "values", f"{A}, {where}", None)
        field(s, "people", int, f"{A}, {where}")
    chain = obj(audit, "inputs.pool.source_audit", A, optional=True)
    if chain:
        plain_name(field(audit, "inputs.pool.source_audit.file", str, A),
                   f"{A}, inputs.pool.source_audit.file")
        field(audit, "inputs.pool.source_audit.sha256", str, A)
    quotas_block(audit)
    field(audit, "seed", str, A)
    field(audit, "lottery.sha256", str, A)
    texts(audit, "draw.ids", A, MAX_PANEL_SIZE)
    field(audit, "draw.panel_number", (int, type(None)), A, optional=True)
    obj(audit, "parameters", A, optional=True)
    count(audit, "parameters.ticket", A, MAX_PANELS, minimum=1, optional=True)
    if obj(audit, "replacements", A, optional=True):
        count(audit, "replacements.per_member", A, MAX_REPLACEMENTS)
        if obj(audit, "replacements.dropout_rates", A, optional=True):
            field(audit, "replacements.dropout_rates.sha256", str, A)
            field(audit, "replacements.dropout_rates.rates", list, A)
    file_hashes(audit, "files", A)
    obj(audit, "probabilities", A, optional=True)
    obj(audit, "lottery", A)


def _read_audit(bundle: Path, result: Verification) -> dict | None:
    """audit.json of a bundle as a checked object, or None (missing: a difference)."""
    raw = _read(bundle, A, result)
    if raw is None:
        return None
    audit = strict_json(raw, A)
    if not isinstance(audit, dict):
        raise InputError(f"{A}: expected an object at the top level")
    if audit.get("schema") != SCHEMA:
        raise InputError(f"{A}, schema: {audit.get('schema')!r}, expected {SCHEMA!r}")
    if audit.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{A}, schema_version: {audit.get('schema_version')!r} is not "
                         f"{SCHEMA_VERSION} (this version of sortition cannot check it)")
    if audit.get("draw_spec") != drawing.SPEC:
        raise InputError(f"{A}, draw_spec: {audit.get('draw_spec')!r} is not "
                         f"{drawing.SPEC!r}")
    return audit


def _listed(value: str | Sequence[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def verify_bundle(bundle: Path, pool_path: Path, *, quotas_path: Path | None = None,
                  expect_lottery_hash: str | Sequence[str] | None = None,
                  expect_seed: str | Sequence[str] | None = None,
                  expect_ticket: int | None = None,
                  recompute: bool = False, id_column: str | None = None,
                  encoding: str = "utf-8",
                  log: Callable[[str], None] | None = None,
                  base_path: Path | None = None,
                  anchors: Anchors | None = None,
                  replacements_path: Path | None = None,
                  expect_dropout_rates: Path | None = None,
                  _seen: tuple[Path, ...] = ()) -> Verification:
    """Check a public bundle; the result lists what was checked, every difference, and what is
    not anchored to a prior commitment (`Anchors`).

    `expect_lottery_hash` / `expect_seed`: every value published beforehand (a replacement
    chain has one seed per round and one lottery per round that drew one). A malformed or
    hostile bundle raises InputError (`_seen`: the bundles of the chain already being
    verified, so that a loop is refused rather than followed). `replacements_path`: the
    replacement lists (garant material, not in the bundle), checked against the commitment in
    audit.json; the lists are re-derived from the pool either way. `expect_dropout_rates`: the
    dropout rates file published beforehand; dropout-aware lists are anchored only when the
    rates recorded in audit.json are this file's (same SHA-256, same rows).
    """
    top = anchors is None
    if anchors is None:
        hashes, seeds = _listed(expect_lottery_hash), _listed(expect_seed)
        for h in hashes:
            check_text("--expect-lottery-hash", h)
        for s in seeds:
            check_text("--expect-seed", s)
        anchors = Anchors([h.strip().lower() for h in hashes], seeds, expect_ticket,
                          None if expect_dropout_rates is None
                          else load_rates(expect_dropout_rates))
    result = _verify(Path(bundle), pool_path, quotas_path=quotas_path, anchors=anchors,
                     recompute=recompute, id_column=id_column, encoding=encoding, log=log,
                     base_path=base_path, seen=_seen, replacements_path=replacements_path)
    if top:
        _unused_anchors(anchors, result)
    return result


def _unused_anchors(anchors: Anchors, result: Verification) -> None:
    """A value the garant was told of that matches nothing in the chain is a difference."""
    if anchors.mismatched:
        return  # already reported where the lottery or seed was met
    for h in anchors.lottery_hashes:
        if h not in anchors.used_hashes:
            result.differences.append(f"--expect-lottery-hash {h}: no lottery of this bundle "
                                      "or its chain has this hash")
    for s in anchors.seeds:
        if s not in anchors.used_seeds:
            result.differences.append(f"--expect-seed {s!r}: no draw of this bundle or its "
                                      "chain used this seed")
    if anchors.rates is not None and not anchors.used_rates:
        result.differences.append(f"--expect-dropout-rates {anchors.rates.source}: no draw of "
                                  "this bundle or its chain made dropout-aware replacement "
                                  "lists (audit.json records no dropout rates)")


def _anchor_rates(anchors: Anchors, where: str, recorded: DropoutRates,
                  result: Verification) -> None:
    """The dropout rates a draw's lists were made with: those of the file published
    beforehand, byte for byte (SHA-256) and row for row, or nothing anchors the lists."""
    given = anchors.rates
    if given is None:
        anchors.missing.append(f"{where}: the dropout rates (file SHA-256 {recorded.sha256}) "
                               "were not checked against the rates file published beforehand "
                               "(--expect-dropout-rates); rates chosen after the seed could "
                               "steer which strata the replacements come from")
        return
    if given.sha256 != recorded.sha256:
        anchors.mismatched = True
        result.differences.append(f"{where}, sha256: {recorded.sha256} recorded, the rates "
                                  f"file published beforehand ({given.source}) has SHA-256 "
                                  f"{given.sha256}")
    elif given.rows != recorded.rows:
        anchors.mismatched = True
        k = next((k for k, (a, b) in enumerate(zip(given.rows, recorded.rows, strict=False))
                  if a != b), min(len(given.rows), len(recorded.rows)))
        mine, theirs = (repr(list(rows[k])) if k < len(rows) else "nothing"
                        for rows in (recorded.rows, given.rows))
        result.differences.append(f"{where}.rates[{k}]: {mine} recorded, the rates file "
                                  f"published beforehand ({given.source}) has {theirs}")
    else:
        anchors.used_rates = True
        result.checked.append(f"{where}: the dropout rates are those of the file published "
                              f"beforehand, byte for byte ({len(given.rows)} rates)")


def _anchor_lottery(anchors: Anchors, where: str, actual: str | None, recorded: str,
                    result: Verification) -> None:
    """The lottery met at `where` (hash of its bytes, hash recorded in audit.json)."""
    if not anchors.lottery_hashes:
        anchors.missing.append(f"{where}: no lottery hash published beforehand was given "
                               "(--expect-lottery-hash)")
        return
    wanted = set(anchors.lottery_hashes)
    found = False
    for what, h in ((f"{where}", actual), (f"{where} (as recorded in audit.json)", recorded)):
        if h is not None and h not in wanted:
            anchors.mismatched = True
            result.differences.append(f"{what}: hash {h} is not a lottery hash published "
                                      f"beforehand ({', '.join(sorted(wanted))})")
            found = True
    if not found and actual == recorded:
        anchors.used_hashes.add(actual)
        result.checked.append(f"{where}: the lottery is the one whose hash was published "
                              "beforehand")


def _anchor_seed(anchors: Anchors, where: str, seed: str, result: Verification) -> None:
    if not anchors.seeds:
        anchors.missing.append(f"{where}: the seed {seed!r} was not checked against the one "
                               "announced (--expect-seed)")
        return
    if seed in anchors.seeds:
        anchors.used_seeds.add(seed)
        result.checked.append(f"{where}: the seed is the one announced")
    else:
        anchors.mismatched = True
        shown = ", ".join(repr(s) for s in anchors.seeds)
        result.differences.append(f"{where}, seed: expected {shown} (announced), found {seed!r}")


def _anchor_ticket(anchors: Anchors, bundle: Path, audit: dict, result: Verification) -> None:
    """A ticket given by the operator decides the panel by itself: it must be the one drawn
    in public (--expect-ticket), or nothing anchors the draw."""
    ticket = (audit.get("parameters") or {}).get("ticket")
    if ticket is None:
        if anchors.ticket is not None:
            result.differences.append(f"--expect-ticket {anchors.ticket}: the panel number of "
                                      f"{bundle.name} came from the seed, not from a ticket")
        return
    if anchors.ticket is None:
        anchors.missing.append(f"{bundle.name}: ticket {ticket} was given by the operator; it "
                               "was not checked against the one drawn in public "
                               "(--expect-ticket)")
    elif anchors.ticket != ticket:
        result.differences.append(f"{bundle.name}/audit.json, parameters.ticket: {ticket}, "
                                  f"but ticket {anchors.ticket} was drawn in public")
    else:
        result.checked.append(f"ticket {ticket} is the one drawn in public")


def _verify(bundle: Path, pool_path: Path, *, quotas_path: Path | None, anchors: Anchors,
            recompute: bool, id_column: str | None, encoding: str,
            log: Callable[[str], None] | None, base_path: Path | None,
            seen: tuple[Path, ...], replacements_path: Path | None = None) -> Verification:
    say = log or (lambda _m: None)
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise InputError(f"{bundle}: not a folder (give the public bundle written by "
                         "`sortition draw`)")
    if not split_sheet(pool_path)[0].exists():  # book.xlsx#Sheet: the book
        raise InputError(f"{pool_path}: pool file not found")
    result = Verification(bundle, anchors=anchors)
    diff, ok = result.differences.append, result.checked.append

    audit = _read_audit(bundle, result)
    if audit is None:
        return result
    if audit.get("kind") == "replace":
        return _verify_replace(bundle, pool_path, audit, result,
                               quotas_path=quotas_path, anchors=anchors,
                               id_column=id_column, encoding=encoding, log=log,
                               base_path=base_path, recompute=recompute, seen=seen,
                               replacements_path=replacements_path)
    if audit.get("kind") is not None:
        raise InputError(f"{A}, kind: {audit.get('kind')!r} is not a kind of bundle this "
                         "version knows")
    _draw_audit(audit)
    recorded_pool = audit["inputs"]["pool"]
    recorded_quotas = audit["inputs"]["quotas"]
    seed = audit["seed"]
    lottery_sha = audit["lottery"]["sha256"]
    features = list(recorded_pool["features"])

    # --- what was announced beforehand
    _anchor_seed(anchors, f"{bundle.name}/audit.json", seed, result)
    lottery_bytes = _read(bundle, "lottery.json", result)
    actual_sha = hashlib.sha256(lottery_bytes).hexdigest() if lottery_bytes is not None else None
    if actual_sha is not None and actual_sha != lottery_sha:
        diff(f"lottery.json: SHA-256 is {actual_sha}, audit.json records {lottery_sha} "
             "(the lottery file was changed)")
    _anchor_lottery(anchors, f"{bundle.name}/lottery.json", actual_sha, lottery_sha, result)
    _anchor_ticket(anchors, bundle, audit, result)

    # --- the pool
    say("loading the pool")
    column = recorded_pool.get("id_column") if id_column is None else id_column
    household = recorded_pool.get("household_column")
    pool = load_recorded_pool(pool_path, features, id_column=column,
                              household_column=household, encoding=encoding)
    strata = build_strata(pool, features)
    say("fingerprinting the pool")
    fp = pool_fingerprint(pool, strata)
    whole = None
    household_seed = recorded_pool.get("household_seed")
    if fp.sha256 != recorded_pool.get("sha256"):
        diff(f"pool {pool_path}: fingerprint {fp.sha256} differs from the recorded "
             f"{recorded_pool.get('sha256')} ({len(pool):,} people now, "
             f"{recorded_pool.get('people')} recorded)")
        for line in stratum_differences(recorded_pool.get("strata", []), fp):
            diff(f"pool {pool_path}: {line}")
    else:
        ok(f"the pool's fingerprint matches ({len(pool):,} people, {len(strata):,} strata)")
    if household is not None:
        whole = pool
        try:
            pool = eligible_pool(whole, household_seed, fp.sha256)
        except InputError as e:
            diff(f"audit.json, inputs.pool.household_seed: {e.problems[0]}")
            return result
        strata = build_strata(pool, features)
        ok(f"the household pre-draw gives {len(pool):,} representatives of "
           f"{len(whole):,} people")
        if recorded_pool.get("eligible") != len(pool):
            diff(f"audit.json, inputs.pool.eligible: {recorded_pool.get('eligible')} recorded, "
                 f"{len(pool)} from the household pre-draw")

    _check_chain(recorded_pool.get("source_audit"), Path(pool_path), result, base_path)

    # --- the quotas
    audit_quotas = quotas_block(audit)
    size = audit_quotas.size or 0
    own = quotas_fingerprint(audit_quotas, size)
    if own != recorded_quotas.get("sha256"):
        diff(f"audit.json, inputs.quotas: the quotas listed hash to {own}, not to the recorded "
             f"fingerprint {recorded_quotas.get('sha256')} (a bound was edited)")
    quotas = audit_quotas
    given = None
    if quotas_path is not None:
        given = load_quotas(quotas_path, size)
        given_sha = quotas_fingerprint(given, size)
        if given_sha != recorded_quotas.get("sha256"):
            diff(f"quotas {quotas_path}: fingerprint {given_sha} differs from the recorded "
                 f"{recorded_quotas.get('sha256')}")
            for line in _quota_changes(quotas_document(given, size),
                                       quotas_document(audit_quotas, size)):
                diff(f"quotas {quotas_path}: {line}")
        else:
            ok("the quotas given match the recorded fingerprint")
        quotas = given
    elif own == recorded_quotas.get("sha256"):
        ok("the recorded quotas match their fingerprint")

    # --- the lottery
    if lottery_bytes is None:
        return result
    published = read_lottery(lottery_bytes, "lottery.json")
    original = quotas
    quotas = _check_relaxation(published, quotas, given, quotas_path, size, audit, result)
    if not _check_lottery(published, quotas, recorded_quotas.get("sha256"), fp, strata, result):
        diff("the draw is not re-derived: the pool's strata are not the lottery's")
        return result
    if published.transparent:
        _check_tickets(published, pool, strata, result)

    # --- the draw
    if published.household_seed != household_seed:
        diff(f"lottery.json, pool.household_seed: {published.household_seed!r}, audit.json "
             f"records {household_seed!r}")
    inputs = Inputs(pool, strata, quotas, size, fp, str(recorded_quotas.get("sha256")),
                    Path(quotas_path or "audit.json"), {}, whole,
                    household_seed if household is not None else None)
    _check_draw(published, lottery_sha if actual_sha is None else actual_sha, seed, audit,
                inputs, bundle, result, replacements_path)
    _check_verifier_copy(bundle, result)

    if recompute:
        if published.relaxed and given is None:
            ok("the relaxation is not recomputed: it depends on the flex bounds of the quota "
               "file, which audit.json does not record (give it with --quotas)")
        elif published.relaxed:
            say("recomputing the relaxation of the quotas")
            _recompute_relaxation(published, inputs.strata, original, size, result)
        say(f"recomputing the {published.algorithm} lottery")
        _recompute(published, inputs.strata, inputs.quotas, inputs.size, result)
    result.summary = {"bundle": str(bundle), "pool_people": len(pool), "strata": len(strata),
                      "algorithm": published.algorithm, "lottery_sha256": actual_sha,
                      "seed": seed, "panel_number": audit["draw"].get("panel_number"),
                      **({"relaxation": relaxation_json(published.relaxation)}
                         if published.relaxed else {}),
                      "difference_count": len(result.differences)}
    return result


def _check_relaxation(pub: PublishedLottery, quotas: Quotas, given: Quotas | None,
                      quotas_path: Path | None, size: int, audit: dict,
                      result: Verification) -> Quotas:
    """A relaxed lottery (`--relax`): each relaxed quota's original bounds are the quotas',
    `audit.json` shows the same relaxation, and with a quota file it stays within the file's
    flex bounds. The quotas the lottery and the draw are checked against: the relaxed ones."""
    diff, ok = result.differences.append, result.checked.append
    recorded = audit.get("relaxation")
    if recorded != (relaxation_json(pub.relaxation) if pub.relaxed else None):
        diff("audit.json, relaxation: differs from the relaxation recorded in lottery.json"
             + ("" if pub.relaxed else " (which has none)"))
    if not pub.relaxed:
        return quotas
    bounds: dict[tuple[tuple[str, ...], tuple[str, ...]], ValueQuota | CrossQuota] = {
        ((q.feature,), (q.value,)): q for q in quotas.values}
    bounds.update({(tuple(c.features), tuple(c.values)): c for c in quotas.cross})
    flex: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[int, int]] = {}
    if given is not None and given.has_flex:
        flex = {((q.feature,), (q.value,)): flex_bounds(q, size) for q in given.values}
        flex.update({(tuple(c.features), tuple(c.values)): flex_bounds(c, size)
                     for c in given.cross})
    bad = False
    for r in pub.relaxation:
        q = bounds.get((r.features, r.values))
        if q is None:
            diff(f"lottery.json, relaxation: {r.label} is not one of the quotas")
            bad = True
        elif (q.min, q.max) != (r.old_min, r.old_max):
            diff(f"lottery.json, relaxation: {r.label} relaxed from [{r.old_min}, {r.old_max}], "
                 f"but the quotas say [{q.min}, {q.max}]")
            bad = True
        lo, hi = flex.get((r.features, r.values), (r.new_min, r.new_max))
        if r.new_min < lo or r.new_max > hi:
            diff(f"lottery.json, relaxation: {r.label} relaxed to [{r.new_min}, {r.new_max}], "
                 f"beyond the flex bounds [{lo}, {hi}] of {quotas_path}")
            bad = True
    if not bad:
        ok("the lottery was computed for relaxed quotas, recorded in lottery.json (so "
           "committed with its hash) and in audit.json: "
           + "; ".join(relaxation_label(r) for r in pub.relaxation)
           + ("" if not flex else f", within the flex bounds of {quotas_path}"))
    return apply_relaxation(quotas, pub.relaxation)


def _recompute_relaxation(pub: PublishedLottery, strata, quotas: Quotas, size: int,
                          result: Verification) -> None:
    """Is the recorded relaxation the one `--relax` gives (the smallest within the flex
    bounds of the quota file given with --quotas, by the documented rule)?"""
    diff, ok = result.differences.append, result.checked.append
    try:
        again = find_relaxation(strata, quotas, size)
    except SortitionError as e:
        diff(f"the relaxation: recomputation failed: {e.problems[0]}")
        return
    if relaxation_json(again) != relaxation_json(pub.relaxation):
        diff("the relaxation recorded in lottery.json is not the one --relax gives: "
             + ("; ".join(relaxation_label(r) for r in again) or "none"))
    else:
        ok("recomputed relaxation agrees: it is the smallest, by the documented rule")


def _check_verifier_copy(bundle: Path, result: Verification) -> None:
    """The bundle's verify.html must be the packaged page: the checker must not come from the
    party being checked. A bundle written before the page existed has none (a note)."""
    path = bundle / VERIFIER
    if not path.exists():
        result.checked.append(f"{VERIFIER} is not in the bundle (written before the page "
                              "existed): use the packaged one, `sortition verifier -o "
                              f"{VERIFIER}`")
        return
    data = _read(bundle, VERIFIER, result)
    if data is None:
        return
    if data != page_bytes():
        result.differences.append(
            f"{VERIFIER}: differs from the packaged page (SHA-256 "
            f"{hashlib.sha256(data).hexdigest()}, packaged {page_sha256()}"
            "); use the packaged one, `sortition verifier -o verify.html`")
    else:
        result.checked.append(f"{VERIFIER} is byte for byte the packaged page")


def _quota_changes(given: dict, recorded: dict) -> list[str]:
    out = []
    a: dict[tuple, list] = {(r[0], r[1]): r[2:] for r in given["quotas"]}
    b: dict[tuple, list] = {(r[0], r[1]): r[2:] for r in recorded["quotas"]}
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append(f"{k[0]}={k[1]}: min/max {a.get(k)} given, {b.get(k)} recorded")
    a = {tuple(r[:4]): r[4:] for r in given["cross"]}
    b = {tuple(r[:4]): r[4:] for r in recorded["cross"]}
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append(f"{k[0]}={k[1]} & {k[2]}={k[3]}: min/max {a.get(k)} given, "
                       f"{b.get(k)} recorded")
    if given["panel_size"] != recorded["panel_size"]:
        out.append(f"panel size {given['panel_size']} given, {recorded['panel_size']} recorded")
    return out


def _check_lottery(pub: PublishedLottery, quotas: Quotas, quotas_sha: str | None, fp,
                   strata, result: Verification) -> bool:
    """Check the lottery against the pool and quotas; False when its strata are not the
    pool's (then the draw cannot be re-derived from this pool)."""
    diff, ok = result.differences.append, result.checked.append
    if pub.pool_sha256 != fp.sha256:
        diff(f"lottery.json, pool.sha256: {pub.pool_sha256} is not this pool's fingerprint "
             f"{fp.sha256}")
    if pub.quotas_sha256 != quotas_sha:
        diff(f"lottery.json, quotas.sha256: {pub.quotas_sha256}, audit.json records "
             f"{quotas_sha}")
    if pub.features != list(strata.features):
        diff(f"lottery.json, features: {pub.features}, the pool's are {strata.features}")
        return False
    here = dict(zip(strata.keys, strata.counts.tolist(), strict=True))
    stated = dict(zip(pub.keys, pub.counts, strict=True))
    wrong = [k for k in sorted(set(here) | set(stated)) if here.get(k) != stated.get(k)]
    for k in wrong[:10]:
        diff(f"lottery.json, stratum {', '.join(k)}: {stated.get(k, 0)} people in the lottery, "
             f"{here.get(k, 0)} in the pool")
    if len(wrong) > 10:
        diff(f"lottery.json: … and {len(wrong) - 10} more strata")
    if not wrong:
        ok("the lottery's strata and their sizes are the pool's")
    _, system = quota_system_for(pub, quotas)
    problems = lottery_problems(pub, system)
    for line in problems:
        diff(f"lottery.json: {line}")
    if not problems:
        ok(f"the {len(pub.weights):,} panel weights sum exactly to {pub.denominator:,}, every "
           "panel meets every quota and the stratum sizes, and the stated probabilities are "
           "exactly those of the weights")
    return not wrong


def _check_tickets(pub: PublishedLottery, pool, strata, result: Verification) -> None:
    """A transparent lottery: its tickets' people follow from the pool by the documented
    assignment (attached here, `attach_tickets`), and `max_change` is recomputed from them."""
    diff, ok = result.differences.append, result.checked.append
    index = {k: s for s, k in enumerate(pub.keys)}
    members: list[list[str]] = [[] for _ in pub.keys]
    order = sorted(zip(pool.ids.to_pylist(), strata.rows().tolist(), strict=True),
                   key=lambda p: p[0].encode("utf-8"))
    for i, s in order:
        if strata.keys[s] in index:
            members[index[strata.keys[s]]].append(i)
    attach_tickets(pub, members)
    ok(f"the {pub.n_tickets:,} tickets' people are those of the documented assignment (each "
       "stratum's people, by id, take the seats of successive tickets in turn)")
    base = pub.base_probabilities or []
    if len(base) != len(pub.keys):
        diff(f"lottery.json, transparent.base_probabilities: {len(base)} values, "
             f"{len(pub.keys)} strata")
        return
    assert pub.n_tickets is not None  # called for transparent lotteries only
    change = max_probability_change(base, members, pub.ticket_counts(), int(pub.n_tickets))
    if change != pub.max_change:
        diff(f"lottery.json, transparent.max_change: {pub.max_change!r} stated, {change!r} "
             "recomputed")


def _check_draw(pub: PublishedLottery, lottery_hash: str, seed: str, audit: dict,
                inputs: Inputs, bundle: Path, result: Verification,
                replacements_path: Path | None = None) -> None:
    diff, ok = result.differences.append, result.checked.append
    recorded = audit.get("draw") or {}
    ticket = (audit.get("parameters") or {}).get("ticket")
    try:
        drawn: Drawn = draw_panel(pub, lottery_hash, seed.encode("utf-8"), inputs.members,
                                  ticket)
    except (SortitionError, ValueError) as e:
        diff(f"the draw cannot be re-derived: {e}")
        return
    if ticket is not None:
        ok(f"panel number {ticket} was given by the operator (a physical draw), not derived "
           "from the seed")
    if recorded.get("panel_number") != drawn.number:
        diff(f"audit.json, draw.panel_number: {recorded.get('panel_number')} recorded, the seed "
             f"gives {drawn.number}")
    ids = [i for _, i in drawn.people]
    if list(recorded.get("ids", [])) != ids:
        diff(_id_difference("audit.json, draw.ids", recorded.get("ids", []), ids))
    else:
        ok(f"the seed gives panel {drawn.number} and exactly the {len(ids)} people recorded")
    expected = {"panel.csv": panel_csv(drawn, pub)}
    probs = person_probabilities(pub, inputs)
    expected["probabilities.csv"] = probability_classes_csv(probs)
    for name, data in expected.items():
        found = _read(bundle, name, result)
        if found is None:
            continue
        if found != data:
            diff(_file_difference(name, data, found))
        else:
            ok(f"{name} is exactly what the lottery, the seed and the pool give")
    recorded_lists = audit.get("replacements")
    if recorded_lists is not None:
        _check_lists(recorded_lists, drawn, inputs, lottery_hash, seed, replacements_path,
                     result)
    achieved = quota_attainment(pub, inputs.quotas, drawn)
    if audit.get("quotas_achieved") != achieved:
        diff("audit.json, quotas_achieved: differs from the quota attainment of the drawn panel")
    bad = [a for a in achieved if not a["min"] <= a["achieved"] <= a["max"]]
    for a in bad:
        diff(f"the drawn panel breaks the quota {a['feature']}={a['value']}: {a['achieved']} "
             f"seats, bounds {a['min']}–{a['max']}")
    if not bad:
        ok("the drawn panel meets every quota")
    files = file_hashes(audit, "files", A)
    for name, sha in sorted(files.items()):
        listed = _read(bundle, name, result, f"{name}: listed in audit.json but missing")
        if listed is None:
            continue
        if hashlib.sha256(listed).hexdigest() != sha:
            diff(f"{name}: SHA-256 differs from the one recorded in audit.json")
    stated = dict(audit.get("probabilities") or {})
    stated.pop("file", None)
    figures = probability_figures(of_representatives(inputs.pool, probs))
    objective = published_objective(pub)
    if objective is not None or "objective" in stated:
        figures["objective"] = objective
    for key, value in figures.items():
        if stated.get(key) != value:
            diff(f"audit.json, probabilities.{key}: {stated.get(key)!r} recorded, {value!r} "
                 "recomputed")
    lottery = audit.get("lottery") or {}
    fields: dict[str, object] = {"method": pub.method, "panels": len(pub.weights),
                                 "denominator": pub.denominator, "certified_gap": pub.gap,
                                 "transparent": pub.transparent, "max_change": pub.max_change}
    for key, value in fields.items():
        if lottery.get(key) != value:
            diff(f"audit.json, lottery.{key}: {lottery.get(key)!r} recorded, {value!r} in "
                 "lottery.json")
    params = audit.get("parameters") or {}
    fields = {"algorithm": pub.algorithm, "panel_size": pub.panel_size,
              "panels": pub.n_tickets}
    for key, value in fields.items():
        if params.get(key) != value:
            diff(f"audit.json, parameters.{key}: {params.get(key)!r} recorded, {value!r} in "
                 "lottery.json")


def _check_chain(recorded: dict | None, pool_path: Path, result: Verification,
                 base_path: Path | None = None) -> None:
    """Follow the pool back to the contact base through the audits beside the pool file.

    Chain files are read by plain names in the pool's folder only (bundleio rules).
    """
    if recorded is None:
        return

    diff, ok = result.differences.append, result.checked.append
    folder, name = pool_path.parent, recorded["file"]
    path = folder / name
    try:
        data = read_regular(folder, name, MAX_AUDIT_BYTES, label=str(path),
                            where=f"{A}, inputs.pool.source_audit.file")
    except MissingFile:
        ok(f"the pool's own audit {name} is not beside {pool_path.name}: the "
           "chain back to the call list is not checked here")
        return
    if hashlib.sha256(data).hexdigest() != recorded["sha256"]:
        diff(f"{path}: SHA-256 differs from the one recorded in audit.json")
        return
    problems = check_respondents_audit(path)
    for line in problems:
        diff(f"chain, respondents: {line}")
    link = obj(strict_json(data, str(path)), "inputs.calls_audit", str(path), optional=True)
    calls_problems: list[str] = []
    if link:
        calls_audit = regular_file(folder, link.get("file"),
                                   where=f"{path}, inputs.calls_audit.file")
        if calls_audit is not None:
            calls_problems = check_calls_audit(calls_audit, base_path)
        for line in calls_problems:
            diff(f"chain, call list: {line}")
    if not problems and not calls_problems:
        ok("the pool follows from the call list and the answers (their audits agree)"
           + ("" if base_path is None else
              f", and the call list is the one the seed draws from {base_path.name}"))


def _check_lists(recorded: dict, drawn: Drawn, inputs: Inputs, lottery_hash: str, seed: str,
                 lists_path: Path | None, result: Verification) -> None:
    """The replacement lists: re-derived from the seed and the pool, their hash must be the
    commitment in audit.json; a list file given (garant material) must be exactly them, and
    if not, say which rule it breaks."""
    diff, ok = result.differences.append, result.checked.append
    rates = recorded_rates(recorded, inputs)  # malformed: an input error (exit 2)
    if rates is not None:
        _anchor_rates(result.anchors, f"{result.bundle.name}/audit.json, "
                      "replacements.dropout_rates", rates, result)
    try:
        again = draw_replacements(inputs, drawn, int(recorded["per_member"]),
                                  seed.encode("utf-8"), lottery_hash, rates)
    except (SortitionError, ValueError, KeyError, TypeError) as e:
        diff(f"replacement lists: cannot be re-derived ({e})")
        return
    if rates is not None:
        ok(f"the replacement lists are dropout-aware (draw-spec 12.5), chosen with the "
           f"{len(rates.rows)} rates in audit.json (rates file SHA-256 {rates.sha256})")
    digest = hashlib.sha256(again.csv_bytes()).hexdigest()
    if recorded.get("sha256") != digest:
        diff(f"audit.json, replacements.sha256: {recorded.get('sha256')!r} recorded, the lists "
             f"the seed gives hash to {digest}")
    else:
        ok(f"the replacement lists the seed gives match the commitment in audit.json "
           f"({len(again.rows)} replacements, {sum(again.shortfall.values())} short)")
    if lists_path is not None:
        _check_list_file(lists_path, again, drawn, inputs, result)
    if recorded.get("shortfall") != dict(again.shortfall):
        diff("audit.json, replacements.shortfall: differs from the re-derived lists")
    if recorded.get("listed") != len(again.rows):
        diff(f"audit.json, replacements.listed: {recorded.get('listed')!r} recorded, "
             f"{len(again.rows)} re-derived")


def _check_list_file(path: Path, again, drawn: Drawn, inputs: Inputs,
                     result: Verification) -> None:
    """A replacement list file (not public): exactly the lists the seed gives; if not, which
    promise each differing line breaks."""
    diff, ok = result.differences.append, result.checked.append
    path = Path(path)
    name = path.name
    found = read_regular(path.parent, name, MAX_TABLE_BYTES, label=str(path))
    if found == again.csv_bytes():
        ok(f"{name} is exactly what the seed gives, and its hash the commitment")
        return
    diff(_file_difference(name, again.csv_bytes(), found))
    try:
        rows = read_replacements_csv(found, name)
        system = quota_system(inputs.strata, inputs.quotas, inputs.size)
        seats = seat_counts(drawn.people, system.n_strata)
        wanted = sorted({r for _, _, r in rows})
        where = stratum_lookup(inputs.pool.ids, inputs.strata.rows(), wanted)
        for line in check_replacements(system, seats, drawn.people, rows,
                                       stratum_of=where.get)[:10]:
            diff(f"{name}: {line}")
    except (SortitionError, ValueError) as e:
        diff(f"{name}: {e}")


def _id_difference(what: str, recorded: list, derived: list) -> str:
    for k, (a, b) in enumerate(zip(recorded, derived, strict=False)):
        if a != b:
            return (f"{what}: position {k + 1} is {a!r}, the draw from the seed gives {b!r} "
                    f"({len(recorded)} ids recorded, {len(derived)} derived)")
    return f"{what}: {len(recorded)} ids recorded, {len(derived)} derived"


def _file_difference(name: str, expected: bytes, found: bytes) -> str:
    a = expected.decode("utf-8", "replace").splitlines()
    b = found.decode("utf-8", "replace").splitlines()
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"{name}, line {k + 1}: expected {x!r}, found {y!r}"
    return f"{name}: {len(b)} lines, expected {len(a)}"


def _recompute(pub: PublishedLottery, strata, quotas: Quotas, size: int,
               result: Verification, what: str = "the lottery") -> None:
    """Re-solve and compare: is this lottery the fairest one, as its algorithm promises?"""
    diff, ok = result.differences.append, result.checked.append
    try:
        again = compute_lottery(strata, quotas, size, pub.algorithm, gamma=pub.gamma)
    except SortitionError as e:
        diff(f"{what}: recomputation failed: {e.problems[0]}")
        return
    mine = again.stratum_probabilities()
    theirs = np.array(pub.stratum_probabilities())
    if pub.algorithm in ("leximin", "nash", "diversimax"):  # optimal probabilities are unique
        worst = int(np.argmax(np.abs(mine - theirs)))
        gap = float(abs(mine[worst] - theirs[worst]))
        if gap > MARGINAL_TOL:
            diff(f"{what}: recomputed {pub.algorithm} marginals differ by {gap:.3g} > "
                 f"{MARGINAL_TOL} (stratum {', '.join(pub.keys[worst])}: {theirs[worst]!r} in "
                 f"the lottery, {mine[worst]!r} recomputed)")
        else:
            ok(f"{what}: recomputed {pub.algorithm} marginals agree within {gap:.1e}")
    elif pub.algorithm == "goldilocks":  # the optimal value is unique, the point need not be
        a = float(again.details["goldilocks_value"])
        b = float((published_objective(pub) or {})["value"])
        if abs(a - b) > MARGINAL_TOL * max(1.0, a):
            diff(f"{what}: recomputed goldilocks value {a!r} differs from the lottery's {b!r}")
        else:
            ok(f"{what}: recomputed goldilocks value agrees within {abs(a - b):.1e}")
    else:
        a, b = float(mine.min()), float(theirs.min())
        if abs(a - b) > MARGINAL_TOL:
            diff(f"{what}: recomputed maximin value {a!r} differs from the lottery's {b!r}")
        else:
            ok(f"{what}: recomputed maximin value agrees within {abs(a - b):.1e}")


def _verify_replace(bundle: Path, pool_path: Path, audit: dict,
                    result: Verification, *, quotas_path: Path | None,
                    anchors: Anchors,
                    id_column: str | None, encoding: str,
                    log: Callable[[str], None] | None,
                    base_path: Path | None = None, recompute: bool = False,
                    seen: tuple[Path, ...] = (),
                    replacements_path: Path | None = None) -> Verification:
    """A replacement bundle: verify the bundle before it, then re-derive this one exactly
    (from its published completion lottery, if it drew one)."""
    diff, ok = result.differences.append, result.checked.append
    prev_dir, seen = previous_bundle(bundle, audit, A, seen)
    prev_sha = field(audit, "previous.audit_sha256", str, A)
    seed = field(audit, "seed", str, A)
    declined = texts(audit, "declined", A, MAX_PANEL_SIZE)
    texts(audit, "panel.ids", A, MAX_PANEL_SIZE)
    field(audit, "round", int, A)
    files = file_hashes(audit, "files", A)
    completion_block = obj(audit, "lottery", A, optional=True)
    _anchor_seed(anchors, f"{bundle.name}/audit.json", seed, result)
    previous_audit = _read(prev_dir, A, result,
                           f"{A}, previous.path: the previous bundle {prev_dir.name} has no "
                           "audit.json")
    if previous_audit is None:
        return result
    actual = hashlib.sha256(previous_audit).hexdigest()
    if actual != prev_sha:
        diff(f"{prev_dir.name}/audit.json: SHA-256 {actual}, recorded {prev_sha} (the previous "
             "bundle was changed)")
    earlier = verify_bundle(prev_dir, pool_path, quotas_path=quotas_path, anchors=anchors,
                            id_column=id_column, encoding=encoding, log=log,
                            base_path=base_path, recompute=recompute, _seen=seen,
                            replacements_path=replacements_path)
    for line in earlier.differences:
        diff(f"previous bundle {prev_dir.name}: {line}")
    for line in earlier.checked:
        ok(f"previous bundle {prev_dir.name}: {line}")
    if earlier.ok:
        ok(f"the previous bundle {prev_dir.name} verifies ({len(earlier.checked)} checks)")
    for name, sha in sorted(files.items()):
        data = _read(bundle, name, result, f"{name}: listed in audit.json but missing")
        if data is not None and hashlib.sha256(data).hexdigest() != sha:
            diff(f"{name}: SHA-256 differs from the one recorded in audit.json (the file was "
                 "changed)")
    completion = None
    if completion_block:
        completion = _read(bundle, "lottery.json", result)
        if completion is None:
            return result
        read_lottery(completion, "lottery.json")  # malformed: an input error, not a difference
        _anchor_lottery(anchors, f"{bundle.name}/lottery.json",
                        hashlib.sha256(completion).hexdigest(),
                        str(completion_block.get("sha256")), result)
    read_bundle(bundle)  # the chain by the same rules (hostile: exit 2)
    try:
        inputs = bundle_inputs(bundle, pool_path, None, id_column=id_column, encoding=encoding)
        again = run_replace(prev_dir, inputs, declined, seed, None, relative_to=bundle,
                            completion=completion)
    except SortitionError as e:
        for line in e.problems:
            diff(f"the replacement cannot be re-derived: {line}")
        return result
    if completion is not None:
        ok(f"{bundle.name}/lottery.json: the new lottery is for the people still available and "
           "the reduced quotas, every panel meets them, and its stated probabilities are "
           "exactly those of its weights")
        if recompute:
            (log or (lambda _m: None))("recomputing the new lottery")
            plan = plan_replace(prev_dir, inputs, declined)
            strata, quotas = plan.new_lottery()  # run_replace took a lottery: seats are open
            _recompute(read_lottery(completion, "lottery.json"), strata, quotas,
                       plan.open_seats, result, what=f"{bundle.name}: the new lottery")
    mine = dict(again.audit)
    theirs = dict(audit)
    mine.pop("run", None)
    theirs.pop("run", None)
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            diff(f"audit.json, {key}: differs from the re-derived replacement")
    _check_verifier_copy(bundle, result)
    for name, data in sorted(again.files.items()):
        if name in ("audit.json", VERIFIER):
            continue
        found = _read(bundle, name, result)
        if found is not None and found != data:
            diff(_file_difference(name, data, found))
    if not result.differences:
        ok(f"the replacement of {len(declined)} declined member(s) is exactly what the lists, "
           "the seed and the pool give")
    result.summary = {"bundle": str(bundle), "kind": "replace", "round": audit.get("round"),
                      "seed": seed, "difference_count": len(result.differences)}
    return result
