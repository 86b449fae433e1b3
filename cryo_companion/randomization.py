"""Domain randomization (Che et al. 2019, III-B and IV): parameter distributions and presets.

Two named presets:

* ``"randomized"`` — every subtomogram draws its own parameters (Che et al. 2019, III-B): SNR
  log-uniform on [0.03, 10], missing-wedge angle uniform on [0°, 50°] (tilt ranges ±90° to ±40°),
  defocus Dz uniform on [−12, 0] µm (negative = underfocus), Cs uniform on [1.5, 3.0] mm, plus
  the intensity augmentation.
* ``"baseline"`` — fixed parameters (Che et al. 2019, IV: SNR 0.1, wedge 30°, Dz −6 µm, Cs 2.7 mm)
  with only the intensity augmentation (and the pose) random. If ``results/test_domain.json``
  holds ``data.baseline_preset`` (values measured on this book's test domain) those values are
  used instead; :attr:`Preset.source` says which.

Intensity augmentation (our reading of III-B: "additional augmentation [...] based on its
variance and mean"): for each subtomogram with noise-free volume c of mean m and standard
deviation s, ``x' = m + g · (x − m) + o · s`` with a contrast gain g log-uniform on
``intensity_scale`` and an offset o uniform on ``intensity_offset`` (in units of s): the mean
moves by ``o · s`` and the variance is multiplied by ``g²``. The same affine map is applied to the
noisy and the noise-free volume, so ``noisy − clean`` stays the (scaled) noise, the SNR is
unchanged, and (the map depending on the noise-free volume only) the noise-free output does not
depend on the SNR.

Parameters not given by the paper are our choices, stated as such: the CTF envelope
(``bfactor_A2``), the sub-box shift range (``max_shift_vox``), the augmentation ranges and the
amplitude contrast 0.07.
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
    "PRESETS",
    "Preset",
    "augment_intensity",
    "get_preset",
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


@dataclass(frozen=True)
class Preset:
    """Ranges of the simulation parameters; ``(lo, hi)`` with ``lo == hi`` means fixed.

    Attributes
    ----------
    name : preset name.
    snr : SNR range (> 0; ``inf`` allowed when fixed: noise-free).
    snr_log_uniform : draw the SNR uniformly in log(SNR) (Che et al. III-B) rather than in SNR.
    wedge_deg : missing-wedge angle α range in degrees, within [0, 90).
    defocus_um : defocus range in µm (negative = underfocus).
    cs_mm : spherical aberration range in mm (>= 0).
    bfactor_A2 : CTF envelope B-factor range in Å² (>= 0); our choice (not in the paper).
    intensity_scale : contrast gain g range (> 0), log-uniform; ``(1, 1)`` disables it.
    intensity_offset : offset o range in units of the sample's standard deviation.
    max_shift_vox : sub-box shift drawn uniformly in [−max, max] voxels on each axis.
    amplitude_contrast : amplitude contrast fraction of the CTF.
    voltage_kv : accelerating voltage (Che et al.: 300 kV).
    source : where the values come from.
    """

    name: str
    snr: tuple[float, float] = (0.03, 10.0)
    snr_log_uniform: bool = True
    wedge_deg: tuple[float, float] = (0.0, 50.0)
    defocus_um: tuple[float, float] = (-12.0, 0.0)
    cs_mm: tuple[float, float] = (1.5, 3.0)
    bfactor_A2: tuple[float, float] = (2000.0, 2000.0)
    intensity_scale: tuple[float, float] = (0.8, 1.25)
    intensity_offset: tuple[float, float] = (-0.2, 0.2)
    max_shift_vox: float = 2.0
    amplitude_contrast: float = 0.07
    voltage_kv: float = 300.0
    source: str = "Che et al. 2019, III-B"
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


def _randomized() -> Preset:
    # Che et al. 2019, III-B
    return Preset(name="randomized")


def _baseline() -> Preset:
    # Che et al. 2019, IV: "Missing wedge tilt angles, Dz and Cs are 30°, −6 µm and 2.7 mm
    # respectively. Baseline SNR is set to be 0.1 by measuring the testing data."
    values = {"snr": 0.1, "wedge_deg": 30.0, "defocus_um": -6.0, "cs_mm": 2.7}
    source = "Che et al. 2019, IV (paper values)"
    try:
        from .results import load_result

        res = load_result("test_domain")
    except (OSError, ValueError):  # a malformed results file must not break the simulator
        res = None
    measured = ((res or {}).get("data") or {}).get("baseline_preset")
    if isinstance(measured, dict):
        got = {k: float(measured[k]) for k in values if isinstance(measured.get(k), (int, float))}
        if got:
            values.update(got)
            source = ("results/test_domain.json data.baseline_preset (measured on the test "
                      f"domain: {', '.join(sorted(got))}); the rest Che et al. 2019, IV")
    return Preset(name="baseline", snr=values["snr"], wedge_deg=values["wedge_deg"],
                  defocus_um=values["defocus_um"], cs_mm=values["cs_mm"], source=source)


PRESETS = {"randomized": _randomized, "baseline": _baseline}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (``"randomized"`` or ``"baseline"``); a Preset is returned as is."""
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]()


def sample_params(preset: str | Preset, n: int, generator: torch.Generator | None = None,
                  device=None) -> dict[str, Tensor]:
    """Draw per-subtomogram parameters from ``preset``.

    Parameters
    ----------
    preset : a :class:`Preset` or its name.
    n : number of subtomograms (>= 0).
    generator : torch generator on ``device`` (CUDA: ``torch.Generator(device="cuda")``).
    device : device of the result (default: the generator's).

    Returns
    -------
    ``{name: (n,) float32 tensor}`` for every name in :data:`PARAM_NAMES`.
    """
    p = get_preset(preset)
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
