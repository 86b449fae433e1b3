"""The live explorer: ipywidgets sliders that re-simulate and redraw on every change.

It needs a running kernel.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cryo_companion.book.explorer.frames import ExplorerAxis, RenderFn, frame_png
from cryo_companion.book.plotting import as_numpy

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["live_explorer"]


def live_explorer(render: RenderFn, axes: Sequence[ExplorerAxis], *, fourier: bool = True,
                  width_px: int = 600) -> ipywidgets.VBox:
    """Build the ipywidgets explorer: sliders re-simulate one subtomogram and redraw its frame.

    Needs a running kernel (in the static website use :func:`static_explorer`). Numeric axes
    become continuous sliders over ``live_range`` (``FloatLogSlider`` for a ``log`` axis), the
    categorical axis a drop-down. The picture is an ``ipywidgets.Image`` holding
    :func:`frame_png` of ``render`` at the current values.

    Parameters
    ----------
    render : RenderFn
        ``render(params) -> (1, D, D, D)`` (called with arrays of length 1).
    axes : sequence of ExplorerAxis
        The explorer axes (see :func:`default_axes`).
    fourier : bool, optional
        Show the Fourier row.
    width_px : int, optional
        Displayed width of the frame.

    Returns
    -------
    ipywidgets.VBox
        With attributes ``controls`` (``name -> widget``), ``image`` and ``refresh()``.

    Raises
    ------
    ValueError
        If ``render`` returns anything but one `(1, D, D, D)` volume (also on later redraws).
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
        status.value = _status(axes, controls)

    for c in controls.values():
        c.observe(refresh, names="value")
    box = w.VBox([*controls.values(), image, status])
    box.controls = controls
    box.image = image
    box.refresh = refresh
    refresh()
    return box


def _status(axes: Sequence[ExplorerAxis], controls: Mapping[str, Any]) -> str:
    """Return the HTML line naming every axis's current value."""
    def shown(a: ExplorerAxis) -> str:
        c = controls[a.name]
        return str(c.label) if a.categorical else format(c.value, ".3g")

    return ("<small>" + ", ".join(f"{html.escape(a.label)} = {shown(a)}" for a in axes)
            + "</small>")
