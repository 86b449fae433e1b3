"""SNR estimators of cryo_companion.snr."""
from __future__ import annotations

import pytest
import torch

from cryo_companion.snr import pearson_correlation, snr_from_clean, snr_from_correlation


def test_snr_from_clean_known_variances():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4, 20000, generator=g, dtype=torch.float64) * 2.0
    n = torch.randn(4, 20000, generator=g, dtype=torch.float64) * 0.5
    est = snr_from_clean(s, s + n)
    torch.testing.assert_close(est, torch.full((4,), 16.0, dtype=torch.float64), rtol=0.05, atol=0)
    assert torch.isinf(snr_from_clean(s, s)).all()


@pytest.mark.parametrize("snr", [0.1, 1.0, 5.0])
def test_frank_al_ali_from_two_realisations(snr):
    g = torch.Generator().manual_seed(1)
    s = torch.randn(8, 50000, generator=g, dtype=torch.float64)
    sd = (1 / snr) ** 0.5
    a = s + sd * torch.randn(s.shape, generator=g, dtype=torch.float64)
    b = s + sd * torch.randn(s.shape, generator=g, dtype=torch.float64)
    est = snr_from_correlation(a, b)
    assert est.mean().item() == pytest.approx(snr, rel=0.05)


def test_correlation_bounds_and_errors():
    x = torch.randn(2, 100)
    torch.testing.assert_close(pearson_correlation(x, 3 * x + 1),
                               torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError):
        snr_from_clean(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError):
        pearson_correlation(torch.zeros(5), torch.zeros(5))
