"""Domain randomization presets and sampler (Che et al. 2019, III-B and IV)."""
from __future__ import annotations

import math

import pytest
import torch

from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate.randomization import (
    PARAM_NAMES,
    Preset,
    augment_intensity,
    sample_params,
    standardize_batch,
)

#: A valid set of the four required ranges; tests override one at a time.
_RANGES = {"snr": (0.1, 1.0), "wedge_deg": (0.0, 30.0), "defocus_um": (-6.0, -1.0),
           "cs_mm": (2.0, 2.7)}


def test_randomized_ranges_of_the_paper():
    p = sample_params(get_preset("randomized"), 20000, torch.Generator().manual_seed(0))
    assert set(p) == set(PARAM_NAMES)
    snr, w, dz, cs = p["snr"], p["wedge_deg"], p["defocus_um"], p["cs_mm"]
    assert 0.03 <= snr.min() and snr.max() <= 10.0
    assert 0.0 <= w.min() and w.max() <= 50.0
    assert -12.0 <= dz.min() and dz.max() <= 0.0
    assert 1.5 <= cs.min() and cs.max() <= 3.0
    # log-uniform SNR: log10 is uniform on [log10 0.03, 1], median at the geometric mean
    med = snr.median().item()
    assert med == pytest.approx(math.sqrt(0.03 * 10.0), rel=0.05)
    lg = snr.log10()
    assert ((lg < (math.log10(0.03) + 1) / 2).float().mean().item()) == pytest.approx(0.5, abs=0.02)
    # uniform wedge / defocus / Cs: mean at the midpoint, variance (hi-lo)^2/12
    assert w.mean().item() == pytest.approx(25.0, abs=0.5)
    assert w.var().item() == pytest.approx(50.0**2 / 12, rel=0.05)
    assert dz.mean().item() == pytest.approx(-6.0, abs=0.1)
    assert cs.mean().item() == pytest.approx(2.25, abs=0.02)


def test_baseline_fixed_values_and_source():
    b = get_preset("baseline")
    assert b.source
    p = sample_params(b, 100, torch.Generator().manual_seed(0))
    for k in ("snr", "wedge_deg", "defocus_um", "cs_mm"):
        assert p[k].unique().numel() == 1
    if b.source.startswith("Che"):
        assert (b.snr, b.wedge_deg, b.defocus_um, b.cs_mm) == ((0.1, 0.1), (30.0, 30.0),
                                                                (-6.0, -6.0), (2.7, 2.7))
    # only the augmentation (and the pose) are random
    assert p["intensity_scale"].unique().numel() > 1


def test_same_seed_same_params():
    a = sample_params(get_preset("randomized"), 10, torch.Generator().manual_seed(4))
    b = sample_params(get_preset("randomized"), 10, torch.Generator().manual_seed(4))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_configurable_ranges_and_validation():
    p = get_preset("randomized").replace(snr=(1.0, 2.0), wedge_deg=(10.0, 20.0))
    s = sample_params(p, 1000, torch.Generator().manual_seed(0))
    assert 1.0 <= s["snr"].min() and s["snr"].max() <= 2.0
    assert 10.0 <= s["wedge_deg"].min() and s["wedge_deg"].max() <= 20.0
    with pytest.raises(ValueError, match="SNR"):
        Preset(**{**_RANGES, "snr": (0.0, 1.0)}, name="x")
    with pytest.raises(ValueError, match="wedge"):
        Preset(**{**_RANGES, "wedge_deg": (0.0, 90.0)}, name="x")
    with pytest.raises(ValueError, match="Cs"):
        Preset(**{**_RANGES, "cs_mm": (-1.0, 1.0)}, name="x")
    with pytest.raises(ValueError, match="lo <= hi"):
        Preset(**{**_RANGES, "defocus_um": (0.0, -12.0)}, name="x")
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")
    assert Preset(**{**_RANGES, "snr": math.inf}, name="clean").snr == (math.inf, math.inf)


def test_augmentation_changes_mean_and_variance_as_defined():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1000, generator=g, dtype=torch.float64) * 2 + 5
    y = torch.randn(3, 1000, generator=g, dtype=torch.float64)
    scale = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    off = torch.tensor([0.1, 0.0, -0.3], dtype=torch.float64)
    x2, y2 = augment_intensity(x, scale, off, others=(y,))
    m, s = x.mean(1), x.std(1, correction=0)
    torch.testing.assert_close(x2.mean(1), m + off * s)
    torch.testing.assert_close(x2.std(1, correction=0), scale * s)
    # the same affine map on the others: differences scale by g
    torch.testing.assert_close(y2 - x2, scale.reshape(3, 1) * (y - x))


def test_standardize_batch_global():
    x = torch.randn(4, 5, 5, 5) * torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1) + 7
    z = standardize_batch(x)
    assert z.mean().abs().item() < 1e-5
    assert z.std(correction=0).item() == pytest.approx(1.0, abs=1e-5)
    # one global scale: per-sample ratios preserved
    torch.testing.assert_close(z[3].std() / z[0].std(), x[3].std() / x[0].std())


def test_context_is_one_more_factor_off_by_default():
    p = Preset(name="p", **_RANGES)
    assert p.context_fraction == (0.0, 0.0) and not p.has_context
    assert p.as_dict()["context_fraction"] == (0.0, 0.0)
    assert "context_fraction" not in sample_params(p, 4, torch.Generator().manual_seed(0))
    c = p.replace(context_fraction=(0.05, 0.2))
    assert c.has_context
    phi = sample_params(c, 2000, torch.Generator().manual_seed(0))["context_fraction"]
    assert phi.dtype == torch.float32 and 0.05 <= phi.min() and phi.max() <= 0.2
    fixed = sample_params(p.replace(context_fraction=0.1), 3)["context_fraction"]
    assert torch.equal(fixed, torch.full((3,), 0.1))
    for bad in ((-0.1, 0.1), (0.0, 0.51), (float("nan"), 0.1)):
        with pytest.raises(ValueError, match="context_fraction"):
            p.replace(context_fraction=bad)
