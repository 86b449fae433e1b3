"""Radial power spectra: Parseval, white noise is flat, a single frequency lands in its shell."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.spectra import radial_power_spectrum


def test_white_noise_is_flat_and_its_level_is_the_variance() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((8, 24, 24, 24))
    k, p = radial_power_spectrum(v, voxel_size_A=10.0, n_bins=6)
    # unnormalised FFT: E|F|² = N σ² at every frequency
    assert np.allclose(p[1:], 24**3, rtol=0.1)
    assert k[0] == pytest.approx(0.5 / 6 / 2 / 10.0)
    assert k[-1] == pytest.approx((0.5 - 0.5 / 12) / 10.0)


def test_a_plane_wave_lands_in_its_shell() -> None:
    d = 32
    z = np.arange(d)
    v = np.cos(2 * np.pi * 8 * z / d)[:, None, None] * np.ones((d, d, d))  # 0.25 cycles/voxel
    k, p = radial_power_spectrum(v, voxel_size_A=2.0, n_bins=10)
    j = int(np.nanargmax(p))
    assert k[j] == pytest.approx(0.275 / 2.0)   # the shell [0.25, 0.30) cycles/voxel
    assert np.nansum(p) == pytest.approx(p[j])  # nothing anywhere else


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="cubes"):
        radial_power_spectrum(np.zeros((4, 4, 5)), 1.0)
    with pytest.raises(ValueError, match="voxel_size_A"):
        radial_power_spectrum(np.zeros((4, 4, 4)), 0.0)
