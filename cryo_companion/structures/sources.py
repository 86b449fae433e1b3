"""Where structures come from.

In this order:

1. a path the caller gives (an atomic model or an MRC map);
2. the folder named by ``$CRYO_COMPANION_STRUCTURES``, laid out like ``shared/structures``:
   ``pdb/ID.pdb.gz`` (atomic models) and ``maps_10A/ID.mrc.gz`` (maps, 10 Å voxels;
   ``mb_ID`` for membrane proteins);
3. the local cache, ``$CRYO_COMPANION_CACHE`` or ``~/.cache/cryo_companion``, subfolder
   ``structures/`` with the same layout;
4. a download of the atomic model from the PDB by ID (``https://files.rcsb.org/download/``;
   ``$CRYO_COMPANION_PDB_URL`` overrides the base URL). Downloads are checked (complete gzip
   stream, at least one atom) and written atomically into the cache.

With no local copy and no network the lookup fails with one :class:`StructureNotFoundError`
naming the ID and ``CRYO_COMPANION_STRUCTURES``. ``$CRYO_COMPANION_OFFLINE=1`` skips step 4.
"""
from __future__ import annotations

import gzip
import http.client
import os
import re
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryo_companion._io import atomic_path
from cryo_companion.structures.atoms import AtomFileError, read_atoms

__all__ = [
    "DEFAULT_PDB_URL",
    "MAPS_VOXEL_SIZE_A",
    "MAP_SUFFIXES",
    "MODEL_SUFFIXES",
    "StructureNotFoundError",
    "StructureSource",
    "cache_dir",
    "download_pdb",
    "find_structure",
    "is_pdb_id",
    "kind_of_path",
    "structures_dir",
]

DEFAULT_PDB_URL = "https://files.rcsb.org/download/"
MODEL_SUFFIXES = (".pdb.gz", ".cif.gz", ".pdb", ".cif", ".ent.gz", ".ent", ".mmcif",
                  ".mmcif.gz")
MAP_SUFFIXES = (".mrc.gz", ".mrc", ".map.gz", ".map")
#: Voxel size of the maps in the ``maps_10A`` folder.
MAPS_VOXEL_SIZE_A = 10.0
_ID_RE = re.compile(r"^[0-9][A-Za-z0-9]{3}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


class StructureNotFoundError(FileNotFoundError):
    """No local copy of a structure and no way to download it."""


@dataclass(frozen=True)
class StructureSource:
    """A located structure file.

    Attributes
    ----------
    name : str
        The ID or the file's stem.
    path : Path
        The file.
    kind : str
        ``"atoms"`` (PDB/mmCIF model) or ``"map"`` (MRC map).
    origin : str
        ``"path"``, ``"structures"``, ``"cache"`` or ``"download"``.
    """

    name: str
    path: Path
    kind: str
    origin: str


def is_pdb_id(name: str) -> bool:
    """Tell whether ``name`` is a four-character PDB ID (digit first), e.g. ``4v94``.

    Parameters
    ----------
    name : str
        The candidate.

    Returns
    -------
    bool
        True for a PDB ID.
    """
    return bool(_ID_RE.match(name))


def structures_dir() -> Path | None:
    """Return the folder named by ``$CRYO_COMPANION_STRUCTURES``.

    Returns
    -------
    Path or None
        The folder (``~`` expanded), or None when the variable is not set.
    """
    env = os.environ.get("CRYO_COMPANION_STRUCTURES")
    return Path(env).expanduser() if env else None


def cache_dir() -> Path:
    """Return the package's cache folder.

    Returns
    -------
    Path
        ``$CRYO_COMPANION_CACHE`` or ``~/.cache/cryo_companion``.
    """
    env = os.environ.get("CRYO_COMPANION_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cryo_companion"


def kind_of_path(path: str | os.PathLike) -> str:
    """Tell from a file name whether it holds a map or an atomic model.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        ``"map"`` for an MRC file name (``.mrc``, ``.map``, optionally ``.gz``), else
        ``"atoms"``.
    """
    name = Path(path).name.lower()
    return "map" if any(name.endswith(s) for s in MAP_SUFFIXES) else "atoms"


def _look_in(root: Path, name: str, kind: str) -> Path | None:
    """Return the file of ``name`` under ``root`` (shared/structures layout), or None.

    Names match case-insensitively (``4V4R_30S`` finds ``4v4r_30S.pdb.gz``); for maps an ID
    also finds the membrane-protein map ``mb_ID``.
    """
    folders = {"atoms": ("pdb", MODEL_SUFFIXES), "map": ("maps_10A", MAP_SUFFIXES)}
    order = ["atoms", "map"] if kind == "auto" else [kind]
    key = name.lower()
    for k in order:
        folder, suffixes = folders[k]
        d = root / folder
        if not d.is_dir():
            continue
        files = {f.name.lower(): f for f in d.iterdir() if f.is_file()}
        stems = [key] + ([f"mb_{key}"] if k == "map" and not key.startswith("mb_") else [])
        for stem in stems:
            for sfx in suffixes:
                hit = files.get(f"{stem}{sfx}")
                if hit is not None:
                    return hit
    return None


def find_structure(name_or_path: str | os.PathLike, *, kind: str = "auto",
                   download: bool | None = None) -> StructureSource:
    """Locate a structure by path or ID (see the module docstring for the order).

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A file path, or an ID/name such as ``4v94``, ``4v4r_50S``, ``mb_5gjv``.
    kind : str, optional
        ``"auto"`` (an atomic model if there is one, else a map), ``"atoms"`` or ``"map"``.
    download : bool or None, optional
        Allow step 4; default: unless ``$CRYO_COMPANION_OFFLINE`` is set.

    Returns
    -------
    StructureSource
        The file, its kind and where it was found.

    Raises
    ------
    ValueError
        For an unknown ``kind``, a file of the other kind than asked for, or a name that is
        neither a file nor a structure ID.
    StructureNotFoundError
        If a given path does not exist, or the structure is nowhere to be found (the message
        says where it looked and why nothing was downloaded).
    """
    if kind not in ("auto", "atoms", "map"):
        raise ValueError(f"kind must be 'auto', 'atoms' or 'map', got {kind!r}")
    text = os.fspath(name_or_path)
    p = Path(text).expanduser()
    looks_like_path = (os.sep in text or text.startswith(".") or p.suffix != "")
    if looks_like_path or p.is_file():
        return _source_of_path(p, kind)
    name = text.strip()
    if not name or not _NAME_RE.match(name):
        raise ValueError(f"{name_or_path!r} is neither a file nor a structure ID "
                         "(letters, digits, '_' and '-')")
    local, tried = _look_locally(name, kind)
    if local is not None:
        return local
    cache = cache_dir() / "structures"
    if download is None:
        download = not os.environ.get("CRYO_COMPANION_OFFLINE")
    fetched, why = _try_download(name, kind, download, cache)
    if fetched is not None:
        return fetched
    raise StructureNotFoundError(
        f"structure {name!r} not found: looked in {', '.join(tried)}; {why}. Set "
        f"CRYO_COMPANION_STRUCTURES to a folder laid out like shared/structures "
        f"(pdb/{name}.pdb.gz, maps_10A/{name}.mrc.gz) or give a file path")


def _source_of_path(p: Path, kind: str) -> StructureSource:
    """Return a given file as a :class:`StructureSource`, checking that it exists and its kind."""
    if not p.is_file():
        raise StructureNotFoundError(f"{p}: no such file")
    found = kind_of_path(p)
    if kind != "auto" and found != kind:
        raise ValueError(f"{p}: is {'an MRC map' if found == 'map' else 'an atomic model'}, "
                         f"but kind={kind!r} was asked for")
    return StructureSource(p.name.split(".")[0], p, found, "path")


def _look_locally(name: str, kind: str) -> tuple[StructureSource | None, list[str]]:
    """Look in ``$CRYO_COMPANION_STRUCTURES``, then in the cache; also say where it looked."""
    tried: list[str] = []
    root = structures_dir()
    if root is not None:
        hit = _look_in(root, name, kind)
        if hit is not None:
            return StructureSource(name, hit, kind_of_path(hit), "structures"), tried
        tried.append(f"CRYO_COMPANION_STRUCTURES={root}"
                     + ("" if root.is_dir() else " (not a folder)"))
    else:
        tried.append("CRYO_COMPANION_STRUCTURES (not set)")
    cache = cache_dir() / "structures"
    hit = _look_in(cache, name, kind)
    if hit is not None:
        return StructureSource(name, hit, kind_of_path(hit), "cache"), tried
    tried.append(f"the cache {cache}")
    return None, tried


def _try_download(name: str, kind: str, download: bool,
                  cache: Path) -> tuple[StructureSource | None, str]:
    """Download the atomic model ``name`` into ``cache`` if allowed; else say why not."""
    why = "downloads are off (CRYO_COMPANION_OFFLINE)"
    if download and kind != "map" and is_pdb_id(name):
        try:
            path = download_pdb(name, cache)
            return StructureSource(name, path, "atoms", "download"), ""
        except (OSError, ValueError) as exc:
            why = f"download from {_base_url()} failed ({exc})"
    elif download and not is_pdb_id(name):
        why = f"{name!r} is not a PDB ID, so it cannot be downloaded"
    elif download:
        why = "maps are not downloaded (only atomic models are)"
    return None, why


def _base_url() -> str:
    """Return the PDB download base URL (``$CRYO_COMPANION_PDB_URL`` or RCSB's)."""
    return os.environ.get("CRYO_COMPANION_PDB_URL") or DEFAULT_PDB_URL


def download_pdb(pdb_id: str, cache: str | os.PathLike | None = None, *,
                 timeout_s: float = 30.0) -> Path:
    """Download the atomic model of ``pdb_id`` into ``cache/pdb/``.

    Tries ``ID.cif.gz`` then ``ID.pdb.gz`` under the base URL (``$CRYO_COMPANION_PDB_URL`` or
    RCSB). The body must be a complete gzip stream whose model has atoms and, where the server
    says how long it is, of that length; only then is it renamed into place.

    Parameters
    ----------
    pdb_id : str
        A four-character PDB ID.
    cache : str, os.PathLike or None
        The structures cache (default ``cache_dir()/structures``).
    timeout_s : float
        Network timeout per request in seconds.

    Returns
    -------
    Path
        The downloaded file, ``cache/pdb/ID.cif.gz`` or ``cache/pdb/ID.pdb.gz``.

    Raises
    ------
    ValueError
        If ``pdb_id`` is not a PDB ID, or neither file could be downloaded complete and usable
        (the message lists what went wrong for each).
    OSError
        If the server cannot be reached.
    """
    if not is_pdb_id(pdb_id):
        raise ValueError(f"{pdb_id!r} is not a PDB ID (4 characters, digit first)")
    dest_dir = Path(cache) if cache is not None else cache_dir() / "structures"
    base = _base_url()
    if not base.endswith("/"):
        base += "/"
    errors = []
    for sfx in (".cif.gz", ".pdb.gz"):
        url = f"{base}{pdb_id.lower()}{sfx}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                body = resp.read()
                length = resp.headers.get("Content-Length")
        except urllib.error.HTTPError as exc:
            errors.append(f"{url}: HTTP {exc.code}")
            continue
        except http.client.HTTPException as exc:  # e.g. IncompleteRead: connection cut short
            errors.append(f"{url}: incomplete response ({exc!r})")
            continue
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OSError(f"{url}: {reason}") from exc
        if length is not None and int(length) != len(body):
            errors.append(f"{url}: got {len(body)} of {length} bytes")
            continue
        try:
            gzip.decompress(body)
        except (EOFError, OSError, zlib.error) as exc:
            errors.append(f"{url}: not a complete gzip file ({exc})")
            continue
        dest = dest_dir / "pdb" / f"{pdb_id.lower()}{sfx}"
        with atomic_path(dest) as tmp:
            tmp.write_bytes(body)
            try:
                read_atoms(tmp)
            except AtomFileError as exc:
                raise ValueError(f"{url}: downloaded file is not a usable model ({exc})") from exc
        return dest
    raise ValueError("; ".join(errors))
