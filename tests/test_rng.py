"""Complex standard normals drawn in parallel streams on the CPU (cryo_companion._rng)."""
from __future__ import annotations

import math

import pytest
import torch

from cryo_companion._rng import CPU_STREAMS, randn_complex


def _draw(n: int, m: int, seed: int, device="cpu") -> torch.Tensor:
    return randn_complex(n, m, torch.Generator(device=device).manual_seed(seed), device)


def test_same_seed_same_numbers_and_the_generator_advances(device):
    a, b = _draw(6, 500, 3, device), _draw(6, 500, 3, device)
    assert a.dtype == torch.complex64 and a.shape == (6, 500) and a.device.type == device.type
    assert torch.equal(a, b)
    g = torch.Generator(device=device).manual_seed(3)
    first, second = randn_complex(6, 500, g, device), randn_complex(6, 500, g, device)
    assert not torch.equal(first, second)
    assert not torch.equal(_draw(6, 500, 4, device), a)


def test_streams_do_not_depend_on_the_thread_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = _draw(9, 300, 11)  # streams drawn one after the other
        torch.set_num_threads(2)
        parallel = _draw(9, 300, 11)  # streams drawn concurrently
    finally:
        torch.set_num_threads(before)
    assert torch.equal(serial, parallel)


def test_standard_complex_normal_moments_and_independent_streams():
    n, m = 2 * CPU_STREAMS, 50_000
    z = _draw(n, m, 0).to(torch.complex128)
    re, im = z.real, z.imag
    tol = 5 * math.sqrt(2 / m)  # 5 standard errors of a variance estimate
    assert (re.mean(1).abs() < 5 * math.sqrt(0.5 / m)).all()
    assert ((re.var(1) - 0.5).abs() < 0.5 * tol).all()
    assert ((im.var(1) - 0.5).abs() < 0.5 * tol).all()
    assert ((z.abs().square().mean(1) - 1).abs() < tol).all()
    # real and imaginary parts, and rows of different streams, are uncorrelated
    corr = torch.corrcoef(torch.cat([re, im]))
    off = corr - torch.eye(2 * n, dtype=corr.dtype)
    assert off.abs().max().item() < 5 / math.sqrt(m)
    # Gaussian, not only the right variance: fourth moment of N(0, 1/2) is 3/4
    assert abs((re**4).mean().item() - 0.75) < 0.02


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_small_batches(n):
    z = _draw(n, 7, 5)
    assert z.shape == (n, 7) and torch.isfinite(torch.view_as_real(z)).all()
