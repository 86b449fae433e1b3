"""Domain randomization: parameter ranges (:class:`Preset`), their sampler, augmentation.

Per-subtomogram parameter distributions, their sampler, the intensity augmentation and batch
standardisation.

A :class:`Preset` gives a range for every parameter of the simplified simulator; a range with
``lo == hi`` is a fixed value. The papers' presets (Che et al. 2019: ``"randomized"`` and
``"baseline"``, and this book's ``"randomized+context"`` and ``"baseline+context"``) live with
their paper, :mod:`cryo_companion.papers.che2019.presets`.

Context (beyond the papers): ``context_fraction`` is the range of the occupancy of the box by
neighbours (fraction of the box volume inside their masks, drawn uniformly per subtomogram;
packed by :mod:`cryo_companion.simulate.context`). ``(0, 0)``, the default, is no context: no
draw, and every other draw exactly as without the field.

Intensity augmentation (our reading of Che et al. 2019, III-B: "additional augmentation [...]
based on its variance and mean"): for each subtomogram with noise-free volume c of mean m and
standard deviation s, ``x' = m + g · (x − m) + o · s`` with a contrast gain g log-uniform on
``intensity_scale`` and an offset o uniform on ``intensity_offset`` (in units of s): the mean
moves by ``o · s`` and the variance is multiplied by ``g²``. The same affine map is applied to the
noisy and the noise-free volume, so ``noisy − clean`` stays the (scaled) noise, the SNR is
unchanged, and (the map depending on the noise-free volume only) the noise-free output does not
depend on the SNR.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "CONTEXT_PARAM_NAMES",
    "MAX_CONTEXT_FRACTION",
    "PARAM_NAMES",
    "Preset",
    "augment_intensity",
    "sample_params",
    "standardize_batch",
]

#: Names (and order) of the per-subtomogram parameters drawn by :func:`sample_params`.
PARAM_NAMES = ("snr", "wedge_deg", "defocus_um", "cs_mm", "bfactor_A2", "intensity_scale",
               "intensity_offset", "shift_x_vox", "shift_y_vox", "shift_z_vox")
#: Drawn by :func:`sample_params` after :data:`PARAM_NAMES`, only for a preset with context.
CONTEXT_PARAM_NAMES = ("context_fraction",)
#: Largest occupancy of a context range (a random packing of the box does not reach further).
MAX_CONTEXT_FRACTION = 0.5


#: The fields of :class:`Preset` that are ``(lo, hi)`` ranges.
_RANGE_FIELDS = ("snr", "wedge_deg", "defocus_um", "cs_mm", "bfactor_A2", "intensity_scale",
                 "intensity_offset", "context_fraction")


def _rng(v: float | tuple[float, float]) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return (float(v), float(v))
    lo, hi = (float(x) for x in v)
    return (lo, hi)


@dataclass(frozen=True, kw_only=True)
class Preset:
    """Ranges of the simulation parameters; ``(lo, hi)`` with ``lo == hi`` means fixed.

    Every field is keyword-only; the four physics ranges (``snr``, ``wedge_deg``,
    ``defocus_um``, ``cs_mm``) are required, the others default to "no randomization" (no
    envelope, no intensity augmentation, no shift, no context).

    Attributes
    ----------
    name : str
        Preset name.
    snr : tuple of float
        SNR range (> 0; ``inf`` allowed when fixed: noise-free).
    wedge_deg : tuple of float
        Missing-wedge angle α range in degrees, within [0, 90).
    defocus_um : tuple of float
        Defocus range in µm (negative = underfocus).
    cs_mm : tuple of float
        Spherical aberration range in mm (>= 0).
    snr_log_uniform : bool
        Draw the SNR uniformly in log(SNR) rather than in SNR.
    bfactor_A2 : tuple of float
        CTF envelope B-factor range in Å² (>= 0).
    intensity_scale : tuple of float
        Contrast gain g range (> 0), log-uniform; ``(1, 1)`` disables it.
    intensity_offset : tuple of float
        Offset o range in units of the sample's standard deviation.
    max_shift_vox : float
        Sub-box shift drawn uniformly in [−max, max] voxels on each axis.
    context_fraction : tuple of float
        Occupancy of the box by neighbours, fraction of the box volume, drawn uniformly, within
        [0, :data:`MAX_CONTEXT_FRACTION`]; ``(0, 0)`` is no context (the simulator then needs
        no context bank).
    amplitude_contrast : float
        Amplitude contrast fraction of the CTF.
    voltage_kv : float
        Accelerating voltage in kV.
    source : str
        Where the values come from.
    extra : dict
        Free-form notes (not compared).
    """

    name: str
    snr: tuple[float, float]
    wedge_deg: tuple[float, float]
    defocus_um: tuple[float, float]
    cs_mm: tuple[float, float]
    snr_log_uniform: bool = True
    bfactor_A2: tuple[float, float] = (0.0, 0.0)
    intensity_scale: tuple[float, float] = (1.0, 1.0)
    intensity_offset: tuple[float, float] = (0.0, 0.0)
    max_shift_vox: float = 0.0
    context_fraction: tuple[float, float] = (0.0, 0.0)
    amplitude_contrast: float = 0.07
    voltage_kv: float = 300.0
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        """Turn scalars into fixed ranges and validate."""
        for f in _RANGE_FIELDS:
            object.__setattr__(self, f, _rng(getattr(self, f)))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid range."""
        for f in _RANGE_FIELDS:
            lo, hi = getattr(self, f)
            if math.isnan(lo) or math.isnan(hi) or lo > hi:
                raise ValueError(f"preset {self.name!r}: {f} range ({lo}, {hi}) needs lo <= hi")
        for broken, message in self._rules():
            if broken:
                raise ValueError(f"preset {self.name!r}: {message}")

    def _rules(self) -> list[tuple[bool, str]]:
        """Return ``(broken, message)`` for each rule beyond ``lo <= hi``, in checking order."""
        (s_lo, s_hi), (c_lo, c_hi) = self.snr, self.context_fraction
        return [
            (s_lo <= 0, f"SNR {s_lo} is not > 0 (use inf for no noise)"),
            (math.isinf(s_hi) and s_lo != s_hi, "an SNR range cannot reach inf; use a fixed "
             "(inf, inf) for noise-free volumes"),
            (not (0 <= self.wedge_deg[0] and self.wedge_deg[1] < 90),
             f"wedge angle range {self.wedge_deg} deg is outside [0, 90)"),
            (self.cs_mm[0] < 0, f"Cs {self.cs_mm[0]} mm is < 0"),
            (self.bfactor_A2[0] < 0, f"B-factor {self.bfactor_A2[0]} Å² is < 0"),
            (self.intensity_scale[0] <= 0, "intensity_scale must be > 0"),
            (not self.max_shift_vox >= 0, "max_shift_vox must be >= 0"),
            (not 0 <= self.amplitude_contrast < 1, "amplitude_contrast must be in [0, 1)"),
            *((any(math.isinf(v) for v in getattr(self, f)), f"{f} must be finite")
              for f in ("defocus_um", "bfactor_A2", "intensity_offset")),
            (not (0 <= c_lo and c_hi <= MAX_CONTEXT_FRACTION),
             f"context_fraction {self.context_fraction} must lie within "
             f"[0, {MAX_CONTEXT_FRACTION}] (fraction of the box volume)"),
        ]

    @property
    def has_context(self) -> bool:
        """Whether the preset asks for neighbours in the box (``context_fraction`` not zero)."""
        return self.context_fraction[1] > 0

    def replace(self, **changes: Any) -> Preset:
        """Return a copy with some fields changed (validated).

        Parameters
        ----------
        **changes
            New values of fields.

        Returns
        -------
        Preset
        """
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dictionary (inf written as the string "inf")."""
        d = dataclasses.asdict(self)
        d["snr"] = [v if math.isfinite(v) else "inf" for v in self.snr]
        return d


def sample_params(preset: Preset, n: int, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> dict[str, Tensor]:
    """Draw per-subtomogram parameters from ``preset``.

    Draw order: one uniform ``(10, n)`` block for :data:`PARAM_NAMES`, then (a preset with
    context and a context range, not a fixed value) one ``(n,)`` block for the occupancy.

    Parameters
    ----------
    preset : Preset
        The parameter ranges.
    n : int
        Number of subtomograms (>= 0).
    generator : torch.Generator or None
        Generator on ``device`` (CUDA: ``torch.Generator(device="cuda")``).
    device : torch.device or str or None
        Device of the result (default: the generator's).

    Returns
    -------
    dict[str, torch.Tensor]
        ``{name: (n,) float32 tensor}`` for every name in :data:`PARAM_NAMES`, and, when
        ``preset.has_context``, in :data:`CONTEXT_PARAM_NAMES`.

    Raises
    ------
    TypeError
        ``preset`` is not a :class:`Preset`.
    ValueError
        ``n`` is not a non-negative integer.
    """
    if not isinstance(preset, Preset):
        raise TypeError(f"preset must be a Preset, got {type(preset).__name__} (the papers' "
                        "named presets: cryo_companion.papers.che2019.presets.get_preset)")
    p = preset
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(len(PARAM_NAMES), n, generator=generator, device=device, dtype=torch.float64)

    def lin(i: int, r: tuple[float, float]) -> Tensor:
        lo, hi = r
        return lo + (hi - lo) * u[i] if hi > lo else torch.full_like(u[i], lo)

    def log(i: int, r: tuple[float, float]) -> Tensor:
        lo, hi = r
        if hi == lo:
            return torch.full_like(u[i], lo)
        return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u[i])

    out = {
        "snr": log(0, p.snr) if p.snr_log_uniform else lin(0, p.snr),
        "wedge_deg": lin(1, p.wedge_deg),
        "defocus_um": lin(2, p.defocus_um),
        "cs_mm": lin(3, p.cs_mm),
        "bfactor_A2": lin(4, p.bfactor_A2),
        "intensity_scale": log(5, p.intensity_scale),
        "intensity_offset": lin(6, p.intensity_offset),
    }
    m = p.max_shift_vox
    for i, ax in enumerate("xyz"):
        out[f"shift_{ax}_vox"] = lin(7 + i, (-m, m))
    if p.has_context:
        lo, hi = p.context_fraction
        out["context_fraction"] = (lo + (hi - lo) * torch.rand(
            n, generator=generator, device=device, dtype=torch.float64)) if hi > lo else \
            torch.full((n,), lo, dtype=torch.float64, device=device)
    return {k: v.to(torch.float32) for k, v in out.items()}


def augment_intensity(x: Tensor, scale: Tensor, offset: Tensor, *, ref: Tensor | None = None,
                      others: tuple[Tensor, ...] = ()) -> tuple[Tensor, ...]:
    """Apply the intensity augmentation ``x' = m + g (x − m) + o s`` per sample (module docstring).

    Parameters
    ----------
    x : torch.Tensor
        ``(B, ...)`` volumes.
    scale : torch.Tensor
        ``(B,)`` gains g (> 0).
    offset : torch.Tensor
        ``(B,)`` offsets o in units of the sample's standard deviation.
    ref : torch.Tensor or None
        Volumes whose per-sample mean m and std s define the map (default ``x``).
    others : tuple of torch.Tensor
        Further ``(B, ...)`` tensors to which the *same* affine map is applied.

    Returns
    -------
    tuple of torch.Tensor
        ``(x', *others')``.
    """
    r = x if ref is None else ref
    flat = r.reshape(r.shape[0], -1)
    m = flat.mean(1)
    s = torch.linalg.vector_norm(flat - m.unsqueeze(1), dim=1) / math.sqrt(flat.shape[1])
    view = (-1,) + (1,) * (x.ndim - 1)
    g = scale.to(x).reshape(view)
    b = (m * (1 - scale.to(x)) + offset.to(x) * s).reshape(view)
    return tuple(t * g + b for t in (x, *others))


def standardize_batch(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Standardise with one global mean and standard deviation over the whole batch.

    Che et al. 2019, IV: "We standardize each batch with a global mean and standard deviation."

    Parameters
    ----------
    x : torch.Tensor
        ``(B, ...)`` batch.
    eps : float
        Added to the standard deviation.

    Returns
    -------
    torch.Tensor
        ``(x − mean) / (std + eps)``, the same shape.
    """
    m = x.mean()
    s = x.std(correction=0)
    return (x - m) / (s + eps)
