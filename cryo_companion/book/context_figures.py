"""Figures of context randomization: the same targets alone and with neighbours in the box.

:func:`context_examples` simulates a few targets twice with the same pose, optics and noise,
once alone and once with the neighbours packed by the simulator's context bank (explicit
parameters, :meth:`cryo_companion.simulate.subtomogram.Simulator.simulate`);
:func:`plot_context_examples` shows their central slices: noise-free alone, noise-free with
context (the target's mask outlined in one colour, the neighbours' masks in another) and noisy
with context, as a network sees it.
Conventions of :mod:`cryo_companion.book.plotting` (slices through the box centre, axes in nm).
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from cryo_companion.book.plotting import SLICE_PLANES
from cryo_companion.rotation import random_rotation_matrices
from cryo_companion.simulate.randomization import Preset, sample_params
from cryo_companion.simulate.subtomogram import Simulator

__all__ = ["ContextExamples", "context_examples", "plot_context_examples"]

#: Colours of the outlines: the target's mask, the neighbours' masks.
TARGET_COLOUR, CONTEXT_COLOUR = "#e4572e", "#29c7ac"


@dataclass
class ContextExamples:
    """Targets simulated alone and with context (same pose, optics and noise).

    Attributes
    ----------
    alone : torch.Tensor
        ``(n, D, D, D)`` noise-free target alone.
    clean : torch.Tensor
        ``(n, D, D, D)`` noise-free, with the neighbours.
    noisy : torch.Tensor
        ``(n, D, D, D)`` noisy, with the neighbours.
    mask : torch.Tensor
        ``(n, D, D, D)`` bool mask of the target (the same alone and with context).
    context_mask : torch.Tensor
        ``(n, D, D, D)`` bool masks of the neighbours.
    labels : list of str
        Class name (or label) of each target.
    params : dict[str, torch.Tensor]
        The parameters with context (occupancy drawn and measured, neighbours, optics).
    voxel_size_A : float
        Voxel size in Å.
    """

    alone: Tensor
    clean: Tensor
    noisy: Tensor
    mask: Tensor
    context_mask: Tensor
    labels: list[str]
    params: dict[str, Tensor]
    voxel_size_A: float


def context_examples(simulator: Simulator, preset: Preset, *, seed: int = 0,
                     template_index: Tensor | None = None) -> ContextExamples:
    """Simulate targets alone and with context, everything else equal.

    Parameters
    ----------
    simulator : Simulator
        A simulator with a context bank.
    preset : Preset
        A preset with a context range (e.g. ``get_preset("randomized+context")``); the
        parameters of each example are drawn from it.
    seed : int
        Seed of the draws (same seed, same figure).
    template_index : torch.Tensor or None
        ``(n,)`` templates to show (default: the first template of each class).

    Returns
    -------
    ContextExamples

    Raises
    ------
    ValueError
        If ``preset`` has no context range or the simulator no context bank.
    """
    if not preset.has_context or simulator.context is None:
        raise ValueError("context examples need a preset with a context range (context_fraction)"
                         " and a simulator with a context bank")
    dev = simulator.device
    if template_index is None:
        labels = simulator.labels.cpu()
        template_index = torch.stack([(labels == c).nonzero()[0, 0] for c in labels.unique()])
    idx = torch.as_tensor(template_index, device=dev).long().reshape(-1)
    g = torch.Generator(device=dev).manual_seed(seed)
    params = sample_params(preset, idx.numel(), g, dev)
    R = random_rotation_matrices(idx.numel(), g, device=dev)
    ac, kv = preset.amplitude_contrast, preset.voltage_kv
    noise_seed = int(torch.randint(2**62, (1,), generator=g, device=dev))
    alone_params = {k: v for k, v in params.items() if k != "context_fraction"}
    alone = simulator.simulate(idx, R, alone_params,
                               torch.Generator(device=dev).manual_seed(noise_seed),
                               amplitude_contrast=ac, voltage_kv=kv)
    ctx = simulator.simulate(idx, R, params, torch.Generator(device=dev).manual_seed(noise_seed),
                             amplitude_contrast=ac, voltage_kv=kv)
    assert alone.clean is not None and ctx.clean is not None and ctx.context_mask is not None
    names = simulator.class_names
    lab = simulator.labels[idx].tolist()
    return ContextExamples(alone=alone.clean, clean=ctx.clean, noisy=ctx.noisy, mask=ctx.mask,
                           context_mask=ctx.context_mask,
                           labels=[names[k] if names else str(k) for k in lab],
                           params=ctx.params, voxel_size_A=simulator.voxel_size_A)


def _slice(volume: Tensor, plane: str) -> np.ndarray:
    """Return the central slice ``plane`` of a ``(D, D, D)`` volume (rows: the vertical axis)."""
    fixed = SLICE_PLANES[plane][0]
    v = volume.detach().float().cpu().numpy()
    return np.take(v, v.shape[fixed] // 2, axis=fixed)


def plot_context_examples(examples: ContextExamples, *, plane: str = "xy",
                          percentile: float = 0.5) -> Figure:
    """Plot each example's central slice: alone, with context (outlined), noisy with context.

    Parameters
    ----------
    examples : ContextExamples
        From :func:`context_examples`.
    plane : str
        ``"xy"``, ``"xz"`` or ``"yz"`` (:data:`cryo_companion.book.plotting.SLICE_PLANES`).
    percentile : float
        Each row's colour range spans these percentiles of its slices.

    Returns
    -------
    matplotlib.figure.Figure
        One row per example, three columns; row titles give the class, the occupancy drawn and
        measured and the number of neighbours.

    Raises
    ------
    ValueError
        ``plane`` is not one of :data:`~cryo_companion.book.plotting.SLICE_PLANES`.
    """
    if plane not in SLICE_PLANES:
        raise ValueError(f"plane {plane!r}; valid: {', '.join(SLICE_PLANES)}")
    n = len(examples.labels)
    _, h, v = SLICE_PLANES[plane]
    D = examples.clean.shape[-1]
    half = D * examples.voxel_size_A / 20.0  # nm
    ext = (-half, half, -half, half)
    fig, axes = plt.subplots(n, 3, figsize=(9.0, 3.0 * n), squeeze=False,
                             layout="constrained")
    heads = ("alone, noise-free", "with context, noise-free", "with context, noisy")
    p = examples.params
    for i in range(n):
        imgs = [_slice(t[i], plane) for t in (examples.alone, examples.clean, examples.noisy)]
        for j, img in enumerate(imgs):
            lo, hi = np.percentile(img, [percentile, 100 - percentile])
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", origin="lower", extent=ext, vmin=lo, vmax=hi,
                      interpolation="nearest")
            ax.set_xlabel(f"{h} (nm)")
            ax.set_ylabel(f"{v} (nm)")
            if j == 1:
                c = (np.arange(D) - (D - 1) / 2) * examples.voxel_size_A / 10.0  # pixel centres
                yy, xx = np.meshgrid(c, c, indexing="ij")
                for m, colour in ((examples.mask, TARGET_COLOUR),
                                  (examples.context_mask, CONTEXT_COLOUR)):
                    sl = _slice(m[i], plane)
                    if 0 < sl.sum() < sl.size:
                        ax.contour(xx, yy, sl, levels=[0.5], colors=colour, linewidths=1.0)
            ax.set_title(heads[j] if i == 0 else "", fontsize=9)
        info = (f"{examples.labels[i]}: occupancy {float(p['context_fraction_measured'][i]):.0%}"
                f" (drawn {float(p['context_fraction'][i]):.0%}), "
                f"{int(p['context_count'][i])} neighbours")
        axes[i, 1].set_title(f"{heads[1]}\n{info}" if i == 0 else info, fontsize=9)
    return fig
