"""Reading and writing MRC volumes with validation (axis order z, y, x; voxel size in Å).

Corrupt headers, wrong dimensionality and non-finite values are reported with the file name
before any work starts; writes are atomic. Masks and label maps are written in integer modes,
tilt series as image stacks (``ispg`` 0).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from cryo_companion._io import atomic_path

__all__ = ["MrcError", "MrcVolume", "label_dtype", "read_mrc", "write_mrc"]


class MrcError(ValueError):
    """A file that is not a readable MRC volume of the expected kind."""


@dataclass(frozen=True)
class MrcVolume:
    """A volume read from an MRC file.

    Attributes
    ----------
    data : np.ndarray
        float32 array, shape `(z, y, x)` (a volume or an image stack) or `(n, z, y, x)` (a
        volume stack written by this package).
    voxel_size_A : float
        Voxel edge in Å (from the header; 1.0 where the header says 0).
    path : Path
        The file read.
    """

    data: np.ndarray
    voxel_size_A: float
    path: Path


def read_mrc(path: str | os.PathLike, *, ndim: int | tuple[int, ...] = 3,
             allow_nonfinite: bool = False) -> MrcVolume:
    """Read an MRC (optionally ``.gz``) file into float32, checking header, shape and values.

    Parameters
    ----------
    path : str or os.PathLike
        The file; ``.gz`` files are decompressed in memory. Every mode that mrcfile reads is
        accepted: float (2, 12) and integer (0, 1, 6) data are converted to float32 exactly
        (label maps written by :func:`write_mrc` come back with the same values).
    ndim : int or tuple of int
        Accepted numbers of dimensions (3 for a volume or an image stack; (3, 4) to accept
        volume stacks too).
    allow_nonfinite : bool
        Accept NaN/inf values (default: refuse them).

    Returns
    -------
    MrcVolume
        The data (z, y, x) or (n, z, y, x), float32, and the voxel size in Å.

    Raises
    ------
    MrcError
        Missing, empty or invalid file, wrong dimensionality, or non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise MrcError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MrcError(f"{path}: file is empty, expected an MRC volume")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # mrcfile decompresses .gz itself
            with mrcfile.open(path, permissive=False) as m:
                data, vs = np.asarray(m.data, dtype=np.float32).copy(), float(m.voxel_size.x)
    except (ValueError, OSError, EOFError, AttributeError) as exc:
        raise MrcError(f"{path}: not a valid MRC file ({exc})") from exc
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if data.ndim not in ndims:
        raise MrcError(f"{path}: has {data.ndim} dimensions {data.shape}, expected {ndims}")
    if not allow_nonfinite and not np.isfinite(data).all():
        raise MrcError(f"{path}: contains {int((~np.isfinite(data)).sum())} NaN/inf values")
    return MrcVolume(data=data, voxel_size_A=vs if vs > 0 else 1.0, path=path)


#: Largest integer that float32 holds exactly (labels beyond the integer modes).
_FLOAT32_EXACT = 2 ** 24


def label_dtype(data: np.ndarray) -> np.dtype:
    """Return the smallest MRC data type that holds the integer labels of ``data`` exactly.

    MRC2014 has three integer modes: 0 (8-bit), 1 (16-bit signed) and 6 (16-bit unsigned). Mode
    0 is signed in the standard but read as unsigned by IMOD, so it is used only for labels in
    0..127, where both readings agree. There is no 32-bit integer mode: labels beyond 65,535
    are stored as float32, which is exact up to 2**24.

    Parameters
    ----------
    data : np.ndarray
        Boolean or integer labels (masks, class masks, occupancy maps).

    Returns
    -------
    np.dtype
        ``int8`` (mode 0), ``int16`` (mode 1), ``uint16`` (mode 6) or ``float32`` (mode 2).

    Raises
    ------
    MrcError
        Labels that are not integers, or beyond what float32 holds exactly.
    """
    arr = np.asarray(data)
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)):
        raise MrcError(f"label data must be boolean or integer, got {arr.dtype}")
    if arr.size == 0 or arr.dtype == bool:
        return np.dtype(np.int8)
    lo, hi = int(arr.min()), int(arr.max())
    if 0 <= lo and hi <= 127:
        return np.dtype(np.int8)
    if -(2 ** 15) <= lo and hi < 2 ** 15:
        return np.dtype(np.int16)
    if 0 <= lo and hi < 2 ** 16:
        return np.dtype(np.uint16)
    if max(abs(lo), abs(hi)) <= _FLOAT32_EXACT:
        return np.dtype(np.float32)
    raise MrcError(f"labels {lo}..{hi} do not fit an MRC mode exactly (at most +-2**24)")


def write_mrc(path: str | os.PathLike, data: np.ndarray, voxel_size_A: float, *,
              image_stack: bool = False) -> Path:
    """Write a volume, a volume stack or an image stack as MRC, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (written through :func:`cryo_companion._io.atomic_path`).
    data : np.ndarray
        `(z, y, x)` volume, `(n, z, y, x)` volume stack (``ispg`` 401, the convention of
        mrcfile) or, with ``image_stack``, `(n, y, x)` images. Floating-point data are written
        as float32 (mode 2); boolean and integer data (masks, label maps) in the smallest
        integer mode that holds them (:func:`label_dtype`).
    voxel_size_A : float
        Voxel (pixel) edge in Å, stored in the header.
    image_stack : bool
        Write 3-D data as a stack of 2-D images (``ispg`` 0, ``nz`` = number of images), the
        layout of tilt series.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MrcError
        Wrong dimensionality, NaN/inf values or a voxel size that is not > 0.
    """
    raw = np.asarray(data)
    is_label = raw.dtype == bool or np.issubdtype(raw.dtype, np.integer)
    arr = raw.astype(label_dtype(raw)) if is_label else raw.astype(np.float32)
    if arr.ndim not in (3, 4) or (image_stack and arr.ndim != 3):
        want = "3-D (n, y, x) images" if image_stack else "3-D or 4-D data"
        raise MrcError(f"write_mrc: expected {want}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MrcError("write_mrc: data contains NaN/inf values")
    if not voxel_size_A > 0:
        raise MrcError(f"write_mrc: voxel size {voxel_size_A} Å must be > 0")
    with atomic_path(path, suffix=".mrc") as tmp, mrcfile.new(tmp, overwrite=True) as m:
        m.set_data(arr)  # 4-D data becomes a volume stack (ispg 401) in mrcfile
        if image_stack:
            m.set_image_stack()
        m.voxel_size = float(voxel_size_A)
    return Path(path)
