"""From the call list to the respondent pool (stage 1 → 2).

The operator records each call's outcome in a CSV `id,answer` (`yes`, `no` or `unreachable`,
any case); calls missing from it count as unreachable. The people who said yes, with every
column of the call list (`call_order` included, so each respondent can be traced back to the
call), form the respondent pool the lottery draws from. That pool is private (it has the
contacts); its audit `<stem>.audit.json` is public: it links the pool to the call list's audit
and to the answers file by their SHA-256, gives the counts per answer and per feature value,
and the pool's fingerprint over the id and the call list's features (those recorded in the
call list's audit; the id alone when that audit is missing).

With a household column (by default the one recorded in the call list's audit), the pool's
fingerprint also covers the opaque household numbers of the respondents (`sortition.inputs.pool`,
never the column's values) and the audit records the column, so that a check loads the pool the
same way. Several respondents may share a household: the lottery's household pre-draw
(`--household-column` with `--household-seed`) keeps at most one of them per panel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.audits import (
    RESPONDENTS_SCHEMA,
    audit_bytes,
    audit_path_for,
    ids_sha256,
    read_audit,
    relative,
    sha256_file,
    versions,
)
from ..core.bundleio import regular_file
from ..core.errors import InfeasibleError, InputError
from ..core.fileio import csv_field
from ..core.outputs import check_file, check_pair, write_pair, write_text
from ..core.tables import capped_problems, read_table_csv, read_text, write_table
from ..inputs.fingerprint import pool_fingerprint, stratum_differences
from ..inputs.pool import Pool, load_pool, read_rows
from ..inputs.strata import build_strata
from .invite import SCHEMA as CALLS_SCHEMA

SCHEMA = RESPONDENTS_SCHEMA  # "sortition-respondents"
SCHEMA_VERSION = 2  # 2: no per-stratum hashes (they linked ids to features)
ANSWERS: tuple[str, ...] = ("yes", "no", "unreachable")


def read_answers(path: Path, calls: set[str], calls_path: Path, encoding: str = "utf-8"
                 ) -> tuple[dict[str, str], str]:
    """id → answer (lower case), and the file's SHA-256; every problem is named by row."""
    path = Path(path)
    text, sha = read_text(path, encoding, "answers file")
    rows, _ = read_table_csv(path, text, ("id", "answer"))
    answers: dict[str, str] = {}
    first_row: dict[str, int] = {}
    problems: list[str] = []
    for number, (i, raw) in rows:
        answer = raw.strip().lower()
        if not i:
            problems.append(f"{path}, row {number}, column id: empty id")
            continue
        if answer not in ANSWERS:
            problems.append(f"{path}, row {number}, column answer: {raw!r} is not yes, no or "
                            "unreachable")
        if i not in calls:
            problems.append(f"{path}, row {number}, column id: {i!r} is not in {calls_path}")
        if i in first_row:
            problems.append(f"{path}, row {number}, column id: {i!r} already answered in row "
                            f"{first_row[i]}")
            continue
        first_row[i] = number
        answers[i] = answer
    if problems:
        raise InputError(capped_problems(problems))
    return answers, sha


def _load_calls(calls_path: Path, features: list[str], encoding: str,
                household_column: str | None = None) -> tuple[Pool, pa.Table]:
    """The call list as a pool (ids, features, households) and as a full table (every column)."""
    pool = load_pool(calls_path, features, id_column="id", encoding=encoding,
                     household_column=household_column)
    table = read_rows(pool, np.arange(len(pool)))
    if "call_order" not in table.column_names:
        raise InputError(f"{calls_path}: no 'call_order' column (is it a call list written by "
                         "`sortition invite`?)")
    return pool, table


def _per_value(pool: Pool, yes: np.ndarray) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in pool.features:
        calls = np.bincount(pool.codes[f], minlength=len(pool.values[f]))
        resp = np.bincount(pool.codes[f][yes], minlength=len(pool.values[f]))
        out[f] = [{"value": v, "calls": int(c), "respondents": int(r),
                   "response_rate": round(int(r) / int(c), 6) if c else None}
                  for v, c, r in zip(pool.values[f], calls.tolist(), resp.tolist(), strict=True)]
    return out


def proxy_rates(pool: Pool, yes: np.ndarray, no: np.ndarray) -> str:
    """`feature,value,rate` (the format of `simulate --rates` and `draw --dropout-rates`) with
    rate = 1 − acceptance, acceptance being yes / (yes + no) among the calls of that value that
    were answered (unreachable ones left out), as a decimal of 4 places. A **proxy** for the
    dropout rate of people drawn, who have already said yes once: it ranks the groups, it does
    not measure how many drop out. A value nobody answered gets no row."""
    lines = ["feature,value,rate"]
    for f in pool.features:
        codes, n = pool.codes[f], len(pool.values[f])
        said_no = np.bincount(codes[no], minlength=n).tolist()
        answered = (np.bincount(codes[yes], minlength=n) + said_no).tolist()
        for v, k, a in zip(pool.values[f], said_no, answered, strict=True):
            if a:
                tenths = (20000 * k + a) // (2 * a)  # 10 000 · k / a, rounded half up
                rate = "1" if tenths == 10000 else f"0.{tenths:04d}"
                lines.append(f"{csv_field(f)},{csv_field(v)},{rate}")
    return "\n".join(lines) + "\n"


@dataclass
class RespondentsResult:
    """What `run_respondents` wrote: the respondent pool and its public audit, with the counts
    per answer and the pool's fingerprint."""

    out: Path
    audit_path: Path
    audit: dict
    counts: dict[str, int]
    fingerprint: str
    warnings: list[str]
    rates_out: Path | None = None


def _column_name(value: object, where: Path, field: str) -> str | None:
    """A household column recorded in an audit: a name, or None when it records none."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InputError(f"{where}: {field} {value!r} is not a column name")
    return value


def run_respondents(calls_path: Path, answers_path: Path, out: Path, *, encoding: str = "utf-8",
                    household_column: str | None = None,
                    progress: Callable[[str], None] | None = None,
                    force: bool = False, rates_out: Path | None = None) -> RespondentsResult:
    """Write the respondent pool (private) and its audit (public), atomically.

    `household_column` defaults to the one recorded in the call list's audit (when that audit is
    beside the call list and records one); the pool's fingerprint then includes the opaque
    household numbers of the respondents, and the audit records the column.
    """
    report = progress or (lambda _m: None)
    calls_path, answers_path, out = Path(calls_path), Path(answers_path), Path(out)
    given = [calls_path, answers_path, audit_path_for(calls_path)]
    check_pair(out, audit_path_for(out), inputs=given, force=force)
    if rates_out is not None:
        check_file(rates_out, inputs=given, force=force, option="--rates-out")
        for option, path in (("--out", out), ("--out's audit", audit_path_for(out))):
            if Path(rates_out).resolve() == path.resolve():
                raise InputError(f"--rates-out {rates_out}: the same file as {option} "
                                 "(nothing was written)")
    problems = []
    if out.suffix.lower() not in (".parquet", ".csv"):
        problems.append(f"--out {out}: must end in .parquet or .csv")
    audit_path = audit_path_for(out)
    calls_audit_path = audit_path_for(calls_path)
    if problems:
        raise InputError(problems)
    warnings: list[str] = []
    calls_audit = None
    features: list[str] = []
    if calls_audit_path.is_file():
        calls_audit = read_audit(calls_audit_path, CALLS_SCHEMA)
        try:
            features = [str(f) for f in calls_audit["parameters"]["features"]]
        except (KeyError, TypeError):
            raise InputError(f"{calls_audit_path}: no parameters.features") from None
        try:
            recorded = calls_audit["inputs"]["base"].get("household_column")
        except (KeyError, TypeError, AttributeError):
            raise InputError(f"{calls_audit_path}: no inputs.base") from None
        recorded_household = _column_name(recorded, calls_audit_path,
                                          "inputs.base.household_column")
        if household_column is None:
            household_column = recorded_household
        elif recorded_household is not None and recorded_household != household_column:
            warnings.append(f"--household-column {household_column}: the call list's audit "
                            f"records the household column {recorded_household!r}")
    else:
        warnings.append(f"{calls_audit_path}: not found, so the respondent pool's audit cannot "
                        "link to the call list's audit (recorded as null) and the fingerprint "
                        "covers the id only"
                        + (" and the households" if household_column is not None else ""))
    report("reading the call list…")
    pool, table = _load_calls(calls_path, features, encoding, household_column)
    ids = pool.ids.to_pylist()
    if calls_audit is not None:
        recorded = calls_audit.get("drawn_ids", {}).get("sha256")
        if ids_sha256(ids) != recorded:
            raise InputError(f"{calls_path}: its ids (SHA-256 {ids_sha256(ids)}) are not the "
                             f"call list recorded in {calls_audit_path} ({recorded})")
    report("reading the answers…")
    answers, answers_sha = read_answers(answers_path, set(ids), calls_path, encoding)
    yes = np.array([answers.get(i) == "yes" for i in ids], dtype=bool)
    counts = {"calls": len(ids), "yes": int(yes.sum()),
              "no": sum(1 for a in answers.values() if a == "no"),
              "unreachable": len(ids) - len(answers)
              + sum(1 for a in answers.values() if a == "unreachable"),
              "unreachable_answered": sum(1 for a in answers.values() if a == "unreachable"),
              "missing": len(ids) - len(answers)}
    if not counts["yes"]:
        raise InfeasibleError(f"{answers_path}: nobody answered yes, so the respondent pool "
                              "would be empty")
    kept = table.filter(pa.array(yes))
    try:
        order = pc.cast(kept.column("call_order"), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{calls_path}, column call_order: not whole numbers") from None
    kept = kept.set_column(kept.column_names.index("call_order"), "call_order", order)
    kept = kept.take(pc.sort_indices(kept, sort_keys=[("call_order", "ascending")]))
    respondent_ids = [i for i, y in zip(ids, yes.tolist(), strict=True) if y]
    here = audit_path.parent
    audit = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "inputs": {
            "calls_audit": (None if calls_audit is None else
                            {"file": relative(calls_audit_path, here),
                             "sha256": sha256_file(calls_audit_path)}),
            "calls": {"file": relative(calls_path, here), "calls": len(ids),
                      "ids_sha256": ids_sha256(ids)},
            "answers": {"file": relative(answers_path, here), "sha256": answers_sha,
                        "rows": len(answers)},
        },
        "features": features,
        "household_column": household_column,
        "counts": counts,
        "per_value": _per_value(pool, yes),
        "respondent_ids": {"count": len(respondent_ids), "sha256": ids_sha256(respondent_ids),
                           "encoding": "ids sorted by UTF-8 bytes, one per line, each ending "
                                       "in LF"},
    }
    report("writing the respondent pool…")
    fingerprint: list[str] = []

    def audit_data(written_path: Path) -> bytes:
        written = load_pool(written_path, features, id_column="id", encoding="utf-8",
                            household_column=household_column)
        fp = pool_fingerprint(written, build_strata(written, features))
        fingerprint.append(fp.sha256)
        audit["pool"] = {"file": relative(out, here), **fp.as_json()}
        audit["run"] = {"versions": versions()}
        return audit_bytes(audit)

    try:
        check_pair(out, audit_path, inputs=given, force=force)
        write_pair(out, lambda tmp: write_table(kept, tmp, like=out), audit_path, audit_data,
                   private=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot write ({e.strerror or e})") from None
    if rates_out is not None:
        no = np.array([answers.get(i) == "no" for i in ids], dtype=bool)
        try:
            write_text(rates_out, proxy_rates(pool, yes, no))
        except OSError as e:
            raise InputError(f"--rates-out {rates_out}: cannot write ({e.strerror or e})") \
                from None
    return RespondentsResult(out, audit_path, audit, counts, fingerprint[0], warnings,
                             rates_out)


def check_respondents_audit(audit_path: Path) -> list[str]:
    """Differences between a respondent pool's audit and the files beside it (empty: agree).

    Checks the call list's audit and the answers file by SHA-256, the pool by its fingerprint
    (loaded with the recorded household column) and, when the call list and the answers are
    there, that the pool holds exactly the calls answered yes.
    """
    audit_path = Path(audit_path)
    audit = read_audit(audit_path, SCHEMA)
    try:
        return _check(audit_path, audit)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        return [f"{audit_path}: malformed audit ({type(e).__name__}: {e})"]


def _check(audit_path: Path, audit: dict) -> list[str]:
    here = audit_path.parent
    out: list[str] = []
    try:
        inputs = audit["inputs"]
        features = [str(f) for f in audit["features"]]
        pool_block = audit["pool"]
    except (KeyError, TypeError) as e:
        return [f"{audit_path}: field {e} missing"]
    try:
        household = _column_name(audit.get("household_column"), audit_path,
                                 "household_column")
    except InputError as e:
        return list(e.problems)

    def same_file(block: dict | None, what: str) -> Path | None:
        if block is None:
            out.append(f"{what}: none recorded (it was missing when the pool was written)")
            return None
        path = regular_file(here, block.get("file"), where=f"{audit_path}, {what}")
        if path is None:
            out.append(f"{what} {here / str(block.get('file'))}: not found")
            return None
        found = sha256_file(path)
        if found != block.get("sha256"):
            out.append(f"{what} {path}: SHA-256 {found} differs from the recorded "
                       f"{block.get('sha256')}")
            return None
        return path

    same_file(inputs.get("calls_audit"), "call list audit")
    answers_path = same_file(inputs.get("answers"), "answers file")
    pool_path = regular_file(here, pool_block.get("file"), where=f"{audit_path}, pool.file")
    try:
        if pool_path is None:
            raise InputError(f"{here / str(pool_block.get('file'))}: not found")
        pool = load_pool(pool_path, features, id_column="id", household_column=household)
        fp = pool_fingerprint(pool, build_strata(pool, features))
    except InputError as e:
        out.extend(f"respondent pool: {p}" for p in e.problems)
    else:
        if fp.sha256 != pool_block.get("sha256"):
            out.append(f"respondent pool {pool_path}: fingerprint {fp.sha256} differs from the "
                       f"recorded {pool_block.get('sha256')}")
            out.extend(f"respondent pool: {line}" for line in
                       stratum_differences(pool_block.get("strata", []), fp))
    calls_path = regular_file(here, (inputs.get("calls") or {}).get("file"),
                              where=f"{audit_path}, inputs.calls.file")
    if answers_path is not None and calls_path is not None:
        try:
            calls = load_pool(calls_path, [], id_column="id")
            ids = calls.ids.to_pylist()
            answers, _ = read_answers(answers_path, set(ids), calls_path)
        except InputError as e:
            out.extend(f"recomputing the respondents: {p}" for p in e.problems)
        else:
            if ids_sha256(ids) != inputs.get("calls", {}).get("ids_sha256"):
                out.append(f"call list {calls_path}: its ids differ from the recorded ones")
            yes = [i for i in ids if answers.get(i) == "yes"]
            recorded = audit.get("respondent_ids", {}).get("sha256")
            if ids_sha256(yes) != recorded:
                out.append(f"respondents: the calls answered yes (SHA-256 {ids_sha256(yes)}) "
                           f"are not the recorded respondents ({recorded})")
    return out

