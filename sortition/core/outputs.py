"""One output policy for every command that writes: never destroy, never half-write.

Why one module: the rules below are what keeps an operator's contact base, a published lottery
and their home folder safe, so they are written once and every command goes through them.

- **Protected paths.** No command writes over, replaces or deletes one of its inputs, anything
  inside an input folder, a folder an input lives in, the current folder, the home folder, or any
  folder above one of these — with or without `--force`. A path given as a symbolic link is never
  replaced (the link is not ours), and is resolved before these checks.
- **`--force`.** An existing output file is replaced only with `--force`. A non-empty folder is
  replaced only with `--force`, and only when it is recognisably a bundle this tool wrote (an
  `audit.json` of ours and nothing but bundle files) that is not in the chain being built on.
- **Atomic writes.** A file is written under a fixed temporary name beside it and renamed into
  place. A bundle folder is built beside the target (`.NAME.sortition-new`), the old one renamed
  aside (`.NAME.sortition-old`), the new one renamed in. A pair (a file and its hash or audit) is
  written under pending names and renamed primary first, secondary last. A run killed half-way
  leaves only these fixed names, which the next run writing there completes or cleans
  (`recover_*`): the previous output is restored when the new one never arrived.
- **Private files** (contact data) are created 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import InputError
from .xlsx import split_sheet

BUNDLE_SCHEMA = "sortition-audit"
BUNDLE_FILES = frozenset({"audit.json", "report.html", "lottery.json", "panel.csv",
                          "probabilities.csv", "replacements.csv", "verify.html"})
MAX_AUDIT_BYTES = 256 << 20  # an audit.json read only to recognise a bundle of ours
NEW, OLD, PENDING = ".sortition-new", ".sortition-old", ".sortition-pending"

_UMASK = os.umask(0)
os.umask(_UMASK)


def _abs(path: str | os.PathLike[str]) -> Path:
    """The real absolute path: symbolic links resolved, `..` folded."""
    return Path(os.path.abspath(path)).resolve()


def _beside(target: Path, suffix: str) -> Path:
    """A fixed hidden name beside `target`, so that the next run finds what a killed one left."""
    return target.parent / f".{target.name}{suffix}"


# The protected paths ---------------------------------------------------------------------------


def protected(inputs: Iterable[str | os.PathLike[str] | None]) -> dict[Path, str]:
    """Every path no command may replace, with what it is (for the refusal message)."""
    out: dict[Path, str] = {}

    def add(path: Path, what: str) -> None:
        out.setdefault(path, what)
        for above in path.parents:
            out.setdefault(above, f"a folder holding {what}")

    given = [p for p in inputs if p is not None]
    for p in given:
        add(_abs(split_sheet(p)[0]), f"the input {p}")  # book.xlsx#Sheet: the book
    add(_abs(Path.cwd()), "the current folder")
    with contextlib.suppress(RuntimeError, KeyError):
        add(_abs(Path.home()), "the home folder")
    return out


def _input_folders(inputs: Iterable[str | os.PathLike[str] | None]) -> list[tuple[Path, str]]:
    return [(_abs(p), str(p)) for p in inputs if p is not None and Path(p).is_dir()]


def _refuse_protected(target: Path, option: str, inputs: list, chain: Iterable[Path] = ()
                      ) -> Path:
    """The resolved target, or exit 2 if writing there could destroy something not ours."""
    if os.path.islink(target):
        raise InputError(f"{option} {target}: is a symbolic link; a link is never replaced "
                         "(give the real path)")
    real = _abs(target)
    for link in chain:
        if _abs(link) == real:
            raise InputError(f"{option} {target}: is the bundle {link} of the chain being "
                             "built on; replacing it would destroy a published draw (nothing "
                             "was written)")
    why = protected(inputs).get(real)
    if why is not None:
        raise InputError(f"{option} {target}: is {why}; refusing to write over it, with or "
                         "without --force (nothing was written)")
    for folder, shown in _input_folders(inputs):
        if folder in real.parents:
            raise InputError(f"{option} {target}: is inside the input folder {shown}; "
                             "refusing to change an input (nothing was written)")
    return real


def check_file(target: str | os.PathLike[str], *, inputs: Iterable, force: bool,
               option: str = "--out") -> None:
    """May this command write the file `target`? Exit 2 with the reason if not."""
    target = Path(target)
    real = _refuse_protected(target, option, list(inputs))
    recover_file(real)
    if real.exists():
        if real.is_dir():
            raise InputError(f"{option} {target}: is a folder, not a file")
        if not real.is_file():
            raise InputError(f"{option} {target}: exists and is not a regular file")
        if not force:
            raise InputError(f"{option} {target}: already exists (use --force to replace it)")


def check_pair(primary: str | os.PathLike[str], secondary: str | os.PathLike[str], *,
               inputs: Iterable, force: bool, option: str = "--out") -> None:
    """May this command write the pair (a file and its hash or audit)? Exit 2 if not."""
    inputs = list(inputs)
    primary, secondary = Path(primary), Path(secondary)
    for path in (primary, secondary):
        _refuse_protected(path, option, inputs)
    if primary.parent.is_dir():
        recover_pair(_abs(primary), _abs(secondary))
    for path in (primary, secondary):
        check_file(path, inputs=inputs, force=force, option=option)


def check_folder(target: str | os.PathLike[str], *, inputs: Iterable, force: bool,
                 option: str = "--out", chain: Iterable[Path] = (),
                 owned: Callable[[Path], str | None] | None = None) -> None:
    """May this command replace the folder `target`? Exit 2 with the reason if not.

    `owned(path)` says why a non-empty folder is not ours (None when it is); by default it
    recognises a bundle (`bundle_problem`).
    """
    target = Path(target)
    real = _refuse_protected(target, option, list(inputs), chain)
    recover_folder(real, owned or bundle_problem)
    if not real.exists():
        return
    if not real.is_dir():
        raise InputError(f"{option} {target}: exists and is not a folder")
    entries = sorted(os.listdir(real))
    if not entries:
        return
    if not force:
        raise InputError(f"{option} {target}: folder is not empty (use --force to replace a "
                         "folder this tool wrote)")
    problem = (owned or bundle_problem)(real)
    if problem is not None:
        raise InputError(f"{option} {target}: --force refused: {problem}; replacing it would "
                         f"destroy {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
                         "this tool did not write (nothing was written)")


def bundle_problem(folder: Path, *, need_audit: bool = True) -> str | None:
    """Why `folder` is not a bundle this tool wrote (None when it is)."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            return f"it holds {entry.name!r}, which is not a file of a bundle"
        if entry.name not in BUNDLE_FILES:
            return f"it holds {entry.name!r}, which is not a file of a bundle"
    if not need_audit:
        return None
    audit = folder / "audit.json"
    try:
        if not audit.is_file() or audit.stat().st_size > MAX_AUDIT_BYTES:
            return "it has no audit.json of a sortition bundle"
        schema = json.loads(audit.read_bytes().decode("utf-8")).get("schema")
    except (OSError, ValueError, AttributeError):
        return "its audit.json is not one this tool wrote"
    if schema != BUNDLE_SCHEMA:
        return "its audit.json is not one this tool wrote"
    return None


# Writing ---------------------------------------------------------------------------------------


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _mode(private: bool) -> int:
    return 0o600 if private else 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success.

    The temporary name is fixed (`.NAME.sortition-new`) so that a killed run's leftover is
    found and removed by the next one. `private`: created 0600 (contact data).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _beside(target, NEW)
    _remove(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.chmod(tmp, _mode(private))
    try:
        yield tmp
        os.chmod(tmp, _mode(private))  # a writer may have re-created the file
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def write_file(target: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write bytes atomically (see `atomic_path`)."""
    with atomic_path(target, private=private) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str, *, private: bool = False) -> None:
    """Write UTF-8 text with Unix newlines, atomically."""
    write_file(target, text.encode("utf-8"), private=private)


def recover_file(target: Path) -> None:
    """Remove what a killed single-file write left beside `target`."""
    leftover = _beside(target, NEW)
    if os.path.lexists(leftover) and not leftover.is_dir():
        _remove(leftover)


def write_pair(primary: Path, write_primary: Callable[[Path], object], secondary: Path,
               make_secondary: Callable[[Path], bytes], *, private: bool = False) -> None:
    """Write a file and its companion (hash or audit) so that both appear or neither does.

    `write_primary(path)` writes the primary; `make_secondary(path)` reads it there and
    returns the companion's bytes. Both go to pending names first; the old companion is set
    aside, the primary renamed in, then the companion. `recover_pair` finishes or undoes a run
    killed between two steps. `private`: the primary is created 0600 (contact data).
    """
    primary, secondary = Path(primary), Path(secondary)
    primary.parent.mkdir(parents=True, exist_ok=True)
    recover_pair(primary, secondary)
    p_new, s_new, s_old = (_beside(primary, PENDING), _beside(secondary, PENDING),
                           _beside(secondary, OLD))
    try:
        for path, mode in ((p_new, _mode(private)), (s_new, _mode(False))):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.chmod(path, mode)
        write_primary(p_new)
        os.chmod(p_new, _mode(private))
        s_new.write_bytes(make_secondary(p_new))
        if os.path.lexists(secondary):
            os.replace(secondary, s_old)
        os.replace(p_new, primary)
    except BaseException:
        recover_pair(primary, secondary)
        raise
    os.replace(s_new, secondary)
    _remove(s_old)


def recover_pair(primary: Path, secondary: Path) -> str | None:
    """Finish or undo a pair write that was killed; say what was done (None: nothing to do)."""
    p_new, s_new, s_old = (_beside(primary, PENDING), _beside(secondary, PENDING),
                           _beside(secondary, OLD))
    if os.path.lexists(p_new):  # killed before the primary was renamed in: undo
        _remove(p_new)
        _remove(s_new)
        if os.path.lexists(s_old) and not os.path.lexists(secondary):
            os.replace(s_old, secondary)
        _remove(s_old)
        return "undone"
    if os.path.lexists(s_new):  # the new primary is in place: give it its companion
        os.replace(s_new, secondary)
        _remove(s_old)
        return "completed"
    if os.path.lexists(s_old):
        _remove(s_old)
    return None


def write_folder(target: str | os.PathLike[str], files: dict[str, bytes]) -> None:
    """Build the folder beside `target` and swap it into place (see the module docstring).

    The caller has checked the target with `check_folder`; it is checked again right before
    the swap, in case it changed meanwhile.
    """
    target = _abs(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target, bundle_problem)
    new, old = _beside(target, NEW), _beside(target, OLD)
    os.mkdir(new, 0o700)
    try:
        for name in sorted(files):
            fd = os.open(new / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode(False))
            with os.fdopen(fd, "wb") as fh:
                fh.write(files[name])
        os.chmod(new, 0o777 & ~_UMASK)
        if target.exists():
            if os.listdir(target) and bundle_problem(target) is not None:
                raise InputError(f"{target}: changed while the bundle was being written; "
                                 "nothing was replaced")
            os.replace(target, old)
        os.replace(new, target)
    except BaseException:
        _remove(new)
        if os.path.lexists(old) and not os.path.lexists(target):
            os.replace(old, target)
        raise
    _remove(old)


def recover_folder(target: Path, owned: Callable[[Path], str | None]) -> None:
    """Restore or clean what a killed folder swap left beside `target`.

    `.NAME.sortition-old` with no NAME: the swap was cut between its two renames, so the
    previous output goes back in place. Otherwise leftovers are removed — only when they hold
    nothing but what this tool writes there.
    """
    new, old = _beside(target, NEW), _beside(target, OLD)
    if old.is_dir() and not old.is_symlink():
        if not os.path.lexists(target):
            os.replace(old, target)
        elif owned(old) is None:
            shutil.rmtree(old)
    if new.is_dir() and not new.is_symlink() and bundle_problem(new, need_audit=False) is None:
        shutil.rmtree(new)
