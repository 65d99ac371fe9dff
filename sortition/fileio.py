"""CSV cells written the same way everywhere (atomic writing lives in `outputs`)."""

from __future__ import annotations


def csv_field(value: str) -> str:
    """One CSV cell: quoted (quotes doubled) only when it holds a comma, a quote or a line break."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
