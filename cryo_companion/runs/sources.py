"""What a run was made from: a hash of the package's sources and the git commit with its dirty flag.

An executed chapter depends on its own ``.py`` and on the package code it calls. Which modules a
chapter really reaches is not visible from its imports alone (the CLI and the benchmarks find
their modules at run time, chapters call each other's results and the simulator through several
layers), and a stale chapter taken for a current one is the defect this guards against, so the
whole package counts: every file under ``cryo_companion/`` (modules and package data such as the
frozen test-domain record), except byte-code caches and hidden files (editor and atomic-write
temporaries). Tests, notebooks, results and the book do not count: they are not code that a
chapter runs. The hash is of file contents and relative paths only, so it is the same on any
machine and in a copy of the tree without ``.git`` (a GPU machine).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from cryo_companion._io import repo_root

__all__ = ["PACKAGE", "changed_since", "file_sha256", "files_sha256", "git_state", "package_files",
           "package_sha256"]

#: The package folder, relative to the repository root.
PACKAGE = "cryo_companion"


def file_sha256(path: str | os.PathLike) -> str:
    """Hash one file's bytes (SHA-256, hex).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_files(root: Path | None = None) -> list[Path]:
    """List every file that counts as the package's source, sorted by relative path.

    Parameters
    ----------
    root : Path or None
        Repository root (the folder holding ``cryo_companion/``); default: this repository.

    Returns
    -------
    list of Path
        Files under ``ROOT/cryo_companion`` except ``__pycache__`` folders, ``*.pyc`` / ``*.pyo``
        files and names starting with ``.``.

    Raises
    ------
    FileNotFoundError
        If ``ROOT/cryo_companion`` is not a folder.
    """
    pkg = (root or repo_root()) / PACKAGE
    if not pkg.is_dir():
        raise FileNotFoundError(f"no package folder {pkg}")
    out = []
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            out.append(Path(dirpath) / name)
    return sorted(out, key=lambda p: p.relative_to(pkg).as_posix())


def files_sha256(paths: Iterable[Path], root: Path) -> str:
    """Hash several files at once (SHA-256 of their paths relative to ``root`` and contents).

    Parameters
    ----------
    paths : iterable of Path
        Files under ``root``; a missing file counts as such (its absence changes the hash).
    root : Path
        Folder the recorded paths are relative to.

    Returns
    -------
    str
        64 hexadecimal digits; the same for the same names and contents on any machine.
    """
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.relative_to(root).as_posix()):
        rel = p.relative_to(root).as_posix()
        digest = file_sha256(p) if p.is_file() else "missing"
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def package_sha256(root: Path | None = None) -> str:
    """Hash the package's sources (SHA-256; the module's docstring says what counts).

    Parameters
    ----------
    root : Path or None
        Repository root; default: this repository.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    root = root or repo_root()
    return files_sha256(package_files(root), root)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(root: Path | None = None) -> tuple[str | None, bool | None]:
    """Return the commit the tree is at and whether its tracked sources differ from it.

    Parameters
    ----------
    root : Path or None
        Repository root; default: this repository.

    Returns
    -------
    tuple of (str or None, bool or None)
        ``(commit, dirty)``. ``$CRYO_COMPANION_COMMIT`` overrides the commit (a copy of the tree
        without ``.git``, as on a lent GPU machine); ``None`` where git cannot tell. Changed
        outputs (``results/``, ``book/chapters/``) do not make the tree dirty: earlier runs of
        the same session write them.
    """
    root = root or repo_root()
    commit = os.environ.get("CRYO_COMPANION_COMMIT") or _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":(exclude)results", ":(exclude)book/chapters")
    return commit, (bool(status) if status is not None else None)


def changed_since(commit: str, root: Path | None = None) -> list[str] | None:
    """List the package files that differ between ``commit`` and the working tree.

    Parameters
    ----------
    commit : str
        A commit (full or abbreviated hash).
    root : Path or None
        Repository root; default: this repository.

    Returns
    -------
    list of str or None
        Paths relative to the root, sorted; ``None`` where git cannot tell (no ``.git``, an
        unknown commit).
    """
    root = root or repo_root()
    out = _git(root, "diff", "--name-only", commit, "--", PACKAGE)
    return None if out is None else sorted(line for line in out.splitlines() if line)
