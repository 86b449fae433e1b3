"""A GPU window's outputs in archives of limited size, with a manifest; checked and unpacked.

What comes back from a lent GPU machine is a few files of limited size (at most 8 of 16 MiB), so
the runner packs everything the window produced into ``.tar.gz`` **parts** of at most
``limit_bytes`` each (16 MiB by default; ``paper-window.tar.gz``, then
``paper-window.part2.tar.gz``, ... up to ``max_parts``): the executed notebooks
(``book/chapters/``), the results (``results/``, with the jobs' records under ``results/jobs/``),
the weights (``results/weights/``) and the jobs' logs. The first member of every part,
``manifest.json``, is the same manifest (plus the part's own number, ``this_part``): what ran
(status, wall time, estimate), every packed file with its SHA-256, the SHA-256 it had when the
window started (``base_sha256``, None for a new file) and the part it is in, the number of parts,
and every file left out with the reason. The results all go into the first part; the other files
fill the parts in turn (notebooks, then weights, then logs, smallest first); what fits in no part
is left out (logs first, then weights, then notebooks); results always stay. One part is exactly
the single archive of before.

:func:`unpack` checks the parts (every member listed, in its part, with the right hash, paths
inside the allowed folders, nothing else; every part of the same window present) and writes them
into the repository: a file that has changed there since the window started (neither its
``base_sha256`` nor the new one) is refused unless ``force``, before anything is written. Logs go
to ``build/paper_logs/<window>/``.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryo_companion._io import atomic_path
from cryo_companion.runs.sources import file_sha256

__all__ = ["ARCHIVE_NAME", "FORMAT", "LIMIT_BYTES", "MAX_PARTS", "OUTPUT_DIRS", "Item", "pack",
           "part_path", "read_manifest", "read_parts", "snapshot", "unpack"]

ARCHIVE_NAME = "paper-window.tar.gz"
MANIFEST = "manifest.json"
FORMAT = "cryo_companion-paper-window/1"
LIMIT_BYTES = 16 * 2**20
#: Most parts one window writes (what a lent machine brings back: 8 files).
MAX_PARTS = 8
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


def part_path(dest: Path, part: int) -> Path:
    """Return the path of part ``part`` (1-based) of the archive ``dest``.

    Parameters
    ----------
    dest : Path
        The first part (``DIR/paper-window.tar.gz``).
    part : int
        The part's number.

    Returns
    -------
    Path
        ``dest`` for part 1, ``DIR/paper-window.partN.tar.gz`` for part N.
    """
    if part == 1:
        return dest
    name = dest.name[:-len(".tar.gz")] if dest.name.endswith(".tar.gz") else dest.stem
    return dest.with_name(f"{name}.part{part}.tar.gz")


def _left(it: Item, limit_bytes: int, max_parts: int) -> dict[str, Any]:
    return {"path": it.name, "kind": it.kind, "size": it.source.stat().st_size,
            "reason": f"{max_parts} archive part(s) of {limit_bytes / 2**20:.1f} MiB would be "
                      "exceeded"}


def _choose(items: list[Item], limit_bytes: int, max_parts: int
            ) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Assign files to parts: results to the first, the rest first-fit, smallest first."""
    sizes = {it.name: _compressed_size(it.source) for it in items}
    room = limit_bytes - _RESERVE
    total = sum(sizes[it.name] for it in items if it.kind == "result")
    if total > room:
        raise ValueError(f"the results alone ({total / 2**20:.1f} MiB compressed) exceed the "
                         f"archive limit of {limit_bytes / 2**20:.1f} MiB")
    part_of = {it.name: 1 for it in items if it.kind == "result"}
    used = [total]
    left: list[dict[str, Any]] = []
    for kind in reversed(DROP_ORDER):
        for it in sorted((i for i in items if i.kind == kind), key=lambda i: sizes[i.name]):
            fits = [k for k, u in enumerate(used) if u + sizes[it.name] <= room]
            if not fits and len(used) < max_parts and sizes[it.name] <= room:
                used.append(0)
                fits = [len(used) - 1]
            if fits:
                used[fits[0]] += sizes[it.name]
                part_of[it.name] = fits[0] + 1
            else:
                left.append(_left(it, limit_bytes, max_parts))
    return part_of, left


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
         limit_bytes: int = LIMIT_BYTES, max_parts: int = MAX_PARTS) -> dict[str, Any]:
    """Write ``items`` and their manifest into ``.tar.gz`` parts of at most ``limit_bytes`` each.

    Parameters
    ----------
    items : list of Item
        The files to bring back.
    manifest : dict
        What ran (the runner's jobs and window metadata); ``format``, ``files`` (each with its
        ``part``), ``parts``, ``left_out``, ``archive_limit_bytes`` and, in each part,
        ``this_part`` are added.
    dest : Path
        The first part; part N is :func:`part_path` ``(dest, N)``. Each is written atomically;
        parts beyond the new count left by an earlier call of this window are removed.
    limit_bytes : int
        Largest allowed size of one part in bytes.
    max_parts : int
        Most parts to write (files that fit in none are left out).

    Returns
    -------
    dict
        The manifest as written (without ``this_part``).

    Raises
    ------
    ValueError
        If the limit is too small for the results and the manifest alone, or ``max_parts`` < 1.
    """
    if max_parts < 1:
        raise ValueError(f"max_parts must be >= 1, got {max_parts}")
    part_of, left = _choose(items, limit_bytes, max_parts)
    while True:
        keep = sorted((it for it in items if it.name in part_of), key=lambda i: i.name)
        parts = max(part_of.values(), default=1)
        man = {**manifest, "format": FORMAT, "archive_limit_bytes": limit_bytes, "parts": parts,
               "files": [{"path": it.name, "kind": it.kind, "size": it.source.stat().st_size,
                          "sha256": file_sha256(it.source), "base_sha256": it.base_sha256,
                          "part": part_of[it.name]} for it in keep],
               "left_out": left}
        over = None
        for k in range(1, parts + 1):
            mine = [it for it in keep if part_of[it.name] == k]
            if _write(part_path(dest, k), {**man, "this_part": k}, mine) > limit_bytes:
                over = k
                break
        if over is None:
            k = parts + 1
            while part_path(dest, k).is_file():  # a larger earlier save of this window
                part_path(dest, k).unlink()
                k += 1
            return man
        # the estimate of the compressed sizes was short: leave out one more droppable file
        droppable = [it for kind in DROP_ORDER for it in keep
                     if it.kind == kind and part_of[it.name] == over]
        if not droppable:
            part_path(dest, over).unlink()
            raise ValueError(f"the archive of results alone is over the limit of {limit_bytes} "
                             "bytes")
        del part_of[droppable[0].name]
        left.append(_left(droppable[0], limit_bytes, max_parts))


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return (not p.is_absolute() and ".." not in p.parts and str(p) == name
            and (_allowed(name) or (name.startswith(LOG_PREFIX) and len(p.parts) == 2)))


def read_manifest(archive: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read and check one part of an archive made by :func:`pack`.

    Parameters
    ----------
    archive : Path
        The ``.tar.gz`` (any part).

    Returns
    -------
    tuple of (dict, dict)
        The manifest and ``{path: contents}`` of every file listed in this part.

    Raises
    ------
    ValueError
        If it is not such an archive: no manifest, an unknown format, a member that is not a
        regular file, not listed in this part or outside the allowed folders, or a hash that does
        not match.
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
    this = int(manifest.get("this_part", 1))
    listed = {f["path"]: f for f in manifest.get("files", []) if int(f.get("part", 1)) == this}
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


def read_parts(archives: Path | Sequence[Path]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read and check every part of one window's archive.

    Parameters
    ----------
    archives : Path or sequence of Path
        The parts, in any order; parts not given are looked for beside the first
        (:func:`part_path` of the first part's path).

    Returns
    -------
    tuple of (dict, dict)
        The manifest (without ``this_part``) and ``{path: contents}`` of every listed file.

    Raises
    ------
    ValueError
        If a part is not valid (:func:`read_manifest`), the parts come from different windows,
        a part is given twice, or a part is missing.
    """
    given = [Path(archives)] if isinstance(archives, (str, Path)) else [Path(a) for a in archives]
    if not given:
        raise ValueError("no archive given")
    read: dict[int, tuple[Path, dict[str, Any], dict[str, bytes]]] = {}
    for a in given:
        man, contents = read_manifest(a)
        k = int(man.get("this_part", 1))
        if k in read:
            raise ValueError(f"{a} and {read[k][0]} are both part {k}")
        read[k] = (a, man, contents)
    ref_path, ref, _ = next(iter(read.values()))
    common = {k: v for k, v in ref.items() if k != "this_part"}
    n = int(ref.get("parts", 1))
    first = read[1][0] if 1 in read else None
    for k in range(1, n + 1):
        if k not in read:
            guess = part_path(first, k) if first is not None else None
            if guess is None or not guess.is_file():
                raise ValueError(f"part {k} of {n} of window {ref.get('window_id')} is missing "
                                 f"(give every part, or keep them beside the first)")
            man, contents = read_manifest(guess)
            read[k] = (guess, man, contents)
    out: dict[str, bytes] = {}
    for k, (path, man, contents) in sorted(read.items()):
        if k > n or {x: v for x, v in man.items() if x != "this_part"} != common:
            raise ValueError(f"{path} is not part {k} of the window of {ref_path}")
        out.update(contents)
    return common, out


def _destination(root: Path, name: str, manifest: dict[str, Any]) -> Path:
    if name.startswith(LOG_PREFIX):
        window = str(manifest.get("window_id") or "window").replace(":", "")
        return root / LOGS_DIR / window / name[len(LOG_PREFIX):]
    return root / name


def unpack(archive: Path | Sequence[Path], root: Path, *, force: bool = False,
           dry_run: bool = False) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check an archive's parts and write their files into the repository at ``root``.

    Parameters
    ----------
    archive : Path or sequence of Path
        An archive made by :func:`pack`: its first part (the others are found beside it) or
        its parts (:func:`read_parts`).
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
        If the archive is not valid (:func:`read_parts`), or, without ``force``, if a file
        changed in the repository since the window started (nothing is written then).
    """
    manifest, contents = read_parts(archive)
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
