"""Targets' own densities, level masks and alignment by true poses (simulate.targets)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cryo_companion import rotation
from cryo_companion.simulate.scene import SceneSpec, make_scene, make_template
from cryo_companion.simulate.targets import align_by_poses, level_masks, target_densities
from cryo_companion.simulate.tomogram import extract_targets

D = 20


def _blob() -> np.ndarray:
    """An asymmetric template: a big lobe and a small one 3 voxels along +x."""
    n = 15
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) - n // 2,) * 3, indexing="ij")
    return (0.6 * np.exp(-(x ** 2 + (1.5 * y) ** 2 + z ** 2) / 5)
            + 0.4 * np.exp(-((x - 3) ** 2 + y ** 2 + z ** 2) / 2)).astype(np.float32)


def _com(v: torch.Tensor) -> np.ndarray:
    d = v.double().numpy()
    zz, yy, xx = np.indices(d.shape)
    return np.array([(d * a).sum() / d.sum() for a in (xx, yy, zz)])


@pytest.fixture(scope="module")
def boxed():
    t = {"a": make_template("a", _blob(), 10.0)}
    spec = SceneSpec(shape=(24, 64, 64), voxel_size_A=10.0, ice_thickness_A=100.0,
                     counts={"a": 12}, membrane_class=None, contact_fraction=0.5)
    scene = make_scene(spec, t, ["a"], torch.Generator().manual_seed(1))
    h = D // 2
    targets = []
    for i, p in enumerate(scene.particles):
        c = np.round(np.array(p["centre_xyz_vox"])).astype(int)
        if np.all(c - h >= 0) and np.all(c - h + D <= np.array([64, 64, 24])):
            targets.append((i, tuple(p["centre_xyz_vox"])))
    _, masks, off = extract_targets(scene, scene.potential_V, targets, D, 1)
    dens = target_densities(scene, t, targets, D, 1)
    eul = np.array([scene.particles[i]["euler_zyz_deg"] for i, _ in targets])
    return scene, t, targets, masks, off, dens, eul


def test_densities_hold_the_templates_mass_and_envelope(boxed) -> None:
    _scene, t, targets, masks, _off, dens, _eul = boxed
    assert len(targets) >= 3
    mass = float(t["a"].density.sum())
    for j in range(len(targets)):
        assert float(dens[j].sum()) == pytest.approx(mass, rel=0.02)
        env = dens[j] >= t["a"].threshold
        assert float((env == masks[j]).float().mean()) > 0.995   # the scene's occupancy


def test_level_masks_keep_the_level_and_leave_out_neighbours(boxed) -> None:
    scene, t, targets, _masks, _off, dens, _eul = boxed
    lm = level_masks(scene, t, targets, dens, D, 1, 0.2)
    thr = 0.2 * float(t["a"].density.max())
    for j, (pid, (cx, cy, cz)) in enumerate(targets):
        assert bool(lm[j].any())
        assert bool((dens[j][lm[j]] >= thr).all())
        s = np.round([cz, cy, cx]).astype(int) - D // 2
        occ = scene.occupancy[s[0]:s[0] + D, s[1]:s[1] + D, s[2]:s[2] + D]
        assert not bool((lm[j] & (occ != 0) & (occ != pid + 1)).any())


def test_aligned_targets_superpose_in_the_template_frame(boxed) -> None:
    _scene, t, targets, _masks, off, dens, eul = boxed
    al = align_by_poses(dens, eul, off)
    # every copy now has the template's centre of mass offset about the box centre (D - 1) / 2
    tc = _com(t["a"].density) - (t["a"].density.shape[0] - 1) / 2
    for j in range(len(targets)):
        assert np.allclose(_com(al[j]), (D - 1) / 2 + tc, atol=0.3)
    flat = al.flatten(1) - al.flatten(1).mean(1, keepdim=True)
    corr = (flat @ flat.T) / (flat.norm(dim=1)[:, None] * flat.norm(dim=1)[None])
    assert float(corr.min()) > 0.9                       # differently rotated copies agree


def test_alignment_by_hand() -> None:
    # one blob at (D//2 + offset) + R (3, 0, 0): aligned, it sits at (D - 1) / 2 + (3, 0, 0)
    R = rotation.euler_zyz_to_matrix(*(torch.tensor(a, dtype=torch.float64).deg2rad()
                                       for a in (30.0, 70.0, -45.0)))
    off = np.array([0.4, -0.7, 0.2])
    for u in (np.array([3.0, 0, 0]), np.array([0, 3.0, 0]), np.array([0, 0, 3.0])):
        p = D // 2 + off + R.numpy() @ u
        zz, yy, xx = np.indices((D, D, D))
        v = np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2 + (zz - p[2]) ** 2) / 2.0)
        al = align_by_poses(v[None].astype(np.float32), [[30.0, 70.0, -45.0]], [off])
        assert np.allclose(_com(al[0]), (D - 1) / 2 + u, atol=0.1)


def test_bad_input(boxed) -> None:
    scene, t, targets, _masks, off, dens, eul = boxed
    with pytest.raises(ValueError, match="need volumes"):
        align_by_poses(dens, eul[:1], off)
    with pytest.raises(ValueError, match="level 1.5 is outside"):
        level_masks(scene, t, targets, dens, D, 1, 1.5)
    with pytest.raises(ValueError, match="density has shape"):
        level_masks(scene, t, targets, dens[:1], D, 1, 0.2)
    with pytest.raises(ValueError, match="no targets"):
        target_densities(scene, t, [], D, 1)
