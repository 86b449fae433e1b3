"""Explorer frames: the axes a reader moves, one frame per parameter combination, the grid.

The grid of all frames is rendered without Matplotlib, so the live widget and the static page
agree.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryo_companion.book.explorer.png import encode_png_gray
from cryo_companion.book.plotting import (
    ArrayOrTensor,
    as_numpy,
    central_slices,
    fourier_log_amplitude,
)

__all__ = ["ExplorerAxis", "FrameGrid", "RenderFn", "default_axes", "frame_image", "frame_png",
           "precompute_frames"]


#: ``render(params) -> volumes (N, D, D, D)``; ``params`` maps a name to a 1-D array of length N.
RenderFn = Callable[[Mapping[str, np.ndarray]], ArrayOrTensor]


_GAP = 2  # pixels between panels of a frame


_GAP_VALUE = 255  # white separators


@dataclass(frozen=True)
class ExplorerAxis:
    """One slider (or the class drop-down) of the explorer.

    Parameters
    ----------
    name : str
        Key in the render function's ``params`` (``"class"``, ``"snr"``, ``"wedge_deg"``,
        ``"defocus_um"``, ``"cs_mm"``).
    label : str
        Human-readable label with the unit, e.g. ``"defocus Dz (µm)"``.
    values : tuple of float
        The values of the static grid, in slider order (for ``"class"``: the class indices).
    choices : tuple of str or None, optional
        For a categorical axis, the display names of ``values`` (e.g. class names).
    live_range : tuple of float or None, optional
        ``(min, max)`` of the live slider (defaults to the grid's range).
    log : bool, optional
        The live slider is logarithmic (SNR).

    Raises
    ------
    ValueError
        On construction, for an axis without values, choices of another length, or a
        logarithmic axis with a value <= 0.
    """

    name: str
    label: str
    values: tuple[float, ...]
    choices: tuple[str, ...] | None = None
    live_range: tuple[float, float] | None = None
    log: bool = False

    def __post_init__(self) -> None:
        """Check the values, the choices and the log scale."""
        if len(self.values) == 0:
            raise ValueError(f"axis {self.name!r} has no values")
        if self.choices is not None and len(self.choices) != len(self.values):
            raise ValueError(f"axis {self.name!r}: {len(self.choices)} choices for "
                             f"{len(self.values)} values")
        if self.log and any(not (v > 0) for v in self.values):
            raise ValueError(f"axis {self.name!r} is logarithmic: values must be > 0")

    @property
    def categorical(self) -> bool:
        """True for a drop-down (the class), False for a numeric slider."""
        return self.choices is not None

    def display(self, i: int) -> str:
        """Return the display text of the ``i``-th value.

        Parameters
        ----------
        i : int
            Index into ``values``.

        Returns
        -------
        str
            The choice's name for a categorical axis, else the value (``:g``).
        """
        if self.choices is not None:
            return self.choices[i]
        return f"{self.values[i]:g}"


def default_axes(class_names: Sequence[str], *, snr: Sequence[float] = (0.03, 0.3, 3.0, 30.0),
                 wedge_deg: Sequence[float] = (0.0, 30.0, 50.0),
                 defocus_um: Sequence[float] = (-12.0, -6.0, -1.0),
                 cs_mm: Sequence[float] = (1.5, 3.0)) -> list[ExplorerAxis]:
    """Make the explorer's five axes with the ranges of Che et al. 2019, III-B.

    The grid values default to the ends and middle of the paper's ranges (SNR log-uniform on
    [0.03, 10], wedge on [0°, 50°], Dz on [−12, 0] µm, Cs on [1.5, 3.0] mm), plus SNR 30 as a
    nearly clean reference; the live sliders span the paper's ranges (wedge up to 60°, SNR
    0.01–100).

    Parameters
    ----------
    class_names : sequence of str
        Names of the classes (the drop-down), in label order.
    snr, wedge_deg, defocus_um, cs_mm : sequence of float, optional
        Grid values of the static explorer.

    Returns
    -------
    list of ExplorerAxis
        In the order class, SNR, wedge, Dz, Cs.

    Raises
    ------
    ValueError
        If ``class_names`` or a value list is empty, or an SNR is <= 0.
    """
    if not class_names:
        raise ValueError("class_names is empty")
    return [
        ExplorerAxis("class", "class", tuple(float(i) for i in range(len(class_names))),
                     choices=tuple(class_names)),
        ExplorerAxis("snr", "SNR", tuple(snr), live_range=(0.01, 100.0), log=True),
        ExplorerAxis("wedge_deg", "missing wedge α (°)", tuple(wedge_deg),
                     live_range=(0.0, 60.0)),
        ExplorerAxis("defocus_um", "defocus Dz (µm)", tuple(defocus_um),
                     live_range=(-12.0, 0.0)),
        ExplorerAxis("cs_mm", "Cs (mm)", tuple(cs_mm), live_range=(0.0, 4.0)),
    ]


def _to_uint8(slices: Sequence[np.ndarray], lo: float, hi: float,
              levels: int) -> list[np.ndarray]:
    """Map slices to uint8 over [lo, hi] with ``levels`` grey levels."""
    # quantised to `levels` grey levels spread over 0..255: noisy frames compress better
    scale = (levels - 1) / (hi - lo) if hi > lo else 0.0
    step = 255.0 / (levels - 1)
    return [(np.clip((s - lo) * scale, 0, levels - 1).round() * step).round().astype(np.uint8)
            for s in slices]


def _row(slices: Sequence[np.ndarray]) -> np.ndarray:
    """Put uint8 slices side by side, bottom-aligned, with white separators."""
    h = max(s.shape[0] for s in slices)
    parts: list[np.ndarray] = []
    for i, s in enumerate(slices):
        if i:
            parts.append(np.full((h, _GAP), _GAP_VALUE, np.uint8))
        pad = np.full((h, s.shape[1]), _GAP_VALUE, np.uint8)
        pad[h - s.shape[0]:] = s
        parts.append(pad)
    return np.concatenate(parts, axis=1)


def frame_image(volume: ArrayOrTensor, *, fourier: bool = False, percentile: float = 1.0,
                floor_decades: float = 5.0, levels: int = 64) -> np.ndarray:
    """Draw one frame: central x–y | x–z | y–z slices as one uint8 image.

    Each row is scaled to its own robust range (the ``percentile`` .. ``100 - percentile``
    percentiles of its slices), as the paper's standardised batches are shown. Slices are
    flipped vertically so that y (or z) points up, as in :mod:`cryo_companion.book.plotting`.

    Parameters
    ----------
    volume : array-like or torch.Tensor
        `(Z, Y, X)` volume.
    fourier : bool, optional
        Add a second row with the central slices of ``log10 |F|`` (``floor_decades`` decades of
        dynamic range); the k_y = 0 (x–z) panel shows the missing wedge.
    percentile : float, optional
        Robust range of the real-space row.
    floor_decades : float, optional
        Dynamic range of the Fourier row.
    levels : int, optional
        Number of grey levels (2..256); 64 is indistinguishable by eye on noisy slices and makes
        the PNGs about a quarter smaller than 256.

    Returns
    -------
    np.ndarray
        `(H, W)` uint8: ``H = Z`` (``2 Z + 2`` with ``fourier``) and ``W = X + X + Y + 4``, the
        x–y, x–z and y–z panels side by side with 2-pixel white separators.

    Raises
    ------
    ValueError
        If ``levels`` is outside [2, 256], or the volume is not 3-D or not finite.
    """
    if not 2 <= levels <= 256:
        raise ValueError(f"levels must be in [2, 256], got {levels}")
    vol = as_numpy(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a 3-D volume (z, y, x), got shape {vol.shape}")
    if not np.all(np.isfinite(vol)):
        raise ValueError("volume contains NaN or infinite values")
    sl = [s[::-1] for s in central_slices(vol).values()]
    lo, hi = np.percentile(np.concatenate([s.ravel() for s in sl]),
                           [percentile, 100.0 - percentile])
    rows = [_row(_to_uint8(sl, float(lo), float(hi), levels))]
    if fourier:
        fsl = [s[::-1] for s in central_slices(fourier_log_amplitude(vol)).values()]
        fmax = max(float(s.max()) for s in fsl)
        rows.append(np.full((_GAP, rows[0].shape[1]), _GAP_VALUE, np.uint8))
        rows.append(_row(_to_uint8(fsl, fmax - floor_decades, fmax, levels)))
    return np.concatenate(rows, axis=0)


def frame_png(volume: ArrayOrTensor, *, fourier: bool = False, percentile: float = 1.0,
              floor_decades: float = 5.0, levels: int = 64) -> bytes:
    """Encode :func:`frame_image` as a PNG.

    Parameters
    ----------
    volume : array-like or torch.Tensor
        `(Z, Y, X)` volume.
    fourier : bool
        Add the Fourier row.
    percentile : float
        Robust range of the real-space row.
    floor_decades : float
        Dynamic range of the Fourier row.
    levels : int
        Number of grey levels (2..256).

    Returns
    -------
    bytes
        A complete 8-bit greyscale PNG file.

    Raises
    ------
    ValueError
        As :func:`frame_image`.
    """
    return encode_png_gray(frame_image(volume, fourier=fourier, percentile=percentile,
                                       floor_decades=floor_decades, levels=levels))


@dataclass
class FrameGrid:
    """Every combination of the axes' values, rendered as PNG frames.

    Attributes
    ----------
    axes : list of ExplorerAxis
        The explorer axes, in index order.
    frames : list of bytes
        PNG bytes of each combination, C order over ``axes`` (the last axis varies fastest).
    fourier : bool
        Whether frames carry the Fourier row.
    voxel_size_A : float
        Voxel size in Å (for the captions).
    box : int
        Box size in voxels.
    meta : dict
        Free-form notes on how the frames were made.
    """

    axes: list[ExplorerAxis]
    frames: list[bytes]
    fourier: bool
    voxel_size_A: float
    box: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of values per axis."""
        return tuple(len(a.values) for a in self.axes)

    def index(self, **positions: int) -> int:
        """Return the flat frame index of per-axis value indices.

        Parameters
        ----------
        **positions : int
            ``axis name -> value index`` (a missing axis: 0).

        Returns
        -------
        int
            Index into ``frames`` (C order).

        Raises
        ------
        KeyError
            For an unknown axis name.
        IndexError
            For a value index outside its axis.
        """
        unknown = set(positions) - {a.name for a in self.axes}
        if unknown:
            raise KeyError(f"unknown axes {sorted(unknown)}; axes: {[a.name for a in self.axes]}")
        idx = [positions.get(a.name, 0) for a in self.axes]
        for a, i in zip(self.axes, idx):
            if not 0 <= i < len(a.values):
                raise IndexError(f"axis {a.name!r}: index {i} outside [0, {len(a.values)})")
        return int(np.ravel_multi_index(idx, self.shape))

    @property
    def nbytes(self) -> int:
        """Total size of the PNG frames in bytes (before base64)."""
        return sum(len(f) for f in self.frames)


def _grid_params(axes: Sequence[ExplorerAxis]) -> dict[str, np.ndarray]:
    """Return every combination of the axes' values as ``name -> (N,)`` arrays, C order."""
    combos = list(itertools.product(*(a.values for a in axes)))
    return {a.name: np.array([c[k] for c in combos], dtype=np.float64)
            for k, a in enumerate(axes)}


def precompute_frames(render: RenderFn, axes: Sequence[ExplorerAxis], *, voxel_size_A: float,
                      fourier: bool = True, batch_size: int = 32, progress: bool = True,
                      max_frames: int = 2000) -> FrameGrid:
    """Render every combination of the axes' values.

    Parameters
    ----------
    render : RenderFn
        ``render(params) -> (N, D, D, D)`` volumes; ``params`` maps each axis name to a 1-D
        float array of length N (``"class"`` holds integer-valued class indices).
    axes : sequence of ExplorerAxis
        The explorer axes (see :func:`default_axes`).
    voxel_size_A : float
        Voxel size in Å.
    fourier : bool, optional
        Add the Fourier row to each frame.
    batch_size : int, optional
        Combinations per call of ``render``.
    progress : bool, optional
        Show a progress bar (on a terminal only).
    max_frames : int, optional
        Refuse grids larger than this (the page must stay small).

    Returns
    -------
    FrameGrid
        One PNG frame per combination, C order over ``axes``.

    Raises
    ------
    ValueError
        For duplicate axis names, ``batch_size`` < 1, a grid larger than ``max_frames``, or
        ``render`` returning volumes of the wrong shape.
    """
    axes = list(axes)
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate axis names: {names}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = int(np.prod([len(a.values) for a in axes]))
    if n > max_frames:
        raise ValueError(f"the grid has {n} frames, more than max_frames={max_frames}; "
                         "use fewer values per axis")
    params = _grid_params(axes)
    frames: list[bytes] = []
    box = -1
    from cryo_companion._progress import progress as progress_bar

    with progress_bar(total=n, desc="explorer frames", show=progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            chunk = {k: v[start:start + batch_size] for k, v in params.items()}
            vols = as_numpy(render(chunk))
            m = len(next(iter(chunk.values())))
            if vols.ndim != 4 or vols.shape[0] != m:
                raise ValueError(f"render returned shape {vols.shape} for {m} parameter sets; "
                                 "expected (N, D, D, D)")
            box = vols.shape[-1]
            frames.extend(frame_png(v, fourier=fourier) for v in vols)
            bar.update(m)
    return FrameGrid(axes=axes, frames=frames, fourier=fourier, voxel_size_A=voxel_size_A,
                     box=box)
