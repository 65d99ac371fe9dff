"""Rich tables for the terminal: presentation only, no decisions."""

from __future__ import annotations

from typing import cast

from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table

from ..inputs.quotas import CrossQuota, Quotas, ValueQuota
from ..inputs.strata import Strata
from ..lottery.check import FeasibilityReport, feature_table
from .demo import DemoResult, fairness_comparison


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f} %"


def quotas_table(quotas: Quotas, title: str | None = None) -> Table:
    """Feature, value, population share(s), target, min, max; then any cross quotas."""
    has_ref = any(q.reference_share is not None for q in quotas.values)
    table = Table(title=title, show_lines=False)
    table.add_column("feature")
    table.add_column("value")
    table.add_column("population share", justify="right")
    if has_ref:
        table.add_column("reference share", justify="right")
    table.add_column("target", justify="right")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    flex = quotas.has_flex
    if flex:  # soft quotas: how far each bound may be relaxed (blank: not declared)
        table.add_column("min_flex", justify="right")
        table.add_column("max_flex", justify="right")

    def soft(q: ValueQuota | CrossQuota) -> list[str]:
        return ["" if q.min_flex is None else str(q.min_flex),
                "" if q.max_flex is None else str(q.max_flex)] if flex else []

    previous = None
    for q in quotas.values:
        row = [escape(q.feature) if q.feature != previous else "", escape(q.value),
               _pct(q.share)]
        if has_ref:
            row.append(_pct(q.reference_share))
        row += ["" if q.target is None else str(q.target), str(q.min), str(q.max), *soft(q)]
        if previous is not None and q.feature != previous:
            table.add_section()
        table.add_row(*row)
        previous = q.feature
    for c in quotas.cross:
        row = [escape(" × ".join(c.features)), escape(" × ".join(c.values)), _pct(c.share)]
        if has_ref:
            row.append("")
        row += ["" if c.target is None else str(c.target), str(c.min), str(c.max), *soft(c)]
        table.add_row(*row)
    captions = []
    if quotas.reference_labels:
        captions.append("reference share: " + "; ".join(
            f"{escape(f)}: {escape(label)}" for f, label in quotas.reference_labels.items()))
    if flex:
        captions.append("min_flex/max_flex: the loosest bounds `check` may propose and "
                        "`--relax` draw with; blank: not declared, anywhere in [0, panel size]")
    if captions:
        table.caption = "\n".join(captions)
    return table


def check_tables(strata: Strata, quotas: Quotas, report: FeasibilityReport) -> list[Table]:
    """The quota table with pool counts, then the relaxation and impossible strata if any."""
    tables = []
    t = Table(title=f"Quotas against the pool ({report.pool_size:,} people, "
                    f"{len(strata):,} strata)")
    for name, justify in (("feature", "left"), ("value", "left"), ("in pool", "right"),
                          ("pool share", "right"), ("min", "right"), ("max", "right"),
                          ("short", "right")):
        t.add_column(name, justify=cast(JustifyMethod, justify))
    previous = None
    for row in feature_table(strata, quotas, report.size):
        if previous is not None and row["feature"] != previous:
            t.add_section()
        short = row["shortfall"]
        t.add_row(escape(row["feature"]) if row["feature"] != previous else "",
                  escape(row["value"]), f"{row['pool']:,}", _pct(row["pool_share"]),
                  str(row["min"]), str(row["max"]), f"[red]{short}[/red]" if short else "")
        previous = row["feature"]
    tables.append(t)
    if report.relaxation:
        r = Table(title=f"Smallest relaxation that makes the quotas feasible "
                        f"(total change {report.relaxation_total})",
                  caption="within the flex bounds (min_flex/max_flex, if declared); "
                          "--relax draws with it")
        for name in ("feature", "value", "min", "max", "new min", "new max"):
            r.add_column(name, justify="left" if name in ("feature", "value") else "right")
        for q in report.relaxation:
            r.add_row(escape(q.feature), escape(q.value), str(q.old_min), str(q.old_max),
                      _changed(q.new_min, q.old_min), _changed(q.new_max, q.old_max))
        tables.append(r)
    if report.impossible_strata:
        i = Table(title=f"{report.impossible_people:,} people in {len(report.impossible_strata)} "
                        "strata can be on no panel that meets the quotas")
        for f in report.features:
            i.add_column(escape(f))
        i.add_column("people", justify="right")
        for key, n in report.impossible_strata:
            i.add_row(*(escape(v) for v in key), f"{n:,}")
        tables.append(i)
    return tables


def _changed(new: int, old: int) -> str:
    return f"[bold yellow]{new}[/bold yellow]" if new != old else str(new)


def _people(n: int | float) -> str:
    return f"{n:,} {'person' if n == 1 else 'people'}"


def demo_summary(result: DemoResult) -> Table:
    """One table saying what the demo did and what it found, step by step."""
    t = Table(title="sortition demo: Convention citoyenne pour l'Occitanie 2020", show_header=False)
    t.add_column("step")
    t.add_column("result", overflow="fold")
    tm = result.timings

    def took(key: str) -> str:
        return f" [dim]({tm.get(key, 0):.1f} s)[/dim]"

    t.add_row("contact base", f"{result.rows:,} synthetic residents (seed {result.seed}) → "
                              f"{escape(str(result.base_path))}" + took("synthesise"))
    if result.calls is not None:
        sizes = result.calls.audit.get("sizes", {})
        t.add_row("call list", f"{sizes.get('drawn', 0):,} contacts stratified on the census "
                               f"margins → {escape(str(result.calls.out))} (public audit "
                               f"{escape(result.calls.audit_path.name)})" + took("invite"))
    if result.answers:
        a = result.answers
        t.add_row("answers", f"{a['yes']:,} yes, {a['no']:,} no, {a['unreachable']:,} "
                             "unreachable (simulated: the young and the less educated accept "
                             f"less) → {escape(str(result.pool_path))}" + took("respondents"))
    t.add_row("quotas", f"{len(result.quotas.values)} quotas on {len(result.quotas.features)} "
                        f"features for a panel of {result.quotas.size} → "
                        f"{escape(str(result.quotas_path))}")
    t.add_row("strata", f"{len(result.strata):,} feature combinations among "
                        f"{int(result.strata.counts.sum()):,} respondents" + took("load"))
    verdict = ("[green]feasible[/green]: a panel meeting every quota exists"
               if result.report.feasible else "[red]infeasible[/red]: "
               + escape("; ".join(result.report.reasons)))
    t.add_row("check", verdict + took("check"))
    if result.report.impossible_strata:
        t.add_row("", f"{result.report.impossible_people:,} people can be on no panel")
    cmp = fairness_comparison(result)
    if cmp:
        t.add_row("LEXIMIN", f"every person between {cmp['leximin_min']:.4g} and "
                             f"{cmp['leximin_max']:.4g}; {_people(cmp['leximin_people_at_min'])} "
                             f"({cmp['leximin_strata_at_min']:,} strata) at the minimum; a lottery "
                             f"of {cmp['panels']:,} panels, certified gap {cmp['gap']:.1e} → "
                             f"{escape(str(result.probabilities_path))}" + took("leximin"))
        t.add_row("legacy", f"estimated from {cmp['legacy_runs']:,} seeded runs of the greedy "
                            "procedure: "
                            f"between {cmp['legacy_min']:.4g} and {cmp['legacy_max']:.4g}; "
                            f"{cmp['legacy_people_below_leximin_min']:,} people "
                            f"({100 * cmp['legacy_share_below_leximin_min']:.1f} %) clearly "
                            "below LEXIMIN's minimum (by 3 standard errors), "
                            f"{cmp['legacy_people_never_selected']:,} never selected"
                            + took("legacy"))
    d = result.draw
    if d is not None:
        lists = d.audit.get("replacements", {})
        t.add_row("draw", f"panel {d.drawn.number} of {len(d.published.weights):,} drawn with "
                          f"the seed {escape(repr(d.seed))}, {lists.get('listed', 0)} "
                          f"replacements listed → {escape(str(d.out_dir))} (report.html; "
                          f"contacts in {escape(str(d.private_out))})" + took("draw"))
        t.add_row("lottery hash", d.lottery_hash)
    r = result.replaced
    if r is not None:
        by_list = sum(1 for x in r.replacements if x.how == "replacement list")
        t.add_row("dropouts", f"{len(r.audit['declined'])} declined: {by_list} replaced from "
                              f"the lists, {len(r.replacements) - by_list} by a new lottery"
                              + (f", {len(r.released)} released" if r.released else "")
                              + f" → {escape(str(r.out_dir))}" + took("replace"))
    v = result.verification
    if v is not None:
        verdict = (f"[green]verified[/green]: {len(v.checked)} checks passed, from the final "
                   "bundle back to the contact base"
                   + (", anchored to the published lottery hashes and seeds" if v.anchored
                      else f"; [yellow]not anchored[/yellow]: {escape(v.anchors.missing[0])}")
                   if v.ok else
                   f"[red]NOT verified[/red]: {escape('; '.join(v.differences[:3]))}")
        t.add_row("verify", verdict + took("verify"))
    return t


def probabilities_table(summary: dict) -> Table:
    """The `probabilities` summary as a two-column table."""
    t = Table(title=f"Selection probabilities ({summary['algorithm']})", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("people / strata", f"{summary['people']:,} / {summary['strata']:,}")
    t.add_row("smallest probability", f"{summary['min_probability']:.6g}")
    t.add_row("largest probability", f"{summary['max_probability']:.6g}")
    t.add_row("people at the smallest", f"{summary['people_at_min']:,} "
                                        f"in {summary['strata_at_min']:,} strata")
    t.add_row("expected panel size", f"{summary['expected_panel_size']:.9g}")
    if summary.get("panels") is not None:
        t.add_row("panels in the lottery", f"{summary['panels']:,}")
    if summary.get("gap") is not None:
        t.add_row("certified gap", f"{summary['gap']:.2e}")
    t.add_row("time", f"{summary['seconds']:.2f} s")
    if summary.get("note"):
        t.caption = escape(summary["note"])
    return t


def draw_summary(result) -> Table:
    """What `draw` did: the hash and seed to publish, the panel, the quotas."""
    t = Table(title="Draw", show_header=False)
    t.add_column("what")
    t.add_column("value", overflow="fold")
    a = result.audit
    t.add_row("bundle", escape(str(result.out_dir)))
    t.add_row("seed", escape(result.seed))
    pub = result.published
    kind, total = (("ticket", pub.n_tickets or 0) if pub.transparent
                   else ("panel", len(pub.weights)))
    source = a["draw"]["number_from"]
    t.add_row(kind, f"{result.drawn.number} of {total:,} "
                    + ("(from the seed)" if source == "seed" else f"({source})"))
    t.add_row("people", f"{len(result.drawn.people)} drawn")
    met = sum(1 for q in result.attainment if q["min"] <= q["achieved"] <= q["max"])
    t.add_row("quotas", f"{met} of {len(result.attainment)} met")
    p = a["probabilities"]
    t.add_row("probabilities", f"between {p['min']:.4g} and {p['max']:.4g}")
    if result.private_out is not None:
        t.add_row("private export", escape(str(result.private_out)))
    t.add_row("time", ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    return t


def simulation_table(sim) -> Table:
    """`simulate`: coverage overall, then the quota values most at risk."""
    t = Table(title=f"Dropout simulation: {sim.trials:,} trials — every seat refilled with every "
                    f"quota met in {100 * sim.covered:.1f} % of them")
    for col in ("feature", "value", "min–max", "members", "dropout rate", "broken in"):
        t.add_column(col, justify="right" if col in ("members", "dropout rate", "broken in")
                     else "left")
    shown = sim.risky if sim.risky else sorted(sim.per_value, key=lambda v: -v["p_broken"])[:5]
    for v in shown:
        t.add_row(escape(str(v["feature"])), escape(str(v["value"])), f"{v['min']}–{v['max']}",
                  str(v["members"]), f"{100 * v['dropout_rate']:.0f} %",
                  f"{100 * v['p_broken']:.1f} %")
    t.caption = ("risky values (broken in ≥ 5 % of trials)" if sim.risky
                 else "no value at risk; the five least safe shown")
    return t
