"""Physics of cryo_companion.optics: CTF zeros and sign, MTF, missing wedge, band limit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryo_companion.optics import (
    bandlimit_mask,
    ctf,
    electron_wavelength_A,
    fourier_grid,
    frequency_magnitude,
    mtf,
    wedge_mask,
)


def test_wavelength_relativistic():
    # textbook values: 300 kV -> 0.01969 Å, 200 kV -> 0.02508 Å, 100 kV -> 0.03701 Å
    assert electron_wavelength_A(300.0) == pytest.approx(0.019687, abs=2e-6)
    assert electron_wavelength_A(200.0) == pytest.approx(0.025079, abs=2e-6)
    assert electron_wavelength_A(100.0) == pytest.approx(0.037014, abs=2e-6)
    with pytest.raises(ValueError):
        electron_wavelength_A(0.0)


def test_ctf_at_zero_is_minus_amplitude_contrast():
    k = torch.zeros(1)
    assert ctf(k, -6.0, 2.7, amplitude_contrast=0.07).item() == pytest.approx(-0.07, abs=1e-7)
    assert ctf(k, -3.0, 2.0, amplitude_contrast=0.0).item() == pytest.approx(0.0, abs=1e-7)


def test_ctf_first_zero_where_theory_puts_it():
    # Cs = 0: sqrt(1-A^2) sin chi - A cos chi = sin(chi - asin A) = 0 at chi = asin(A) - pi
    dz_um, a = -4.0, 0.1
    lam = electron_wavelength_A(300.0)
    k0 = math.sqrt((math.pi - math.asin(a)) / (math.pi * lam * abs(dz_um) * 1e4))
    k = torch.linspace(0, 1.5 * k0, 200001, dtype=torch.float64)
    c = ctf(k, dz_um, 0.0, amplitude_contrast=a)
    first = k[torch.nonzero(c[:-1] * c[1:] <= 0)[0, 0]].item()
    assert first == pytest.approx(k0, rel=1e-4)
    # with Cs: the first zero solves pi lam dz k^2 + pi/2 Cs lam^3 k^4 = asin(A) - pi (a quadratic
    # in k^2; the Cs term has the sign of an overfocus)
    cs_mm = 2.7
    A2 = 0.5 * math.pi * cs_mm * 1e7 * lam**3
    B1 = math.pi * lam * dz_um * 1e4
    C0 = math.pi - math.asin(a)
    roots = np.roots([A2, B1, C0])
    k2 = min(r.real for r in roots if r.real > 0)
    c = ctf(k, dz_um, cs_mm, amplitude_contrast=a)
    first = k[torch.nonzero(c[:-1] * c[1:] <= 0)[0, 0]].item()
    assert first == pytest.approx(math.sqrt(k2), rel=1e-4)


def test_ctf_underfocus_low_frequency_negative_and_sign_flips_with_defocus():
    k = torch.tensor([0.01])  # chi = ±0.37 rad: phase contrast dominates
    assert ctf(k, -6.0, 2.7).item() < -0.07  # underfocus: phase contrast adds to amplitude
    assert ctf(k, +6.0, 2.7).item() > 0


def test_ctf_batched_parameters_and_envelope():
    k = frequency_magnitude((8, 8, 8), 13.68)
    dz = torch.tensor([-2.0, -6.0, -10.0])
    c = ctf(k, dz, 2.7, bfactor_A2=torch.tensor([0.0, 100.0, 500.0]))
    assert c.shape == (3, 8, 8, 8)
    for i in range(3):
        ref = ctf(k, dz[i].item(), 2.7, bfactor_A2=[0.0, 100.0, 500.0][i])
        torch.testing.assert_close(c[i], ref)
    # envelope exp(-B k^2 / 4)
    ratio = ctf(k, -6.0, 2.7, bfactor_A2=400.0) / ctf(k, -6.0, 2.7)
    torch.testing.assert_close(ratio, torch.exp(-100.0 * k * k), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="cs_mm"):
        ctf(k, -6.0, -1.0)
    with pytest.raises(ValueError, match="amplitude_contrast"):
        ctf(k, -6.0, 2.7, amplitude_contrast=1.5)


def test_mtf_values():
    assert mtf(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert mtf(torch.tensor(1.0)).item() == pytest.approx(2 / math.pi, rel=1e-6)
    w = torch.tensor(0.37)
    assert mtf(w).item() == pytest.approx(math.sin(math.pi * 0.37 / 2) / (math.pi * 0.37 / 2))


def test_fourier_grid_layout():
    kz, ky, kx = fourier_grid((6, 5, 8), 2.0)
    assert kz.shape == (6, 1, 1) and ky.shape == (1, 5, 1) and kx.shape == (1, 1, 8)
    np.testing.assert_allclose(kx.flatten().numpy(), np.fft.fftfreq(8, 2.0))
    _, _, kxr = fourier_grid((6, 5, 8), 2.0, rfft=True)
    assert kxr.shape == (1, 1, 5)
    np.testing.assert_allclose(kxr.flatten().numpy(), np.fft.rfftfreq(8, 2.0))


@pytest.mark.parametrize("alpha", [0.0, 10.0, 30.0, 60.0, 89.0])
def test_wedge_zero_exactly_in_the_wedge(alpha):
    shape = (16, 12, 16)
    m = wedge_mask(shape, alpha)[0]
    kz, _, kx = fourier_grid(shape, 1.0, dtype=torch.float64)
    ang = torch.rad2deg(torch.atan2(kz.abs(), kx.abs())).expand(shape)  # angle from the x axis
    tilt_max = 90.0 - alpha
    inside = ang > tilt_max + 1e-9
    assert bool((m[inside] == 0).all())
    assert bool((m[~inside] == 1).all())
    # fraction of missing Fourier space grows with the wedge
    if alpha == 0.0:
        assert bool((m == 1).all())


def test_wedge_hermitian_and_independent_of_y():
    m = wedge_mask((10, 9, 12), torch.tensor([20.0, 45.0]))
    assert m.shape == (2, 10, 9, 12)
    mirrored = torch.roll(torch.flip(m, dims=(1, 2, 3)), shifts=(1, 1, 1), dims=(1, 2, 3))
    torch.testing.assert_close(m, mirrored)
    assert bool((m == m[:, :, :1, :]).all())
    # a real volume filtered by the wedge stays real (irfftn with the rfft mask == full mask)
    x = torch.randn(10, 9, 12, dtype=torch.float64)
    full = torch.fft.ifftn(torch.fft.fftn(x) * m[1])
    assert full.imag.abs().max() < 1e-12
    half = torch.fft.irfftn(torch.fft.rfftn(x) * wedge_mask((10, 9, 12), 45.0, rfft=True)[0],
                            s=x.shape)
    torch.testing.assert_close(half, full.real)


def test_wedge_bad_angles():
    for bad in (-1.0, 90.0, 95.0, float("nan")):
        with pytest.raises(ValueError, match="outside"):
            wedge_mask((8, 8, 8), bad)


def test_parseval_of_fourier_filtering():
    # energy of a filtered volume equals the filtered spectral energy / N (Parseval)
    torch.manual_seed(0)
    x = torch.randn(12, 12, 12, dtype=torch.float64)
    k = frequency_magnitude(x.shape, 10.0, dtype=torch.float64)
    H = ctf(k, -5.0, 2.7) * mtf(k / (0.5 / 10.0)) * wedge_mask(x.shape, 30.0)[0].double()
    X = torch.fft.fftn(x)
    y = torch.fft.ifftn(X * H).real
    assert (y**2).sum().item() == pytest.approx(((X * H).abs() ** 2).sum().item() / x.numel(),
                                                rel=1e-10)


def test_bandlimit_sphere():
    m = bandlimit_mask((16, 16, 16))
    w = frequency_magnitude((16, 16, 16)) / 0.5
    assert bool((m[w <= 1.0] == 1).all()) and bool((m[w > 1.0 + 1e-6] == 0).all())


def test_spherical_aberration_balances_underfocus_at_scherzer_defocus():
    """Scherzer: at Δf = −sqrt(4/3 Cs λ) the phase CTF (A = 0) keeps one sign up to its first zero
    at k = (16/3)^(1/4) (Cs λ³)^(-1/4) ≈ 1.52 (Cs λ³)^(-1/4) (Williams & Carter). That needs the Cs
    term of χ to oppose the underfocus; with both of one sign the first zero falls at 0.82."""
    from cryo_companion.optics import ctf_first_zero_per_nm, electron_wavelength_A

    cs_mm, kv = 2.7, 300.0
    lam = float(electron_wavelength_A(kv))
    cs_A = cs_mm * 1e7
    scherzer_um = -math.sqrt(4 / 3 * cs_A * lam) * 1e-4
    unit = (cs_A * lam ** 3) ** -0.25                                    # 1/Å
    k = torch.linspace(0.02, 1.45, 2000, dtype=torch.float64) * unit
    c = ctf(k, scherzer_um, cs_mm, voltage_kv=kv, amplitude_contrast=0.0)
    assert bool((c < 0).all())                                           # one lobe, no zero
    first = ctf_first_zero_per_nm(scherzer_um, cs_mm, voltage_kv=kv, amplitude_contrast=0.0)
    assert first / 10 == pytest.approx((16 / 3) ** 0.25 * unit, rel=1e-6)
