"""The crowded-tomogram subtomogram generator: ground truth, physics, SNR, calibration, disk."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from cryo_companion.simulate import crowded
from cryo_companion.simulate.crowded import (
    CalibrationError,
    CrowdedConfig,
    CrowdedSubtomograms,
    calibrate_dose,
    config_hash,
    ensure_calibration,
    ensure_crowded,
    expected_extractable_fraction,
    load_crowded,
    make_crowded,
    pilot_config,
    save_crowded,
)
from cryo_companion.simulate.tomogram import load_templates
from cryo_companion.structures.catalogue import class_set

# A tiny data set: 44 complexes of the 22 liu22 classes in a 40 x 64 x 64 tomogram, 16³ boxes,
# 13 tilts; a high dose so that structure is clearly visible.
SMALL = CrowdedConfig(tomogram_shape=(40, 64, 64), n_complexes=44, box=16, tilt_step_deg=10.0,
                      total_dose_e_A2=1000.0, contact_fraction=0.5, seed=3)


@pytest.fixture(scope="module")
def small() -> CrowdedSubtomograms:
    return make_crowded(SMALL, "cpu", progress=False)


@pytest.fixture(scope="module")
def templates():
    return load_templates({c.name: c.entry for c in class_set("liu22")}, SMALL.voxel_size_A)


def test_bad_configurations_are_refused_before_any_work() -> None:
    cases = [({"class_set": "nope"}, "unknown class set 'nope'; valid names: che2019"),
             ({"class_set": "che2019"}, "procedural classes"),
             ({"snr_reference": "1kp8"}, "stands for no class of 'liu22'"),
             ({"box": 15}, "box 15 must be an even number"),
             ({"box": 48}, "does not fit in the tomogram"),
             ({"n_complexes": 5}, "fewer than the 22 classes"),
             ({"mask_level": 1.5}, "mask_level 1.5 is outside"),
             ({"tilt_step_deg": 7.0}, "does not divide the range"),
             ({"tomogram_shape": (40, 64)}, "three positive sizes"),
             ({"n_subtomograms": 0}, "n_subtomograms must be >= 1"),
             ({"seed": -1}, "seeds must be >= 0")]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            dataclasses.replace(SMALL, **kw)


def test_config_round_trip_and_hash() -> None:
    d = SMALL.to_dict()
    assert CrowdedConfig.from_dict(d) == SMALL
    assert config_hash(CrowdedConfig.from_dict(d)) == config_hash(SMALL)
    assert config_hash(dataclasses.replace(SMALL, total_dose_e_A2=999.0)) != config_hash(SMALL)
    with pytest.raises(ValueError, match="unknown crowded-config keys"):
        CrowdedConfig.from_dict({**d, "snr": 1})


def test_expected_extractable_fraction_by_hand() -> None:
    cfg = dataclasses.replace(SMALL, tomogram_shape=(20, 40, 50), box=16)
    # x: centres 8..42 (35 of 50); y: 8..32 (25 of 40); z: 8..12 (5 of 20)
    assert expected_extractable_fraction(cfg) == pytest.approx(35 / 50 * 25 / 40 * 5 / 20)
    # a radius of 3 keeps centres in z 3..16 (14 positions), 5 of them extractable
    assert expected_extractable_fraction(cfg, 3.0) == pytest.approx(35 / 50 * 25 / 40 * 5 / 14)


def test_every_extractable_complex_is_boxed(small: CrowdedSubtomograms) -> None:
    m = small.meta
    assert m["complexes_placed"] == 44 and m["kept"] == len(small) == m["extractable"] > 0
    assert small.volumes.shape[1:] == (16, 16, 16) and small.masks is not None
    assert small.class_names == class_set("liu22").class_names
    assert m["config_hash"] == config_hash(SMALL) and m["contrast"] == "dark"
    assert sum(m["counts"].values()) == len(small)
    # box centre = true centre minus offset: a whole voxel inside the tomogram
    c = small.centre_xyz_vox - small.offset_xyz_vox
    assert np.allclose(c, np.round(c)) and np.all(np.abs(small.offset_xyz_vox) <= 0.5)
    Z, Y, X = SMALL.tomogram_shape
    assert np.all(c - 8 >= 0) and np.all(c + 8 <= np.array([X, Y, Z]))


def test_masks_are_the_target_envelope_only(small: CrowdedSubtomograms, templates) -> None:
    assert small.masks is not None and small.density is not None
    for i in range(len(small)):
        t = templates[small.class_names[small.labels[i]]]
        env = small.density[i] >= t.threshold
        # the mask is the envelope of the target's own density (the scene's occupancy)
        assert (small.masks[i] == env).mean() > 0.995
        assert small.masks[i].any()


def test_density_is_the_target_alone_with_its_mass_and_centre(small: CrowdedSubtomograms,
                                                             templates) -> None:
    assert small.density is not None
    vs3 = SMALL.voxel_size_A ** 3
    checked = 0
    for i in range(len(small)):
        t = templates[small.class_names[small.labels[i]]]
        if t.density.shape[0] > SMALL.box:
            continue  # a template larger than the box is cut by it
        mass_t = float(t.density.sum()) * vs3
        assert small.density[i].sum() * vs3 == pytest.approx(mass_t, rel=0.02)
        # its centre of mass sits at the box centre plus the offset (x, y, z)
        d = small.density[i].astype(np.float64)
        zz, yy, xx = np.indices(d.shape)
        com = np.array([(d * a).sum() / d.sum() for a in (xx, yy, zz)])
        assert np.allclose(com, SMALL.box // 2 + small.offset_xyz_vox[i], atol=0.75)
        checked += 1
    assert checked >= 3


def test_volumes_show_the_target_where_its_density_is(small: CrowdedSubtomograms) -> None:
    """Mass is dark: each box anti-correlates with its target's density, best at zero shift."""
    assert small.density is not None
    v = small.volumes - small.volumes.mean(axis=(1, 2, 3), keepdims=True)
    d = small.density - small.density.mean(axis=(1, 2, 3), keepdims=True)

    def corr(shift: int) -> float:
        r = np.roll(d, shift, axis=3)
        return float(((v * r).sum(axis=(1, 2, 3))
                      / np.sqrt((v * v).sum(axis=(1, 2, 3)) * (r * r).sum(axis=(1, 2, 3)))).mean())

    c0 = corr(0)
    assert c0 < -0.3
    assert abs(c0) > max(abs(corr(s)) for s in (-3, 3))


def test_snr_is_measured_on_the_reference_boxes(small: CrowdedSubtomograms) -> None:
    s = small.meta["snr"]
    ref = next(c.name for c in class_set("liu22") if c.entry == SMALL.snr_reference)
    assert s["reference_class"] == ref
    assert s["n_boxes"] == int((small.labels == small.class_names.index(ref)).sum())
    if s["n_boxes"]:
        assert s["median"] > 0 and s["q25"] <= s["median"] <= s["q75"]


def test_same_seed_same_set_other_noise_seed_other_noise() -> None:
    cfg = dataclasses.replace(SMALL, n_complexes=22, total_dose_e_A2=50.0, tilt_step_deg=20.0)
    a, b = make_crowded(cfg, "cpu", progress=False), make_crowded(cfg, "cpu", progress=False)
    assert np.array_equal(a.volumes, b.volumes) and np.array_equal(a.masks, b.masks)
    c = make_crowded(dataclasses.replace(cfg, noise_seed=9), "cpu", progress=False)
    assert np.array_equal(a.masks, c.masks) and np.array_equal(a.density, c.density)
    assert not np.array_equal(a.volumes, c.volumes)


def test_subset_and_mask_level(small: CrowdedSubtomograms) -> None:
    n = len(small)
    cfg = dataclasses.replace(SMALL, n_subtomograms=n - 2, mask_level=0.1)
    d = make_crowded(cfg, "cpu", progress=False)
    assert len(d) == n - 2 and d.meta["extractable"] == n and d.meta["kept"] == n - 2
    # the subset keeps rows of the full set (same seed, same scene): find them by their centres
    rows = [int(np.flatnonzero((small.centre_xyz_vox == c).all(axis=1))[0])
            for c in d.centre_xyz_vox]
    assert np.array_equal(small.labels[rows], d.labels)
    assert small.masks is not None and d.masks is not None
    # a 10 % level holds more than the envelope, and still only the target's own density
    assert d.masks.sum() > small.masks[rows].sum()
    assert np.all(d.density[d.masks] >= 0)
    with pytest.raises(ValueError, match="exceeds the"):
        make_crowded(dataclasses.replace(SMALL, n_subtomograms=n + 1), "cpu", progress=False)


def test_crowded_set_validates_its_arrays(small: CrowdedSubtomograms) -> None:
    sub = small.subset([0, 1])
    assert len(sub) == 2 and isinstance(sub, CrowdedSubtomograms)
    assert np.array_equal(sub.euler_zyz_deg, small.euler_zyz_deg[:2])
    fields = {"density": sub.density, "euler_zyz_deg": sub.euler_zyz_deg,
              "offset_xyz_vox": sub.offset_xyz_vox, "centre_xyz_vox": sub.centre_xyz_vox,
              "tomogram_index": sub.tomogram_index}
    args = (sub.volumes, sub.labels, sub.masks, sub.class_names, sub.voxel_size_A)
    bad = sub.volumes.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CrowdedSubtomograms(bad, *args[1:], **fields)
    with pytest.raises(ValueError, match="labels must have shape"):
        CrowdedSubtomograms(sub.volumes, sub.labels[:1], *args[2:], **fields)
    with pytest.raises(ValueError, match=r"density has shape \(1, 16, 16, 16\)"):
        CrowdedSubtomograms(*args, **{**fields, "density": sub.density[:1]})
    with pytest.raises(ValueError, match="euler_zyz_deg is required"):
        CrowdedSubtomograms(*args, **{**fields, "euler_zyz_deg": None})


def test_save_load_round_trip(small: CrowdedSubtomograms, tmp_path: Path) -> None:
    dest = save_crowded(tmp_path / "set", small)
    back = load_crowded(dest)
    for name in ("volumes", "labels", "masks", "density", "euler_zyz_deg", "offset_xyz_vox",
                 "centre_xyz_vox", "tomogram_index"):
        assert np.array_equal(getattr(back, name), getattr(small, name)), name
    assert back.meta["config_hash"] == small.meta["config_hash"]
    assert (dest / "subtomograms" / "labels.csv").is_file()
    assert (dest / "density" / "labels.csv").is_file()


def test_a_failed_save_leaves_nothing(small: CrowdedSubtomograms, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(crowded, "_poses_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        save_crowded(tmp_path / "set", small)
    assert list(tmp_path.iterdir()) == []


def test_ensure_crowded_caches_by_config_hash(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = dataclasses.replace(SMALL, n_complexes=22, total_dose_e_A2=100.0)
    first = ensure_crowded(cfg, tmp_path, "cpu", progress=False, extra_meta={"note": "x"})
    folder = tmp_path / "crowded" / f"liu22_{config_hash(cfg)[:16]}"
    assert (folder / "config.json").is_file() and first.meta["note"] == "x"

    def no_generation(*args, **kwargs):
        raise AssertionError("regenerated a cached set")

    monkeypatch.setattr(crowded, "make_crowded", no_generation)
    again = ensure_crowded(cfg, tmp_path, "cpu", progress=False)
    assert np.array_equal(again.volumes, first.volumes) and again.meta["note"] == "x"


def test_pilot_keeps_height_and_number_density() -> None:
    cfg = dataclasses.replace(SMALL, tomogram_shape=(300, 600, 600), n_complexes=10_000,
                              box=40)
    p = pilot_config(cfg, 160)
    assert p.tomogram_shape == (300, 160, 160) and p.n_complexes == round(10_000 * 160 ** 2 / 600 ** 2)
    assert p.seed != cfg.seed and p.n_subtomograms is None
    with pytest.raises(ValueError, match="at least the box"):
        pilot_config(cfg, 32)


def test_calibration_hits_the_target_and_snr_grows_like_dose(tmp_path: Path) -> None:
    # SHREC 2020's twelve classes (TRiC, 4v94, among them): five copies of each in the pilot
    cfg = dataclasses.replace(SMALL, class_set="shrec2020", tomogram_shape=(40, 64, 64),
                              n_complexes=60, total_dose_e_A2=40.0, tilt_step_deg=20.0,
                              snr_reference="4v94")
    cal = calibrate_dose(cfg, 0.2, pilot_xy=64, rtol=0.05, device="cpu", progress=False)
    m = cal.measurements
    assert abs(m[-1]["snr"] / 0.2 - 1) <= 0.05 and cal.dose_e_A2 == m[-1]["dose_e_A2"]
    if len(m) >= 2:
        # shot noise: SNR about proportional to dose (radiation damage bends it slightly)
        slope = np.log(m[1]["snr"] / m[0]["snr"]) / np.log(m[1]["dose_e_A2"] / m[0]["dose_e_A2"])
        assert 0.8 < slope < 1.1
    # cached: the second call reads the file
    a = ensure_calibration(cfg, 0.2, tmp_path, pilot_xy=64, device="cpu", progress=False)
    files = list((tmp_path / "crowded").glob("calibration_*.json"))
    assert len(files) == 1
    b = ensure_calibration(cfg, 0.2, tmp_path, pilot_xy=64, device="cpu", progress=False)
    assert a.to_dict() == b.to_dict() == cal.to_dict()


def test_calibration_bad_input() -> None:
    with pytest.raises(ValueError, match="target_snr must be a positive number"):
        calibrate_dose(SMALL, 0.0)
    with pytest.raises(ValueError, match="rtol"):
        calibrate_dose(SMALL, 0.1, rtol=2.0)
    assert issubclass(CalibrationError, RuntimeError)


def test_runs_on_the_device(device: torch.device) -> None:
    cfg = dataclasses.replace(SMALL, n_complexes=22, total_dose_e_A2=100.0, tilt_step_deg=20.0)
    d = make_crowded(cfg, device, progress=False)
    assert d.meta["device"].startswith(device.type) and len(d) > 0


def test_oversampled_scene_keeps_mass_and_masks() -> None:
    """With the scene twice as fine as the tomogram, densities are block means (mass kept) and
    masks the blocks that are at least half target."""
    cfg = dataclasses.replace(SMALL, class_set="shrec2020", tomogram_shape=(32, 48, 48),
                              n_complexes=24, oversample=2, tilt_step_deg=20.0)
    d = make_crowded(cfg, "cpu", progress=False)
    t = load_templates({c.name: c.entry for c in class_set("shrec2020")}, cfg.voxel_size_A / 2)
    assert len(d) > 0 and d.density is not None and d.masks is not None
    checked = 0
    for i in range(len(d)):
        tp = t[d.class_names[d.labels[i]]]
        if tp.density.shape[0] > 2 * cfg.box:
            continue
        mass = float(tp.density.sum()) * (cfg.voxel_size_A / 2) ** 3
        assert d.density[i].sum() * cfg.voxel_size_A ** 3 == pytest.approx(mass, rel=0.02)
        checked += 1
    assert checked > 0
    assert all(d.masks[i].any() for i in range(len(d)))


def test_pilot_tomograms_show_one_region_at_several_doses() -> None:
    """Same scene and imaging seed: the same dose gives the same tomogram; a tenth of the dose
    leaves the noise-free signal and multiplies the shot-noise variance by ten, so the
    variance grows, by less than ten."""
    tomos, n = crowded.pilot_tomograms(SMALL, [1000.0, 100.0, 1000.0], device="cpu",
                                       progress=False)
    assert n == pilot_config(SMALL).n_complexes
    assert tomos[0].shape == SMALL.tomogram_shape and np.array_equal(tomos[0], tomos[2])
    assert 1.5 < np.var(tomos[1]) / np.var(tomos[0]) < 10.5        # signal + 10 x noise
    with pytest.raises(ValueError, match="doses must be positive"):
        crowded.pilot_tomograms(SMALL, [0.0])
