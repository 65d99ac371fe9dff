"""The `draw` command's work: the lottery (computed or reused), the panel drawn with the public
seed, and the **public bundle** written — `lottery.json`, `panel.csv`, `probabilities.csv`,
`audit.json`, `report.html` and a copy of `verify.html`.

Only ids and quota features reach the bundle; the operator's private export (`--private-out`,
with the pool's contact columns) and the replacement lists are written elsewhere. The bundle is
assembled in a temporary folder beside the target and swapped into place
(`outputs.write_folder`), so a crash or Ctrl-C never leaves half a bundle, and `--force`
replaces only a bundle this tool wrote (`outputs.check_folder`).

`publish_lottery` and `draw_bundle` are the `lottery` and `draw` commands from files: the
options checked before the pool is loaded, then the work above.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.audits import audit_bytes, audit_path_for, versions
from ..core.errors import InputError
from ..core.fileio import write_csv_table
from ..core.limits import MAX_PANELS, MAX_REPLACEMENTS, check_count, check_seconds
from ..core.outputs import atomic_path, check_file, check_folder, write_folder
from ..core.textopts import check_text, seed_option
from ..core.xlsx import write_xlsx_table
from ..draw.panel import Drawn, draw_panel
from ..draw.replacements import draw_replacements, known_values
from ..inputs.households import of_representatives
from ..inputs.load import Inputs, load_inputs
from ..inputs.pool import Pool, read_rows
from ..inputs.rates import load_rates
from ..lottery.compute import Lottery, check_gamma_option, check_gap, probability_classes_csv
from ..lottery.publish import PublishedLottery, attach_tickets, read_lottery
from ..lottery.run import (
    check_lottery_target,
    check_reuse,
    read_lottery_bytes,
    run_lottery,
    write_lottery,
)
from .audit import (
    audit_document,
    drawn_inputs,
    lists_record,
    panel_csv,
    person_probabilities,
    quota_attainment,
)
from .report import legacy_comparison, render_report, report_context
from .verifier import NAME, page_bytes


@dataclass
class DrawResult:
    """What `run_draw` and `draw_bundle` did: the bundle written, its lottery and hash, the
    panel drawn, the audit and the files (and where the private export and lists went)."""

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
             accept_gap: float | None = None, relax: bool = False,
             gamma: float | None = None, dropout_rates: Path | None = None) -> DrawResult:
    """Compute or reuse the lottery, draw with the seed, and write the public bundle (and,
    with `replacements`, the lists to `replacements_out`: see `lists_path`).

    `relax`: the lottery is over the quotas relaxed as `check` proposes (`run_lottery`), or a
    reused relaxed lottery is accepted when its relaxation is that one (`check_reuse`); the
    draw, the lists and the quota attainment then use the relaxed bounds. `gamma`: Goldilocks'
    parameter. `dropout_rates`: the lists are dropout-aware, from this CSV feature,value,rate
    (docs/draw-spec.md section 12.5)."""
    seed_b = _seed(seed)
    check_options(panels=panels, replacements=replacements, time_limit=time_limit, title=title,
                  dropout_rates=dropout_rates)
    out_dir = Path(out_dir)
    given = draw_inputs(inputs.whole.path, inputs.quotas_path, lottery_dir, dropout_rates)
    lists_out = lists_path(out_dir, replacements, replacements_out)
    check_draw_outputs(out_dir, private_out, inputs=given, force=force, lists_out=lists_out)
    rates = None if dropout_rates is None else load_rates(dropout_rates, known_values(inputs))
    if lottery_dir is not None:
        lottery_bytes, source = read_lottery_bytes(lottery_dir)
        published = read_lottery(lottery_bytes, source)
        check_reuse(published, inputs, source, algorithm=algorithm, panels=panels,
                    relax=relax, time_limit=time_limit, gamma=gamma)
        attach_tickets(published, inputs.all_members())
    else:
        published = run_lottery(inputs, algorithm or "leximin", panels=panels,
                                time_limit=time_limit, log=log, computed=computed,
                                accept_gap=accept_gap, relax=relax,
                                gamma=gamma)
        lottery_bytes = published.to_bytes()
    drawn_under = drawn_inputs(inputs, published)
    lottery_hash = hashlib.sha256(lottery_bytes).hexdigest()
    t = time.perf_counter()
    drawn = draw_panel(published, lottery_hash, seed_b, inputs.members, ticket)
    inputs.timings["draw"] = time.perf_counter() - t
    probabilities = person_probabilities(published, inputs)
    files = {"lottery.json": lottery_bytes,
             "panel.csv": panel_csv(drawn, published),
             "probabilities.csv": probability_classes_csv(probabilities)}
    attainment = quota_attainment(published, drawn_under.quotas, drawn)
    lists = record = None
    if replacements is not None:
        lists = draw_replacements(drawn_under, drawn, replacements, seed_b, lottery_hash, rates)
        record = lists_record(lists, replacements, rates)
    audit = audit_document(inputs, published, lottery_hash, seed, drawn, attainment,
                           probabilities, files, ticket is not None)
    if record is not None:
        audit["replacements"] = record

    eligible = of_representatives(inputs.pool, probabilities)  # household representatives
    legacy = (legacy_comparison(drawn_under, eligible, legacy_runs, legacy_estimate)
              if legacy_runs else None)
    audit["run"] = {"versions": versions()}  # timings go to the operator's screen only
    html = render_report(report_context(drawn_under, published, audit, drawn, eligible,
                                        title=title, legacy=legacy, out_dir=out_dir))
    files["audit.json"] = audit_bytes(audit)
    files["report.html"] = html.encode("utf-8")
    # not in audit.json's `files`: the packaged page is the authoritative one, and
    # `sortition verify` checks this copy is byte-identical to it

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


@dataclass
class LotteryRun:
    """The lottery published by `publish_lottery`: where, what, and the hash to publish."""

    path: Path  # DIR/lottery.json
    published: PublishedLottery
    sha256: str
    inputs: Inputs


def _load(pool_path: Path, quotas_path: Path, size: int | None, *, id_column: str | None,
          encoding: str, household_column: str | None, household_seed: str | None,
          id_is_public: bool, log: Callable[[str], None] | None,
          notes: Callable[[list[str]], None] | None) -> Inputs:
    if log is not None:
        log("loading the pool and fingerprinting it…")
    inputs = load_inputs(pool_path, quotas_path, size, id_column=id_column, encoding=encoding,
                         household_column=household_column, household_seed=household_seed,
                         id_is_public=id_is_public)
    if notes is not None:
        notes(inputs.pool.notes)
    return inputs


def publish_lottery(pool_path: Path, quotas_path: Path, out_dir: Path, size: int | None = None,
                    algorithm: str | None = None, *, panels: int | None = None,
                    id_column: str | None = None, encoding: str = "utf-8",
                    time_limit: float | None = None, accept_gap: float | None = None,
                    household_column: str | None = None, household_seed: str | None = None,
                    id_is_public: bool = False, relax: bool = False,
                    gamma: float | None = None, log: Callable[[str], None] | None = None,
                    notes: Callable[[list[str]], None] | None = None) -> LotteryRun:
    """`sortition lottery`: compute the fair lottery (`run_lottery`) and write DIR/lottery.json
    with its `.sha256` (`write_lottery`); the hash is to be published before the seed exists.

    `log` follows the progress; `notes` receives the pool's notes once it is loaded.
    """
    check_options(panels=panels, time_limit=time_limit)
    check_gap(accept_gap)
    check_gamma_option(algorithm, gamma)
    given = draw_inputs(pool_path, quotas_path)
    target = check_lottery_target(out_dir, inputs=given)
    inputs = _load(pool_path, quotas_path, size, id_column=id_column, encoding=encoding,
                   household_column=household_column, household_seed=household_seed,
                   id_is_public=id_is_public, log=log, notes=notes)
    algorithm = algorithm or "leximin"
    if log is not None:
        log(f"{algorithm} lottery over {len(inputs.strata):,} strata…")
    published = run_lottery(inputs, algorithm, panels=panels, time_limit=time_limit,
                            accept_gap=accept_gap, log=log, relax=relax, gamma=gamma)
    digest = write_lottery(out_dir, published, inputs=given)
    return LotteryRun(target, published, digest, inputs)


def draw_bundle(pool_path: Path, quotas_path: Path, *, seed: str, out_dir: Path,
                size: int | None = None, algorithm: str | None = None,
                panels: int | None = None, lottery_dir: Path | None = None,
                ticket: int | None = None, private_out: Path | None = None,
                force: bool = False, title: str | None = None, id_column: str | None = None,
                id_is_public: bool = False, encoding: str = "utf-8",
                time_limit: float | None = None, accept_gap: float | None = None,
                household_column: str | None = None, household_seed: str | None = None,
                replacements: int | None = None, replacements_out: Path | None = None,
                relax: bool = False, gamma: float | None = None,
                dropout_rates: Path | None = None, log: Callable[[str], None] | None = None,
                notes: Callable[[list[str]], None] | None = None) -> DrawResult:
    """`sortition draw`: load the pool and quotas, then `run_draw` (the lottery computed, or
    read from `lottery_dir`; the panel drawn with `seed`; the public bundle written to
    `out_dir`). Every option and output is checked before the pool is loaded.

    `log` follows the progress; `notes` receives the pool's notes once it is loaded.
    """
    check_options(seed=seed, panels=panels, replacements=replacements, time_limit=time_limit,
                  title=title)
    check_gap(accept_gap)
    check_gamma_option(algorithm, gamma, reused=lottery_dir is not None)
    check_draw_outputs(out_dir, private_out, force=force,
                       inputs=draw_inputs(pool_path, quotas_path, lottery_dir),
                       lists_out=lists_path(out_dir, replacements, replacements_out))
    inputs = _load(pool_path, quotas_path, size, id_column=id_column, encoding=encoding,
                   household_column=household_column, household_seed=household_seed,
                   id_is_public=id_is_public, log=log, notes=notes)
    if log is not None:
        log("drawing…")
    return run_draw(inputs, seed=seed, out_dir=out_dir, algorithm=algorithm, panels=panels,
                    lottery_dir=lottery_dir, ticket=ticket, private_out=private_out,
                    force=force, time_limit=time_limit, title=title, log=log,
                    replacements=replacements, replacements_out=replacements_out,
                    accept_gap=accept_gap, relax=relax, gamma=gamma,
                    dropout_rates=dropout_rates)


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


def _seed(seed: str) -> bytes:
    return seed_option("--seed", seed, "the draw")


def check_options(*, seed: str | None = None, panels: int | None = None,
                  replacements: int | None = None, time_limit: float | None = None,
                  title: str | None = None, dropout_rates: Path | None = None) -> None:
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
    elif dropout_rates is not None:
        raise InputError(f"--dropout-rates {dropout_rates}: needs --replacements R (the rates "
                         "choose the replacement lists)")
    check_seconds("--time-limit", time_limit)
    check_text("--title", title)


def draw_inputs(pool_path: Path | None, quotas_path: Path | None,
                lottery_dir: Path | None = None,
                dropout_rates: Path | None = None) -> list[Path | None]:
    """Every file a draw reads, none of which it may write over: the pool, its audit beside it
    (the chain), the quotas, a published lottery and the dropout rates."""
    pool_audit = None if pool_path is None else audit_path_for(Path(pool_path))
    return [pool_path, pool_audit, quotas_path, lottery_dir, dropout_rates]


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
            write_xlsx_table(table, tmp, shown=Path(out))
        else:
            write_csv_table(table, tmp)
