"""One archive of a GPU window's outputs, with a manifest; checked and unpacked into the repository.

What comes back from a lent GPU machine is a few files of limited size, so the runner packs
everything the window produced into ONE ``.tar.gz`` of at most ``limit_bytes`` (16 MiB by
default): the executed notebooks (``book/chapters/``), the results (``results/``, with the jobs'
records under ``results/jobs/``), the weights (``results/weights/``) and the jobs' logs. Its
first member, ``manifest.json``, says what ran (status, wall time, estimate) and lists every
packed file with its SHA-256 and the SHA-256 it had when the window started (``base_sha256``,
None for a new file), and every file left out with the reason. When everything does not fit,
logs are left out first, then weights, then notebooks (largest first); results always stay.

:func:`unpack` checks the archive (every member listed with the right hash, paths inside the
allowed folders, nothing else) and writes it into the repository: a file that has changed there
since the window started (neither its ``base_sha256`` nor the new one) is refused unless
``force``, before anything is written. Logs go to ``build/paper_logs/<window>/``.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryo_companion._io import atomic_path
from cryo_companion.runs.sources import file_sha256

__all__ = ["ARCHIVE_NAME", "FORMAT", "LIMIT_BYTES", "OUTPUT_DIRS", "Item", "pack",
           "read_manifest", "snapshot", "unpack"]

ARCHIVE_NAME = "paper-window.tar.gz"
MANIFEST = "manifest.json"
FORMAT = "cryo_companion-paper-window/1"
LIMIT_BYTES = 16 * 2**20
#: Folders (relative to the root) whose new or changed files a window brings back.
OUTPUT_DIRS = ("book/chapters", "results")
#: Never brought back (smoke results are not committed) nor written by :func:`unpack`.
EXCLUDED = ("results/smoke",)
LOG_PREFIX = "logs/"
LOGS_DIR = Path("build") / "paper_logs"
#: What is left out first when the archive would be too large (results are never left out).
DROP_ORDER = ("log", "weights", "notebook")
_RESERVE = 64 * 1024  # room for the manifest and the tar and gzip framing


@dataclass(frozen=True)
class Item:
    """One file to pack.

    Attributes
    ----------
    name : str
        Its path in the archive: relative to the repository root, or ``logs/NAME.log``.
    source : Path
        The file on disk.
    kind : str
        ``"result"``, ``"notebook"``, ``"weights"`` or ``"log"``.
    base_sha256 : str or None
        Its SHA-256 when the window started (None: new file; logs have none).
    """

    name: str
    source: Path
    kind: str
    base_sha256: str | None = None


def _allowed(rel: str) -> bool:
    """Tell whether ``rel`` lies in an output folder and outside the excluded ones."""
    return (any(rel.startswith(d + "/") for d in OUTPUT_DIRS)
            and not any(rel.startswith(d + "/") for d in EXCLUDED))


def kind_of(rel: str) -> str:
    """Classify a packed path.

    Parameters
    ----------
    rel : str
        The path relative to the repository root, ``/``-separated.

    Returns
    -------
    str
        ``"log"``, ``"weights"``, ``"notebook"`` or ``"result"``.
    """
    if rel.startswith(LOG_PREFIX):
        return "log"
    if rel.startswith("results/weights/"):
        return "weights"
    if rel.startswith("book/chapters/"):
        return "notebook"
    return "result"


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every output file: ``{relative path: sha256}``.

    Parameters
    ----------
    root : Path
        Repository root.

    Returns
    -------
    dict
        Every file under :data:`OUTPUT_DIRS` except :data:`EXCLUDED` and hidden files
        (temporaries of atomic writes).
    """
    out: dict[str, str] = {}
    for d in OUTPUT_DIRS:
        for p in sorted((root / d).rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and not p.name.startswith(".") and _allowed(rel):
                out[rel] = file_sha256(p)
    return out


def changed_items(root: Path, before: dict[str, str]) -> list[Item]:
    """List the output files that are new or changed since the snapshot ``before``.

    Parameters
    ----------
    root : Path
        Repository root.
    before : dict
        :func:`snapshot` at the window's start.

    Returns
    -------
    list of Item
        Sorted by path, each with its ``base_sha256``.
    """
    now = snapshot(root)
    return [Item(rel, root / rel, kind_of(rel), before.get(rel))
            for rel, sha in sorted(now.items()) if before.get(rel) != sha]


def _compressed_size(path: Path) -> int:
    c = zlib.compressobj(6)
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += len(c.compress(block))
    return n + len(c.flush()) + 1024  # + a tar header and padding


def _choose(items: list[Item], limit_bytes: int) -> tuple[list[Item], list[dict[str, Any]]]:
    """Keep what fits: results always, then notebooks, weights, logs (smallest first)."""
    sizes = {it.name: _compressed_size(it.source) for it in items}
    keep = [it for it in items if it.kind == "result"]
    total = sum(sizes[it.name] for it in keep)
    if total > limit_bytes - _RESERVE:
        raise ValueError(f"the results alone ({total / 2**20:.1f} MiB compressed) exceed the "
                         f"archive limit of {limit_bytes / 2**20:.1f} MiB")
    left: list[dict[str, Any]] = []
    for kind in reversed(DROP_ORDER):
        for it in sorted((i for i in items if i.kind == kind), key=lambda i: sizes[i.name]):
            if total + sizes[it.name] <= limit_bytes - _RESERVE:
                keep.append(it)
                total += sizes[it.name]
            else:
                left.append({"path": it.name, "kind": kind, "size": it.source.stat().st_size,
                             "reason": f"the archive would exceed {limit_bytes / 2**20:.1f} MiB"})
    return sorted(keep, key=lambda i: i.name), left


def _write(dest: Path, manifest: dict[str, Any], items: list[Item]) -> int:
    with atomic_path(dest, suffix=".tar.gz") as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            body = (json.dumps(manifest, indent=2) + "\n").encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
            for it in items:
                info = tarfile.TarInfo(it.name)
                info.size = it.source.stat().st_size
                info.mode = 0o644
                with open(it.source, "rb") as f:
                    tar.addfile(info, f)
        size = tmp.stat().st_size
    return size


def pack(items: list[Item], manifest: dict[str, Any], dest: Path,
         limit_bytes: int = LIMIT_BYTES) -> dict[str, Any]:
    """Write ``items`` and their manifest into one ``.tar.gz`` of at most ``limit_bytes``.

    Parameters
    ----------
    items : list of Item
        The files to bring back.
    manifest : dict
        What ran (the runner's jobs and window metadata); ``format``, ``files``, ``left_out``
        and ``archive_limit_bytes`` are added.
    dest : Path
        The archive to write (atomically: a failed pack leaves the previous one).
    limit_bytes : int
        Largest allowed archive size in bytes.

    Returns
    -------
    dict
        The manifest as written.

    Raises
    ------
    ValueError
        If the limit is too small for the results and the manifest alone.
    """
    keep, left = _choose(items, limit_bytes)
    while True:
        man = {**manifest, "format": FORMAT, "archive_limit_bytes": limit_bytes,
               "files": [{"path": it.name, "kind": it.kind, "size": it.source.stat().st_size,
                          "sha256": file_sha256(it.source), "base_sha256": it.base_sha256}
                         for it in keep],
               "left_out": left}
        size = _write(dest, man, keep)
        if size <= limit_bytes:
            return man
        # the estimate of the compressed sizes was short: leave out one more droppable file
        droppable = [it for kind in DROP_ORDER for it in keep if it.kind == kind]
        if not droppable:
            dest.unlink()
            raise ValueError(f"the archive of results alone is {size} bytes, over the limit "
                             f"of {limit_bytes}")
        worst = droppable[0]
        keep.remove(worst)
        left.append({"path": worst.name, "kind": worst.kind, "size": worst.source.stat().st_size,
                     "reason": f"the archive would exceed {limit_bytes / 2**20:.1f} MiB"})


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return (not p.is_absolute() and ".." not in p.parts and str(p) == name
            and (_allowed(name) or (name.startswith(LOG_PREFIX) and len(p.parts) == 2)))


def read_manifest(archive: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read and check an archive made by :func:`pack`.

    Parameters
    ----------
    archive : Path
        The ``.tar.gz``.

    Returns
    -------
    tuple of (dict, dict)
        The manifest and ``{path: contents}`` of every listed file.

    Raises
    ------
    ValueError
        If it is not such an archive: no manifest, an unknown format, a member that is not a
        regular file, not listed or outside the allowed folders, or a hash that does not match.
    """
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            return _read(archive, tar)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{archive}: not a readable .tar.gz ({exc})") from exc


def _read(archive: Path, tar: tarfile.TarFile) -> tuple[dict[str, Any], dict[str, bytes]]:
    members = tar.getmembers()
    first = tar.extractfile(members[0]) if members and members[0].name == MANIFEST else None
    if first is None:
        raise ValueError(f"{archive}: its first member is not {MANIFEST}")
    manifest = json.loads(first.read())
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{archive}: not a window manifest (format {FORMAT!r} expected)")
    listed = {f["path"]: f for f in manifest.get("files", [])}
    contents: dict[str, bytes] = {}
    for m in members[1:]:
        f = tar.extractfile(m) if m.isfile() else None
        if f is None or m.name not in listed or not _safe_name(m.name):
            raise ValueError(f"{archive}: member {m.name!r} is not a listed output file")
        data = f.read()
        if hashlib.sha256(data).hexdigest() != listed[m.name]["sha256"]:
            raise ValueError(f"{archive}: {m.name} does not match its SHA-256 in the manifest")
        contents[m.name] = data
    missing = set(listed) - set(contents)
    if missing:
        raise ValueError(f"{archive}: listed but missing: {sorted(missing)}")
    return manifest, contents


def _destination(root: Path, name: str, manifest: dict[str, Any]) -> Path:
    if name.startswith(LOG_PREFIX):
        window = str(manifest.get("window_id") or "window").replace(":", "")
        return root / LOGS_DIR / window / name[len(LOG_PREFIX):]
    return root / name


def unpack(archive: Path, root: Path, *, force: bool = False,
           dry_run: bool = False) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check an archive and write its files into the repository at ``root``.

    Parameters
    ----------
    archive : Path
        An archive made by :func:`pack`.
    root : Path
        Repository root to write into.
    force : bool
        Overwrite files that changed in the repository since the window started.
    dry_run : bool
        Check and report only; write nothing.

    Returns
    -------
    tuple of (dict, list of (str, str))
        The manifest, and ``(path relative to root, action)`` for every file: ``"new"``,
        ``"updated"``, ``"unchanged"`` or ``"overwritten (--force)"``.

    Raises
    ------
    ValueError
        If the archive is not valid (:func:`read_manifest`), or, without ``force``, if a file
        changed in the repository since the window started (nothing is written then).
    """
    manifest, contents = read_manifest(archive)
    base = {f["path"]: f.get("base_sha256") for f in manifest["files"]}
    plan: list[tuple[Path, str, bytes]] = []
    conflicts = []
    for name, data in sorted(contents.items()):
        dest = _destination(root, name, manifest)
        new = hashlib.sha256(data).hexdigest()
        current = file_sha256(dest) if dest.is_file() else None
        if current == new:
            action = "unchanged"
        elif current == base[name]:
            action = "new" if current is None else "updated"
        elif force:
            action = "overwritten (--force)"
        else:
            conflicts.append(dest.relative_to(root).as_posix())
            continue
        plan.append((dest, action, data))
    if conflicts:
        raise ValueError(f"changed in the repository since the window started (commit "
                         f"{str(manifest.get('commit'))[:7]}): {', '.join(conflicts)}; nothing "
                         "written (--force overwrites them)")
    if not dry_run:
        for dest, action, data in plan:
            if action != "unchanged":
                with atomic_path(dest) as tmp:
                    tmp.write_bytes(data)
    return manifest, [(dest.relative_to(root).as_posix(), action) for dest, action, _ in plan]
