"""verify.html: the garants' check in a browser, shipped inside the package.

The page is a second, independent implementation of the draw check (docs/draw-spec.md) in
JavaScript, for garants who do not install Python. The checker must not come from the party
being checked, so the authoritative copy is this packaged file (`sortition verifier -o FILE`,
its SHA-256 printed in the README); the copy in a bundle is for convenience, and
`sortition verify` checks that it is byte-identical to this one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from importlib.resources import files

from ...core.outputs import check_file, write_file

NAME = "verify.html"


def page_bytes() -> bytes:
    """The packaged verify.html, byte for byte."""
    return files(__name__).joinpath(NAME).read_bytes()


def page_sha256() -> str:
    """The SHA-256 a garant compares with the one published in the README."""
    return hashlib.sha256(page_bytes()).hexdigest()


def write_page(out: str | os.PathLike[str], *, force: bool,
               inputs: Iterable[str | os.PathLike[str] | None] = ()) -> str:
    """Write the packaged page through the output policy (never over a file without force);
    return its SHA-256."""
    check_file(out, inputs=inputs, force=force)
    write_file(out, page_bytes())
    return page_sha256()
