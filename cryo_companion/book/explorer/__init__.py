"""The simulation parameter explorer: live ipywidgets in Jupyter, precomputed frames on the website.

One *frame* is a small greyscale PNG of the three central slices (x–y, x–z, y–z; see
:mod:`cryo_companion.book.plotting`) of one simulated subtomogram, optionally with a second row of
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
from cryo_companion.book.explorer.adapter import simulator_render_fn
from cryo_companion.book.explorer.frames import (
    ExplorerAxis,
    FrameGrid,
    RenderFn,
    default_axes,
    frame_image,
    frame_png,
    precompute_frames,
)
from cryo_companion.book.explorer.live import live_explorer
from cryo_companion.book.explorer.png import encode_png_gray
from cryo_companion.book.explorer.static import (
    static_explorer,
    static_explorer_html,
    static_explorer_page,
)

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
