"""Text that reaches the terminal: whatever came from an input is shown, never obeyed.

Ids, paths, seeds and recorded values come from bundles and pools anyone can write. Printed
raw, an escape sequence can move the cursor, erase the "NOT verified" line and print a fake
"verified"; a bidi override can reorder what the reader sees. Every such character is shown
as a visible escape instead (`\\x1b`, `\\u202e`), and a lone surrogate (a path byte that is not
UTF-8) as `\\udcXX`, which would otherwise stop the printing with an encoding error.
"""

from __future__ import annotations

import json
import re

# C0 controls, DEL, C1 controls, line/paragraph separators, bidi marks, embeddings, overrides
# and isolates, and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: object) -> str:
    """`text` with every control, bidi or surrogate character replaced by a visible escape."""
    return _UNSAFE.sub(_escape, str(text))


# In JSON text these characters can only sit inside strings (json.dumps escapes C0 and the
# quote itself), where \\uXXXX is the same value to any JSON reader.
_UNSAFE_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                          "\u2066-\u2069\ud800-\udfff]")


def json_text(value: object, *, indent: int | None = 2) -> str:
    """json.dumps(ensure_ascii=False), with DEL, C1, bidi and surrogate characters escaped as
    \\uXXXX too (json.dumps escapes only C0): the same JSON value, safe on a terminal."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
