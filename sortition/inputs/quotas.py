"""Quotas: min/max seats per feature value, read from CSV or resolved from a TOML specification.

Two input forms:

* CSV with the header `feature,value,min,max` (the Sortition Foundation's features file),
  their older header `category,name,min,max`, or the research header `category,feature,min,max`
  of the Nature 2021 replication data, optionally with the columns `min_flex,max_flex` (soft
  quotas, below). Other extra columns are ignored with a note.
* TOML for humans: per feature, explicit bounds, target shares or population counts plus a
  tolerance rule. Shares are apportioned to integer targets summing exactly to the panel size.
  Cross quotas on a pair of features exist only in this form.

**Soft quotas** (the `min_flex`/`max_flex` of the Sortition Foundation's features file): the
loosest bounds a quota may be relaxed to when the quotas cannot all be met, min_flex ≤ min and
max_flex ≥ max, within [0, panel size]. A quota that declares none may be relaxed anywhere in
[0, panel size] (the peer library's default). Relaxing is never automatic: `check` proposes the
smallest relaxation within these bounds, and `--relax` draws with it (`lottery.check`).
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from ..core.errors import InputError
from ..core.limits import MAX_PANEL_SIZE, check_count
from ..core.outputs import check_file, write_text
from ..core.rounding import largest_remainder
from ..core.xlsx import is_xlsx, read_sheet, split_sheet

APPORTIONMENTS = ("largest_remainder", "sainte_lague")
SHARE_SUM_TOLERANCE = 0.01



@dataclass(frozen=True)
class ValueQuota:
    """Bounds on the number of panel seats for one value of one feature."""

    feature: str
    value: str
    min: int
    max: int
    share: float | None = None  # population share the target was apportioned from
    target: int | None = None  # integer target before the tolerance was applied
    reference_share: float | None = None  # share under the feature's reference population
    min_flex: int | None = None  # soft quota: the lowest the minimum may be relaxed to
    max_flex: int | None = None  # and the highest the maximum may (None: not declared)


@dataclass(frozen=True)
class CrossQuota:
    """Bounds on seats for one combination of values of a pair of features."""

    features: tuple[str, str]
    values: tuple[str, str]
    min: int
    max: int
    share: float | None = None
    target: int | None = None
    min_flex: int | None = None
    max_flex: int | None = None


def flex_bounds(q: ValueQuota | CrossQuota, size: int) -> tuple[int, int]:
    """The loosest bounds quota `q` may be relaxed to: its declared min_flex and max_flex, or
    0 and the panel size when it declares none (the peer library's default: unconstrained)."""
    lo = 0 if q.min_flex is None else q.min_flex
    hi = max(size, q.max) if q.max_flex is None else q.max_flex
    return min(lo, q.min), max(hi, q.max)


@dataclass
class Quotas:
    """Resolved quotas: explicit integer bounds, in the order of the specification."""

    values: list[ValueQuota]
    cross: list[CrossQuota] = field(default_factory=list)
    size: int | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)
    reference_labels: dict[str, str] = field(default_factory=dict)
    feature_notes: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """One-way quota features, in specification order."""
        seen: list[str] = []
        for q in self.values:
            if q.feature not in seen:
                seen.append(q.feature)
        return seen

    @property
    def all_features(self) -> list[str]:
        """Every feature any quota names (one-way first, then those only in cross quotas)."""
        names = self.features
        for c in self.cross:
            for f in c.features:
                if f not in names:
                    names.append(f)
        return names

    def values_of(self, feature: str) -> list[str]:
        """Values a feature may take, as the quotas name them."""
        out = [q.value for q in self.values if q.feature == feature]
        if out:
            return out
        for c in self.cross:
            for i, f in enumerate(c.features):
                if f == feature and c.values[i] not in out:
                    out.append(c.values[i])
        return out

    def for_feature(self, feature: str) -> list[ValueQuota]:
        return [q for q in self.values if q.feature == feature]

    def to_dict(self) -> dict:
        """What `quotas --json` prints: the size, every one-way and cross quota."""
        return {
            "size": self.size,
            "quotas": [{"feature": v.feature, "value": v.value, "min": v.min, "max": v.max,
                        "share": v.share, "target": v.target,
                        "reference_share": v.reference_share, "min_flex": v.min_flex,
                        "max_flex": v.max_flex} for v in self.values],
            "cross": [{"features": list(c.features), "values": list(c.values), "min": c.min,
                       "max": c.max, "share": c.share, "target": c.target,
                       "min_flex": c.min_flex, "max_flex": c.max_flex} for c in self.cross],
        }

    @property
    def has_flex(self) -> bool:
        """Does any quota declare min_flex/max_flex?"""
        rows: list[ValueQuota | CrossQuota] = [*self.values, *self.cross]
        return any(q.min_flex is not None or q.max_flex is not None for q in rows)


# ---------------------------------------------------------------------------
# Apportionment


def apportion(weights: list[Fraction] | list[float] | list[int], k: int,
              method: str = "largest_remainder") -> list[int]:
    """Integer targets proportional to `weights`, summing exactly to `k`.

    Ties are broken by position (earlier first) so the result is deterministic.
    """
    if k < 0:
        raise ValueError("panel size must be non-negative")
    w = [Fraction(x) if not isinstance(x, float) else Fraction(Decimal(repr(x))) for x in weights]
    if any(x < 0 for x in w):
        raise ValueError("weights must be non-negative")
    total = sum(w, Fraction(0))
    if total == 0:
        raise ValueError("weights must not all be zero")
    if method == "largest_remainder":
        return largest_remainder([x * k for x in w], total, k)
    if method == "sainte_lague":
        seats = [0] * len(w)
        for _ in range(k):
            best = max(range(len(w)), key=lambda i: (w[i] / (2 * seats[i] + 1), -i))
            seats[best] += 1
        return seats
    raise ValueError(f"unknown apportionment {method!r} (choose {', '.join(APPORTIONMENTS)})")


# ---------------------------------------------------------------------------
# CSV form


def _int_cell(text: str, where: str, column: str, problems: list[str]) -> int | None:
    t = text.strip()
    try:
        v = Decimal(t)
    except InvalidOperation:
        problems.append(f"{where}, column {column}: {text!r} is not a whole number")
        return None
    if not v.is_finite() or v != v.to_integral_value():  # "inf" and "nan" parse as Decimal
        problems.append(f"{where}, column {column}: {text!r} is not a whole number")
        return None
    if v < 0:
        problems.append(f"{where}, column {column}: {text!r} is negative")
        return None
    if v.adjusted() >= 18:
        problems.append(f"{where}, column {column}: {text!r} is too large")
        return None
    return int(v)


def flex_problems(lo: int, hi: int, lo_flex: int | None, hi_flex: int | None,
                  size: int | None) -> list[str]:
    """What is wrong with a quota's min_flex/max_flex (empty: nothing); the caller says where."""
    out = []
    if lo_flex is not None and lo_flex > lo:
        out.append(f"min_flex {lo_flex} is above min {lo} (min_flex is the lowest the minimum "
                   "may be relaxed to)")
    if hi_flex is not None and hi_flex < hi:
        out.append(f"max_flex {hi_flex} is below max {hi} (max_flex is the highest the maximum "
                   "may be relaxed to)")
    elif hi_flex is not None and size is not None and hi_flex > max(size, hi):
        out.append(f"max_flex {hi_flex} is above the panel size {size}")
    return out


FLEX_COLUMNS = ("min_flex", "max_flex")


def _csv_format(header: list[str]) -> tuple[str, str, str, str] | None:
    """Which of the known formats a header is, judged on the whole header."""
    names = set(header)
    if not {"min", "max"} <= names:
        return None
    if {"feature", "value"} <= names and "category" not in names:
        return ("feature", "value", "min", "max")
    if {"category", "name"} <= names and "value" not in names:
        return ("category", "name", "min", "max")
    if {"category", "feature"} <= names and not names & {"name", "value"}:
        return ("category", "feature", "min", "max")
    return None


def read_quotas_csv(path: Path, size: int | None = None) -> Quotas:
    """Read a CSV quota file in any of the three known formats."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read quota file ({e.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path}: quota file is not valid UTF-8 (byte {e.start}); save it as UTF-8"
        ) from None
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return _quotas_from_rows(str(path), rows, list(range(1, len(rows) + 1)), "line", size)


def read_quotas_xlsx(path: Path, size: int | None = None) -> Quotas:
    """Read a quota sheet (`quotas.xlsx`, `quotas.xlsx#Sheet`): the CSV forms' columns, every
    cell as text (`xlsx.read_sheet`), checked by the same code; messages name sheet and row."""
    sheet = read_sheet(path)
    rows = [sheet.header, *(list(r) for r in zip(*sheet.columns, strict=True))]
    return _quotas_from_rows(sheet.label, rows, [1, *sheet.rows.tolist()], "row", size,
                             source=str(path))


def _quotas_from_rows(name: str, rows: list[list[str]], numbers: list[int], word: str,
                      size: int | None, source: str | None = None) -> Quotas:
    """The one validation of quota rows, from a CSV file or a sheet: `numbers[i]` is how
    messages number `rows[i]` (`word` "line" in a CSV, "row" in a sheet)."""
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError(f"{name}: quota file is empty")
    header = [h.strip().lower() for h in rows[0]]
    cols = _csv_format(header)
    if cols is None or len(set(header)) != len(header):
        raise InputError(
            f"{name}, {word} 1: unrecognised quota header {','.join(rows[0])!r}; expected "
            "feature,value,min,max (or category,name,min,max, or category,feature,min,max)"
        )
    idx = [header.index(c) for c in cols]
    flex = [c for c in FLEX_COLUMNS if c in header]
    if len(flex) == 1:
        other = FLEX_COLUMNS[1 - FLEX_COLUMNS.index(flex[0])]
        raise InputError(f"{name}, {word} 1: column {flex[0]} without column {other} (soft "
                         "quotas need both)")
    flex_idx = [header.index(c) for c in flex]
    notes = []
    extra = [rows[0][i].strip() for i in range(len(header)) if i not in idx + flex_idx]
    if extra:
        notes.append(f"{name}: ignored column(s) {', '.join(extra)}")
    problems: list[str] = []
    values: list[ValueQuota] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, row in zip(numbers[1:], rows[1:], strict=True):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{name}, {word} {lineno}"
        if len(row) != len(header):
            problems.append(f"{where}: expected {len(header)} cells, found {len(row)}")
            continue
        feat, val, lo_t, hi_t = (row[i] for i in idx)
        feat, val = feat.strip(), val.strip()
        if not feat:
            problems.append(f"{where}, column {cols[0]}: empty feature name")
        if not val:
            problems.append(f"{where}, column {cols[1]}: empty value")
        lo = _int_cell(lo_t, where, "min", problems)
        hi = _int_cell(hi_t, where, "max", problems)
        lo_f = hi_f = None
        if flex_idx:
            lo_f = _int_cell(row[flex_idx[0]], where, "min_flex", problems)
            hi_f = _int_cell(row[flex_idx[1]], where, "max_flex", problems)
            if lo_f is None or hi_f is None:
                continue
        if not feat or not val or lo is None or hi is None:
            continue
        if lo > hi:
            problems.append(f"{where}: min {lo} > max {hi} for {feat}={val}")
            continue
        wrong = flex_problems(lo, hi, lo_f, hi_f, size)
        if wrong:
            problems.extend(f"{where}: {feat}={val}: {w}" for w in wrong)
            continue
        if (feat, val) in seen:
            problems.append(
                f"{where}: duplicated quota {feat}={val} (first on {word} {seen[(feat, val)]})"
            )
            continue
        seen[(feat, val)] = lineno
        values.append(ValueQuota(feat, val, lo, hi, min_flex=lo_f, max_flex=hi_f))
    if not values and not problems:
        problems.append(f"{name}: quota file has a header but no quota rows")
    if problems:
        raise InputError(problems)
    return Quotas(values=values, size=size, source=source or name, notes=notes)


# ---------------------------------------------------------------------------
# TOML form

_TOP_KEYS = {"size", "title", "description", "apportionment", "features", "cross", "sources",
             "notes"}
_FEATURE_KEYS = {"shares", "counts", "bounds", "tolerance", "min_per_value", "apportionment",
                 "reference", "source", "note", "label", "flex"}
_CROSS_KEYS = {"features", "shares", "counts", "bounds", "tolerance", "min_per_value",
               "apportionment", "source", "note", "flex"}
_BOUND_KEYS = {"min", "max", "min_flex", "max_flex"}
_REFERENCE_KEYS = {"label", "shares", "counts"}


class _Spec:
    """Collects problems while walking a TOML specification."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def bad(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}, {where}: {message}")

    def unknown_keys(self, where: str, table: dict, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                self.bad(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")

    def number(self, where: str, v: object, *, integer: bool = False) -> Fraction | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.bad(where, f"{v!r} is not a number")
            return None
        if isinstance(v, float) and not math.isfinite(v):
            self.bad(where, f"{v!r} is not a finite number")
            return None
        if integer and isinstance(v, float) and not v.is_integer():
            self.bad(where, f"{v!r} is not a whole number")
            return None
        if v < 0:
            self.bad(where, f"{v!r} is negative")
            return None
        return Fraction(Decimal(repr(v))) if isinstance(v, float) else Fraction(v)


def _tolerance(spec: _Spec, where: str, tol: object) -> tuple[str, Fraction, Fraction] | None:
    """Parse a tolerance rule: seats (int), percent ("10%"), or {below=, above=} seats."""
    if isinstance(tol, bool):
        spec.bad(where, f"tolerance {tol!r} must be a number of seats, 'P%' or {{below, above}}")
        return None
    if isinstance(tol, int):
        if tol < 0:
            spec.bad(where, f"tolerance {tol} is negative")
            return None
        return ("seats", Fraction(tol), Fraction(tol))
    if isinstance(tol, str) and tol.strip().endswith("%"):
        try:
            p = Fraction(Decimal(tol.strip()[:-1].strip())) / 100
        except (InvalidOperation, ValueError):
            spec.bad(where, f"tolerance {tol!r} is not a percentage")
            return None
        if p < 0:
            spec.bad(where, f"tolerance {tol!r} is negative")
            return None
        return ("percent", p, p)
    if isinstance(tol, dict):
        spec.unknown_keys(where + " tolerance", tol, {"below", "above"})
        below = tol.get("below", 0)
        above = tol.get("above", 0)
        ok = True
        for name, v in (("below", below), ("above", above)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                spec.bad(where, f"tolerance {name} = {v!r} must be a non-negative whole number")
                ok = False
        if not ok:
            return None
        return ("seats", Fraction(below), Fraction(above))
    spec.bad(where, f"tolerance {tol!r} must be a number of seats, 'P%' or {{below, above}}")
    return None


def _bounds_from_target(target: int, k: int, tol: tuple[str, Fraction, Fraction],
                        min_per_value: int) -> tuple[int, int]:
    kind, below, above = tol
    if kind == "seats":
        lo, hi = target - int(below), target + int(above)
    else:
        lo, hi = math.floor(target * (1 - below)), math.ceil(target * (1 + above))
    lo = max(lo, min_per_value, 0)
    hi = max(min(hi, k), lo)
    return lo, hi


def _weights(spec: _Spec, where: str, table: dict, kind: str,
             flatten: int = 1) -> list[tuple[tuple[str, ...], Fraction]] | None:
    """Shares or counts as an ordered list of (value(s), weight)."""
    if not isinstance(table, dict) or not table:
        spec.bad(where, f"{kind} must be a non-empty table of value = number")
        return None
    out: list[tuple[tuple[str, ...], Fraction]] = []
    for key, v in table.items():
        if flatten == 2:
            if not isinstance(v, dict):
                spec.bad(f"{where}.{key}", f"{kind} of a cross quota must be nested tables")
                return None
            for key2, v2 in v.items():
                n = spec.number(f"{where}.{key}.{key2}", v2, integer=(kind == "counts"))
                if n is not None:
                    out.append(((key.strip(), key2.strip()), n))
        else:
            n = spec.number(f"{where}.{key}", v, integer=(kind == "counts"))
            if n is not None:
                out.append(((key.strip(),), n))
    total = sum((w for _, w in out), Fraction(0))
    if kind == "shares" and out and abs(float(total) - 1) > SHARE_SUM_TOLERANCE:
        spec.bad(where, f"shares sum to {float(total):.4g}, not 1 (write fractions such as 0.25, "
                        "or use counts)")
        return None
    if out and total == 0:
        spec.bad(where, f"{kind} are all zero")
        return None
    return out


def _explicit_bounds(spec: _Spec, where: str, table: dict, depth: int
                     ) -> list[tuple[tuple[str, ...], int, int, int | None, int | None]] | None:
    """Explicit bounds: (values, min, max, min_flex, max_flex), flex None when not given."""
    if not isinstance(table, dict) or not table:
        spec.bad(where, "bounds must be a non-empty table of value = {min = .., max = ..}")
        return None
    out = []
    items: list[tuple[tuple[str, ...], object]] = []
    if depth == 2:
        for key, v in table.items():
            if not isinstance(v, dict):
                spec.bad(f"{where}.{key}", "bounds of a cross quota must be nested tables")
                return None
            items.extend(((key.strip(), k2.strip()), v2) for k2, v2 in v.items())
    else:
        items = [((key.strip(),), v) for key, v in table.items()]
    for key, v in items:
        w = f"{where}.{'.'.join(key)}"
        flex_v: list[object] = [None, None]
        if isinstance(v, list) and len(v) == 2:
            lo_v, hi_v = v
        elif isinstance(v, dict) and set(v) <= _BOUND_KEYS and "min" in v and "max" in v:
            lo_v, hi_v = v["min"], v["max"]
            flex_v = [v.get("min_flex"), v.get("max_flex")]
        else:
            spec.bad(w, f"{v!r} must be {{min = N, max = M}} (with optional min_flex = A, "
                        "max_flex = B) or [N, M]")
            continue
        lo = spec.number(w + ".min", lo_v, integer=True)
        hi = spec.number(w + ".max", hi_v, integer=True)
        flex = [None if f is None else spec.number(f"{w}.{name}", f, integer=True)
                for f, name in zip(flex_v, ("min_flex", "max_flex"), strict=True)]
        if lo is None or hi is None or any(f is None and g is not None
                                           for f, g in zip(flex, flex_v, strict=True)):
            continue
        if lo > hi:
            spec.bad(w, f"min {int(lo)} > max {int(hi)}")
            continue
        fl = [None if f is None else int(f) for f in flex]
        out.append((key, int(lo), int(hi), fl[0], fl[1]))
    return out


def _flex_rule(spec: _Spec, where: str, rule: object) -> tuple[int, int] | None:
    """A feature's `flex`: seats either side beyond its bounds (N, or {below = A, above = B})."""
    if isinstance(rule, int) and not isinstance(rule, bool) and rule >= 0:
        return rule, rule
    if isinstance(rule, dict) and rule and set(rule) <= {"below", "above"}:
        out = []
        for name in ("below", "above"):
            v = rule.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                spec.bad(where, f"flex {name} = {v!r} must be a non-negative whole number")
                return None
            out.append(v)
        return out[0], out[1]
    spec.bad(where, f"flex = {rule!r} must be a non-negative number of seats or "
                    "{below = A, above = B}")
    return None


Resolved = tuple[tuple[str, ...], int, int, float | None, int | None, int | None, int | None]


def _resolve_block(spec: _Spec, where: str, block: dict, k: int | None, default_method: str,
                   depth: int) -> list[Resolved]:
    """Resolve one feature (depth 1) or cross quota (depth 2) to explicit integer bounds:
    (values, min, max, share, target, min_flex, max_flex)."""
    rows = _resolve_bounds(spec, where, block, k, default_method, depth)
    if "flex" not in block:
        out = rows
    else:
        rule = _flex_rule(spec, where, block["flex"])
        if rule is None:
            return []
        given = [r for r in rows if r[5] is not None or r[6] is not None]
        if given:
            spec.bad(where, "give flex or each value's min_flex/max_flex, not both")
            return []
        out = [(key, lo, hi, share, t, max(0, lo - rule[0]),
                hi + rule[1] if k is None else max(hi, min(k, hi + rule[1])))
               for key, lo, hi, share, t, _, _ in rows]
    for key, lo, hi, _, _, lo_f, hi_f in out:
        for problem in flex_problems(lo, hi, lo_f, hi_f, k):
            spec.bad(f"{where}.{'.'.join(key)}", problem)
    return out


def _resolve_bounds(spec: _Spec, where: str, block: dict, k: int | None, default_method: str,
                    depth: int) -> list[Resolved]:
    forms = [f for f in ("shares", "counts", "bounds") if f in block]
    if len(forms) != 1:
        spec.bad(where, "give exactly one of shares, counts or bounds"
                 + (f" (found {', '.join(forms)})" if forms else ""))
        return []
    form = forms[0]
    min_per_value = block.get("min_per_value", 0)
    if isinstance(min_per_value, bool) or not isinstance(min_per_value, int) or min_per_value < 0:
        spec.bad(where, f"min_per_value = {min_per_value!r} must be a non-negative whole number")
        min_per_value = 0
    if form == "bounds":
        bounds = _explicit_bounds(spec, f"{where}.bounds", block["bounds"], depth)
        if bounds is None:
            return []
        return [(key, max(lo, min_per_value), max(hi, min_per_value), None, None, lo_f, hi_f)
                for key, lo, hi, lo_f, hi_f in bounds]
    method = block.get("apportionment", default_method)
    if method not in APPORTIONMENTS:
        spec.bad(where, f"apportionment {method!r} is not one of {', '.join(APPORTIONMENTS)}")
        return []
    tol = _tolerance(spec, where, block.get("tolerance", 0))
    weights = _weights(spec, f"{where}.{form}", block[form], form, flatten=depth)
    if weights is None or tol is None:
        return []
    if k is None:
        spec.bad(where, f"{form} need a panel size: give --size or a top-level size")
        return []
    total = sum((w for _, w in weights), Fraction(0))
    targets = apportion([w for _, w in weights], k, method)
    out: list[tuple[tuple[str, ...], int, int, float | None, int | None, int | None,
                    int | None]] = []
    for (key, w), t in zip(weights, targets, strict=True):
        lo, hi = _bounds_from_target(t, k, tol, min_per_value)
        out.append((key, lo, hi, float(w / total), t, None, None))
    return out


def read_quotas_toml(path: Path, size: int | None = None) -> Quotas:
    """Resolve a TOML quota specification to explicit bounds for panel size `size`."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read quota specification ({e.strerror})") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: quota specification is not valid UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({e})") from None
    spec = _Spec(path)
    spec.unknown_keys("top level", doc, _TOP_KEYS)
    k = size
    if k is None and "size" in doc:
        s = doc["size"]
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0:
            spec.bad("size", f"{s!r} must be a positive whole number")
        else:
            k = s
    method = doc.get("apportionment", "largest_remainder")
    if method not in APPORTIONMENTS:
        spec.bad("apportionment", f"{method!r} is not one of {', '.join(APPORTIONMENTS)}")
        method = "largest_remainder"
    features = doc.get("features", {})
    if not isinstance(features, dict) or not features:
        spec.bad("features", "the specification defines no [features.NAME] table")
        features = {}
    values: list[ValueQuota] = []
    reference_labels: dict[str, str] = {}
    feature_notes: dict[str, str] = {}
    for fname, block in features.items():
        where = f"features.{fname}"
        if not isinstance(block, dict):
            spec.bad(where, "must be a table")
            continue
        spec.unknown_keys(where, block, _FEATURE_KEYS)
        if "note" in block:
            feature_notes[fname] = str(block["note"])
        ref_shares: dict[str, float] = {}
        if "reference" in block:
            ref = block["reference"]
            if not isinstance(ref, dict):
                spec.bad(f"{where}.reference", "must be a table with label and shares or counts")
            else:
                spec.unknown_keys(f"{where}.reference", ref, _REFERENCE_KEYS)
                rforms = [f for f in ("shares", "counts") if f in ref]
                if len(rforms) != 1:
                    spec.bad(f"{where}.reference", "give exactly one of shares or counts")
                else:
                    rw = _weights(spec, f"{where}.reference.{rforms[0]}", ref[rforms[0]],
                                  rforms[0])
                    if rw:
                        rt = sum((w for _, w in rw), Fraction(0))
                        ref_shares = {key[0]: float(w / rt) for key, w in rw}
                    reference_labels[fname] = str(ref.get("label", "reference"))
        for key, lo, hi, share, target, lo_f, hi_f in _resolve_block(spec, where, block, k,
                                                                     method, 1):
            if not fname.strip():
                spec.bad(where, "empty feature name")
                continue
            if not key[0]:
                spec.bad(where, "empty value name")
                continue
            values.append(ValueQuota(fname.strip(), key[0], lo, hi, share, target,
                                     ref_shares.get(key[0]), lo_f, hi_f))
        for v in ref_shares:
            if v not in {q.value for q in values if q.feature == fname.strip()}:
                spec.bad(f"{where}.reference", f"value {v!r} is not among the feature's values")
    cross: list[CrossQuota] = []
    blocks = doc.get("cross", [])
    if not isinstance(blocks, list):
        spec.bad("cross", "must be an array of tables ([[cross]])")
        blocks = []
    for i, block in enumerate(blocks, start=1):
        where = f"cross #{i}"
        if not isinstance(block, dict):
            spec.bad(where, "must be a table")
            continue
        spec.unknown_keys(where, block, _CROSS_KEYS)
        pair = block.get("features")
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(p, str) and p.strip() for p in pair) or pair[0] == pair[1]):
            spec.bad(where, "features must name two different features, e.g. "
                     "features = [\"gender\", \"age_band\"]")
            continue
        where = f"cross [{pair[0]} x {pair[1]}]"
        for key, lo, hi, share, target, lo_f, hi_f in _resolve_block(spec, where, block, k,
                                                                     method, 2):
            cross.append(CrossQuota((pair[0].strip(), pair[1].strip()), (key[0], key[1]), lo, hi,
                                    share, target, lo_f, hi_f))
    if spec.problems:
        raise InputError(spec.problems)
    _check_duplicates(path, values, cross)
    notes = [str(n) for n in doc.get("notes", [])] if isinstance(doc.get("notes"), list) else []
    return Quotas(values=values, cross=cross, size=k, source=str(path), notes=notes,
                  reference_labels=reference_labels, feature_notes=feature_notes)


def _check_duplicates(path: Path, values: list[ValueQuota], cross: list[CrossQuota]) -> None:
    problems = []
    seen: set[tuple[str, str]] = set()
    for q in values:
        if (q.feature, q.value) in seen:
            problems.append(f"{path}: duplicated quota {q.feature}={q.value}")
        seen.add((q.feature, q.value))
    seen_c: set[tuple] = set()
    for c in cross:
        key = (c.features, c.values)
        if key in seen_c:
            problems.append(f"{path}: duplicated cross quota {c.features[0]}={c.values[0]} x "
                            f"{c.features[1]}={c.values[1]}")
        seen_c.add(key)
    for c in cross:
        for f, v in zip(c.features, c.values, strict=True):
            known = [q.value for q in values if q.feature == f]
            if known and v not in known:
                problems.append(f"{path}: cross quota value {f}={v} is not among the values of "
                                f"feature {f} ({', '.join(known)})")
    if problems:
        raise InputError(problems)


def load_quotas(path: str | Path, size: int | None = None) -> Quotas:
    """Read quotas from a CSV, TOML or .xlsx file (chosen by extension)."""
    path = Path(path)
    if not split_sheet(path)[0].exists():
        raise InputError(f"{path}: quota file not found")
    if is_xlsx(path):
        if size is not None:
            check_count("--size", size, maximum=MAX_PANEL_SIZE)
        return read_quotas_xlsx(path, size)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a quota file")
    if size is not None:
        check_count("--size", size, maximum=MAX_PANEL_SIZE)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return read_quotas_toml(path, size)
    if suffix in (".csv", ".txt", ".tsv"):
        return read_quotas_csv(path, size)
    raise InputError(f"{path}: unknown quota file type {suffix!r} (use .csv, .toml or .xlsx)")


# ---------------------------------------------------------------------------
# Writing


def resolve_quotas(path: str | Path, size: int | None = None, *,
                   out: str | Path | None = None, force: bool = False) -> Quotas:
    """The quotas of `path` for a panel: its size given here or by the TOML specification
    (exit 2 without one); with `out`, also written there (`write_quotas`)."""
    quotas = load_quotas(path, size)
    if quotas.size is None:
        raise InputError(f"{path}: no panel size: give --size K")
    if out is not None:
        write_quotas(quotas, out, force=force, inputs=[Path(path)])
    return quotas


def quotas_csv_text(quotas: Quotas) -> str:
    """The resolved quotas as `feature,value,min,max` CSV text."""
    if quotas.cross:
        raise InputError("cross quotas cannot be written as CSV: use an --out file ending in .toml")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    flex = quotas.has_flex
    w.writerow(["feature", "value", "min", "max", *(FLEX_COLUMNS if flex else ())])
    for q in quotas.values:
        w.writerow([q.feature, q.value, q.min, q.max,
                    *(flex_bounds(q, quotas.size or q.max) if flex else ())])
    return buf.getvalue()


def _toml_bounds(q: ValueQuota | CrossQuota) -> str:
    flex = "".join(f", {name} = {v}" for name, v in (("min_flex", q.min_flex),
                                                       ("max_flex", q.max_flex))
                   if v is not None)
    return f"{{ min = {q.min}, max = {q.max}{flex} }}"


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def quotas_toml_text(quotas: Quotas) -> str:
    """The resolved quotas as a TOML specification with explicit bounds only."""
    lines = [f"# Resolved quotas from {Path(quotas.source).name}: explicit bounds only."]
    if quotas.size is not None:
        lines.append(f"size = {quotas.size}")
    for feature in quotas.features:
        lines.append("")
        lines.append(f"[features.{_toml_str(feature)}.bounds]")
        for q in quotas.for_feature(feature):
            lines.append(f"{_toml_str(q.value)} = {_toml_bounds(q)}")
    pairs: list[tuple[str, str]] = []
    for c in quotas.cross:
        if c.features not in pairs:
            pairs.append(c.features)
    for pair in pairs:
        lines.append("")
        lines.append("[[cross]]")
        lines.append(f"features = [{_toml_str(pair[0])}, {_toml_str(pair[1])}]")
        outer: list[str] = []
        for c in quotas.cross:
            if c.features == pair and c.values[0] not in outer:
                outer.append(c.values[0])
        for v0 in outer:
            lines.append(f"[cross.bounds.{_toml_str(v0)}]")
            for c in quotas.cross:
                if c.features == pair and c.values[0] == v0:
                    lines.append(f"{_toml_str(c.values[1])} = {_toml_bounds(c)}")
    return "\n".join(lines) + "\n"


def write_quotas(quotas: Quotas, out: str | Path, *, force: bool = False,
                 inputs: Iterable[Path | None] = ()) -> None:
    """Write resolved quotas: CSV for one-way quotas, TOML (explicit bounds) for any quotas.

    Never over an input (`inputs`, e.g. the specification itself); an existing file only with
    `force`.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    check_file(out, inputs=inputs, force=force)
    if suffix == ".toml":
        write_text(out, quotas_toml_text(quotas))
    elif suffix == ".csv":
        if quotas.cross:
            raise InputError(f"{out}: cross quotas cannot be written as CSV; use a .toml file "
                             "(the resolved specification with explicit bounds)")
        write_text(out, quotas_csv_text(quotas))
    else:
        raise InputError(f"{out}: unknown output type {suffix!r} (use .csv or .toml)")
