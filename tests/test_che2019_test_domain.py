"""The held-out test domain at smoke scale: counts, masks, pre-registration hash, caching, CLI."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from cryo_companion.cli.main import main as cli
from cryo_companion.dataset import load_subtomograms
from cryo_companion.papers.che2019.test_domain import (
    TEST_DOMAIN_CONFIG,
    baseline_preset,
    ensure_testset,
    scale_config,
    test_domain_hash,
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return ensure_testset(root, "smoke", "cpu"), root


def test_config_is_the_papers_acquisition():
    im = TEST_DOMAIN_CONFIG["imaging"]
    assert (im["tilt_min_deg"], im["tilt_max_deg"]) == (-50.0, 70.0)
    assert scale_config("paper")["counts"] == {"ribosome": 80, "membrane": 460, "TRiC": 125,
                                               "proteasome": 386}
    assert sum(scale_config("paper")["counts"].values()) == 1051
    assert baseline_preset(0.1)["wedge_deg"] == pytest.approx(30.0)  # the paper's baseline wedge


def test_hash_is_canonical_and_sensitive():
    h = test_domain_hash()
    assert len(h) == 64 and h == test_domain_hash(json.loads(json.dumps(TEST_DOMAIN_CONFIG)))
    changed = copy.deepcopy(dict(TEST_DOMAIN_CONFIG))
    changed["imaging"] = {**changed["imaging"], "total_dose_e_A2": 101.0}
    assert test_domain_hash(changed) != h


def test_smoke_testset(smoke):
    data, _ = smoke
    want = scale_config("smoke")["counts"]
    assert data.counts == want
    assert data.volumes.shape[1:] == (40, 40, 40) and data.voxel_size_A == pytest.approx(13.68)
    assert np.isfinite(data.volumes).all()
    assert data.meta["test_domain_hash"] == test_domain_hash()
    # every target's mask is non-empty, and a complex's mask is centred on the box centre
    # (TRiC and the proteasome are hollow: the centre voxel itself may be empty)
    assert data.masks.reshape(len(data), -1).any(1).all()
    k_mem = data.class_names.index("membrane")
    for v, lab in zip(data.masks, data.labels):
        if lab != k_mem:
            centroid = np.argwhere(v).mean(0)
            assert np.abs(centroid - 20).max() < 2.5, centroid
    s = data.meta["snr"]["median"]
    assert s is not None and 1e-4 < s < 10
    assert data.meta["baseline_preset"]["snr"] == s


def test_ensure_reuses_and_matches(smoke, monkeypatch):
    data, root = smoke
    import cryo_companion.papers.che2019.test_domain as ts

    def boom(*a, **k):
        raise AssertionError("regenerated although the cache matches")

    monkeypatch.setattr(ts, "make_testset", boom)
    again = ensure_testset(root, "smoke", "cpu")
    assert np.array_equal(again.volumes, data.volumes)
    with pytest.raises(ValueError, match="unknown scale"):
        ensure_testset(root, "huge", "cpu")


def test_cli_writes_a_readable_folder(tmp_path, capsys):
    assert cli(["testset", "--out", str(tmp_path / "t"), "--scale", "smoke", "--device", "cpu",
                "--seed", "5"]) == 0
    r = load_subtomograms(tmp_path / "t")
    assert r.counts == scale_config("smoke")["counts"] and r.masks is not None
    assert (tmp_path / "t" / "labels.csv").read_text().startswith("file,class,mask")
    with pytest.raises(SystemExit):
        cli(["testset", "--out", str(tmp_path / "u"), "--scale", "nope"])
    assert not (tmp_path / "u").exists()


def test_tomogram_cli_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "tomo"
    assert cli(["tomogram", "--out", str(out), "--tilt-range", "-95", "60"]) == 2
    assert cli(["tomogram", "--out", str(out), "--tilt-step", "7"]) == 2
    assert cli(["tomogram", "--out", str(out), "--classes", "no_such_thing"]) == 2
    assert cli(["tomogram", "--out", str(out), "--shape", "20", "32", "32",
                "--particles", "3000"]) == 2
    assert not out.exists()


def test_tomogram_cli_small(tmp_path):
    out = tmp_path / "tomo"
    assert cli(["tomogram", "--out", str(out), "--shape", "32", "48", "48", "--oversample", "1",
                "--particles", "4", "--classes", "4v94", "--tilt-step", "10",
                "--device", "cpu"]) == 0
    for f in ("tomogram.mrc", "tiltseries.mrc", "class_mask.mrc", "occupancy.mrc",
              "particles.csv", "meta.json"):
        assert (out / f).is_file()
    rows = (out / "particles.csv").read_text().splitlines()
    assert rows[0].startswith("id,class,x_vox") and len(rows) == 1 + 4 + 1


def test_config_states_the_ice_thickness_once_in_effect():
    from cryo_companion.papers.che2019.test_domain import check_config

    check_config(TEST_DOMAIN_CONFIG)  # the committed file agrees with itself
    bad = copy.deepcopy(dict(TEST_DOMAIN_CONFIG))
    bad["imaging"]["ice_thickness_A"] += 100.0
    with pytest.raises(ValueError, match="ice_thickness_A"):
        check_config(bad)
