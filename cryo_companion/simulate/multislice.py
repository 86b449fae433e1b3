"""Multislice propagation of the electron wave through a thick specimen, and its image.

The projection approximation (:mod:`.tiltseries`, ``propagation="projection"``) adds up the
specimen's projected potential and images it once (weak-phase, first order). The multislice
method (Cowley & Moodie 1957; Kirkland, *Advanced Computing in Electron Microscopy*, ch. 6), which
SHREC 2020 used with 5 nm slices (Gubins et al. 2020, Sec. 2.1), follows the wave through the
specimen instead: the specimen is cut into slices of thickness Δz along the beam; the wave is
multiplied by each slice's transmission function and propagated (Fresnel) to the next; the wave
leaving the specimen (the exit wave) is imaged by the objective lens. It keeps what the
projection approximation drops: the phase is not small in a thick specimen (all orders of the
phase, not only the first), and the wave spreads (defocuses) between slices.

Conventions and units
---------------------
* Waves are complex ``(T, Y, X)`` tensors (a batch of ``T`` tilts), unit-amplitude plane wave
  ``ψ = 1`` incident from the source; the beam runs along −t, where the height ``t`` (Å) grows
  towards the source (as in :mod:`.tiltseries`). Frequencies ``k`` are in cycles/Å
  (:func:`cryo_companion.optics.fourier_grid` layout), ``k² = k_y² + k_x²``.
* Interaction constant ``σ`` in rad/(V·Å) (:func:`interaction_constant`: 6.53e-4 at 300 kV): a
  slice whose potential (relative to vitreous ice, V) integrates along the beam to ``v`` (V·Å)
  shifts the phase by ``σ v``.
* Transmission of a slice: ``t = exp(σ v (i √(1 − A²) − A))`` with the amplitude-contrast fraction
  ``A``: a fraction ``A`` of the scattering is absorptive. In the weak-phase limit this gives
  exactly the CTF of :func:`cryo_companion.optics.ctf`, ``sin(χ − arcsin A)`` (below). ``A = 0``
  is a pure phase object and ``|t| = 1``.
* Fresnel propagation over a distance ``d`` (Å, downstream = along the beam, ``d > 0``):
  ``ψ ← F⁻¹{F{ψ} · exp(−iπλ d k²)}`` (paraxial; unitary; ``P(a) P(b) = P(a + b)``; ``d < 0``
  propagates back upstream).
* Objective lens: the exit wave is referred to the plane ``t = 0`` (the eucentric height, where
  the tilt axis lies) and multiplied by ``H(k) = exp(−i χ(k)) · exp(−B k² / 4)`` with
  ``χ = π λ Δf k² + (π/2) Cs λ³ k⁴`` from :func:`cryo_companion.optics.ctf_coefficients`
  (``Δf`` in µm, **negative = underfocus**, the package's convention). Free propagation by ``d``
  is a lens with ``Δf = d`` and no Cs, so a defocus ``Δf`` images the plane ``Δf`` *below* the
  reference plane; an underfocused lens (``Δf < 0``) images a plane above the specimen, and a
  thin slice at height ``t`` is imaged with the defocus ``Δf + t`` (less underfocus for higher
  slices, which are nearer the imaged plane). The image is ``I = |F⁻¹{H · F{ψ_exit}}|²``
  (intensity relative to the incident beam).
* Weak-phase limit: for ``σ v ≪ 1``, ``I ≈ 1 + 2 F⁻¹{Σ_k CTF(Δf + t_k) · F{σ v_k}}`` with
  ``CTF = sin(χ − arcsin A) · exp(−B k² / 4)`` (tested): one slice is the projection
  approximation.

Everything runs on the device of its inputs, batched over the leading (tilt) axis.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from cryo_companion import optics
from cryo_companion.devices import DeviceLike

__all__ = [
    "fresnel_propagate",
    "image_intensity",
    "interaction_constant",
    "lens_transfer",
    "multislice_exit_wave",
    "transmission",
    "wave_k2",
]


def interaction_constant(voltage_kv: float) -> float:
    """Compute the electron interaction constant σ in rad / (V Å): phase = σ ∫ φ dz.

    Parameters
    ----------
    voltage_kv : float
        Accelerating voltage (kV, > 0).

    Returns
    -------
    float
        σ = 2π m e λ / h² with the relativistic mass m: 6.53e-4 rad/(V Å) at 300 kV.
    """
    lam_m = float(optics.electron_wavelength_A(float(voltage_kv))) * 1e-10
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    m = m0 * (1 + e * voltage_kv * 1e3 / (m0 * c * c))
    return 2 * math.pi * m * e * lam_m / (h * h) * 1e-10


def wave_k2(shape_yx: Sequence[int], pixel_size_A: float, device: DeviceLike = None) -> Tensor:
    """Compute the squared spatial frequency ``k² = k_y² + k_x²`` (1/Å²) of a 2-D FFT grid.

    Parameters
    ----------
    shape_yx : sequence of int
        Image shape ``(Y, X)``.
    pixel_size_A : float
        Pixel edge (Å).
    device : DeviceLike
        Where the grid lives.

    Returns
    -------
    torch.Tensor
        ``(Y, X)`` float32, fftfreq layout (zero frequency at index 0).
    """
    ky, kx = optics.fourier_grid(tuple(int(s) for s in shape_yx), pixel_size_A, device)
    return ky * ky + kx * kx


def fresnel_propagate(wave: Tensor, distance_A: float, k2: Tensor, wavelength_A: float) -> Tensor:
    """Propagate waves over ``distance_A`` along the beam (Fresnel, paraxial, unitary).

    Parameters
    ----------
    wave : torch.Tensor
        ``(..., Y, X)`` complex waves.
    distance_A : float
        Propagation distance (Å); positive downstream, negative back upstream.
    k2 : torch.Tensor
        ``(Y, X)`` squared frequencies (1/Å², :func:`wave_k2`).
    wavelength_A : float
        Electron wavelength λ (Å).

    Returns
    -------
    torch.Tensor
        ``F⁻¹{F{ψ} · exp(−iπλ d k²)}``, same shape and dtype as ``wave``.
    """
    if distance_A == 0:
        return wave
    return torch.fft.ifft2(torch.fft.fft2(wave) * _propagator(k2, distance_A, wavelength_A,
                                                               wave.dtype))


def _propagator(k2: Tensor, distance_A: float, wavelength_A: float,
                dtype: torch.dtype = torch.complex64) -> Tensor:
    """Return the Fresnel propagator ``exp(−iπλ d k²)`` on the grid ``k2``."""
    phase = (-math.pi * wavelength_A * float(distance_A)) * k2.to(torch.float64)
    return torch.polar(torch.ones_like(phase), phase).to(dtype)


def transmission(projected_V_A: Tensor, voltage_kv: float, amplitude_contrast: float = 0.0
                 ) -> Tensor:
    """Compute the transmission function ``exp(σ v (i √(1 − A²) − A))`` of a slice.

    Parameters
    ----------
    projected_V_A : torch.Tensor
        ``(..., Y, X)`` potential (relative to ice, V) integrated along the beam through the
        slice (V·Å).
    voltage_kv : float
        Accelerating voltage (kV).
    amplitude_contrast : float
        Fraction ``A`` in [0, 1) of absorptive scattering (0: pure phase object).

    Returns
    -------
    torch.Tensor
        Complex64 tensor of the input's shape.

    Raises
    ------
    ValueError
        If ``amplitude_contrast`` is outside [0, 1).
    """
    if not 0.0 <= amplitude_contrast < 1.0:
        raise ValueError(f"amplitude_contrast {amplitude_contrast} is outside [0, 1)")
    phi = interaction_constant(voltage_kv) * projected_V_A.to(torch.float32)
    a = float(amplitude_contrast)
    return torch.polar(torch.exp(-a * phi), math.sqrt(1 - a * a) * phi)


def multislice_exit_wave(slabs_V_A: Tensor, heights_A: Sequence[float] | Tensor,
                         pixel_size_A: float, voltage_kv: float, amplitude_contrast: float = 0.0,
                         *, reference_height_A: float = 0.0) -> Tensor:
    """Propagate a plane wave through specimens given as slices, to ``reference_height_A``.

    Parameters
    ----------
    slabs_V_A : torch.Tensor
        ``(T, K, Y, X)`` projected potential of each slice (V·Å), e.g. from
        :func:`cryo_companion.simulate.tiltseries.project_slabs` (one specimen orientation per
        tilt ``T``). Slices need not be evenly spaced.
    heights_A : sequence of float or torch.Tensor
        ``(K,)`` height of each slice (Å, positive towards the source); the thin phase grating
        of slice ``k`` sits at ``heights_A[k]`` (the slice's centre).
    pixel_size_A : float
        Pixel edge (Å).
    voltage_kv : float
        Accelerating voltage (kV).
    amplitude_contrast : float
        Absorptive fraction ``A`` (see :func:`transmission`).
    reference_height_A : float
        Plane the exit wave is referred to (Å): the wave leaving the lowest slice is propagated
        (back, if the plane is above it) to this height. 0 is the eucentric height of
        :mod:`.tiltseries`, where the defocus of the tilt series is defined.

    Returns
    -------
    torch.Tensor
        ``(T, Y, X)`` complex64 exit waves. Slices holding only zeros (for every tilt of the
        batch) are skipped, their propagation merged with the next: exact, since the
        propagators compose.

    Raises
    ------
    ValueError
        If ``slabs_V_A`` is not 4-D, the number of heights differs from K, or
        ``amplitude_contrast`` is outside [0, 1).
    """
    if slabs_V_A.ndim != 4:
        raise ValueError(f"slabs must be (T, K, Y, X), got shape {tuple(slabs_V_A.shape)}")
    T, K, Y, X = slabs_V_A.shape
    h = torch.as_tensor(heights_A, dtype=torch.float64).flatten().cpu()
    if h.numel() != K:
        raise ValueError(f"{K} slices but {h.numel()} heights")
    dev = slabs_V_A.device
    lam = float(optics.electron_wavelength_A(voltage_kv))
    k2 = wave_k2((Y, X), pixel_size_A, dev)
    filled = (slabs_V_A.abs().amax(dim=(2, 3)) > 0).any(dim=0).cpu()        # (K,)
    wave: Tensor | None = None
    here = 0.0
    props: dict[float, Tensor] = {}                   # propagators by distance (slices repeat)
    for k in sorted(range(K), key=lambda i: -float(h[i])):                  # source side first
        if not bool(filled[k]):
            continue
        t = transmission(slabs_V_A[:, k], voltage_kv, amplitude_contrast)
        if wave is None:
            wave = t                                          # a plane wave needs no propagation
        else:
            d = round(here - float(h[k]), 6)
            if d not in props:
                props[d] = _propagator(k2, d, lam)
            wave = torch.fft.ifft2(torch.fft.fft2(wave) * props[d]) * t
        here = float(h[k])
    if wave is None:
        return torch.ones(T, Y, X, dtype=torch.complex64, device=dev)
    return fresnel_propagate(wave, here - float(reference_height_A), k2, lam)


def lens_transfer(shape_yx: Sequence[int], pixel_size_A: float, defocus_um: Tensor | float,
                  cs_mm: float, voltage_kv: float, bfactor_A2: Tensor | float = 0.0,
                  device: DeviceLike = None) -> Tensor:
    """Compute the wave transfer function ``exp(−i χ(k)) · exp(−B k² / 4)`` of the lens.

    Parameters
    ----------
    shape_yx : sequence of int
        Image shape ``(Y, X)``.
    pixel_size_A : float
        Pixel edge (Å).
    defocus_um : torch.Tensor or float
        ``(T,)`` or scalar defocus (µm, negative = underfocus).
    cs_mm : float
        Spherical aberration (mm, >= 0).
    voltage_kv : float
        Accelerating voltage (kV).
    bfactor_A2 : torch.Tensor or float
        ``(T,)`` or scalar B-factor of the envelope (Å², >= 0).
    device : DeviceLike
        Where the result lives.

    Returns
    -------
    torch.Tensor
        ``(T, Y, X)`` complex64 (``T = 1`` for scalar parameters), full FFT layout.

    Raises
    ------
    ValueError
        If ``bfactor_A2`` or ``cs_mm`` is negative.
    """
    dz = torch.as_tensor(defocus_um, dtype=torch.float64, device=device).reshape(-1, 1, 1)
    bf = torch.as_tensor(bfactor_A2, dtype=torch.float64, device=device).reshape(-1, 1, 1)
    if bool((bf < 0).any()):
        raise ValueError(f"bfactor_A2 must be >= 0 Å², got {bfactor_A2}")
    if not cs_mm >= 0:
        raise ValueError(f"cs_mm must be >= 0 mm, got {cs_mm}")
    cs = torch.full_like(dz, float(cs_mm))
    a, b, bq, _ = optics.ctf_coefficients(dz, cs, bf.expand_as(dz), voltage_kv=voltage_kv)
    k2 = wave_k2(shape_yx, pixel_size_A, device).to(torch.float64)
    chi = a * k2 + b * k2 * k2
    return torch.polar(torch.exp(bq * k2), -chi).to(torch.complex64)


def image_intensity(exit_wave: Tensor, pixel_size_A: float, defocus_um: Tensor | float,
                    cs_mm: float, voltage_kv: float, bfactor_A2: Tensor | float = 0.0) -> Tensor:
    """Image exit waves through the objective lens: ``|F⁻¹{H · F{ψ_exit}}|²``.

    Parameters
    ----------
    exit_wave : torch.Tensor
        ``(T, Y, X)`` complex exit waves (:func:`multislice_exit_wave`).
    pixel_size_A : float
        Pixel edge (Å).
    defocus_um : torch.Tensor or float
        ``(T,)`` or scalar defocus (µm, negative = underfocus).
    cs_mm : float
        Spherical aberration (mm, >= 0).
    voltage_kv : float
        Accelerating voltage (kV).
    bfactor_A2 : torch.Tensor or float
        ``(T,)`` or scalar B-factor of the envelope (Å², >= 0).

    Returns
    -------
    torch.Tensor
        ``(T, Y, X)`` float32 intensity relative to the incident beam (1 for an empty specimen).

    Raises
    ------
    ValueError
        If ``exit_wave`` is not 3-D, or a lens parameter is out of range
        (:func:`lens_transfer`).
    """
    if exit_wave.ndim != 3:
        raise ValueError(f"exit_wave must be (T, Y, X), got shape {tuple(exit_wave.shape)}")
    H = lens_transfer(exit_wave.shape[-2:], pixel_size_A, defocus_um, cs_mm, voltage_kv,
                      bfactor_A2, exit_wave.device)
    img = torch.fft.ifft2(torch.fft.fft2(exit_wave.to(torch.complex64)) * H)
    return (img.real ** 2 + img.imag ** 2).to(torch.float32)
