"""Map resampling: mass conserved, there-and-back fidelity, analytic Gaussians, centring."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cryo_companion.mrc import read_mrc
from cryo_companion.structures.maps import (
    center_of_mass,
    pearson_r,
    resample_volume,
    subtract_background,
)


def _gaussian(shape, center_zyx, sigma_vox):
    """Sampled normalised 3-D Gaussian (sum 1 for sigma well above half a voxel)."""
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij")
    r2 = sum((g - c) ** 2 for g, c in zip(grids, center_zyx))
    return torch.exp(-r2 / (2 * sigma_vox**2)) / (2 * math.pi * sigma_vox**2) ** 1.5


def _centred_map(structures_dir, name):
    m = subtract_background(read_mrc(structures_dir / "maps_10A" / f"{name}.mrc.gz").data)
    return resample_volume(m, 10.0, 10.0, center_zyx=center_of_mass(m))


@pytest.mark.parametrize("name", ["1bxn", "4v94", "4v7r", "6qzp"])
@pytest.mark.parametrize("other_A", [6.84, 13.68])
def test_there_and_back_conserves_mass_and_shape(structures_dir, name, other_A):
    orig = _centred_map(structures_dir, name)
    there = resample_volume(orig, 10.0, other_A, renormalize=False)
    back = resample_volume(there, other_A, 10.0, shape=orig.shape, renormalize=False)
    # the interpolation itself conserves mass (no renormalisation here)
    assert float(there.sum()) == pytest.approx(float(orig.sum()), rel=0.01)
    assert float(back.sum()) == pytest.approx(float(orig.sum()), rel=0.01)
    assert pearson_r(back, orig) >= 0.98
    # with renormalisation (the default) the sum is exact up to the ringing cropped off
    assert float(resample_volume(orig, 10.0, other_A).sum()) == pytest.approx(
        float(orig.sum()), rel=1e-3)


def test_gaussian_resampled_is_the_analytic_gaussian():
    # a Gaussian of sigma 2 voxels at 10 Å is one of sigma 4 voxels at 5 Å (and 8x lower per voxel)
    src = _gaussian((24, 24, 24), (12.0, 12.0, 12.0), 2.0) * 1000.0
    out = resample_volume(src, 10.0, 5.0, shape=(48, 48, 48))
    expect = _gaussian((48, 48, 48), (24.0, 24.0, 24.0), 4.0) * 1000.0
    assert float(out.sum()) == pytest.approx(1000.0, rel=1e-6)
    assert float(out.max()) == pytest.approx(float(expect.max()), rel=1e-3)
    torch.testing.assert_close(out, expect, atol=2e-3 * float(expect.max()), rtol=0)


def test_subvoxel_centring_moves_the_centre_of_mass():
    src = _gaussian((32, 32, 32), (14.3, 17.6, 16.25), 2.0)
    com = center_of_mass(src)
    torch.testing.assert_close(com, torch.tensor([14.3, 17.6, 16.25], dtype=torch.float64),
                               atol=1e-6, rtol=0)
    out = resample_volume(src, 10.0, 13.68, shape=(25, 25, 25), center_zyx=com)
    torch.testing.assert_close(center_of_mass(out),
                               torch.tensor([12.0, 12.0, 12.0], dtype=torch.float64),
                               atol=0.02, rtol=0)
    ratio = 10.0 / 13.68
    expect = _gaussian((25, 25, 25), (12.0, 12.0, 12.0), 2.0 * ratio)
    assert pearson_r(out, expect) > 0.999


def test_shipped_maps_centre_on_the_box_centre(structures_dir):
    for name in ("1qvr", "3d2f", "mb_5gjv"):
        c = _centred_map(structures_dir, name)
        n = c.shape[0]
        torch.testing.assert_close(center_of_mass(c.clamp_min(0)),
                                   torch.full((3,), float(n // 2), dtype=torch.float64),
                                   atol=0.1, rtol=0)


def test_subtract_background():
    v = torch.zeros(16, 16, 16, dtype=torch.float64) + 3.0
    v[6:10, 6:10, 6:10] += 5.0
    out = subtract_background(v)
    assert float(out.min()) == 0.0 and float(out.sum()) == pytest.approx(5.0 * 64)
    noisy = torch.full((16, 16, 16), -0.5, dtype=torch.float64)
    noisy[8, 8, 8] = 1.0
    assert float(subtract_background(noisy).sum()) == pytest.approx(1.5)
    assert float(subtract_background(noisy, clip=False).min()) == pytest.approx(0.0)


def test_pearson_r():
    a = torch.arange(10.0)
    assert pearson_r(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson_r(a, -a) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="constant"):
        pearson_r(a, torch.ones(10))
    with pytest.raises(ValueError, match="shapes differ"):
        pearson_r(a, torch.ones(9))


@pytest.mark.parametrize("bad, match", [
    (np.full((8, 8, 8), np.nan), "NaN"),
    (np.zeros((8, 8)), r"\(z, y, x\)"),
])
def test_bad_volumes(bad, match):
    with pytest.raises(ValueError, match=match):
        resample_volume(bad, 10.0, 5.0)
    with pytest.raises(ValueError, match=match):
        subtract_background(bad)


def test_bad_voxel_sizes():
    v = np.zeros((8, 8, 8))
    for vs in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            resample_volume(v, vs, 5.0)
        with pytest.raises(ValueError, match="positive"):
            resample_volume(v, 10.0, vs)
    with pytest.raises(ValueError, match="no positive mass"):
        center_of_mass(torch.zeros(4, 4, 4))


@settings(max_examples=20, deadline=None, database=None, derandomize=True)
@given(ratio=st.floats(0.5, 2.0), cz=st.floats(-2.0, 2.0), cy=st.floats(-2.0, 2.0),
       sigma=st.floats(1.2, 2.5))
def test_mass_and_centre_property(ratio, cz, cy, sigma):
    # any voxel-size ratio, any sub-voxel offset: mass within 1 % before renormalisation and
    # the centre of mass where it was asked to go
    src = _gaussian((20, 20, 20), (10.0 + cz, 10.0 + cy, 10.0), sigma)
    # (the output box has room for the anti-alias filter's ringing around small particles)
    out = resample_volume(src, 10.0, 10.0 * ratio, center_zyx=center_of_mass(src),
                          shape=(32, 32, 32), renormalize=False)
    assert float(out.sum()) == pytest.approx(float(src.sum()), rel=0.01)
    c = torch.tensor([n // 2 for n in out.shape], dtype=torch.float64)
    torch.testing.assert_close(center_of_mass(out.clamp_min(0)), c, atol=0.05, rtol=0)
