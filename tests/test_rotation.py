"""Rotations: uniform on SO(3), ZYZ Euler round trip, volume rotation matches the coordinates."""
from __future__ import annotations

import math

import pytest
import torch

from cryo_companion.rotation import (
    VolumeBank,
    euler_zyz_to_matrix,
    matrix_to_euler_zyz,
    random_rotation_matrices,
    rotate_volumes,
)


def test_random_rotations_are_rotations_and_uniform():
    R = random_rotation_matrices(4000, torch.Generator().manual_seed(0), dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye.expand_as(R), atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(4000, dtype=torch.float64))
    # Haar measure: E[R] = 0, the image of a unit vector is uniform on the sphere (E z^2 = 1/3)
    assert R.mean(0).abs().max().item() < 0.05
    v = R[:, :, 2]
    assert (v[:, 2] ** 2).mean().item() == pytest.approx(1 / 3, abs=0.02)
    # rotation angle density (1 - cos w)/pi: E[cos w] = -1/2... E[trace] = 0
    assert R.diagonal(dim1=1, dim2=2).sum(1).mean().item() == pytest.approx(0.0, abs=0.06)


def test_same_generator_seed_same_rotations():
    a = random_rotation_matrices(5, torch.Generator().manual_seed(3))
    b = random_rotation_matrices(5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_euler_round_trip_and_convention():
    g = torch.Generator().manual_seed(1)
    R = random_rotation_matrices(200, g, dtype=torch.float64)
    phi, theta, psi = matrix_to_euler_zyz(R)
    torch.testing.assert_close(euler_zyz_to_matrix(phi, theta, psi), R, atol=1e-10, rtol=0)
    # Rz(90°) turns x into y
    Rz = euler_zyz_to_matrix(torch.tensor(math.pi / 2), torch.tensor(0.0), torch.tensor(0.0))
    torch.testing.assert_close(Rz.double() @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                               torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-6, rtol=0)
    # gimbal lock
    d = {"dtype": torch.float64}
    R0 = euler_zyz_to_matrix(torch.tensor([0.3], **d), torch.tensor([0.0], **d),
                             torch.tensor([0.2], **d))
    torch.testing.assert_close(euler_zyz_to_matrix(*matrix_to_euler_zyz(R0)), R0, atol=1e-10,
                               rtol=0)


def test_identity_rotation_changes_nothing():
    v = torch.randn(3, 11, 14, 9)
    out = rotate_volumes(v, torch.eye(3))
    torch.testing.assert_close(out, v, atol=1e-5, rtol=0)


def _blob(shape, centre_zyx, sigma=1.2):
    z, y, x = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape],
                             indexing="ij")
    cz, cy, cx = centre_zyx
    return torch.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))


def _centroid_xyz(v):
    z, y, x = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in v.shape],
                             indexing="ij")
    w = v / v.sum()
    return torch.stack([(w * x).sum(), (w * y).sum(), (w * z).sum()])


@pytest.mark.parametrize("shape", [(24, 24, 24), (20, 26, 23)])
def test_rotation_matches_matrix_applied_to_coordinates(shape):
    p0_xyz = torch.tensor([4.0, -3.0, 2.5])
    c_xyz = torch.tensor([(shape[2] - 1) / 2, (shape[1] - 1) / 2, (shape[0] - 1) / 2])
    pos = c_xyz + p0_xyz
    vol = _blob(shape, (pos[2], pos[1], pos[0]))
    R = random_rotation_matrices(4, torch.Generator().manual_seed(7))
    t = torch.tensor([[1.0, 0.5, -1.5]]).expand(4, 3)
    out = rotate_volumes(vol.expand(4, *shape).contiguous(), R, t)
    for i in range(4):
        expect = R[i] @ p0_xyz + c_xyz + t[i]
        torch.testing.assert_close(_centroid_xyz(out[i]), expect, atol=0.08, rtol=0)


def test_rotation_by_90_about_z_is_exact_permutation():
    v = torch.randn(1, 9, 9, 9)
    Rz = euler_zyz_to_matrix(torch.tensor([math.pi / 2]), torch.tensor([0.0]),
                             torch.tensor([0.0])).float()
    out = rotate_volumes(v, Rz)
    # out(x, y) = v(R^T (x, y)) = v(y, -x): out[y, x] = v[-x, y] in array terms
    torch.testing.assert_close(out, torch.rot90(v, k=-1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_bad_shapes():
    with pytest.raises(ValueError):
        rotate_volumes(torch.zeros(2, 4, 4), torch.eye(3))
    with pytest.raises(ValueError):
        rotate_volumes(torch.zeros(2, 4, 4, 4), torch.eye(3).expand(3, 3, 3))


@pytest.mark.parametrize("compile", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize("shape", [(12, 12, 12), (10, 13, 11)])
def test_volume_bank_equals_rotate_volumes_of_the_indexed_templates(compile, shape):
    """The gather from the padded bank is grid_sample's trilinear with zero padding."""
    g = torch.Generator().manual_seed(3)
    bank = torch.rand(3, *shape, generator=g)
    idx = torch.tensor([2, 0, 1, 2, 2])
    R = random_rotation_matrices(5, g)
    # shifts of up to 8 voxels: many samples fall outside the box, where both read zeros
    t = (torch.rand(5, 3, generator=g) - 0.5) * 16
    out = VolumeBank(bank, compile=compile).rotate(idx, R, t)
    torch.testing.assert_close(out, rotate_volumes(bank[idx], R, t), atol=2e-6, rtol=0)
    ident = VolumeBank(bank, compile=compile).rotate(idx, torch.eye(3).expand(5, 3, 3))
    torch.testing.assert_close(ident, bank[idx], atol=1e-6, rtol=0)


def test_compiled_bank_refuses_indices_and_coordinates_its_kernel_cannot_read():
    """The CPU kernel reads without bounds checks, so rotate() refuses what would read outside the
    bank (checked before anything is compiled or read)."""
    bank = VolumeBank(torch.rand(2, 6, 6, 6), compile=True)
    R = torch.eye(3).expand(2, 3, 3)
    with pytest.raises(ValueError, match=r"index must be in \[0, 2\)"):
        bank.rotate(torch.tensor([0, 2]), R)
    with pytest.raises(ValueError, match=r"index must be in \[0, 2\)"):
        bank.rotate(torch.tensor([-1, 0]), R)
    bad = R.clone()
    bad[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        bank.rotate(torch.tensor([0, 1]), bad)
    with pytest.raises(ValueError, match="finite"):
        bank.rotate(torch.tensor([0, 1]), R, torch.tensor([[0.0, 0, 0], [float("inf"), 0, 0]]))
