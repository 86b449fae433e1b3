"""Sets of labelled subtomograms: the in-memory form, and reading/writing a folder of MRC files.

A folder holds one MRC volume per subtomogram and a ``labels.csv`` table with the columns
``file,class`` and optionally ``mask`` (an MRC file with the segmentation ground truth of the
subtomogram's target; non-zero voxels are the target). ``class`` is the class *name*. This is
the format of the held-out test domain (:mod:`cryo_companion.papers.che2019.test_domain`) and
the format in which a reader brings their own real subtomograms: the book's evaluation runs on
either.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryo_companion._io import output_folder, repo_root, write_text
from cryo_companion.mrc import MrcError, read_mrc, write_mrc

__all__ = ["CONTRASTS", "LABELS_FILE", "SubtomogramSet", "default_data_dir",
           "load_subtomograms", "previous_subtomograms", "recorded_contrast", "save_subtomograms"]

LABELS_FILE = "labels.csv"
META_FILE = "meta.json"


@dataclass
class SubtomogramSet:
    """Labelled subtomograms.

    Attributes
    ----------
    volumes : np.ndarray
        `(N, D, D, D)` float32, axes z-y-x of each volume.
    labels : np.ndarray
        `(N,)` int64, index into ``class_names``.
    masks : np.ndarray or None
        `(N, D, D, D)` bool: voxels of each subtomogram's *target* (not its neighbours), or None
        when no segmentation ground truth is available.
    class_names : list of str
        Name of class k at position k.
    voxel_size_A : float
        Voxel edge in Å.
    meta : dict
        Free-form provenance (JSON-serialisable): generator hash, SNR, source folder...

    Raises
    ------
    ValueError
        On construction, for volumes that are not `(N, D, D, D)` cubes, labels of another
        length or outside ``[0, len(class_names))``, masks of another shape, or a voxel size
        that is not > 0.
    """

    volumes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    class_names: list[str]
    voxel_size_A: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Convert and check the arrays (shapes, labels, voxel size)."""
        self.volumes = np.asarray(self.volumes, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.volumes.ndim != 4 or len(set(self.volumes.shape[1:])) != 1:
            raise ValueError(f"volumes must have shape (N, D, D, D), got {self.volumes.shape}")
        if self.labels.shape != (self.volumes.shape[0],):
            raise ValueError(f"labels must have shape ({self.volumes.shape[0]},), "
                             f"got {self.labels.shape}")
        n_classes = len(self.class_names)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes}) (classes {self.class_names}), "
                             f"got {sorted(set(self.labels.tolist()))}")
        if self.masks is not None:
            self.masks = np.asarray(self.masks).astype(bool)
            if self.masks.shape != self.volumes.shape:
                raise ValueError(f"masks shape {self.masks.shape} != volumes shape "
                                 f"{self.volumes.shape}")
        if not self.voxel_size_A > 0:
            raise ValueError(f"voxel_size_A must be > 0, got {self.voxel_size_A}")
        self.class_names = list(self.class_names)

    def __len__(self) -> int:
        """Return the number of subtomograms."""
        return int(self.volumes.shape[0])

    @property
    def counts(self) -> dict[str, int]:
        """Number of subtomograms per class name."""
        return {n: int((self.labels == k).sum()) for k, n in enumerate(self.class_names)}

    def subset(self, index: Sequence[int] | np.ndarray) -> SubtomogramSet:
        """Return the subtomograms at ``index`` (same classes, voxel size and meta).

        Parameters
        ----------
        index : sequence of int or np.ndarray
            Positions (or a boolean mask of length N) of the subtomograms to keep.

        Returns
        -------
        SubtomogramSet
            A new set holding copies of the selected volumes, labels and masks.
        """
        idx = np.asarray(index)
        return SubtomogramSet(self.volumes[idx], self.labels[idx],
                              None if self.masks is None else self.masks[idx],
                              list(self.class_names), self.voxel_size_A, dict(self.meta))


def previous_subtomograms(folder: str | os.PathLike) -> set[str] | None:
    """Return the entries of a subtomogram set written by :func:`save_subtomograms`.

    Parameters
    ----------
    folder : str or os.PathLike
        An existing folder.

    Returns
    -------
    set of str or None
        ``labels.csv``, ``meta.json`` and the files that ``labels.csv`` names, or None when the
        folder holds no such set (no ``meta.json`` with class names, or no readable table).
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / META_FILE).read_text())
        with open(folder / LABELS_FILE, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or "class_names" not in meta:
        return None
    names = {LABELS_FILE, META_FILE}
    for r in rows:
        for col in ("file", "mask"):
            v = (r.get(col) or "").strip()
            if v and "/" not in v and v not in (".", ".."):
                names.add(v)
    return names


def save_subtomograms(folder: str | os.PathLike, data: SubtomogramSet, *,
                      overwrite: bool = True) -> Path:
    """Write a subtomogram set to ``folder``.

    Parameters
    ----------
    folder : str or os.PathLike
        The output folder: new, empty, or holding an earlier set written by this function.
        A folder that holds anything else is refused (nothing in it is touched).
    data : SubtomogramSet
        The set. Each subtomogram becomes ``NNNNN_CLASS.mrc`` (float32) and, with masks,
        ``NNNNN_CLASS_mask.mrc`` (0/1 in MRC mode 0); ``labels.csv`` lists them
        (``file,class[,mask]``) and ``meta.json`` holds the class order, voxel size and meta.
    overwrite : bool
        Replace an earlier set in ``folder`` (default; its files that the new set does not
        reuse are removed). False refuses any non-empty folder.

    Returns
    -------
    Path
        ``folder``.

    Notes
    -----
    The files are staged and moved into ``folder`` only when all of them are written
    (:func:`cryo_companion._io.output_folder`), so a failure leaves the folder as it was.
    """
    folder = Path(folder)
    with output_folder(folder, force=overwrite, previous=previous_subtomograms) as tmp:
        rows = []
        for i in range(len(data)):
            name = data.class_names[int(data.labels[i])]
            stem = f"{i:05d}_{_safe(name)}"
            write_mrc(tmp / f"{stem}.mrc", data.volumes[i], data.voxel_size_A)
            row = {"file": f"{stem}.mrc", "class": name}
            if data.masks is not None:
                write_mrc(tmp / f"{stem}_mask.mrc", data.masks[i].astype(np.uint8),
                          data.voxel_size_A)
                row["mask"] = f"{stem}_mask.mrc"
            rows.append(row)
        buf = io.StringIO()
        cols = ["file", "class"] + (["mask"] if data.masks is not None else [])
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_text(tmp / LABELS_FILE, buf.getvalue())
        write_text(tmp / META_FILE, json.dumps(
            {"class_names": data.class_names, "voxel_size_A": data.voxel_size_A,
             "meta": data.meta}, indent=2, allow_nan=False, default=_jsonable) + "\n")
    return folder


def load_subtomograms(folder: str | os.PathLike,
                      class_names: Sequence[str] | None = None) -> SubtomogramSet:
    """Read a folder of subtomogram MRC files described by ``labels.csv``.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder holding ``labels.csv`` (columns ``file,class[,mask]``, paths relative to the
        folder) and the MRC files it names. All volumes must be cubes of one size.
    class_names : sequence of str or None
        Class order (label k = ``class_names[k]``). Default: the order stored in ``meta.json``
        when the folder was written by :func:`save_subtomograms`, else the class names in order
        of first appearance in ``labels.csv``. A class in the table that is not in
        ``class_names`` is an error.

    Returns
    -------
    SubtomogramSet
        ``masks`` is None unless every row names a mask file.

    Raises
    ------
    FileNotFoundError
        If ``folder`` or its ``labels.csv`` is missing.
    ValueError
        If the table lacks the ``file`` or ``class`` column, has no rows or names an unknown
        class, or the subtomograms differ in size.
    MrcError
        If a named file is not a valid MRC volume, a volume is not a cube, or a mask's shape
        differs from its volume's.
    """
    folder = Path(folder)
    table = folder / LABELS_FILE
    cols, rows = _read_labels(folder)
    meta: dict[str, Any] = {}
    stored_vs = None
    if class_names is None and (folder / META_FILE).is_file():
        stored = json.loads((folder / META_FILE).read_text())
        class_names, meta, stored_vs = stored["class_names"], stored.get("meta", {}), \
            stored.get("voxel_size_A")
    if class_names is None:
        class_names = list(dict.fromkeys(r["class"] for r in rows))
    class_names = list(class_names)
    unknown = sorted({r["class"] for r in rows} - set(class_names))
    if unknown:
        raise ValueError(f"{table}: unknown class name(s) {unknown}; known: {class_names}")
    has_mask = "mask" in cols and all(r.get("mask") for r in rows)
    vols, masks, sizes = _read_volumes(folder, rows, has_mask)
    labels = [class_names.index(r["class"]) for r in rows]
    shapes = {v.shape for v in vols}
    if len(shapes) != 1:
        raise ValueError(f"{folder}: subtomograms of different sizes {sorted(shapes)}")
    vs = float(stored_vs) if stored_vs else float(min(sizes))
    meta = {**meta, "source": str(folder)}
    return SubtomogramSet(np.stack(vols), np.asarray(labels), np.stack(masks) if has_mask else None,
                          class_names, vs, meta)


def _read_labels(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Read ``labels.csv`` of ``folder``: its column names and its rows (stripped strings)."""
    table = folder / LABELS_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if not table.is_file():
        raise FileNotFoundError(f"{folder}: no {LABELS_FILE} (expected columns file,class[,mask])")
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    if "file" not in cols or "class" not in cols:
        raise ValueError(f"{table}: columns {cols}; expected file,class[,mask]")
    if not rows:
        raise ValueError(f"{table}: no rows")
    return cols, rows


def _read_volumes(folder: Path, rows: Sequence[dict[str, str]], has_mask: bool,
                  ) -> tuple[list[np.ndarray], list[np.ndarray], set[float]]:
    """Read the volumes (cubes) and masks the rows name, and the voxel sizes seen (4 decimals)."""
    vols: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    sizes: set[float] = set()
    for r in rows:
        v = read_mrc(folder / r["file"])
        if len(set(v.data.shape)) != 1:
            raise MrcError(f"{v.path}: shape {v.data.shape} is not a cube")
        vols.append(v.data)
        sizes.add(round(v.voxel_size_A, 4))
        if has_mask:
            m = read_mrc(folder / r["mask"]).data
            if m.shape != v.data.shape:
                raise MrcError(f"{folder / r['mask']}: shape {m.shape} != volume {v.data.shape}")
            masks.append(m != 0)
    return vols, masks, sizes


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def default_data_dir() -> Path:
    """Return where generated data are cached.

    Returns
    -------
    Path
        ``$CRYO_COMPANION_DATA``, or ``data/`` at the repository root (ignored by git), whatever
        the working directory.
    """
    return Path(os.environ.get("CRYO_COMPANION_DATA", repo_root() / "data"))


#: How mass appears in a volume: ``dark`` (the physical sign of a raw reconstruction) or
#: ``bright`` (inverted, the training simulator's convention).
CONTRASTS = ("dark", "bright")


def recorded_contrast(path: str | os.PathLike) -> tuple[str | None, Path | None]:
    """Return the contrast recorded beside an MRC file, if any.

    Looked up, in order: ``NAME.json`` next to ``NAME.mrc`` (what ``cryo-companion simulate``
    writes), then ``meta.json`` in the same folder (``save_subtomograms``, ``cryo-companion
    tomogram``). The value is the top-level ``"contrast"`` key, or ``"meta" -> "contrast"``.

    Parameters
    ----------
    path : str or os.PathLike
        The MRC file.

    Returns
    -------
    tuple (str or None, Path or None)
        ``("dark" | "bright", the JSON file)``, or ``(None, None)`` when nothing is recorded.

    Raises
    ------
    ValueError
        A JSON file beside the input that is unreadable or records an unknown contrast.
    """
    path = Path(path)
    stem = path.name.removesuffix(".gz")
    candidates = [path.with_name(Path(stem).stem + ".json"), path.with_name(META_FILE)]
    for side in candidates:
        if not side.is_file():
            continue
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{side}: unreadable JSON beside {path.name} ({exc})") from None
        if not isinstance(meta, dict):
            continue
        value = meta.get("contrast")
        if value is None and isinstance(meta.get("meta"), dict):
            value = meta["meta"].get("contrast")
        if value is None:
            continue
        if value not in CONTRASTS:
            raise ValueError(f"{side}: contrast {value!r} is not one of {', '.join(CONTRASTS)}")
        return str(value), side
    return None, None
