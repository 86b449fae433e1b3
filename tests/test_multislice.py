"""Multislice propagation: unitarity, the weak-phase limit, the defocus of a slice, thick
specimens."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cryo_companion import optics
from cryo_companion.simulate.multislice import (
    fresnel_propagate,
    image_intensity,
    interaction_constant,
    lens_transfer,
    multislice_exit_wave,
    transmission,
    wave_k2,
)
from cryo_companion.simulate.tiltseries import Imaging, simulate_tilt_series, snr_noise

KV, CS, A, PX = 300.0, 2.7, 0.08, 10.0
SIGMA = interaction_constant(KV)
LAM = float(optics.electron_wavelength_A(KV))


def _blobs(n: int, size: int = 48, amp: float = 20.0, seed: int = 0) -> torch.Tensor:
    """(n, size, size) smooth random projected potentials (V·Å)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, 1, size, size, generator=g)
    return torch.nn.functional.avg_pool2d(w, 3, 1, 1)[:, 0] * amp


def _weak_phase(slabs: torch.Tensor, heights_A, defocus_um: float, b: float = 0.0) -> torch.Tensor:
    """1 + 2 F⁻¹{Σ_k CTF(Δf + t_k) Φ_k}: the first-order image of slices (K, Y, X)."""
    k = optics.frequency_magnitude(slabs.shape[-2:], PX, slabs.device)
    out = torch.zeros(slabs.shape[-2:], device=slabs.device)
    for v, h in zip(slabs, heights_A):
        c = optics.ctf(k, defocus_um + float(h) * 1e-4, CS, voltage_kv=KV, amplitude_contrast=A,
                       bfactor_A2=b)
        out += 2 * torch.fft.ifft2(c * torch.fft.fft2(v * SIGMA)).real
    return 1 + out


def test_propagation_is_unitary_composes_and_inverts(device):
    g = torch.Generator().manual_seed(1)
    w = torch.complex(torch.randn(2, 32, 40, generator=g), torch.randn(2, 32, 40, generator=g))
    w = w.to(device)
    k2 = wave_k2((32, 40), PX, device)
    p = fresnel_propagate(w, 5000.0, k2, LAM)
    assert float(p.abs().pow(2).sum()) == pytest.approx(float(w.abs().pow(2).sum()), rel=1e-5)
    two = fresnel_propagate(fresnel_propagate(w, 3000.0, k2, LAM), 2000.0, k2, LAM)
    assert torch.allclose(p, two, atol=1e-4)
    back = fresnel_propagate(p, -5000.0, k2, LAM)
    assert torch.allclose(back, w, atol=1e-4)
    # a plane wave does not change
    ones = torch.ones(1, 32, 40, dtype=torch.complex64, device=device)
    assert torch.allclose(fresnel_propagate(ones, 1e4, k2, LAM), ones, atol=1e-5)


def test_transmission_phase_and_absorption():
    v = torch.tensor([[0.0, 100.0]])
    t0 = transmission(v, KV, 0.0)
    assert torch.allclose(t0.abs(), torch.ones(1, 2))               # pure phase: |t| = 1
    assert float(t0[0, 1].angle()) == pytest.approx(SIGMA * 100.0, rel=1e-5)
    ta = transmission(v, KV, A)
    assert float(ta[0, 1].abs()) == pytest.approx(np.exp(-A * SIGMA * 100.0), rel=1e-6)
    assert float(ta[0, 1].angle()) == pytest.approx(np.sqrt(1 - A * A) * SIGMA * 100.0, rel=1e-5)
    with pytest.raises(ValueError, match="amplitude_contrast"):
        transmission(v, KV, 1.0)


def test_pure_phase_specimen_keeps_the_number_of_electrons(device):
    slabs = _blobs(6, amp=400.0).to(device)[None]                   # strong: phases ~ 0.3 rad
    h = 50.0 * (np.arange(6)[::-1] - 2.5)
    w = multislice_exit_wave(slabs, h, PX, KV, 0.0)
    assert float(w.abs().pow(2).mean()) == pytest.approx(1.0, rel=1e-5)
    img = image_intensity(w, PX, -3.0, CS, KV, 0.0)                 # lens without envelope
    assert float(img.mean()) == pytest.approx(1.0, rel=1e-4)


def test_single_slice_is_the_projection_approximation_in_the_weak_phase_limit(device):
    v = _blobs(1).to(device)
    errs = []
    for s in (1.0, 2.0, 4.0):
        w = multislice_exit_wave(s * v[None], [0.0], PX, KV, A)
        img = image_intensity(w, PX, -3.0, CS, KV, 100.0)[0]
        lin = _weak_phase(s * v, [0.0], -3.0, 100.0)
        assert float((lin - 1).abs().max()) > 10 * float((img - lin).abs().max())
        errs.append(float((img - lin).abs().max()))
    # the residual is second order in the phase: x 4 for x 2 the potential
    assert errs[1] / errs[0] == pytest.approx(4.0, rel=0.15)
    assert errs[2] / errs[1] == pytest.approx(4.0, rel=0.15)


@pytest.mark.parametrize("height_A", [2000.0, -2000.0])
def test_a_slice_at_height_t_is_imaged_with_defocus_plus_t(height_A):
    """An underfocused lens images a plane above the specimen: higher slices, less underfocus."""
    v = _blobs(1)
    w = multislice_exit_wave(v[None], [height_A], PX, KV, A)
    img = image_intensity(w, PX, -3.0, CS, KV, 100.0)[0]
    plus = float((img - _weak_phase(v, [height_A], -3.0, 100.0)).abs().max())
    minus = float((img - _weak_phase(v, [-height_A], -3.0, 100.0)).abs().max())
    assert plus < minus / 10


def test_empty_slices_only_propagate():
    v = _blobs(2)
    a = multislice_exit_wave(v[None], [200.0, -200.0], PX, KV, A)
    gap = torch.zeros(5, *v.shape[1:])
    stacked = torch.cat([v[:1], gap, v[1:]])[None]
    h = np.linspace(200.0, -200.0, 7)
    b = multislice_exit_wave(stacked, h, PX, KV, A)
    assert torch.allclose(a, b, atol=1e-5)
    empty = multislice_exit_wave(torch.zeros(2, 3, 8, 8), [1.0, 0.0, -1.0], PX, KV)
    assert torch.equal(empty, torch.ones(2, 8, 8, dtype=torch.complex64))


def test_multislice_departs_from_the_projection_approximation_as_the_specimen_thickens():
    """5 nm slices of the same density: the error of one projected weak-phase image grows with
    the thickness (both the higher orders of the phase and the defocus spread)."""
    rel = []
    for n in (1, 4, 16, 64):
        slabs = _blobs(n, amp=60.0, seed=n)
        h = 50.0 * (np.arange(n)[::-1] - (n - 1) / 2)
        img = image_intensity(multislice_exit_wave(slabs[None], h, PX, KV, A), PX, -3.0, CS, KV,
                              100.0)[0]
        proj = _weak_phase(slabs.sum(0, keepdim=True), [0.0], -3.0, 100.0)
        rel.append(float((img - proj).norm() / (proj - 1).norm()))
    assert rel[0] < 0.02
    assert all(b > a for a, b in itertools.pairwise(rel))
    assert rel[-1] > 0.05


def test_lens_transfer_is_the_ctf_in_its_imaginary_part():
    """H = exp(−iχ) E: for the weak-phase image, −Im(H) √(1−A²) ... reduces to optics.ctf."""
    H = lens_transfer((16, 16), PX, -3.0, CS, KV, 50.0)[0]
    k = optics.frequency_magnitude((16, 16), PX)
    # sin(χ − asin A) E = −[√(1−A²) Im(H) + A Re(H)]
    got = -(np.sqrt(1 - A * A) * H.imag + A * H.real)
    want = optics.ctf(k, -3.0, CS, voltage_kv=KV, amplitude_contrast=A, bfactor_A2=50.0)
    assert torch.allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="bfactor"):
        lens_transfer((4, 4), PX, -3.0, CS, KV, -1.0)


def _thin_scene(Z=20, Y=32, X=32):
    pot = torch.zeros(Z, Y, X)
    pot[8:12, 12:20, 10:22] = 2.5
    pot[9:11, 4:8, 4:8] = 1.0
    return pot


def test_tilt_series_multislice_agrees_with_projection_for_a_thin_specimen(device):
    pot = _thin_scene().to(device)
    kw = {"tilt_min_deg": -30, "tilt_max_deg": 30, "tilt_step_deg": 30, "defocus_um": -3.0,
          "defocus_tilt_sd_um": 0.0, "slab_thickness_A": 50.0, "amplitude_contrast": A}
    g = torch.Generator().manual_seed(0)
    p = simulate_tilt_series(pot, PX, Imaging(**kw), g, noise=False)
    m = simulate_tilt_series(pot, PX, Imaging(propagation="multislice", **kw),
                             torch.Generator().manual_seed(0), noise=False)
    # the projection path drops the mean phase (no contrast from a uniform layer); multislice
    # keeps the mean darkening by absorption (amplitude contrast): compare about the means
    d = (p.images - p.images.mean((1, 2), keepdim=True)) - (m.images - m.images.mean((1, 2),
                                                                                      keepdim=True))
    assert float(d.norm() / p.images.norm()) < 0.05
    assert float(m.images.mean()) < 0 and abs(float(p.images.mean())) < 1e-6


def test_detector_crop_and_options(device):
    pot = _thin_scene(Y=40, X=48).to(device)
    kw = {"tilt_min_deg": -20, "tilt_max_deg": 20, "tilt_step_deg": 20,
          "defocus_tilt_sd_um": 0.0, "slab_thickness_A": 50.0, "propagation": "multislice",
          "detector_mtf": False, "bfactor_A2": 200.0}
    full = simulate_tilt_series(pot, PX, Imaging(**kw), noise=False)
    crop = simulate_tilt_series(pot, PX, Imaging(**kw), noise=False, detector_shape=(20, 24))
    assert crop.images.shape == (3, 20, 24)
    assert torch.allclose(crop.images, full.images[:, 10:30, 12:36], atol=1e-6)
    with pytest.raises(ValueError, match="even margin"):
        simulate_tilt_series(pot, PX, Imaging(**kw), noise=False, detector_shape=(21, 24))
    # structural noise: only with noise, and reproducible
    im = Imaging(structural_noise_sd_V=0.5, noise_model="snr", snr=0.1, **kw)
    a = simulate_tilt_series(pot, PX, im, torch.Generator().manual_seed(3))
    b = simulate_tilt_series(pot, PX, im, torch.Generator().manual_seed(3))
    assert torch.equal(a.images, b.images)
    clean = simulate_tilt_series(pot, PX, im, torch.Generator().manual_seed(3), noise=False)
    assert torch.allclose(clean.images, full.images, atol=1e-6)
    snr = clean.images.var(dim=(1, 2)) / (a.images - clean.images).var(dim=(1, 2))
    assert float(snr.max()) < 0.1                       # structural noise on top of snr 0.1


def test_imaging_refuses_unknown_options():
    with pytest.raises(ValueError, match="propagation"):
        Imaging(propagation="fresnel")
    with pytest.raises(ValueError, match="snr > 0"):
        Imaging(noise_model="snr")
    with pytest.raises(ValueError, match="noise_model"):
        Imaging(noise_model="gauss")
    with pytest.raises(ValueError, match="structural_noise_sd_V"):
        Imaging(structural_noise_sd_V=-1.0)


def test_snr_noise_has_the_requested_snr_and_half_follows_the_ctf():
    g = torch.Generator().manual_seed(0)
    img = torch.randn(128, 128, generator=g) * 0.3
    k = optics.frequency_magnitude((128, 128), PX)
    c = optics.ctf(k, -3.0, CS, voltage_kv=KV, amplitude_contrast=A)
    n = snr_noise(img, 0.05, c, g)
    assert float(img.var() / n.var()) == pytest.approx(0.05, rel=0.05)
    # power spectrum: white half + CTF² half (normalised): P(k) ∝ 1 + c² / mean(c²)
    P = torch.fft.fft2(n).abs() ** 2
    want = 1 + c ** 2 / (c ** 2).mean()
    near_zero = c.abs() < 0.1
    peak = c.abs() > 0.9
    ratio = float(P[peak].mean() / P[near_zero].mean())
    assert ratio == pytest.approx(float(want[peak].mean() / want[near_zero].mean()), rel=0.1)
    with pytest.raises(ValueError, match="snr must be > 0"):
        snr_noise(img, 0.0, c, g)


def test_narrow_detector_sees_the_central_columns_and_margin_field_agrees(device):
    from cryo_companion.simulate.tiltseries import project, project_slabs

    pot = _thin_scene(Z=16, Y=24, X=48).to(device)
    full = project(pot, [-50.0, 20.0], PX)
    narrow, _ = project_slabs(pot, [-50.0, 20.0], PX, 40.0, width=32)
    assert narrow.shape[-1] == 32
    assert torch.allclose(narrow.sum(1), full[..., 8:40], atol=1e-4)
    # simulating the recorded field plus a margin instead of the whole volume
    pot = torch.zeros(16, 24, 48, device=device)
    pot[6:10, 10:14, 20:28] = 2.5
    kw = {"tilt_min_deg": -40, "tilt_max_deg": 40, "tilt_step_deg": 40,
          "defocus_tilt_sd_um": 0.0, "slab_thickness_A": 50.0, "propagation": "multislice",
          "detector_mtf": False, "bfactor_A2": 400.0}
    a = simulate_tilt_series(pot, PX, Imaging(**kw), noise=False, detector_shape=(8, 16))
    b = simulate_tilt_series(pot, PX, Imaging(**kw), noise=False, detector_shape=(8, 16),
                             field_margin_px=8)
    assert b.images.shape == a.images.shape == (3, 8, 16)
    assert float((a.images - b.images).norm() / a.images.norm()) < 0.005
    with pytest.raises(ValueError, match="field_margin_px needs a detector_shape"):
        simulate_tilt_series(pot, PX, Imaging(**kw), noise=False, field_margin_px=4)


@pytest.mark.parametrize("z_index", [30, 170])
def test_projection_and_multislice_agree_on_the_defocus_of_mass_far_from_the_eucentric_plane(
        z_index):
    """Mass 700 Å above (or below) the eucentric height: both paths image it with Δf + t.

    The projection path's per-slab defocus must carry the multislice path's sign (with the old
    ``Δf − t`` the two differ by a defocus of 2t = 0.14 µm, and this test fails)."""
    pot = torch.zeros(200, 32, 32)
    pot[z_index - 2:z_index + 2, 12:20, 10:22] = 2.5     # height (z − 99.5) · 10 Å ≈ ∓700 Å
    kw = {"tilt_min_deg": -10, "tilt_max_deg": 10, "tilt_step_deg": 10, "defocus_um": -1.0,
          "defocus_tilt_sd_um": 0.0, "slab_thickness_A": 50.0, "amplitude_contrast": A,
          "ice_thickness_A": 0.0}
    p = simulate_tilt_series(pot, PX, Imaging(**kw), noise=False).images
    m = simulate_tilt_series(pot, PX, Imaging(propagation="multislice", **kw), noise=False).images
    p, m = p - p.mean((1, 2), keepdim=True), m - m.mean((1, 2), keepdim=True)
    err = float((p - m).norm() / m.norm())
    assert err < 0.05


def test_legacy_signs_reproduce_the_old_projection_and_nothing_else():
    """``legacy_signs`` (only for regenerating the first frozen test domain) images mass above the
    eucentric plane at Δf − t with the old Cs sign: far from the plane it differs from the
    physical default; at the plane (0°, Cs = 0) it hardly does."""
    kw = {"tilt_min_deg": -10, "tilt_max_deg": 10, "tilt_step_deg": 10, "defocus_um": -1.0,
          "defocus_tilt_sd_um": 0.0, "slab_thickness_A": 50.0, "amplitude_contrast": A,
          "ice_thickness_A": 0.0}

    def change(z0: int, **extra: float) -> float:
        pot = torch.zeros(200, 32, 32)
        pot[z0:z0 + 4, 12:20, 10:22] = 2.5
        new = simulate_tilt_series(pot, PX, Imaging(**{**kw, **extra}), noise=False).images[1]
        old = simulate_tilt_series(pot, PX, Imaging(legacy_signs=True, **{**kw, **extra}),
                                   noise=False).images[1]
        new, old = new - new.mean(), old - old.mean()
        return float((new - old).norm() / new.norm())

    assert change(28) > 0.05                       # 700 Å above the plane
    assert change(98, cs_mm=0.0) < 0.01            # at the plane, no Cs
