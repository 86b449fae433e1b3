"""The simulator as an explorer render function."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from cryo_companion.book.explorer.frames import RenderFn

if TYPE_CHECKING:
    import torch

__all__ = ["SimulatedBatch", "SubtomogramSimulator", "simulator_render_fn"]


class SimulatedBatch(Protocol):
    """What the explorer reads of a simulated batch (a ``SimBatch``)."""

    @property
    def noisy(self) -> torch.Tensor:
        """`(n, D, D, D)` noisy subtomograms."""

    @property
    def clean(self) -> torch.Tensor | None:
        """`(n, D, D, D)` noise-free subtomograms, or None."""


class SubtomogramSimulator(Protocol):
    """What the explorer needs of a simulator (a ``cryo_companion.simulate`` ``Simulator``)."""

    @property
    def labels(self) -> torch.Tensor:
        """`(K,)` class label of each template."""

    @property
    def device(self) -> torch.device:
        """Where the simulator computes."""

    def simulate(self, template_index: torch.Tensor, rotations: torch.Tensor,
                 params: Mapping[str, object],
                 generator: torch.Generator | None = None) -> SimulatedBatch:
        """Simulate one subtomogram per template index with the given parameters."""


def simulator_render_fn(simulator: SubtomogramSimulator, *,
                        class_to_template: Mapping[int, int] | None = None,
                        seed: int = 0, rotation: npt.ArrayLike | torch.Tensor | None = None,
                        fixed_params: Mapping[str, float] | None = None,
                        output: str = "noisy") -> RenderFn:
    """Make a render function for the explorer backed by the subtomogram simulator.

    Every frame uses the same pose (``rotation``, no shift) and the same noise realisation
    (a generator seeded with ``seed`` for each frame), so moving a slider changes only what
    that parameter changes.

    Parameters
    ----------
    simulator : SubtomogramSimulator
        A :class:`cryo_companion.simulate.subtomogram.Simulator` (or anything with its
        ``labels``, ``device`` and ``simulate``).
    class_to_template : mapping of int to int, or None, optional
        Class label -> template index (default: the first template of each label).
    seed : int, optional
        Seed of the noise.
    rotation : array-like, torch.Tensor or None, optional
        ``(3, 3)`` rotation matrix applied to every template (default: identity, the
        template's own orientation).
    fixed_params : mapping of str to float, or None, optional
        Further simulator parameters held fixed (e.g. ``{"bfactor_A2": 2000}``).
    output : str, optional
        ``"noisy"`` or ``"clean"``.

    Returns
    -------
    RenderFn
        ``render(params)`` with ``params["class"]`` class labels and ``"snr"``, ``"wedge_deg"``,
        ``"defocus_um"``, ``"cs_mm"`` arrays; returns ``(N, D, D, D)`` float32 NumPy volumes
        (``ValueError`` for a class without a template).

    Raises
    ------
    ValueError
        For an ``output`` other than ``"noisy"`` or ``"clean"``, or a rotation that is not
        ``(3, 3)``.
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
            vol = b.noisy if output == "noisy" else b.clean
            if vol is None:
                raise ValueError("the simulator returned no clean volumes")
            out.append(vol[0].detach().cpu().numpy())
        return np.stack(out)

    return render
