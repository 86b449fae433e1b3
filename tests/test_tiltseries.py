"""Tilt series and WBP: geometry, the missing wedge, CTF sign, dose noise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cryo_companion import optics
from cryo_companion.simulate.tiltseries import (
    Imaging,
    dose_symmetric_order,
    fourier_bin,
    interaction_constant,
    project,
    project_slabs,
    simulate_tilt_series,
    tilt_angles_deg,
    wbp,
)


def test_tilt_angles_of_the_paper_and_bad_ranges():
    t = tilt_angles_deg(-50, 70, 2)
    assert len(t) == 61 and t[0] == -50 and t[-1] == 70
    with pytest.raises(ValueError, match="outside"):
        tilt_angles_deg(-95, 60, 1)
    with pytest.raises(ValueError, match="does not divide"):
        tilt_angles_deg(-50, 70, 7)
    with pytest.raises(ValueError, match="empty"):
        tilt_angles_deg(10, -10, 1)
    with pytest.raises(ValueError):
        Imaging(tilt_min_deg=-60, tilt_max_deg=90)


def test_dose_symmetric_order_starts_at_zero_and_alternates():
    t = tilt_angles_deg(-6, 6, 2)
    r = dose_symmetric_order(t)
    assert list(t[np.argsort(r)][:3]) == [0, 2, -2]


def test_interaction_constant_300kv():
    assert interaction_constant(300.0) == pytest.approx(6.53e-4, rel=0.01)


def _phantom(Z=32, Y=2, X=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.zeros(Z, Y, X)
    z, x = torch.meshgrid(torch.arange(Z) - (Z - 1) / 2, torch.arange(X) - (X - 1) / 2,
                          indexing="ij")
    for _ in range(6):
        cz, cx = (torch.rand(2, generator=g) - 0.5) * 16
        v += torch.exp(-((z - cz) ** 2 + (x - cx) ** 2) / (2 * 1.5 ** 2))[:, None, :]
    return v


def test_projection_conserves_mass_and_slabs_sum_to_projection(device):
    v = _phantom().to(device)
    t = np.array([-40.0, 0.0, 30.0])
    p = project(v, t)
    assert torch.allclose(p.sum((1, 2)), v.sum().expand(3), rtol=0.02)
    slabs, h = project_slabs(v, t, 1.0, 4.0)
    assert torch.allclose(slabs.sum(1), p, atol=1e-4)
    # at zero tilt a slab at height h holds the mass at z = h
    k = slabs[1].sum((1, 2))
    zc = (v.sum((1, 2)) * (torch.arange(32, device=device) - 15.5)).sum() / v.sum()
    assert float((k * h).sum() / k.sum()) == pytest.approx(float(zc), abs=0.6)


def test_wbp_of_phantom_shows_the_missing_wedge_and_nothing_else():
    """-50..+70: Fourier components along directions outside the tilt range are ~0; inside
    they match the phantom (Fourier slice theorem: tilt θ measures direction (cos θ, sin θ)
    in (k_x, k_z))."""
    Z = X = 48
    v = _phantom(Z, 2, X)
    t = tilt_angles_deg(-50, 70, 1)
    r = wbp(project(v, t), t, Z)
    Fv = torch.fft.fft2(v[:, 0])
    Fr = torch.fft.fft2(r[:, 0])
    kz = torch.fft.fftfreq(Z)[:, None].expand(Z, X)
    kx = torch.fft.fftfreq(X)[None, :].expand(Z, X)
    ang = torch.rad2deg(torch.atan2(kz, kx))
    ang = torch.where(ang > 90, ang - 180, torch.where(ang <= -90, ang + 180, ang))
    kk = torch.sqrt(kz ** 2 + kx ** 2)
    band = (kk > 0.02) & (kk < 0.25)
    wedge = band & ((ang < -58) | (ang > 78))
    seen = band & (ang > -42) & (ang < 62)
    e_wedge = (Fr[wedge].abs() ** 2).sum() / (Fv[wedge].abs() ** 2).sum()
    assert e_wedge < 0.05
    err = ((Fr[seen] - Fv[seen]).abs() ** 2).sum() / (Fv[seen].abs() ** 2).sum()
    assert err < 0.05
    # and the asymmetry is the right way round: the mirrored wedge is measured
    mirror = band & ((ang > 58) & (ang < 68))
    assert ((Fr[mirror] - Fv[mirror]).abs() ** 2).sum() / (Fv[mirror].abs() ** 2).sum() < 0.1


def test_noise_free_image_shows_mass_dark_and_ctf_modulates(device):
    Z, Y, X = 16, 32, 32
    pot = torch.zeros(Z, Y, X, device=device)
    pot[6:10, 14:18, 14:18] = 2.5
    im = Imaging(tilt_min_deg=-10, tilt_max_deg=10, tilt_step_deg=10, defocus_um=-4.0,
                 defocus_tilt_sd_um=0.0)
    s = simulate_tilt_series(pot, 10.0, im, torch.Generator().manual_seed(0), noise=False)
    img = s.images[1]
    assert float(img[15:17, 15:17].mean()) < float(img[:4, :4].mean())
    # in focus and without amplitude contrast there is no contrast at all
    im0 = Imaging(tilt_min_deg=-10, tilt_max_deg=10, tilt_step_deg=10, defocus_um=0.0,
                  defocus_tilt_sd_um=0.0, amplitude_contrast=0.0, cs_mm=0.0,
                  slab_thickness_A=1000.0)
    s0 = simulate_tilt_series(pot, 10.0, im0, torch.Generator().manual_seed(0), noise=False)
    assert float(s0.images.abs().max()) < 1e-4


def test_shot_noise_variance_follows_dose_and_mtf(device):
    Z, Y, X = 4, 64, 64
    pot = torch.zeros(Z, Y, X, device=device)
    im = Imaging(tilt_min_deg=-2, tilt_max_deg=2, tilt_step_deg=2, total_dose_e_A2=30.0,
                 ice_thickness_A=0.0)
    s = simulate_tilt_series(pot, 2.0, im, torch.Generator().manual_seed(1))
    n = float(s.electrons_per_pixel[0])
    assert n == pytest.approx(30.0 / 3 * 4.0)
    k = optics.frequency_magnitude((Y, X), 1.0) / 0.5
    expected = float((optics.mtf(k) ** 2).mean()) / n
    assert float(s.images.var()) == pytest.approx(expected, rel=0.1)


def test_fourier_bin_keeps_the_mean():
    x = torch.rand(3, 16, 16)
    b = fourier_bin(x, 2)
    assert b.shape == (3, 8, 8)
    assert torch.allclose(b.mean((1, 2)), x.mean((1, 2)), atol=1e-5)
    with pytest.raises(ValueError):
        fourier_bin(torch.rand(15, 15), 2)
