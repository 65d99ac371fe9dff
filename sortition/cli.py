"""The `sortition` command line: each command parses its options, makes one library call and
prints the result. No logic here: the checks, the work and the JSON documents are the library's
(`sortition`'s public API); the one error handler (`command`) turns any SortitionError into its
message and exit status.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .core.errors import SolverTimeout, SortitionError
from .core.terminal import json_text, printable

app = typer.Typer(
    name="sortition",
    help=(
        "Stratified sortition engine: draw a citizens' assembly that mirrors the population, "
        "fairly and verifiably.\n\n"
        "Exit status: 0 done; 1 valid input but the job cannot be done (infeasible quotas, "
        "not enough people); 2 unusable input."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)

out = Console()
err = Console(stderr=True)

# Shared option types -------------------------------------------------------------------------

PoolArg = Annotated[Path, typer.Argument(
    help="Pool file: Parquet (.parquet), CSV (UTF-8, with or without BOM, ',' or ';') or a "
         "spreadsheet (pool.xlsx: its first sheet; pool.xlsx#NAME: the sheet NAME; needs "
         "sortition[xlsx]).",
    show_default=False)]
QuotasOpt = Annotated[Path, typer.Option(
    "--quotas", "-q",
    help="Quotas: CSV feature,value,min,max (or category,name,min,max, or the research "
         "category,feature,min,max), the same columns in a .xlsx sheet, or a TOML "
         "specification.",
    show_default=False)]
SizeOpt = Annotated[int | None, typer.Option(
    "--size", "-k", help="Panel size. Required with CSV quotas; overrides a TOML spec's size.",
    show_default=False)]
IdColumnOpt = Annotated[str | None, typer.Option(
    "--id-column",
    help="Column holding the person id \\[default: id]. Without an 'id' column and without this "
         "option, ids are the row numbers from 1.",
    show_default=False)]
IdPublicOpt = Annotated[bool, typer.Option(
    "--id-column-is-public",
    help="Accept an id column named like contact data (email, phone, name, address…) or whose "
         "values look like e-mail addresses or phone numbers: ids are published.")]
EncodingOpt = Annotated[str, typer.Option(
    "--encoding", help="Text encoding of a CSV pool, e.g. cp1252 for files saved by Excel on "
                       "Windows.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Replace an existing output file (never an input of the command, nor the "
                    "current or home folder; see the README, 'What --force may replace').")]

MATCHING_NOTE = (
    "Values are matched exactly and case-sensitively after stripping surrounding whitespace "
    "('Woman' and 'woman' are different values)."
)


def _shown(text: object) -> str:
    """Text from the inputs, safe to print: controls escaped (terminal.printable), markup too."""
    return escape(printable(text))


def _notes(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[dim]note:[/dim] {_shown(line)}", highlight=False)


def _warnings(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[yellow]warning:[/yellow] {_shown(line)}", highlight=False)


def _errors(e: SortitionError) -> None:
    for line in e.problems:
        err.print(f"[red]error:[/red] {_shown(line)}", highlight=False, soft_wrap=True)


def _stopped(e: SolverTimeout, *, as_json: bool, what: str) -> None:
    """At the time limit: the best lottery found and the certified bound on stdout; exit 1."""
    from .lottery.run import timeout_summary

    summary = e.summary if e.summary is not None else timeout_summary(e)
    if as_json:
        print(json_text(summary))
    else:
        err.print(f"[red]stopped:[/red] {_shown(e.problems[0])}", highlight=False,
                  soft_wrap=True)
        if summary["panels"] is not None:
            out.print(f"best lottery found: {summary['panels']:,} panels, smallest probability "
                      f"{summary['min_probability']:.6g}, certified gap {summary['gap']:.3g} "
                      f"(bound {e.bound if e.bound is None else f'{e.bound:.6g}'}); {what} "
                      "(--accept-gap G accepts a gap up to G)", highlight=False)
        else:
            out.print(f"no lottery found yet; {what}", highlight=False)
    raise typer.Exit(1)


def command(name: str | None = None, *, stopped: str | None = None,
            **options: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """`app.command`, with the command line's one error handler.

    A SortitionError raised by the command ends in its message, one `error:` line per problem,
    and its exit status (`SortitionError.exit_code`: 2 unusable input, 1 valid input but the
    job cannot be done); never a traceback. With `stopped` (what the command leaves undone,
    e.g. "nothing published"), a SolverTimeout prints the best lottery found and the certified
    bound instead (with --json: an object with status "time_limit").
    """

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def handled(*args: Any, **params: Any) -> None:
            try:
                fn(*args, **params)
            except SortitionError as e:
                if stopped is not None and isinstance(e, SolverTimeout):
                    _stopped(e, as_json=bool(params.get("as_json", False)), what=stopped)
                _errors(e)
                raise typer.Exit(e.exit_code) from None

        app.command(name, **options)(handled)
        return handled

    return register


def _progress(status: Any) -> Callable[[str], None]:
    """A library's progress messages, shown on the spinner."""
    return lambda msg: status.update(_shown(msg))


# Commands ------------------------------------------------------------------------------------


@command()
def synth(
    rows: Annotated[int, typer.Option("--rows", "-n", help="Number of people to generate.")]
    = 1_300_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed (same seed, same file).")]
    = 2020,
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="Output file: .parquet or .csv (created 0600: it has contact "
                            "columns).", show_default=False)] = ...,  # type: ignore[assignment]
    force: ForceOpt = False,
    extended: Annotated[bool, typer.Option(
        "--extended", help="Add profession (8 Insee groups), habitat (urban / peri-urban / "
                           "rural) and opinion columns, for pools where nearly everyone is a "
                           "stratum of their own. Their shares are ILLUSTRATIVE, not census "
                           "figures; quotas: quotas/occitanie-2020-extended.toml.")] = False,
) -> None:
    """Generate a synthetic Occitanie contact pool from the built-in census margins.

    Older people, graduates and urban residents are over-represented, as in real pools; the
    file also holds households and fake contact columns (name, phone, email, address).

    Example: sortition synth --rows 20000 --seed 7 --out pool.parquet
    """
    from .inputs.synth import write_synthetic_pool

    with err.status("generating the pool…"):
        table = write_synthetic_pool(out_path, rows, seed, extended=extended, force=force)
    out.print(f"wrote {table.num_rows:,} people to {out_path}")


@command()
def quotas(
    spec: Annotated[Path, typer.Argument(help="Quota specification (.toml) or quota CSV.",
                                         show_default=False)],
    size: SizeOpt = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", "-o",
        help="Write the resolved quotas: .csv (feature,value,min,max) or .toml (explicit "
             "bounds; required when there are cross quotas).", show_default=False)] = None,
    as_json: JsonOpt = False,
    force: ForceOpt = False,
) -> None:
    """Resolve a quota specification for a panel size and show it as a table.

    Shares or population counts are apportioned to integer targets that sum exactly to the
    panel size (largest remainder by default), then widened by each feature's tolerance.

    Example: sortition quotas quotas/occitanie-2020.toml --size 100 --out quotas.csv
    """
    from .inputs.quotas import resolve_quotas
    from .operations.display import quotas_table

    resolved = resolve_quotas(spec, size, out=out_path, force=force)
    _notes(resolved.notes)
    if as_json:
        print(json_text(resolved.to_dict()))
    else:
        out.print(quotas_table(resolved, title=f"Quotas for a panel of {resolved.size}"))
    if out_path is not None:
        err.print(f"wrote {_shown(out_path)}")


@command(help=f"""Check that the quotas can be met by the pool.

First the cheap checks (enough people of each value for each minimum?), then the exact question
with an OR-Tools integer program: is there at least one panel of the given size meeting every
quota? When there is none, explain why and propose the smallest change to the quotas that makes
them feasible. {MATCHING_NOTE}

Exit 0 when feasible, 1 when infeasible, 2 on unusable input.

Example: sortition check pool.parquet --quotas quotas/occitanie-2020.toml --size 100
""")
def check(
    pool_path: PoolArg,
    quotas_path: QuotasOpt,
    size: SizeOpt = None,
    id_column: IdColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    as_json: JsonOpt = False,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Solver time limit, seconds.")]
    = 60.0,
    report_path: Annotated[Path | None, typer.Option(
        "--report", help="Also write the JSON report to this file.", show_default=False)] = None,
    household_column: HouseholdOpt = None,
    household_seed: HouseholdSeedOpt = None,
    force: ForceOpt = False,
) -> None:
    from .lottery.run import run_check
    from .operations.display import check_tables

    checked = run_check(pool_path, quotas_path, size, id_column=id_column, encoding=encoding,
                        time_limit=time_limit, household_column=household_column,
                        household_seed=household_seed, report_path=report_path, force=force)
    q, pool, strata, report = checked.quotas, checked.pool, checked.strata, checked.report
    _notes(q.notes if not as_json else [])
    _notes(pool.notes)
    _warnings(report.warnings)
    if as_json:
        print(json_text(checked.to_dict()))
    else:
        for table in check_tables(strata, q, report):
            out.print(table)
        if report.feasible:
            out.print(f"[green]feasible[/green]: a panel of {q.size} meeting every quota exists "
                      f"({len(pool):,} people, {len(strata):,} strata).")
        else:
            for reason in report.reasons:
                err.print(f"[red]infeasible:[/red] {_shown(reason)}", highlight=False,
                          soft_wrap=True)
    if not report.feasible:
        raise typer.Exit(1)


@command(help=f"""Compute each person's selection probability under a fair lottery.

The default algorithm, LEXIMIN, maximises the smallest probability anyone has, then the second
smallest, and so on (Flanigan et al., Nature 2021), over lotteries of panels that meet every
quota. maximin stops after the first stage; nash maximises the sum of the logarithms of the
probabilities; legacy is the greedy one-at-a-time procedure used before 2021, for comparison:
its probabilities are estimated from --runs seeded runs. People with the same quota features
form a stratum and get the same probability. {MATCHING_NOTE}

Writes `id,probability` for every person (sorted by id); --strata-out adds a per-stratum table.

Example: sortition probabilities pool.parquet --quotas quotas/occitanie-2020.toml --out probs.csv
""", stopped="nothing written")
def probabilities(
    pool_path: PoolArg,
    quotas_path: QuotasOpt,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output CSV: id,probability.",
                                           show_default=False)],
    size: SizeOpt = None,
    algorithm: Annotated[str, typer.Option(
        "--algorithm", "-a", help="leximin, maximin, nash, goldilocks, diversimax or "
                                  "legacy.")] = "leximin",
    gamma: Annotated[float | None, typer.Option(
        "--gamma", help="Goldilocks' γ: the weight of the low-probability term (default 1).",
        show_default=False)] = None,
    id_column: IdColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    as_json: JsonOpt = False,
    strata_out: Annotated[Path | None, typer.Option(
        "--strata-out", help="Also write one row per stratum (features, people, expected "
                             "seats, probability).", show_default=False)] = None,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", help="Stop after this many seconds (exit 1), reporting the best "
                             "lottery found and the certified bound (with --json: an object "
                             "with status \"time_limit\").", show_default=False)] = None,
    accept_gap: AcceptGapOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the legacy runs.")] = 0,
    runs: Annotated[int, typer.Option("--runs", help="Number of legacy runs.")] = 1000,
    household_column: HouseholdOpt = None,
    household_seed: HouseholdSeedOpt = None,
    force: ForceOpt = False,
    relax: RelaxOpt = False,
) -> None:
    from .lottery.run import run_probabilities
    from .operations.display import probabilities_table

    with err.status("starting…") as status:
        computed = run_probabilities(pool_path, quotas_path, out_path, size, algorithm,
                                     id_column=id_column, encoding=encoding,
                                     strata_out=strata_out, time_limit=time_limit,
                                     accept_gap=accept_gap, seed=seed, runs=runs,
                                     household_column=household_column,
                                     household_seed=household_seed, force=force, relax=relax,
                                     gamma=gamma,
                                     log=_progress(status))
    _notes(computed.pool.notes)
    summary = computed.summary()
    if as_json:
        print(json_text(summary))
    else:
        out.print(probabilities_table(summary))
        err.print(f"wrote {_shown(out_path)}")


AlgorithmOpt = Annotated[str | None, typer.Option(
    "--algorithm", "-a", help="leximin (default), maximin, nash, goldilocks or diversimax. "
                              "With --lottery: must match the lottery's.", show_default=False)]
GammaOpt = Annotated[float | None, typer.Option(
    "--gamma", help="Goldilocks' γ: the weight of the low-probability term (default 1). With "
                    "--lottery: must match the lottery's.", show_default=False)]
PanelsOpt = Annotated[int | None, typer.Option(
    "--panels", help="Transparent lottery: round to this many equally likely panels of people "
                     "(e.g. 1000), so a number drawn with balls or dice picks the panel. Needs "
                     "panels × size ≥ pool size.", show_default=False)]
HouseholdOpt = Annotated[str | None, typer.Option(
    "--household-column", help="Column naming each person's household: at most one person per "
                               "household on a panel (one representative per household is "
                               "drawn first, with --household-seed).", show_default=False)]
HouseholdSeedOpt = Annotated[str | None, typer.Option(
    "--household-seed", help="Public text announced before the lottery is computed: it draws "
                             "each household's representative (see docs/draw-spec.md).",
    show_default=False)]
RelaxOpt = Annotated[bool, typer.Option(
    "--relax", help="When the quotas cannot all be met, use the smallest relaxation within "
                    "their flex bounds (min_flex/max_flex), the one `check` proposes; it is "
                    "recorded in lottery.json and shown in the bundle. With --lottery: required "
                    "to draw from a relaxed lottery, whose relaxation must be that one.")]

TimeLimitOpt = Annotated[float | None, typer.Option(
    "--time-limit", help="Stop the lottery computation after this many seconds (exit 1, the "
                         "best lottery found and the certified bound printed, nothing "
                         "published).", show_default=False)]
AcceptGapOpt = Annotated[float | None, typer.Option(
    "--accept-gap", help="With --time-limit: accept (exit 0, publish) the best lottery found "
                         "at the limit when its certified gap is at most this probability; "
                         "the gap is recorded.", show_default=False)]



@command("public-pool")
def public_pool(
    pool_path: PoolArg,
    quotas_path: QuotasOpt,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output file (.parquet or .csv).",
                                           show_default=False)],
    size: SizeOpt = None,
    id_column: IdColumnOpt = None,
    id_is_public: IdPublicOpt = False,
    encoding: EncodingOpt = "utf-8",
    household_column: HouseholdOpt = None,
    force: ForceOpt = False,
) -> None:
    """Write the pool's public extract: ids and quota features only, sorted by id.

    With --household-column, an opaque household number is added (never the column's own
    values, which are often addresses).

    This is what the garants receive: `sortition verify` gets the same pool fingerprint from it
    as from the full pool, without any personal data.

    Example: sortition public-pool pool.parquet -q quotas.csv -k 100 -o public-pool.parquet
    """
    from .inputs.load import write_public_pool

    written = write_public_pool(pool_path, quotas_path, out_path, size=size,
                                id_column=id_column, id_is_public=id_is_public,
                                encoding=encoding, household_column=household_column,
                                force=force)
    _notes(written.pool.notes)
    out.print(f"wrote {_shown(out_path)}: {len(written.pool):,} people, columns id, "
              f"{_shown(', '.join(sorted(written.quotas.all_features)))}")
    out.print(f"pool fingerprint: [bold]{written.fingerprint.sha256}[/bold]", highlight=False)


@command(stopped="nothing published")
def lottery(
    pool_path: PoolArg,
    quotas_path: QuotasOpt,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for lottery.json.",
                                          show_default=False)],
    size: SizeOpt = None,
    algorithm: AlgorithmOpt = None,
    gamma: GammaOpt = None,
    panels: PanelsOpt = None,
    id_column: IdColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    time_limit: TimeLimitOpt = None,
    accept_gap: AcceptGapOpt = None,
    household_column: HouseholdOpt = None,
    household_seed: HouseholdSeedOpt = None,
    id_is_public: IdPublicOpt = False,
    relax: RelaxOpt = False,
) -> None:
    """Compute the fair lottery and write DIR/lottery.json; print the hash to publish.

    Publish the hash *before* the seed exists (commit, then reveal): then nobody can have chosen
    the lottery knowing the seed. `sortition draw --lottery DIR` draws from it later.

    Example: sortition lottery pool.parquet --quotas quotas/occitanie-2020.toml --out lottery/
    """
    from .bundle.write import publish_lottery

    with err.status("starting…") as status:
        written = publish_lottery(pool_path, quotas_path, out_dir, size, algorithm,
                                  panels=panels, id_column=id_column, encoding=encoding,
                                  time_limit=time_limit, accept_gap=accept_gap,
                                  household_column=household_column,
                                  household_seed=household_seed, id_is_public=id_is_public,
                                  relax=relax, gamma=gamma,
                                  log=_progress(status), notes=_notes)
    published = written.published
    kind = (f"transparent, {published.n_tickets or 0:,} equally likely panels"
            if published.transparent else f"{len(published.weights):,} panels")
    out.print(f"wrote {_shown(written.path)} ({published.algorithm}, {kind}, certified gap "
              f"{published.gap:.1e})")
    _relaxed(published)
    out.print(f"lottery hash (SHA-256, publish it before the seed): "
              f"[bold]{written.sha256}[/bold]", highlight=False)


def _relaxed(published: Any) -> None:
    """Say which quotas a lottery relaxes (recorded in it, shown to the garants)."""
    from .lottery.check import relaxation_label

    for r in published.relaxation:
        _warnings([f"relaxed quota (recorded in lottery.json): {relaxation_label(r)}"])


@command(stopped="nothing published")
def draw(
    pool_path: PoolArg,
    quotas_path: QuotasOpt,
    seed: Annotated[str, typer.Option(
        "--seed", help="The public seed: any text (lottery results, a beacon value, dice), used "
                       "as its exact UTF-8 bytes and recorded verbatim.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the public bundle.",
                                          show_default=False)],
    size: SizeOpt = None,
    algorithm: AlgorithmOpt = None,
    gamma: GammaOpt = None,
    panels: PanelsOpt = None,
    lottery_dir: Annotated[Path | None, typer.Option(
        "--lottery", help="Draw from this published lottery (a folder with lottery.json, or "
                          "the file) instead of computing one.", show_default=False)] = None,
    ticket: Annotated[int | None, typer.Option(
        "--ticket", help="Draw panel N (1-based), e.g. a number drawn with balls, instead of "
                         "deriving it from the seed.", show_default=False)] = None,
    private_out: Annotated[Path | None, typer.Option(
        "--private-out", help="The operator's private export: the panel with every column of "
                              "the pool (names, phones…), .csv, .parquet or .xlsx. Outside the "
                              "bundle.",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing bundle folder that this tool wrote (and an "
                        "existing --private-out file); never an input, a folder holding one, "
                        "the current or home folder.")] = False,
    title: Annotated[str | None, typer.Option("--title", help="Title of report.html.",
                                              show_default=False)] = None,
    id_column: IdColumnOpt = None,
    id_is_public: IdPublicOpt = False,
    encoding: EncodingOpt = "utf-8",
    time_limit: TimeLimitOpt = None,
    accept_gap: AcceptGapOpt = None,
    household_column: HouseholdOpt = None,
    household_seed: HouseholdSeedOpt = None,
    replacements: Annotated[int | None, typer.Option(
        "--replacements", help="Also list R ordered replacements per member "
                               "(replacements.csv): swapping a member for any one of them "
                               "keeps every quota.", show_default=False)] = None,
    replacements_out: Annotated[Path | None, typer.Option(
        "--replacements-out", help="Where the replacement lists go (not public: only their "
                                   "hash is in the bundle). Default: DIR.replacements.csv "
                                   "beside the bundle folder.", show_default=False)] = None,
    relax: RelaxOpt = False,
    dropout_rates: Annotated[Path | None, typer.Option(
        "--dropout-rates", help="CSV feature,value,rate (as simulate --rates): choose the "
                                "replacement lists to keep every quota despite dropouts "
                                "(docs/draw-spec.md 12.5); the rates go in audit.json. "
                                "Publish the file before the seed: garants anchor the lists "
                                "with verify --expect-dropout-rates.",
        show_default=False)] = None,
) -> None:
    """Draw the panel with a public seed and write the public audit bundle.

    The bundle (DIR) holds only publishable files: lottery.json, panel.csv (id and quota
    features, in draw order), probabilities.csv (each probability and how many people have
    it), audit.json (fingerprints, parameters, seed, draw, quota attainment) and report.html.
    The replacement lists name people off the panel: they go beside it (--replacements-out),
    for the operator and the garants. The draw is specified in docs/draw-spec.md; `sortition
    verify` re-derives it.

    Example: sortition draw pool.parquet -q quotas.csv -k 100 --seed "loto: 4 17 22 38" -o bundle/
    """
    from .bundle.write import draw_bundle
    from .operations.display import draw_summary

    with err.status("starting…") as status:
        result = draw_bundle(pool_path, quotas_path, seed=seed, out_dir=out_dir, size=size,
                             algorithm=algorithm, panels=panels, lottery_dir=lottery_dir,
                             ticket=ticket, private_out=private_out, force=force, title=title,
                             id_column=id_column, id_is_public=id_is_public,
                             encoding=encoding, time_limit=time_limit, accept_gap=accept_gap,
                             household_column=household_column,
                             household_seed=household_seed, replacements=replacements,
                             replacements_out=replacements_out, relax=relax, gamma=gamma,
                             dropout_rates=dropout_rates, log=_progress(status), notes=_notes)

    out.print(draw_summary(result))
    _relaxed(result.published)
    short = result.audit.get("replacements", {}).get("shortfall", {})
    if short:
        _warnings([f"{len(short)} member(s) have fewer than {replacements} replacements "
                   f"({sum(short.values())} missing in all; recorded in audit.json)"])
    out.print(f"lottery hash (SHA-256 of lottery.json): [bold]{result.lottery_hash}[/bold]",
              highlight=False, soft_wrap=True)
    rates = "" if dropout_rates is None else f" --expect-dropout-rates {_shown(dropout_rates)}"
    out.print(f"verify with: sortition verify {_shown(out_dir)} --pool POOL "
              f"--expect-lottery-hash {result.lottery_hash}{rates}", highlight=False,
              soft_wrap=True)


@command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="The public bundle folder written by `draw`.",
                                           show_default=False)],
    pool_path: Annotated[Path, typer.Option(
        "--pool", help="The pool: the full file or its public extract (`public-pool`).",
        show_default=False)],
    quotas_path: Annotated[Path | None, typer.Option(
        "--quotas", "-q", help="Check these quotas against the recorded ones (by default the "
                               "quotas recorded in audit.json are used).",
        show_default=False)] = None,
    expect_lottery_hash: Annotated[list[str] | None, typer.Option(
        "--expect-lottery-hash", help="A lottery hash published before its seed existed. "
                                      "Repeat it for a replacement chain: the first lottery "
                                      "and each new lottery of `replace --prepare`.",
        show_default=False)] = None,
    expect_seed: Annotated[list[str] | None, typer.Option(
        "--expect-seed", help="A seed announced publicly. Repeat it for a replacement chain "
                              "(one per round).", show_default=False)] = None,
    expect_ticket: Annotated[int | None, typer.Option(
        "--expect-ticket", help="The ticket drawn in public, when the operator gave the panel "
                                "number (`draw --ticket`).", show_default=False)] = None,
    expect_dropout_rates: Annotated[Path | None, typer.Option(
        "--expect-dropout-rates", help="The dropout rates file published beforehand, when the "
                                       "replacement lists are dropout-aware (`draw "
                                       "--dropout-rates`): the rates recorded in audit.json "
                                       "must be this file's, byte for byte.",
        show_default=False)] = None,
    unanchored_ok: Annotated[bool, typer.Option(
        "--unanchored-ok", help="Exit 0 for a consistent bundle even when no published "
                                "hash, seed, ticket or rates file was given (the verdict "
                                "still says the draw is not anchored).")] = False,
    recompute: Annotated[bool, typer.Option(
        "--recompute", help="Also re-solve the lottery and compare (marginals within 1e-6 for "
                            "LEXIMIN and Nash, the objective for maximin).")] = False,
    id_column: IdColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    as_json: JsonOpt = False,
    base_path: Annotated[Path | None, typer.Option(
        "--base", help="The contact base the call list was drawn from: also re-derive the call "
                       "list (when the pool's audit and the call list's audit sit beside the "
                       "pool).", show_default=False)] = None,
    replacements_path: Annotated[Path | None, typer.Option(
        "--replacements", help="The replacement lists (garant material, not in the bundle): "
                               "also check this file against the hash in audit.json.",
        show_default=False)] = None,
) -> None:
    """Check a public bundle: fingerprints, lottery, the draw from the seed, every file.

    A consistent bundle proves the draw honest only when it is *anchored*: its lottery hash
    (or hashes, for a replacement chain), seed(s), any operator-given ticket and any dropout
    rates match what was published beforehand — give them with --expect-lottery-hash,
    --expect-seed, --expect-ticket and --expect-dropout-rates. Without them everything else is
    still checked, but the verdict says the draw is not anchored.

    Exit 0: verified and anchored (or --unanchored-ok). Exit 1: a difference (listed: file,
    field or stratum, expected vs found), or not anchored.
    Exit 2: bad options, an unreadable input, or a malformed or hostile bundle (one line naming
    the file and field) — from verify, 2 also means "not verified". The bundle is read as
    hostile input: regular files only, by plain names, with size caps and strict JSON
    (docs/bundle-format.md, section 13.4).

    Example: sortition verify bundle/ --pool public-pool.parquet --expect-lottery-hash HASH
    --expect-seed "loto: 4 17 22 38"
    """
    from .operations.verify import verify_bundle

    with err.status("verifying…") as status:
        result = verify_bundle(bundle, pool_path, quotas_path=quotas_path,
                               expect_lottery_hash=expect_lottery_hash,
                               expect_seed=expect_seed, expect_ticket=expect_ticket,
                               recompute=recompute, id_column=id_column, encoding=encoding,
                               log=_progress(status), base_path=base_path,
                               replacements_path=replacements_path,
                               expect_dropout_rates=expect_dropout_rates)
    if as_json:
        print(json_text(result.to_dict()))
    else:
        for line in result.checked:
            out.print(f"[green]✓[/green] {_shown(line)}", highlight=False)
        for line in result.differences:
            out.print(f"[red]✗[/red] {_shown(line)}", highlight=False, soft_wrap=True)
        for line in result.anchors.missing if result.ok else []:
            out.print(f"[yellow]?[/yellow] not anchored: {_shown(line)}", highlight=False,
                      soft_wrap=True)
        if not result.ok:
            out.print(f"[bold red]NOT verified[/bold red]: {len(result.differences)} "
                      f"difference(s)", highlight=False)
        elif result.anchored:
            out.print(f"[bold green]verified[/bold green]: {_shown(bundle)} — "
                      f"{len(result.checked)} checks passed; anchored: every lottery hash, "
                      "seed, ticket and rates file is the one published beforehand",
                      highlight=False)
        else:
            out.print(f"[bold yellow]consistent but NOT anchored[/bold yellow]: "
                      f"{_shown(bundle)} — {len(result.checked)} checks passed, but "
                      "nothing shows that what is marked ? was fixed before the seed was "
                      "known. Give "
                      "the hashes and seeds published beforehand (--expect-lottery-hash, "
                      "--expect-seed, --expect-ticket, --expect-dropout-rates)"
                      + ("; accepted with --unanchored-ok." if unanchored_ok else "."),
                      highlight=False, soft_wrap=True)
    if not result.ok or not (result.anchored or unanchored_ok):
        raise typer.Exit(1)


@command()
def verifier(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Where to write the page "
                                                               "(e.g. verify.html).",
                                           show_default=False)],
    force: ForceOpt = False,
) -> None:
    """Write verify.html: the garants' check of a draw in a browser, without installing anything.

    This packaged page is the authoritative one (its SHA-256, printed here, is also in the
    README); the copy inside a bundle is for convenience, and `sortition verify` checks it is
    byte-identical to this one. Open it from disk in a current browser, give it the bundle's
    files and the public pool extract (CSV), type the seed and the lottery hash announced.

    Example: sortition verifier -o verify.html
    """
    from .bundle.verifier import write_page

    digest = write_page(out_path, force=force)
    out.print(f"wrote {_shown(out_path)}")
    out.print(f"SHA-256: [bold]{digest}[/bold]", highlight=False)


@command(stopped="nothing written")
def replace(
    bundle: Annotated[Path, typer.Argument(help="The public bundle of the current panel (from "
                                                "`draw` or an earlier `replace`).",
                                           show_default=False)],
    pool_path: Annotated[Path, typer.Option("--pool", help="The pool (full, or its public "
                                                           "extract).", show_default=False)],
    declined_path: Annotated[Path, typer.Option(
        "--declined", help="Who declined: one id per line, or a CSV with an id column.",
        show_default=False)],
    out_dir: Annotated[Path, typer.Option(
        "--out", "-o", help="Folder for the new public bundle (with --prepare: for the new "
                            "lottery, lottery.json and its .sha256).", show_default=False)],
    seed: Annotated[str | None, typer.Option(
        "--seed", help="A new public seed for this replacement, announced after the new "
                       "lottery's hash was published.", show_default=False)] = None,
    prepare: Annotated[bool, typer.Option(
        "--prepare", help="Step 1: compute the new lottery the open seats need (if any), "
                          "write it to the --out folder and print its hash to publish; no "
                          "seed is used.")] = False,
    lottery_dir: Annotated[Path | None, typer.Option(
        "--lottery", help="Step 2: draw the open seats from this prepared lottery (a folder "
                          "written by --prepare, or its lottery.json).",
        show_default=False)] = None,
    quotas_path: Annotated[Path | None, typer.Option(
        "--quotas", "-q", help="The quotas (by default those recorded in the bundle).",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing bundle folder that this tool wrote; never the "
                        "bundle replaced nor any bundle of its chain, nor an input.")] = False,
    id_column: IdColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    time_limit: TimeLimitOpt = None,
    accept_gap: AcceptGapOpt = None,
    algorithm: Annotated[str | None, typer.Option(
        "--algorithm", "-a", help="The new lottery's algorithm: leximin (default), maximin, "
                                  "nash, goldilocks or diversimax. With --lottery: must "
                                  "match the lottery's.", show_default=False)] = None,
    gamma: GammaOpt = None,
) -> None:
    """Replace panel members who declined, keeping every quota; write a new public bundle.

    Nobody who accepted is released unless no panel keeping them all exists (then as few as
    possible). The replacement-list swaps are chosen for all declined seats together: as many
    seats as possible, first in seat and rank order, as long as the people left can complete
    the panel; the seats left open go to a new LEXIMIN lottery over the people left. The new
    bundle references the previous one, so `sortition verify OUT` checks the whole history;
    `replace` can be applied again to OUT.

    Commit, then reveal, as for the first draw: `--prepare` writes the new lottery and prints
    its hash (publish it), then, once the new seed is announced, `--seed S --lottery DIR` draws
    from it. (`--seed` alone computes the lottery in the same run: `verify` then reports that
    round as not anchored unless its hash was published beforehand.)

    Example: sortition replace bundle/ --pool pool.csv --declined no.txt --prepare -o lot-2/

    Example: sortition replace bundle/ --pool pool.csv --declined no.txt --seed "s2" --lottery
    lot-2/ -o bundle-2/
    """
    from .operations.replace import Prepared, replace_declined

    with err.status("starting…") as status:
        done = replace_declined(bundle, pool_path, declined_path, out_dir, seed=seed,
                                prepare=prepare, lottery_dir=lottery_dir,
                                quotas_path=quotas_path, force=force, id_column=id_column,
                                encoding=encoding, time_limit=time_limit,
                                accept_gap=accept_gap, algorithm=algorithm,
                                gamma=gamma, log=_progress(status))
    if isinstance(done, Prepared):
        prepared = done
        if prepared.lottery_hash is None:
            out.print("no new lottery is needed: the replacement lists cover every seat. Draw "
                      "with --seed (no --lottery).", highlight=False)
        else:
            out.print(f"wrote {_shown(prepared.lottery_path)} ({algorithm or 'leximin'} over "
                      "the people "
                      f"still available, {prepared.plan.open_seats} open seat(s))",
                      highlight=False)
            out.print(f"new lottery hash (SHA-256, publish it before the seed): "
                      f"[bold]{prepared.lottery_hash}[/bold]", highlight=False)
        return
    result = done
    for r in result.replacements:
        how = f"list rank {r.rank}" if r.how == "replacement list" else r.how
        out.print(f"seat {r.position}: {_shown(r.left)} → {_shown(r.joined)} ({how})",
                  highlight=False)
    if result.released:
        err.print(f"[yellow]warning:[/yellow] {len(result.released)} other member(s) had to be "
                  f"released to keep the quotas: {_shown(', '.join(result.released))}",
                  highlight=False)
    if result.lottery_hash is not None and not result.lottery_committed:
        _warnings([f"the new lottery for the open seats was computed in this run, after the "
                   f"seed was known (hash {result.lottery_hash}): nothing shows it was not "
                   "chosen knowing the seed. Next time use --prepare, publish its hash, then "
                   "--seed … --lottery; `verify` reports this round as not anchored otherwise"])
    out.print(f"wrote {_shown(out_dir)} (round {result.audit['round']}); verify with: "
              f"sortition verify {_shown(out_dir)} --pool POOL --expect-lottery-hash … "
              "(every lottery hash published) --expect-seed … (every seed)", highlight=False)


@command()
def invite(
    base_path: Annotated[Path, typer.Argument(
        help="Contact base: Parquet (.parquet), CSV (UTF-8, with or without BOM, ',' or ';') "
             "or .xlsx (base.xlsx#NAME for a sheet other than the first).",
        show_default=False)],
    size: Annotated[int, typer.Option("--size", "-k", help="Number of people to call.",
                                      show_default=False)],
    seed: Annotated[str, typer.Option(
        "--seed", help="The public seed: any text, used as its exact UTF-8 bytes and recorded "
                       "verbatim.", show_default=False)],
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="The call list, .parquet, .csv or .xlsx (private: it has the "
                            "contacts). "
                            "Its public audit is written beside it: calls.parquet → "
                            "calls.audit.json.",
        show_default=False)],
    by: Annotated[list[str] | None, typer.Option(
        "--by", help="Stratify by this feature (repeat the option): gender, age_band, "
                     "department, area or diploma.", show_default=False)] = None,
    margins_dir: Annotated[Path | None, typer.Option(
        "--margins", help="Folder of census margins laid out like data/occitanie/ \\[default: "
                          "the built-in Occitanie margins].", show_default=False)] = None,
    response_rates: Annotated[Path | None, typer.Option(
        "--response-rates", help="CSV feature,value,rate (0 < rate <= 1): call more people "
                                 "where fewer answer, so the expected respondents match the "
                                 "margins.", show_default=False)] = None,
    exclude: Annotated[Path | None, typer.Option(
        "--exclude", help="Ids not to call: one per line, or a CSV with an 'id' column. Ids "
                          "not in the base are a warning.", show_default=False)] = None,
    id_column: IdColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
    household_column: Annotated[str | None, typer.Option(
        "--household-column", help="Column naming each person's household: the base's "
                                   "fingerprint includes opaque household numbers (never the "
                                   "column's values) and the audit records the column. The "
                                   "call list is not restricted: two people of one household "
                                   "may both be called (the household pre-draw before the "
                                   "lottery keeps at most one per panel).",
        show_default=False)] = None,
    force: ForceOpt = False,
) -> None:
    """Draw the call list: N people of the contact base to phone, in a random call order.

    Uniform by default; with --by, stratified so that the calls match the population's
    margins (the base's cells are fitted to the margins by iterative proportional fitting,
    then the calls are apportioned by largest remainder). With --response-rates, groups that
    answer less are called more (independent multiplicative rates). The draw follows
    docs/draw-spec.md (streams `calls` and `calls/order`, bound to the base's fingerprint).

    With --household-column, the base's fingerprint covers the households too and the audit
    records the column (so checks load the base the same way). Households do not restrict the
    call list: calling two people of one household is fine, since the household pre-draw
    before the lottery (draw --household-column … --household-seed …) keeps at most one of
    them per panel.

    Writes the call list (call_order, id and every column of the base) and, beside it, its
    public audit (calls.parquet → calls.audit.json: fingerprints, seed, counts, the drawn ids'
    SHA-256; no contact data).
    Exit 1 when the base has fewer eligible people than --size.

    Example: sortition invite base.parquet --size 3000 --seed "loto: 4 17 22 38" --by gender
    --by age_band --out calls.parquet
    """
    from .recruitment.invite import run_invite

    with err.status("loading the base…") as status:
        result = run_invite(base_path, size=size, seed=seed, out=out_path, by=by or [],
                            margins_dir=margins_dir, response_rates=response_rates,
                            exclude=exclude, id_column=id_column, encoding=encoding,
                            household_column=household_column, progress=_progress(status),
                            force=force)
    _notes(result.notes)
    _warnings(result.warnings)
    plan = result.plan
    mode = f"stratified by {', '.join(plan.by)}" if plan.by else "uniform"
    if plan.rates is not None:
        mode += f", response rates on {', '.join(plan.rates.features)}"
    out.print(f"wrote {_shown(result.out)}: {len(plan.ids):,} calls ({_shown(mode)}) from "
              f"{plan.eligible:,} eligible people ({plan.base_rows:,} in the base, "
              f"{plan.excluded:,} excluded)", highlight=False, soft_wrap=True)
    out.print(f"public audit: {_shown(result.audit_path)}", highlight=False)
    out.print(f"drawn ids SHA-256: [bold]{result.audit['drawn_ids']['sha256']}[/bold]",
              highlight=False, soft_wrap=True)


@command()
def respondents(
    calls_path: Annotated[Path, typer.Argument(
        help="The call list written by `sortition invite` (.parquet or .csv).",
        show_default=False)],
    answers: Annotated[Path, typer.Option(
        "--answers", help="CSV id,answer with answer yes, no or unreachable (any case). Calls "
                          "missing from it count as unreachable.", show_default=False)],
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="The respondent pool, .parquet or .csv (private: it has the "
                            "contacts). Its public audit is written beside it: pool.parquet → "
                            "pool.audit.json.", show_default=False)],
    encoding: EncodingOpt = "utf-8",
    household_column: Annotated[str | None, typer.Option(
        "--household-column", help="Column naming each person's household \\[default: the one "
                                   "recorded in the call list's audit, if any]: the respondent "
                                   "pool's fingerprint includes opaque household numbers and "
                                   "the audit records the column.", show_default=False)] = None,
    force: ForceOpt = False,
    rates_out: Annotated[Path | None, typer.Option(
        "--rates-out", help="Also write CSV feature,value,rate with 1 − acceptance per feature "
                            "value (yes / (yes + no)): a proxy for dropout rates, for draw "
                            "--dropout-rates and simulate --rates.", show_default=False)] = None,
) -> None:
    """Turn the call list and the answers into the respondent pool for the lottery.

    Keeps the people who answered yes, with every column of the call list (call_order
    included). The public audit links the pool to the call list's audit and to the answers
    file by their SHA-256, and gives the counts per answer and per feature value.

    With a household column (by default the one `sortition invite --household-column` recorded),
    the pool's fingerprint covers the households too and the audit records the column; give the
    same column to the lottery (--household-column, --household-seed) to keep at most one
    person per household on a panel.

    Example: sortition respondents calls.parquet --answers answers.csv --out pool.parquet
    """
    from .recruitment.respondents import run_respondents

    with err.status("reading the answers…") as status:
        result = run_respondents(calls_path, answers, out_path, encoding=encoding,
                                 household_column=household_column, progress=_progress(status),
                                 force=force, rates_out=rates_out)
    _warnings(result.warnings)
    c = result.counts
    out.print(f"wrote {_shown(result.out)}: {c['yes']:,} respondents out of "
              f"{c['calls']:,} calls ({c['no']:,} no, {c['unreachable']:,} unreachable, of "
              f"which {c['missing']:,} not in the answers)", highlight=False, soft_wrap=True)
    out.print(f"public audit: {_shown(result.audit_path)}", highlight=False)
    out.print(f"pool fingerprint: [bold]{result.fingerprint}[/bold]", highlight=False,
              soft_wrap=True)
    if result.rates_out is not None:
        out.print(f"1 − acceptance per value (a proxy for dropout rates): "
                  f"{_shown(result.rates_out)}", highlight=False, soft_wrap=True)


@command()
def simulate(
    bundle: Annotated[Path, typer.Argument(help="A public bundle drawn with --replacements.",
                                           show_default=False)],
    pool_path: Annotated[Path, typer.Option("--pool", help="The pool (full, or its public "
                                                           "extract).", show_default=False)],
    seed: Annotated[str, typer.Option("--seed", help="Seed of the simulation.",
                                      show_default=False)],
    dropout_rate: Annotated[float, typer.Option(
        "--dropout-rate", help="Chance that a member (or a replacement) drops out.")] = 0.1,
    rates_path: Annotated[Path | None, typer.Option(
        "--rates", help="CSV feature,value,rate: dropout rates by feature value (a person "
                        "gets the largest rate among their values).", show_default=False)]
    = None,
    trials: Annotated[int, typer.Option("--trials", help="Monte Carlo trials.")] = 10000,
    id_column: IdColumnOpt = None,
    encoding: EncodingOpt = "utf-8",
) -> None:
    """Estimate the chance that the replacement lists cover random dropouts.

    Seeded Monte Carlo: members drop out at the given rates, each is replaced by the first
    usable person on their list; prints the share of trials where every seat was filled with
    every quota met, and the quota values most at risk.

    Example: sortition simulate bundle/ --pool pool.parquet --seed test --dropout-rate 0.1
    """
    from .operations.display import simulation_table
    from .operations.simulate import run_simulation

    with err.status(f"simulating {trials:,} trials…"):
        sim = run_simulation(bundle, pool_path, seed=seed, rate=dropout_rate,
                             rates_path=rates_path, trials=trials, id_column=id_column,
                             encoding=encoding)
    out.print(simulation_table(sim))


@command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's files.")]
    = Path("sortition-demo"),
    rows: Annotated[int, typer.Option("--rows", "-n", help="Size of the synthetic pool.")]
    = 1_300_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the synthetic pool.")]
    = 2020,
    extended: Annotated[bool, typer.Option(
        "--extended", help="Pools where nearly every respondent is a stratum of their own: "
                           "synth --extended columns and quotas/occitanie-2020-extended.toml "
                           "(profession and habitat shares ILLUSTRATIVE, not census figures).")]
    = False,
) -> None:
    """Run the built-in Occitanie example end to end.

    Synthesises a contact pool from the census margins, resolves the Occitanie 2020 quota
    specification for a panel of 100, checks that the quotas can be met, computes the LEXIMIN
    probabilities (compared with the legacy procedure), draws the panel with a public seed into
    a public bundle (report.html inside) and verifies it from the pool's public extract.

    Example: sortition demo --rows 50000 --out /tmp/demo
    """
    from .operations.demo import run_demo
    from .operations.display import demo_summary

    with err.status("starting…") as status:

        def progress(msg: str) -> None:
            status.update(msg)
            err.print(f"· {msg}")

        result = run_demo(out_dir, rows=rows, seed=seed, extended=extended, progress=progress)
    out.print(demo_summary(result))
    if not result.ok:
        raise typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        out.print(f"sortition {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    pass


def main() -> None:
    """Console entry point (errors: the `command` handler; Ctrl-C outside a command: 130)."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
