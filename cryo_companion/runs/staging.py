"""What a GPU window must carry besides the tree: the structure files its pending jobs read.

A job declares the structure entries it reads (:attr:`cryo_companion.runs.jobs.Job.structures`:
IDs of the offline mirror ``$CRYO_COMPANION_STRUCTURES``, such as ``4v94`` or ``mb_5gjv``); a job
that declares none (None) may read anything, and then the whole mirror is carried. For every
entry both its atomic model (``pdb/``) and its map (``maps_10A/``) are carried where the mirror
has them, so that a lookup on the GPU machine finds exactly what it finds here (an ``auto`` lookup
prefers the atoms and falls back to the map: a missing model would silently change the physics).
The mirror's README and licence travel with it.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from cryo_companion.runs.jobs import Job

__all__ = ["FOLDERS", "stage_structures", "structure_files"]

#: The mirror's folders, as in ``shared/structures``.
FOLDERS = ("pdb", "maps_10A")
_ALWAYS = ("README.md", "LICENSE-polnet-data.txt")


def _entry_files(src: Path, entry: str) -> list[Path]:
    key = entry.lower()
    return [f for d in FOLDERS if (src / d).is_dir() for f in sorted((src / d).iterdir())
            if f.is_file() and f.name.lower().split(".")[0] == key]


def structure_files(jobs: Iterable[Job], src: Path) -> tuple[list[Path], str]:
    """List the files of the mirror that ``jobs`` read.

    Parameters
    ----------
    jobs : iterable of Job
        The jobs a window may run.
    src : Path
        The offline mirror (``$CRYO_COMPANION_STRUCTURES``).

    Returns
    -------
    tuple of (list of Path, str)
        The files (sorted, under ``src``) and why: the declared entries, or the whole mirror
        when a job declares none.

    Raises
    ------
    FileNotFoundError
        If ``src`` is not a folder.
    ValueError
        If a declared entry has no file in the mirror.
    """
    if not src.is_dir():
        raise FileNotFoundError(f"no structures folder {src} (set CRYO_COMPANION_STRUCTURES)")
    jobs = list(jobs)
    extra = [src / n for n in _ALWAYS if (src / n).is_file()]
    unknown = [j.name for j in jobs if j.structures is None]
    if unknown:
        files = [f for d in FOLDERS if (src / d).is_dir() for f in sorted((src / d).iterdir())
                 if f.is_file()]
        return extra + files, f"the whole mirror: {', '.join(unknown)} declare no structures"
    entries = sorted({e for j in jobs for e in (j.structures or ())})
    files = []
    for e in entries:
        found = _entry_files(src, e)
        if not found:
            raise ValueError(f"structure {e!r} (declared by "
                             f"{', '.join(j.name for j in jobs if e in (j.structures or ()))}) "
                             f"is not in {src}")
        files += found
    users = ", ".join(j.name for j in jobs if j.structures)
    return extra + files, f"{len(entries)} entries declared by {users or 'no job'}"


def stage_structures(files: Iterable[Path], src: Path, dest: Path, *,
                     force: bool = False) -> int:
    """Copy ``files`` (under ``src``) into ``dest`` with the same layout; return the bytes copied.

    Parameters
    ----------
    files : iterable of Path
        From :func:`structure_files`.
    src : Path
        The mirror they are in.
    dest : Path
        The folder to fill (``.structures``, carried to the GPU machine).
    force : bool
        Replace files already in ``dest`` (other files there are left alone).

    Returns
    -------
    int
        Bytes copied.

    Raises
    ------
    ValueError
        If ``dest`` already holds one of the files and ``force`` is not set (nothing is copied).
    """
    files = list(files)
    targets = [(f, dest / f.relative_to(src)) for f in files]
    existing = [t for _, t in targets if t.exists()]
    if existing and not force:
        raise ValueError(f"{dest} already holds {len(existing)} of the files "
                         f"({existing[0].relative_to(dest)}, ...); --force replaces them")
    total = 0
    for f, t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, t)
        total += t.stat().st_size
    return total
