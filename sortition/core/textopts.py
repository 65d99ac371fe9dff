"""Free-text options (seeds, title, column names…): refused when they are not valid UTF-8.

On Linux, Python decodes the command line with `surrogateescape`: a byte that is not valid UTF-8
(a script in Latin-1, a mangled paste) becomes a lone surrogate in the `str`. Such text cannot be
recorded, published or compared, so it is refused with the byte's value and position rather
than failing later with a misleading message ("the seed is empty", "column not found").
"""

from __future__ import annotations

from . import drawspec as drawing
from .errors import InputError

_ESCAPED = range(0xDC80, 0xDD00)  # surrogateescape's range: byte b is stored as U+DC00 + b


def check_text(option: str, value: str | None) -> str | None:
    """`value` unchanged when it is valid UTF-8 text (or None), else InputError saying why."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{option}: must be text, got {type(value).__name__}")
    for i, c in enumerate(value):
        if "\ud800" <= c <= "\udfff":
            at = len(value[:i].encode("utf-8")) + 1  # 1-based byte position in the argument
            what = (f"byte 0x{ord(c) - 0xDC00:02x}" if ord(c) in _ESCAPED
                    else f"lone surrogate U+{ord(c):04X}")
            raise InputError(f"{option}: not valid UTF-8 text ({what} at position {at}); the "
                             "command line must be UTF-8 (check the terminal's or the script's "
                             "encoding)")
    return value


def seed_option(option: str, seed: str, purpose: str | None = None) -> bytes:
    """The seed's bytes for the draw; an empty or non-UTF-8 seed is refused, naming `option`.

    `purpose`: what the seed was announced for ("the draw", "the household pre-draw"…).
    """
    check_text(option, seed)
    if not seed:
        raise InputError(f"{option}: the seed is empty"
                         + (f"; give the public text announced for {purpose}" if purpose else ""))
    return drawing.seed_bytes(seed)
