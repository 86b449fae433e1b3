"""Imaging modes of the tomogram simulator: realism added one step at a time."""
from __future__ import annotations

import pytest
import torch

from cryo_companion.simulate.scene import SceneSpec, make_scene, make_template
from cryo_companion.simulate.tiltseries import Imaging
from cryo_companion.simulate.tomogram import (
    IMAGING_MODES,
    MODE_CONTRAST,
    image_scene,
    simulate_tomogram,
)


def _blob(D=15):
    z, y, x = torch.meshgrid(*(torch.arange(D, dtype=torch.float32) - D // 2,) * 3, indexing="ij")
    return (0.8 * torch.exp(-(x ** 2 + (1.5 * y) ** 2 + z ** 2) / 8)).numpy()


@pytest.fixture(scope="module")
def scene():
    t = {"a": make_template("a", _blob(), 10.0)}
    spec = SceneSpec(shape=(32, 48, 48), voxel_size_A=10.0, ice_thickness_A=260.0,
                     counts={"a": 3}, contact_fraction=0.0, ice_sd_V=0.0)
    return make_scene(spec, t, ["a"], torch.Generator().manual_seed(2))


IMAGING = Imaging(tilt_min_deg=-60, tilt_max_deg=60, tilt_step_deg=4, defocus_um=-3.0,
                  defocus_tilt_sd_um=0.2, total_dose_e_A2=80.0, ice_thickness_A=260.0)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def _lowpass(v: torch.Tensor, cutoff: float = 0.12) -> torch.Tensor:
    f = torch.fft.rfftn(v.double())
    k = torch.sqrt(sum(g ** 2 for g in torch.meshgrid(
        torch.fft.fftfreq(v.shape[0]), torch.fft.fftfreq(v.shape[1]),
        torch.fft.rfftfreq(v.shape[2]), indexing="ij")))
    return torch.fft.irfftn(f * (k < cutoff), s=v.shape)


def test_ideal_is_the_potential_on_the_tomogram_grid(scene):
    s1, t1 = image_scene(scene, IMAGING, 1, torch.Generator(), "ideal")
    assert s1 is None and torch.equal(t1, scene.potential_V)
    _, t2 = image_scene(scene, IMAGING, 2, torch.Generator(), "ideal")
    assert t2.shape == (16, 24, 24)
    # voxel averaging keeps the integral of the potential
    assert float(t2.sum()) * 8 == pytest.approx(float(scene.potential_V.sum()), rel=1e-5)


def test_projection_mode_reconstructs_the_potential_bright(scene):
    ideal = image_scene(scene, IMAGING, 1, torch.Generator(), "ideal")[1]
    _, proj = image_scene(scene, IMAGING, 1, torch.Generator(), "projection")
    wide = Imaging(tilt_min_deg=-86, tilt_max_deg=86, tilt_step_deg=2, ice_thickness_A=260.0)
    _, proj_wide = image_scene(scene, wide, 1, torch.Generator(), "projection")
    c, c_wide = _corr(_lowpass(proj), _lowpass(ideal)), _corr(_lowpass(proj_wide), _lowpass(ideal))
    assert c > 0.5          # mass bright, as MODE_CONTRAST says
    assert c_wide > 0.85    # a nearly full tilt range nearly inverts the projection
    assert c_wide > c       # the missing wedge costs fidelity


def test_ctf_and_full_modes_are_dark_and_paired(scene):
    ideal = image_scene(scene, IMAGING, 1, torch.Generator(), "ideal")[1]
    g = torch.Generator().manual_seed(5)
    s_ctf, ctf = image_scene(scene, IMAGING, 1, torch.Generator().set_state(g.get_state()), "ctf")
    s_full, full = image_scene(scene, IMAGING, 1, torch.Generator().set_state(g.get_state()),
                               "full")
    assert MODE_CONTRAST["ctf"] == MODE_CONTRAST["full"] == "dark"
    assert _corr(_lowpass(ctf), _lowpass(ideal)) < -0.3       # underfocus: mass dark
    # same generator state: same defocus errors; the only difference is the shot noise
    assert s_ctf.defocus_um.tolist() == s_full.defocus_um.tolist()
    assert 0.0 < _corr(full, ctf) < 1.0
    # "full" is the test domain's imaging exactly
    _, ref = simulate_tomogram(scene, IMAGING, 1, torch.Generator().set_state(g.get_state()))
    assert torch.equal(full, ref)


def test_bad_mode_or_binning():
    t = {"a": make_template("a", _blob(), 10.0)}
    s = make_scene(SceneSpec(shape=(18, 24, 24), voxel_size_A=10.0, ice_thickness_A=150.0,
                             counts={"a": 1}), t, ["a"], torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="unknown imaging mode"):
        image_scene(s, IMAGING, 1, torch.Generator(), "perfect")
    with pytest.raises(ValueError, match="divide"):
        image_scene(s, IMAGING, 5, torch.Generator(), "ideal")
    assert IMAGING_MODES == ("ideal", "projection", "ctf", "full")
