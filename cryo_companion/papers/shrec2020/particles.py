"""Particle lists of SHREC 2020: reading, writing and the coordinate conventions.

Conventions (Gubins et al. 2020, Section 2.1; the benchmark's evaluation script)
------------------------------------------------------------------------------
* **Columns.** A list gives one particle per line: ``class x y z [angles ...]``. ``class`` is a
  PDB ID of Table 1 (``1s3x`` ... ``4d8q``, case-insensitive) or its name (``Rubisco``); the
  benchmark's ground-truth ``particle_locations.txt`` adds three Euler angles (ZXZ), which are
  carried along unchanged and never used by the evaluation.
* **Axis order.** Lists are ``x, y, z``; volumes (occupancy map, class mask, tomogram) are numpy
  arrays indexed ``[z, y, x]``, the MRC/numpy order used everywhere in this package. So the
  particle at ``(x, y, z)`` is looked up as ``occupancy[z, y, x]``, exactly as the benchmark's
  script does (``occupancy_map[p_z, p_y, p_x]``).
* **Origin.** In memory, coordinates are **0-based voxel indices**: the voxel ``occupancy[k, j,
  i]`` has its centre at ``(x, y, z) = (i, j, k)``. The benchmark's files are 0-based too (the
  script indexes the array with the listed values directly). Files written by 1-based tools
  (IMOD's displayed coordinates, MATLAB-based tools) are read with ``origin=1``, which subtracts 1
  on reading and adds 1 on writing; see :func:`read_particle_list`.
* **Formats.** Plain text (whitespace-separated, the benchmark's format), CSV (comma-separated,
  optionally with a header naming ``class``, ``x``, ``y``, ``z``) and STAR (a ``loop_`` with
  ``_rlnCoordinateX/Y/Z`` in voxels and a class column). Blank lines and lines starting with
  ``#`` are skipped. Duplicate lines are kept: each line is one detection.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryo_companion._io import write_text
from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES

__all__ = [
    "KNOWN_CLASS_IDS",
    "STAR_CLASS_COLUMNS",
    "ParticleList",
    "ParticleListError",
    "parse_star",
    "parse_text_list",
    "particle_list",
    "read_particle_list",
    "resolve_class",
    "write_particle_list",
]

KNOWN_CLASS_IDS: tuple[str, ...] = tuple(c.pdb_id for c in SHREC2020_CLASSES)
_ALIASES: dict[str, str] = {}
for _c in SHREC2020_CLASSES:
    _ALIASES[_c.pdb_id.lower()] = _c.pdb_id
    _ALIASES[_c.name.lower()] = _c.pdb_id

# STAR columns searched (in this order) for the class of a particle when none is named.
# ``_shrecClass`` is the column this package writes (a PDB ID); it is not a RELION label.
STAR_CLASS_COLUMNS: tuple[str, ...] = ("_shrecClass", "_rlnClassName", "_rlnClassNumber")


class ParticleListError(ValueError):
    """A particle list that cannot be read: names the file, the line and what is valid."""


def resolve_class(name: str, *, where: str = "") -> str:
    """Canonical PDB ID (Table 1) of a class given by PDB ID or name, case-insensitive.

    Raises
    ------
    ParticleListError
        For an unknown class, listing the known PDB IDs.
    """
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    prefix = f"{where}: " if where else ""
    raise ParticleListError(
        f"{prefix}unknown class {name!r}; known classes (PDB ID or Table 1 name): "
        f"{', '.join(KNOWN_CLASS_IDS)}")


@dataclass(frozen=True)
class ParticleList:
    """Particles (or detections) with class and centre, 0-based voxel coordinates.

    Attributes
    ----------
    classes : tuple of str, length N
        Canonical PDB IDs (``SHREC2020_CLASSES``).
    xyz : np.ndarray, float64, shape (N, 3)
        Centres as ``(x, y, z)`` in voxels, 0-based (voxel ``[k, j, i]`` is centred at
        ``(i, j, k)``). Note the order: x first, unlike the ``(z, y, x)`` arrays.
    angles_deg : np.ndarray or None, shape (N, 3)
        Euler angles as read from the file (the benchmark's ZXZ triple), unconverted; None when
        the file has none.
    lines : np.ndarray, int64, shape (N,)
        1-based line number of each particle in its source file (0 when built in memory), used
        to name lines in error messages.
    source : str
        The file it was read from, or ``"<memory>"``.
    """

    classes: tuple[str, ...]
    xyz: np.ndarray
    angles_deg: np.ndarray | None = None
    lines: np.ndarray | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        xyz = np.asarray(self.xyz, dtype=np.float64).reshape(-1, 3) if len(self.classes) == 0 \
            else np.asarray(self.xyz, dtype=np.float64)
        if xyz.ndim != 2 or xyz.shape[1] != 3:
            raise ParticleListError(f"{self.source}: xyz must have shape (N, 3), got {xyz.shape}")
        if xyz.shape[0] != len(self.classes):
            raise ParticleListError(f"{self.source}: {len(self.classes)} classes but "
                                    f"{xyz.shape[0]} coordinates")
        if not np.isfinite(xyz).all():
            raise ParticleListError(f"{self.source}: coordinates contain NaN/inf")
        object.__setattr__(self, "xyz", xyz)
        lines = (np.zeros(len(xyz), dtype=np.int64) if self.lines is None
                 else np.asarray(self.lines, dtype=np.int64))
        object.__setattr__(self, "lines", lines)
        if self.angles_deg is not None:
            ang = np.asarray(self.angles_deg, dtype=np.float64)
            if ang.shape != (len(xyz), 3):
                raise ParticleListError(f"{self.source}: angles must have shape ({len(xyz)}, 3), "
                                        f"got {ang.shape}")
            object.__setattr__(self, "angles_deg", ang)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def zyx(self) -> np.ndarray:
        """Centres in array order ``(z, y, x)``, shape (N, 3), 0-based voxels."""
        return self.xyz[:, ::-1]


def particle_list(classes: Iterable[str], xyz: np.ndarray | Sequence[Sequence[float]],
                  angles_deg: np.ndarray | None = None) -> ParticleList:
    """Build a :class:`ParticleList` in memory, resolving class names to PDB IDs.

    Parameters
    ----------
    classes : PDB IDs or Table 1 names, length N.
    xyz : (N, 3) centres ``(x, y, z)``, 0-based voxels.
    angles_deg : optional (N, 3) Euler angles, carried unchanged.
    """
    names = tuple(resolve_class(c, where=f"particle {i}") for i, c in enumerate(classes))
    arr = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) if len(names) == 0 else xyz
    return ParticleList(classes=names, xyz=np.asarray(arr, dtype=np.float64),
                        angles_deg=angles_deg)


def _check_origin(origin: int) -> None:
    if origin not in (0, 1):
        raise ValueError(f"origin must be 0 (0-based voxel indices) or 1 (1-based), got {origin!r}")


def _float(tok: str, where: str, column: str) -> float:
    try:
        v = float(tok)
    except ValueError:
        raise ParticleListError(f"{where}: non-numeric {column} coordinate {tok!r}") from None
    if not np.isfinite(v):
        raise ParticleListError(f"{where}: {column} coordinate {tok!r} is not finite")
    return v


def parse_text_list(text: str, *, source: str = "<text>", origin: int = 0) -> ParticleList:
    """Parse a benchmark-style list: ``class x y z [a1 a2 a3 ...]`` per line.

    Fields are separated by whitespace, or by commas when the line contains a comma (CSV).
    A first line whose x/y/z fields are not numbers and that names the columns ``x``, ``y``,
    ``z`` (and one of ``class``, ``pdb``, ``pdb_id``, ``name``) is a header and fixes the columns.

    Parameters
    ----------
    text : the file's content.
    source : file name used in error messages.
    origin : 0 if the file's coordinates are 0-based voxel indices (the benchmark), 1 if 1-based.

    Raises
    ------
    ParticleListError
        Naming the line for missing columns, non-numeric or non-finite coordinates and unknown
        classes (listing the known ones).
    """
    _check_origin(origin)
    cols = {"class": 0, "x": 1, "y": 2, "z": 3}
    classes: list[str] = []
    xyz: list[tuple[float, float, float]] = []
    angles: list[tuple[float, float, float] | None] = []
    lines: list[int] = []
    header_done = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")] if "," in line else line.split()
        where = f"{source} line {lineno}"
        if not header_done:
            header_done = True
            low = [f.lower() for f in fields]
            if {"x", "y", "z"} <= set(low):
                cls_names = [n for n in ("class", "pdb", "pdb_id", "name", "class_name")
                             if n in low]
                if not cls_names:
                    raise ParticleListError(
                        f"{where}: header {fields} names x, y, z but no class column "
                        "(expected one of class, pdb, pdb_id, name)")
                cols = {"class": low.index(cls_names[0]), "x": low.index("x"),
                        "y": low.index("y"), "z": low.index("z")}
                continue
        need = max(cols.values()) + 1
        if len(fields) < need:
            raise ParticleListError(
                f"{where}: expected at least {need} columns (class x y z), got {len(fields)}: "
                f"{line!r}")
        classes.append(resolve_class(fields[cols["class"]], where=where))
        xyz.append(tuple(_float(fields[cols[a]], where, a) - origin for a in "xyz"))  # type: ignore[misc]
        extra = [i for i in range(len(fields)) if i not in cols.values()]
        if len(extra) >= 3 and cols == {"class": 0, "x": 1, "y": 2, "z": 3}:
            try:
                angles.append(tuple(float(fields[i]) for i in extra[:3]))  # type: ignore[arg-type]
            except ValueError:
                angles.append(None)
        else:
            angles.append(None)
        lines.append(lineno)
    ang = (np.asarray(angles, dtype=np.float64)
           if angles and all(a is not None for a in angles) else None)
    return ParticleList(classes=tuple(classes),
                        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
                        angles_deg=ang, lines=np.asarray(lines, dtype=np.int64), source=source)


_STAR_LABEL = re.compile(r"^(_\S+)")


def parse_star(text: str, *, source: str = "<star>", origin: int = 0,
               class_column: str | None = None,
               class_map: Mapping[str, str] | None = None) -> ParticleList:
    """Parse the first STAR ``loop_`` that has ``_rlnCoordinateX/Y/Z`` columns.

    Parameters
    ----------
    text : the file's content.
    source : file name used in error messages.
    origin : 0 (default) if the coordinates are 0-based voxel indices, 1 if 1-based. STAR files
        from different tools differ here; the file does not say which, so the caller must.
    class_column : the column holding the class; default: the first of
        :data:`STAR_CLASS_COLUMNS` present.
    class_map : optional translation of the class column's values (e.g. ``{"1": "1s3x"}`` for
        a numeric ``_rlnClassNumber``) applied before resolving names.

    Raises
    ------
    ParticleListError
        No coordinate loop, no class column, wrong number of fields on a line, non-numeric
        coordinates, unknown classes: the message names the line.
    """
    _check_origin(origin)
    all_lines = text.splitlines()
    i = 0
    while i < len(all_lines):
        if all_lines[i].strip() == "loop_":
            labels: list[str] = []
            j = i + 1
            while j < len(all_lines):
                s = all_lines[j].strip()
                if not s:
                    j += 1
                    continue
                m = _STAR_LABEL.match(s)
                if not m:
                    break
                labels.append(m.group(1))
                j += 1
            if {"_rlnCoordinateX", "_rlnCoordinateY", "_rlnCoordinateZ"} <= set(labels):
                return _parse_star_loop(all_lines, j, labels, source, origin, class_column,
                                        class_map)
            i = j
            continue
        i += 1
    raise ParticleListError(f"{source}: no STAR loop_ with _rlnCoordinateX, _rlnCoordinateY and "
                            "_rlnCoordinateZ columns")


def _parse_star_loop(all_lines: list[str], start: int, labels: list[str], source: str,
                     origin: int, class_column: str | None,
                     class_map: Mapping[str, str] | None) -> ParticleList:
    if class_column is None:
        found = [c for c in STAR_CLASS_COLUMNS if c in labels]
        if not found:
            raise ParticleListError(
                f"{source}: no class column; looked for {', '.join(STAR_CLASS_COLUMNS)} among "
                f"{', '.join(labels)} (name one with class_column=)")
        class_column = found[0]
    elif class_column not in labels:
        raise ParticleListError(f"{source}: class column {class_column!r} not in the loop "
                                f"({', '.join(labels)})")
    ci = labels.index(class_column)
    xi, yi, zi = (labels.index(f"_rlnCoordinate{a}") for a in "XYZ")
    classes: list[str] = []
    xyz: list[tuple[float, float, float]] = []
    lines: list[int] = []
    for lineno in range(start + 1, len(all_lines) + 1):
        s = all_lines[lineno - 1].strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith(("data_", "_")) or s == "loop_":
            break
        fields = s.split()
        where = f"{source} line {lineno}"
        if len(fields) != len(labels):
            raise ParticleListError(f"{where}: expected {len(labels)} fields "
                                    f"({' '.join(labels)}), got {len(fields)}: {s!r}")
        value = fields[ci]
        if class_map is not None:
            value = class_map.get(value, value)
        if class_column == "_rlnClassNumber" and class_map is None:
            raise ParticleListError(
                f"{where}: class column _rlnClassNumber holds numbers ({value!r}); pass "
                f"class_map (number -> PDB ID) to read it")
        classes.append(resolve_class(value, where=where))
        xyz.append((_float(fields[xi], where, "x") - origin, _float(fields[yi], where, "y") - origin,
                    _float(fields[zi], where, "z") - origin))
        lines.append(lineno)
    return ParticleList(classes=tuple(classes),
                        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
                        lines=np.asarray(lines, dtype=np.int64), source=source)


def read_particle_list(path: str | os.PathLike, *, origin: int = 0, fmt: str | None = None,
                       class_column: str | None = None,
                       class_map: Mapping[str, str] | None = None) -> ParticleList:
    """Read a particle list file (text, CSV or STAR), returning 0-based ``(x, y, z)`` centres.

    Parameters
    ----------
    path : the file.
    origin : 0 if the file's coordinates are 0-based voxel indices (the benchmark's files and
        this package's), 1 if 1-based; 1 is subtracted on reading.
    fmt : ``"text"``, ``"csv"`` or ``"star"``; default: ``"star"`` for ``.star`` files or files
        containing a ``loop_`` line, else text/CSV (detected per line).
    class_column, class_map : STAR only, see :func:`parse_star`.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ParticleListError
        When the content is not a valid list (names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such particle list file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ParticleListError(f"{path}: not a text file ({exc})") from None
    if fmt is None:
        is_star = path.suffix.lower() == ".star" or any(
            ln.strip() == "loop_" for ln in text.splitlines())
        fmt = "star" if is_star else "text"
    if fmt == "star":
        return parse_star(text, source=str(path), origin=origin, class_column=class_column,
                          class_map=class_map)
    if fmt in ("text", "csv"):
        return parse_text_list(text, source=str(path), origin=origin)
    raise ValueError(f"unknown particle list format {fmt!r}; valid: text, csv, star")


def _fmt(v: float) -> str:
    return f"{v:.6g}" if float(v) != int(v) else str(int(v))


def write_particle_list(path: str | os.PathLike, particles: ParticleList, *, origin: int = 0,
                        fmt: str | None = None) -> Path:
    """Write a particle list atomically, in the format read back by :func:`read_particle_list`.

    Parameters
    ----------
    path : destination.
    particles : the list (0-based in memory).
    origin : 0 writes 0-based voxel indices (the benchmark's convention); 1 writes 1-based.
    fmt : ``"text"`` (``class x y z [a1 a2 a3]``, the benchmark's layout), ``"csv"`` (with a
        header ``class,x,y,z[,a1,a2,a3]``) or ``"star"`` (``_rlnCoordinateX/Y/Z`` and
        ``_shrecClass``); default from the suffix (``.star``, ``.csv``, otherwise text).
    """
    _check_origin(origin)
    path = Path(path)
    if fmt is None:
        fmt = {".star": "star", ".csv": "csv"}.get(path.suffix.lower(), "text")
    xyz = particles.xyz + origin
    ang = particles.angles_deg
    out: list[str] = []
    if fmt == "star":
        out += ["", "data_particles", "", "loop_", "_rlnCoordinateX #1", "_rlnCoordinateY #2",
                "_rlnCoordinateZ #3", "_shrecClass #4"]
        out += [f"{_fmt(x)} {_fmt(y)} {_fmt(z)} {c}" for c, (x, y, z) in
                zip(particles.classes, xyz)]
    elif fmt in ("text", "csv"):
        sep = "," if fmt == "csv" else " "
        if fmt == "csv":
            out.append(sep.join(["class", "x", "y", "z"] + (["a1", "a2", "a3"] if ang is not None
                                                            else [])))
        for k, (c, p) in enumerate(zip(particles.classes, xyz)):
            row = [c] + [_fmt(v) for v in p]
            if ang is not None:
                row += [_fmt(v) for v in ang[k]]
            out.append(sep.join(row))
    else:
        raise ValueError(f"unknown particle list format {fmt!r}; valid: text, csv, star")
    return write_text(path, "\n".join(out) + "\n")
