"""The SHREC 2020 data set: recipe facts, one tiny model end to end, the layout, the CLI."""
from __future__ import annotations

import json
import math

import mrcfile
import numpy as np
import pytest
import torch

from cryo_companion import rotation
from cryo_companion.cli.main import main as cli
from cryo_companion.papers.shrec2020.dataset import (
    CHOICES,
    PAPER_SNR,
    class_counts,
    counts_table,
    crowding_stats,
    fill_cavities,
    make_model,
    measure_snr,
    recipe,
    zyz_to_zxz_deg,
)
from cryo_companion.papers.shrec2020.layout import (
    MODEL_FILES,
    ensure_models,
    is_current,
    read_truth,
    write_label_mrc,
    write_model,
)
from cryo_companion.papers.shrec2020.metrics import (
    CLASS_ORDER,
    SCRIPT_Z_OFFSET,
    check_class_mask,
    check_truth,
)
from cryo_companion.papers.shrec2020.paper_tables import TABLE2_COUNTS

SMALL = ("1s3x", "3qm1", "3h84")     # small complexes: quick to prepare


def tiny(**kw):
    base = {"field_vox": 24, "particles": (6, 6), "tilt_step_deg": 30.0, "classes": SMALL,
            "margin_px": 8}
    return recipe("smoke", **{**base, **kw})


@pytest.fixture(scope="module")
def model():
    return make_model(tiny(), 9, 7)


def test_paper_recipe_facts():
    r = recipe("paper")
    im = r.imaging()
    assert len(im.tilts_deg) == 41 and im.tilts_deg[0] == -60 and im.tilts_deg[-1] == 60
    assert r.z_offset == SCRIPT_Z_OFFSET == 156 and r.reconstruction_slices == 512
    assert (r.field_vox, r.thickness_vox, r.field_vox * r.grand_model_factor) == (512, 200, 1024)
    assert im.propagation == "multislice" and im.slab_thickness_A == 50.0
    assert (im.voltage_kv, im.cs_mm, im.amplitude_contrast, im.defocus_um) == (300, 2.7, 0.08,
                                                                               -3.0)
    assert im.noise_model == "snr" and im.snr == 0.05 and not im.detector_mtf
    assert r.bfactor_A2 == pytest.approx(10_000.0)          # 1/e at 0.4 x Nyquist (0.05 / Å)
    assert im.structural_noise_sd_V == pytest.approx(0.04 / 0.15 * 4.5)
    assert r.solvent_sd_fraction == pytest.approx(0.01 / 0.15)
    assert r.particles == (2400, 2800) and r.classes == CLASS_ORDER
    assert PAPER_SNR == 0.004
    assert recipe("smoke").z_offset == 156                  # smoke keeps the benchmark's frame
    assert recipe("paper", field_vox=256).particles == (600, 700)
    assert all(len(c) == 3 for c in CHOICES)
    with pytest.raises(ValueError, match="valid PDB IDs"):
        recipe("paper", classes=("ribosome",))
    with pytest.raises(ValueError, match="unknown scale"):
        recipe("huge")
    with pytest.raises(ValueError, match="even margin"):
        recipe("paper", reconstruction_slices=511)


def test_zyz_to_zxz_gives_the_same_rotation():
    g = torch.Generator().manual_seed(0)
    R = rotation.random_rotation_matrices(50, g).to(torch.float64)
    phi, theta, psi = rotation.matrix_to_euler_zyz(R)

    def rz(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    def rx(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    for i in range(50):
        z1, x, z2 = zyz_to_zxz_deg([math.degrees(float(v[i])) for v in (phi, theta, psi)])
        assert -180 < z1 <= 180 and -180 < z2 <= 180
        M = rz(math.radians(z1)) @ rx(math.radians(x)) @ rz(math.radians(z2))
        assert np.allclose(M, R[i].numpy(), atol=1e-9)


def test_class_counts_total_in_range_and_seeded():
    r = recipe("paper")
    a = class_counts(r, torch.Generator().manual_seed(1))
    b = class_counts(r, torch.Generator().manual_seed(1))
    assert a == b and list(a) == list(CLASS_ORDER)
    assert 2400 <= sum(a.values()) <= 2800
    # uniform over classes: ~sum/12 each, binomial spread (sd ~ 14 for 2600)
    assert all(abs(v - sum(a.values()) / 12) < 70 for v in a.values())


def test_crowding_stats_hand_worked():
    occ = np.zeros((4, 4, 10), dtype=np.int32)
    occ[1:3, 1:3, 0:2] = 1
    occ[1:3, 1:3, 2:4] = 2          # shares a face with 1
    occ[1:3, 1:3, 7:9] = 3          # alone
    c = crowding_stats(occ, np.array([[0.5, 1.5, 1.5], [2.5, 1.5, 1.5], [7.5, 1.5, 1.5]]), 10.0)
    assert c["touching_pairs"] == 1 and c["touching_fraction"] == pytest.approx(2 / 3)
    assert c["contacts_per_particle"] == pytest.approx(2 / 3)
    assert c["occupied_fraction"] == pytest.approx(24 / 160)
    assert c["nn_centre_distance_nm"]["min"] == pytest.approx(2.0)


def test_measure_snr_is_the_variance_ratio():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(100_000, generator=g)
    n = 2 * torch.randn(100_000, generator=g)
    assert measure_snr(s, s + n) == pytest.approx(0.25, rel=0.03)
    with pytest.raises(ValueError, match="differ"):
        measure_snr(s, s[:10])


def test_counts_table_beside_table2():
    rows = counts_table({"1s3x": 3, "4d8q": 1})
    paper, ours = rows.values()
    assert paper["total"] == sum(TABLE2_COUNTS.values()) == 2782
    assert ours["1s3x"] == 3 and ours["3qm1"] == 0 and ours["total"] == 4


def test_tiny_model_is_consistent(model):
    r = tiny()
    F, Z = r.field_vox, r.thickness_vox
    assert model.reconstruction.shape == (512, F, F)
    assert model.grandmodel.shape == model.class_mask.shape == model.occupancy.shape == (Z, F, F)
    assert model.class_mask.dtype == np.int16 and model.occupancy.dtype == np.int16
    n = len(model.particles)
    assert n == 6 == model.stats["n_particles"] == int(model.occupancy.max())
    from cryo_companion.papers.shrec2020.particles import particle_list

    truth = particle_list([p["pdb"] for p in model.particles],
                          [p["xyz"] for p in model.particles])
    check_truth(truth, model.occupancy, min_centre_fraction=1.0)  # every centre in its own
    mapping = check_class_mask(model.class_mask, model.occupancy, truth)
    assert all(CLASS_ORDER[k - 1] == v for k, v in mapping.items())
    xyz = np.array([p["xyz"] for p in model.particles])
    assert np.array_equal(xyz, np.trunc(xyz)) and (xyz[:, 2] >= 0).all() and (xyz[:, 2] < Z).all()
    # ice is 4.5 V away from the particles (their density tails reach beyond the envelopes);
    # protein only adds to it; the solvent varies by 0.3 V in ice and not at all in protein
    gm = model.grandmodel_noisefree
    assert gm.min() >= 4.5 - 1e-5 and np.mean(np.abs(gm - 4.5) < 1e-3) > 0.9
    ice = np.abs(gm - 4.5) < 1e-6
    fl = model.grandmodel - gm
    assert fl[ice].std() == pytest.approx(0.01 / 0.15 * 4.5, rel=0.1)
    core = model.grandmodel_noisefree >= 7.0 - 1e-4       # full protein: no solvent
    if core.any():
        assert np.abs(fl[core]).max() < 1e-5
    snr = model.stats["snr"]
    assert snr["parameter_per_projection"] == 0.05 and snr["paper"] == 0.004
    assert 0 < snr["projection_mean"] < 0.05   # the structural noise adds to the detector's
    assert snr["tomogram_specimen_slices"] > 0
    assert sum(model.stats["counts"].values()) == n
    assert np.isfinite(model.reconstruction).all()


def test_same_seed_same_model(model):
    again = make_model(tiny(), 9, 7, snr=False)
    assert again.particles == model.particles
    assert np.array_equal(again.reconstruction, model.reconstruction)


def test_layout_round_trip_and_evaluation_in_both_modes(model, tmp_path, capsys):
    write_model(tmp_path, model, 10.0, {"recipe": tiny().to_dict(), "dataset_seed": 7})
    d = tmp_path / "model_9"
    assert sorted(p.name for p in d.iterdir()) == sorted(MODEL_FILES)
    for name in ("class_mask.mrc", "occupancy_mask.mrc"):
        with mrcfile.open(d / name) as m:
            assert m.header.mode == 1 and m.data.dtype == np.int16
    with mrcfile.open(d / "reconstruction.mrc") as m:
        assert m.data.shape == (512, 24, 24) and float(m.voxel_size.x) == pytest.approx(10.0)
    truth, occ, _, meta = read_truth(d)
    assert len(truth) == 6 and np.array_equal(occ, model.occupancy) and meta["dataset_seed"] == 7
    assert truth.angles_deg is not None and truth.angles_deg.shape == (6, 3)
    line = (d / "particle_locations.txt").read_text().splitlines()[0].split()
    assert len(line) == 7 and all(v.lstrip("-").isdigit() for v in line[1:4])
    assert is_current(d, tiny(), 7) and not is_current(d, tiny(), 8)
    args = ["shrec-eval", "--pred", str(d / "particle_locations.txt"), "--truth-list",
            str(d / "particle_locations.txt"), "--occupancy", str(d / "occupancy_mask.mrc"),
            "--class-mask", str(d / "class_mask.mrc")]
    for extra in ([], ["--benchmark-script"]):
        out = tmp_path / f"ev{len(extra)}.json"
        assert cli([*args, *extra, "--json", str(out)]) == 0
        ev = json.loads(out.read_text())
        assert ev["table3"]["TP"] == 6 and ev["table3"]["FP"] == 0 and ev["table3"]["AD"] == 0
    assert ev["localisation"]["z_shift"] == 156          # the mask's frame: the script shifts
    # a submission in the reconstruction's frame (z + 156) scores the same without the shift
    sub = tmp_path / "sub.txt"
    sub.write_text("".join(f"{c} {x:g} {y:g} {z + 156:g}\n"
                           for c, (x, y, z) in zip(truth.classes, truth.xyz)))
    out = tmp_path / "ev_script_frame.json"
    assert cli([*args[:2], str(sub), *args[3:], "--benchmark-script", "--json", str(out)]) == 0
    ev = json.loads(out.read_text())
    assert ev["table3"]["TP"] == 6 and ev["localisation"]["z_shift"] == 0
    capsys.readouterr()


def test_label_mrc_refuses_what_int16_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="int16"):
        write_label_mrc(tmp_path / "a.mrc", np.full((2, 2, 2), 40_000), 10.0)
    with pytest.raises(ValueError, match="integer"):
        write_label_mrc(tmp_path / "a.mrc", np.zeros((2, 2, 2), dtype=np.float32), 10.0)
    assert not list(tmp_path.iterdir())


def test_ensure_models_keeps_current_models(model, tmp_path):
    r = tiny()
    write_model(tmp_path, model, 10.0, {"recipe": r.to_dict(), "dataset_seed": 7})
    before = (tmp_path / "model_9" / "reconstruction.mrc").stat().st_mtime_ns
    stats = ensure_models(tmp_path, [9], r, 7)
    assert stats[0]["n_particles"] == 6
    assert (tmp_path / "model_9" / "reconstruction.mrc").stat().st_mtime_ns == before


TINY_CLI = ["--field", "24", "--particles", "3", "3", "--tilt-step", "30", "--classes", *SMALL,
            "--device", "cpu", "--no-snr"]


def test_cli_writes_models_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "data"
    assert cli(["shrec-data", "--out", str(out), "--models", "9", *TINY_CLI]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["model_9", "shrec_data.json"]
    summary = json.loads((out / "shrec_data.json").read_text())
    assert summary["models"] == [9] and summary["provenance"]["device"]
    assert summary["dataset_seed"] == 2020
    meta = json.loads((out / "model_9" / "meta.json").read_text())
    assert meta["recipe"]["field_vox"] == 24 and meta["provenance"]["scale"] == "smoke"
    before = (out / "model_9" / "reconstruction.mrc").read_bytes()
    capsys.readouterr()
    assert cli(["shrec-data", "--out", str(out), "--models", "9", *TINY_CLI]) == 2
    err = capsys.readouterr().err
    assert "exist already" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert (out / "model_9" / "reconstruction.mrc").read_bytes() == before
    assert cli(["shrec-data", "--out", str(out), "--models", "9", "--seed", "3", "--force",
                *TINY_CLI]) == 0
    assert (out / "model_9" / "reconstruction.mrc").read_bytes() != before


@pytest.mark.parametrize("extra,match", [
    (["--models", "3-12"], "models are 0-9"),
    (["--models", "x"], "expected numbers or ranges"),
    (["--classes", "ribosome"], "valid PDB IDs"),
    (["--tilt-step", "7"], "does not divide"),
])
def test_cli_bad_input_before_any_work(tmp_path, capsys, extra, match):
    out = tmp_path / "data"
    assert cli(["shrec-data", "--out", str(out), *TINY_CLI, *extra]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_cli_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert cli(["shrec-data", "--out", str(f), *TINY_CLI]) == 2
    assert "is a file" in capsys.readouterr().err


def test_fill_cavities_gives_a_chamber_to_its_particle():
    from cryo_companion.simulate.scene import make_template

    zz, yy, xx = np.indices((15, 15, 15))
    r = np.sqrt((zz - 7) ** 2 + (yy - 7) ** 2 + (xx - 7) ** 2)
    shell = make_template("4d8q", ((r >= 3) & (r <= 5)).astype(np.float32) * 0.8, 10.0)
    solid = make_template("1bxn", (r <= 3).astype(np.float32) * 0.8, 10.0)
    h = shell.density.shape[0] // 2
    occ = np.zeros((2 * h + 1, 2 * h + 1, 40), dtype=np.int32)
    c0 = h                                               # centre (x, y, z) = (h, h, h)
    env = (shell.density >= shell.threshold).numpy()
    occ[:, :, 0:2 * h + 1][env] = 1
    # a second shell centred on the last column (x = 39): cut in half by the volume's face
    occ[:, :, 39 - h:40][env[:, :, :h + 1]] = 2
    occ[c0 - 1:c0 + 2, c0 - 1:c0 + 2, 19:22] = 3
    cm = np.where(occ > 0, 12, 0)
    cm[occ == 3] = 9
    parts = [{"class_name": "4d8q", "centre_xyz_vox": [float(c0)] * 3,
              "euler_zyz_deg": [30.0, 50.0, 70.0]},
             {"class_name": "4d8q", "centre_xyz_vox": [39.0, float(c0), float(c0)],
              "euler_zyz_deg": [0.0, 0.0, 0.0]},
             {"class_name": "1bxn", "centre_xyz_vox": [20.0, float(c0), float(c0)],
              "euler_zyz_deg": [0.0, 0.0, 0.0]}]
    f, c = fill_cavities(occ, cm, parts, {"4d8q": shell, "1bxn": solid})
    assert occ[c0, c0, c0] == 0 and f[c0, c0, c0] == 1 and c[c0, c0, c0] == 12  # the chamber
    assert occ[c0, c0, 39] == 0 and f[c0, c0, 39] == 2   # kept although cut by the face
    assert ((f > 0) == (c > 0)).all() and (f[occ > 0] == occ[occ > 0]).all()
    assert (f == 3).sum() == 27 and f[0, 0, 20] == 0     # a solid particle is untouched


def test_hollow_tric_centres_lie_in_their_own_particles():
    from cryo_companion.papers.shrec2020.particles import particle_list

    m = make_model(tiny(classes=("4d8q",), particles=(3, 3), field_vox=40), 1, 0, snr=False)
    truth = particle_list([p["pdb"] for p in m.particles], [p["xyz"] for p in m.particles])
    check_truth(truth, m.occupancy, min_centre_fraction=1.0)
