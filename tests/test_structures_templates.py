"""Template banks for the simulators: shapes, labels, reproducibility, box errors."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.structures.density import BoxTooSmallError
from cryo_companion.structures.templates import template_bank


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_CACHE", str(tmp_path / "cache"))


def test_che2019_bank(structures_dir):
    bank = template_bank("che2019", 13.68, 40, n_membrane=3, seed=1, progress=False)
    assert bank.volumes.shape == (6, 40, 40, 40) and bank.volumes.dtype == np.float32
    assert bank.labels.dtype == np.int64
    assert bank.labels.tolist() == [0, 1, 1, 1, 2, 3]
    assert bank.class_names == ["ribosome", "membrane", "TRiC", "proteasome"]
    assert bank.resolution_A == pytest.approx(13.68)  # Che et al.: resolution = voxel spacing
    assert np.isfinite(bank.volumes).all() and (bank.volumes >= 0).all()
    # ribosome (~2.5 MDa+) outweighs the proteasome which outweighs nothing: masses are real
    mass_kda = bank.volumes.sum(axis=(1, 2, 3)) * 13.68**3 / 1e3
    assert mass_kda[0] > 1500 and mass_kda[5] > 800
    again = template_bank("che2019", 13.68, 40, n_membrane=3, seed=1, progress=False)
    np.testing.assert_array_equal(bank.volumes, again.volumes)


def test_bank_box_too_small(structures_dir):
    with pytest.raises(BoxTooSmallError):
        template_bank("che2019", 13.68, 12, n_membrane=1, progress=False)


def test_bad_arguments():
    with pytest.raises(KeyError):
        template_bank("nope", 10.0, 24)
    with pytest.raises(ValueError, match="n_membrane"):
        template_bank("che2019", 10.0, 24, n_membrane=0)
