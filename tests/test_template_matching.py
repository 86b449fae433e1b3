"""Template matching: rotation sets, masks, CTF templates and the locally normalised correlation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryo_companion import optics, rotation
from cryo_companion.detect import template_matching as tm


def _template(n: int = 13) -> torch.Tensor:
    """Three Gaussian blobs of different sizes: no rotational symmetry."""
    g = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
    z, y, x = torch.meshgrid(g, g, g, indexing="ij")
    return (torch.exp(-((x - 2) ** 2 + y ** 2 + z ** 2) / 4)
            + 0.7 * torch.exp(-((x + 2) ** 2 + (y - 3) ** 2 + (z + 1) ** 2) / 3)
            + 0.4 * torch.exp(-(x ** 2 + (y + 3) ** 2 + (z - 3) ** 2) / 2))


def _angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    tr = torch.einsum("...ij,...ij->...", a, b)
    return torch.rad2deg(torch.arccos(((tr - 1) / 2).clamp(-1, 1)))


def test_rotation_count_follows_the_step() -> None:
    # PyTom's set "angles_12.85_7112": our count for 12.85 deg is within 2 % of it
    assert abs(tm.n_rotations_for_step(12.85) - 7112) / 7112 < 0.02
    assert tm.n_rotations_for_step(180) == 3          # ceil(8 / pi)
    with pytest.raises(ValueError, match="outside"):
        tm.n_rotations_for_step(0)


def test_rotation_set_is_proper_deterministic_and_covers_so3() -> None:
    step = 25.0
    R = tm.rotation_set(tm.n_rotations_for_step(step), dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(len(R), dtype=torch.float64))
    torch.testing.assert_close(R, tm.rotation_set(len(R), dtype=torch.float64))
    probe = rotation.random_rotation_matrices(300, torch.Generator().manual_seed(0),
                                              dtype=torch.float64)
    nearest = _angle_deg(probe[:, None], R[None]).min(1).values
    assert float(nearest.max()) < step          # no rotation farther than a step from the set
    assert float(nearest.median()) < 0.7 * step


def test_crowther_step_by_hand() -> None:
    # diameter 20 voxels at 2 voxels resolution: 0.1 rad
    assert tm.crowther_step_deg(20, 2) == pytest.approx(math.degrees(0.1))
    assert tm.crowther_step_deg(1, 10) == 180.0


def test_spherical_mask() -> None:
    m = tm.spherical_mask(11, 3.0, 1.0)
    assert float(m[5, 5, 5]) == 1.0 and float(m[5, 5, 8]) == 1.0
    assert float(m[5, 5, 9]) == pytest.approx(math.exp(-0.5))
    assert float(m[0, 0, 0]) == 0.0
    torch.testing.assert_close(m, m.flip(0).permute(2, 1, 0))
    with pytest.raises(ValueError, match="odd"):
        tm.spherical_mask(10, 3.0)


def test_ctf_template_keeps_minus_a_of_the_mass_and_nothing_past_the_first_zero() -> None:
    d = _template(21)
    vs = 10.0
    out = tm.ctf_template(d, vs, defocus_um=-3.0, cs_mm=2.7, amplitude_contrast=0.08)
    assert float(out.sum()) == pytest.approx(-0.08 * float(d.sum()), rel=1e-4)
    k = optics.frequency_magnitude(d.shape, vs, rfft=True)
    k0 = optics.ctf_first_zero_per_nm(-3.0, 2.7, amplitude_contrast=0.08) / 10
    spec = torch.fft.rfftn(out)
    assert float(spec[k > k0 * 1.001].abs().max()) < 1e-4 * float(spec.abs().max())
    assert float(out[10, 10, 10]) < 0           # mass dark at the centre (physical sign)


def _plant(vol: torch.Tensor, box: torch.Tensor, zyx: tuple[int, int, int]) -> None:
    n = box.shape[0]
    h = n // 2
    z, y, x = zyx
    vol[z - h:z + h + 1, y - h:y + h + 1, x - h:x + h + 1] += box


def test_finds_position_and_rotation_of_a_planted_particle(device: torch.device) -> None:
    t = _template()
    R = tm.rotation_set(60)
    turned = rotation.rotate_volumes(t[None], R[17:18])[0]
    vol = torch.zeros(30, 32, 34)
    _plant(vol, turned, (12, 15, 20))
    vol += 0.01 * torch.randn(vol.shape, generator=torch.Generator().manual_seed(0))
    res = tm.match_template(vol.to(device), t.to(device), tm.spherical_mask(13, 5.0, 1.0,
                                                                             device=device),
                            R.to(device), batch_size=7)
    i = int(res.score.argmax())
    zyx = np.unravel_index(i, vol.shape)
    assert tuple(int(v) for v in zyx) == (12, 15, 20)
    assert int(res.rotation_index[zyx]) == 17
    assert float(res.score.max()) > 0.98
    torch.testing.assert_close(res.rotation_at(tuple(int(v) for v in zyx)), R[17])
    assert res.time_s > 0 and res.score.device.type == device.type


def test_scores_are_correlations_invariant_to_scale_and_offset() -> None:
    g = torch.Generator().manual_seed(1)
    vol = torch.randn(20, 22, 24, generator=g)
    t, m = _template(), tm.spherical_mask(13, 5.0, 1.5)
    R = tm.rotation_set(5)
    a = tm.match_template(vol, t, m, R)
    b = tm.match_template(3.0 * vol + 7.0, t, m, R)
    assert float(a.score.abs().max()) <= 1.0 + 1e-5
    torch.testing.assert_close(a.score, b.score, atol=1e-4, rtol=0)


def test_score_equals_a_direct_weighted_pearson_correlation() -> None:
    g = torch.Generator().manual_seed(2)
    vol = torch.randn(18, 18, 18, generator=g, dtype=torch.float64)
    t, m = _template(), tm.spherical_mask(13, 4.0, 1.0)
    R = tm.rotation_set(1)
    res = tm.match_template(vol.float(), t, m, R)
    w = (m / m.sum()).double()
    rt = rotation.rotate_volumes(t[None], R).double()[0]
    for zyx in [(9, 9, 9), (6, 7, 11), (0, 0, 0)]:         # (0, 0, 0): the circular wrap
        idx = [torch.arange(c - 6, c + 7) % 18 for c in zyx]
        f = vol[idx[0][:, None, None], idx[1][None, :, None], idx[2][None, None, :]]
        mt, mf = (w * rt).sum(), (w * f).sum()
        cov = (w * (rt - mt) * (f - mf)).sum()
        cc = cov / torch.sqrt((w * (rt - mt) ** 2).sum() * (w * (f - mf) ** 2).sum())
        assert float(res.score[zyx]) == pytest.approx(float(cc), abs=1e-4)


def test_bad_inputs_are_refused() -> None:
    vol, t = torch.zeros(20, 20, 20), _template()
    m = tm.spherical_mask(13, 4.0)
    with pytest.raises(ValueError, match="odd cube"):
        tm.match_template(vol, t[:12, :12, :12], m[:12, :12, :12], tm.rotation_set(2))
    with pytest.raises(ValueError, match="mask"):
        tm.match_template(vol, t, m[1:-1, 1:-1, 1:-1], tm.rotation_set(2))
    with pytest.raises(ValueError, match="smaller"):
        tm.match_template(torch.zeros(10, 20, 20), t, m, tm.rotation_set(2))
    with pytest.raises(ValueError, match="constant"):
        tm.match_template(torch.randn(20, 20, 20), torch.zeros(13, 13, 13), m,
                          tm.rotation_set(2))
