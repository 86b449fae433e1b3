"""``cryo-companion tomogram``: outputs in the field's formats that the project's own commands
read back, a staged folder output, and hints that speak in options."""
from __future__ import annotations

import json
import os

import mrcfile
import numpy as np
import pytest

from cryo_companion.cli.main import main
from cryo_companion.mrc import read_mrc
from cryo_companion.papers.shrec2020.particles import read_particle_list

SMALL = ["--shape", "32", "48", "48", "--oversample", "1", "--particles", "4", "--classes",
         "1s3x", "3qm1", "--tilt-step", "10", "--device", "cpu", "--seed", "1"]


@pytest.fixture(scope="module")
def tomo(tmp_path_factory):
    out = tmp_path_factory.mktemp("tomo") / "t"
    assert main(["tomogram", "--out", str(out), *SMALL]) == 0
    return out


def test_files_and_formats(tomo):
    assert sorted(os.listdir(tomo)) == sorted(
        ["tomogram.mrc", "tiltseries.mrc", "tiltseries.tlt", "tiltseries.rawtlt",
         "class_mask.mrc", "occupancy.mrc", "particles.csv", "particles.star", "meta.json"])
    meta = json.loads((tomo / "meta.json").read_text())
    assert meta["contrast"] == "dark"
    with mrcfile.open(tomo / "tiltseries.mrc") as m:
        assert m.is_image_stack() and int(m.header.mode) == 2
        assert int(m.header.nz) == len(meta["tilts_deg"]) == 13
    for f in ("tiltseries.tlt", "tiltseries.rawtlt"):
        np.testing.assert_allclose(np.loadtxt(tomo / f), meta["tilts_deg"])
    for f in ("class_mask.mrc", "occupancy.mrc"):
        with mrcfile.open(tomo / f) as m:
            assert int(m.header.mode) in (0, 1, 6) and m.is_volume()
    occ = read_mrc(tomo / "occupancy.mrc").data
    cm = read_mrc(tomo / "class_mask.mrc").data
    assert occ.max() == 5 and set(np.unique(cm)) <= {0, 1, 2, 3}   # 4 complexes + 1 vesicle
    with mrcfile.open(tomo / "tomogram.mrc") as m:
        assert int(m.header.mode) == 2 and m.data.shape == (32, 48, 48)


def test_particle_lists_agree_with_the_maps_and_read_back(tomo):
    csv = read_particle_list(tomo / "particles.csv", any_class=True)
    star = read_particle_list(tomo / "particles.star", any_class=True)
    assert csv.classes == star.classes and csv.classes[0] == "membrane"
    np.testing.assert_allclose(csv.xyz, star.xyz, atol=1e-3)
    assert csv.angles_deg is not None and csv.angles_deg.shape == (5, 3)
    occ = read_mrc(tomo / "occupancy.mrc").data
    x, y, z = np.rint(csv.xyz[0]).astype(int)
    assert occ[z, y, x] == 1                      # the membrane's row lies on the membrane


@pytest.mark.parametrize("pred", ["particles.csv", "particles.star"])
def test_shrec_eval_scores_the_truth_as_perfect(tomo, tmp_path, capsys, pred):
    out = tmp_path / "ev.json"
    assert main(["shrec-eval", "--pred", str(tomo / pred), "--truth-list",
                 str(tomo / "particles.csv"), "--occupancy", str(tomo / "occupancy.mrc"),
                 "--class-mask", str(tomo / "class_mask.mrc"), "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["table3"]["TP"] == 5 and d["table3"]["FP"] == 0 and d["table3"]["F1 Score"] == 1
    assert d["table4"]["1s3x"] == d["table4"]["3qm1"] == d["table4"]["membrane"] == 1.0
    assert "Traceback" not in capsys.readouterr().err


def test_same_seed_same_files(tomo, tmp_path):
    again = tmp_path / "again"
    assert main(["tomogram", "--out", str(again), *SMALL]) == 0
    for f in ("particles.csv", "particles.star", "tiltseries.tlt"):
        assert (again / f).read_bytes() == (tomo / f).read_bytes(), f
    for f in ("occupancy.mrc", "tiltseries.mrc"):      # MRC labels carry mrcfile's timestamp
        np.testing.assert_array_equal(read_mrc(again / f).data, read_mrc(tomo / f).data)


def test_force_replaces_an_earlier_output_only(tomo, tmp_path, capsys):
    import shutil

    dest = tmp_path / "copy"
    shutil.copytree(tomo, dest)
    assert main(["tomogram", "--out", str(dest), *SMALL]) == 2
    assert "not empty" in capsys.readouterr().err
    (dest / "notes.txt").write_text("mine")
    assert main(["tomogram", "--out", str(dest), *SMALL, "--force"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    (dest / "notes.txt").unlink()
    assert main(["tomogram", "--out", str(dest), *SMALL, "--force", "--seed", "2"]) == 0
    assert (dest / "particles.csv").read_bytes() != (tomo / "particles.csv").read_bytes()
    assert not [n for n in os.listdir(dest) if n.startswith(".")]


def test_thin_ice_for_a_vesicle_gets_a_hint(tmp_path, capsys):
    out = tmp_path / "thin"
    rc = main(["tomogram", "--out", str(out), "--shape", "16", "32", "32", "--oversample", "1",
               "--particles", "2", "--classes", "1s3x", "--tilt-step", "10", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "ice too thin for a vesicle" in err and "--vesicles 0" in err and "--shape" in err
    assert not out.exists()
