"""`sortition verify`: a garant's independent check of a public bundle.

Everything is recomputed from the bundle, the pool (full or its public extract) and, if given,
the quotas: fingerprints, the lottery's hash and panels, the stated probabilities, the draw
from the seed, `panel.csv`, `probabilities.csv`, the replacement lists against their
commitment, the quota attainment and the file hashes.
Every mismatch is a *difference* naming the file and the field (or stratum), expected vs found;
an unreadable file inside the bundle is a difference too. Only an unusable command-line input
(the pool, the quotas, the folder itself) is an input error.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import draw as drawing
from .audit import (
    SCHEMA,
    SCHEMA_VERSION,
    Drawn,
    Inputs,
    draw_panel,
    eligible_values,
    panel_csv,
    person_probabilities,
    probability_figures,
    quota_attainment,
    quota_system_for,
)
from .errors import InputError, SortitionError
from .fingerprint import (
    pool_fingerprint,
    quotas_document,
    quotas_fingerprint,
    quotas_from_document,
    stratum_differences,
)
from .lottery import probability_classes_csv
from .panels import quota_system
from .pool import load_recorded_pool
from .publish import (
    PublishedLottery,
    assign_tickets,
    max_probability_change,
    read_lottery,
)
from .quotas import Quotas, load_quotas
from .strata import build_strata
from .textopts import check_text

MARGINAL_TOL = 1e-6


@dataclass
class Verification:
    bundle: Path
    differences: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences


def _read(bundle: Path, name: str, result: Verification) -> bytes | None:
    try:
        return (bundle / name).read_bytes()
    except OSError as e:
        result.differences.append(f"{name}: cannot be read ({e.strerror or e})")
        return None


def verify_bundle(bundle: Path, pool_path: Path, *, quotas_path: Path | None = None,
                  expect_lottery_hash: str | None = None, expect_seed: str | None = None,
                  recompute: bool = False, id_column: str | None = None,
                  encoding: str = "utf-8",
                  log: Callable[[str], None] | None = None,
                  base_path: Path | None = None,
                  replacements_path: Path | None = None) -> Verification:
    """Check a public bundle; the result lists what was checked and every difference.

    `replacements_path`: the replacement lists (garant material, not in the bundle), checked
    against the commitment in audit.json; the lists are re-derived from the pool either way.
    """
    say = log or (lambda _m: None)
    check_text("--expect-lottery-hash", expect_lottery_hash)
    check_text("--expect-seed", expect_seed)
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise InputError(f"{bundle}: not a folder (give the public bundle written by "
                         "`sortition draw`)")
    if not Path(pool_path).exists():
        raise InputError(f"{pool_path}: pool file not found")
    result = Verification(bundle)
    diff, ok = result.differences.append, result.checked.append

    raw = _read(bundle, "audit.json", result)
    if raw is None:
        return result
    try:
        audit = json.loads(raw.decode("utf-8"))
        if audit.get("schema") != SCHEMA:
            raise ValueError(f"schema is {audit.get('schema')!r}, expected {SCHEMA!r}")
        if audit.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {audit.get('schema_version')!r} is not "
                             f"{SCHEMA_VERSION} (this version of sortition cannot check it)")
        if audit.get("draw_spec") != drawing.SPEC:
            raise ValueError(f"draw_spec {audit.get('draw_spec')!r} is not {drawing.SPEC!r}")
        if audit.get("kind") == "replace":
            return _verify_replace(bundle, pool_path, audit, raw, result,
                                   quotas_path=quotas_path, expect_seed=expect_seed,
                                   expect_lottery_hash=expect_lottery_hash,
                                   id_column=id_column, encoding=encoding, log=log,
                                   base_path=base_path, recompute=recompute,
                                   replacements_path=replacements_path)
        recorded_pool = audit["inputs"]["pool"]
        recorded_quotas = audit["inputs"]["quotas"]
        seed = str(audit["seed"])
        lottery_sha = str(audit["lottery"]["sha256"])
        features = [str(f) for f in recorded_pool["features"]]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        diff(f"audit.json: unreadable or incomplete ({e})")
        return result

    # --- what was announced beforehand
    _check_seed(expect_seed, seed, result)
    lottery_bytes = _read(bundle, "lottery.json", result)
    actual_sha = hashlib.sha256(lottery_bytes).hexdigest() if lottery_bytes is not None else None
    if actual_sha is not None and actual_sha != lottery_sha:
        diff(f"lottery.json: SHA-256 is {actual_sha}, audit.json records {lottery_sha} "
             "(the lottery file was changed)")
    if expect_lottery_hash is not None:
        wanted = expect_lottery_hash.strip().lower()
        for what, h in (("lottery.json", actual_sha), ("audit.json, lottery.sha256",
                                                       lottery_sha)):
            if h is not None and h != wanted:
                diff(f"{what}: hash {h} is not the lottery hash published beforehand "
                     f"({wanted})")
        if actual_sha == wanted == lottery_sha:
            ok("the lottery is the one whose hash was published beforehand")

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
        from .households import eligible_pool

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
    try:
        audit_quotas = quotas_from_document(recorded_quotas)
    except (KeyError, TypeError, ValueError) as e:
        diff(f"audit.json, inputs.quotas: unreadable ({e})")
        return result
    size = audit_quotas.size or 0
    own = quotas_fingerprint(audit_quotas, size)
    if own != recorded_quotas.get("sha256"):
        diff(f"audit.json, inputs.quotas: the quotas listed hash to {own}, not to the recorded "
             f"fingerprint {recorded_quotas.get('sha256')} (a bound was edited)")
    quotas = audit_quotas
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
    try:
        published = read_lottery(lottery_bytes, "lottery.json")
    except InputError as e:
        diff(e.problems[0])
        return result
    _check_lottery(published, quotas, recorded_quotas.get("sha256"), fp, strata, result)
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

    if recompute:
        say(f"recomputing the {published.algorithm} lottery")
        _recompute(published, inputs, result)
    result.summary = {"bundle": str(bundle), "pool_people": len(pool), "strata": len(strata),
                      "algorithm": published.algorithm, "lottery_sha256": actual_sha,
                      "seed": seed, "panel_number": audit.get("draw", {}).get("panel_number"),
                      "difference_count": len(result.differences)}
    return result


def _quota_changes(given: dict, recorded: dict) -> list[str]:
    out = []
    a = {(r[0], r[1]): r[2:] for r in given["quotas"]}
    b = {(r[0], r[1]): r[2:] for r in recorded["quotas"]}
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


def _check_seed(expected: str | None, seed: str, result: Verification) -> None:
    if expected is None:
        return
    if expected != seed:
        result.differences.append(f"audit.json, seed: expected {expected!r} (announced), "
                                  f"found {seed!r}")
    else:
        result.checked.append("the seed is the one announced")


def _check_lottery(pub: PublishedLottery, quotas: Quotas, quotas_sha: str | None, fp,
                   strata, result: Verification) -> None:
    diff, ok = result.differences.append, result.checked.append
    if pub.pool_sha256 != fp.sha256:
        diff(f"lottery.json, pool.sha256: {pub.pool_sha256} is not this pool's fingerprint "
             f"{fp.sha256}")
    if pub.quotas_sha256 != quotas_sha:
        diff(f"lottery.json, quotas.sha256: {pub.quotas_sha256}, audit.json records "
             f"{quotas_sha}")
    if sum(pub.weights) != pub.denominator:
        diff(f"lottery.json: weights sum to {sum(pub.weights)}, not to the denominator "
             f"{pub.denominator}")
    else:
        ok(f"the {len(pub.weights):,} panel weights sum exactly to {pub.denominator:,}")
    if pub.features != list(strata.features):
        diff(f"lottery.json, features: {pub.features}, the pool's are {strata.features}")
        return
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
    bad = [p + 1 for p in range(len(pub.weights)) if not system.satisfied(pub.panels[p])]
    if bad:
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        diff(f"lottery.json: panel(s) {', '.join(map(str, bad[:10]))}{more} break the quotas "
             "or the stratum sizes")
    else:
        ok("every panel of the lottery meets every quota and the stratum sizes")
    exact = pub.stratum_probabilities()
    stated_p = pub.extra.get("stated_probabilities", [])
    off = [s for s, (a, b) in enumerate(zip(exact, stated_p, strict=True)) if a != b]
    for s in off[:10]:
        diff(f"lottery.json, stratum {', '.join(pub.keys[s])}: probability {stated_p[s]!r} "
             f"stated, {exact[s]!r} from the weights")
    if len(off) > 10:
        diff(f"lottery.json: … and {len(off) - 10} more stated probabilities")
    if not off:
        ok("the stated probabilities are exactly those of the weights")
    total = math.fsum(p * n for p, n in zip(exact, pub.counts, strict=True))
    if abs(total - pub.panel_size) > 1e-6:
        diff(f"lottery.json: probabilities sum to {total}, not to the panel size "
             f"{pub.panel_size}")


def _check_tickets(pub: PublishedLottery, pool, strata, result: Verification) -> None:
    """Each ticket lists distinct pool people whose strata fill its panel's seats exactly."""
    diff, ok = result.differences.append, result.checked.append
    tickets = pub.tickets or []
    if pub.extra.get("stated_tickets") != len(tickets):
        diff(f"lottery.json, transparent.tickets: {pub.extra.get('stated_tickets')} stated, "
             f"{len(tickets)} listed")
    if sum(pub.weights) != len(tickets):
        diff(f"lottery.json: panel weights sum to {sum(pub.weights)}, {len(tickets)} tickets "
             "listed")
        return
    index = {k: s for s, k in enumerate(pub.keys)}
    stratum_of = {}
    for i, s in zip(pool.ids.to_pylist(), strata.row_stratum.tolist(), strict=True):
        stratum_of[i] = index.get(strata.keys[s], -1)
    start = 0
    problems = 0
    for p, w in enumerate(pub.weights):
        for t in range(start, start + w):
            ids = tickets[t]
            seats = np.zeros(len(pub.keys), dtype=np.int64)
            unknown = [i for i in ids if stratum_of.get(i, -1) < 0]
            for i in ids:
                if stratum_of.get(i, -1) >= 0:
                    seats[stratum_of[i]] += 1
            if unknown or len(set(ids)) != len(ids) or not np.array_equal(seats, pub.panels[p]):
                if problems < 10:
                    diff(f"lottery.json, ticket {t + 1}: does not match panel {p + 1} "
                         f"({len(ids)} ids, {len(set(ids))} distinct, {len(unknown)} not in "
                         "the pool)")
                problems += 1
        start += w
    if problems > 10:
        diff(f"lottery.json: … and {problems - 10} more tickets")
    if not problems:
        ok(f"the {len(tickets):,} tickets each list {pub.panel_size} distinct people filling "
           "their panel's seats")
    members = [[] for _ in pub.keys]
    for i in sorted(stratum_of, key=lambda i: i.encode("utf-8")):
        if stratum_of[i] >= 0:
            members[stratum_of[i]].append(i)
    if problems == 0 and assign_tickets(pub.panels, pub.weights, members) != tickets:
        diff("lottery.json: the people on the tickets are not those of the documented "
             "assignment (each stratum's people, by id, take the seats of successive tickets "
             "in turn)")
    elif problems == 0:
        ok("the tickets follow the documented assignment of people")
    base = pub.base_probabilities or []
    if len(base) == len(pub.keys):
        change = max_probability_change(base, members, pub.ticket_counts(), len(tickets))
        if change != pub.max_change:
            diff(f"lottery.json, transparent.max_change: {pub.max_change!r} stated, {change!r} "
                 "recomputed")


def _check_draw(pub: PublishedLottery, lottery_hash: str, seed: str, audit: dict,
                inputs: Inputs, bundle: Path, result: Verification,
                replacements_path: Path | None = None) -> None:
    diff, ok = result.differences.append, result.checked.append
    recorded = audit.get("draw", {})
    ticket = audit.get("parameters", {}).get("ticket")
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
    files = audit.get("files", {})
    for name, sha in sorted(files.items()):
        data = _read(bundle, name, result) if (bundle / name).exists() else None
        if data is None:
            if not (bundle / name).exists():
                diff(f"{name}: listed in audit.json but missing")
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            diff(f"{name}: SHA-256 differs from the one recorded in audit.json")
    stated = dict(audit.get("probabilities", {}))
    stated.pop("file", None)
    figures = probability_figures(eligible_values(inputs, probs))
    for key, value in figures.items():
        if stated.get(key) != value:
            diff(f"audit.json, probabilities.{key}: {stated.get(key)!r} recorded, {value!r} "
                 "recomputed")
    lottery = audit.get("lottery", {})
    expected = {"method": pub.method, "panels": len(pub.weights),
                "denominator": pub.denominator, "certified_gap": pub.gap,
                "transparent": pub.transparent, "max_change": pub.max_change}
    for key, value in expected.items():
        if lottery.get(key) != value:
            diff(f"audit.json, lottery.{key}: {lottery.get(key)!r} recorded, {value!r} in "
                 "lottery.json")
    params = audit.get("parameters", {})
    expected = {"algorithm": pub.algorithm, "panel_size": pub.panel_size,
                "panels": len(pub.tickets or []) if pub.transparent else None}
    for key, value in expected.items():
        if params.get(key) != value:
            diff(f"audit.json, parameters.{key}: {params.get(key)!r} recorded, {value!r} in "
                 "lottery.json")


def _check_chain(recorded: dict | None, pool_path: Path, result: Verification,
                 base_path: Path | None = None) -> None:
    """Follow the pool back to the contact base through the audits beside the files."""
    if recorded is None:
        return
    from .invite import check_calls_audit
    from .respondents import check_respondents_audit

    diff, ok = result.differences.append, result.checked.append
    path = pool_path.parent / str(recorded.get("file"))
    if not path.is_file():
        ok(f"the pool's own audit {recorded.get('file')} is not beside {pool_path.name}: the "
           "chain back to the call list is not checked here")
        return
    if hashlib.sha256(path.read_bytes()).hexdigest() != recorded.get("sha256"):
        diff(f"{path}: SHA-256 differs from the one recorded in audit.json")
        return
    try:
        problems = check_respondents_audit(path)
    except InputError as e:
        problems = list(e.problems)
    for line in problems:
        diff(f"chain, respondents: {line}")
    try:
        link = json.loads(path.read_text(encoding="utf-8"))["inputs"].get("calls_audit")
    except (OSError, ValueError, KeyError, TypeError):
        link = None
    calls_problems: list[str] = []
    if link is not None and (path.parent / str(link.get("file"))).is_file():
        calls_problems = check_calls_audit(path.parent / str(link["file"]), base_path)
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
    from .audit import draw_replacements

    diff, ok = result.differences.append, result.checked.append
    try:
        again = draw_replacements(inputs, drawn, int(recorded["per_member"]),
                                  seed.encode("utf-8"), lottery_hash)
    except (SortitionError, ValueError, KeyError, TypeError) as e:
        diff(f"replacement lists: cannot be re-derived ({e})")
        return
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
    from .replacements import check_replacements, read_replacements_csv, stratum_lookup

    diff, ok = result.differences.append, result.checked.append
    name = Path(path).name
    try:
        found = Path(path).read_bytes()
    except OSError as e:
        diff(f"{name}: cannot be read ({e.strerror or e})")
        return
    if found == again.csv_bytes():
        ok(f"{name} is exactly what the seed gives, and its hash the commitment")
    else:
        diff(_file_difference(name, again.csv_bytes(), found))
        try:
            rows = read_replacements_csv(found, name)
            system = quota_system(inputs.strata, inputs.quotas, inputs.size)
            seats = np.bincount([s for s, _ in drawn.people], minlength=system.n_strata)
            wanted = sorted({r for _, _, r in rows})
            where = stratum_lookup(inputs.pool.ids, inputs.strata.row_stratum, wanted)
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


def _recompute(pub: PublishedLottery, inputs: Inputs, result: Verification) -> None:
    from .lottery import compute_lottery

    diff, ok = result.differences.append, result.checked.append
    try:
        again = compute_lottery(inputs.strata, inputs.quotas, inputs.size, pub.algorithm)
    except SortitionError as e:
        diff(f"recomputation failed: {e.problems[0]}")
        return
    mine = again.stratum_probabilities()
    theirs = np.array(pub.stratum_probabilities())
    if pub.algorithm in ("leximin", "nash"):
        worst = int(np.argmax(np.abs(mine - theirs)))
        gap = float(abs(mine[worst] - theirs[worst]))
        if gap > MARGINAL_TOL:
            diff(f"recomputed {pub.algorithm} marginals differ by {gap:.3g} > {MARGINAL_TOL} "
                 f"(stratum {', '.join(pub.keys[worst])}: {theirs[worst]!r} in the lottery, "
                 f"{mine[worst]!r} recomputed)")
        else:
            ok(f"recomputed {pub.algorithm} marginals agree within {gap:.1e}")
    else:
        a, b = float(mine.min()), float(theirs.min())
        if abs(a - b) > MARGINAL_TOL:
            diff(f"recomputed maximin value {a!r} differs from the lottery's {b!r}")
        else:
            ok(f"recomputed maximin value agrees within {abs(a - b):.1e}")


def _verify_replace(bundle: Path, pool_path: Path, audit: dict, raw: bytes,
                    result: Verification, *, quotas_path: Path | None,
                    expect_seed: str | None, expect_lottery_hash: str | None,
                    id_column: str | None, encoding: str,
                    log: Callable[[str], None] | None,
                    base_path: Path | None = None, recompute: bool = False,
                    replacements_path: Path | None = None) -> Verification:
    """A replacement bundle: verify the bundle before it, then re-derive this one exactly
    (from its published completion lottery, if it drew one)."""
    from .replace import bundle_inputs, run_replace

    diff, ok = result.differences.append, result.checked.append
    try:
        prev_dir = (bundle / audit["previous"]["path"]).resolve()
        prev_sha = str(audit["previous"]["audit_sha256"])
        seed = str(audit["seed"])
        declined = [str(i) for i in audit["declined"]]
    except (KeyError, TypeError) as e:
        diff(f"audit.json: incomplete replacement record ({e})")
        return result
    _check_seed(expect_seed, seed, result)
    try:
        actual = hashlib.sha256((prev_dir / "audit.json").read_bytes()).hexdigest()
    except OSError as e:
        diff(f"audit.json, previous.path: the previous bundle {prev_dir} cannot be read ({e})")
        return result
    if actual != prev_sha:
        diff(f"{prev_dir}/audit.json: SHA-256 {actual}, recorded {prev_sha} (the previous bundle "
             "was changed)")
    earlier = verify_bundle(prev_dir, pool_path, quotas_path=quotas_path,
                            expect_lottery_hash=expect_lottery_hash, id_column=id_column,
                            encoding=encoding, log=log, base_path=base_path,
                            recompute=recompute, replacements_path=replacements_path)
    for line in earlier.differences:
        diff(f"previous bundle {prev_dir.name}: {line}")
    for line in earlier.checked:
        ok(f"previous bundle {prev_dir.name}: {line}")
    if earlier.ok:
        ok(f"the previous bundle {prev_dir.name} verifies ({len(earlier.checked)} checks)")
    for name, sha in sorted((audit.get("files") or {}).items()):
        data = _read(bundle, name, result)
        if data is not None and hashlib.sha256(data).hexdigest() != sha:
            diff(f"{name}: SHA-256 differs from the one recorded in audit.json (the file was "
                 "changed)")
    completion = None
    if audit.get("lottery") is not None:
        completion = _read(bundle, "lottery.json", result)
        if completion is None:
            return result
    try:
        inputs = bundle_inputs(bundle, pool_path, None, id_column=id_column, encoding=encoding)
        again = run_replace(prev_dir, inputs, declined, seed, None, relative_to=bundle,
                            completion=completion)
    except SortitionError as e:
        diff(f"the replacement cannot be re-derived: {e.problems[0]}")
        return result
    mine = dict(again.audit)
    theirs = dict(audit)
    mine.pop("run", None)
    theirs.pop("run", None)
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            diff(f"audit.json, {key}: differs from the re-derived replacement")
    for name, data in sorted(again.files.items()):
        if name == "audit.json":
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
