"""The public audits written beside private tables — a call list's or a respondent pool's
`<stem>.audit.json` — and what their writers and checkers share: the audit's name beside its
table, its bytes (the same JSON layout as a bundle's `audit.json`), the `run` block's versions,
and the hashes that bind it to files and ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .bundleio import MissingFile, read_json
from .errors import InputError
from .limits import MAX_AUDIT_BYTES

CALLS_SCHEMA = "sortition-calls"  # a call list's audit (`invite`)
RESPONDENTS_SCHEMA = "sortition-respondents"  # a respondent pool's audit (`respondents`)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def audit_path_for(out: Path) -> Path:
    """`calls.parquet` → `calls.audit.json`, beside it."""
    out = Path(out)
    return out.parent / f"{out.stem}.audit.json"


def relative(target: Path, start: Path) -> str:
    """`target` relative to the folder `start`, with '/' separators (for public audits)."""
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def ids_sha256(ids: Sequence[str]) -> str:
    """SHA-256 of the ids sorted by UTF-8 bytes, one per line, each line ending in LF."""
    h = hashlib.sha256()
    for i in sorted(ids, key=_utf8):
        h.update(_utf8(i) + b"\n")
    return h.hexdigest()


def audit_bytes(audit: dict) -> bytes:
    return (json.dumps(audit, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def read_audit(path: Path, schema: str) -> dict:
    """A public audit (JSON) of the given schema; an unreadable one is an input error."""
    path = Path(path)
    try:
        data = read_json(path.parent, path.name, MAX_AUDIT_BYTES, label=str(path))
    except MissingFile:
        raise InputError(f"{path}: audit file not found") from None
    if not isinstance(data, dict) or data.get("schema") != schema:
        raise InputError(f"{path}: not a {schema} audit")
    return data


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("sortition", "ortools", "numpy", "pyarrow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out
