"""The held-out test domain at smoke scale: counts, masks, pre-registration hash, caching, CLI."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cryo_companion.cli.main import main as cli
from cryo_companion.dataset import load_subtomograms
from cryo_companion.papers.che2019 import test_domain as ts
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


# --- two frozen domains, one generator (issue #14, item 3) ---------------------------------

ROOT = Path(__file__).resolve().parent.parent
B = "che2019_test_domain_b"


def test_the_first_domain_is_still_the_one_frozen_and_recorded():
    # the hash of the first domain, as recorded by its paper-scale run (results/test_domain.json)
    recorded = json.loads((ROOT / "results" / "test_domain.json").read_text())
    assert test_domain_hash() == recorded["data"]["test_domain_hash"]
    assert test_domain_hash() == ts.FROZEN_HASHES[ts.DEFAULT_DOMAIN]
    assert ts.domain_hash(ts.DEFAULT_DOMAIN) == test_domain_hash()


def test_second_domain_is_frozen_new_and_of_the_same_family():
    a, b = ts.domain_config(), ts.domain_config(B)
    assert ts.domain_hash(B) == ts.FROZEN_HASHES[B] != ts.domain_hash()
    assert b["name"] == B and b["seed"] != a["seed"]
    # what a second data set varies ...
    for key in ("defocus_um", "total_dose_e_A2", "ice_thickness_A"):
        assert b["imaging"][key] != a["imaging"][key], key
    for key in ("crowder_volume_fraction", "contact_fraction", "ice_thickness_A"):
        assert b["scene"][key] != a["scene"][key], key
    # ... and what it keeps: classes, structures, box, acquisition geometry, counts
    for key in ("class_names", "entries", "voxel_size_A", "subtomogram_box", "class_set"):
        assert b[key] == a[key], key
    for key in ("tilt_min_deg", "tilt_max_deg", "tilt_step_deg", "voltage_kv", "cs_mm"):
        assert b["imaging"][key] == a["imaging"][key], key
    assert b["scales"]["paper"]["counts"] == a["scales"]["paper"]["counts"]


def test_a_changed_domain_file_is_refused(monkeypatch):
    monkeypatch.setitem(ts.FROZEN_HASHES, B, "0" * 64)
    with pytest.raises(ValueError, match="changed since it was frozen"):
        ts.load_config(B)
    with pytest.raises(ValueError, match="unknown test domain"):
        ts.load_config("che2019_test_domain_c")


#: The first domain's smoke set as drawn before the generator was parameterised (commit
#: d26ccf1): labels, target-mask voxel counts, per-subtomogram mean and standard deviation. The
#: refactor must draw exactly the same data from the same frozen file.
_SMOKE_BEFORE = {
    "labels": [0, 0, 2, 2, 3, 3, 1, 1, 1],
    "mask_voxels": [1142, 1146, 472, 479, 607, 608, 6397, 7230, 6458],
    "mean": [-0.000129284, 0.000115632, -2.6979e-05, 2.73151e-05, -7.36013e-05, -8.52865e-05,
             -2.5602e-05, -8.158e-05, 0.000127502],
    "std": [0.00391071, 0.00450479, 0.00472004, 0.00476014, 0.0048845, 0.00442378, 0.00466451,
            0.0038475, 0.00491059],
}


def test_first_domain_draws_the_same_data_as_before(smoke):
    data, _ = smoke
    v = data.volumes.astype(np.float64)
    assert data.labels.tolist() == _SMOKE_BEFORE["labels"]
    assert data.masks.reshape(len(data), -1).sum(1).tolist() == _SMOKE_BEFORE["mask_voxels"]
    std = v.std((1, 2, 3))
    assert std == pytest.approx(_SMOKE_BEFORE["std"], rel=1e-4)
    assert v.mean((1, 2, 3)) == pytest.approx(_SMOKE_BEFORE["mean"], abs=1e-4 * std.min())
    assert data.meta["test_domain"] == ts.DEFAULT_DOMAIN
    assert ts.domain_record(data) == {"name": ts.DEFAULT_DOMAIN, "hash": test_domain_hash(),
                                      "version": 2}


def test_second_domain_smoke_set(smoke, tmp_path_factory):
    root = tmp_path_factory.mktemp("data_b")
    b = ensure_testset(root, "smoke", "cpu", domain=B)
    assert (root / f"{B}_smoke" / "meta.json").is_file()
    assert b.counts == ts.scale_config("smoke", ts.domain_config(B))["counts"]
    assert ts.domain_record(b)["name"] == B and b.meta["test_domain_hash"] == ts.domain_hash(B)
    assert b.meta["seed"] == ts.domain_config(B)["seed"]
    a, _ = smoke
    assert not np.allclose(a.volumes[:2], b.volumes[:2])
    # a set written before domains had names is still attributed by its hash
    assert ts.domain_record({"test_domain_hash": test_domain_hash()})["name"] == ts.DEFAULT_DOMAIN


_TINY = {"tomograms": 1, "tomogram_xy": 72, "oversample": 1, "tilt_step_deg": 10.0,
         "counts": {"ribosome": 1, "membrane": 0, "TRiC": 1, "proteasome": 1},
         "snr_pairs_per_class": 1}


def test_imaging_modes_see_the_same_targets():
    cfg = ts.domain_config()
    copies = ts.SceneRealism(crowders=False, contact=False, membranes=False)
    sets = ts.generate_sets(cfg, _TINY, device="cpu", realism=copies, progress=False,
                            modes=("ideal", "projection", "ctf", "full"))
    ref = sets["full"]
    assert ref.counts == {"ribosome": 1, "membrane": 0, "TRiC": 1, "proteasome": 1}
    for mode, s in sets.items():
        assert np.array_equal(s.labels, ref.labels) and np.array_equal(s.masks, ref.masks)
        assert s.meta["imaging_mode"] == mode and s.meta["realism"] == copies.to_dict()
        assert s.meta["contrast"] == ("bright" if mode in ("ideal", "projection") else "dark")
    assert not np.allclose(sets["ctf"].volumes, ref.volumes)      # shot noise is the difference
    with pytest.raises(ValueError, match="imaging modes"):
        ts.generate_sets(cfg, _TINY, device="cpu", modes=("full", "full"))
    with pytest.raises(ValueError, match="isolated scene holds only the targets"):
        ts.SceneRealism(isolated=True)


def test_isolated_targets_are_alone_in_their_boxes():
    cfg = ts.domain_config()
    sets, tomos = ts.generate_sets(cfg, _TINY, device="cpu", realism=ts.ISOLATED,
                                   progress=False, return_tomograms=True, max_tomograms=10)
    data = sets["full"]
    assert data.counts == {"ribosome": 1, "membrane": 0, "TRiC": 1, "proteasome": 1}
    h = cfg["subtomogram_box"] // 2
    n_alone = 0
    for scene, _, _ in tomos["full"]:
        occ = scene.occupancy
        for i, p in enumerate(scene.particles):
            c = [round(v) for v in p["centre_xyz_vox"][::-1]]            # z, y, x
            sl = tuple(slice(max(0, v - h), v + h) for v in c)
            assert set(torch.unique(occ[sl]).tolist()) <= {0, i + 1}, (i, p["class_name"])
            n_alone += 1
    assert n_alone >= len(data)


def test_isolated_snr_at_smoke_scale():
    r = ts.isolated_snr("smoke", "cpu")
    pairs = ts.scale_config("smoke")["snr_pairs_per_class"]
    assert r["counts"] == {"ribosome": 2 * pairs, "membrane": 0, "TRiC": 2 * pairs,
                           "proteasome": 2 * pairs}
    assert r["pairs"] == 3 * pairs and r["test_domain_hash"] == test_domain_hash()
    assert r["median"] is not None and np.isfinite(r["median"])


def test_only_the_first_domain_is_imaged_with_the_old_signs():
    """The first domain was frozen with the image formation of before 2026-12-02 and is
    regenerated with it; the second, frozen later, uses the corrected physics."""
    assert test_domain_hash(ts.load_config("che2019_test_domain")) in ts.LEGACY_IMAGING_HASHES
    assert test_domain_hash(ts.load_config("che2019_test_domain_b")) not in \
        ts.LEGACY_IMAGING_HASHES
