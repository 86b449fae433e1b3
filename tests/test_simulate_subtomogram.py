"""The simplified subtomogram simulator (Che et al. 2019, III-A)."""
from __future__ import annotations

import math

import pytest
import torch
from simulator_reference import assert_same_batch, reference_sample, reference_simulate

from cryo_companion.optics import ctf, frequency_magnitude, mtf, wedge_mask
from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate.subtomogram import STAGES, Simulator
from cryo_companion.snr import snr_from_clean, snr_from_correlation

D = 24


def _templates(D: int = D) -> tuple[torch.Tensor, torch.Tensor]:
    """Two synthetic densities: a pair of Gaussian blobs and an elongated ellipsoid."""
    c = (D - 1) / 2
    z, y, x = torch.meshgrid(*[torch.arange(D, dtype=torch.float32) - c] * 3, indexing="ij")
    a = (torch.exp(-((x - 3) ** 2 + y**2 + z**2) / 8)
         + torch.exp(-((x + 3) ** 2 + (y - 2) ** 2 + z**2) / 4))
    b = torch.exp(-(x**2 / 30 + y**2 / 3 + z**2 / 8))
    return torch.stack([a, b]), torch.tensor([3, 7])


@pytest.fixture(scope="module")
def sim() -> Simulator:
    v, lab = _templates()
    return Simulator(v, lab, voxel_size_A=13.68)


def _fixed(n, **kw):
    p = {"snr": 1.0, "wedge_deg": 30.0, "defocus_um": -6.0, "cs_mm": 2.7}
    p.update(kw)
    return p


def test_shapes_and_types(sim, device):
    s = Simulator(*_templates(), device=device)
    g = torch.Generator(device=device).manual_seed(0)
    b = s.sample(5, get_preset("randomized"), g)
    assert b.noisy.shape == b.clean.shape == b.mask.shape == (5, D, D, D)
    assert b.noisy.dtype == torch.float32 and b.mask.dtype == torch.bool
    assert b.label.dtype == torch.int64 and set(b.label.tolist()) <= {3, 7}
    assert all(v.shape == (5,) for v in b.params.values())
    assert b.noisy.device.type == device.type


@pytest.mark.parametrize("snr", [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
def test_snr_measured_on_final_output_equals_requested(sim, snr):
    g = torch.Generator().manual_seed(1)
    n = 4
    R = torch.eye(3).expand(n, 3, 3)
    b = sim.simulate(torch.tensor([0, 1, 0, 1]), R,
                     _fixed(n, snr=snr, wedge_deg=torch.tensor([0.0, 20.0, 40.0, 60.0]),
                            intensity_scale=1.3, intensity_offset=0.2), g)
    est = snr_from_clean(b.clean, b.noisy)
    torch.testing.assert_close(est, torch.full((n,), snr, dtype=torch.float64), rtol=0.10, atol=0)


def test_snr_inf_is_exactly_clean_and_same_seed_adds_only_noise(sim):
    R = torch.eye(3).expand(3, 3, 3)
    idx = torch.tensor([0, 1, 1])
    a = sim.simulate(idx, R, _fixed(3, snr=float("inf")), torch.Generator().manual_seed(5))
    assert torch.equal(a.noisy, a.clean)
    b = sim.simulate(idx, R, _fixed(3, snr=0.5), torch.Generator().manual_seed(5))
    assert torch.equal(a.clean, b.clean)
    # and through sample(): the clean volumes do not depend on the SNR
    p_inf = get_preset("baseline").replace(snr=(math.inf, math.inf))
    p_fin = get_preset("baseline").replace(snr=(0.2, 0.2))
    c = sim.sample(4, p_inf, torch.Generator().manual_seed(9))
    d = sim.sample(4, p_fin, torch.Generator().manual_seed(9))
    assert torch.equal(c.noisy, c.clean) and torch.equal(c.clean, d.clean)
    torch.testing.assert_close(snr_from_clean(d.clean, d.noisy),
                               torch.full((4,), 0.2, dtype=torch.float64), rtol=1e-3, atol=0)


def test_same_seed_same_output(sim):
    a = sim.sample(6, get_preset("randomized"), torch.Generator().manual_seed(11))
    b = sim.sample(6, get_preset("randomized"), torch.Generator().manual_seed(11))
    c = sim.sample(6, get_preset("randomized"), torch.Generator().manual_seed(12))
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.mask, b.mask)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert not torch.equal(a.noisy, c.noisy)


def test_frank_al_ali_from_two_noise_realisations(sim):
    R = torch.eye(3).expand(6, 3, 3)
    idx = torch.zeros(6, dtype=torch.long)
    p = _fixed(6, snr=torch.tensor([0.1, 0.3, 1.0, 1.0, 3.0, 3.0]), wedge_deg=0.0)
    a = sim.simulate(idx, R, p, torch.Generator().manual_seed(1))
    b = sim.simulate(idx, R, p, torch.Generator().manual_seed(2))
    assert torch.equal(a.clean, b.clean)
    est = snr_from_correlation(a.noisy, b.noisy)
    # the two copies have independent noise, each of variance var(clean)/SNR: ρ/(1-ρ) ≈ SNR
    torch.testing.assert_close(est, p["snr"].double(), rtol=0.2, atol=0.02)


def test_clean_is_density_filtered_by_ctf_mtf_wedge(sim):
    """Per-sample parameters are honoured: each clean volume is its own analytic filtering."""
    n = 3
    R = torch.eye(3).expand(n, 3, 3)
    dz = torch.tensor([-2.0, -6.0, -11.0])
    cs = torch.tensor([1.5, 2.0, 3.0])
    wd = torch.tensor([0.0, 30.0, 50.0])
    bf = torch.tensor([0.0, 500.0, 1000.0])
    b = sim.simulate(torch.tensor([0, 1, 0]), R,
                     {"snr": math.inf, "wedge_deg": wd, "defocus_um": dz, "cs_mm": cs,
                      "bfactor_A2": bf}, torch.Generator().manual_seed(0), return_stages=True)
    vols, _ = _templates()
    k = frequency_magnitude((D,) * 3, 13.68, rfft=True)
    for i, t in enumerate([0, 1, 0]):
        H = (-ctf(k, dz[i].item(), cs[i].item(), bfactor_A2=bf[i].item())
             * mtf(k / (0.5 / 13.68)) * (k <= 0.5 / 13.68 + 1e-9).float()
             * wedge_mask((D,) * 3, wd[i].item(), rfft=True)[0])
        ref = torch.fft.irfftn(torch.fft.rfftn(vols[t]) * H, s=(D,) * 3)
        torch.testing.assert_close(b.clean[i], ref, atol=1e-5, rtol=1e-4)
    assert set(b.stages) == set(STAGES)
    torch.testing.assert_close(b.stages["bandlimit"], b.noisy)


def test_clean_has_no_power_in_the_missing_wedge(sim):
    n = 2
    b = sim.sample(n, get_preset("randomized"), torch.Generator().manual_seed(3))
    F = torch.fft.rfftn(b.clean, dim=(-3, -2, -1))
    W = wedge_mask((D,) * 3, b.params["wedge_deg"], rfft=True)
    # the intensity offset moves only the DC term
    F[:, 0, 0, 0] = 0
    assert (F.abs() * (1 - W)).max().item() < 1e-4 * F.abs().max().item()


def test_mask_is_threshold_of_rotated_density(sim):
    R = torch.eye(3).expand(2, 3, 3)
    b = sim.simulate(torch.tensor([0, 1]), R, _fixed(2), torch.Generator().manual_seed(0),
                     return_stages=True)
    vols, _ = _templates()
    for i in range(2):
        expect = vols[i] > 0.25 * vols[i].max()
        assert torch.equal(b.mask[i], expect)
    peak = vols.amax((1, 2, 3)).reshape(2, 1, 1, 1)
    assert torch.equal(b.mask, b.stages["density"] > 0.25 * peak)


def test_bright_particles_by_default_and_physical_sign_on_request():
    v, lab = _templates()
    R = torch.eye(3).expand(1, 3, 3)
    p = _fixed(1, snr=math.inf, wedge_deg=0.0, defocus_um=-8.0)
    centre = (slice(None), D // 2 - 2, D // 2, D // 2 + 3)
    bright = Simulator(v, lab).simulate(torch.tensor([0]), R, p).clean
    dark = Simulator(v, lab, invert_contrast=False).simulate(torch.tensor([0]), R, p).clean
    assert bright[centre].item() > 0 > dark[centre].item()
    torch.testing.assert_close(bright, -dark)


def test_box_crop_and_parity_check():
    v, lab = _templates(24)
    batch = Simulator(v, lab, box=20).sample(1, get_preset("baseline"))
    assert batch.noisy.shape == (1, 20, 20, 20)
    with pytest.raises(ValueError, match="even/odd box mismatch"):
        Simulator(v, lab, box=21)


@pytest.mark.parametrize("bad, match", [
    ({"snr": 0.0}, "SNR"), ({"snr": -1.0}, "SNR"), ({"snr": float("nan")}, "SNR"),
    ({"wedge_deg": 90.0}, "wedge angle 90"), ({"wedge_deg": -5.0}, "wedge"),
    ({"cs_mm": -0.1}, "Cs"),
])
def test_bad_parameters_rejected(sim, bad, match):
    with pytest.raises(ValueError, match=match):
        sim.simulate(torch.tensor([0]), torch.eye(3).expand(1, 3, 3), _fixed(1, **bad))


def test_bad_volumes_rejected():
    v, lab = _templates()
    v[1, 3, 4, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        Simulator(v, lab)
    with pytest.raises(ValueError, match="cubic"):
        Simulator(torch.zeros(2, 8, 8, 6), lab)
    with pytest.raises(ValueError, match="labels"):
        Simulator(_templates()[0], torch.tensor([1, 2, 3]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generator_device_must_match():
    with pytest.raises(ValueError, match="generator"):
        Simulator(*_templates()).sample(1, get_preset("baseline"), torch.Generator(device="cuda"))


def test_parseval_variance_equals_real_space_variance():
    from cryo_companion.simulate.subtomogram import _var_rfft

    for D in (9, 10):
        x = torch.randn(3, D, D, D, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5]).reshape(
            3, 1, 1, 1) + 3.0
        est = _var_rfft(torch.fft.rfftn(x, dim=(-3, -2, -1)), D**3, D % 2 == 0)
        torch.testing.assert_close(est, x.reshape(3, -1).var(1, correction=0))


@pytest.mark.parametrize("box", [24, 25])
def test_white_noise_is_white_and_hermitian_inside_the_band_limit(box):
    """The drawn noise spectrum: unit mean power everywhere inside the band limit (the k_x = 0
    and Nyquist planes included, which are made Hermitian), zero outside, and the real volume
    its irfftn gives back exactly (so Parseval's variance holds)."""
    vols, lab = _templates(box)
    s = Simulator(vols, lab, 13.68)
    N = s._scatter_band(s._white_noise_band(400, torch.Generator().manual_seed(0)))
    k = frequency_magnitude((box,) * 3, 13.68, rfft=True)
    inside = k <= 0.5 / 13.68 + 1e-9
    power = N.abs().square().mean(0)
    assert power[~inside].max().item() == 0.0
    for plane in ([0, -1] if box % 2 == 0 else [0]):
        p = power[..., plane][inside[..., plane]]
        # |N|² is chi-square with 1 (real points) or 2 degrees of freedom: 5 standard errors
        assert abs(p.mean().item() - 1) < 5 * math.sqrt(2 / (400 * p.numel())), (plane, p)
    interior = power[..., 1:-1][inside[..., 1:-1]]
    assert abs(interior.mean().item() - 1) < 0.02
    # low and high frequencies inside the band carry the same power (white, not coloured)
    low, high = inside & (k < 0.25 / 13.68), inside & (k > 0.4 / 13.68)
    assert abs(power[low].mean().item() / power[high].mean().item() - 1) < 0.05
    # Hermitian: the real volume's spectrum is exactly the drawn one
    back = torch.fft.rfftn(torch.fft.irfftn(N[:4], s=(box,) * 3, dim=(-3, -2, -1)),
                           dim=(-3, -2, -1))
    torch.testing.assert_close(back, N[:4], atol=1e-4, rtol=1e-4)


def test_need_clean_false_gives_the_same_noisy_and_mask(sim):
    a = sim.sample(5, get_preset("randomized"), torch.Generator().manual_seed(4))
    b = sim.sample(5, get_preset("randomized"), torch.Generator().manual_seed(4), need_clean=False)
    assert b.clean is None
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.mask, b.mask)
    assert b.to("cpu").clean is None


@pytest.mark.slow
def test_compiled_path_matches_eager_path():
    """compile=True (fused rotation gather and transfer function) changes only float rounding."""
    v, lab = _templates()
    eager, fused = Simulator(v, lab), Simulator(v, lab, compile=True)
    a = eager.sample(8, get_preset("randomized"), torch.Generator().manual_seed(21))
    b = fused.sample(8, get_preset("randomized"), torch.Generator().manual_seed(21))
    assert fused._bank.compile and fused._filter is not None  # no silent fallback
    for k in ("noisy", "clean"):
        x, y = getattr(a, k), getattr(b, k)
        torch.testing.assert_close(y, x, atol=1e-5 * x.abs().max().item(), rtol=0)
    assert (a.mask != b.mask).float().mean().item() < 1e-4
    torch.testing.assert_close(snr_from_clean(b.clean, b.noisy), b.params["snr"].double(),
                               rtol=1e-3, atol=0)
    # SNR = inf: noisy is exactly clean on the compiled path too
    R = torch.eye(3).expand(2, 3, 3)
    c = fused.simulate(torch.tensor([0, 1]), R, _fixed(2, snr=math.inf, intensity_scale=1.2,
                                                       intensity_offset=0.1))
    assert torch.equal(c.noisy, c.clean)


def test_simulator_augmentation_is_randomization_augment_intensity(sim):
    """The simulator applies the augmentation in Fourier space; it must be exactly the affine map
    of ``randomization.augment_intensity`` (x' = m + g (x − m) + o s, m and s of the clean volume)
    applied to the un-augmented output."""
    from cryo_companion.simulate.randomization import augment_intensity

    R = torch.eye(3).expand(3, 3, 3)
    idx = torch.tensor([0, 1, 1])
    gain = torch.tensor([0.8, 1.0, 1.25])
    off = torch.tensor([0.2, -0.1, 0.0])
    base = sim.simulate(idx, R, _fixed(3, snr=0.3), torch.Generator().manual_seed(4))
    aug = sim.simulate(idx, R, _fixed(3, snr=0.3, intensity_scale=gain, intensity_offset=off),
                       torch.Generator().manual_seed(4))
    noisy, clean = augment_intensity(base.noisy.double(), gain.double(), off.double(),
                                     ref=base.clean.double(), others=(base.clean.double(),))
    torch.testing.assert_close(aug.noisy.double(), noisy, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(aug.clean.double(), clean, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("box", [24, 25])
def test_band_variance_equals_the_variance_of_the_scattered_spectrum(box):
    """The filtered noise's variance is taken from its band coefficients alone (``_var_band``);
    it must be the Parseval variance of the whole half grid and that of the real volume."""
    from cryo_companion.simulate.subtomogram import _var_rfft

    vols, lab = _templates(box)
    s = Simulator(vols, lab, 13.68)
    Z = s._white_noise_band(3, torch.Generator().manual_seed(2)) * torch.tensor(
        [1.0, 2.0, 0.5]).reshape(3, 1)
    Z[:, 0] += 7.0  # a mean, which the variance must ignore
    dense = s._scatter_band(Z)
    real = torch.fft.irfftn(dense, s=(box,) * 3, dim=(-3, -2, -1))
    band = s._var_band(Z, box**3)
    torch.testing.assert_close(band, _var_rfft(dense, box**3, box % 2 == 0), rtol=1e-5, atol=0)
    torch.testing.assert_close(band.double(), real.reshape(3, -1).double().var(1, correction=0),
                               rtol=1e-4, atol=0)


# --------------------------------------------------------------------------- the named steps
@pytest.mark.parametrize("box", [24, 25])
@pytest.mark.parametrize("return_stages, need_clean", [(False, True), (False, False),
                                                        (True, True), (True, False)])
def test_named_steps_equal_the_monolithic_simulate_bit_for_bit(device, box, return_stages,
                                                               need_clean):
    s = Simulator(*_templates(box), device=device)
    for preset in ("randomized", "baseline"):
        kw = {"return_stages": return_stages, "need_clean": need_clean}
        a = s.sample(5, get_preset(preset), torch.Generator(device=device).manual_seed(8), **kw)
        b = reference_sample(s, 5, get_preset(preset),
                              torch.Generator(device=device).manual_seed(8), **kw)
        assert_same_batch(a, b)
    R = torch.eye(3, device=device).expand(3, 3, 3)
    p = _fixed(3, snr=torch.tensor([math.inf, 0.5, 2.0]), intensity_scale=1.2,
               intensity_offset=0.1, bfactor_A2=torch.tensor([0.0, 100.0, 500.0]))
    a = s.simulate(torch.tensor([0, 1, 1]), R, p, torch.Generator(device=device).manual_seed(3),
                   return_stages=return_stages, need_clean=need_clean)
    b = reference_simulate(s, torch.tensor([0, 1, 1]), R, p,
                            torch.Generator(device=device).manual_seed(3),
                            return_stages=return_stages, need_clean=need_clean)
    assert_same_batch(a, b)


@pytest.mark.slow
def test_compiled_named_steps_equal_the_monolithic_simulate_bit_for_bit():
    s = Simulator(*_templates(), compile=True)
    assert s._filter is not None
    for rs in (False, True):
        a = s.sample(6, get_preset("randomized"), torch.Generator().manual_seed(5),
                     return_stages=rs)
        b = reference_sample(s, 6, get_preset("randomized"), torch.Generator().manual_seed(5),
                              return_stages=rs)
        assert_same_batch(a, b)


def test_stage_timer_is_an_instance_hook_called_at_the_end_of_each_stage(sim):
    from cryo_companion.simulate.subtomogram import TIMED_STAGES

    seen: list[str] = []
    with sim.timed(seen.append) as same:
        assert same is sim
        b = sim.sample(3, get_preset("randomized"), torch.Generator().manual_seed(1))
    assert seen[0] == "parameters" and seen[-1] == "parameters"
    assert set(seen) == set(TIMED_STAGES)
    # pipeline order: the first time each stage ends
    assert sorted(set(seen), key=seen.index) == list(TIMED_STAGES)
    n_calls = len(seen)
    sim.sample(3, get_preset("randomized"), torch.Generator().manual_seed(1))
    assert len(seen) == n_calls  # the hook is gone after the block
    # timing changes nothing
    c = sim.sample(3, get_preset("randomized"), torch.Generator().manual_seed(1))
    assert torch.equal(b.noisy, c.noisy)
    with pytest.raises(KeyError), sim.timed(lambda stage: {}[stage]):
        sim.sample(1, get_preset("baseline"))
    sim.sample(1, get_preset("baseline"))  # restored after an exception too


def test_compiled_filter_fallback_is_decided_once_at_construction(monkeypatch):
    """A compiled filter that fails warns once, when the simulator is made; later calls take the
    eager filter silently (pytest turns warnings into errors) and give the eager results."""
    def broken_compile(fn, **kw):  # the filter's backend fails; the rotation stays eager
        def run(*args, **kwargs):
            raise RuntimeError("no backend")
        return run if fn.__name__ == "_transfer_fused" else fn

    v, lab = _templates()
    eager = Simulator(v, lab)
    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="Fourier filter failed.*no backend"):
        s = Simulator(v, lab, compile=True)
    assert s._filter is None
    monkeypatch.undo()
    a = s.sample(4, get_preset("randomized"), torch.Generator().manual_seed(2))
    b = eager.sample(4, get_preset("randomized"), torch.Generator().manual_seed(2))
    # (the rotation here is the uncompiled gather: equal to grid_sample to float rounding)
    torch.testing.assert_close(a.noisy, b.noisy, atol=1e-5 * b.noisy.abs().max().item(), rtol=0)
