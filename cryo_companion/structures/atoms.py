"""Reading atomic models: PDB and mmCIF files, plain or gzip-compressed.

The readers keep what a density map needs (coordinates, elements, occupancies, residue names)
and apply the same rules to both formats:

- only the first model of a multi-model file (NMR ensembles, trajectories) is read;
- alternate locations are counted once: per atom, the conformer of highest occupancy (the
  first on ties) is kept;
- waters (HOH, WAT, DOD, H2O) and hydrogens (H, D) are dropped unless asked for;
- an empty file, a file with no atom records, a truncated record or a truncated gzip stream
  is an :class:`AtomFileError` naming the file and the line.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cryo_companion.structures._elements import ATOMIC_NUMBER, MASS_DA, guess_element

__all__ = ["WATER_NAMES", "AtomFileError", "Atoms", "read_atoms", "read_mmcif", "read_pdb"]

WATER_NAMES = frozenset({"HOH", "WAT", "DOD", "H2O", "SOL", "TIP", "TIP3"})
_HYDROGENS = frozenset({"H", "D"})


class AtomFileError(ValueError):
    """A file that is not a readable atomic model."""


@dataclass(frozen=True)
class Atoms:
    """Atoms of one model.

    Attributes
    ----------
    xyz_A : np.ndarray
        `(n, 3)` float64 Cartesian coordinates in Å, columns (x, y, z) as in the file.
    element : np.ndarray
        `(n,)` str element symbols, upper case (``""`` where unknown).
    occupancy : np.ndarray
        `(n,)` float64 occupancies.
    resname : np.ndarray
        `(n,)` str residue names.
    hetero : np.ndarray
        `(n,)` bool, True for HETATM records (ligands, ions, waters).
    source : str
        The file the atoms were read from.
    """

    xyz_A: np.ndarray
    element: np.ndarray
    occupancy: np.ndarray
    resname: np.ndarray
    hetero: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        """Return the number of atoms."""
        return int(self.xyz_A.shape[0])

    @property
    def mass_da(self) -> np.ndarray:
        """Atomic masses in Da, `(n,)`; an unknown element counts as carbon."""
        return _lookup(self.element, MASS_DA, MASS_DA["C"])

    @property
    def atomic_number(self) -> np.ndarray:
        """Atomic numbers, `(n,)`; an unknown element counts as carbon (6)."""
        return _lookup(self.element, ATOMIC_NUMBER, 6)

    @property
    def total_mass_kda(self) -> float:
        """Sum of atomic masses in kDa (hydrogens only if they were kept)."""
        return float(self.mass_da.sum() / 1000.0)

    def center_of_mass_A(self) -> np.ndarray:
        """Compute the mass-weighted centre.

        Returns
        -------
        np.ndarray
            `(3,)` float64 centre (x, y, z) in Å.
        """
        m = self.mass_da
        return (self.xyz_A * m[:, None]).sum(0) / m.sum()

    def select(self, keep: np.ndarray) -> Atoms:
        """Return the atoms where ``keep`` is True.

        Parameters
        ----------
        keep : np.ndarray
            `(n,)` bool mask (converted to bool).

        Returns
        -------
        Atoms
            The selected atoms, same ``source``.
        """
        keep = np.asarray(keep, dtype=bool)
        return Atoms(self.xyz_A[keep], self.element[keep], self.occupancy[keep],
                     self.resname[keep], self.hetero[keep], self.source)


def _lookup(symbols: np.ndarray, table: Mapping[str, float], default: float) -> np.ndarray:
    uniq, inv = np.unique(symbols, return_inverse=True)
    values = np.array([table.get(str(u), default) for u in uniq], dtype=np.float64)
    return values[inv.reshape(-1)]


def read_atoms(path: str | os.PathLike, *, hydrogens: bool = False, waters: bool = False,
               hetero: bool = True) -> Atoms:
    """Read a PDB or mmCIF file (``.pdb``, ``.ent``, ``.cif``, ``.mmcif``, optionally ``.gz``).

    The format is taken from the content (``data_`` block or ``_atom_site`` loop: mmCIF),
    not only from the name.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    hydrogens : bool, optional
        Keep hydrogen (and deuterium) atoms; default False, so that models with and without
        explicit hydrogens give the same density.
    waters : bool, optional
        Keep water molecules; default False (ordered waters are not part of the complex).
    hetero : bool, optional
        Keep other HETATM records (ligands, ions, cofactors); default True.

    Returns
    -------
    Atoms
        The atoms of the first model, one conformer per atom, filtered as asked.

    Raises
    ------
    AtomFileError
        If the file is missing, empty, truncated or corrupt, holds no atom records, or no atom
        is left after the filtering.
    """
    path = Path(path)
    text = _read_text(path)
    head = text.lstrip()[:2000]
    if head.startswith(("data_", "_atom_site")) or "\n_atom_site." in text[:200000]:
        atoms = _parse_mmcif(text, str(path))
    else:
        atoms = _parse_pdb(text, str(path))
    return _filter(atoms, hydrogens=hydrogens, waters=waters, hetero=hetero)


def read_pdb(path: str | os.PathLike, **kwargs: bool) -> Atoms:
    """Read a PDB-format file (see :func:`read_atoms` for the options).

    Parameters
    ----------
    path : str or os.PathLike
        The file (optionally gzip-compressed).
    **kwargs : bool
        ``hydrogens``, ``waters``, ``hetero`` as in :func:`read_atoms`.

    Returns
    -------
    Atoms
        The atoms of the first model.

    Raises
    ------
    AtomFileError
        As :func:`read_atoms`.
    TypeError
        For an unknown option.
    """
    path = Path(path)
    return _filter(_parse_pdb(_read_text(path), str(path)), **_opts(kwargs))


def read_mmcif(path: str | os.PathLike, **kwargs: bool) -> Atoms:
    """Read an mmCIF file (see :func:`read_atoms` for the options).

    Parameters
    ----------
    path : str or os.PathLike
        The file (optionally gzip-compressed).
    **kwargs : bool
        ``hydrogens``, ``waters``, ``hetero`` as in :func:`read_atoms`.

    Returns
    -------
    Atoms
        The atoms of the first model.

    Raises
    ------
    AtomFileError
        As :func:`read_atoms`.
    TypeError
        For an unknown option.
    """
    path = Path(path)
    return _filter(_parse_mmcif(_read_text(path), str(path)), **_opts(kwargs))


def _opts(kwargs: dict[str, bool]) -> dict[str, bool]:
    allowed = {"hydrogens", "waters", "hetero"}
    bad = set(kwargs) - allowed
    if bad:
        raise TypeError(f"unknown options {sorted(bad)}; valid: {sorted(allowed)}")
    return {"hydrogens": False, "waters": False, "hetero": True, **kwargs}


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise AtomFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AtomFileError(f"{path}: file is empty, expected a PDB or mmCIF atomic model")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise AtomFileError(f"{path}: truncated or corrupt gzip stream ({exc})") from exc
        if not raw.strip():
            raise AtomFileError(f"{path}: file is empty after decompression")
    return raw.decode("latin-1")


def _filter(atoms: Atoms, *, hydrogens: bool, waters: bool, hetero: bool) -> Atoms:
    keep = np.ones(len(atoms), dtype=bool)
    if not hydrogens:
        keep &= ~np.isin(atoms.element, list(_HYDROGENS))
    if not waters:
        keep &= ~np.isin(atoms.resname, list(WATER_NAMES))
    if not hetero:
        keep &= ~atoms.hetero | np.isin(atoms.resname, list(WATER_NAMES))
        if not waters:
            keep &= ~atoms.hetero
    out = atoms.select(keep)
    if len(out) == 0:
        raise AtomFileError(f"{atoms.source}: no atoms left after removing "
                            f"{'hydrogens, ' if not hydrogens else ''}"
                            f"{'waters, ' if not waters else ''}"
                            f"{'hetero atoms' if not hetero else ''}".rstrip(", "))
    return out


def _resolve_altlocs(keys: Sequence[str] | np.ndarray, altloc: Sequence[str] | np.ndarray,
                     occ: np.ndarray) -> np.ndarray:
    """Return a boolean mask keeping one conformer per atom: highest occupancy, first on ties.

    ``keys`` identify an atom across conformers (chain, residue number, insertion code, name).
    """
    alt = np.asarray(altloc, dtype=str)
    has_alt = ~np.isin(alt, ["", ".", "?", " "])
    keep = np.ones(len(alt), dtype=bool)
    idx = np.flatnonzero(has_alt)
    if idx.size == 0:
        return keep
    k = np.asarray(keys, dtype=str)[idx]
    # sort by key, then occupancy (descending), then file order; keep each key's first
    order = np.lexsort((idx, -occ[idx], k))
    first = np.ones(idx.size, dtype=bool)
    first[1:] = k[order][1:] != k[order][:-1]
    keep[idx] = False
    keep[idx[order][first]] = True
    return keep


_PDB_WIDTH = 80


def _parse_pdb(text: str, source: str) -> Atoms:
    """Parse fixed-column PDB records column-wise with numpy (fast for 100k+ atoms)."""
    lines = text.splitlines()
    rows = _pdb_atom_rows(lines, source)
    block = "".join(lines[i][:_PDB_WIDTH].ljust(_PDB_WIDTH) for i in rows).encode("latin-1")
    buf = np.frombuffer(block, dtype=np.uint8).reshape(len(rows), _PDB_WIDTH)

    def col(a: int, b: int) -> np.ndarray:
        return np.ascontiguousarray(buf[:, a:b]).view(f"S{b - a}").ravel()

    xyz = _pdb_coordinates(col, lines, rows, source)
    occ_s = np.char.strip(col(54, 60))
    occ = np.ones(len(rows), dtype=np.float64)
    filled = occ_s != b""
    try:
        occ[filled] = occ_s[filled].astype(np.float64)
    except ValueError:
        occ[filled] = [_float_or_one(v) for v in occ_s[filled]]
    names = col(12, 16).astype(str)
    resname = np.char.strip(col(17, 20).astype(str))
    element = np.char.upper(np.char.strip(col(76, 78).astype(str)))
    unknown = ~np.isin(element, list(MASS_DA))
    for k in np.flatnonzero(unknown):
        element[k] = guess_element(names[k], resname[k])
    element = element.astype(str)
    hetero = col(0, 6) == b"HETATM"
    alts = col(16, 17).astype(str)
    keys = np.char.add(col(21, 27).astype(str), names)
    return _make(xyz, element, occ, resname, hetero, keys, alts, source)


def _pdb_atom_rows(lines: Sequence[str], source: str) -> list[int]:
    """Return the indices of the ATOM/HETATM lines of the first model, each long enough."""
    begin, stop = 0, len(lines)
    marks = [i for i, ln in enumerate(lines) if ln.startswith(("MODEL ", "ENDMDL"))]
    if marks:
        # first model only: from the first MODEL to the next ENDMDL or MODEL
        first_model = next((i for i in marks if lines[i].startswith("MODEL ")), None)
        if first_model is not None:
            begin = first_model + 1
            stop = next((i for i in marks if i > first_model), len(lines))
    rows = [i for i in range(begin, stop) if lines[i].startswith(("ATOM  ", "HETATM"))]
    if not rows:
        raise AtomFileError(f"{source}: no ATOM/HETATM records: not a PDB atomic model "
                            "(or truncated before the first atom)")
    for i in rows:
        if len(lines[i]) < 54:
            line = lines[i]
            raise AtomFileError(f"{source}: line {i + 1}: truncated {line[:6].strip()} record "
                                f"({len(line)} characters, coordinates need 54): {line!r}")
    return rows


def _pdb_coordinates(col: Callable[[int, int], np.ndarray], lines: Sequence[str],
                     rows: Sequence[int], source: str) -> np.ndarray:
    """Read the `(n, 3)` coordinates, naming the first unreadable line."""
    try:
        return np.stack([col(30, 38).astype(np.float64), col(38, 46).astype(np.float64),
                         col(46, 54).astype(np.float64)], axis=1)
    except ValueError:
        for i in rows:  # find the culprit for the message
            try:
                float(lines[i][30:38]), float(lines[i][38:46]), float(lines[i][46:54])
            except ValueError as exc:
                raise AtomFileError(f"{source}: line {i + 1}: unreadable coordinates in "
                                    f"{lines[i]!r}") from exc
        raise


def _float_or_one(v: bytes) -> float:
    try:
        return float(v)
    except ValueError:
        return 1.0


def _make(xyz: npt.ArrayLike, elem: npt.ArrayLike, occ: npt.ArrayLike, resn: npt.ArrayLike,
          het: npt.ArrayLike, keys: Sequence[str] | np.ndarray,
          alts: Sequence[str] | np.ndarray, source: str) -> Atoms:
    """Assemble checked :class:`Atoms`, one conformer per atom."""
    xyz_a = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(xyz_a).all():
        raise AtomFileError(f"{source}: non-finite coordinates")
    occ_a = np.asarray(occ, dtype=np.float64)
    keep = _resolve_altlocs(keys, alts, occ_a)
    atoms = Atoms(xyz_a, np.asarray(elem, dtype=object).astype(str), occ_a,
                  np.asarray(resn, dtype=object).astype(str), np.asarray(het, dtype=bool), source)
    return atoms.select(keep)


_CIF_TOKEN = re.compile(r"""'(?:[^']|'(?=\S))*'(?=\s|$)|"(?:[^"]|"(?=\S))*"(?=\s|$)|\S+""")


def _cif_tokens(line: str) -> list[str]:
    """Split a CIF data line into values (quotes removed)."""
    if "'" not in line and '"' not in line:
        return line.split()
    out = []
    for tok in _CIF_TOKEN.findall(line):
        if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "'\"":
            tok = tok[1:-1]
        out.append(tok)
    return out


_CIF_XYZ = ("Cartn_x", "Cartn_y", "Cartn_z")


def _parse_mmcif(text: str, source: str) -> Atoms:
    """Parse the ``_atom_site`` loop of an mmCIF file (first model only)."""
    lines = text.splitlines()
    tags, start = _atom_site_loop(lines, source)
    col = {t: k for k, t in enumerate(tags)}
    missing = [t for t in _CIF_XYZ if t not in col]
    if missing:
        raise AtomFileError(f"{source}: _atom_site loop lacks {missing}")
    xyz: list[tuple[float, float, float]] = []
    elem: list[str] = []
    occ: list[float] = []
    resn: list[str] = []
    het: list[bool] = []
    keys: list[str] = []
    alts: list[str] = []
    first_model = None
    for lineno, row in _cif_rows(lines, start, len(tags), source):
        model = _cif_get(row, col, "pdbx_PDB_model_num", default="1")
        if first_model is None:
            first_model = model
        elif model != first_model:
            break
        xyz.append(_cif_xyz(row, col, lineno, source))
        resname = _cif_get(row, col, "label_comp_id", "auth_comp_id")
        name = _cif_get(row, col, "label_atom_id", "auth_atom_id")
        e = _cif_get(row, col, "type_symbol").upper()
        if e not in MASS_DA:
            e = guess_element(name if len(name) == 4 else f" {name:<3s}", resname)
        elem.append(e)
        occ.append(_float_or_default(_cif_get(row, col, "occupancy", default="1"), 1.0))
        resn.append(resname)
        het.append(_cif_get(row, col, "group_PDB", default="ATOM") == "HETATM")
        alts.append(_cif_get(row, col, "label_alt_id", default="."))
        keys.append("\x1f".join((_cif_get(row, col, "auth_asym_id", "label_asym_id"),
                                 _cif_get(row, col, "auth_seq_id", "label_seq_id"),
                                 _cif_get(row, col, "pdbx_PDB_ins_code"), name)))
    if not xyz:
        raise AtomFileError(f"{source}: the _atom_site loop holds no atoms")
    return _make(xyz, elem, occ, resn, het, keys, alts, source)


def _atom_site_loop(lines: Sequence[str], source: str) -> tuple[list[str], int]:
    """Find the ``_atom_site`` loop: its tags (without the prefix) and its first data line."""
    n = len(lines)
    i = 0
    while i < n:
        if lines[i].strip() == "loop_":
            j = i + 1
            cols = []
            while j < n and lines[j].lstrip().startswith("_"):
                cols.append(lines[j].strip().split()[0])
                j += 1
            if cols and cols[0].startswith("_atom_site."):
                return [c[len("_atom_site."):] for c in cols], j
            i = j
            continue
        i += 1
    raise AtomFileError(f"{source}: no _atom_site loop: not an mmCIF atomic model")


def _cif_rows(lines: Sequence[str], start: int, ntag: int,
              source: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, values)`` per loop row (a row may span lines) until the loop ends."""
    pending: list[str] = []
    pending_line = start + 1
    for lineno in range(start, len(lines)):
        line = lines[lineno]
        s = line.strip()
        if not s or s == "#":
            if pending or s == "#":
                break
            continue
        if s.startswith(("loop_", "data_", "_")):
            break
        if s.startswith(";"):
            raise AtomFileError(f"{source}: line {lineno + 1}: multi-line text field inside "
                                "_atom_site is not supported")
        if not pending:
            pending_line = lineno + 1
        pending.extend(_cif_tokens(line))
        if len(pending) < ntag:
            continue
        if len(pending) > ntag:
            raise AtomFileError(f"{source}: line {pending_line}: {len(pending)} values for "
                                f"{ntag} _atom_site columns")
        row, pending = pending, []
        yield pending_line, row
    if pending:
        raise AtomFileError(f"{source}: line {pending_line}: truncated _atom_site row "
                            f"({len(pending)} of {ntag} values)")


def _cif_get(row: Sequence[str], col: Mapping[str, int], *names: str, default: str = "") -> str:
    """Return the value of the first of ``names`` that the loop has, else ``default``."""
    for nm in names:
        k = col.get(nm)
        if k is not None:
            return row[k]
    return default


def _cif_xyz(row: Sequence[str], col: Mapping[str, int], lineno: int,
             source: str) -> tuple[float, float, float]:
    """Read a row's Cartesian coordinates in Å, naming the line if they are unreadable."""
    try:
        x, y, z = (float(row[col[t]]) for t in _CIF_XYZ)
    except ValueError as exc:
        raise AtomFileError(f"{source}: line {lineno}: unreadable coordinates") from exc
    return x, y, z


def _float_or_default(v: str, default: float) -> float:
    """Return ``float(v)``, or ``default`` where ``v`` is not a number (``?``, ``.``)."""
    try:
        return float(v)
    except ValueError:
        return default
