"""``cryo-companion detect``: template matching end to end, a network from its weights file,
and bad input (one line, exit status 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cryo_companion import rotation
from cryo_companion.cli.main import main
from cryo_companion.detect import template_matching as tm
from cryo_companion.models import umc as um
from cryo_companion.mrc import write_mrc
from cryo_companion.papers.shrec2020 import tm as shrec_tm
from cryo_companion.papers.shrec2020.dataset import recipe, templates_for
from cryo_companion.papers.shrec2020.particles import read_particle_list
from cryo_companion.papers.shrec2020.pipelines import save_detector


@pytest.fixture(scope="module")
def tomogram(tmp_path_factory):
    """Two TRiCs (4d8q) and two Rubiscos (1bxn) in noise, at 1 nm, 40 slices."""
    t = templates_for(recipe("smoke", classes=("4d8q", "1bxn")))
    vol = torch.zeros(40, 56, 56)
    where = {"4d8q": [(20, 15, 15), (24, 40, 40)], "1bxn": [(20, 15, 40), (26, 40, 15)]}
    R = tm.rotation_set(5)
    for c, centres in where.items():
        p = shrec_tm.prepare_template(c, t[c].density, t[c].radius_vox, shrec_tm.TMSettings())
        for j, (z, y, x) in enumerate(centres):
            box = rotation.rotate_volumes(p.template[None], R[j:j + 1])[0]
            h = box.shape[0] // 2
            vol[z - h:z + h + 1, y - h:y + h + 1, x - h:x + h + 1] += box
    vol += 0.3 * float(vol[vol != 0].std()) * torch.randn(vol.shape,
                                                          generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("tomo") / "tomo.mrc"
    write_mrc(path, vol.numpy(), 10.0)
    return path, where


def test_template_matching_writes_the_three_lists(tomogram, tmp_path, capsys) -> None:
    path, where = tomogram
    out = tmp_path / "picks" / "tmf"
    rc = main(["detect", "tm-f", str(path), "--out", str(out), "--classes", "4d8q", "Rubisco",
               "--angular-step", "45", "--candidates", "4", "--n-per-class", "2",
               "--z-range", "5", "35", "--device", "cpu", "--batch-size", "16"])
    assert rc == 0
    std = capsys.readouterr()
    assert std.out.splitlines() == ["class\tdetections", "4d8q\t2", "1bxn\t2"]
    txt = read_particle_list(out.with_name("tmf.txt"))
    assert read_particle_list(out.with_name("tmf.csv")).classes == txt.classes
    star = read_particle_list(out.with_name("tmf.star"))
    np.testing.assert_allclose(star.xyz, txt.xyz)
    for c, centres in where.items():
        got = txt.zyx[[k for k, n in enumerate(txt.classes) if n == c]]
        for zyx in centres:                        # z back in the whole tomogram's frame
            assert np.sqrt(((got - np.array(zyx)) ** 2).sum(1)).min() <= 1.0, (c, zyx, got)
    rec = json.loads(out.with_name("tmf.json").read_text())
    assert rec["n_detections"] == 4 and rec["z_range"] == [5, 35]
    assert rec["record"]["per_class"]["4d8q"]["n_rotations"] == tm.n_rotations_for_step(45)
    # outputs exist now: refused without --force
    assert main(["detect", "tm-t", str(path), "--out", str(out), "--classes", "4d8q"]) == 2
    assert "exists" in capsys.readouterr().err


def test_a_trained_network_from_its_weights(tmp_path, capsys) -> None:
    net = um.UMC(um.UMCConfig(widths=(2, 4), outputs=(1, 13), patch=16),
                 generator=torch.Generator().manual_seed(0))
    w = save_detector(tmp_path / "umc.pt", "umc", net, voxel_size_A=10.0,
                      postprocess={"tile": 16, "crop": 2, "min_size": 1})
    vol = np.random.default_rng(0).normal(size=(12, 16, 20)).astype(np.float32)
    write_mrc(tmp_path / "t.mrc", vol, 10.0)
    out = tmp_path / "umc"
    assert main(["detect", "umc", str(tmp_path / "t.mrc"), "--out", str(out), "--weights",
                 str(w), "--device", "cpu"]) == 0
    rec = json.loads((tmp_path / "umc.json").read_text())
    assert rec["record"]["postprocess"]["tile"] == 16
    assert len(read_particle_list(tmp_path / "umc.txt")) == rec["n_detections"]
    assert "detections (umc" in capsys.readouterr().err
    # the wrong voxel size is one clear line
    write_mrc(tmp_path / "t5.mrc", vol, 5.0)
    assert main(["detect", "umc", str(tmp_path / "t5.mrc"), "--out", str(tmp_path / "x"),
                 "--weights", str(w)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "voxel size 5 A differs from the 10 A" in err[0]
    assert main(["detect", "yopo", str(tmp_path / "t.mrc"), "--out", str(tmp_path / "y"),
                 "--weights", str(w)]) == 2
    assert "holds a umc network" in capsys.readouterr().err


def test_bad_input_is_one_line(tmp_path, capsys) -> None:
    vol = np.zeros((8, 8, 8), dtype=np.float32)
    write_mrc(tmp_path / "unset.mrc", vol, 1.0)
    cases = [
        (["detect", "deepfinder", str(tmp_path / "unset.mrc"), "--out", str(tmp_path / "a")],
         "pass its weights with --weights"),
        (["detect", "tm-t", str(tmp_path / "unset.mrc"), "--out", str(tmp_path / "b")],
         "unset header"),
        (["detect", "tm-t", str(tmp_path / "unset.mrc"), "--out", str(tmp_path / "c"),
          "--voxel-size", "10", "--z-range", "3", "9"], "has 8 slices"),
        (["detect", "tm-t", str(tmp_path / "none.mrc"), "--out", str(tmp_path / "d")],
         "no such file"),
        (["detect", "tm-t", str(tmp_path / "unset.mrc"), "--out", str(tmp_path / "e"),
          "--voxel-size", "10", "--classes", "ribosome"], "unknown class"),
        (["detect", "umc", str(tmp_path / "unset.mrc"), "--out", str(tmp_path / "f"),
          "--weights", str(tmp_path / "w.pt"), "--classes", "1bxn"], "template matching"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (argv, err)
