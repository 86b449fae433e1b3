"""Checks of the simulator: the SNR asked for is the SNR measured; a sampler check that catches
a wrong distribution; the standardisation summary."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cryo_companion.simulate.checks import distribution_check, snr_check, standardization_check
from cryo_companion.simulate.randomization import standardize_batch
from cryo_companion.simulate.subtomogram import Simulator


def _simulator() -> Simulator:
    d = 16
    z, y, x = np.mgrid[:d, :d, :d] - d // 2
    blobs = [np.exp(-((x - s) ** 2 + y ** 2 + z ** 2) / 6.0) for s in (-2, 0, 2)]
    return Simulator(torch.tensor(np.stack(blobs), dtype=torch.float32), torch.tensor([0, 1, 2]),
                     voxel_size_A=13.68)


def test_snr_check_measures_what_was_asked() -> None:
    rows = snr_check(_simulator(), torch.tensor([0, 1, 2]), [0.1, 1.0, 10.0],
                     {"wedge_deg": 30.0, "defocus_um": -6.0, "cs_mm": 2.7}, n=4, seed=0)
    assert [r["snr_requested"] for r in rows] == [0.1, 1.0, 10.0]
    for r in rows:
        assert r["measured_max_rel_err"] < 1e-3
        assert r["measured_mean"] == pytest.approx(r["snr_requested"], rel=1e-3)
        assert r["frank_al_ali_std"] >= 0
    # the two-copy estimate grows with the requested SNR
    means = [r["frank_al_ali_mean"] for r in rows[:3]]
    assert means[0] < means[1] < means[2]
    again = snr_check(_simulator(), torch.tensor([0, 1, 2]), [0.1, 1.0, 10.0],
                      {"wedge_deg": 30.0, "defocus_um": -6.0, "cs_mm": 2.7}, n=4, seed=0)
    assert again == rows  # same seed, same numbers


def test_snr_check_refuses_bad_input() -> None:
    sim = _simulator()
    with pytest.raises(ValueError, match="n must be >= 2"):
        snr_check(sim, torch.tensor([0]), [1.0], {"wedge_deg": 0.0, "defocus_um": -1.0,
                                                   "cs_mm": 2.7}, n=1, seed=0)
    with pytest.raises(ValueError, match="> 0"):
        snr_check(sim, torch.tensor([0]), [0.0], {}, n=2, seed=0)


def test_distribution_check_accepts_the_right_law_and_rejects_a_wrong_one() -> None:
    rng = np.random.default_rng(0)
    ok = distribution_check(rng.uniform(-12, 0, 5000), -12.0, 0.0)
    assert ok["inside_range"] and ok["ks_pvalue"] > 0.01 and ok["ks_statistic"] < 0.03
    log_ok = distribution_check(np.exp(rng.uniform(np.log(0.03), np.log(10), 5000)), 0.03, 10.0,
                                log_uniform=True)
    assert log_ok["ks_pvalue"] > 0.01
    # uniform in SNR is not uniform in log(SNR): the KS test sees it
    wrong = distribution_check(rng.uniform(0.03, 10, 5000), 0.03, 10.0, log_uniform=True)
    assert wrong["ks_pvalue"] < 1e-6
    outside = distribution_check([-13.0, -1.0], -12.0, 0.0)
    assert not outside["inside_range"] and outside["min"] == -13.0
    with pytest.raises(ValueError):
        distribution_check([], 0.0, 1.0)
    with pytest.raises(ValueError):
        distribution_check([1.0], 0.0, 1.0, log_uniform=True)


def test_standardization_check_hand_worked() -> None:
    x = torch.tensor([[0.0, 2.0], [4.0, 6.0]])  # mean 3, population std sqrt(5)
    s = standardization_check(x, standardize_batch(x))
    assert s["raw_mean"] == pytest.approx(3.0) and s["raw_std"] == pytest.approx(5 ** 0.5)
    assert s["standardized_mean"] == pytest.approx(0.0, abs=1e-6)
    assert s["standardized_std"] == pytest.approx(1.0, abs=1e-6)
    # both rows keep their own spread (std of [0, 2] / sqrt(5), unbiased over 2 values)
    assert s["per_sample_std_min"] == pytest.approx(s["per_sample_std_max"])
