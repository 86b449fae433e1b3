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
  optionally with a header naming ``class``, ``x``, ``y``, ``z``; ``x_vox`` etc. and an ``id``
  column as this package writes) and STAR (a ``loop_`` with ``_rlnCoordinateX/Y/Z`` in voxels
  and a class column; written with the ``starfile`` package). Blank lines and lines starting with
  ``#`` are skipped. Duplicate lines are kept: each line is one detection.
"""
from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryo_companion._io import atomic_path, write_text
from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES

if TYPE_CHECKING:
    from cryo_companion.simulate.scene import Scene

__all__ = [
    "ANGLE_COLUMNS",
    "KNOWN_CLASS_IDS",
    "STAR_CLASS_COLUMNS",
    "ParticleList",
    "ParticleListError",
    "parse_star",
    "parse_text_list",
    "particle_list",
    "particle_list_from_scene",
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


def resolve_class(name: str, *, where: str = "", extra_classes: Collection[str] = (),
                  any_class: bool = False) -> str:
    """Return the canonical name of a class: its PDB ID for a class of Table 1 (ID or name).

    Parameters
    ----------
    name : str
        The class as written (case-insensitive).
    where : str
        Where it was read (``"pred.txt line 3"``), for the error message.
    extra_classes : collection of str
        Classes accepted besides Table 1 (e.g. those of the truth list, for a prediction); a
        match returns the spelling given here.
    any_class : bool
        Accept any non-empty name (a truth list of a simulated tomogram may hold membranes or
        complexes outside Table 1); an unknown name is kept as written.

    Returns
    -------
    str
        The PDB ID of a Table 1 class, else the accepted name.

    Raises
    ------
    ParticleListError
        For an unknown class, listing the known ones.
    """
    raw = str(name).strip()
    key = raw.lower()
    if key in _ALIASES:
        return _ALIASES[key]
    extras = {str(c).strip().lower(): str(c).strip() for c in extra_classes}
    if key in extras:
        return extras[key]
    if any_class and raw:
        return raw
    prefix = f"{where}: " if where else ""
    others = sorted(v for k, v in extras.items() if k not in _ALIASES)
    also = f"; or a class of the truth list: {', '.join(others)}" if others else ""
    raise ParticleListError(
        f"{prefix}unknown class {name!r}; known classes (PDB ID or Table 1 name): "
        f"{', '.join(KNOWN_CLASS_IDS)}{also}")


@dataclass(frozen=True)
class ParticleList:
    """Particles (or detections) with class and centre, 0-based voxel coordinates.

    Attributes
    ----------
    classes : tuple of str
        `(N,)` canonical PDB IDs (``SHREC2020_CLASSES``), or other class names where the reader
        was asked to accept them (:func:`resolve_class`).
    xyz : np.ndarray
        `(N, 3)` float64 centres as ``(x, y, z)`` in voxels, 0-based (voxel ``[k, j, i]`` is
        centred at ``(i, j, k)``). Note the order: x first, unlike the ``(z, y, x)`` arrays.
    angles_deg : np.ndarray or None
        `(N, 3)` Euler angles in degrees as read from the file (the benchmark's ZXZ triple),
        unconverted; None when the file has none.
    lines : np.ndarray or None
        `(N,)` int64 1-based line number of each particle in its source file (0 when built in
        memory), used to name lines in error messages (None given: zeros).
    source : str
        The file it was read from, or ``"<memory>"``.

    Raises
    ------
    ParticleListError
        On construction, for coordinates that are not `(N, 3)`, not finite or not one per
        class, or angles that are not `(N, 3)`.
    """

    classes: tuple[str, ...]
    xyz: np.ndarray
    angles_deg: np.ndarray | None = None
    lines: np.ndarray | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        """Convert and check coordinates, line numbers and angles."""
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
        """Return the number of particles."""
        return len(self.classes)

    @property
    def zyx(self) -> np.ndarray:
        """Centres in array order ``(z, y, x)``, `(N, 3)`, 0-based voxels."""
        return self.xyz[:, ::-1]


def particle_list(classes: Iterable[str], xyz: np.ndarray | Sequence[Sequence[float]],
                  angles_deg: np.ndarray | None = None, *, any_class: bool = False
                  ) -> ParticleList:
    """Build a :class:`ParticleList` in memory, resolving class names to PDB IDs.

    Parameters
    ----------
    classes : iterable of str
        PDB IDs or Table 1 names, length N (any name with ``any_class``).
    xyz : array-like
        `(N, 3)` centres ``(x, y, z)``, 0-based voxels.
    angles_deg : np.ndarray or None
        Optional `(N, 3)` Euler angles in degrees, carried unchanged.
    any_class : bool
        Accept class names outside Table 1 (see :func:`resolve_class`).

    Returns
    -------
    ParticleList
        The list (source ``"<memory>"``).

    Raises
    ------
    ParticleListError
        For an unknown class, or coordinates or angles of the wrong shape or not finite.
    """
    names = tuple(resolve_class(c, where=f"particle {i}", any_class=any_class)
                  for i, c in enumerate(classes))
    arr = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) if len(names) == 0 else xyz
    return ParticleList(classes=names, xyz=np.asarray(arr, dtype=np.float64),
                        angles_deg=angles_deg)


def _check_origin(origin: int) -> None:
    """Refuse an origin other than 0 or 1."""
    if origin not in (0, 1):
        raise ValueError(f"origin must be 0 (0-based voxel indices) or 1 (1-based), "
                         f"got {origin!r}")


def _float(tok: str, where: str, column: str) -> float:
    """Read a finite coordinate, naming the line and column otherwise."""
    try:
        v = float(tok)
    except ValueError:
        raise ParticleListError(f"{where}: non-numeric {column} coordinate {tok!r}") from None
    if not np.isfinite(v):
        raise ParticleListError(f"{where}: {column} coordinate {tok!r} is not finite")
    return v


#: Header names understood for each column of a CSV/text list (case-insensitive).
_HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "class": ("class", "pdb", "pdb_id", "name", "class_name"),
    **{a: (a, f"{a}_vox", f"{a}_voxel", f"{a}_px", f"coordinate_{a}") for a in "xyz"},
}
#: Header triples naming Euler angles (degrees), carried unchanged.
_ANGLE_HEADERS: tuple[tuple[str, str, str], ...] = (
    ("a1", "a2", "a3"), ("a1_deg", "a2_deg", "a3_deg"), ("phi", "theta", "psi"),
    ("phi_deg", "theta_deg", "psi_deg"), ("rot", "tilt", "psi"))
_DEFAULT_COLS = {"class": 0, "x": 1, "y": 2, "z": 3}


def _header(fields: list[str], where: str) -> tuple[dict[str, int], list[int] | None] | None:
    """Return the columns named by a header line, or None when the line is not a header."""
    low = [f.strip().lower() for f in fields]
    found = {key: next((low.index(n) for n in names if n in low), None)
             for key, names in _HEADER_NAMES.items()}
    if any(found[a] is None for a in "xyz"):
        return None
    if found["class"] is None:
        raise ParticleListError(
            f"{where}: header {fields} names x, y, z but no class column "
            f"(expected one of {', '.join(_HEADER_NAMES['class'])})")
    angles = next(([low.index(n) for n in t] for t in _ANGLE_HEADERS if set(t) <= set(low)),
                  None)
    return {k: int(v) for k, v in found.items() if v is not None}, angles


def parse_text_list(text: str, *, source: str = "<text>", origin: int = 0,
                    extra_classes: Collection[str] = (), any_class: bool = False
                    ) -> ParticleList:
    """Parse a benchmark-style list: ``class x y z [a1 a2 a3 ...]`` per line.

    Fields are separated by whitespace, or by commas when the line contains a comma (CSV).
    A first line that names the columns ``x``, ``y``, ``z`` (or ``x_vox``, ``x_px``, ...) and a
    class column (``class``, ``pdb``, ``pdb_id``, ``name``, ``class_name``) is a header and fixes
    the columns, in any order; other columns (an ``id``, a score) are ignored, except a triple of
    Euler angles named ``a1,a2,a3``, ``a1_deg,...``, ``phi,theta,psi``, ``phi_deg,...`` or
    ``rot,tilt,psi``. Without a header, three columns after ``class x y z`` are angles.

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        File name used in error messages.
    origin : int
        0 if the file's coordinates are 0-based voxel indices (the benchmark), 1 if 1-based.
    extra_classes : collection of str
        Classes accepted besides Table 1, see :func:`resolve_class`.
    any_class : bool
        Accept any class name, see :func:`resolve_class`.

    Returns
    -------
    ParticleList
        0-based centres, with the line number of each particle.

    Raises
    ------
    ValueError
        For an ``origin`` other than 0 or 1.
    ParticleListError
        Naming the line for missing columns, non-numeric or non-finite coordinates and unknown
        classes (listing the known ones).
    """
    _check_origin(origin)
    cols = dict(_DEFAULT_COLS)
    angle_cols: list[int] | None = None
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
            head = _header(fields, where)
            if head is not None:
                cols, angle_cols = head
                continue
        need = max(cols.values()) + 1
        if len(fields) < need:
            raise ParticleListError(
                f"{where}: expected at least {need} columns (class x y z), got {len(fields)}: "
                f"{line!r}")
        classes.append(resolve_class(fields[cols["class"]], where=where,
                                     extra_classes=extra_classes, any_class=any_class))
        cx, cy, cz = (_float(fields[cols[a]], where, a) - origin for a in "xyz")
        xyz.append((cx, cy, cz))
        idx = angle_cols
        if idx is None and cols == _DEFAULT_COLS and len(fields) >= 7:
            idx = [4, 5, 6]
        angles.append(_angles(fields, idx))
        lines.append(lineno)
    ang = (np.asarray(angles, dtype=np.float64)
           if angles and all(a is not None for a in angles) else None)
    return ParticleList(classes=tuple(classes),
                        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
                        angles_deg=ang, lines=np.asarray(lines, dtype=np.int64), source=source)


def _angles(fields: Sequence[str], idx: Sequence[int] | None
            ) -> tuple[float, float, float] | None:
    """Read the three angles at ``idx`` of a line's fields (None: absent or not numbers)."""
    if idx is None or len(fields) <= max(idx):
        return None
    try:
        a1, a2, a3 = (float(fields[i]) for i in idx)
    except ValueError:
        return None
    return a1, a2, a3


_STAR_LABEL = re.compile(r"^(_\S+)")


def parse_star(text: str, *, source: str = "<star>", origin: int = 0,
               class_column: str | None = None,
               class_map: Mapping[str, str] | None = None,
               extra_classes: Collection[str] = (), any_class: bool = False) -> ParticleList:
    """Parse the first STAR ``loop_`` that has ``_rlnCoordinateX/Y/Z`` columns.

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        File name used in error messages.
    origin : int
        0 (default) if the coordinates are 0-based voxel indices, 1 if 1-based. STAR files
        from different tools differ here; the file does not say which, so the caller must.
    class_column : str or None
        The column holding the class; default: the first of :data:`STAR_CLASS_COLUMNS` present.
    class_map : mapping of str to str, or None
        Translation of the class column's values (e.g. ``{"1": "1s3x"}`` for a numeric
        ``_rlnClassNumber``) applied before resolving names.
    extra_classes : collection of str
        Classes accepted besides Table 1, see :func:`resolve_class`.
    any_class : bool
        Accept any class name, see :func:`resolve_class`.

    Returns
    -------
    ParticleList
        0-based centres (no angles: see :func:`write_particle_list`).

    Raises
    ------
    ValueError
        For an ``origin`` other than 0 or 1.
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
                                        class_map, extra_classes, any_class)
            i = j
            continue
        i += 1
    raise ParticleListError(f"{source}: no STAR loop_ with _rlnCoordinateX, _rlnCoordinateY and "
                            "_rlnCoordinateZ columns")


def _parse_star_loop(all_lines: list[str], start: int, labels: list[str], source: str,
                     origin: int, class_column: str | None,
                     class_map: Mapping[str, str] | None, extra_classes: Collection[str],
                     any_class: bool) -> ParticleList:
    """Read the rows of a STAR loop from ``start`` (see :func:`parse_star`)."""
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
        classes.append(resolve_class(value, where=where, extra_classes=extra_classes,
                                     any_class=any_class))
        xyz.append((_float(fields[xi], where, "x") - origin,
                    _float(fields[yi], where, "y") - origin,
                    _float(fields[zi], where, "z") - origin))
        lines.append(lineno)
    return ParticleList(classes=tuple(classes),
                        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
                        lines=np.asarray(lines, dtype=np.int64), source=source)


def read_particle_list(path: str | os.PathLike, *, origin: int = 0, fmt: str | None = None,
                       class_column: str | None = None,
                       class_map: Mapping[str, str] | None = None,
                       extra_classes: Collection[str] = (), any_class: bool = False
                       ) -> ParticleList:
    """Read a particle list file (text, CSV or STAR) into 0-based ``(x, y, z)`` centres.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    origin : int
        0 if the file's coordinates are 0-based voxel indices (the benchmark's files and
        this package's), 1 if 1-based; 1 is subtracted on reading.
    fmt : str or None
        ``"text"``, ``"csv"`` or ``"star"``; default: ``"star"`` for ``.star`` files or files
        containing a ``loop_`` line, else text/CSV (detected per line).
    class_column : str or None
        STAR only, see :func:`parse_star`.
    class_map : mapping of str to str, or None
        STAR only, see :func:`parse_star`.
    extra_classes : collection of str
        Classes accepted besides Table 1, see :func:`resolve_class`.
    any_class : bool
        Accept any class name, see :func:`resolve_class`.

    Returns
    -------
    ParticleList
        The particles, with the file as ``source``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For an unknown ``fmt`` or an ``origin`` other than 0 or 1.
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
                          class_map=class_map, extra_classes=extra_classes, any_class=any_class)
    if fmt in ("text", "csv"):
        return parse_text_list(text, source=str(path), origin=origin,
                               extra_classes=extra_classes, any_class=any_class)
    raise ValueError(f"unknown particle list format {fmt!r}; valid: text, csv, star")


def _fmt(v: float) -> str:
    """Format a number as an integer where it is one, else with six significant digits."""
    return f"{v:.6g}" if float(v) != int(v) else str(int(v))


#: Default CSV names of the three Euler angles, neutral about their convention.
ANGLE_COLUMNS: tuple[str, str, str] = ("a1_deg", "a2_deg", "a3_deg")


def write_particle_list(path: str | os.PathLike, particles: ParticleList, *, origin: int = 0,
                        fmt: str | None = None,
                        angle_columns: Sequence[str] = ANGLE_COLUMNS) -> Path:
    """Write a particle list atomically, in a format read back by :func:`read_particle_list`.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    particles : ParticleList
        The list (0-based in memory).
    origin : int
        0 writes 0-based voxel indices (the benchmark's convention); 1 writes 1-based.
    fmt : str or None
        ``"text"`` (``class x y z [a1 a2 a3]``, the benchmark's layout), ``"csv"`` (header
        ``id,class,x_vox,y_vox,z_vox[,angles]``; ``id`` is the 1-based line, i.e. the
        occupancy label of a truth list) or ``"star"`` (written with the ``starfile`` package:
        a ``data_particles`` loop with ``_rlnCoordinateX/Y/Z`` in voxels and ``_shrecClass``);
        default from the suffix (``.star``, ``.csv``, otherwise text).
    angle_columns : sequence of str
        CSV names of the three angles (one of the triples :func:`parse_text_list` knows, e.g.
        ``("phi_deg", "theta_deg", "psi_deg")``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        For an unknown ``fmt``, an ``origin`` other than 0 or 1, or CSV ``angle_columns`` that
        the reader would not recognise.

    Notes
    -----
    STAR files carry coordinates and classes only. RELION's ``_rlnAngleRot/Tilt/Psi`` are
    read as rotations of the reference or of the particle by different tools; rather than
    guess, the angles stay in the text and CSV lists, whose convention the writer documents.
    """
    _check_origin(origin)
    path = Path(path)
    if fmt is None:
        fmt = {".star": "star", ".csv": "csv"}.get(path.suffix.lower(), "text")
    xyz = particles.xyz + origin
    ang = particles.angles_deg
    if fmt == "star":
        import pandas as pd
        import starfile

        df = pd.DataFrame({"rlnCoordinateX": xyz[:, 0], "rlnCoordinateY": xyz[:, 1],
                           "rlnCoordinateZ": xyz[:, 2], "shrecClass": list(particles.classes)})
        with atomic_path(path, suffix=".star") as tmp:
            starfile.write({"particles": df}, tmp, float_format="%.6g")
            # the package's banner carries the time: drop it, so a seed gives the same bytes
            lines = tmp.read_text().splitlines(keepends=True)
            tmp.write_text("".join(ln for ln in lines
                                   if not ln.startswith("# Created by the starfile")))
        return path
    if fmt not in ("text", "csv"):
        raise ValueError(f"unknown particle list format {fmt!r}; valid: text, csv, star")
    known = {tuple(t) for t in _ANGLE_HEADERS}
    if fmt == "csv" and ang is not None and tuple(a.lower() for a in angle_columns) not in known:
        raise ValueError(f"angle_columns {tuple(angle_columns)} is not a triple the reader "
                         f"knows: {sorted(known)}")
    out: list[str] = []
    if fmt == "csv":
        out.append(",".join(["id", "class", "x_vox", "y_vox", "z_vox"]
                            + (list(angle_columns) if ang is not None else [])))
    for k, (c, p) in enumerate(zip(particles.classes, xyz)):
        row = [c] + [_fmt(v) for v in p] + ([_fmt(v) for v in ang[k]] if ang is not None
                                            else [])
        out.append(",".join([str(k + 1)] + row) if fmt == "csv" else " ".join(row))
    return write_text(path, "\n".join(out) + "\n")


def particle_list_from_scene(scene: Scene, occupancy: np.ndarray, bin_factor: int = 1
                             ) -> ParticleList:
    """Return the ground-truth list of a simulated scene on the tomogram grid (row i: label i+1).

    Parameters
    ----------
    scene : cryo_companion.simulate.scene.Scene
        The scene (particle centres in scene voxels, ``euler_zyz_deg``, ``kind``).
    occupancy : np.ndarray
        `(z, y, x)` occupancy map on the tomogram grid (0 none, i + 1 = ``scene.particles[i]``).
    bin_factor : int
        Scene voxels per tomogram voxel.

    Returns
    -------
    ParticleList
        Classes as named in the scene (any name), centres in 0-based tomogram voxels and the
        scene's ZYZ Euler angles (degrees). A membrane (``kind`` vesicle or sheet) has no
        centre of its own (a vesicle's sphere centre lies in its lumen, a sheet's far outside
        the tomogram): its row holds the voxel of its region nearest to the region's centroid,
        and angles 0.
    """
    from cryo_companion.simulate.tomogram import scene_to_tomogram_vox

    occ = np.asarray(occupancy)
    classes, xyz, angles = [], [], []
    for i, p in enumerate(scene.particles):
        classes.append(p["class_name"])
        angles.append(p.get("euler_zyz_deg", [0.0, 0.0, 0.0]))
        if p.get("kind") in ("vesicle", "sheet"):
            zyx = np.argwhere(occ == i + 1)
            if len(zyx) == 0:
                c = scene_to_tomogram_vox(np.asarray(p["centre_xyz_vox"], dtype=np.float64),
                                          bin_factor)
                xyz.append(np.clip(c, 0, np.asarray(occ.shape[::-1]) - 1))
                continue
            mid = zyx.mean(0)
            xyz.append(zyx[np.argmin(((zyx - mid) ** 2).sum(1))][::-1].astype(np.float64))
        else:
            xyz.append(scene_to_tomogram_vox(np.asarray(p["centre_xyz_vox"], dtype=np.float64),
                                             bin_factor))
    return particle_list(classes, np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
                         np.asarray(angles, dtype=np.float64).reshape(-1, 3), any_class=True)
