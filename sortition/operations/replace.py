"""Dropouts: replace the panel members who declined, keep every quota, and record it verifiably.

Telling a member who accepted that they are out is the worst outcome, so it happens only when
no panel keeping every member who did not decline exists; then the fewest are released (an
integer program on the panel without the declined and without list swaps), chosen at random
within their strata (stream "dropouts/<round>"). The swaps from the replacement lists
(`replacements.csv` of the original draw) are chosen for all declined seats together: the most
seats covered such that the people left can still complete the panel, and among those the
first choice in seat and rank order (docs/draw-spec.md section 16) — a rule a plain program can
re-derive; the solver only proves which prefixes can still be completed. Seats left open go to
a new fair lottery: LEXIMIN over the people still available, with the quota bounds reduced by
the members kept, drawn like a panel with its own lottery hash. Nobody who was ever on the
panel or declined comes back.

The result is a new public bundle whose `audit.json` references the previous one (relative path
and SHA-256 of its `audit.json`); `verify` re-derives it and follows the history.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ortools.linear_solver import pywraplp

from ..bundle.audit import SCHEMA, SCHEMA_VERSION, replacement_attainment
from ..bundle.read import Bundle, bundle_inputs, origin_lists, read_bundle
from ..bundle.verifier import NAME, page_bytes
from ..bundle.write import draw_inputs
from ..core import drawspec as drawing
from ..core.audits import audit_bytes, versions
from ..core.errors import InfeasibleError, InputError, SolverTimeout
from ..core.fileio import csv_field
from ..core.limits import check_seconds
from ..core.outputs import check_folder, write_folder
from ..core.tables import read_ids
from ..core.textopts import seed_option
from ..draw.panel import seat_counts
from ..draw.replacements import list_dict
from ..inputs.fingerprint import quotas_document, quotas_fingerprint
from ..inputs.load import Inputs
from ..inputs.quotas import Quotas
from ..inputs.strata import Strata, strata_from_counts
from ..lottery.compute import (
    LOTTERY_ALGORITHMS,
    check_algorithm_gamma,
    check_gamma_option,
    compute_lottery,
)
from ..lottery.panels import QuotaSystem, add_quotas_cp, add_quotas_lp, quota_system
from ..lottery.publish import PublishedLottery, lottery_problems, publish, read_lottery
from ..lottery.run import check_lottery_target, read_lottery_bytes, write_lottery


def check_replace_target(out_dir: Path, bundle_dir: Path, *, pool_path: Path | None,
                         quotas_path: Path | None, declined_path: Path | None,
                         force: bool) -> None:
    """The new bundle may be written there (see `outputs`): never over an input, nor over any
    bundle of the chain it builds on (that would destroy a published draw). Exit 2 if not."""
    chain = read_bundle(bundle_dir).chain
    check_folder(out_dir, inputs=[*draw_inputs(pool_path, quotas_path), declined_path, *chain],
                 force=force, chain=chain)
    if Path(out_dir).resolve().parent != Path(bundle_dir).resolve().parent:
        raise InputError(f"--out {out_dir}: write the replacement bundle beside the bundle it "
                         f"replaces (in {Path(bundle_dir).resolve().parent}): it refers to it "
                         "as ../NAME, and verify follows nothing else")


def read_declined(path: Path) -> list[str]:
    """Ids, one per line, or a CSV with an `id` column (`tables.read_ids`); order kept,
    duplicates dropped, at least one id."""
    ids = read_ids(path, "declined file").ids
    if not ids:
        raise InputError(f"{path}: no id in the declined file")
    return ids


@dataclass
class Replacement:
    position: int  # 1-based seat in the panel order
    left: str  # who declined (or was released)
    joined: str
    how: str  # "replacement list" | "new lottery"
    rank: int | None = None


@dataclass
class ReplaceResult:
    """What `run_replace` did: the new bundle, the panel, who replaced whom, who was released
    and the new lottery's hash, if one was needed."""

    out_dir: Path | None
    audit: dict
    files: dict[str, bytes]
    panel: list[str]
    replacements: list[Replacement] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    lottery_hash: str | None = None
    lottery_committed: bool = False  # the new lottery was given (prepared beforehand)


def _stratum_of(inputs: Inputs, ids: list[str], what: str) -> list[int]:
    rows = pc.index_in(pa.array(ids, type=pa.string()), value_set=inputs.pool.ids)
    rows = rows.to_numpy(zero_copy_only=False)
    missing = [i for i, r in zip(ids, rows.tolist(), strict=True) if r is None or r != r]
    if missing:
        raise InputError(f"{what}: {len(missing)} id(s) not in the pool: "
                         f"{', '.join(missing[:5])}")
    return inputs.strata.rows()[np.asarray(rows, dtype=np.int64)].astype(int).tolist()


@dataclass
class ReplacePlan:
    """Everything of a replacement that the seed does not decide (docs/draw-spec.md §16).

    The list choice, how many members of each stratum must be released, and the new lottery's
    problem (its strata and reduced quotas) depend only on the bundle, the pool and the
    declined: so the new lottery can be computed and its hash published before the seed
    exists (`replace --prepare`), like the first lottery.
    """

    bundle: Bundle
    system: QuotaSystem
    panel: list[str]
    stratum: dict[str, int]
    declined: list[str]
    order: list[int]  # the declined members' seats (0-based), in panel order
    seats: list  # each declined seat's listed candidates (`Listed`)
    choice: list[int | None]  # per seat, the chosen candidate's index, or None (open)
    release: np.ndarray | None  # members to release per stratum (None: nobody)
    kept: np.ndarray  # seats per stratum of the members kept, with the list choices
    excluded: set[str]  # never again on the panel
    open_seats: int  # seats for the new lottery (open seats and released members' seats)
    strata: Strata | None = None  # the new lottery's strata (people still available)
    quotas: Quotas | None = None  # the new lottery's reduced quotas

    @property
    def needs_lottery(self) -> bool:
        return self.open_seats > 0

    def new_lottery(self) -> tuple[Strata, Quotas]:
        """The new lottery's strata and reduced quotas: only a plan with open seats has them
        (callers ask `needs_lottery` first)."""
        if self.strata is None or self.quotas is None:
            raise RuntimeError("internal error: this replacement needs no new lottery")
        return self.strata, self.quotas

    def lottery_sha256_of_quotas(self) -> str:
        return quotas_fingerprint(self.new_lottery()[1], self.open_seats)


def plan_replace(bundle_dir: Path, inputs: Inputs, declined: list[str], *,
                 declined_source: str = "declined",
                 lists: dict[str, list[str]] | None = None,
                 deadline: float | None = None) -> ReplacePlan:
    """The seed-independent part of a replacement (see `ReplacePlan`).

    `lists`: member → candidates by rank, instead of the lists the draw's seed gives (to test
    the list choice on hand-made lists). `deadline` (a `time.perf_counter()` value, from
    `--time-limit`): past it, the list search and the releases stop with SolverTimeout."""
    bundle = read_bundle(bundle_dir)
    recorded = bundle.audit["inputs"]["pool"]["sha256"]
    if recorded != inputs.fingerprint.sha256:
        raise InputError(f"{inputs.pool.path}: not the pool of {bundle_dir} (fingerprint "
                         f"{inputs.fingerprint.sha256[:16]}…, the bundle records "
                         f"{recorded[:16]}…)")
    if bundle.audit["inputs"]["quotas"]["sha256"] != inputs.quotas_sha256:
        raise InputError(f"{inputs.quotas_path}: not the quotas of {bundle_dir}")
    panel = list(bundle.panel)
    on_panel = set(panel)
    unknown = [i for i in declined if i not in on_panel]
    if unknown:
        known = pc.is_in(pa.array(unknown, type=pa.string()), value_set=inputs.whole.ids)
        strangers = [i for i, k in zip(unknown, known.to_pylist(), strict=True) if not k]
        if strangers:
            raise InputError(f"{declined_source}: {len(strangers)} id(s) not in the pool: "
                             f"{', '.join(strangers[:5])}")
        raise InputError(f"{declined_source}: {len(unknown)} id(s) not on the panel: "
                         f"{', '.join(unknown[:5])}")
    system = quota_system(inputs.strata, inputs.quotas, inputs.size)
    n = system.n_strata
    stratum = dict(zip(panel, _stratum_of(inputs, panel, "panel"), strict=True))
    declined_set = set(declined)
    excluded = set(bundle.excluded) | declined_set
    order = [p for p, i in enumerate(panel) if i in declined_set]  # seats, in panel order
    kept = seat_counts([stratum[i] for i in panel if i not in declined_set], n)
    avail = _available(inputs, excluded)
    if lists is None:
        lists = list_dict(origin_lists(bundle, inputs))
    seats = _candidates(inputs, lists, [panel[p] for p in order], excluded)
    # 1. a panel keeping every other member? If not, release the fewest (lists not used)
    release = None
    choice = _list_choice(system, kept, avail, seats, 0, deadline)
    if choice is None:
        release = _fewest_releases(system, kept, avail, len(order), deadline)
        if release is None:
            raise InfeasibleError(_why_not(system, kept, avail, len(order)))
        kept = kept - release
        # 2. the list choice, released seats counted as open seats the lists do not fill
        choice = _list_choice(system, kept, avail, seats, int(release.sum()), deadline)
        if choice is None:
            raise RuntimeError("internal error: no completion after the releases")
    chosen = set()
    for cands, c in zip(seats, choice, strict=True):
        if c is not None:
            kept[cands[c].stratum] += 1
            chosen.add(cands[c].id)
    open_seats = sum(c is None for c in choice) + (0 if release is None else int(release.sum()))
    plan = ReplacePlan(bundle, system, panel, stratum, list(declined), order, seats, choice,
                       release, kept, excluded, open_seats)
    if open_seats:
        left = _available(inputs, excluded | chosen)
        plan.quotas = _reduced_quotas(inputs.quotas, system, kept, open_seats)
        keys = inputs.strata.keys
        counts = {keys[s]: int(left[s]) for s in range(n) if left[s] > 0}
        plan.strata = strata_from_counts(list(inputs.strata.features), counts)
    return plan


def completion_lottery(plan: ReplacePlan, inputs: Inputs, *, deadline: float | None = None,
                       accept_gap: float | None = None, algorithm: str | None = None,
                       gamma: float | None = None) -> PublishedLottery:
    """The new lottery over the people still available, for the open seats (within what is
    left of `--time-limit`, as for a first lottery; `accept_gap` likewise): LEXIMIN unless
    `algorithm` names another (`gamma`: Goldilocks' parameter)."""
    strata, quotas = plan.new_lottery()
    lottery = compute_lottery(strata, quotas, plan.open_seats, algorithm or "leximin",
                              time_limit=_left(deadline), accept_gap=accept_gap, gamma=gamma)
    published = publish(lottery, pool_sha256=inputs.fingerprint.sha256,
                        quotas_sha256=plan.lottery_sha256_of_quotas(),
                        id_column=inputs.pool.id_column)
    published.household_seed = inputs.household_seed
    return published


@dataclass
class Prepared:
    """`replace --prepare`: the plan, and the new lottery's hash to publish (None when the
    lists cover every seat and no lottery is needed)."""

    plan: ReplacePlan
    lottery_hash: str | None
    lottery_path: Path | None


def prepare_replace(bundle_dir: Path, inputs: Inputs, declined: list[str], out_dir: Path, *,
                    declined_source: str = "declined", time_limit: float | None = None,
                    accept_gap: float | None = None, algorithm: str | None = None,
                    gamma: float | None = None) -> Prepared:
    """Compute the new lottery a replacement needs and write it to OUT/lottery.json (with its
    `.sha256`), before the replacement's seed exists: its hash is then published, exactly like
    the first lottery's, and `replace --seed … --lottery OUT` draws from it. `time_limit`
    bounds the whole computation (SolverTimeout, nothing written), as for `lottery`."""
    check_algorithm_gamma(algorithm or "leximin", gamma)
    deadline = _deadline(time_limit)
    declined_path = Path(declined_source) if Path(declined_source).is_file() else None
    given = [*draw_inputs(inputs.whole.path, inputs.quotas_path), declined_path,
             *read_bundle(bundle_dir).chain]
    check_lottery_target(out_dir, inputs=given)
    plan = plan_replace(bundle_dir, inputs, declined, declined_source=declined_source,
                        deadline=deadline)
    if not plan.needs_lottery:
        return Prepared(plan, None, None)
    published = completion_lottery(plan, inputs, deadline=deadline, accept_gap=accept_gap,
                                   algorithm=algorithm, gamma=gamma)
    digest = write_lottery(out_dir, published, inputs=given)
    return Prepared(plan, digest, Path(out_dir) / "lottery.json")


def run_replace(bundle_dir: Path, inputs: Inputs, declined: list[str], seed: str,
                out_dir: Path | None, *, force: bool = False,
                declined_source: str = "declined",
                relative_to: Path | None = None,
                completion: bytes | None = None,
                lists: dict[str, list[str]] | None = None,
                time_limit: float | None = None,
                accept_gap: float | None = None, algorithm: str | None = None,
                gamma: float | None = None) -> ReplaceResult:
    """Replace the declined members of the bundle's panel (see the module docstring).

    `completion`: the new lottery as committed beforehand (`replace --prepare`); without it,
    and when one is needed, it is computed here. `lists`: see `plan_replace`. `time_limit`
    bounds the list choice, the releases and the new lottery (SolverTimeout, nothing written);
    `accept_gap` accepts a new lottery stopped by it, as for `lottery`. `algorithm` (default
    LEXIMIN) and `gamma`: the new lottery's; with `completion`, they must match it.
    `out_dir` None: nothing is written, and `relative_to` names the folder of the new bundle
    (its audit.json refers to the previous bundle from there; `verify` re-derives this way).
    """
    home = relative_to if relative_to is not None else out_dir
    if home is None:
        raise InputError("run_replace: give out_dir, or relative_to when nothing is written "
                         "(the new audit.json names the previous bundle relative to its own "
                         "folder)")
    if completion is None or algorithm is not None:
        check_algorithm_gamma(algorithm or "leximin", gamma)
    deadline = _deadline(time_limit)
    seed_b = _seed(seed)
    declined_path = Path(declined_source) if Path(declined_source).is_file() else None
    if out_dir is not None:
        check_replace_target(out_dir, bundle_dir, pool_path=inputs.whole.path,
                             quotas_path=inputs.quotas_path, declined_path=declined_path,
                             force=force)
    plan = plan_replace(bundle_dir, inputs, declined, declined_source=declined_source,
                        lists=lists, deadline=deadline)
    if completion is not None and not plan.needs_lottery:
        raise InputError("--lottery: this replacement needs no new lottery (the lists cover "
                         "every seat); draw without it")
    bundle, system, panel, stratum = plan.bundle, plan.system, plan.panel, plan.stratum
    n, order, seats, choice = system.n_strata, plan.order, plan.seats, plan.choice
    declined_set, excluded = set(declined), plan.excluded
    released: list[str] = []
    if plan.release is not None:
        released = _pick_released(inputs, panel, stratum, plan.release, declined_set, order,
                                  seed_b, bundle.audit_sha256, bundle.round + 1)
    new_panel = list(panel)
    result_repl: list[Replacement] = []
    chosen: set[str] = set()
    uncovered = sorted([*(p for p, c in zip(order, choice, strict=True) if c is None),
                        *(panel.index(i) for i in released)])
    for pos, cands, c in zip(order, seats, choice, strict=True):
        if c is not None:
            cand = cands[c]
            chosen.add(cand.id)
            new_panel[pos] = cand.id
            result_repl.append(Replacement(pos + 1, panel[pos], cand.id, "replacement list",
                                           cand.rank))
    # 3. a new lottery for the seats left open
    lottery_files: dict[str, bytes] = {}
    lottery_info: dict | None = None
    if uncovered:
        if len(uncovered) != plan.open_seats:  # defensive: the plan counted them
            raise RuntimeError("internal error: open seats differ from the plan")
        if completion is None:
            published = completion_lottery(plan, inputs, deadline=deadline,
                                           accept_gap=accept_gap, algorithm=algorithm,
                                           gamma=gamma)
            lottery_bytes = published.to_bytes()
        else:
            published, lottery_bytes = given_completion(completion, inputs, plan,
                                                        algorithm=algorithm, gamma=gamma)
        drawn_ids = _draw_completion(published, lottery_bytes, inputs, seed_b,
                                     excluded | chosen | set(released))
        lottery_files["lottery.json"] = lottery_bytes
        lottery_info = {"file": "lottery.json", "sha256": hashlib.sha256(lottery_bytes).hexdigest(),
                        "algorithm": published.algorithm, "panels": len(published.weights),
                        "seats": len(uncovered), "certified_gap": published.gap,
                        "quotas": quotas_document(plan.new_lottery()[1], plan.open_seats)}
        for pos, new in zip(uncovered, drawn_ids, strict=True):
            result_repl.append(Replacement(pos + 1, new_panel[pos], new, "new lottery"))
            new_panel[pos] = new
    result_repl.sort(key=lambda r: r.position)
    final = seat_counts(_stratum_of(inputs, new_panel, "panel"), n)
    if not system.satisfied(final):  # defensive: every step above keeps the quotas
        raise RuntimeError("internal error: the new panel breaks a quota")
    features = list(inputs.strata.features)
    keys = inputs.strata.keys
    rows = _stratum_of(inputs, new_panel, "panel")
    lines = [",".join(csv_field(c) for c in ["id", *features])]
    lines += [",".join(csv_field(v) for v in [i, *keys[s]]) for i, s in zip(new_panel, rows,
                                                                           strict=True)]
    files = {"panel.csv": ("\n".join(lines) + "\n").encode("utf-8"), **lottery_files}
    # the previous bundle, relative to the new one (verify re-derives with relative_to = it)
    rel = Path(os.path.relpath(Path(bundle_dir).resolve(), Path(home).resolve())).as_posix()
    achieved = replacement_attainment(system, final)
    audit = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "draw_spec": drawing.SPEC,
        "kind": "replace", "round": bundle.round + 1,
        "previous": {"path": rel, "audit_sha256": bundle.audit_sha256},
        "inputs": bundle.audit["inputs"],
        "seed": seed,
        "declined": list(declined),
        "released": released,
        "replacements": [{"position": r.position, "left": r.left, "joined": r.joined,
                          "how": r.how, "rank": r.rank} for r in result_repl],
        "lottery": lottery_info,
        "panel": {"ids": new_panel},
        "quotas_achieved": achieved,
        "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())},
        "run": {"versions": versions()},
    }
    files["audit.json"] = audit_bytes(audit)

    files[NAME] = page_bytes()  # the packaged page, for convenience (verify compares it)
    if out_dir is not None:
        check_replace_target(out_dir, bundle_dir, pool_path=inputs.whole.path,
                             quotas_path=inputs.quotas_path, declined_path=declined_path,
                             force=force)
        write_folder(out_dir, files)
    return ReplaceResult(out_dir, audit, files, new_panel, result_repl, released,
                         None if lottery_info is None else lottery_info["sha256"],
                         completion is not None)


def _seed(seed: str) -> bytes:
    return seed_option("--seed", seed, "the replacement")


def _available(inputs: Inputs, unavailable: set[str]) -> np.ndarray:
    """People per stratum who may still join (never on the panel, never declined)."""
    counts = inputs.strata.counts.astype(np.int64).copy()
    if unavailable:
        gone = sorted(unavailable, key=lambda i: i.encode("utf-8"))
        for s in _stratum_of(inputs, gone, "history"):
            counts[s] -= 1
    return counts


@dataclass(frozen=True)
class Listed:
    """A person on a declined member's replacement list who may still take the seat."""

    rank: int  # 1-based rank on the member's list in replacements.csv
    id: str
    stratum: int


def _candidates(inputs: Inputs, lists: dict[str, list[str]], members: list[str],
                excluded: set[str]) -> list[list[Listed]]:
    """Each member's list by rank, without anyone ever on the panel or declined."""
    wanted = [c for m in members for c in lists.get(m, []) if c not in excluded]
    strata = dict(zip(wanted, _stratum_of(inputs, wanted, "replacements.csv"), strict=True))
    return [[Listed(rank, c, strata[c]) for rank, c in enumerate(lists.get(m, []), start=1)
             if c not in excluded] for m in members]


SOLVE_SECONDS = 60.0  # per feasibility question of the list choice; far above what it takes


def _deadline(time_limit: float | None) -> float | None:
    check_seconds("--time-limit", time_limit)
    return None if time_limit is None else time.perf_counter() + float(time_limit)


def _left(deadline: float | None, what: str = "the replacement") -> float | None:
    """Seconds left before `deadline` (None: no limit); SolverTimeout when none are left."""
    if deadline is None:
        return None
    left = deadline - time.perf_counter()
    if left <= 0:
        raise SolverTimeout(f"time limit reached during {what}")
    return left


def _list_choice(system: QuotaSystem, kept: np.ndarray, avail: np.ndarray,
                 seats: list[list[Listed]], extra: int,
                 deadline: float | None = None) -> list[int | None] | None:
    """The list choice of docs/draw-spec.md section 16: for each seat, the index of the listed
    person who takes it, or None (left to the lottery); None if no choice is admissible.

    The rule is a plain search (most seats covered, then the first choice in seat and rank
    order). CP-SAT only answers, exactly, "can this prefix still be completed into an
    admissible choice covering that many seats?", so the answer never depends on which of
    several solutions the solver finds, and at most 1 + Σ (candidates + 1) questions are asked.
    """
    search = _ListSearch(system, kept, avail, seats, extra, deadline)
    witness = search.most_covered()
    if witness is None:
        return None
    best = sum(c is not None for c in witness)
    search.require(best)
    fixed: list[int | None] = []
    used: set[str] = set()
    for j, cands in enumerate(seats):
        covered = sum(c is not None for c in fixed)
        options: list[int | None] = [k for k, c in enumerate(cands) if c.id not in used]
        if covered + len(seats) - j - 1 >= best:  # leaving seat j open can still reach best
            options.append(None)
        for option in options:
            trial = [*fixed, option]
            if witness[:j + 1] == trial:
                break
            found = search.extend(trial)
            if found is not None:
                witness = found
                break
        else:  # the prefix was admissible, so one of its extensions is
            raise RuntimeError("internal error: the list choice lost its completion")
        fixed = trial
        if option is not None:
            used.add(cands[option].id)
    return fixed


class _ListSearch:
    """One CP-SAT model of the admissible list choices, asked about prefixes by assumptions.

    y[j][k]: seat j goes to its k-th candidate; z[t]: people of stratum t (available, not
    chosen) who complete the panel. Kept + chosen + z meets every quota, with one seat each.
    """

    def __init__(self, system: QuotaSystem, kept: np.ndarray, avail: np.ndarray,
                 seats: list[list[Listed]], extra: int, deadline: float | None = None) -> None:
        self.deadline = deadline
        from ortools.sat.python import cp_model

        self.cp = cp_model
        model = cp_model.CpModel()
        self.model = model
        n = system.n_strata
        self.y = [[model.new_bool_var(f"y{j}_{k}") for k in range(len(c))]
                  for j, c in enumerate(seats)]
        by_stratum: list[list] = [[] for _ in range(n)]
        by_person: dict[str, list] = {}
        for j, cands in enumerate(seats):
            if self.y[j]:
                model.add(sum(self.y[j]) <= 1)
            for c, v in zip(cands, self.y[j], strict=True):
                by_stratum[c.stratum].append(v)
                by_person.setdefault(c.id, []).append(v)
        for vs in by_person.values():
            if len(vs) > 1:
                model.add(sum(vs) <= 1)
        seats_of: list = []
        for t in range(n):
            z = model.new_int_var(0, int(avail[t]), f"z{t}") if avail[t] > 0 else 0
            if by_stratum[t]:
                model.add(z + sum(by_stratum[t]) <= int(avail[t]))
            seats_of.append(z + sum(by_stratum[t]))
        self.covered = sum(v for row in self.y for v in row)
        add_quotas_cp(model, seats_of, system, size=len(seats) + extra, kept=kept)

    def most_covered(self) -> list[int | None] | None:
        """An admissible choice covering as many seats as possible, or None if there is none."""
        self.model.maximize(self.covered)
        found = self._solve([], proven=True)
        self.model.clear_objective()
        return found

    def require(self, covered: int) -> None:
        self.model.add(self.covered >= covered)

    def extend(self, prefix: list[int | None]) -> list[int | None] | None:
        """An admissible choice starting with `prefix`, or None if there is none."""
        lits: list = []
        for row, k in zip(self.y, prefix, strict=False):
            lits.extend(v if i == k else v.Not() for i, v in enumerate(row))
        return self._solve(lits)

    def _solve(self, assumptions: list, proven: bool = False) -> list[int | None] | None:
        """`proven`: an optimum is asked for, and only a proven one will do."""
        cp = self.cp
        self.model.clear_assumptions()
        self.model.add_assumptions(assumptions)
        solver = cp.CpSolver()
        solver.parameters.num_workers = 1
        left = _left(self.deadline, "the choice of replacement lists")
        solver.parameters.max_time_in_seconds = SOLVE_SECONDS if left is None else min(
            SOLVE_SECONDS, left)
        status = solver.solve(self.model)
        if status == cp.INFEASIBLE:
            return None
        if status not in ((cp.OPTIMAL,) if proven else (cp.OPTIMAL, cp.FEASIBLE)):
            _left(self.deadline, "the choice of replacement lists")
            raise InfeasibleError(f"the replacement lists could not be searched: the solver "
                                  f"gave no answer within {SOLVE_SECONDS:.0f} s")
        return [next((k for k, v in enumerate(row) if solver.boolean_value(v)), None)
                for row in self.y]


def _fewest_releases(system: QuotaSystem, kept: np.ndarray, avail: np.ndarray, seats: int,
                     deadline: float | None = None) -> np.ndarray | None:
    """Kept members to release per stratum, as few as possible, so the quotas can be met.

    Among the release vectors of that fewest total, the lexicographically smallest in stratum
    order (docs/draw-spec.md §16): each stratum in turn gives up as few members as the ones
    before it allow. So the solver proves and bounds, but never picks among equal answers.
    """
    ip = pywraplp.Solver.CreateSolver("SCIP")
    ip.SetNumThreads(1)
    n = system.n_strata
    x = [ip.IntVar(0.0, float(avail[s]), "") for s in range(n)]
    z = [ip.IntVar(0.0, float(kept[s]), "") for s in range(n)]
    add_quotas_lp(ip, x, system, size=seats, less=z, kept=kept)
    ip.Minimize(ip.Sum(z))
    if _ip_solve(ip, deadline) != pywraplp.Solver.OPTIMAL:
        return None
    ip.Add(ip.Sum(z) == round(ip.Objective().Value()))
    for s in np.flatnonzero(kept).tolist():
        ip.Minimize(z[s])
        if _ip_solve(ip, deadline) != pywraplp.Solver.OPTIMAL:  # feasible by construction
            raise RuntimeError("internal error: the release vector cannot be fixed")
        z[s].SetBounds(round(z[s].solution_value()), round(z[s].solution_value()))
    return np.array([round(v.lb()) for v in z], dtype=np.int64)


def _ip_solve(ip: pywraplp.Solver, deadline: float | None) -> int:
    """Solve within what is left of the time limit; SolverTimeout if it ran out first."""
    left = _left(deadline, "the choice of members to release")
    if left is not None:
        ip.SetTimeLimit(max(1, int(1000 * left)))
    status = ip.Solve()
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.INFEASIBLE):
        _left(deadline, "the choice of members to release")
    return status


def _why_not(system: QuotaSystem, kept: np.ndarray, avail: np.ndarray, seats: int) -> str:
    reasons = []
    for g, lo, label in zip(system.groups, system.lo.tolist(), system.labels, strict=True):
        reachable = int(kept[g].sum() + avail[g].sum())
        if reachable < lo:
            reasons.append(f"{label} needs at least {lo} seats, only {reachable} people left")
    if int(avail.sum()) < seats:
        reasons.append(f"{seats} seats to fill, {int(avail.sum())} people left")
    detail = ("; ".join(reasons) if reasons
              else "no combination of the people left meets every quota")
    return f"the pool cannot cover these dropouts: {detail}"


def _pick_released(inputs: Inputs, panel: list[str], stratum: dict[str, int],
                   release: np.ndarray, declined: set[str], uncovered: list[int], seed: bytes,
                   previous_sha: str, rnd: int) -> list[str]:
    """Which kept members to release: uniformly within each stratum, stream dropouts/<round>."""
    stream = drawing.Stream(seed, previous_sha, drawing.dropouts_label(rnd))
    open_seats = {panel[p] for p in uncovered}
    out: list[str] = []
    for s in np.flatnonzero(release).tolist():
        group = sorted((i for i in panel if stratum[i] == s and i not in declined
                        and i not in open_seats), key=lambda i: i.encode("utf-8"))
        drawing.shuffle_prefix(group, int(release[s]), stream)
        out.extend(group[:int(release[s])])
    return out


def _reduced_quotas(quotas: Quotas, system: QuotaSystem, kept: np.ndarray, seats: int
                    ) -> Quotas:
    """The quotas for the open seats: every bound lowered by the seats the kept members fill.

    `system` was built from `quotas` (one group per one-way quota, then per cross quota, in
    that order), so groups and quotas pair up one to one.
    """
    bounds = [(max(0, lo), max(0, hi)) for _, lo, hi in system.rows(kept)]
    n_values = len(quotas.values)
    if len(bounds) != n_values + len(quotas.cross):
        raise RuntimeError("internal error: quota groups and quotas do not pair up")
    values = [replace(q, min=lo, max=hi)
              for q, (lo, hi) in zip(quotas.values, bounds[:n_values], strict=True)]
    cross = [replace(c, min=lo, max=hi)
             for c, (lo, hi) in zip(quotas.cross, bounds[n_values:], strict=True)]
    return Quotas(values, cross, seats, "reduced for the dropouts")


def _draw_completion(published: PublishedLottery, data: bytes, inputs: Inputs, seed: bytes,
                     unavailable: set[str]) -> list[str]:
    """The new lottery drawn like a panel (docs/draw-spec.md §5, §7), among people still
    available."""
    digest = hashlib.sha256(data).hexdigest()
    index = drawing.panel_index(published.weights, published.denominator, seed, digest)
    full_index = {k: s for s, k in enumerate(inputs.strata.keys)}

    def members(s: int) -> list[str]:
        return [i for i in inputs.members(full_index[published.keys[s]]) if i not in unavailable]

    return [i for _, i in drawing.draw_people(published.panels[index].tolist(), members, seed,
                                              digest)]


def given_completion(data: bytes, inputs: Inputs, plan: ReplacePlan, *,
                     algorithm: str | None = None, gamma: float | None = None
                     ) -> tuple[PublishedLottery, bytes]:
    """A committed new lottery (`replace --prepare`), checked against what the replacement
    needs: this pool, the people still available, the reduced quotas, every panel within them,
    stated probabilities exactly those of the weights. (Whether it is the *fairest* lottery is
    checked by `verify --recompute`.)"""
    published = read_lottery(data, "lottery.json")
    (strata, quotas), seats = plan.new_lottery(), plan.open_seats
    problems = []
    if published.algorithm not in LOTTERY_ALGORITHMS:
        problems.append(f"its algorithm {published.algorithm!r} is none of "
                        f"{', '.join(LOTTERY_ALGORITHMS)}")
    elif algorithm is not None and published.algorithm != algorithm:
        problems.append(f"its algorithm is {published.algorithm}, --algorithm says {algorithm}")
    if gamma is not None and published.gamma != gamma:
        problems.append(f"its gamma is {published.gamma}, --gamma says {gamma}")
    if published.panel_size != seats:
        problems.append(f"it is for {published.panel_size} seats, not the {seats} open seats")
    if published.quotas_sha256 != plan.lottery_sha256_of_quotas():
        problems.append("it is not for the reduced quotas of this replacement")
    if published.pool_sha256 != inputs.fingerprint.sha256:
        problems.append("it is not for this pool")
    if published.household_seed != inputs.household_seed:
        problems.append("its household seed is not the pool's")
    if (published.keys != [tuple(k) for k in strata.keys]
            or published.counts != [int(n) for n in strata.counts.tolist()]):
        problems.append("its strata are not the people still available")
    problems += lottery_problems(published, quota_system(strata, quotas, seats))
    if problems:
        raise InputError([f"lottery.json: {p}" for p in problems])
    return published, data


def replace_declined(bundle: Path, pool_path: Path, declined_path: Path, out_dir: Path, *,
                     seed: str | None = None, prepare: bool = False,
                     lottery_dir: Path | None = None, quotas_path: Path | None = None,
                     force: bool = False, id_column: str | None = None, encoding: str = "utf-8",
                     time_limit: float | None = None, accept_gap: float | None = None,
                     algorithm: str | None = None, gamma: float | None = None,
                     log: Callable[[str], None] | None = None) -> Prepared | ReplaceResult:
    """`sortition replace`, from files: with `prepare`, step 1 (`prepare_replace`: the new
    lottery the open seats need, written to `out_dir`, its hash to publish); with `seed`, step 2
    (`run_replace`: the new bundle in `out_dir`, drawn from the lottery of `lottery_dir` when
    one was prepared). Exactly one of the two; options are checked before the pool is loaded.
    `time_limit` / `accept_gap`: as for `lottery`, over the whole replacement.
    """
    check_seconds("--time-limit", time_limit)
    check_gamma_option(algorithm, gamma, reused=lottery_dir is not None)
    say = log or (lambda _msg: None)
    if prepare == (seed is not None):
        raise InputError("give either --prepare (step 1: the new lottery) or --seed "
                         "(step 2: the draw), not both" if prepare else
                         "--seed: missing; give the public seed announced for this "
                         "replacement (or --prepare first, to commit the new lottery)")
    if prepare and lottery_dir is not None:
        raise InputError("--lottery goes with --seed (step 2), not with --prepare")
    if seed is not None:
        seed_option("--seed", seed, "the replacement")
    declined = read_declined(declined_path)
    if not prepare:
        check_replace_target(out_dir, bundle, pool_path=pool_path, quotas_path=quotas_path,
                             declined_path=declined_path, force=force)
    completion = None
    if lottery_dir is not None:
        completion, _ = read_lottery_bytes(lottery_dir)
    say("loading the pool…")
    inputs = bundle_inputs(bundle, pool_path, quotas_path, id_column=id_column,
                           encoding=encoding)
    if prepare:
        say("computing the new lottery…")
        return prepare_replace(bundle, inputs, declined, out_dir,
                               declined_source=str(declined_path), time_limit=time_limit,
                               accept_gap=accept_gap, algorithm=algorithm, gamma=gamma)
    say("replacing…")
    return run_replace(bundle, inputs, declined, seed or "", out_dir, force=force,
                       declined_source=str(declined_path), completion=completion,
                       time_limit=time_limit, accept_gap=accept_gap, algorithm=algorithm,
                       gamma=gamma)
