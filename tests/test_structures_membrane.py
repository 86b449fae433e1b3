"""Procedural membranes: bilayer geometry as specified, reproducible, protein embedding."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryo_companion.structures.membrane import membrane_patch, membrane_profile


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_CACHE", str(tmp_path / "cache"))


def test_profile_two_leaflets_4nm_apart_2nm_thick():
    d = np.linspace(-60, 60, 2401)
    p = membrane_profile(d, spacing_A=40.0, leaflet_fwhm_A=20.0, leaflet_density=0.8,
                         core_density=0.0)
    peaks = d[1:-1][(p[1:-1] > p[:-2]) & (p[1:-1] > p[2:])]
    np.testing.assert_allclose(sorted(peaks), [-20.0, 20.0], atol=0.1)
    outer = d[(d > 20) & (p >= 0.4)]  # half maximum on the outer flank
    assert outer.max() - 20.0 == pytest.approx(10.0, abs=0.2)  # FWHM/2
    assert p.max() == pytest.approx(0.8, rel=1e-3)


def test_flat_patch_geometry():
    h, box = 4.0, 48
    vol, par = membrane_patch(box, h, np.random.default_rng(3), flat_probability=1.0,
                              core_density=0.0, return_params=True)
    assert vol.shape == (box,) * 3 and vol.dtype == np.float32
    assert np.isinf(par.radius_A)
    n = np.asarray(par.normal_zyx)
    # sample the density along the normal through the mid-surface point
    t = np.linspace(-40, 40, 801)
    pts = (par.offset_A + t)[:, None] * n[None, :] / h + box // 2
    prof = ndimage.map_coordinates(vol.astype(np.float64), pts.T, order=1)
    left, right = t[t < 0][np.argmax(prof[t < 0])], t[t > 0][np.argmax(prof[t > 0])]
    assert right - left == pytest.approx(40.0, abs=2 * h / 2)
    # density is constant along the membrane: a step within the plane changes nothing
    u = np.cross(n, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    p0 = (par.offset_A + right) * n / h + box // 2
    vals = ndimage.map_coordinates(vol.astype(np.float64),
                                   (p0[None, :] + np.linspace(-5, 5, 11)[:, None] * u).T,
                                   order=1)
    assert np.ptp(vals) < 0.05 * vals.max()


def test_same_seed_same_patch_and_variety():
    a = membrane_patch(32, 13.68, np.random.default_rng(7))
    b = membrane_patch(32, 13.68, np.random.default_rng(7))
    c = membrane_patch(32, 13.68, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_curved_patch_has_the_drawn_radius():
    h, box = 8.0, 48
    vol, par = membrane_patch(box, h, np.random.default_rng(11), flat_probability=0.0,
                              radius_range_A=(150.0, 150.0), core_density=0.0,
                              return_params=True)
    assert par.radius_A == pytest.approx(150.0)
    # voxels on the outer leaflet lie 150 + 20 Å or 150 - 20 Å from the sphere centre
    assert vol.max() > 0.5


def test_embedded_protein_adds_its_mass_at_the_membrane(structures_dir):
    h, box = 13.68, 40
    kw = {"flat_probability": 1.0}
    plain, par = membrane_patch(box, h, np.random.default_rng(2), return_params=True, **kw)
    withp, parp = membrane_patch(box, h, np.random.default_rng(2), protein="mb_5gjv",
                                 return_params=True, **kw)
    assert parp.protein == "mb_5gjv" and parp.normal_zyx == par.normal_zyx
    diff = withp.astype(np.float64) - plain
    prot = withp[plain < 0.01]  # outside the bilayer the protein's soluble domains are added
    assert prot.sum() * h**3 > 20e3  # Da: tens of kDa stick out of the membrane
    com = np.array(ndimage.center_of_mass(np.abs(diff)))
    expected = box // 2 + np.asarray(par.normal_zyx) * par.offset_A / h
    assert np.linalg.norm(com - expected) < 3.0  # voxels


def test_bad_parameters():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="radius_range_A"):
        membrane_patch(32, 10.0, rng, radius_range_A=(100.0, 10.0))
    with pytest.raises(ValueError, match="protein"):
        membrane_patch(32, 10.0, rng, protein="4v94")
    with pytest.raises(ValueError, match="box"):
        membrane_patch(2, 10.0, rng)
