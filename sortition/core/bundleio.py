"""Reading a bundle as hostile input: the one place where bundle and chain files are opened.

A bundle is published, so anyone may hand a garant a folder written to hang `verify`, exhaust
its memory, make it read files elsewhere on the garant's machine or confuse its output. The
rules (docs/bundle-format.md, section 13.4):

* files are named by plain names (no `/`, no `..`, no absolute path) inside one folder: the
  bundle, or for chain files the pool's folder; the previous bundle of a replacement bundle is
  exactly one sibling folder, `../NAME`, not a symbolic link;
* only regular files are read — never a symbolic link, a device or a FIFO (opened with
  O_NOFOLLOW | O_NONBLOCK, checked with fstat) — and never more than the file's cap;
* JSON is strict: duplicate keys (which parsers resolve differently), NaN and Infinity,
  overlong numbers and deep nesting are refused before they cost anything;
* every field is read with its type checked, and any problem is one InputError line naming the
  file and the field (exit 2).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from .errors import InputError
from .limits import MAX_CHAIN, MAX_JSON_DEPTH, MAX_NUMBER_CHARS, Cap, count_problem
from .terminal import printable


class MissingFile(InputError):
    """A plainly named file that does not exist: `verify` reports it as a difference."""


def show(value: object, limit: int = 60) -> str:
    """A short, printable rendering of a value read from a file, for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = printable(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def plain_name(name: object, where: str) -> str:
    """`name` when it names a file directly inside a folder, else InputError naming `where`."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name
            or printable(name) != name):
        raise InputError(f"{where}: {show(name)} is not a plain file name (no '/', no '..', "
                         "no absolute path, no control character)")
    return name


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _too_big(label: str, cap: Cap) -> InputError:
    return InputError(f"{label}: more than {cap.value:,} bytes ({cap.why})")


def read_regular(folder: Path, name: object, cap: Cap, *, label: str | None = None,
                 where: str | None = None,
                 only: str = "a bundle holds regular files only") -> bytes:
    """The bytes of the regular file `folder/name`, at most `cap` of them.

    `name` must be plain (`where` names the field it came from); a symbolic link, a device, a
    FIFO or a file over the cap is refused (InputError), a missing file is MissingFile. The
    file is checked with lstat before it is opened (so a device is never opened), opened
    without following links and without blocking, and checked again with fstat.
    """
    name = plain_name(name, where or str(folder))
    label = label or name
    path = Path(folder) / name
    try:
        before = os.lstat(path)
    except FileNotFoundError:
        raise MissingFile(f"{label}: not found") from None
    except OSError as e:
        raise InputError(f"{label}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(before.st_mode):
        raise InputError(f"{label}: {_kind(before.st_mode)}, not a regular file ({only})")
    if before.st_size > cap.value:
        raise _too_big(label, cap)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        what = ("a symbolic link" if e.errno == errno.ELOOP else (e.strerror or str(e)))
        raise InputError(f"{label}: cannot be read ({what})") from None
    try:
        now = os.fstat(fd)
        if (not stat.S_ISREG(now.st_mode)
                or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino)):
            raise InputError(f"{label}: changed while being opened (not a regular file)")
        chunks: list[bytes] = []
        total = 0
        while total <= cap.value:
            chunk = os.read(fd, min(1 << 20, cap.value + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as e:
        raise InputError(f"{label}: cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if total > cap.value:
        raise _too_big(label, cap)
    return b"".join(chunks)


def read_given(path: Path, cap: Cap, label: str) -> bytes:
    """The bytes of a file named on the command line: a link is followed (it is the user's own
    file), then as `read_regular` — a FIFO, a device or a folder is refused before it is opened
    (so nothing blocks), and so is a file over the cap."""
    try:
        real = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise MissingFile(f"{label}: not found") from None
    except (OSError, RuntimeError) as e:
        raise InputError(f"{label}: cannot be read ({e})") from None
    return read_regular(real.parent, real.name, cap, label=label, where=label,
                        only="give a regular file")


def regular_file(folder: Path, name: object, *, where: str) -> Path | None:
    """`folder/name` when it is a regular file (for readers that open it themselves, such as
    the pool loaders); None when missing; InputError for a name that is not plain or a file
    that is not regular."""
    name = plain_name(name, where)
    path = Path(folder) / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{where}: {path} is {_kind(mode)}, not a regular file")
    return path


def plain_folder(folder: Path, name: object, *, where: str) -> Path:
    """`folder/name` for a folder named by a plain name (not a symbolic link), else InputError."""
    name = plain_name(name, where)
    path = Path(folder) / name
    try:
        mode = os.lstat(path).st_mode
    except OSError as e:
        raise InputError(f"{where}: {path}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISDIR(mode):
        raise InputError(f"{where}: {path} is {_kind(mode)}, not a folder")
    return path


def sibling_folder(bundle: Path, recorded: object, where: str) -> Path:
    """The folder `../NAME` recorded in `bundle` (the previous bundle of a replacement).

    Only one sibling folder is allowed: not the bundle itself, not a symbolic link, nothing
    further away — so a published bundle cannot make `verify` read elsewhere.
    """
    if not isinstance(recorded, str) or not recorded.startswith("../"):
        raise InputError(f"{where}: {show(recorded)} is not '../NAME' (the previous bundle must "
                         "be a folder beside this one)")
    try:
        name = plain_name(recorded[3:], where)
    except InputError:
        raise InputError(f"{where}: {show(recorded)} is not '../NAME' with NAME a plain folder "
                         "name (the previous bundle must be a folder beside this one)") from None
    here = Path(bundle).resolve()
    folder = here.parent / name
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        raise InputError(f"{where}: the previous bundle {printable(name)} is not beside this "
                         "one") from None
    except OSError as e:
        raise InputError(f"{where}: {printable(name)}: cannot be read ({e.strerror or e})"
                         ) from None
    if not stat.S_ISDIR(mode):
        raise InputError(f"{where}: {printable(name)} is {_kind(mode)}, not a bundle folder")
    if folder == here:
        raise InputError(f"{where}: {show(recorded)} is this bundle itself")
    return folder


def previous_bundle(bundle: Path, audit: dict, label: str, seen: tuple[Path, ...]
                    ) -> tuple[Path, tuple[Path, ...]]:
    """One step down a replacement chain: the previous bundle's folder (`sibling_folder`) and
    the chain seen so far, this bundle included. A chain longer than the cap, or one that
    loops, is refused rather than followed."""
    seen = (*seen, Path(bundle).resolve())
    if len(seen) > MAX_CHAIN.value:
        raise InputError(f"{label}, previous.path: the chain is longer than "
                         f"{MAX_CHAIN.value:,} bundles ({MAX_CHAIN.why})")
    folder = sibling_folder(bundle, typed(audit, "previous.path", str, label),
                            f"{label}, previous.path")
    if folder in seen:
        raise InputError(f"{label}, previous.path: the chain of previous bundles loops back "
                         f"to {folder.name}")
    return folder, seen


# --- strict JSON -------------------------------------------------------------------------------

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(data: bytes) -> int:
    """The deepest nesting of `[` and `{` outside strings, counted without parsing."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def strict_json(data: bytes, source: str) -> Any:
    """The JSON value of `data`, refusing what readers could disagree on or choke on.

    Refused (InputError naming `source`): text that is not UTF-8, nesting deeper than
    MAX_JSON_DEPTH (checked before parsing, so it never reaches the recursion limit), a key
    twice in one object, NaN or Infinity, a number longer than MAX_NUMBER_CHARS or too large
    for a double.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not UTF-8 text (byte {e.start + 1})") from None
    if json_depth(data) > MAX_JSON_DEPTH.value:
        raise InputError(f"{source}: nested more than {MAX_JSON_DEPTH.value} levels deep "
                         f"({MAX_JSON_DEPTH.why})")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise InputError(f"{source}: key {show(key)} appears twice in one object "
                                 "(JSON readers disagree on which one counts)")
            out[key] = value
        return out

    def number(s: str) -> str:
        if len(s) > MAX_NUMBER_CHARS.value:
            raise InputError(f"{source}: number {show(s[:20])}… has more than "
                             f"{MAX_NUMBER_CHARS.value} characters ({MAX_NUMBER_CHARS.why})")
        return s

    def to_float(s: str) -> float:
        x = float(number(s))
        if not math.isfinite(x):
            raise InputError(f"{source}: number {show(s)} is too large")
        return x

    def constant(s: str) -> Any:
        raise InputError(f"{source}: {s} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_int=lambda s: int(number(s)),
                          parse_float=to_float, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: not valid JSON ({e.msg}, line {e.lineno} column "
                         f"{e.colno})") from None
    except RecursionError:  # defensive: the depth check comes first
        raise InputError(f"{source}: nested too deep") from None


def read_json(folder: Path, name: str, cap: Cap, *, label: str | None = None) -> Any:
    """A JSON file of a bundle: read_regular, then strict_json."""
    return strict_json(read_regular(folder, name, cap, label=label), label or name)


# --- typed fields ------------------------------------------------------------------------------

_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a whole number",
               float: "a number", bool: "true or false", type(None): "null"}


def _is(value: object, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def field(doc: object, path: str, kind: type | tuple[type, ...], source: str, *,
          optional: bool = False) -> Any:
    """`doc`'s value at the dotted `path`, checked to be of `kind` (a tuple: any of them).

    A missing key, or a step that is not an object, is an InputError naming `source` and the
    path; with `optional`, a missing key gives None. `int` never accepts true or false.
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    node = doc
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, dict):
            at = ".".join(walked) or "the top level"
            raise InputError(f"{source}, {at}: expected an object, found {show(node)}")
        if part not in node:
            if optional:
                return None
            raise InputError(f"{source}, {path}: missing")
        node = node[part]
        walked.append(part)
    if not any(_is(node, k) for k in kinds):
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise InputError(f"{source}, {path}: expected {wanted}, found {show(node)}")
    return node


typed = field  # for modules where `field` is dataclasses.field


def obj(doc: object, path: str, source: str, *, optional: bool = False) -> dict:
    """An object field (`{}` when optional and missing or null)."""
    value = field(doc, path, (dict, type(None)) if optional else dict, source,
                  optional=optional)
    return {} if value is None else value


@overload
def count(doc: object, path: str, source: str, cap: Cap, *, minimum: int = 0,
          optional: Literal[False] = False) -> int: ...
@overload
def count(doc: object, path: str, source: str, cap: Cap, *, minimum: int = 0,
          optional: bool) -> int | None: ...
def count(doc: object, path: str, source: str, cap: Cap, *, minimum: int = 0,
          optional: bool = False) -> int | None:
    """A whole-number field between `minimum` and the cap (checked before it is used); None
    only when `optional` and missing or null."""
    value = field(doc, path, (int, type(None)) if optional else int, source, optional=optional)
    if value is None:
        return None
    problem = count_problem(f"{source}, {path}", value, maximum=cap, minimum=minimum)
    if problem:
        raise InputError(problem)
    return value


@overload
def texts(doc: object, path: str, source: str, cap: Cap | None, *,
          optional: Literal[False] = False) -> list[str]: ...
@overload
def texts(doc: object, path: str, source: str, cap: Cap | None, *, optional: bool
          ) -> list[str] | None: ...
def texts(doc: object, path: str, source: str, cap: Cap | None, *, optional: bool = False
          ) -> list[str] | None:
    """A list of strings of at most `cap` items (`cap` None: bounded by the file's size only);
    None only when `optional` and missing or null."""
    value = field(doc, path, (list, type(None)) if optional else list, source,
                  optional=optional)
    if value is None:
        return None
    if cap is not None and len(value) > cap.value:
        raise InputError(f"{source}, {path}: {len(value):,} items, at most {cap.value:,} "
                         f"({cap.why})")
    for k, item in enumerate(value):
        if not isinstance(item, str):
            raise InputError(f"{source}, {path}[{k}]: expected a string, found {show(item)}")
    return value


def file_hashes(doc: object, path: str, source: str) -> dict[str, str]:
    """A `files` object: plain file names of the folder → SHA-256 strings."""
    value = obj(doc, path, source, optional=True)
    for name, sha in value.items():
        plain_name(name, f"{source}, {path}")
        if not isinstance(sha, str):
            raise InputError(f"{source}, {path}.{printable(name)}: expected a string, found "
                             f"{show(sha)}")
    return value
