"""Electron optics of the simplified simulator: CTF, detector MTF, missing wedge, band limit.

Pure functions of Fourier-space frequency grids, batched over a leading dimension, on whichever
device their inputs live (Che et al. 2019, III-A; the procedure of their ref. [24], AITom/Xu lab).

Conventions (used everywhere in ``cryo_companion``)
---------------------------------------------------
* Volumes are ``(z, y, x)``; batches first, ``(B, z, y, x)``. The electron beam is along z; the
  tilt axis is y.
* Spatial frequencies are in cycles per Ångström (1/Å), in :func:`torch.fft.fftfreq` layout
  (zero frequency at index 0); the ``rfft`` variants keep only ``x >= 0`` (last axis), matching
  :func:`torch.fft.rfftn`.
* Defocus ``defocus_um`` in micrometres, **negative = underfocus** (Che et al. 2019: Dz in
  [-12, 0] µm). Spherical aberration ``cs_mm`` in millimetres (>= 0). Voltage in kV.
* Phase shift (Δf in Å, Cs in Å, λ in Å, k = |k| in 1/Å)::

      χ(k) = π λ Δf k² + (π/2) Cs λ³ k⁴

  (e.g. Williams & Carter, *Transmission Electron Microscopy*, with Scherzer's underfocus
  Δf = −1.2 sqrt(Cs λ)). Spherical aberration focuses high-angle rays more strongly, like an
  overfocus that grows with k⁴, so in underfocus (Δf < 0) the two terms have opposite signs:
  χ falls from 0, turns at ``k² = −Δf / (Cs λ²)`` and rises again (the Scherzer band rests on
  this balance; tested). Until 2026-12-02 this package had the Cs term with the sign of an
  underfocus; at the companion's voxel sizes (10 Å and more) the term is at most about 0.01 rad
  at Nyquist. The first frozen test domain is still generated with the old sign (and the old
  defocus gradient, :class:`cryo_companion.simulate.tiltseries.Imaging` ``legacy_signs``), so
  that it stays the data its committed results were measured on.
* CTF with amplitude contrast A (fraction, 0 <= A < 1) and a B-factor envelope::

      CTF(k) = [sqrt(1 − A²) sin χ(k) − A cos χ(k)] · exp(−B k² / 4)

  so that ``CTF(0) = −A`` and, in underfocus, the low-frequency transfer is negative: this is the
  *physical* sign, in which positive mass density appears dark, as in a raw tomogram. The
  simulator (``cryo_companion.simulate.subtomogram``) flips it by default so particles stay
  bright, as in the AITom simulator that Che et al. used (there ``ctf = sin(π/2 (Cs λ³ k⁴ −
  2 Dz λ k²))``, which is ``−sin χ`` at low frequency; with the underfocus ``Dz < 0`` that Che et
  al. use, AITom's Cs term has the sign of an underfocus, as ours had).
* Electron wavelength: relativistic, λ = h / sqrt(2 m₀ e U (1 + e U / (2 m₀ c²))).
* MTF: ``sinc(πω/2) = sin(πω/2) / (πω/2)`` with ω = |k| / k_Nyquist (radial, Che et al. III-A,
  their ref. [28]); MTF(0) = 1 and MTF(Nyquist) = 2/π.
* Missing wedge for a wedge angle α: the tilt series covers ±(90° − α) about y, so a Fourier
  component is measured iff ``|k_z| sin α <= |k_x| cos α`` (equivalently
  ``|k_z| <= |k_x| tan(90° − α)``); the missing wedge is ``|k_z| > |k_x| tan(90° − α)``. α = 0
  measures everything; α = 30° is a ±60° tilt range.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import torch
from torch import Tensor

from cryo_companion.devices import DeviceLike, ScalarOrTensor

__all__ = [
    "bandlimit_mask",
    "ctf",
    "ctf_coefficients",
    "ctf_first_zero_per_nm",
    "electron_wavelength_A",
    "fourier_grid",
    "frequency_magnitude",
    "mtf",
    "spherical_aberration_phase_rad",
    "wedge_mask",
    "wedge_measured",
]

# CODATA 2018
_H = 6.62607015e-34  # J s
_M0 = 9.1093837015e-31  # kg
_E = 1.602176634e-19  # C
_C = 299792458.0  # m/s


@overload
def electron_wavelength_A(voltage_kv: float) -> float: ...
@overload
def electron_wavelength_A(voltage_kv: Tensor) -> Tensor: ...
def electron_wavelength_A(voltage_kv: float | Tensor) -> float | Tensor:
    """Compute the relativistic electron wavelength in Å.

    Parameters
    ----------
    voltage_kv : float or Tensor
        Accelerating voltage in kV (> 0); a float or a tensor.

    Returns
    -------
    float or Tensor
        λ in Å (0.01969 Å at 300 kV, 0.02508 Å at 200 kV): a float for a float input, a tensor
        of the input's shape (its floating dtype, else float32) for a tensor.

    Raises
    ------
    ValueError
        If a voltage is not > 0.
    """
    if isinstance(voltage_kv, Tensor):
        if bool((voltage_kv <= 0).any()):
            raise ValueError("voltage must be > 0 kV")
        u = voltage_kv.to(torch.float64) * 1e3
        lam = _H / torch.sqrt(2 * _M0 * _E * u * (1 + _E * u / (2 * _M0 * _C**2)))
        dtype = voltage_kv.dtype if voltage_kv.is_floating_point() else torch.float32
        return (lam * 1e10).to(dtype)
    if not voltage_kv > 0:
        raise ValueError(f"voltage {voltage_kv} kV is not > 0")
    u_V = float(voltage_kv) * 1e3
    return _H / math.sqrt(2 * _M0 * _E * u_V * (1 + _E * u_V / (2 * _M0 * _C**2))) * 1e10


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be a non-empty sequence of positive sizes, got {shape}")
    return shape


def fourier_grid(shape: Sequence[int], voxel_size_A: float = 1.0,
                 device: DeviceLike = None, *,
                 rfft: bool = False, dtype: torch.dtype = torch.float32) -> tuple[Tensor, ...]:
    """Make the per-axis spatial frequencies of a real-space grid, broadcastable together.

    Parameters
    ----------
    shape : sequence of int
        Real-space shape, e.g. ``(D, H, W)`` for ``(z, y, x)``.
    voxel_size_A : float, optional
        Voxel size in Å (> 0). ``voxel_size_A=1`` gives cycles per voxel.
    device : DeviceLike, optional
        Torch device of the result.
    rfft : bool, optional
        If True the last axis has ``W // 2 + 1`` non-negative frequencies (``rfftn`` layout).
    dtype : torch.dtype, optional
        Floating dtype.

    Returns
    -------
    tuple of Tensor
        One tensor per axis in 1/Å, fftfreq layout; axis ``i`` has size ``shape[i]`` at position
        ``i`` and 1 elsewhere (e.g. ``kz (D,1,1)``, ``ky (1,H,1)``, ``kx (1,1,W)``).

    Raises
    ------
    ValueError
        If ``shape`` is empty or holds a size < 1, or ``voxel_size_A`` is not > 0.
    """
    shape = _check_shape(shape)
    if not voxel_size_A > 0:
        raise ValueError(f"voxel_size_A must be > 0, got {voxel_size_A}")
    out = []
    nd = len(shape)
    for i, n in enumerate(shape):
        if rfft and i == nd - 1:
            f = torch.fft.rfftfreq(n, d=voxel_size_A, device=device, dtype=dtype)
        else:
            f = torch.fft.fftfreq(n, d=voxel_size_A, device=device, dtype=dtype)
        view = [1] * nd
        view[i] = f.numel()
        out.append(f.reshape(view))
    return tuple(out)


def frequency_magnitude(shape: Sequence[int], voxel_size_A: float = 1.0,
                        device: DeviceLike = None, *,
                        rfft: bool = False, dtype: torch.dtype = torch.float32) -> Tensor:
    """Compute ``|k|`` in 1/Å on the grid of :func:`fourier_grid`.

    Parameters
    ----------
    shape : sequence of int
        Real-space shape, e.g. ``(D, H, W)`` for ``(z, y, x)``.
    voxel_size_A : float
        Voxel size in Å (> 0). ``voxel_size_A=1`` gives cycles per voxel.
    device : DeviceLike
        Torch device of the result.
    rfft : bool
        If True, the ``rfftn`` half grid (last axis ``W // 2 + 1``).
    dtype : torch.dtype
        Floating dtype.

    Returns
    -------
    Tensor
        ``shape`` (or the rfft half shape) of frequency magnitudes in 1/Å, fftfreq layout.

    Raises
    ------
    ValueError
        If ``shape`` is empty or holds a size < 1, or ``voxel_size_A`` is not > 0.
    """
    grids = fourier_grid(shape, voxel_size_A, device, rfft=rfft, dtype=dtype)
    k2 = grids[0] * grids[0]
    for g in grids[1:]:
        k2 = k2 + g * g
    return torch.sqrt(k2)


def _as_batch(value: ScalarOrTensor, name: str, ref: Tensor) -> tuple[Tensor, bool]:
    """Return a parameter as a float tensor on ``ref``'s device, and whether it is 1-D."""
    t = torch.as_tensor(value, dtype=ref.dtype if ref.is_floating_point() else torch.float32,
                        device=ref.device)
    if t.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D (B,) tensor, "
                         f"got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value}")
    return t, t.ndim == 1


def ctf(freq_A: Tensor, defocus_um: ScalarOrTensor, cs_mm: ScalarOrTensor, *,
        voltage_kv: float = 300.0, amplitude_contrast: float = 0.07,
        bfactor_A2: ScalarOrTensor = 0.0) -> Tensor:
    """Compute the contrast transfer function (physical sign, CTF(0) = −A; see the module).

    Parameters
    ----------
    freq_A : Tensor
        ``|k|`` in 1/Å, any shape ``S`` (e.g. from :func:`frequency_magnitude`).
    defocus_um : ScalarOrTensor
        Defocus Δf in µm, **negative = underfocus**; scalar or ``(B,)`` tensor.
    cs_mm : ScalarOrTensor
        Spherical aberration in mm (>= 0); scalar or ``(B,)``.
    voltage_kv : float, optional
        Accelerating voltage in kV (Che et al.: 300 kV).
    amplitude_contrast : float, optional
        Amplitude contrast fraction A in [0, 1) (0.07 typical for ice).
    bfactor_A2 : ScalarOrTensor, optional
        B-factor of the envelope ``exp(−B k² / 4)`` in Å² (>= 0); scalar or ``(B,)``.

    Returns
    -------
    Tensor
        ``S`` if all parameters are scalars, else ``(B, *S)``.

    Raises
    ------
    ValueError
        If ``amplitude_contrast`` is outside [0, 1), a parameter is not finite or has more than
        one dimension, ``cs_mm`` or ``bfactor_A2`` is negative, or batched parameters differ in
        length.
    """
    return _ctf(freq_A, defocus_um, cs_mm, voltage_kv=voltage_kv,
                amplitude_contrast=amplitude_contrast, bfactor_A2=bfactor_A2)


def _ctf(freq_A: Tensor, defocus_um: ScalarOrTensor, cs_mm: ScalarOrTensor, *,
         voltage_kv: float, amplitude_contrast: float, bfactor_A2: ScalarOrTensor,
         cs_sign: float = 1.0) -> Tensor:
    """Compute :func:`ctf`, with the Cs term's sign as a factor.

    ``cs_sign = −1`` only regenerates data frozen with the sign this package had until
    2026-12-02 (see the module docstring).
    """
    if not isinstance(freq_A, Tensor):
        freq_A = torch.as_tensor(freq_A, dtype=torch.float32)
    if not freq_A.is_floating_point():
        freq_A = freq_A.float()
    if not 0.0 <= amplitude_contrast < 1.0:
        raise ValueError(f"amplitude_contrast {amplitude_contrast} is outside [0, 1)")
    dz, bdz = _as_batch(defocus_um, "defocus_um", freq_A)
    cs, bcs = _as_batch(cs_mm, "cs_mm", freq_A)
    bf, bbf = _as_batch(bfactor_A2, "bfactor_A2", freq_A)
    if bool((cs < 0).any()):
        raise ValueError(f"cs_mm must be >= 0 mm, got {cs_mm}")
    if bool((bf < 0).any()):
        raise ValueError(f"bfactor_A2 must be >= 0 Å², got {bfactor_A2}")
    batched = bdz or bcs or bbf
    extra = (1,) * freq_A.ndim
    if batched:
        sizes = {t.numel() for t, b in ((dz, bdz), (cs, bcs), (bf, bbf)) if b}
        if len(sizes) > 1:
            raise ValueError(f"batched CTF parameters have different lengths {sorted(sizes)}")
        dz, cs, bf = (t.reshape(-1, *extra) for t in (dz, cs, bf))
    a, b, bq, phase = ctf_coefficients(dz, cs, bf, amplitude_contrast=amplitude_contrast,
                                       voltage_kv=voltage_kv)
    k2 = freq_A * freq_A
    return torch.sin(k2 * a + k2 * k2 * (b * cs_sign) - phase) * torch.exp(k2 * bq)


def ctf_coefficients(defocus_um: Tensor, cs_mm: Tensor, bfactor_A2: Tensor, *,
                     amplitude_contrast: float = 0.07, voltage_kv: float = 300.0
                     ) -> tuple[Tensor, Tensor, Tensor, float]:
    """Compute ``(a, b, bq, phase)`` with ``CTF(k) = sin(a k² + b k⁴ − phase) · e^{bq k²}``.

    The one place of the CTF formula (used by :func:`ctf` and by the batched simulator, which
    evaluates it on its own precomputed grids): ``a = π λ Δf``, ``b = +(π/2) Cs λ³`` (Å units),
    ``bq = −B/4``, and ``sqrt(1 − A²) sin χ − A cos χ = sin(χ − arcsin A)``. Tensors keep the
    shape of the inputs (reshape them for broadcasting first).

    Parameters
    ----------
    defocus_um : Tensor
        Defocus Δf in µm, negative = underfocus; any shape.
    cs_mm : Tensor
        Spherical aberration in mm, broadcastable against ``defocus_um``.
    bfactor_A2 : Tensor
        B-factor of the envelope in Å².
    amplitude_contrast : float
        Amplitude contrast fraction A in [0, 1).
    voltage_kv : float
        Accelerating voltage in kV (> 0).

    Returns
    -------
    a : Tensor
        ``π λ Δf`` in Å² (dtype of ``defocus_um``, float32 for integers).
    b : Tensor
        ``(π/2) Cs λ³`` in Å⁴ (same dtype).
    bq : Tensor
        ``−B/4`` in Å².
    phase : float
        ``arcsin A`` in rad.

    Raises
    ------
    ValueError
        If ``amplitude_contrast`` is outside [0, 1) or ``voltage_kv`` is not > 0.
    """
    if not 0.0 <= amplitude_contrast < 1.0:
        raise ValueError(f"amplitude_contrast {amplitude_contrast} is outside [0, 1)")
    lam = electron_wavelength_A(voltage_kv)
    dtype = defocus_um.dtype if defocus_um.is_floating_point() else torch.float32
    a = (math.pi * lam * 1e4 * defocus_um.double()).to(dtype)        # Δf: µm -> Å
    # Spherical aberration focuses high-angle rays more strongly, like an overfocus that grows
    # with k⁴: with Δf negative = underfocus its term has the opposite sign to an underfocus
    # (Scherzer: an underfocus balances Cs), so b > 0 where a < 0.
    b = (0.5 * math.pi * lam**3 * 1e7 * cs_mm.double()).to(dtype)    # Cs: mm -> Å
    return a, b, -0.25 * bfactor_A2, math.asin(amplitude_contrast)


def mtf(freq_fraction_nyquist: Tensor) -> Tensor:
    """Detector MTF ``sinc(πω/2) = sin(πω/2)/(πω/2)`` (Che et al. 2019, III-A).

    Parameters
    ----------
    freq_fraction_nyquist : Tensor
        ω = |k| / k_Nyquist (dimensionless, any shape).

    Returns
    -------
    Tensor
        Same shape; 1 at ω = 0 and 2/π ≈ 0.637 at Nyquist.
    """
    w = torch.as_tensor(freq_fraction_nyquist)
    # torch.sinc(x) = sin(πx)/(πx), so sinc(πω/2) in the unnormalised sense is torch.sinc(ω/2)
    return torch.sinc(0.5 * w)


def _wedge_rad(wedge_deg: ScalarOrTensor, device: DeviceLike) -> Tensor:
    a = torch.as_tensor(wedge_deg, dtype=torch.float64, device=device)
    if a.ndim > 1:
        raise ValueError(f"wedge_deg must be a scalar or (B,), got shape {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()) or bool(((a < 0) | (a >= 90)).any()):
        bad = a[~(torch.isfinite(a) & (a >= 0) & (a < 90))].flatten()[0].item()
        raise ValueError(f"wedge angle {bad:g} deg is outside [0, 90)")
    return torch.deg2rad(a.reshape(-1))


def wedge_mask(shape: Sequence[int], wedge_deg: ScalarOrTensor, device: DeviceLike = None, *,
               rfft: bool = False) -> Tensor:
    """Missing-wedge mask in Fourier space: 1 where measured, 0 in the missing wedge.

    Beam along z, tilt axis y, tilts covering ±(90° − α): a component is measured iff
    ``|k_z| sin α <= |k_x| cos α`` (the boundary counts as measured). The mask depends on
    ``|k_z|`` and ``|k_x|`` only, so it is Hermitian-symmetric (M(−k) = M(k)) and a filtered real
    volume stays real.

    Parameters
    ----------
    shape : sequence of int
        Real-space shape ``(D, H, W)`` (z, y, x); any sizes (voxels assumed isotropic).
    wedge_deg : ScalarOrTensor
        Wedge angle α in degrees, in [0, 90); scalar or ``(B,)``.
    device : DeviceLike, optional
        Torch device of the result.
    rfft : bool, optional
        If True, return the ``rfftn`` half-grid ``(B, D, H, W // 2 + 1)``.

    Returns
    -------
    Tensor
        Float32 tensor ``(B, *shape)`` (B = 1 for a scalar angle) of zeros and ones.

    Raises
    ------
    ValueError
        If ``shape`` is not 3-D with positive sizes, or an angle is outside [0, 90) or has more
        than one dimension.
    """
    shape = _check_shape(shape)
    if len(shape) != 3:
        raise ValueError(f"wedge_mask needs a 3-D (z, y, x) shape, got {shape}")
    alpha = _wedge_rad(wedge_deg, device)
    kz, _, kx = fourier_grid(shape, 1.0, device, rfft=rfft, dtype=torch.float64)
    measured = wedge_measured(kz.abs(), kx.abs(), alpha)
    ny = shape[1]
    return measured.expand(-1, -1, ny, -1).to(torch.float32).contiguous()


def wedge_measured(kz_abs: Tensor, kx_abs: Tensor, alpha_rad: Tensor) -> Tensor:
    """Apply the wedge rule ``|k_z| sin α <= |k_x| cos α`` on given grids (boundary measured).

    Decided in float64 so that grid points exactly on a tilt count as measured.

    Parameters
    ----------
    kz_abs : Tensor
        ``|k_z|``, broadcastable against ``kx_abs`` to a grid ``S`` (any frequency unit).
    kx_abs : Tensor
        ``|k_x|`` in the same unit.
    alpha_rad : Tensor
        ``(B,)`` wedge angles α in radians.

    Returns
    -------
    Tensor
        ``(B, *S)`` bool, True where the component is measured.
    """
    view = (-1,) + (1,) * max(kz_abs.dim(), kx_abs.dim())
    a = alpha_rad.double().reshape(view)
    return kz_abs.double() * torch.sin(a) <= kx_abs.double() * torch.cos(a) + 1e-12


def bandlimit_mask(shape: Sequence[int], cutoff_fraction_nyquist: float = 1.0,
                   device: DeviceLike = None, *,
                   rfft: bool = False) -> Tensor:
    """Spherical low-pass mask: 1 where ``|k| <= cutoff · k_Nyquist`` (real, symmetric).

    Removes the corners of the cubic Fourier box beyond Nyquist so that the resolution is
    isotropic (the band limiting of the simulation procedure of Che et al.'s ref. [24]).

    Parameters
    ----------
    shape : sequence of int
        Real-space shape.
    cutoff_fraction_nyquist : float, optional
        Cutoff as a fraction of Nyquist, in (0, sqrt(ndim)].
    device : DeviceLike, optional
        Device of the result.
    rfft : bool, optional
        If True, the ``rfftn`` half grid (as in :func:`fourier_grid`).

    Returns
    -------
    Tensor
        Float32 ``shape`` (or the rfft half shape).

    Raises
    ------
    ValueError
        If ``cutoff_fraction_nyquist`` is not > 0, or ``shape`` is empty or holds a size < 1.
    """
    if not 0 < cutoff_fraction_nyquist:
        raise ValueError(f"cutoff_fraction_nyquist must be > 0, got {cutoff_fraction_nyquist}")
    # cycles/voxel: Nyquist is 0.5
    w = frequency_magnitude(shape, 1.0, device, rfft=rfft, dtype=torch.float64) / 0.5
    return (w <= cutoff_fraction_nyquist + 1e-12).to(torch.float32)


def spherical_aberration_phase_rad(freq_A: float, cs_mm: float, *,
                                   voltage_kv: float = 300.0) -> float:
    """Compute the spherical-aberration term of the phase shift, ``(π/2) Cs λ³ k⁴``, in rad.

    Parameters
    ----------
    freq_A : float
        Spatial frequency ``|k|`` in 1/Å (e.g. Nyquist, ``1 / (2 voxel_size_A)``).
    cs_mm : float
        Spherical aberration in mm (>= 0).
    voltage_kv : float
        Accelerating voltage in kV.

    Returns
    -------
    float
        The Cs term of χ at ``freq_A`` (it enters χ with a plus sign: the sign of an
        overfocus, opposite to an underfocus; see :func:`ctf_coefficients`).

    Raises
    ------
    ValueError
        For a negative ``cs_mm`` or ``freq_A``.
    """
    if cs_mm < 0 or freq_A < 0:
        raise ValueError(f"cs_mm and freq_A must be >= 0, got cs_mm={cs_mm}, freq_A={freq_A}")
    lam = float(electron_wavelength_A(voltage_kv))
    return 0.5 * math.pi * cs_mm * 1e7 * lam**3 * freq_A**4


def ctf_first_zero_per_nm(defocus_um: float, cs_mm: float, *, voltage_kv: float = 300.0,
                          amplitude_contrast: float = 0.07) -> float:
    """Find the lowest spatial frequency at which the CTF changes sign, in closed form.

    With ``u = k²`` the argument of ``CTF(k) = sin(a u + b u² − φ)`` (see
    :func:`ctf_coefficients`) starts at ``−φ = −arcsin A``; the CTF first changes sign where the
    argument reaches ``−π`` (falling, as in underfocus) or ``0`` (rising, in overfocus), the
    smallest positive root of ``b u² + a u − φ − nπ = 0`` for ``n`` in ``{0, −1}``.

    Parameters
    ----------
    defocus_um : float
        Defocus Δf in µm, negative = underfocus.
    cs_mm : float
        Spherical aberration in mm (>= 0).
    voltage_kv : float
        Accelerating voltage in kV.
    amplitude_contrast : float
        Amplitude contrast fraction A in [0, 1).

    Returns
    -------
    float
        The first zero of the CTF in 1/nm (cycles per nm). Without Cs and with A = 0 it is
        ``1 / sqrt(λ |Δf|)``.

    Raises
    ------
    ValueError
        When the CTF has no zero (Δf = 0 and Cs = 0) or a parameter is out of range.
    """
    if cs_mm < 0:
        raise ValueError(f"cs_mm must be >= 0 mm, got {cs_mm}")
    if defocus_um == 0 and cs_mm == 0:
        raise ValueError("with defocus_um = 0 and cs_mm = 0 the CTF is constant: no zero")
    a_t, b_t, _, phi = ctf_coefficients(torch.tensor(float(defocus_um), dtype=torch.float64),
                                        torch.tensor(float(cs_mm), dtype=torch.float64),
                                        torch.tensor(0.0, dtype=torch.float64),
                                        amplitude_contrast=amplitude_contrast,
                                        voltage_kv=voltage_kv)
    a, b = float(a_t), float(b_t)
    roots = []
    for n in (0, -1):
        c = -phi - n * math.pi
        if b == 0:
            if a != 0:
                roots.append(-c / a)
            continue
        disc = a * a - 4 * b * c
        if disc >= 0:
            roots += [(-a + s * math.sqrt(disc)) / (2 * b) for s in (1.0, -1.0)]
    u = min(r for r in roots if r > 0)
    return 10.0 * math.sqrt(u)
