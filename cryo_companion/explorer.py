"""The simulation parameter explorer: live ipywidgets in Jupyter, precomputed frames on the website.

One *frame* is a small greyscale PNG of the three central slices (x–y, x–z, y–z; see
:mod:`cryo_companion.plotting`) of one simulated subtomogram, optionally with a second row of
Fourier log-amplitude slices (where the missing wedge and the CTF rings are seen). Frames are
rendered by :func:`frame_png` with no Matplotlib, so the live widget and the static page show the
same picture.

- :func:`live_explorer` builds ipywidgets sliders (SNR on a log scale, wedge angle, defocus,
  Cs, class) that re-simulate and redraw on every change; it needs a running kernel.
- :func:`precompute_frames` renders every combination of a few values per parameter (a
  :class:`FrameGrid`), and :func:`static_explorer_html` turns it into one self-contained HTML
  fragment (PNG frames inline as base64, a few lines of inline JavaScript, no CDN, no network)
  whose own sliders pick the frame. Shown with ``IPython.display.HTML`` it works in the built
  Jupyter Book with no kernel.

What is simulated is given by a *render function* ``render(params) -> volumes`` taking a dict of
equal-length 1-D arrays (``"class"`` integer indices, and one array per numeric parameter) and
returning ``(N, D, D, D)`` volumes; :func:`simulator_render_fn` builds one from the simulator.
"""
from __future__ import annotations

import base64
import html
import itertools
import json
import struct
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .plotting import as_numpy, central_slices, fourier_log_amplitude

__all__ = [
    "ExplorerAxis",
    "FrameGrid",
    "RenderFn",
    "default_axes",
    "encode_png_gray",
    "frame_image",
    "frame_png",
    "live_explorer",
    "precompute_frames",
    "simulator_render_fn",
    "static_explorer",
    "static_explorer_html",
    "static_explorer_page",
]

#: ``render(params) -> volumes (N, D, D, D)``; ``params`` maps a name to a 1-D array of length N.
RenderFn = Callable[[Mapping[str, np.ndarray]], Any]

_GAP = 2  # pixels between panels of a frame
_GAP_VALUE = 255  # white separators


@dataclass(frozen=True)
class ExplorerAxis:
    """One slider (or the class drop-down) of the explorer.

    Parameters
    ----------
    name : key in the render function's ``params`` (``"class"``, ``"snr"``, ``"wedge_deg"``,
        ``"defocus_um"``, ``"cs_mm"``).
    label : human-readable label with the unit, e.g. ``"defocus Dz (µm)"``.
    values : the values of the static grid, in slider order (for ``"class"``: the class indices).
    choices : for a categorical axis, the display names of ``values`` (e.g. class names).
    live_range : ``(min, max)`` of the live slider (defaults to the grid's range).
    log : the live slider is logarithmic (SNR).
    """

    name: str
    label: str
    values: tuple[float, ...]
    choices: tuple[str, ...] | None = None
    live_range: tuple[float, float] | None = None
    log: bool = False

    def __post_init__(self) -> None:
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
        """Display text of the ``i``-th value."""
        if self.choices is not None:
            return self.choices[i]
        return f"{self.values[i]:g}"


def default_axes(class_names: Sequence[str], *, snr: Sequence[float] = (0.03, 0.3, 3.0, 30.0),
                 wedge_deg: Sequence[float] = (0.0, 30.0, 50.0),
                 defocus_um: Sequence[float] = (-12.0, -6.0, -1.0),
                 cs_mm: Sequence[float] = (1.5, 3.0)) -> list[ExplorerAxis]:
    """The explorer's five axes with the ranges of Che et al. 2019, III-B.

    The grid values default to the ends and middle of the paper's ranges (SNR log-uniform on
    [0.03, 10], wedge on [0°, 50°], Dz on [−12, 0] µm, Cs on [1.5, 3.0] mm), plus SNR 30 as a
    nearly clean reference; the live sliders span the paper's ranges (wedge up to 60°, SNR
    0.01–100).

    Parameters
    ----------
    class_names : names of the classes (the drop-down), in label order.
    snr, wedge_deg, defocus_um, cs_mm : grid values of the static explorer.

    Returns
    -------
    list of ExplorerAxis
        In the order class, SNR, wedge, Dz, Cs.
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


# ---------------------------------------------------------------------------------------------
# frames


def encode_png_gray(image: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit greyscale PNG (stdlib only: zlib + struct).

    Parameters
    ----------
    image : np.ndarray of uint8, shape (H, W); row 0 is the top of the picture.

    Returns
    -------
    bytes
        A complete PNG file.
    """
    img = np.ascontiguousarray(image)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {img.dtype} {img.shape}")
    h, w = img.shape
    if h == 0 or w == 0:
        raise ValueError(f"empty image {img.shape}")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    # filter type 0 (none) on every scanline
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def _to_uint8(slices: Sequence[np.ndarray], lo: float, hi: float,
              levels: int) -> list[np.ndarray]:
    # quantised to `levels` grey levels spread over 0..255: noisy frames compress better
    scale = (levels - 1) / (hi - lo) if hi > lo else 0.0
    step = 255.0 / (levels - 1)
    return [(np.clip((s - lo) * scale, 0, levels - 1).round() * step).round().astype(np.uint8)
            for s in slices]


def _row(slices: Sequence[np.ndarray]) -> np.ndarray:
    h = max(s.shape[0] for s in slices)
    parts: list[np.ndarray] = []
    for i, s in enumerate(slices):
        if i:
            parts.append(np.full((h, _GAP), _GAP_VALUE, np.uint8))
        pad = np.full((h, s.shape[1]), _GAP_VALUE, np.uint8)
        pad[h - s.shape[0]:] = s
        parts.append(pad)
    return np.concatenate(parts, axis=1)


def frame_image(volume: Any, *, fourier: bool = False, percentile: float = 1.0,
                floor_decades: float = 5.0, levels: int = 64) -> np.ndarray:
    """The picture of one frame: central x–y | x–z | y–z slices as one uint8 image.

    Each row is scaled to its own robust range (the ``percentile`` .. ``100 - percentile``
    percentiles of its slices), as the paper's standardised batches are shown. Slices are
    flipped vertically so that y (or z) points up, as in :mod:`cryo_companion.plotting`.

    Parameters
    ----------
    volume : array or tensor, shape (Z, Y, X)
    fourier : add a second row with the central slices of ``log10 |F|`` (``floor_decades``
        decades of dynamic range); the k_y = 0 (x–z) panel shows the missing wedge.
    percentile : robust range of the real-space row.
    floor_decades : dynamic range of the Fourier row.
    levels : number of grey levels (2..256); 64 is indistinguishable by eye on noisy slices and
        makes the PNGs about a quarter smaller than 256.

    Returns
    -------
    np.ndarray of uint8, shape (H, W)
        ``H = Z`` (``2 Z + 2`` with ``fourier``) and ``W = X + X + Y + 4``: the x–y, x–z and
        y–z panels side by side with 2-pixel white separators.
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


def frame_png(volume: Any, *, fourier: bool = False, percentile: float = 1.0,
              floor_decades: float = 5.0, levels: int = 64) -> bytes:
    """:func:`frame_image` encoded as a PNG (see there for the parameters)."""
    return encode_png_gray(frame_image(volume, fourier=fourier, percentile=percentile,
                                       floor_decades=floor_decades, levels=levels))


# ---------------------------------------------------------------------------------------------
# the static grid


@dataclass
class FrameGrid:
    """Every combination of the axes' values, rendered as PNG frames.

    Attributes
    ----------
    axes : the explorer axes, in index order.
    frames : PNG bytes of each combination, C order over ``axes`` (the last axis varies fastest).
    fourier : whether frames carry the Fourier row.
    voxel_size_A : voxel size in Å (for the captions).
    box : box size in voxels.
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
        """Flat frame index of the given per-axis value indices (missing axes: 0)."""
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
    combos = list(itertools.product(*(a.values for a in axes)))
    return {a.name: np.array([c[k] for c in combos], dtype=np.float64)
            for k, a in enumerate(axes)}


def precompute_frames(render: RenderFn, axes: Sequence[ExplorerAxis], *, voxel_size_A: float,
                      fourier: bool = True, batch_size: int = 32, progress: bool = True,
                      max_frames: int = 2000) -> FrameGrid:
    """Render every combination of the axes' values.

    Parameters
    ----------
    render : ``render(params) -> (N, D, D, D)`` volumes; ``params`` maps each axis name to a 1-D
        float array of length N (``"class"`` holds integer-valued class indices).
    axes : the explorer axes (see :func:`default_axes`).
    voxel_size_A : voxel size in Å.
    fourier : add the Fourier row to each frame.
    batch_size : combinations per call of ``render``.
    progress : show a tqdm progress bar.
    max_frames : refuse grids larger than this (the page must stay small).

    Returns
    -------
    FrameGrid
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
    from tqdm.auto import tqdm

    with tqdm(total=n, desc="explorer frames", disable=not progress, leave=False) as bar:
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


_CSS = """
#{id} {{font-family: sans-serif; font-size: 13px; max-width: 720px; border: 1px solid #ccc;
  padding: 8px; border-radius: 4px;}}
#{id} .cc-row {{display: flex; align-items: center; margin: 2px 0;}}
#{id} .cc-row label {{width: 150px;}}
#{id} .cc-row input[type=range] {{width: 260px;}}
#{id} .cc-row output {{margin-left: 10px; min-width: 70px;}}
#{id} img.cc-frame {{image-rendering: pixelated; width: {width}px; display: block;
  margin-top: 6px;}}
#{id} .cc-cap {{display: flex; width: {width}px; text-align: center; color: #444;}}
#{id} .cc-cap span {{flex: 1;}}
"""

# The page's logic: slider positions -> C-order frame index -> <img src>. Written for old
# browsers too (no modules, no arrow functions); reads only its own data, fetches nothing.
_JS = """
(function () {
  var root = document.getElementById(%(id)s);
  var frames = %(frames)s;
  var shape = %(shape)s;
  var names = %(names)s;
  var labels = %(labels)s;
  var img = root.querySelector("img.cc-frame");
  var inputs = names.map(function (n) {
    return root.querySelector("[data-axis='" + n + "']");
  });
  function update() {
    var idx = 0;
    for (var k = 0; k < shape.length; k++) {
      var i = parseInt(inputs[k].value, 10);
      idx = idx * shape[k] + i;
      var out = root.querySelector("output[data-axis='" + names[k] + "']");
      if (out) { out.textContent = labels[k][i]; }
    }
    img.src = "data:image/png;base64," + frames[idx];
    img.setAttribute("data-frame", String(idx));
  }
  inputs.forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  });
  update();
})();
"""


def static_explorer_html(grid: FrameGrid, *, title: str | None = None,
                         element_id: str | None = None, width_px: int = 600,
                         initial: Mapping[str, int] | None = None) -> str:
    """A self-contained HTML fragment: the frames inline, the page's own sliders pick one.

    No external resource is referenced (no CDN, no fonts, no network): the PNGs are embedded as
    base64 and the script is inline. Every range input has ``data-axis=NAME``; the shown
    ``<img class="cc-frame">`` carries ``data-frame`` = the C-order index of the shown frame
    (:meth:`FrameGrid.index`), which is what the browser test reads.

    Parameters
    ----------
    grid : the precomputed frames.
    title : heading shown above the sliders.
    element_id : id of the root ``<div>`` (a fresh unique id by default, so several explorers
        can share a page).
    width_px : displayed width of the frame (pixels are scaled up without smoothing).
    initial : ``axis name -> value index`` shown first (default 0 for the class, the middle
        value otherwise).

    Returns
    -------
    str
        HTML (a ``<div>`` with a ``<style>`` and a ``<script>``).
    """
    if len(grid.frames) != int(np.prod(grid.shape)):
        raise ValueError(f"grid has {len(grid.frames)} frames for shape {grid.shape}")
    eid = element_id or f"cc-explorer-{uuid.uuid4().hex[:10]}"
    if not eid.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"element_id must be alphanumeric with - or _, got {eid!r}")
    initial = dict(initial or {})
    parts = [f'<div id="{eid}" class="cc-explorer">',
             "<style>" + _CSS.format(id=eid, width=int(width_px)) + "</style>"]
    if title:
        parts.append(f"<div><b>{html.escape(title)}</b></div>")
    for a in grid.axes:
        n = len(a.values)
        start = initial.get(a.name, 0 if a.categorical else n // 2)
        if not 0 <= start < n:
            raise IndexError(f"initial index {start} of axis {a.name!r} outside [0, {n})")
        label = html.escape(a.label)
        if a.categorical:
            opts = "".join(
                f'<option value="{i}"{" selected" if i == start else ""}>'
                f"{html.escape(a.display(i))}</option>" for i in range(n))
            ctl = f'<select data-axis="{a.name}" aria-label="{label}">{opts}</select>'
        else:
            ctl = (f'<input type="range" data-axis="{a.name}" min="0" max="{n - 1}" step="1" '
                   f'value="{start}" aria-label="{label}"'
                   f'{" disabled" if n == 1 else ""}>'
                   f'<output data-axis="{a.name}">{html.escape(a.display(start))}</output>')
        parts.append(f'<div class="cc-row"><label>{label}</label>{ctl}</div>')
    parts.append('<img class="cc-frame" alt="central slices of the simulated subtomogram" '
                 'data-frame="-1">')
    fov_nm = grid.box * grid.voxel_size_A / 10.0
    caps = "".join(f"<span>{t}</span>" for t in ("x–y (view along the beam z)",
                                                 "x–z (wedge plane)", "y–z (tilt axis y)"))
    parts.append(f'<div class="cc-cap">{caps}</div>')
    note = (f"Top row: central slices in real space, box {grid.box}³ voxels = "
            f"{fov_nm:.1f} nm across, each row scaled to its own range.")
    if grid.fourier:
        note += (" Bottom row: log<sub>10</sub>|F| of the same planes through the origin of "
                 "Fourier space (k<sub>x</sub>–k<sub>y</sub>, k<sub>x</sub>–k<sub>z</sub>, "
                 "k<sub>y</sub>–k<sub>z</sub>; Nyquist at the edges): the missing wedge is the "
                 "dark double cone of the middle panel, the k<sub>x</sub> = 0 plane (right) lies "
                 "in the wedge except for its k<sub>z</sub> = 0 line once α > 0, and CTF zeros "
                 "are the dark rings.")
    parts.append(f'<div style="color:#444;max-width:{int(width_px)}px">{note} Precomputed '
                 f"frames ({len(grid.frames)}); no kernel needed.</div>")
    frames = [base64.b64encode(f).decode("ascii") for f in grid.frames]
    js = _JS % {
        "id": json.dumps(eid),
        "frames": json.dumps(frames),
        "shape": json.dumps(list(grid.shape)),
        "names": json.dumps([a.name for a in grid.axes]),
        "labels": json.dumps([[a.display(i) for i in range(len(a.values))]
                              for a in grid.axes]),
    }
    parts.append("<script>" + js.replace("</", "<\\/") + "</script></div>")
    return "\n".join(parts)


def static_explorer_page(grid: FrameGrid, *, title: str = "Simulation explorer",
                         **kwargs: Any) -> str:
    """A complete stand-alone HTML document holding :func:`static_explorer_html`.

    Parameters
    ----------
    grid : the precomputed frames.
    title : the document title and heading.
    **kwargs : passed on to :func:`static_explorer_html`.

    Returns
    -------
    str
        ``<!DOCTYPE html>`` document that works opened from disk with no network.
    """
    body = static_explorer_html(grid, title=title, **kwargs)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n")


def static_explorer(grid: FrameGrid, **kwargs: Any) -> Any:
    """:func:`static_explorer_html` wrapped in ``IPython.display.HTML`` (renders in the book)."""
    from IPython.display import HTML

    return HTML(static_explorer_html(grid, **kwargs))


# ---------------------------------------------------------------------------------------------
# the live widget


def live_explorer(render: RenderFn, axes: Sequence[ExplorerAxis], *, fourier: bool = True,
                  width_px: int = 600) -> Any:
    """ipywidgets explorer: sliders re-simulate one subtomogram and redraw its frame.

    Needs a running kernel (in the static website use :func:`static_explorer`). Numeric axes
    become continuous sliders over ``live_range`` (``FloatLogSlider`` for a ``log`` axis), the
    categorical axis a drop-down. The picture is an ``ipywidgets.Image`` holding
    :func:`frame_png` of ``render`` at the current values.

    Parameters
    ----------
    render : ``render(params) -> (1, D, D, D)`` (called with arrays of length 1).
    axes : the explorer axes (see :func:`default_axes`).
    fourier : show the Fourier row.
    width_px : displayed width of the frame.

    Returns
    -------
    ipywidgets.VBox
        With attributes ``controls`` (``name -> widget``), ``image`` and ``refresh()``.
    """
    import ipywidgets as w

    controls: dict[str, Any] = {}
    for a in axes:
        style = {"description_width": "140px"}
        layout = w.Layout(width="460px")
        if a.categorical:
            assert a.choices is not None
            ctl = w.Dropdown(options=[(c, int(v)) for c, v in zip(a.choices, a.values)],
                             value=int(a.values[0]), description=a.label, style=style,
                             layout=layout)
        else:
            lo, hi = a.live_range or (min(a.values), max(a.values))
            mid = a.values[len(a.values) // 2]
            if a.log:
                ctl = w.FloatLogSlider(value=mid, base=10, min=np.log10(lo), max=np.log10(hi),
                                       step=0.05, description=a.label, readout_format=".3g",
                                       continuous_update=False, style=style, layout=layout)
            else:
                ctl = w.FloatSlider(value=mid, min=lo, max=hi, step=(hi - lo) / 100,
                                    description=a.label, readout_format=".3g",
                                    continuous_update=False, style=style, layout=layout)
        controls[a.name] = ctl
    image = w.Image(format="png", layout=w.Layout(width=f"{int(width_px)}px"))
    status = w.HTML()

    def refresh(*_: Any) -> None:
        params = {k: np.array([float(c.value)]) for k, c in controls.items()}
        vols = as_numpy(render(params))
        if vols.ndim != 4 or vols.shape[0] != 1:
            raise ValueError(f"render returned shape {vols.shape}; expected (1, D, D, D)")
        image.value = frame_png(vols[0], fourier=fourier)
        status.value = ("<small>" + ", ".join(
            f"{html.escape(a.label)} = {controls[a.name].label if a.categorical else format(controls[a.name].value, '.3g')}"
            for a in axes) + "</small>")

    for c in controls.values():
        c.observe(refresh, names="value")
    box = w.VBox([*controls.values(), image, status])
    box.controls = controls  # type: ignore[attr-defined]
    box.image = image  # type: ignore[attr-defined]
    box.refresh = refresh  # type: ignore[attr-defined]
    refresh()
    return box


def simulator_render_fn(simulator: Any, *, class_to_template: Mapping[int, int] | None = None,
                        seed: int = 0, rotation: Any = None,
                        fixed_params: Mapping[str, float] | None = None,
                        output: str = "noisy") -> RenderFn:
    """A render function for the explorer backed by the subtomogram simulator.

    Every frame uses the same pose (``rotation``, no shift) and the same noise realisation
    (a generator seeded with ``seed`` for each frame), so moving a slider changes only what
    that parameter changes.

    Parameters
    ----------
    simulator : a :class:`cryo_companion.simulate.subtomogram.Simulator`.
    class_to_template : class label -> template index (default: the first template of each
        label).
    seed : seed of the noise.
    rotation : ``(3, 3)`` rotation matrix applied to every template (default: identity, the
        template's own orientation).
    fixed_params : further simulator parameters held fixed (e.g. ``{"bfactor_A2": 2000}``).
    output : ``"noisy"`` or ``"clean"``.

    Returns
    -------
    RenderFn
        ``render(params)`` with ``params["class"]`` class labels and ``"snr"``, ``"wedge_deg"``,
        ``"defocus_um"``, ``"cs_mm"`` arrays; returns ``(N, D, D, D)`` float32 NumPy volumes.
    """
    import torch

    if output not in ("noisy", "clean"):
        raise ValueError(f"output must be 'noisy' or 'clean', got {output!r}")
    labels = simulator.labels.detach().cpu().numpy()
    if class_to_template is None:
        class_to_template = {}
        for i, lab in enumerate(labels):
            class_to_template.setdefault(int(lab), i)
    mapping = dict(class_to_template)
    dev = simulator.device
    R = (torch.eye(3) if rotation is None else torch.as_tensor(rotation, dtype=torch.float32))
    if R.shape != (3, 3):
        raise ValueError(f"rotation must be a (3, 3) matrix, got {tuple(R.shape)}")
    R = R.to(dev).reshape(1, 3, 3)
    fixed = dict(fixed_params or {})

    def render(params: Mapping[str, np.ndarray]) -> np.ndarray:
        classes = np.asarray(params["class"]).astype(int)
        missing = sorted(set(classes.tolist()) - set(mapping))
        if missing:
            raise ValueError(f"no template for class(es) {missing}; classes: {sorted(mapping)}")
        out = []
        for i, c in enumerate(classes):
            p = {k: float(params[k][i]) for k in ("snr", "wedge_deg", "defocus_um", "cs_mm")}
            p.update(fixed)
            gen = torch.Generator(device=dev).manual_seed(seed)
            with torch.no_grad():
                b = simulator.simulate(torch.tensor([mapping[int(c)]]), R, p, gen)
            out.append(getattr(b, output)[0].detach().cpu().numpy())
        return np.stack(out)

    return render
