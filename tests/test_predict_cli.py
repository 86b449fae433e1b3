"""``cryo-companion predict``: classes printed, masks written, bad input refused cleanly."""
from __future__ import annotations

import warnings

import mrcfile
import numpy as np
import pytest
import torch

from cryo_companion.cli.main import main
from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, save_weights
from cryo_companion.mrc import write_mrc

CFG = DSRF3DConfig(n_classes=4, box=32, enc_widths=(4, 4, 8, 8, 8), fc_widths=(8, 8))
NAMES = ["ribosome", "membrane", "TRiC", "proteasome"]


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return save_weights(DSRF3DSegNet(CFG, NAMES), tmp_path / "w.pt", threshold=0.5)


def _stack(tmp_path, shape, name="in.mrc"):
    rng = np.random.default_rng(0)
    return write_mrc(tmp_path / name, rng.standard_normal(shape).astype(np.float32), 13.68)


def test_predict_stack_and_masks(tmp_path, weights, capsys):
    src = _stack(tmp_path, (3, 32, 32, 32))
    out = tmp_path / "masks.mrc"
    assert main(["predict", str(weights), str(src), "--out-masks", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [ln.split("\t") for ln in lines[1:4]]
    assert [r[0] for r in rows] == ["0", "1", "2"] and all(r[1] in NAMES for r in rows)
    with mrcfile.open(out) as m:
        data = np.asarray(m.data)
    assert data.shape == (3, 32, 32, 32) and set(np.unique(data)) <= {0.0, 1.0}


def test_predict_single_volume(tmp_path, weights, capsys):
    src = _stack(tmp_path, (32, 32, 32))
    out = tmp_path / "m.mrc"
    assert main(["predict", str(weights), str(src), "--out-masks", str(out)]) == 0
    with mrcfile.open(out) as m:
        assert m.data.shape == (32, 32, 32)


def test_other_box_refused_or_resampled(tmp_path, weights, capsys):
    src = _stack(tmp_path, (2, 40, 40, 40))
    out = tmp_path / "m.mrc"
    assert main(["predict", str(weights), str(src), "--out-masks", str(out)]) == 2
    err = capsys.readouterr().err
    assert "box 40^3 differs from the model's 32^3" in err and "--resample" in err
    assert not out.exists()
    assert main(["predict", str(weights), str(src), "--out-masks", str(out), "--resample"]) == 0
    with mrcfile.open(out) as m:
        assert m.data.shape == (2, 40, 40, 40)


def _assert_refused(args, out, capsys, match):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))          # no temporary left behind


def test_bad_inputs(tmp_path, weights, capsys):
    out = tmp_path / "m.mrc"
    txt = tmp_path / "notes.mrc"
    txt.write_text("this is not an MRC file\n" * 20)
    _assert_refused(["predict", str(weights), str(txt), "--out-masks", str(out)], out, capsys,
                    "not a valid MRC file")
    img = tmp_path / "image.mrc"
    with mrcfile.new(img) as m:
        m.set_data(np.zeros((32, 32), np.float32))
    _assert_refused(["predict", str(weights), str(img), "--out-masks", str(out)], out, capsys,
                    "dimensions")
    nan = np.zeros((32, 32, 32), np.float32)
    nan[1, 2, 3] = np.nan
    with warnings.catch_warnings(), mrcfile.new(tmp_path / "nan.mrc") as m:
        warnings.simplefilter("ignore")        # mrcfile warns about NaN header statistics
        m.set_data(nan)
    _assert_refused(["predict", str(weights), str(tmp_path / "nan.mrc"), "--out-masks",
                     str(out)], out, capsys, "NaN")
    src = _stack(tmp_path, (32, 32, 32))
    torch.save({"format": "someone-else/2", "state_dict": {}}, tmp_path / "other.pt")
    _assert_refused(["predict", str(tmp_path / "other.pt"), str(src), "--out-masks", str(out)],
                    out, capsys, "another model")
    _assert_refused(["predict", str(tmp_path / "absent.pt"), str(src), "--out-masks", str(out)],
                    out, capsys, "no such weights file")
    _assert_refused(["predict", str(weights), str(src), "--out-masks", str(out), "--threshold",
                     "1.5"], out, capsys, "threshold")


def test_other_voxel_size_refused(tmp_path, weights, capsys):
    """A box of the right size at another voxel size is not silently classified."""
    rng = np.random.default_rng(0)
    src = write_mrc(tmp_path / "ten.mrc", rng.standard_normal((32, 32, 32)).astype(np.float32),
                    10.0)
    out = tmp_path / "m.mrc"
    _assert_refused(["predict", str(weights), str(src), "--out-masks", str(out)], out, capsys,
                    "voxel size 10 Å differs from the model's 13.68 Å")


def test_contrast_option_inverts_dark_data(tmp_path, weights, capsys):
    """--contrast dark (raw reconstructions) and bright give the prediction of -x and x."""
    src = _stack(tmp_path, (2, 32, 32, 32))
    assert main(["predict", str(weights), str(src), "--contrast", "bright"]) == 0
    bright = capsys.readouterr().out
    neg = write_mrc(tmp_path / "neg.mrc", -mrcfile.read(src), 13.68)
    assert main(["predict", str(weights), str(neg), "--contrast", "dark"]) == 0
    assert capsys.readouterr().out.replace("neg.mrc", "in.mrc") == bright


def test_stdout_is_clean_tsv_and_messages_go_to_stderr(tmp_path, weights, capsys):
    src = _stack(tmp_path, (3, 32, 32, 32))
    out = tmp_path / "masks.mrc"
    assert main(["predict", str(weights), str(src), "--out-masks", str(out), "--contrast",
                 "bright"]) == 0
    cap = capsys.readouterr()
    rows = [ln.split("\t") for ln in cap.out.splitlines()]
    assert rows[0] == ["index", "class", "probability"] and len(rows) == 4
    assert all(len(r) == 3 and r[1] in NAMES and 0 <= float(r[2]) <= 1 for r in rows[1:])
    assert "masks" in cap.err and str(out) in cap.err
    with mrcfile.open(out) as m:
        assert int(m.header.mode) == 0          # an integer mask, not float32


def _predict(args, capsys):
    assert main(args) == 0
    cap = capsys.readouterr()
    return cap.out, cap.err


def test_contrast_recorded_by_simulate_is_used(tmp_path, weights, capsys):
    """The issue's case: `simulate` writes mass-bright volumes and says so in its JSON;
    predict with its defaults must use it (before, it assumed dark and gave wrong classes)."""
    z, y, x = np.mgrid[:32, :32, :32] - 15.5
    blob = write_mrc(tmp_path / "blob.mrc",
                     np.exp(-(x ** 2 + y ** 2 + (z / 2) ** 2) / 4).astype(np.float32), 13.68)
    sim = tmp_path / "sim.mrc"
    assert main(["simulate", "--structure", str(blob), "--box", "32", "--n", "3", "-o",
                 str(sim)]) == 0
    capsys.readouterr()
    assert '"contrast": "bright"' in sim.with_suffix(".json").read_text()
    auto, err = _predict(["predict", str(weights), str(sim)], capsys)
    assert "warning" not in err
    bright, _ = _predict(["predict", str(weights), str(sim), "--contrast", "bright"], capsys)
    _, err = _predict(["predict", str(weights), str(sim), "--contrast", "dark"], capsys)
    assert auto == bright
    assert "--contrast dark overrides the contrast 'bright' recorded in" in err


def test_no_recorded_contrast_warns_and_assumes_dark(tmp_path, weights, capsys):
    src = _stack(tmp_path, (2, 32, 32, 32))
    auto, err = _predict(["predict", str(weights), str(src)], capsys)
    assert err.count("\n") == 1 and "warning: no contrast recorded" in err and "dark" in err
    dark, err = _predict(["predict", str(weights), str(src), "--contrast", "dark"], capsys)
    assert auto == dark and err == ""
    (tmp_path / "in.json").write_text('{"contrast": "purple"}')
    assert main(["predict", str(weights), str(src)]) == 2
    assert "contrast 'purple' is not one of dark, bright" in capsys.readouterr().err


def test_bad_weights_file_is_one_line_of_our_own(tmp_path, capsys):
    src = _stack(tmp_path, (32, 32, 32))
    bad = tmp_path / "w.pt"
    bad.write_text("not weights\n")
    assert main(["predict", str(bad), str(src)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a cryo_companion weights file" in err
    assert "weights_only" not in err and "trust" not in err


def test_long_runs_show_progress_on_stderr_only(tmp_path, weights, capsys, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_PROGRESS", "1")     # as on a terminal
    src = _stack(tmp_path, (3, 32, 32, 32))
    assert main(["predict", str(weights), str(src), "--contrast", "bright",
                 "--batch-size", "1"]) == 0
    cap = capsys.readouterr()
    assert "predict" in cap.err and "3/3" in cap.err
    assert len(cap.out.splitlines()) == 4 and "predict" not in cap.out
