"""The draw and its public audit bundle.

`run_lottery` computes the lottery and its published form; `run_draw` draws a panel from it with
a public seed (see `draw` and docs/draw-spec.md) and writes the **public bundle**: `lottery.json`,
`panel.csv`, `probabilities.csv`, `audit.json`, `report.html`. Only ids and quota features reach
it; the operator's private export (`--private-out`, with the pool's contact columns) is written
elsewhere. The bundle is assembled in a temporary folder beside the target and swapped into
place (`outputs.write_folder`), so a crash or Ctrl-C never leaves half a bundle, and `--force`
replaces only a bundle this tool wrote (`outputs.check_folder`).

`audit.json` is deterministic — the same inputs and seed give the same bytes on the same
installation. Its `run` block holds the versions (which differ between installations);
timings go to the operator's screen, never into a public file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core import drawspec as drawing
from ..core.errors import InputError
from ..core.fileio import csv_field, write_csv_table
from ..core.limits import MAX_PANELS, MAX_REPLACEMENTS, check_count, check_seconds
from ..core.outputs import (
    BUNDLE_SCHEMA,
    atomic_path,
    check_file,
    check_folder,
    recover_pair,
    write_folder,
    write_pair,
)
from ..core.textopts import check_text, seed_option
from ..inputs.fingerprint import (
    PoolFingerprint,
    pool_fingerprint,
    quotas_document,
    quotas_fingerprint,
)
from ..inputs.pool import Pool, check_public_ids, load_pool, load_recorded_pool, read_rows
from ..inputs.quotas import Quotas, load_quotas
from ..inputs.strata import Strata, build_strata
from ..lottery.compute import Lottery, compute_lottery, probability_classes_csv
from ..lottery.panels import quota_system
from ..lottery.publish import (
    PublishedLottery,
    attach_tickets,
    make_transparent,
    publish,
    read_lottery,
    transparent_problem,
)

SCHEMA = BUNDLE_SCHEMA
SCHEMA_VERSION = 2  # 2: no per-stratum hashes, lists committed by hash, probabilities by class
DRAWABLE = ("leximin", "maximin", "nash")


@dataclass
class Inputs:
    """A pool and quotas, loaded, with their fingerprints."""

    pool: Pool
    strata: Strata
    quotas: Quotas
    size: int
    fingerprint: PoolFingerprint
    quotas_sha256: str
    quotas_path: Path
    timings: dict[str, float] = field(default_factory=dict)
    everyone: Pool | None = None  # with households: the whole pool (`pool` = representatives)
    household_seed: str | None = None

    @property
    def whole(self) -> Pool:
        """Everybody in the pool file (the lottery's pool may be household representatives)."""
        return self.everyone if self.everyone is not None else self.pool

    def members(self, s: int) -> list[str]:
        """Ids of stratum s, sorted by UTF-8 bytes."""
        rows = np.flatnonzero(self.strata.row_stratum == s)
        ids = self.pool.ids.take(pa.array(rows)).to_pylist()
        return sorted(ids, key=lambda i: i.encode("utf-8"))

    def all_members(self) -> list[list[str]]:
        order = np.argsort(self.strata.row_stratum, kind="stable")
        ids = self.pool.ids.take(pa.array(order)).to_pylist()
        bounds = np.searchsorted(self.strata.row_stratum[order], np.arange(len(self.strata) + 1))
        return [sorted(ids[bounds[s]:bounds[s + 1]], key=lambda i: i.encode("utf-8"))
                for s in range(len(self.strata))]


def load_inputs(pool_path: Path, quotas_path: Path, size: int | None, *,
                id_column: str | None = None, encoding: str = "utf-8",
                check_values: bool = True, household_column: str | None = None,
                household_seed: str | None = None,
                features: list[str] | None = None, quotas: Quotas | None = None,
                recorded: bool = False, id_is_public: bool = False) -> Inputs:
    """Load and fingerprint a pool and quotas; with households, keep one person per household
    (the public pre-draw of `households`) for the lottery. `recorded`: the column names are
    a bundle's, and the pool may be its public extract (`pool.load_recorded_pool`), whose ids
    were accepted when it was drawn; otherwise ids that are contact data are refused unless
    `id_is_public` (`pool.check_public_ids`)."""
    t = time.perf_counter()
    if quotas is None:
        quotas = load_quotas(quotas_path, size)
        if quotas.size is None:
            raise InputError(f"{quotas_path}: CSV quotas need --size")
    if household_column is None and household_seed is not None:
        raise InputError("--household-seed needs --household-column")
    check_text("--household-seed", household_seed)  # before the pool is loaded
    features = list(features or quotas.all_features)
    load = load_recorded_pool if recorded else load_pool
    whole = load(pool_path, features, id_column=id_column, encoding=encoding,
                 quotas=quotas if check_values else None, household_column=household_column)
    if not recorded:
        check_public_ids(whole, id_is_public=id_is_public)
    whole_strata = build_strata(whole, features)
    loaded = time.perf_counter() - t
    t = time.perf_counter()
    fp = pool_fingerprint(whole, whole_strata)
    fingerprinted = time.perf_counter() - t
    pool, strata, everyone = whole, whole_strata, None
    if household_column is not None:
        from ..inputs.households import eligible_pool

        pool = eligible_pool(whole, household_seed, fp.sha256)
        strata, everyone = build_strata(pool, features), whole
    return Inputs(pool, strata, quotas, int(quotas.size), fp,
                  quotas_fingerprint(quotas, int(quotas.size)), Path(quotas_path),
                  {"load": loaded, "fingerprint": fingerprinted}, everyone, household_seed)


def lottery_pool(pool_path: Path, quotas_path: Path, quotas: Quotas, id_column: str | None,
                 encoding: str, household_column: str | None, household_seed: str | None
                 ) -> tuple[Pool, Strata, Pool]:
    """(the lottery's pool, its strata, the whole pool): with households, the representatives.

    Without households no fingerprint is needed, so `check` and `probabilities` skip it.
    """
    if household_column is None and household_seed is None:
        pool = load_pool(pool_path, quotas.all_features, id_column=id_column,
                         encoding=encoding, quotas=quotas)
        return pool, build_strata(pool, quotas.all_features), pool
    inputs = load_inputs(pool_path, quotas_path, quotas.size, id_column=id_column,
                         encoding=encoding, household_column=household_column,
                         household_seed=household_seed, quotas=quotas,
                         id_is_public=True)  # `check`, `probabilities`: nothing published
    return inputs.pool, inputs.strata, inputs.whole


def run_lottery(inputs: Inputs, algorithm: str, *, panels: int | None = None,
                time_limit: float | None = None,
                log: Callable[[str], None] | None = None,
                computed: Lottery | None = None,
                accept_gap: float | None = None) -> PublishedLottery:
    """Compute the lottery (and round it to `panels` tickets for a transparent lottery).

    `computed`: a lottery already computed for these inputs, to publish instead.
    """
    if algorithm not in DRAWABLE:
        raise InputError(f"--algorithm {algorithm}: no lottery to draw from (choose "
                         f"{', '.join(DRAWABLE)}; legacy is for `probabilities` only)")
    problem = None if panels is None else transparent_problem(panels, inputs.size,
                                                                 len(inputs.pool))
    if problem:  # before any solving
        raise InputError(problem)
    t = time.perf_counter()
    lottery = computed if computed is not None else compute_lottery(
        inputs.strata, inputs.quotas, inputs.size, algorithm, time_limit=time_limit, log=log,
        accept_gap=accept_gap)
    published = publish(lottery, pool_sha256=inputs.fingerprint.sha256,
                        quotas_sha256=inputs.quotas_sha256, id_column=inputs.pool.id_column)
    published.household_seed = inputs.household_seed
    if panels is not None:
        published = make_transparent(published, inputs.all_members(), panels)
    inputs.timings["lottery"] = time.perf_counter() - t
    return published


def check_reuse(published: PublishedLottery, inputs: Inputs, source: str, *,
                algorithm: str | None, panels: int | None) -> None:
    """A reused lottery must be the one for these inputs and options (else exit 2)."""
    problems = []
    if published.pool_sha256 != inputs.fingerprint.sha256:
        problems.append(f"it was computed for another pool (pool fingerprint "
                        f"{published.pool_sha256[:16]}…, this pool "
                        f"{inputs.fingerprint.sha256[:16]}…)")
    if published.quotas_sha256 != inputs.quotas_sha256:
        problems.append(f"it was computed for other quotas (quotas fingerprint "
                        f"{published.quotas_sha256[:16]}…, these quotas "
                        f"{inputs.quotas_sha256[:16]}…)")
    if published.household_seed != inputs.household_seed:
        problems.append(f"its household seed is {published.household_seed!r}, this draw's is "
                        f"{inputs.household_seed!r}")
    if published.panel_size != inputs.size:
        problems.append(f"its panel size is {published.panel_size}, --size says {inputs.size}")
    if algorithm is not None and algorithm != published.algorithm:
        problems.append(f"its algorithm is {published.algorithm}, --algorithm says {algorithm}")
    if panels is not None and (not published.transparent or published.n_tickets != panels):
        have = (f"{published.n_tickets} panels" if published.transparent
                else "not a transparent lottery")
        problems.append(f"--panels {panels} but the lottery has {have}")
    if problems:
        raise InputError([f"{source}: {p}" for p in problems])


@dataclass
class Drawn:
    number: int  # 1-based panel (or ticket) number
    ticket_given: bool
    people: list[tuple[int, str]]  # (stratum, id) in draw order


def draw_panel(published: PublishedLottery, lottery_hash: str, seed: bytes,
               members: Callable[[int], list[str]], ticket: int | None = None) -> Drawn:
    """Seed → panel number → people, exactly as docs/draw-spec.md says."""
    if published.transparent:
        tickets = published.tickets
        if tickets is None:  # defensive: read back without `attach_tickets`
            raise RuntimeError("internal error: the tickets' people were not attached")
        if ticket is not None:
            if not 1 <= ticket <= len(tickets):
                raise InputError(f"--ticket {ticket}: the lottery has tickets 1 to "
                                 f"{len(tickets)}")
            number, given = ticket, True
        else:
            number, given = drawing.ticket(len(tickets), seed, lottery_hash), False
        ids = tickets[number - 1]
        stratum_of = _stratum_lookup(published, members, ids)
        return Drawn(number, given, [(stratum_of[i], i) for i in ids])
    if ticket is not None:
        raise InputError(f"--ticket {ticket}: only a transparent lottery (--panels M) has "
                         "equally likely numbered panels; this one's panels have unequal "
                         "weights, so the panel must come from the seed")
    index = drawing.panel_index(published.weights, published.denominator, seed, lottery_hash)
    given = False
    people: list[tuple[int, str]] = []
    for s, x in enumerate(published.panels[index].tolist()):
        if x:
            chosen = drawing.choose_in_stratum(members(s), x, seed, lottery_hash, s)
            people.extend((s, i) for i in chosen)
    return Drawn(index + 1, given, people)


def _stratum_lookup(published: PublishedLottery, members: Callable[[int], list[str]],
                    ids: list[str]) -> dict[str, int]:
    wanted = set(ids)
    out: dict[str, int] = {}
    for s in range(len(published.keys)):
        for i in members(s):
            if i in wanted:
                out[i] = s
    return out


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


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("sortition", "ortools", "numpy", "pyarrow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


@dataclass
class DrawResult:
    out_dir: Path
    lottery_hash: str
    published: PublishedLottery
    drawn: Drawn
    seed: str
    audit: dict
    attainment: list[dict]
    files: dict[str, bytes]
    timings: dict[str, float]
    private_out: Path | None = None
    replacements_out: Path | None = None  # the lists (garant material, not public)


def run_draw(inputs: Inputs, *, seed: str, out_dir: Path, algorithm: str | None,
             panels: int | None, lottery_dir: Path | None, ticket: int | None = None,
             private_out: Path | None = None, force: bool = False,
             time_limit: float | None = None, title: str | None = None,
             log: Callable[[str], None] | None = None,
             legacy_runs: int = 1000, computed: Lottery | None = None,
             legacy_estimate: np.ndarray | None = None,
             replacements: int | None = None,
             replacements_out: Path | None = None,
             accept_gap: float | None = None) -> DrawResult:
    """Compute or reuse the lottery, draw with the seed, and write the public bundle (and,
    with `replacements`, the lists to `replacements_out`: see `lists_path`)."""
    seed_b = _seed(seed)
    check_options(panels=panels, replacements=replacements, time_limit=time_limit, title=title)
    out_dir = Path(out_dir)
    given = draw_inputs(inputs.whole.path, inputs.quotas_path, lottery_dir)
    lists_out = lists_path(out_dir, replacements, replacements_out)
    check_draw_outputs(out_dir, private_out, inputs=given, force=force, lists_out=lists_out)
    if lottery_dir is not None:
        lottery_bytes, source = read_lottery_bytes(lottery_dir)
        published = read_lottery(lottery_bytes, source)
        check_reuse(published, inputs, source, algorithm=algorithm, panels=panels)
        attach_tickets(published, inputs.all_members())
    else:
        published = run_lottery(inputs, algorithm or "leximin", panels=panels,
                                time_limit=time_limit, log=log, computed=computed,
                                accept_gap=accept_gap)
        lottery_bytes = published.to_bytes()
    lottery_hash = hashlib.sha256(lottery_bytes).hexdigest()
    t = time.perf_counter()
    drawn = draw_panel(published, lottery_hash, seed_b, inputs.members, ticket)
    inputs.timings["draw"] = time.perf_counter() - t
    probabilities = person_probabilities(published, inputs)
    files = {"lottery.json": lottery_bytes,
             "panel.csv": panel_csv(drawn, published),
             "probabilities.csv": probability_classes_csv(probabilities)}
    attainment = quota_attainment(published, inputs.quotas, drawn)
    lists = None
    if replacements is not None:
        lists = draw_replacements(inputs, drawn, replacements, seed_b, lottery_hash)
    audit = audit_document(inputs, published, lottery_hash, seed, drawn, attainment,
                           probabilities, files, ticket is not None)
    if lists is not None:
        audit["replacements"] = lists_record(lists, replacements)
    from .report import render_report

    eligible = (probabilities if inputs.everyone is None
                else probabilities[inputs.pool.rows])  # household representatives
    legacy = (legacy_comparison(inputs, eligible, legacy_runs, legacy_estimate)
              if legacy_runs else None)
    audit["run"] = {"versions": versions()}  # timings go to the operator's screen only
    html = render_report(report_context(inputs, published, audit, drawn, eligible,
                                        title=title, legacy=legacy, out_dir=out_dir))
    files["audit.json"] = audit_bytes(audit)
    files["report.html"] = html.encode("utf-8")
    # not in audit.json's `files`: the packaged page is the authoritative one, and
    # `sortition verify` checks this copy is byte-identical to it
    from .verifier import NAME, page_bytes

    files[NAME] = page_bytes()
    check_draw_outputs(out_dir, private_out, inputs=given, force=force,  # again: time passed
                       lists_out=lists_out)
    write_folder(out_dir, files)
    if private_out is not None:
        write_private(inputs.pool, [i for _, i in drawn.people], private_out)
    if lists is not None and lists_out is not None:
        data = lists.csv_bytes()
        with atomic_path(lists_out, private=True) as tmp:
            tmp.write_bytes(data)
    return DrawResult(out_dir, lottery_hash, published, drawn, seed, audit, attainment, files,
                      dict(inputs.timings), private_out, lists_out)


def lists_path(out_dir: Path, replacements: int | None, given: Path | None) -> Path | None:
    """Where the replacement lists go: `--replacements-out`, else `<bundle>.replacements.csv`
    beside the bundle folder — never inside it: they name people off the panel, whom the
    quotas link to their features, so only their hash is public (docs/bundle-format.md)."""
    if replacements is None:
        if given is not None:
            raise InputError(f"--replacements-out {given}: needs --replacements R")
        return None
    if given is not None:
        return Path(given)
    out_dir = Path(out_dir)
    return out_dir.resolve().parent / f"{out_dir.resolve().name}.replacements.csv"


def lists_record(lists, per_member: int) -> dict:
    """`audit.json`'s `replacements` block: the lists' commitment, never the lists."""
    return {"per_member": per_member, "listed": len(lists.rows),
            "sha256": hashlib.sha256(lists.csv_bytes()).hexdigest(),
            "shortfall": dict(lists.shortfall)}


def lists_of_draw(audit: dict, lottery_hash: str, inputs: Inputs):
    """A draw bundle's replacement lists, re-derived from its seed, lottery hash and panel and
    the pool (`None` without lists): public material plus the pool give them, so neither
    `replace`, `simulate` nor `verify` needs the list file."""
    from ..draw.replacements import stratum_lookup

    record = audit.get("replacements")
    if record is None:
        return None
    ids = [str(i) for i in audit["draw"]["ids"]]
    where = stratum_lookup(inputs.pool.ids, inputs.strata.row_stratum, ids)
    missing = [i for i in ids if i not in where]
    if missing:
        raise InputError(f"{inputs.whole.path}: panel member(s) not in the pool: "
                         f"{', '.join(missing[:5])}")
    drawn = Drawn(int(audit["draw"].get("panel_number", 0)), False,
                  [(where[i], i) for i in ids])
    return draw_replacements(inputs, drawn, int(record["per_member"]),
                             str(audit["seed"]).encode("utf-8"), lottery_hash)


def draw_replacements(inputs: Inputs, drawn: Drawn, r: int, seed: bytes, lottery_hash: str):
    """The replacement lists of the drawn panel (see `replacements` and docs/draw-spec.md)."""
    from ..draw.replacements import replacement_lists

    r = check_count("--replacements", r, maximum=MAX_REPLACEMENTS)
    system = quota_system(inputs.strata, inputs.quotas, inputs.size)
    seats = np.zeros(system.n_strata, dtype=np.int64)
    for s, _ in drawn.people:
        seats[s] += 1
    return replacement_lists(system, seats, drawn.people, inputs.members, r, seed,
                             lottery_hash)


def _seed(seed: str) -> bytes:
    return seed_option("--seed", seed, "the draw")


def check_options(*, seed: str | None = None, panels: int | None = None,
                  replacements: int | None = None, time_limit: float | None = None,
                  title: str | None = None) -> None:
    """The lottery's and the draw's own options (sizes, seed, title), checked before any work.

    `run_lottery` and `run_draw` call it; the command line calls it too, before loading the pool,
    so that a typo is refused at once rather than after minutes of loading.
    """
    if seed is not None:
        _seed(seed)
    if panels is not None:
        check_count("--panels", panels, maximum=MAX_PANELS)
    if replacements is not None:
        check_count("--replacements", replacements, maximum=MAX_REPLACEMENTS)
    check_seconds("--time-limit", time_limit)
    check_text("--title", title)


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
    from ..recruitment.invite import audit_path_for
    from ..recruitment.respondents import SCHEMA as RESPONDENTS

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


def audit_bytes(audit: dict) -> bytes:
    return (json.dumps(audit, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def read_lottery_bytes(lottery_dir: Path) -> tuple[bytes, str]:
    path = Path(lottery_dir)
    if path.is_dir():
        path = path / "lottery.json"
    try:
        return path.read_bytes(), str(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read the lottery ({e.strerror or e})") from None


def draw_inputs(pool_path: Path | None, quotas_path: Path | None,
                lottery_dir: Path | None = None) -> list[Path | None]:
    """Every file a draw reads, none of which it may write over: the pool, its audit beside it
    (the chain), the quotas and a published lottery."""
    from ..recruitment.invite import audit_path_for

    pool_audit = None if pool_path is None else audit_path_for(Path(pool_path))
    return [pool_path, pool_audit, quotas_path, lottery_dir]


def check_draw_outputs(out_dir: Path, private_out: Path | None, *, inputs: list[Path | None],
                       force: bool, lists_out: Path | None = None) -> None:
    """The bundle folder, the private export and the replacement lists may be written (see
    `outputs`), else exit 2."""
    check_folder(out_dir, inputs=inputs, force=force)
    d = Path(out_dir).resolve()
    for option, path in (("--private-out", private_out), ("--replacements-out", lists_out)):
        if path is None:
            continue
        check_file(path, inputs=inputs, force=force, option=option)
        p = Path(path).resolve()
        if p == d or d in p.parents:
            raise InputError(f"{option} {path}: inside the public bundle {out_dir}; it must "
                             "be written elsewhere")
    if private_out is not None and lists_out is not None and \
            Path(private_out).resolve() == Path(lists_out).resolve():
        raise InputError(f"--replacements-out {lists_out}: the same file as --private-out")
    if private_out is not None and \
            Path(private_out).suffix.lower() not in (".csv", ".parquet", ".xlsx"):
        raise InputError(f"--private-out {private_out}: must end in .csv, .parquet or .xlsx")


def check_lottery_target(out_dir: Path, *, inputs: list[Path | None]) -> Path:
    """`DIR/lottery.json`, if it may be written: a published lottery is never replaced.

    A lottery written by a run killed before its `.sha256` is completed first (both files are
    one pair, `outputs.write_pair`): it then exists, and is refused like any other.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    target, sha = out_dir / "lottery.json", _hash_file(out_dir / "lottery.json")
    if out_dir.is_dir() and recover_pair(target, sha) == "completed":
        digest = sha.read_text(encoding="utf-8").split()[0]
        raise InputError(f"{target}: an interrupted run had written this lottery; its {sha.name} "
                         f"is now completed (SHA-256 {digest}). A lottery is never replaced: "
                         "publish that hash, or choose another folder")
    for path in (target, sha):
        if os.path.lexists(path):
            raise InputError(f"{path}: already exists (a published lottery is never "
                             "overwritten; choose another folder)")
        check_file(path, inputs=inputs, force=False)
    return target


def _hash_file(lottery: Path) -> Path:
    return lottery.with_name(lottery.name + ".sha256")


def write_lottery(out_dir: Path, published: PublishedLottery, *, inputs: list[Path | None]
                  ) -> str:
    """Write DIR/lottery.json then DIR/lottery.json.sha256 (a pair: both or neither); return
    the hash to publish."""
    target = check_lottery_target(out_dir, inputs=inputs)
    data = published.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    write_pair(target, lambda tmp: tmp.write_bytes(data), _hash_file(target),
               lambda _tmp: f"{digest}  lottery.json\n".encode())
    return digest


def write_private(pool: Pool, ids: list[str], out: Path) -> None:
    """The operator's private export: the drawn people with every column of the pool (0600)."""
    import pyarrow.parquet as pq

    rows = pc.index_in(pa.array(ids, type=pa.string()), value_set=pool.ids).to_numpy(
        zero_copy_only=False)
    table = read_rows(pool, np.asarray(rows, dtype=np.int64))
    table = table.append_column("draw_order", pa.array(np.arange(1, len(ids) + 1)))
    with atomic_path(out, private=True) as tmp:
        if Path(out).suffix.lower() == ".parquet":
            pq.write_table(table, tmp)
        elif Path(out).suffix.lower() == ".xlsx":
            from ..core.xlsx import write_xlsx_table

            write_xlsx_table(table, tmp, shown=Path(out))
        else:
            write_csv_table(table, tmp)


def quota_system_for(published: PublishedLottery, quotas: Quotas):
    """The quota constraints over the lottery's own strata (for checking its panels)."""
    from ..inputs.strata import strata_from_counts

    strata = strata_from_counts(published.features,
                                dict(zip(published.keys, published.counts, strict=True)))
    return strata, quota_system(strata, quotas, published.panel_size)



def legacy_comparison(inputs: Inputs, probabilities: np.ndarray, runs: int,
                      estimate: np.ndarray | None = None) -> dict | None:
    """The legacy greedy procedure's estimated probabilities, for the report's comparison:
    `estimate` (per stratum, from `runs` runs) when the caller has it, else estimated here.

    Counts the people it leaves clearly below the lottery's minimum (`legacy.clearly_below`).
    None if the procedure fails here.
    """
    from ..core.errors import SortitionError
    from ..lottery.legacy import clearly_below, legacy_probabilities

    if estimate is None:
        try:
            estimate = legacy_probabilities(inputs.strata, inputs.quotas, inputs.size, seed=0,
                                            runs=runs).stratum_probabilities
        except SortitionError:
            return None
    counts = inputs.strata.counts.astype(float)
    leg = np.asarray(estimate, dtype=float)
    below = clearly_below(leg, counts, runs, float(probabilities.min()))
    return {"runs": runs, "stratum_probabilities": leg, "people_below": int(counts[below].sum())}


def _histogram(values: np.ndarray, edges: np.ndarray) -> list[dict]:
    counts, _ = np.histogram(values, bins=edges)
    return [{"lo": float(edges[i]), "hi": float(edges[i + 1]), "people": int(c)}
            for i, c in enumerate(counts.tolist())]


def report_context(inputs: Inputs, published: PublishedLottery, audit: dict, drawn: Drawn,
                   probabilities: np.ndarray, *, title: str | None, legacy: dict | None,
                   out_dir: Path) -> dict:
    """What `report.render_report` shows, from the draw's own figures.

    `probabilities` are those of the lottery's pool (with households: the representatives).
    """
    import shlex

    people = len(inputs.pool)
    features = []
    for f in published.features:
        j = published.features.index(f)
        pool_counts = inputs.strata.value_counts(f)
        panel_counts: dict[str, int] = {}
        for s, _ in drawn.people:
            v = published.keys[s][j]
            panel_counts[v] = panel_counts.get(v, 0) + 1
        values = []
        for q in inputs.quotas.for_feature(f):
            values.append({"value": q.value, "population_share": q.share,
                           "pool_share": pool_counts.get(q.value, 0) / people,
                           "panel_count": panel_counts.get(q.value, 0), "min": q.min,
                           "max": q.max})
        if values:
            features.append({"name": f, "values": values})
    low, high = float(probabilities.min()), float(probabilities.max())
    edges = np.linspace(low, high if high > low else low + 1e-12, 21)
    at_min = probabilities <= low * (1 + 1e-9)
    strata_at_min = int(np.unique(inputs.strata.row_stratum[at_min]).size)
    figures = {"min": low, "max": high, "mean": float(probabilities.mean()),
               "people_at_min": int(at_min.sum()), "strata_at_min": strata_at_min,
               "gap": published.gap, "histogram": _histogram(probabilities, edges),
               "legacy": None}
    if legacy is not None:
        per_person = np.asarray(legacy["stratum_probabilities"])[inputs.strata.row_stratum]
        lo_edges = np.linspace(min(low, float(per_person.min())),
                               max(high, float(per_person.max())), 21)
        figures["histogram"] = _histogram(probabilities, lo_edges)
        figures["legacy"] = {"runs": legacy["runs"], "min": float(per_person.min()),
                             "max": float(per_person.max()),
                             "people_below_leximin_min": int(legacy["people_below"]),
                             "histogram": _histogram(per_person, lo_edges)}
    feature_names = list(published.features)
    selected = [{"id": i, "features": dict(zip(feature_names, published.keys[s], strict=True))}
                for s, i in drawn.people]
    transparent = None
    if published.transparent:
        transparent = {"tickets": published.n_tickets, "ticket": drawn.number,
                       "max_change": published.max_change}
    # the bundle's own name, never the path as typed (it may reveal the operator's folders)
    command = (f"sortition verify {shlex.quote(Path(out_dir).name)} --pool public-pool.parquet "
               f"--expect-lottery-hash {audit['lottery']['sha256']} "
               f"--expect-seed {shlex.quote(audit['seed'])}")
    return {
        "title": title, "seed": audit["seed"], "lottery_hash": audit["lottery"]["sha256"],
        "pool_fingerprint": inputs.fingerprint.sha256, "quotas_fingerprint": inputs.quotas_sha256,
        "algorithm": published.algorithm, "panel_size": published.panel_size,
        "pool_people": people, "strata": len(published.keys),
        "lottery_panels": len(published.weights), "panel_number": drawn.number,
        "transparent": transparent, "features": features, "probabilities": figures,
        "selected": selected, "feature_names": feature_names, "verify_commands": [command],
        "files": [{"name": k, "sha256": v} for k, v in audit["files"].items()],
        "run": audit.get("run", {}),
    }
