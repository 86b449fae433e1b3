"""The static explorer: every frame inline as base64 PNG, sliders in inline JavaScript.

No CDN, no network, no kernel: it works in the built book.
"""
from __future__ import annotations

import base64
import html
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from cryo_companion.book.explorer.frames import FrameGrid

if TYPE_CHECKING:
    from IPython.display import HTML

__all__ = ["static_explorer", "static_explorer_html", "static_explorer_page"]


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
    """Write a self-contained HTML fragment: the frames inline, the page's own sliders pick one.

    No external resource is referenced (no CDN, no fonts, no network): the PNGs are embedded as
    base64 and the script is inline. Every range input has ``data-axis=NAME``; the shown
    ``<img class="cc-frame">`` carries ``data-frame`` = the C-order index of the shown frame
    (:meth:`FrameGrid.index`), which is what the browser test reads.

    Parameters
    ----------
    grid : FrameGrid
        The precomputed frames.
    title : str or None, optional
        Heading shown above the sliders.
    element_id : str or None, optional
        Id of the root ``<div>`` (a fresh unique id by default, so several explorers can share
        a page).
    width_px : int, optional
        Displayed width of the frame (pixels are scaled up without smoothing).
    initial : mapping of str to int, or None, optional
        ``axis name -> value index`` shown first (default 0 for the class, the middle value
        otherwise).

    Returns
    -------
    str
        HTML (a ``<div>`` with a ``<style>`` and a ``<script>``).

    Raises
    ------
    ValueError
        If the grid's frames do not match its shape, or ``element_id`` is not alphanumeric
        (with ``-`` or ``_``).
    IndexError
        If an ``initial`` index lies outside its axis.
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
    """Write a complete stand-alone HTML document holding :func:`static_explorer_html`.

    Parameters
    ----------
    grid : FrameGrid
        The precomputed frames.
    title : str, optional
        The document title and heading.
    **kwargs : Any
        Passed on to :func:`static_explorer_html`.

    Returns
    -------
    str
        ``<!DOCTYPE html>`` document that works opened from disk with no network.

    Raises
    ------
    ValueError, IndexError
        As :func:`static_explorer_html`.
    """
    body = static_explorer_html(grid, title=title, **kwargs)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n")


def static_explorer(grid: FrameGrid, **kwargs: Any) -> HTML:
    """Wrap :func:`static_explorer_html` in ``IPython.display.HTML`` (it renders in the book).

    Parameters
    ----------
    grid : FrameGrid
        The precomputed frames.
    **kwargs : Any
        Passed on to :func:`static_explorer_html`.

    Returns
    -------
    IPython.display.HTML
        The explorer, displayed by a notebook cell.

    Raises
    ------
    ValueError, IndexError
        As :func:`static_explorer_html`.
    """
    from IPython.display import HTML

    return HTML(static_explorer_html(grid, **kwargs))
