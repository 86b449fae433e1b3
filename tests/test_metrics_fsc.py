"""Fourier shell correlation and the resolution at a threshold: analytic cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryo_companion.metrics import fourier_shell_correlation, fsc_resolution, shell_index

D, VS = 24, 13.68


def _vol(seed: int) -> torch.Tensor:
    return torch.randn(D, D, D, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _lowpass(v: torch.Tensor, cutoff_shell: int) -> torch.Tensor:
    keep = (shell_index(v.shape[0]) <= cutoff_shell).to(torch.complex128)
    return torch.fft.ifftn(torch.fft.fftn(v) * keep).real


def test_shell_index_by_hand() -> None:
    s = shell_index(4)
    assert int(s[0, 0, 0]) == 0 and int(s[0, 0, 1]) == 1 and int(s[0, 0, 2]) == 2
    assert int(s[0, 0, 3]) == 1                        # fftfreq order: index 3 is -1
    assert int(s[0, 1, 1]) == 1                        # sqrt(2) = 1.41 -> shell 1
    assert int(s[1, 1, 1]) == 2                        # sqrt(3) = 1.73 -> shell 2
    assert int(s[2, 2, 2]) == 3                        # sqrt(12) = 3.46 -> shell 3


def test_identical_volumes_correlate_fully_at_every_shell() -> None:
    v = _vol(0)
    c = fourier_shell_correlation(v, v, VS)
    assert len(c["fsc"]) == D // 2 + 1
    assert np.allclose(c["fsc"][1:], 1.0)
    assert c["frequency_per_A"][-1] == pytest.approx(1 / (2 * VS))     # Nyquist
    r = fsc_resolution(c, 0.5)
    assert r["crossed"] == "never" and r["resolution_A"] == pytest.approx(2 * VS)


def test_scale_invariance_and_symmetry() -> None:
    a, b = _vol(1), _vol(1) + 0.5 * _vol(2)
    ab = fourier_shell_correlation(a, b, VS)["fsc"]
    assert np.allclose(ab, fourier_shell_correlation(3.0 * a, b, VS)["fsc"])
    assert np.allclose(ab, fourier_shell_correlation(b, a, VS)["fsc"])
    assert np.allclose(fourier_shell_correlation(a, -a, VS)["fsc"][1:], -1.0)


def test_sign_flip_above_a_shell_crosses_where_interpolation_says() -> None:
    # b keeps shells <= 5 of a and flips the sign of the others: FSC exactly 1 there and -1
    # beyond; the 0.5 crossing is interpolated a quarter of the way from shell 5 to 6, at
    # frequency 5.25 / (D · voxel), i.e. D · voxel / 5.25 Å; 0.143 at 5 + 0.857 / 2 shells
    a = _vol(3)
    low = _lowpass(a, 5)
    c = fourier_shell_correlation(a, low - (a - low), VS)
    assert np.allclose(c["fsc"][1:6], 1.0) and np.allclose(c["fsc"][6:], -1.0)
    r = fsc_resolution(c, 0.5)
    assert r["crossed"] == "between shells" and r["shell"] == 6
    assert r["resolution_A"] == pytest.approx(D * VS / 5.25)
    assert r["resolution_nm"] == pytest.approx(D * VS / 52.5)
    assert fsc_resolution(c, 0.143)["resolution_A"] == pytest.approx(D * VS / (5 + 0.857 / 2))


def test_signal_plus_independent_noise_follows_snr_over_one_plus_snr() -> None:
    # white signal s, two independent white noises of variance 1/snr: FSC -> snr / (1 + snr)
    torch.manual_seed(0)
    n = 48
    s = torch.randn(n, n, n, dtype=torch.float64)
    snr = 0.5
    sd = 1 / math.sqrt(snr)
    a = s + sd * torch.randn(n, n, n, dtype=torch.float64)
    b = s + sd * torch.randn(n, n, n, dtype=torch.float64)
    c = fourier_shell_correlation(a, b, 1.0)
    outer = np.array(c["fsc"][8:])                     # shells of thousands of coefficients
    assert abs(outer.mean() - snr / (1 + snr)) < 0.01
    assert c["n_coefficients"][0] == 1 and sum(c["n_coefficients"]) < n ** 3


def test_independent_volumes_are_near_zero_and_cross_at_once() -> None:
    c = fourier_shell_correlation(_vol(4), _vol(5), VS)
    big = [f for f, k in zip(c["fsc"], c["n_coefficients"]) if k > 500]
    assert max(abs(f) for f in big) < 0.15
    r = fsc_resolution({"fsc": [1.0, 0.1, 0.0], "frequency_per_A": [0.0, 0.1, 0.2]}, 0.5)
    assert r["crossed"] == "below at shell 1" and r["resolution_A"] == pytest.approx(10.0)


def test_numpy_input_and_bad_input() -> None:
    v = _vol(6).numpy()
    assert np.allclose(fourier_shell_correlation(v, v, VS)["fsc"][1:], 1.0)
    with pytest.raises(ValueError, match="cubic volume"):
        fourier_shell_correlation(np.zeros((8, 8, 9)), np.zeros((8, 8, 9)), VS)
    with pytest.raises(ValueError, match="same grid"):
        fourier_shell_correlation(np.zeros((8, 8, 8)), np.zeros((10, 10, 10)), VS)
    with pytest.raises(ValueError, match="NaN"):
        fourier_shell_correlation(np.full((8, 8, 8), np.nan), np.zeros((8, 8, 8)), VS)
    with pytest.raises(ValueError, match="voxel_size_A"):
        fourier_shell_correlation(v, v, 0.0)
    with pytest.raises(ValueError, match="threshold"):
        fsc_resolution(fourier_shell_correlation(v, v, VS), 1.5)
