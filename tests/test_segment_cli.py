"""``cryo-companion segment``: SSN3D weights trained here at smoke scale segment a user's
subtomograms; integer masks, clean TSV, the contrast recorded or given, bad input refused."""
from __future__ import annotations

import json
import warnings

import mrcfile
import numpy as np
import pytest
import torch
from ssn3d_tiny import tiny_set

from cryo_companion.cli.main import main
from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet
from cryo_companion.models.dsrf3d import save_weights as save_dsrf3d
from cryo_companion.mrc import write_mrc
from cryo_companion.papers.ssn3d.train import RunSpec, Settings, train_runs
from cryo_companion.segment.network import (
    load_weights,
    preprocess,
    save_weights,
    segment_subtomograms,
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """SSN3D-ED trained for one epoch (4 iterations) on the tiny set, saved as the book does."""
    tiny = Settings.for_scale("smoke", batch_size=2, max_epochs=1, max_iters_per_epoch=None)
    run = train_runs([RunSpec("table2", "ed", "A", 0)], tiny_set(10), tiny, "cpu",
                     progress=False)[0]
    return save_weights(run.model, tmp_path_factory.mktemp("w") / "ssn3d.pt",
                        training={"seed": 0})


def _input(tmp_path, n=3, name="sub.mrc", voxel=13.68, contrast="dark"):
    vols = tiny_set(n, seed=5).volumes
    if contrast == "bright":
        vols = -vols
    path = write_mrc(tmp_path / name, vols if n > 1 else vols[0], voxel)
    return path, vols


def test_weights_record_box_voxel_size_and_contrast(weights) -> None:
    model, meta = load_weights(weights)
    assert meta["format"] == "cryo_companion.ssn3d/1" and meta["class_names"] == ["background",
                                                                                  "target"]
    assert meta["preprocessing"] == {"standardize": "per_subtomogram", "voxel_size_A": 13.68,
                                     "contrast": "dark", "box": 40}
    assert meta["fingerprint"] == model.cfg.fingerprint() and model.cfg.box == 40


def test_segment_writes_integer_masks_and_a_clean_table(tmp_path, weights, capsys) -> None:
    src, vols = _input(tmp_path)
    masks, prob = tmp_path / "masks.mrc", tmp_path / "prob.mrc"
    assert main(["segment", str(weights), str(src), "--out-masks", str(masks), "--out-prob",
                 str(prob), "--contrast", "dark"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == ("index\ttarget_voxels\ttarget_fraction\tmean_target_probability\t"
                        "centre_in_target")
    assert len(lines) == 4 and [ln.split("\t")[0] for ln in lines[1:]] == ["0", "1", "2"]
    assert "masks -> " in err and "warning" not in err
    with mrcfile.open(masks) as m:
        assert m.header.mode == 0 and m.data.shape == (3, 40, 40, 40)
        data = np.asarray(m.data)
        assert m.voxel_size.x == pytest.approx(13.68, rel=1e-4)
    assert set(np.unique(data)) <= {0, 1}
    # the same masks as the package function gives
    model, _ = load_weights(weights)
    p, ref = segment_subtomograms(model, torch.from_numpy(vols), invert=False)
    assert np.array_equal(data.astype(bool), ref.numpy())
    assert [int(ln.split("\t")[1]) for ln in lines[1:]] == ref.flatten(1).sum(1).tolist()
    with mrcfile.open(prob) as m:
        np.testing.assert_allclose(m.data, p.numpy(), rtol=1e-6)


def test_one_volume_and_the_contrast(tmp_path, weights, capsys) -> None:
    src, _ = _input(tmp_path, n=1)
    out, ref = tmp_path / "m.mrc", tmp_path / "p.mrc"
    assert main(["segment", str(weights), str(src), "--out-masks", str(out), "--out-prob",
                 str(ref)]) == 0
    dark = capsys.readouterr()
    assert "assuming mass is dark" in dark.err
    with mrcfile.open(out) as m:
        assert m.data.shape == (40, 40, 40)
    p_dark = mrcfile.read(ref)
    # inverted data, recorded as bright beside the input or said so: the same segmentation
    bright, _ = _input(tmp_path, n=1, name="bright.mrc", contrast="bright")
    (tmp_path / "bright.json").write_text(json.dumps({"contrast": "bright"}))
    for i, extra in enumerate(([], ["--contrast", "bright"], ["--contrast", "dark"])):
        prob = tmp_path / f"p{i}.mrc"
        assert main(["segment", str(weights), str(bright), "--out-prob", str(prob), *extra]) == 0
        got = capsys.readouterr()
        assert ("overrides the contrast 'bright'" in got.err) == (i == 2)
        same = np.allclose(mrcfile.read(prob), p_dark, rtol=1e-5, atol=1e-7)
        assert same == (i < 2), extra                # told "dark", bright data are not inverted
        if i < 2:
            assert got.out == dark.out


def test_preprocessing_standardises_each_box_on_its_own() -> None:
    x = torch.stack([torch.full((4, 4, 4), 3.0), torch.arange(64.0).reshape(4, 4, 4)])
    y = preprocess(x, invert=True)
    assert torch.equal(y[0], torch.zeros(4, 4, 4))          # a constant box becomes zeros
    assert float(y[1].mean()) == pytest.approx(0, abs=1e-6)
    assert float(y[1].std()) == pytest.approx(1, rel=1e-5)
    assert float(y[1, 0, 0, 0]) > 0                          # inverted: the smallest is largest
    assert torch.equal(preprocess(x[1:], invert=True), y[1:])


def _refused(capsys, argv, out, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_bad_input_is_one_line_before_any_work(tmp_path, weights, capsys) -> None:
    out = tmp_path / "m.mrc"
    small = write_mrc(tmp_path / "small.mrc", np.zeros((2, 32, 32, 32), np.float32), 13.68)
    _refused(capsys, ["segment", str(weights), str(small), "--out-masks", str(out)], out,
             "boxes of (32, 32, 32) voxels; the network takes 40^3")
    ten, _ = _input(tmp_path, name="ten.mrc", voxel=10.0)
    _refused(capsys, ["segment", str(weights), str(ten), "--out-masks", str(out)], out,
             "voxel size 10 Å differs from the network's 13.68 Å")
    nan = np.zeros((40, 40, 40), np.float32)
    nan[1, 2, 3] = np.nan
    with warnings.catch_warnings(), mrcfile.new(tmp_path / "nan.mrc") as m:
        warnings.simplefilter("ignore")
        m.set_data(nan)
    _refused(capsys, ["segment", str(weights), str(tmp_path / "nan.mrc"), "--out-masks",
                      str(out)], out, "NaN")
    src, _ = _input(tmp_path)
    other = save_dsrf3d(DSRF3DSegNet(DSRF3DConfig(n_classes=2, box=32, enc_widths=(2, 2, 2, 2, 2),
                                                  fc_widths=(2, 2)), ["a", "b"]),
                        tmp_path / "table1.pt")
    _refused(capsys, ["segment", str(other), str(src), "--out-masks", str(out)], out,
             "weights of another model", "cryo_companion.dsrf3d-segnet/1")
    _refused(capsys, ["segment", str(tmp_path / "absent.pt"), str(src), "--out-masks",
                      str(out)], out, "no such weights file")
    out.write_text("someone's")
    assert main(["segment", str(weights), str(src), "--out-masks", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "someone's"
    _refused(capsys, ["segment", str(weights), str(src), "--out-masks", str(src)],
             tmp_path / "never.mrc", "")
