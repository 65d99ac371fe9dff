"""The public HTML report: well-formed, self-contained, escaped, private, deterministic."""

from __future__ import annotations

import copy
import re
import subprocess
from html.parser import HTMLParser

import pytest
from browser_driver import chromium

from sortition.bundle.report import (
    bar_chart_svg,
    format_int,
    format_pct,
    format_prob,
    histogram_svg,
    one_in,
    render_report,
)

HASH_L = "3f" + "a1" * 31
HASH_P = "7c" + "0d" * 31
HASH_Q = "e9" + "42" * 31
SEED = "Convention citoyenne Occitanie 2020 — tirage du 12 mars"

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
# Elements whose end tag HTML lets you omit; the report always closes them, so none are listed.
OPTIONAL_END: set[str] = set()


def _bins(edges, people):
    return [{"lo": lo, "hi": hi, "people": n} for lo, hi, n in zip(edges, edges[1:], people,
                                                                   strict=False)]


EDGES = [5e-05, 6e-05, 7e-05, 8e-05, 1e-04, 2e-04, 5e-04, 1e-03]


def make_context() -> dict:
    people = ["P000123", "P004567", "P010001", "P123456", "P777777", "P999999"]
    rows = [
        ("woman", "18-24", "Hérault"), ("man", "65+", "Haute-Garonne"),
        ("woman", "25-34", "Lozère"), ("man", "35-49", "Hérault"),
        ("woman", "50-64", "Haute-Garonne"), ("man", "18-24", "Gard"),
    ]
    return {
        "title": "Convention citoyenne pour l'Occitanie 2020",
        "seed": SEED,
        "lottery_hash": HASH_L,
        "pool_fingerprint": HASH_P,
        "quotas_fingerprint": HASH_Q,
        "algorithm": "leximin",
        "panel_size": 6,
        "pool_people": 1_300_000,
        "strata": 1040,
        "lottery_panels": 409,
        "panel_number": 17,
        "transparent": None,
        "features": [
            {"name": "gender", "values": [
                {"value": "woman", "population_share": 0.52, "pool_share": 0.55,
                 "panel_count": 3, "min": 3, "max": 3},
                {"value": "man", "population_share": 0.48, "pool_share": 0.45,
                 "panel_count": 3, "min": 3, "max": 3},
            ]},
            {"name": "age_band", "values": [
                {"value": v, "population_share": s, "pool_share": ps, "panel_count": c,
                 "min": lo, "max": hi}
                for v, s, ps, c, lo, hi in [
                    ("18-24", 0.11, 0.06, 2, 0, 2), ("25-34", 0.14, 0.10, 1, 0, 2),
                    ("35-49", 0.24, 0.22, 1, 1, 2), ("50-64", 0.25, 0.30, 1, 1, 2),
                    ("65+", 0.26, 0.32, 1, 1, 2),
                ]
            ]},
            {"name": "department", "values": [
                {"value": "Hérault", "population_share": None, "pool_share": 0.3,
                 "panel_count": 2, "min": 1, "max": 3},
                {"value": "Haute-Garonne", "population_share": None, "pool_share": 0.35,
                 "panel_count": 2, "min": 1, "max": 3},
                {"value": "Lozère", "population_share": None, "pool_share": 0.01,
                 "panel_count": 1, "min": 0, "max": 1},
                {"value": "Gard", "population_share": None, "pool_share": 0.34,
                 "panel_count": 1, "min": 1, "max": 2},
                {"value": "Ariège", "population_share": None, "pool_share": 0.0,
                 "panel_count": 0, "min": 0, "max": 1},
            ]},
        ],
        "probabilities": {
            "min": 6.2e-05, "max": 0.001, "mean": 7.7e-05, "people_at_min": 364,
            "strata_at_min": 2, "gap": 4e-12,
            "histogram": _bins(EDGES, [364, 800_000, 300_000, 150_000, 40_000, 9_000, 636]),
            "legacy": {
                "runs": 1000, "min": 0.0, "max": 0.0004, "people_below_leximin_min": 209_278,
                "histogram": _bins(EDGES, [209_278, 600_000, 300_000, 150_000, 35_000, 5_722,
                                           0]),
            },
        },
        "selected": [
            {"id": pid, "features": {"gender": g, "age_band": a, "department": d}}
            for pid, (g, a, d) in zip(people, rows, strict=True)
        ],
        "feature_names": ["gender", "age_band", "department"],
        "verify_commands": [
            f"sortition verify bundle/ --pool public-pool.parquet --expect-lottery-hash {HASH_L}"
            f" --expect-seed '{SEED}'"
        ],
        "files": [{"name": "lottery.json", "sha256": HASH_L},
                  {"name": "panel.csv", "sha256": "5b" * 32}],
        "run": {"seconds": {"load": 1.0, "lottery": 7.0, "draw": 0.1},
                "versions": {"sortition": "0.1.0", "python": "3.11.7", "ortools": "9.15"}},
    }


class Checker(HTMLParser):
    """Tracks open elements and every attribute, and reports what a strict reader would not."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"end tag for void element </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(document: str) -> Checker:
    checker = Checker()
    checker.feed(document)
    checker.close()
    return checker


@pytest.fixture(scope="module")
def context() -> dict:
    return make_context()


@pytest.fixture(scope="module")
def document(context) -> str:
    return render_report(context)


def test_well_formed(document):
    assert document.startswith("<!DOCTYPE html>")
    checker = parse(document)
    assert checker.errors == []
    assert checker.stack == []
    for required in ("html", "head", "body", "title", "main", "table", "svg"):
        assert required in checker.tags


def test_contents(document, context):
    text = "".join(parse(document).text)
    assert context["title"] in text
    assert SEED in text
    for h in (HASH_L, HASH_P, HASH_Q):
        assert h in text
    for row in context["selected"]:
        assert row["id"] in text
    for name in ("gender", "age_band", "department", "Ariège", "Lozère"):
        assert name in text
    for section in ("summary", "quotas", "fairness", "panel", "verify", "run"):
        assert f'id="{section}"' in document
    assert document.count("<svg") >= 5  # one chart per feature, two histograms
    assert "209,278 people" in text  # the legacy sentence, in English
    assert "ortools" in text and "9.15" in text
    assert "✗" not in text  # every quota met


def test_self_contained(document):
    checker = parse(document)
    assert "http://" not in document and "https://" not in document
    assert "url(" not in document and "@import" not in document
    for tag, name, value in checker.attrs:
        if (tag, name, value) == ("a", "href", "verify.html"):
            continue  # a link (loads nothing by itself) to the bundle's own verify.html
        if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            assert value is not None and value.startswith("#"), (tag, name, value)
        assert "://" not in (value or ""), (tag, name, value)
    assert "script" not in checker.tags
    assert "link" not in checker.tags and "img" not in checker.tags


def test_deterministic(context, document):
    assert render_report(context) == document
    assert render_report(copy.deepcopy(context)) == document


def test_hostile_seed_is_escaped():
    ctx = make_context()
    ctx["seed"] = "<script>alert(1)</script> & 'x' \"y\""
    ctx["title"] = "<b>Titre</b> & co"
    document = render_report(ctx)
    assert "<script>alert" not in document
    assert "<b>Titre" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39; &#34;y&#34;" in document
    checker = parse(document)
    assert checker.errors == [] and checker.stack == []
    assert "script" not in checker.tags and "b" not in checker.tags
    assert ctx["seed"] in "".join(checker.text)


def test_very_long_seed_is_kept_whole():
    ctx = make_context()
    ctx["seed"] = "x" * 5000 + " fin"
    document = render_report(ctx)
    assert ctx["seed"] in document
    assert "pre-wrap" in document and "break-all" in document


def test_only_id_and_listed_features_are_shown():
    ctx = make_context()
    ctx["selected"][0]["phone"] = "+33 6 12 34 56 78"
    ctx["selected"][1]["email"] = "jeanne@example.org"
    ctx["selected"][2]["features"]["phone"] = "+33 7 98 76 54 32"
    ctx["selected"][3]["features"]["name"] = "Jeanne Dupont"
    document = render_report(ctx)
    for secret in ("+33", "12 34 56 78", "jeanne@", "example.org", "Jeanne Dupont"):
        assert secret not in document


def test_edge_cases_render():
    ctx = make_context()
    ctx["title"] = None
    ctx["algorithm"] = "nash"
    ctx["transparent"] = {"tickets": 1000, "ticket": 381, "max_change": 0.0012}
    ctx["probabilities"]["legacy"] = {"runs": 1000, "min": 0.0, "max": 0.0, "histogram": [],
                                      "people_below_leximin_min": 0}
    ctx["probabilities"]["histogram"] = []
    ctx["run"] = None
    ctx["files"] = []
    ctx["verify_commands"] = []
    document = render_report(ctx)
    checker = parse(document)
    assert checker.errors == [] and checker.stack == []
    text = "".join(checker.text)
    assert "Citizens' assembly draw" in text
    assert "1,000 equally likely tickets" in text and "no.\xa0381" in text
    assert "would have given no one" in text
    assert "Nash lottery" in text


def test_one_feature_and_ten_features():
    ctx = make_context()
    ctx["features"] = ctx["features"][:1]
    ctx["feature_names"] = ["gender"]
    ctx["probabilities"]["legacy"] = None
    one = render_report(ctx)
    assert parse(one).errors == []
    assert one.count("<svg") == 2  # one feature chart, one histogram

    ctx = make_context()
    names = [f"f{i}" for i in range(10)]
    ctx["features"] = [
        {"name": n, "values": [
            {"value": f"{n}-v{j}", "population_share": None if j == 2 else 0.25,
             "pool_share": 0.25, "panel_count": 0 if j == 3 else 2, "min": 0, "max": 3}
            for j in range(4)]}
        for n in names
    ]
    ctx["feature_names"] = names
    for i, row in enumerate(ctx["selected"]):
        row["features"] = {n: f"{n}-v{i % 4}" for n in names}
    ten = render_report(ctx)
    checker = parse(ten)
    assert checker.errors == [] and checker.stack == []
    assert ten.count("<svg") == 10 + 2
    assert "f9-v3" in "".join(checker.text)


def test_out_of_bounds_quota_is_flagged():
    ctx = make_context()
    ctx["features"][0]["values"][0]["panel_count"] = 4
    text = "".join(parse(render_report(ctx)).text)
    assert "✗" in text and "out of bounds" in text


# ---------------------------------------------------------------------------
# Helpers


def test_formatting():
    assert format_int(1_300_000) == "1\u202f300\u202f000"
    assert format_int(1_300_000, "en") == "1,300,000"
    assert format_pct(0.52) == "52.0\u202f%"
    assert format_pct(0.52, "fr") == "52,0\u202f%"
    assert format_pct(0.52, "en") == "52.0%"
    assert format_pct(None) == "—"
    assert format_prob(6.2e-05) == "6.2 × 10⁻⁵"
    assert format_prob(6.2e-05, "fr") == "6,2 × 10⁻⁵"
    assert format_prob(4e-12) == "4 × 10⁻¹²"
    assert format_prob(0.0) == "0"
    assert format_prob(0.125) == "0.125"
    assert one_in(6.2e-05, "en") == "1 in 16,100"
    assert one_in(6.2e-05, "fr") == "1 sur 16\u202f100"
    assert one_in(0.5, "en") == "1 in 2"
    assert one_in(0.0) == "—"


def test_bar_chart_svg_escapes_and_draws():
    svg = bar_chart_svg(
        ["<b>a&b</b>", "c"], [("pop \"x\"", [0.5, None]), ("panel", [0.25, 0.0])],
        bands=[(0.2, 0.3), (0.0, 0.0)], title="<t>",
    )
    checker = parse(svg)
    assert checker.errors == [] and checker.stack == []
    assert checker.tags[0] == "svg"
    assert "<b>" not in svg and "&lt;b&gt;a&amp;b&lt;/b&gt;" in svg
    assert "&lt;t&gt;" in svg and "pop &quot;x&quot;" in svg
    assert svg.count("<rect") >= 4
    assert "n/a" in svg
    assert bar_chart_svg(["a"], [("s", [0.1])]) == bar_chart_svg(["a"], [("s", [0.1])])


def test_histogram_svg():
    bins = [(lo, hi) for lo, hi in zip(EDGES, EDGES[1:], strict=False)]
    svg = histogram_svg(bins, [("A & B", [1, 10, 100, 1000, 10_000, 100_000, 0])],
                        marker=6.2e-05, marker_label="<min>", title="h")
    checker = parse(svg)
    assert checker.errors == [] and checker.stack == []
    assert "A &amp; B" in svg and "&lt;min&gt;" in svg and "(log)" not in svg
    assert "stroke-dasharray" in svg
    assert svg.count("<rect") >= 6
    logged = histogram_svg(bins, [("a", [1, 10, 100, 1000, 10_000, 100_000, 0])], y_label="n")
    assert "n (log)" in logged
    empty = histogram_svg([], [])
    assert parse(empty).errors == []


# ---------------------------------------------------------------------------
# A real browser, when one is installed



@pytest.mark.skipif(chromium() is None,
                    reason="no Chromium (/usr/bin/chromium, chromium or chromium-browser on PATH)")
def test_headless_chromium_renders(tmp_path, document, context):
    page = tmp_path / "report.html"
    page.write_text(document, encoding="utf-8")
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert context["title"].replace("'", "&#39;") in dom or context["title"] in dom
    assert "<svg" in dom
    assert HASH_L in dom
    js_errors = [line for line in proc.stderr.splitlines() if re.search(r"Uncaught", line)]
    assert js_errors == []
