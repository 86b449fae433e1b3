"""``cryo-companion dsmnet``: classes, masks and densities from DSM-Net weights; bad input
refused."""
from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from cryo_companion.cli.main import main
from cryo_companion.models.dsmnet import dsmnet, save_weights
from cryo_companion.mrc import write_mrc
from cryo_companion.papers.dsmnet.apply import apply_network, check_inputs
from cryo_companion.papers.dsmnet.evaluate import PREPROCESSING

NAMES = ["a", "b", "c"]
PRE = {**PREPROCESSING, "box": 16}


def _weights(tmp_path, variant="dsmnet", name="w.pt"):
    model = dsmnet(variant, seed=0, box=16, n_classes=3, widths=(4, 6, 8), fc_width=8,
                   class_names=NAMES)
    return save_weights(model, tmp_path / name, preprocessing=PRE)


def _mrc(tmp_path, shape, name="in.mrc", vs=13.68, sign=1.0):
    rng = np.random.default_rng(0)
    return write_mrc(tmp_path / name, sign * rng.standard_normal(shape).astype(np.float32), vs)


def test_stack_gives_classes_masks_and_densities(tmp_path, capsys) -> None:
    w, src = _weights(tmp_path), _mrc(tmp_path, (3, 16, 16, 16))
    masks, dens = tmp_path / "m.mrc", tmp_path / "d.mrc"
    assert main(["dsmnet", str(w), str(src), "--out-masks", str(masks), "--out-density",
                 str(dens), "--contrast", "dark"]) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[0] == "index\tclass\tprobability\ttarget_voxels" and len(lines) == 4
    rows = [ln.split("\t") for ln in lines[1:]]
    assert [r[0] for r in rows] == ["0", "1", "2"] and all(r[1] in NAMES for r in rows)
    assert all(0 < float(r[2]) <= 1 for r in rows)
    with mrcfile.open(masks) as m:
        mk = np.asarray(m.data)
        assert int(m.header.mode) == 0 and float(m.voxel_size.x) == pytest.approx(13.68)
    assert mk.shape == (3, 16, 16, 16) and set(np.unique(mk)) <= {0, 1}
    assert [int(r[3]) for r in rows] == [int(mk[i].sum()) for i in range(3)]
    with mrcfile.open(dens) as m:
        assert m.data.shape == (3, 16, 16, 16) and m.data.dtype == np.float32
    assert "target masks ->" in out.err and "warning" not in out.err


def test_single_volume_and_a_classifier_only(tmp_path, capsys) -> None:
    w = _weights(tmp_path, "cls", "cls.pt")
    src = _mrc(tmp_path, (16, 16, 16))
    assert main(["dsmnet", str(w), str(src)]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == "index\tclass\tprobability" and len(out.out.splitlines()) == 2
    assert "no contrast recorded" in out.err                 # assumed dark, with a warning
    d = tmp_path / "d.mrc"
    assert main(["dsmnet", str(w), str(src), "--out-density", str(d)]) == 2
    assert "--out-density: these weights (Cls Subnet) have no recovery head" in \
        capsys.readouterr().err
    assert not d.exists()
    w2, m = _weights(tmp_path, "seg", "seg.pt"), tmp_path / "m.mrc"
    assert main(["dsmnet", str(w2), str(src), "--out-masks", str(m), "--contrast", "dark"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "index\ttarget_voxels"
    with mrcfile.open(m) as f:
        assert f.data.shape == (16, 16, 16)


def test_bright_input_is_inverted_to_the_training_contrast(tmp_path, capsys) -> None:
    w = _weights(tmp_path)
    dark, bright = _mrc(tmp_path, (2, 16, 16, 16), "dark.mrc"), \
        _mrc(tmp_path, (2, 16, 16, 16), "bright.mrc", sign=-1.0)
    assert main(["dsmnet", str(w), str(dark), "--contrast", "dark"]) == 0
    a = capsys.readouterr().out
    assert main(["dsmnet", str(w), str(bright), "--contrast", "bright"]) == 0
    assert capsys.readouterr().out == a
    assert main(["dsmnet", str(w), str(bright), "--contrast", "dark"]) == 0
    assert capsys.readouterr().out != a


def test_bad_input_is_refused_before_any_output(tmp_path, capsys) -> None:
    w = _weights(tmp_path)
    out = tmp_path / "m.mrc"
    cases = [(_mrc(tmp_path, (2, 20, 20, 20), "box.mrc"), "box 20^3 differs from the model's 16^3"),
             (_mrc(tmp_path, (2, 16, 16, 16), "vs.mrc", vs=10.0),
              "voxel size 10 A differs from the model's 13.68 A")]
    for src, msg in cases:
        assert main(["dsmnet", str(w), str(src), "--out-masks", str(out), "--contrast",
                     "dark"]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1
        assert not out.exists()
    junk = tmp_path / "junk.pt"
    junk.write_text("no")
    src = _mrc(tmp_path, (2, 16, 16, 16))
    assert main(["dsmnet", str(junk), str(src)]) == 2
    assert "not a cryo_companion weights file" in capsys.readouterr().err
    out.write_text("exists")
    assert main(["dsmnet", str(w), str(src), "--out-masks", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "exists"


def test_apply_network_and_check_inputs(tmp_path) -> None:
    model = dsmnet("dsmnet", seed=0, box=16, n_classes=3, widths=(4, 6, 8), fc_width=8)
    x = torch.randn(5, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    res = apply_network(model, x, batch_size=2, progress=False)
    assert res["class_index"].shape == (5,) and res["probabilities"].shape == (5, 3)
    assert torch.allclose(res["probabilities"].sum(1), torch.ones(5))
    assert res["masks"].dtype == torch.bool and res["recovery"].shape == (5, 16, 16, 16)
    assert model.training                                        # its mode is restored
    # chunking does not change anything; the scale and offset of the input do not either
    one = apply_network(model, x * 7 + 3, batch_size=5, progress=False)
    assert torch.allclose(one["probabilities"], res["probabilities"], atol=1e-5)
    meta = {"preprocessing": PRE}
    assert check_inputs(model, meta, (5, 16, 16, 16), 13.68, "bright") is True
    assert check_inputs(model, meta, (5, 16, 16, 16), 13.7, "dark") is False
    with pytest.raises(ValueError, match="not cubic"):
        check_inputs(model, meta, (5, 16, 16, 15), 13.68, "dark")
    with pytest.raises(ValueError, match="unknown contrast"):
        check_inputs(model, meta, (5, 16, 16, 16), 13.68, "grey")
    with pytest.raises(ValueError, match="batch_size"):
        apply_network(model, x, batch_size=0)


def test_weights_trained_through_learn_run_in_the_command(tmp_path, monkeypatch, capsys) -> None:
    """A tiny DSM-Net trained by the chapter's path (learn.fit_many, its weights saved with the
    run) classifies, segments and recovers through ``cryo-companion dsmnet``."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from dsmnet_tiny import tiny_crowded

    from cryo_companion.papers.dsmnet import experiments
    from cryo_companion.papers.dsmnet.train import Settings
    from cryo_companion.runs.runtime import setup

    data = tiny_crowded(20)
    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(experiments, "ensure_data", lambda names, run, **kw: {"A": data})
    run = setup("smoke", "cpu", 0, chapter="dsmnet")
    settings = Settings.for_scale("smoke", widths=(2, 4, 8), fc_width=8, max_epochs=1)
    recs, _ = experiments.train_recorded(experiments.seed_runs(["table2/dsmnet"], [0]), run,
                                         settings, weights=("table2_dsmnet_seed0",),
                                         progress=False)
    w = experiments.weights_path("table2_dsmnet_seed0", "smoke")
    assert recs["table2_dsmnet_seed0"]["data"]["weights"] == w.name and w.is_file()
    src = write_mrc(tmp_path / "in.mrc", data.volumes[:3], 13.68)
    masks, dens = tmp_path / "m.mrc", tmp_path / "d.mrc"
    assert main(["dsmnet", str(w), str(src), "--out-masks", str(masks), "--out-density",
                 str(dens), "--contrast", "dark"]) == 0
    out = capsys.readouterr()
    rows = [ln.split("\t") for ln in out.out.strip().splitlines()[1:]]
    assert len(rows) == 3 and all(r[1] in data.class_names for r in rows)
    with mrcfile.open(dens) as m:
        assert m.data.shape == (3, 16, 16, 16)
    assert "warning" not in out.err
