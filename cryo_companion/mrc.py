"""Reading and writing MRC volumes with validation (axis order z, y, x; voxel size in Å).

Corrupt headers, wrong dimensionality and non-finite values are reported with the file name
before any work starts; writes are atomic.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from cryo_companion._io import atomic_path

__all__ = ["MrcVolume", "read_mrc", "write_mrc", "MrcError"]


class MrcError(ValueError):
    """A file that is not a readable MRC volume of the expected kind."""


@dataclass(frozen=True)
class MrcVolume:
    """A volume read from an MRC file.

    Attributes
    ----------
    data : np.ndarray
        float32 array, shape (z, y, x) (or (n, z, y, x) for a stack written by this package).
    voxel_size_A : float
        Voxel edge in Å (from the header; 1.0 where the header says 0).
    path : Path
    """

    data: np.ndarray
    voxel_size_A: float
    path: Path


def read_mrc(path: str | os.PathLike, *, ndim: int | tuple[int, ...] = 3,
             allow_nonfinite: bool = False) -> MrcVolume:
    """Read an MRC (optionally ``.gz``) file into float32, checking header, shape and values.

    Parameters
    ----------
    path : file path; ``.gz`` files are decompressed in memory.
    ndim : accepted numbers of dimensions (3 for a volume; (3, 4) to accept stacks).
    allow_nonfinite : accept NaN/inf values (default: refuse them).
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


def write_mrc(path: str | os.PathLike, data: np.ndarray, voxel_size_A: float) -> Path:
    """Write ``data`` (z, y, x) or a stack (n, z, y, x) as float32 MRC, atomically.

    A 4-D array is written as a volume stack (``ispg`` 401), the convention of mrcfile.
    """
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim not in (3, 4):
        raise MrcError(f"write_mrc: expected 3-D or 4-D data, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MrcError("write_mrc: data contains NaN/inf values")
    if not voxel_size_A > 0:
        raise MrcError(f"write_mrc: voxel size {voxel_size_A} Å must be > 0")
    with atomic_path(path, suffix=".mrc") as tmp:
        with mrcfile.new(tmp, overwrite=True) as m:
            m.set_data(arr)  # 4-D data becomes a volume stack (ispg 401) in mrcfile
            m.voxel_size = float(voxel_size_A)
    return Path(path)
