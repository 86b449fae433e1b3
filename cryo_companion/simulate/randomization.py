"""Domain randomization: per-subtomogram parameter distributions (:class:`Preset`), their sampler,
the intensity augmentation and batch standardisation.

A :class:`Preset` gives a range for every parameter of the simplified simulator; a range with
``lo == hi`` is a fixed value. The papers' presets (Che et al. 2019: ``"randomized"`` and
``"baseline"``) live with their paper, :mod:`cryo_companion.papers.che2019.presets`.

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
    "PARAM_NAMES",
    "Preset",
    "augment_intensity",
    "sample_params",
    "standardize_batch",
]

#: Names (and order) of the per-subtomogram parameters drawn by :func:`sample_params`.
PARAM_NAMES = ("snr", "wedge_deg", "defocus_um", "cs_mm", "bfactor_A2", "intensity_scale",
               "intensity_offset", "shift_x_vox", "shift_y_vox", "shift_z_vox")


def _rng(v) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return (float(v), float(v))
    lo, hi = (float(x) for x in v)
    return (lo, hi)


@dataclass(frozen=True, kw_only=True)
class Preset:
    """Ranges of the simulation parameters; ``(lo, hi)`` with ``lo == hi`` means fixed.

    Every field is keyword-only; the four physics ranges (``snr``, ``wedge_deg``,
    ``defocus_um``, ``cs_mm``) are required, the others default to "no randomization" (no
    envelope, no intensity augmentation, no shift).

    Attributes
    ----------
    name : preset name.
    snr : SNR range (> 0; ``inf`` allowed when fixed: noise-free).
    snr_log_uniform : draw the SNR uniformly in log(SNR) rather than in SNR.
    wedge_deg : missing-wedge angle α range in degrees, within [0, 90).
    defocus_um : defocus range in µm (negative = underfocus).
    cs_mm : spherical aberration range in mm (>= 0).
    bfactor_A2 : CTF envelope B-factor range in Å² (>= 0).
    intensity_scale : contrast gain g range (> 0), log-uniform; ``(1, 1)`` disables it.
    intensity_offset : offset o range in units of the sample's standard deviation.
    max_shift_vox : sub-box shift drawn uniformly in [−max, max] voxels on each axis.
    amplitude_contrast : amplitude contrast fraction of the CTF.
    voltage_kv : accelerating voltage in kV.
    source : where the values come from.
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
    amplitude_contrast: float = 0.07
    voltage_kv: float = 300.0
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for f in ("snr", "wedge_deg", "defocus_um", "cs_mm", "bfactor_A2", "intensity_scale",
                  "intensity_offset"):
            object.__setattr__(self, f, _rng(getattr(self, f)))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid range."""
        for f in ("snr", "wedge_deg", "defocus_um", "cs_mm", "bfactor_A2", "intensity_scale",
                  "intensity_offset"):
            lo, hi = getattr(self, f)
            if math.isnan(lo) or math.isnan(hi) or lo > hi:
                raise ValueError(f"preset {self.name!r}: {f} range ({lo}, {hi}) needs lo <= hi")
        lo, hi = self.snr
        if lo <= 0:
            raise ValueError(f"preset {self.name!r}: SNR {lo} is not > 0 (use inf for no noise)")
        if math.isinf(hi) and lo != hi:
            raise ValueError(f"preset {self.name!r}: an SNR range cannot reach inf; "
                             "use a fixed (inf, inf) for noise-free volumes")
        if not (0 <= self.wedge_deg[0] and self.wedge_deg[1] < 90):
            raise ValueError(f"preset {self.name!r}: wedge angle range {self.wedge_deg} deg "
                             "is outside [0, 90)")
        if self.cs_mm[0] < 0:
            raise ValueError(f"preset {self.name!r}: Cs {self.cs_mm[0]} mm is < 0")
        if self.bfactor_A2[0] < 0:
            raise ValueError(f"preset {self.name!r}: B-factor {self.bfactor_A2[0]} Å² is < 0")
        if self.intensity_scale[0] <= 0:
            raise ValueError(f"preset {self.name!r}: intensity_scale must be > 0")
        if not self.max_shift_vox >= 0:
            raise ValueError(f"preset {self.name!r}: max_shift_vox must be >= 0")
        if not 0 <= self.amplitude_contrast < 1:
            raise ValueError(f"preset {self.name!r}: amplitude_contrast must be in [0, 1)")
        for f in ("defocus_um", "bfactor_A2", "intensity_offset"):
            if any(math.isinf(v) for v in getattr(self, f)):
                raise ValueError(f"preset {self.name!r}: {f} must be finite")

    def replace(self, **changes: Any) -> Preset:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary (inf written as the string "inf")."""
        d = dataclasses.asdict(self)
        d["snr"] = [v if math.isfinite(v) else "inf" for v in self.snr]
        return d


def sample_params(preset: Preset, n: int, generator: torch.Generator | None = None,
                  device=None) -> dict[str, Tensor]:
    """Draw per-subtomogram parameters from ``preset``.

    Parameters
    ----------
    preset : the parameter ranges.
    n : number of subtomograms (>= 0).
    generator : torch generator on ``device`` (CUDA: ``torch.Generator(device="cuda")``).
    device : device of the result (default: the generator's).

    Returns
    -------
    ``{name: (n,) float32 tensor}`` for every name in :data:`PARAM_NAMES`.
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
    return {k: v.to(torch.float32) for k, v in out.items()}


def augment_intensity(x: Tensor, scale: Tensor, offset: Tensor, *, ref: Tensor | None = None,
                      others: tuple[Tensor, ...] = ()) -> tuple[Tensor, ...]:
    """Intensity augmentation: ``x' = m + g (x − m) + o s`` per sample (see module docstring).

    Parameters
    ----------
    x : ``(B, ...)`` volumes.
    scale : ``(B,)`` gains g (> 0).
    offset : ``(B,)`` offsets o in units of the sample's standard deviation.
    ref : volumes whose per-sample mean m and std s define the map (default ``x``).
    others : further ``(B, ...)`` tensors to which the *same* affine map is applied.

    Returns
    -------
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
    """
    m = x.mean()
    s = x.std(correction=0)
    return (x - m) / (s + eps)
