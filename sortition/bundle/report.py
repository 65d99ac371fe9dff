"""The public HTML report of a draw: one self-contained, bilingual (French / English) file.

`render_report(context)` returns the text of ``report.html``: what was drawn, from how many
people, with which seed and hashes, how well the quotas are met, how fair the selection
probabilities are, the panel (ids only), how to verify the draw, and run details. It is meant for
the public, the garants who check the draw, and journalists; it reads on screen and prints cleanly
(one section per page, charts never cut).

The file loads nothing: no external CSS, JavaScript, fonts or images. Charts are inline SVG drawn
by the pure helpers `bar_chart_svg` and `histogram_svg`, which escape every piece of text they
write. The template ships inside the package (``sortition/bundle/templates/report.html.j2``) and is
rendered with autoescaping, so any text in the context (a seed containing ``<script>``, quotes,
ampersands…) appears verbatim and inert.

Output is deterministic: the same context gives the same bytes. The report shows no date or time
unless the context carries one (e.g. in the seed); lists are shown in the order given (features,
values, selected people, files and versions).

Privacy: from each selected person the report shows only ``id`` and the features named in
``feature_names``. Any other key (a name, phone, e-mail or address put there by mistake) is never
read.

The context
-----------
A dict; keys marked *optional* may be missing or None::

    {
      "title": "Convention citoyenne pour l'Occitanie 2020",  # optional: None gives a generic title
      "seed": "any public text, shown verbatim",
      "lottery_hash": "<64 hex>",       # SHA-256 of lottery.json
      "pool_fingerprint": "<64 hex>",
      "quotas_fingerprint": "<64 hex>",
      "algorithm": "leximin",           # or "maximin", "nash", "goldilocks", "diversimax"
      "panel_size": 100,
      "pool_people": 1300000,
      "strata": 1040,                   # groups of people with identical features
      "lottery_panels": 409,            # panels in the lottery's support
      "panel_number": 17,               # 1-based number of the drawn panel (or the ticket)
      "transparent": None,              # optional, or {"tickets": 1000, "ticket": 17,
                                        #                "max_change": 0.0012}
      "features": [                     # quota attainment, one entry per feature, in order
        {"name": "gender", "values": [
          {"value": "woman",
           "population_share": 0.52,    # census share; None when unknown
           "pool_share": 0.55,          # None when unknown
           "panel_count": 50, "min": 50, "max": 50},
          ...]},
        ...],
      "probabilities": {
        "min": 6.2e-05, "max": 0.001, "mean": 7.7e-05,
        "people_at_min": 364, "strata_at_min": 2,
        "gap": 4e-12,                   # certified optimality gap of the minimum; optional
        "objective": None,              # optional: {"name", "value", "bound", "gamma"?} of
                                        #   the algorithm's objective (not for LEXIMIN)
        "histogram": [{"lo": 6e-05, "hi": 7e-05, "people": 1000}, ...],  # bins in order
        "legacy": None,                 # optional, or {"runs": 1000, "min": 0.0, "max": 0.0004,
                                        #   "people_below_leximin_min": 209278,
                                        #   "histogram": [... same bins ...]}
      },
      "selected": [                     # in draw order
        {"id": "P000123", "features": {"gender": "woman", "age_band": "18-24", ...}}, ...],
      "feature_names": ["gender", "age_band", "department", "area", "diploma"],
      "verify_commands": ["sortition verify bundle/ --pool public-pool.parquet ..."],
      "files": [{"name": "lottery.json", "sha256": "<64 hex>"}, ...],
      "run": {
              "versions": {"sortition": "0.1.0", "python": "3.11.7", "ortools": "9.15"}},
      "relaxation": [                   # optional: quotas drawn with relaxed bounds (--relax)
        {"quota": "gender=woman", "before": "50–50", "after": "49–50"}, ...],
    }


Shares are fractions in [0, 1]; a panel share is ``panel_count / panel_size``; a quota band is
``[min / panel_size, max / panel_size]``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from ..core.errors import SortitionError
from ..draw.panel import Drawn
from ..inputs.load import Inputs
from ..lottery.compute import at_minimum
from ..lottery.legacy import clearly_below, legacy_probabilities
from ..lottery.publish import PublishedLottery, published_objective

__all__ = [
    "bar_chart_svg",
    "format_int",
    "format_pct",
    "format_prob",
    "histogram_svg",
    "one_in",
    "render_report",
]

TEMPLATE = "report.html.j2"

NNBSP = "\u202f"  # narrow no-break space: thousands separator, and before % and units
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")

# Colour-blind-safe and distinguishable in greyscale print (light, mid, dark).
COLOR_POPULATION = "#a0a0a0"
COLOR_POOL = "#4e79a7"
COLOR_PANEL = "#c8553d"
COLOR_LEGACY = "#8a8a8a"
COLOR_BAND_FILL = "#f6d98b"
COLOR_BAND_EDGE = "#9c7a12"
_SERIES_COLORS = (COLOR_POPULATION, COLOR_POOL, COLOR_PANEL, "#59a14f", "#b07aa1", "#edc948")

_FONT = 12
_CHAR_W = 0.56 * _FONT  # rough average glyph width of a sans-serif font, for layout only

ALGORITHMS = {"leximin": "LEXIMIN", "maximin": "MAXIMIN", "nash": "Nash",
              "goldilocks": "Goldilocks", "diversimax": "Diversimax"}


# ---------------------------------------------------------------------------
# Number formatting. lang "fr" or "en" for prose; None for a neutral form used in tables and
# charts read by both (narrow-space thousands, decimal point).


def _decimal(x: float, digits: int, lang: str | None) -> str:
    s = f"{x:,.{digits}f}"
    if lang == "en":
        return s
    s = s.replace(",", NNBSP)
    return s.replace(".", ",") if lang == "fr" else s


def format_int(n: float | None, lang: str | None = None) -> str:
    """``1300000`` → ``1 300 000`` (narrow spaces; ``1,300,000`` in English); None → ``—``."""
    if n is None:
        return "—"
    s = f"{round(n):,}"
    return s if lang == "en" else s.replace(",", NNBSP)


def format_pct(x: float | None, lang: str | None = None, digits: int = 1) -> str:
    """A share as a percentage: ``0.52`` → ``52.0 %`` (French ``52,0 %``, English ``52.0%``)."""
    if x is None:
        return "—"
    return _decimal(100 * x, digits, lang) + ("%" if lang == "en" else NNBSP + "%")


def format_prob(p: float | None, lang: str | None = None) -> str:
    """A probability to three significant digits: ``6.2e-05`` → ``6.2 × 10⁻⁵``, ``0.125`` kept."""
    if p is None:
        return "—"
    if p == 0:
        return "0"
    if 0.01 <= abs(p) < 1000:
        s = f"{p:.3g}"
        return s.replace(".", ",") if lang == "fr" else s
    mantissa, exponent = f"{p:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    if lang == "fr":
        mantissa = mantissa.replace(".", ",")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def one_in(p: float | None, lang: str | None = None) -> str:
    """A probability as odds: ``6.2e-05`` → ``1 in 16 100`` (three significant digits)."""
    if p is None or p <= 0:
        return "—"
    n = 1 / p
    if n >= 100:
        value = format_int(round(n, 2 - math.floor(math.log10(n))), lang)
    else:
        value = _decimal(n, 1, lang).removesuffix(",0" if lang == "fr" else ".0")
    return f"1 sur {value}" if lang == "fr" else f"1 in {value}"


# ---------------------------------------------------------------------------
# SVG helpers: pure functions returning an <svg> element for inline use in HTML5 (no xmlns
# needed there). Every text and attribute value is escaped.


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _n(x: float) -> str:
    """A coordinate, short and stable."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def _text_width(text: str, size: float = _FONT) -> float:
    return len(text) * 0.56 * size


def _truncate(text: str, max_width: float) -> str:
    max_chars = max(3, int(max_width / _CHAR_W))
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _nice_step(span: float, target: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude >= raw:
            return m * magnitude
    return 10 * magnitude


def _svg_open(width: float, height: float, title: str, css_class: str) -> list[str]:
    return [
        f'<svg class="{_e(css_class)}" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" role="img" aria-label="{_e(title)}" '
        f'font-size="{_FONT}">',
        f"<title>{_e(title)}</title>",
    ]


def _legend(items: Sequence[tuple[str, str, str]], x0: float, y0: float, width: float
            ) -> tuple[list[str], float]:
    """Legend swatches (label, fill, kind in {"box", "band", "line"}), wrapped; returns height."""
    out: list[str] = []
    x, y = x0, y0
    for label, color, kind in items:
        advance = 16 + _text_width(label) + 18
        if x > x0 and x + advance > width:
            x, y = x0, y + 18
        if kind == "band":
            out.append(f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="12" height="12" '
                       f'fill="{COLOR_BAND_FILL}" stroke="{COLOR_BAND_EDGE}"/>')
        elif kind == "line":
            out.append(f'<line x1="{_n(x + 6)}" y1="{_n(y - 10)}" x2="{_n(x + 6)}" '
                       f'y2="{_n(y + 4)}" stroke="{_e(color)}" stroke-width="2" '
                       'stroke-dasharray="4 2"/>')
        else:
            out.append(f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="12" height="12" '
                       f'fill="{_e(color)}"/>')
        out.append(f'<text x="{_n(x + 16)}" y="{_n(y + 1)}">{_e(label)}</text>')
        x += advance
    return out, y - y0 + 18


def _pct_tick(x: float) -> str:
    return f"{round(100 * x, 4):g}{NNBSP}%"


def bar_chart_svg(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    bands: Sequence[tuple[float, float] | None] | None = None,
    band_label: str = "quota",
    title: str = "",
    colors: Sequence[str] | None = None,
    missing_label: str = "n/a",
    width: int = 680,
) -> str:
    """A grouped horizontal bar chart of shares (fractions in [0, 1]) as an inline SVG string.

    One group per category, one bar per series (``(label, values)``, values aligned with
    ``categories``; None draws no bar and writes ``missing_label``). ``bands`` gives, per
    category, an interval ``(lo, hi)`` drawn as a shaded band behind the group (a quota's
    ``[min, max]`` as shares); a band with ``lo == hi`` is a single thick line.
    """
    colors = list(colors or _SERIES_COLORS)
    bands = list(bands or [None] * len(categories))
    n_series = max(1, len(series))
    bar_h, bar_gap, group_gap = 12, 2, 12
    group_h = n_series * bar_h + (n_series - 1) * bar_gap

    label_w = min(max([_text_width(str(c)) * 1.1 for c in categories] + [40]) + 12, width * 0.32)
    x0 = label_w + 10
    x1 = width - 64  # room for the value written after the longest bar
    legend_items = [(label, colors[i % len(colors)], "box") for i, (label, _) in enumerate(series)]
    if any(b is not None for b in bands):
        legend_items.append((band_label, COLOR_BAND_FILL, "band"))
    legend, legend_h = _legend(legend_items, x0, 16, width)
    top = 16 + legend_h + 6

    values = [v for _, vs in series for v in vs if v is not None]
    values += [b[1] for b in bands if b is not None]
    peak = max(values + [0.0])
    step = _nice_step(peak if peak > 0 else 0.1)
    x_max = min(max(step * math.ceil(peak / step - 1e-9), step), 1.0) if peak <= 1 else peak

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * max(0.0, min(v, x_max)) / x_max

    plot_h = len(categories) * (group_h + group_gap) - (group_gap if categories else 0)
    bottom = top + max(plot_h, bar_h)
    height = bottom + 30

    out = _svg_open(width, height, title, "chart bar-chart")
    out += legend
    ticks = []
    t = 0.0
    while t <= x_max + 1e-9:
        ticks.append(t)
        t = round(t + step, 10)
    for t in ticks:
        x = sx(t)
        out.append(f'<line x1="{_n(x)}" y1="{_n(top - 4)}" x2="{_n(x)}" y2="{_n(bottom + 4)}" '
                   f'stroke="{"#888" if t == 0 else "#ddd"}" stroke-width="1"/>')
        out.append(f'<text x="{_n(x)}" y="{_n(bottom + 18)}" text-anchor="middle" '
                   f'fill="#444">{_e(_pct_tick(t))}</text>')

    for i, category in enumerate(categories):
        gy = top + i * (group_h + group_gap)
        band = bands[i] if i < len(bands) else None
        if band is not None:
            lo, hi = band
            bx0, bx1 = sx(lo), sx(hi)
            if bx1 - bx0 >= 1:
                out.append(f'<rect x="{_n(bx0)}" y="{_n(gy - 4)}" width="{_n(bx1 - bx0)}" '
                           f'height="{_n(group_h + 8)}" fill="{COLOR_BAND_FILL}" '
                           f'fill-opacity="0.7"><title>{_e(band_label)}: '
                           f'{_e(_pct_tick(lo))} – {_e(_pct_tick(hi))}</title></rect>')
            for bx in sorted({bx0, bx1}):
                out.append(f'<line x1="{_n(bx)}" y1="{_n(gy - 4)}" x2="{_n(bx)}" '
                           f'y2="{_n(gy + group_h + 4)}" stroke="{COLOR_BAND_EDGE}" '
                           f'stroke-width="{2 if bx0 == bx1 else 1.5}"/>')
        label = str(category)
        out.append(f'<text x="{_n(label_w)}" y="{_n(gy + group_h / 2 + 4)}" text-anchor="end">'
                   f"<title>{_e(label)}</title>{_e(_truncate(label, label_w))}</text>")
        for j, (name, vals) in enumerate(series):
            by = gy + j * (bar_h + bar_gap)
            v = vals[i] if i < len(vals) else None
            if v is None:
                out.append(f'<text x="{_n(x0 + 4)}" y="{_n(by + bar_h - 2)}" fill="#777" '
                           f'font-style="italic">{_e(missing_label)}</text>')
                continue
            w = sx(v) - x0
            if v > 0:
                w = max(w, 1.0)
            color = colors[j % len(colors)]
            out.append(f'<rect x="{_n(x0)}" y="{_n(by)}" width="{_n(w)}" height="{bar_h}" '
                       f'fill="{_e(color)}"><title>{_e(label)} — {_e(name)}: '
                       f"{_e(format_pct(v))}</title></rect>")
            out.append(f'<text x="{_n(x0 + w + 4)}" y="{_n(by + bar_h - 2)}" font-size="10" '
                       f'fill="#333">{_e(format_pct(v))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _bin_position(value: float, bins: Sequence[tuple[float, float]]) -> float:
    """Where ``value`` falls on a histogram drawn with equal-width bins, in bin units."""
    if not bins:
        return 0.0
    if value <= bins[0][0]:
        return 0.0
    for i, (lo, hi) in enumerate(bins):
        if lo <= value <= hi:
            if hi <= lo:
                return i + 0.5
            if lo > 0 and hi / lo > 1.5:  # wide relative bins: interpolate on a log scale
                return i + math.log(value / lo) / math.log(hi / lo)
            return i + (value - lo) / (hi - lo)
        if value < lo:  # in a gap between bins
            return float(i)
    return float(len(bins))


def histogram_svg(
    bins: Sequence[tuple[float, float]],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    colors: Sequence[str] | None = None,
    marker: float | None = None,
    marker_label: str = "",
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    log_y: bool | None = None,
    width: int = 680,
    height: int = 300,
) -> str:
    """A histogram of people per probability bin as an inline SVG string.

    ``bins`` are ``(lo, hi)`` pairs in order; they are drawn with equal widths, so log-spaced bins
    give a log x axis and linear bins a linear one, as given. Each series ``(label, counts)`` has
    one count per bin; several series are drawn side by side within each bin. ``marker`` draws a
    dashed vertical line at that probability. ``log_y`` (default: automatic, when counts span
    three orders of magnitude or more) uses a logarithmic count axis, stated on the axis label.
    """
    colors = list(colors or (COLOR_PANEL, COLOR_LEGACY, COLOR_POOL))
    n = len(bins) if series else 0
    counts = [c for _, cs in series for c in cs]
    positive = [c for c in counts if c > 0]
    peak = max(positive + [0])
    if log_y is None:
        log_y = bool(positive) and peak / min(positive) >= 1000

    if log_y:
        y_top = 10 ** math.ceil(math.log10(max(peak, 1)) + 1e-9)
        ticks = [10**k for k in range(0, round(math.log10(y_top)) + 1)]

        def fy(c: float) -> float:
            return math.log10(1 + c) / math.log10(1 + y_top)
    else:
        step = max(_nice_step(peak if peak > 0 else 1, 4), 1)
        y_top = step * max(1, math.ceil(peak / step - 1e-9))
        ticks = [k * step for k in range(0, round(y_top / step) + 1)]

        def fy(c: float) -> float:
            return c / y_top

    edges = [lo for lo, _ in bins] + ([bins[-1][1]] if bins else [])
    edge_labels = [format_prob(e) for e in edges]
    widest_edge = max([_text_width(t) for t in edge_labels] + [0])
    tick_w = max([_text_width(format_int(t)) for t in ticks] + [0])
    margin_l = max(30 + tick_w, 8 + widest_edge / 2)
    margin_r = max(14, widest_edge / 2 + 2)
    legend_items = [(label, colors[i % len(colors)], "box") for i, (label, _) in enumerate(series)]
    if marker is not None and marker_label:
        legend_items.append((marker_label, "#222", "line"))
    legend, legend_h = _legend(legend_items, margin_l, 16, width)
    top = 16 + legend_h + 10
    bottom = height - (44 if x_label else 28)
    x0, x1 = margin_l, width - margin_r

    out = _svg_open(width, height, title, "chart histogram")
    out += legend
    if n == 0 or not series:
        out.append(f'<text x="{_n(width / 2)}" y="{_n((top + bottom) / 2)}" '
                   'text-anchor="middle" fill="#777">—</text>')
        out.append("</svg>")
        return "\n".join(out)

    def sy(c: float) -> float:
        return bottom - (bottom - top) * max(0.0, min(fy(c), 1.0))

    out.append(f'<line x1="{_n(x0)}" y1="{_n(bottom)}" x2="{_n(x1)}" y2="{_n(bottom)}" '
               'stroke="#888" stroke-width="1"/>')
    for t in ticks:
        y = sy(t)
        if t:
            out.append(f'<line x1="{_n(x0)}" y1="{_n(y)}" x2="{_n(x1)}" y2="{_n(y)}" '
                       'stroke="#e2e2e2" stroke-width="1"/>')
        out.append(f'<text x="{_n(x0 - 6)}" y="{_n(y + 4)}" text-anchor="end" '
                   f'fill="#444">{_e(format_int(t))}</text>')
    if y_label:
        ylab = y_label + (" (log)" if log_y else "")
        cy = (top + bottom) / 2
        out.append(f'<text x="14" y="{_n(cy)}" text-anchor="middle" fill="#444" '
                   f'transform="rotate(-90 14 {_n(cy)})">{_e(ylab)}</text>')

    bw = (x1 - x0) / n
    k = len(series)
    pad = min(2.0, bw * 0.1)
    sub = (bw - 2 * pad) / k
    show_counts = k == 1 and n <= 16
    for i, (lo, hi) in enumerate(bins):
        for j, (name, cs) in enumerate(series):
            c = cs[i] if i < len(cs) else 0
            if c <= 0:
                continue
            bx = x0 + i * bw + pad + j * sub
            y = sy(c)
            h = max(bottom - y, 1.0)
            out.append(f'<rect x="{_n(bx)}" y="{_n(bottom - h)}" width="{_n(max(sub, 0.5))}" '
                       f'height="{_n(h)}" fill="{_e(colors[j % len(colors)])}">'
                       f"<title>{_e(name)}: {_e(format_int(c))} "
                       f"[{_e(format_prob(lo))} ; {_e(format_prob(hi))}]</title></rect>")
            if show_counts:
                out.append(f'<text x="{_n(bx + sub / 2)}" y="{_n(bottom - h - 3)}" '
                           f'text-anchor="middle" font-size="10" fill="#333">'
                           f"{_e(format_int(c))}</text>")

    every = max(1, math.ceil((widest_edge + 10) / bw))
    for i in range(0, n + 1, every):
        x = x0 + i * bw
        out.append(f'<line x1="{_n(x)}" y1="{_n(bottom)}" x2="{_n(x)}" y2="{_n(bottom + 4)}" '
                   'stroke="#888"/>')
        out.append(f'<text x="{_n(x)}" y="{_n(bottom + 16)}" text-anchor="middle" '
                   f'fill="#444">{_e(edge_labels[i])}</text>')
    if x_label:
        out.append(f'<text x="{_n((x0 + x1) / 2)}" y="{_n(height - 8)}" text-anchor="middle" '
                   f'fill="#444">{_e(x_label)}</text>')

    if marker is not None:
        mx = x0 + bw * _bin_position(marker, bins)
        out.append(f'<line x1="{_n(mx)}" y1="{_n(top - 6)}" x2="{_n(mx)}" y2="{_n(bottom)}" '
                   'stroke="#222" stroke-width="2" stroke-dasharray="4 2">'
                   f"<title>{_e(marker_label)}: {_e(format_prob(marker))}</title></line>")
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# The report


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sortition.bundle", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=format_int, pct=format_pct, prob=format_prob, one_in=one_in,
    )
    return env


def _share(count: float | None, total: float | None) -> float | None:
    if count is None or not total:
        return None
    return count / total


def _features_view(context: Mapping[str, Any], panel_size: int) -> list[dict[str, Any]]:
    features = []
    for feature in context.get("features") or []:
        name = str(feature.get("name", ""))
        rows = []
        for v in feature.get("values") or []:
            count = v.get("panel_count")
            lo, hi = v.get("min"), v.get("max")
            within = None
            if count is not None and lo is not None and hi is not None:
                within = lo <= count <= hi
            rows.append({
                "value": str(v.get("value", "")),
                "population_share": v.get("population_share"),
                "pool_share": v.get("pool_share"),
                "panel_count": count,
                "panel_share": _share(count, panel_size),
                "min": lo,
                "max": hi,
                "within": within,
            })
        has_population = any(r["population_share"] is not None for r in rows)
        series: list[tuple[str, list[float | None]]] = []
        colors = []
        if has_population:
            series.append(("Population", [r["population_share"] for r in rows]))
            colors.append(COLOR_POPULATION)
        series.append(("Vivier / Pool", [r["pool_share"] for r in rows]))
        colors.append(COLOR_POOL)
        series.append(("Panel", [r["panel_share"] for r in rows]))
        colors.append(COLOR_PANEL)
        bands = [
            (r["min"] / panel_size, r["max"] / panel_size)
            if panel_size and r["min"] is not None and r["max"] is not None else None
            for r in rows
        ]
        chart = bar_chart_svg(
            [r["value"] for r in rows], series, bands=bands, colors=colors,
            band_label="Quota [min, max]", missing_label="inconnu / unknown",
            title=f"{name} — population, vivier / pool, panel",
        )
        features.append({
            "name": name,
            "rows": rows,
            "chart": Markup(chart),
            "has_population": has_population,
            "all_within": all(r["within"] is not False for r in rows),
        })
    return features


def _outside(pool_people: int | None, counts: Sequence[float]) -> int | None:
    """People of the pool missing from a histogram (e.g. probability below its first bin)."""
    if pool_people is None:
        return None
    missing = round(pool_people - sum(counts))
    return missing if missing > 0 else None


def _probabilities_view(context: Mapping[str, Any]) -> dict[str, Any]:
    probs = dict(context.get("probabilities") or {})
    pool_people = context.get("pool_people")
    hist = list(probs.get("histogram") or [])
    bins = [(float(b["lo"]), float(b["hi"])) for b in hist]
    counts = [b.get("people", 0) or 0 for b in hist]
    p_min = probs.get("min")
    algorithm = str(context.get("algorithm") or "leximin")
    algo = ALGORITHMS.get(algorithm, algorithm)
    chart = None
    if hist:
        chart = Markup(histogram_svg(
            bins, [(algo, counts)],
            title="Probabilités de sélection / Selection probabilities",
            x_label="Probabilité d'être tiré·e / Probability of being selected",
            y_label="Personnes / People",
        ))

    legacy = probs.get("legacy") or None
    legacy_view = None
    if legacy:
        lhist = list(legacy.get("histogram") or [])
        lbins = [(float(b["lo"]), float(b["hi"])) for b in lhist]
        lcounts = [b.get("people", 0) or 0 for b in lhist]
        lchart = None
        if lhist and lbins == bins:
            lchart = histogram_svg(
                bins, [(algo, counts), ("Procédure historique / Legacy procedure", lcounts)],
                marker=p_min, marker_label=f"Minimum {algo}",
                title=f"{algo} / legacy",
                x_label="Probabilité d'être tiré·e / Probability of being selected",
                y_label="Personnes / People",
            )
        elif lhist:
            lchart = histogram_svg(
                lbins, [("Procédure historique / Legacy procedure", lcounts)],
                colors=[COLOR_LEGACY], marker=p_min, marker_label=f"Minimum {algo}",
                title="Procédure historique / Legacy procedure",
                x_label="Probabilité d'être tiré·e / Probability of being selected",
                y_label="Personnes / People",
            )
        legacy_view = {
            "runs": legacy.get("runs"),
            "min": legacy.get("min"),
            "max": legacy.get("max"),
            "below": legacy.get("people_below_leximin_min"),
            "chart": Markup(lchart) if lchart else None,
            "outside": _outside(pool_people, lcounts) if lhist else None,
        }
    return {
        "min": p_min,
        "max": probs.get("max"),
        "mean": probs.get("mean"),
        "people_at_min": probs.get("people_at_min"),
        "strata_at_min": probs.get("strata_at_min"),
        "gap": probs.get("gap"),
        "objective": probs.get("objective"),
        "chart": chart,
        "outside": _outside(pool_people, counts) if hist else None,
        "legacy": legacy_view,
    }


def _view(context: Mapping[str, Any]) -> dict[str, Any]:
    panel_size = context.get("panel_size") or 0
    feature_names = list(context.get("feature_names")
                         or [f.get("name") for f in context.get("features") or []])
    selected = []
    for row in context.get("selected") or []:
        values = row.get("features") or {}
        selected.append({
            "id": str(row.get("id", "")),
            "cells": [values.get(name, "") for name in feature_names],
        })
    features = _features_view(context, panel_size)
    quota_values = [r for f in features for r in f["rows"]]
    algorithm = str(context.get("algorithm") or "leximin")
    transparent = context.get("transparent") or None
    run = context.get("run") or {}
    return {
        "title": context.get("title") or None,
        "seed": str(context.get("seed", "")),
        "lottery_hash": str(context.get("lottery_hash") or "—"),
        "pool_fingerprint": str(context.get("pool_fingerprint") or "—"),
        "quotas_fingerprint": str(context.get("quotas_fingerprint") or "—"),
        "algorithm": algorithm,
        "algorithm_name": ALGORITHMS.get(algorithm, algorithm),
        "panel_size": panel_size,
        "pool_people": context.get("pool_people"),
        "strata": context.get("strata"),
        "lottery_panels": context.get("lottery_panels"),
        "panel_number": context.get("panel_number"),
        "transparent": dict(transparent) if transparent else None,
        "features": features,
        "quota_values": len(quota_values),
        "quota_violations": sum(1 for r in quota_values if r["within"] is False),
        "probabilities": _probabilities_view(context),
        "feature_names": [str(n) for n in feature_names],
        "selected": selected,
        "verify_commands": [str(c) for c in context.get("verify_commands") or []],
        "files": [{"name": str(f.get("name", "")), "sha256": str(f.get("sha256", ""))}
                  for f in context.get("files") or []],
        "versions": [(str(k), str(v)) for k, v in (run.get("versions") or {}).items()],
        "relaxation": [{"quota": str(x.get("quota", "")), "before": str(x.get("before", "")),
                        "after": str(x.get("after", ""))}
                       for x in context.get("relaxation") or []],
    }


def render_report(context: Mapping[str, Any]) -> str:
    """The complete, self-contained ``report.html`` for a draw described by ``context``.

    See the module docstring for the context's keys. Same context, same output.
    """
    template = _environment().get_template(TEMPLATE)
    return template.render(r=_view(context))


def legacy_comparison(inputs: Inputs, probabilities: np.ndarray, runs: int,
                      estimate: np.ndarray | None = None) -> dict | None:
    """The legacy greedy procedure's estimated probabilities, for the report's comparison:
    `estimate` (per stratum, from `runs` runs) when the caller has it, else estimated here.

    Counts the people it leaves clearly below the lottery's minimum (`legacy.clearly_below`).
    None if the procedure fails here.
    """
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
    at_min = at_minimum(probabilities)
    strata_at_min = int(np.unique(inputs.strata.rows()[at_min]).size)
    figures = {"min": low, "max": high, "mean": float(probabilities.mean()),
               "people_at_min": int(at_min.sum()), "strata_at_min": strata_at_min,
               "gap": published.gap, "histogram": _histogram(probabilities, edges),
               "legacy": None}
    objective = published_objective(published)
    if objective is not None:  # (LEXIMIN's is its min, shown already)
        figures["objective"] = objective
    if legacy is not None:
        per_person = np.asarray(legacy["stratum_probabilities"])[inputs.strata.rows()]
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
        "relaxation": [{"quota": r.label, "before": f"{r.old_min}–{r.old_max}",
                        "after": f"{r.new_min}–{r.new_max}"} for r in published.relaxation],
    }
