"""Safe file output: files appear complete or not at all, nothing is replaced unasked.

Every writer in the package goes through :func:`atomic_path`, which yields a temporary path in
the destination folder and renames it onto the destination only when the block succeeded; the
file then has the mode that the umask gives a new file (``tempfile`` creates it ``0600``).

A command checks its output places *before* any work with :class:`OutputPlan` (or the single
checks :func:`check_output_file`, :func:`check_output_folder`, :func:`check_distinct`): an
existing output is refused unless ``force``, a folder is never emptied, an input is never an
output, and a place that is not a writable folder is named. Folder outputs are written through
:func:`output_folder`, which stages the files and moves them in at the end.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["OutputError", "OutputPlan", "atomic_path", "check_distinct", "check_output_file",
           "check_output_folder", "file_mode", "output_folder", "repo_root", "write_json",
           "write_text"]

PathLike = str | os.PathLike
#: Given an existing folder, the names of the entries an earlier output of the same writer left
#: in it (those that ``force`` may replace or remove), or None when it holds no such output.
PreviousOutput = Callable[[Path], Collection[str] | None]

_STAGE_PREFIX = ".partial-"


class OutputError(ValueError):
    """An output place that cannot be used.

    It exists (without ``force``), is a file where a folder is needed (or the reverse), is not
    writable, holds files of others, or is an input.
    """


def _umask() -> int:
    """Return the process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Return the permission bits of a new file under the current umask.

    Returns
    -------
    int
        ``0o666 & ~umask``.
    """
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(dest: PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` if the block succeeds.

    Parameters
    ----------
    dest : str or os.PathLike
        The file to write. Missing parent folders are created (with the umask's mode).
    suffix : str or None
        Suffix of the temporary file (default: that of ``dest``), for writers that look at it.

    Yields
    ------
    Path
        The temporary file (hidden, in ``dest``'s folder). On success it gets the mode a new
        file has under the umask and replaces ``dest``; on any exception (Ctrl-C included) it
        is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sfx = suffix if suffix is not None else "".join(dest.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=sfx, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(dest: PathLike, text: str) -> Path:
    """Write ``text`` to ``dest`` atomically (see :func:`atomic_path`).

    Parameters
    ----------
    dest : str or os.PathLike
        The file to write (missing parent folders are created).
    text : str
        The whole content.

    Returns
    -------
    Path
        ``dest``.
    """
    with atomic_path(dest) as tmp:
        tmp.write_text(text)
    return Path(dest)


def write_json(dest: PathLike, data: object) -> Path:
    """Write ``data`` as indented JSON to ``dest`` atomically.

    Parameters
    ----------
    dest : str or os.PathLike
        The file to write (missing parent folders are created).
    data : object
        JSON-like data; numpy / torch scalars and arrays become lists or numbers, paths
        strings.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ValueError
        If ``data`` holds NaN or infinity (write None for a missing number); nothing is written.
    TypeError
        If ``data`` holds an object JSON cannot represent; nothing is written.
    """
    return write_text(dest, json.dumps(data, indent=2, allow_nan=False, default=_to_builtin) + "\n")


def _to_builtin(obj: Any) -> Any:
    """Convert numpy / torch scalars and arrays, and paths, for JSON (``json``'s fallback)."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def repo_root() -> Path:
    """Return the repository root.

    Returns
    -------
    Path
        The folder holding ``pyproject.toml`` above the package, or the working folder when the
        package is installed elsewhere.
    """
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


# --- checks of output places, before any work ----------------------------------------------

def _check_place(folder: Path) -> None:
    """Check that files can be created in ``folder``.

    Where ``folder`` does not exist yet, its nearest existing ancestor must be a writable folder.
    """
    anc = folder
    while not (anc.exists() or anc.is_symlink()):
        if anc.parent == anc:
            break
        anc = anc.parent
    if anc.is_symlink() and not anc.exists():
        raise OutputError(f"{anc} is a broken symbolic link; cannot write below it")
    if not anc.is_dir():
        raise OutputError(f"{anc} is a file, not a folder; cannot write {folder} below it")
    what = "folder" if anc == folder else f"folder (to create {folder} in)"
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{anc}: {what} is not writable (permission denied)")
    try:  # the real test: a read-only file system or an ACL passes os.access for root
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=anc)
    except OSError as exc:
        raise OutputError(f"{anc}: {what} is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: PathLike, *, force: bool = False, hint: str | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as a file.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    force : bool
        Allow replacing an existing file (it is then replaced atomically).
    hint : str or None
        What to tell the user when the file exists (default: that ``--force`` replaces it).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        ``path`` is a folder, exists (without ``force``), or its folder is not writable (or a
        file stands where a folder is needed).
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p} is a folder; give a file name")
    if (p.exists() or p.is_symlink()) and not force:
        raise OutputError(f"{p} exists; {hint or 'pass --force to replace it'}")
    _check_place(p.parent)
    return p


def check_output_folder(path: PathLike, *, force: bool = False,
                        previous: PreviousOutput | None = None) -> Path:
    """Check, before any work, that ``path`` can receive a folder output.

    Parameters
    ----------
    path : str or os.PathLike
        The output folder: new, empty, or (with ``force``) holding only an earlier output of
        the same writer.
    force : bool
        Allow a folder that holds an earlier output (its files are replaced or removed at the
        end); a folder holding anything else is refused even with ``force``.
    previous : callable or None
        ``previous(folder)``: the entries of an earlier output in ``folder`` (see
        :data:`PreviousOutput`); None: no earlier output is recognised.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        ``path`` is a file, is not writable, is not empty (without ``force``), or holds
        entries that are not an earlier output.
    """
    p = Path(path)
    if (p.exists() or p.is_symlink()) and not p.is_dir():
        raise OutputError(f"{p} is a file; give a folder (new or empty)")
    _check_place(p)
    if not p.is_dir():
        return p
    entries = set(os.listdir(p))
    if not entries:
        return p
    if not force:
        raise OutputError(f"{p} is not empty; give a new or empty folder, or pass --force to "
                          "replace an earlier output of this command there")
    ours = set((previous(p) if previous is not None else None) or ())
    others = sorted(entries - ours)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        what = "an entry that is" if len(others) == 1 else f"{len(others)} entries that are"
        raise OutputError(f"{p} holds {what} not an earlier output of this command ({shown}); "
                          "nothing there is touched: give a new or empty folder")
    return p


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_distinct(inputs: Iterable[PathLike | None], outputs: Iterable[PathLike | None]) -> None:
    """Refuse an output that is one of the inputs (same file after resolving links).

    Parameters
    ----------
    inputs, outputs : iterables of paths (None entries are skipped)
        The files read and the files (or folders) written.

    Raises
    ------
    OutputError
        Naming the output and the input it would overwrite.
    """
    ins = [Path(i) for i in inputs if i is not None]
    for o in (Path(x) for x in outputs if x is not None):
        for i in ins:
            if _same(o, i):
                raise OutputError(f"output {o} is also an input ({i}); write it elsewhere")


@dataclass
class OutputPlan:
    """What a command reads and writes, checked as a whole before any work.

    Attributes
    ----------
    files : list of Path
        Output files.
    folders : list of tuple (Path, PreviousOutput or None)
        Output folders and how to recognise an earlier output in them.
    inputs : list of Path
        Files read (an output may not be one of them).
    exists_hint : str or None
        What to tell the user when an output file exists (default: ``--force`` replaces it).
    force : bool or None
        Override of the command's ``--force`` (e.g. ``train --resume`` continues its files).
    """

    files: Sequence[PathLike | None] = ()
    folders: Sequence[tuple[PathLike, PreviousOutput | None]] = ()
    inputs: Sequence[PathLike | None] = ()
    exists_hint: str | None = None
    force: bool | None = None

    def check(self, force: bool = False) -> None:
        """Run every check before any work.

        Parameters
        ----------
        force : bool
            The command's ``--force``, unless the plan overrides it.

        Raises
        ------
        OutputError
            From :func:`check_distinct`, :func:`check_output_file` or
            :func:`check_output_folder`.
        """
        f = self.force if self.force is not None else force
        files = [Path(p) for p in self.files if p is not None]
        check_distinct(self.inputs, files + [Path(d) for d, _ in self.folders])
        for p in files:
            check_output_file(p, force=f, hint=self.exists_hint)
        for d, prev in self.folders:
            check_output_folder(d, force=f, previous=prev)


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)  # the umask applies
    return list(reversed(missing))


@contextlib.contextmanager
def output_folder(dest: PathLike, *, force: bool = False,
                  previous: PreviousOutput | None = None) -> Iterator[Path]:
    """Write a folder output: yield a staging folder inside ``dest``, publish it on success.

    Parameters
    ----------
    dest : str or os.PathLike
        The output folder (created if missing, with its parents). Checked first with
        :func:`check_output_folder` (same ``force`` and ``previous``).
    force : bool
        Replace an earlier output (``previous(dest)``) found in ``dest``.
    previous : callable or None
        Recognises an earlier output; see :data:`PreviousOutput`.

    Yields
    ------
    Path
        A hidden staging folder ``dest/.partial-*``; write every output file into it. When the
        block succeeds its files are renamed into ``dest`` (each atomically, replacing
        same-named files of the earlier output), the earlier output's other entries are
        removed, and the staging folder is removed. On any exception (Ctrl-C included) the
        staging folder and the folders created for it are removed: ``dest`` is as before.

    Raises
    ------
    OutputError
        From the checks, or when a file of the new output appeared in ``dest`` meanwhile.
    """
    dest = Path(dest)
    check_output_folder(dest, force=force, previous=previous)
    created = _make_dirs(dest)
    old = set(previous(dest) or ()) if (previous is not None and force and not created) else set()
    stage = Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, dir=dest))
    try:
        yield stage
        names = sorted(os.listdir(stage))
        for n in names:
            target = dest / n
            if (target.exists() or target.is_symlink()) and n not in old:
                raise OutputError(f"{target} appeared while the output was written; it is left "
                                  f"alone and the new output was not published")
            if (stage / n).is_dir() and target.exists():
                raise OutputError(f"{target}: cannot replace a folder; nothing was published")
        for n in names:
            os.replace(stage / n, dest / n)
        for n in sorted(old - set(names)):
            stale = dest / n
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
        os.rmdir(stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
