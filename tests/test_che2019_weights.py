"""Committed weights: float16 files read back in float32 with the same classes; export of runs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, load_weights, save_weights
from cryo_companion.papers.che2019 import weights as W
from cryo_companion.papers.che2019.evaluate import predict, preprocess
from cryo_companion.papers.che2019.test_domain import DOMAIN_FILES, ensure_testset
from cryo_companion.papers.che2019.train import ARMS, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
#: Committed weights of real trained runs (seed 0 of each arm; read as float32 and compacted).
COMMITTED = sorted((ROOT / "results" / "weights").glob("table1_*_seed0.pt"))
TESTSETS = ROOT / "build" / "test-cache" / "testsets"
TINY = DSRF3DConfig(n_classes=4, box=32, enc_widths=(2, 2, 4, 4, 4), fc_widths=(4, 4))
NAMES = ["ribosome", "membrane", "TRiC", "proteasome"]


def _tiny_cfg(arm: str, seed: int = 0, iters: int = 1) -> TrainConfig:
    return TrainConfig(arm=arm, seed=seed, iters=iters, batch_size=2, val_every=0, val_size=0,
                       checkpoint_every=0, model=TINY)


@pytest.fixture(scope="module")
def test_inputs() -> list[torch.Tensor]:
    """Both frozen domains' smoke test sets, preprocessed as at test time."""
    out = []
    for d in DOMAIN_FILES:
        s = ensure_testset(TESTSETS, "smoke", "cpu", domain=d)
        out.append(preprocess(torch.from_numpy(s.volumes), 1.0, invert=True))
    return out


@pytest.mark.parametrize("src", COMMITTED, ids=lambda p: p.stem)
def test_float16_weights_give_the_same_classes_on_a_test_set(tmp_path, src, test_inputs):
    """Real trained weights rewritten in float16: half the file, read back as a float32 network,
    the same class for every subtomogram of both domains' test sets and the same mask on all but
    a few voxels (probabilities move by less than 1e-3)."""
    ref, meta_ref = load_weights(src)
    src32 = save_weights(ref, tmp_path / "w32.pt", threshold=meta_ref["threshold"],
                         preprocessing=meta_ref["preprocessing"], training=meta_ref["training"])
    dest = W.compact_weights(src32, tmp_path / "w16.pt")
    assert dest.stat().st_size < 0.52 * src32.stat().st_size
    got, meta = load_weights(dest)
    assert meta["state_dtype"] == "float16" and meta["threshold"] == meta_ref["threshold"]
    assert {p.dtype for p in got.parameters()} == {torch.float32}
    raw = torch.load(dest, weights_only=True)["state_dict"]
    assert {v.dtype for v in raw.values() if v.is_floating_point()} == {torch.float16}
    for x in test_inputs:
        a, b = predict(ref, x), predict(got, x)
        assert torch.equal(a.pred, b.pred)
        assert float((a.prob - b.prob).abs().max()) < 1e-3
        assert float((a.mask_prob - b.mask_prob).abs().max()) < 1e-3
        t = meta["threshold"]
        assert float((a.masks(t) != b.masks(t)).float().mean()) < 1e-3
    # compacting again changes nothing; bfloat16 is also possible, on request
    again = W.compact_weights(dest, tmp_path / "again.pt")
    m2, _ = load_weights(again)
    assert all(torch.equal(v, got.state_dict()[k]) for k, v in m2.state_dict().items())
    _, mb = load_weights(W.compact_weights(src, tmp_path / "bf16.pt", dtype="bfloat16"))
    assert mb["state_dtype"] == "bfloat16"


def test_compact_weights_refuses_what_it_cannot_write(tmp_path):
    model = DSRF3DSegNet(TINY, class_names=NAMES)
    src = save_weights(model, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="unknown dtype"):
        W.compact_weights(src, tmp_path / "x.pt", dtype="int8")
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="not a cryo_companion weights file"):
        W.compact_weights(tmp_path / "junk.pt", tmp_path / "x.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="format"):
        W.compact_weights(tmp_path / "other.pt", tmp_path / "x.pt")
    with torch.no_grad():
        next(model.parameters())[0].fill_(1e6)          # beyond float16's 65,504
    big = save_weights(model, tmp_path / "big.pt")
    with pytest.raises(ValueError, match="float16 range"):
        W.compact_weights(big, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_names_and_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path))
    assert W.weights_name("randomized+context", 2) == "table1_randomized+context_seed2.pt"
    assert W.weights_name("ablation:fixed_snr", 0) == "ablation_fixed_snr_seed0.pt"
    assert W.weights_dir() == tmp_path / "weights"
    assert W.records_dir("smoke") == tmp_path / "smoke" / "training"


def test_train_and_export_saves_each_group_and_skips_what_is_exported(tmp_path, monkeypatch):
    """Two groups (different settings): each exported as soon as it trained, float16 weights in
    results/weights and a record with provenance in results/training; a second call trains
    nothing; a changed setting or a damaged weights file trains that run again."""
    from cryo_companion.papers.che2019 import train as T

    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path / "results"))
    cfgs = [_tiny_cfg("baseline", 0), _tiny_cfg("ablation:fixed_cs", 1, iters=2)]
    seen: list[str] = []
    recs = W.train_and_export(cfgs, tmp_path / "runs", "cpu", scale="paper", progress=False,
                              on_export=lambda r: seen.append(r["data"]["weights"]))
    assert sorted(seen) == ["ablation_fixed_cs_seed1.pt", "table1_baseline_seed0.pt"]
    for c, r in zip(cfgs, recs):
        d = r["data"]
        assert TrainConfig.from_dict(d["config"]) == c and d["state_dtype"] == "float16"
        w = tmp_path / "results" / "weights" / d["weights"]
        _, meta = load_weights(w)
        assert meta["training"]["arm"] == c.arm
        assert r["provenance"]["scale"] == "paper" and r["provenance"]["seeds"] == [c.seed]
        on_disk = json.loads((tmp_path / "results" / "training"
                              / f"{W.record_name(c.arm, c.seed)}.json").read_text())
        assert on_disk == r
        assert W.exported(c) == r
    calls = []
    real = T.train_many
    monkeypatch.setattr(W, "train_many", lambda todo, *a, **k: calls.append(
        [c.arm for c in todo]) or real(todo, *a, **k))
    again = W.train_and_export(cfgs, tmp_path / "runs", "cpu", progress=False)
    assert calls == [] and again == recs
    # what the chapters read: every (arm, seed), None where not exported
    from cryo_companion.papers.che2019.table1_runs import exported_runs
    found = exported_runs(["baseline", "ablation:fixed_cs"], [0, 1])
    assert found == {("baseline", 0): recs[0], ("baseline", 1): None,
                     ("ablation:fixed_cs", 0): None, ("ablation:fixed_cs", 1): recs[1]}
    # another setting is another run; a damaged file is not an export
    assert W.exported(_tiny_cfg("baseline", 0, iters=3)) is None
    (tmp_path / "results" / "weights" / "table1_baseline_seed0.pt").write_bytes(b"x")
    assert W.exported(cfgs[0]) is None
    assert exported_runs(["baseline"], [0])[("baseline", 0)] is None
    W.train_and_export(cfgs, tmp_path / "runs", "cpu", progress=False)
    assert calls == [["baseline"]]
    assert W.exported(cfgs[0]) is not None
    # retrain (the smoke chapters): every run trained and exported again, none skipped
    seen.clear()
    W.train_and_export(cfgs, tmp_path / "runs2", "cpu", progress=False, retrain=True,
                       on_export=lambda r: seen.append(r["data"]["weights"]))
    assert sorted(calls[-1]) == ["ablation:fixed_cs", "baseline"]
    assert sorted(seen) == ["ablation_fixed_cs_seed1.pt", "table1_baseline_seed0.pt"]
    # --precision checked: an export in the other of bf16/tf32 is the same run, already trained
    from dataclasses import replace
    assert cfgs[0].precision == "tf32"
    assert W.as_exported(replace(cfgs[0], precision="bf16")) == cfgs[0]
    assert W.as_exported(cfgs[0]) == cfgs[0]
    other = replace(cfgs[0], precision="bf16", iters=5)          # another run: unchanged
    assert W.as_exported(other) == other
    assert W.as_exported(replace(cfgs[0], precision="fp32")).precision == "fp32"


def test_predict_works_with_every_arms_exported_weights(tmp_path, monkeypatch, capsys):
    """``cryo-companion predict`` reads the float16 weights of every Table I arm (one-iteration
    runs): one row per subtomogram, the same rows as from the float32 weights of the run."""
    from cryo_companion.cli.main import main
    from cryo_companion.mrc import write_mrc

    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path / "results"))
    recs = W.train_and_export([_tiny_cfg(a) for a in ARMS], tmp_path / "runs", "cpu",
                              progress=False)
    vols = torch.randn(3, 32, 32, 32, generator=torch.Generator().manual_seed(0)).numpy()
    write_mrc(tmp_path / "x.mrc", vols, 13.68)
    (tmp_path / "x.json").write_text(json.dumps({"contrast": "bright"}))
    for r in recs:
        d = r["data"]
        rows = {}
        for which, path in (("fp16", tmp_path / "results" / "weights" / d["weights"]),
                            ("fp32", tmp_path / "runs" / f"{d['arm']}_seed0" / "weights.pt")):
            assert main(["predict", str(path), str(tmp_path / "x.mrc")]) == 0
            rows[which] = capsys.readouterr().out.splitlines()
        assert len(rows["fp16"]) == 4 and rows["fp16"][0] == "index\tclass\tprobability"
        assert [r.split("\t")[1] for r in rows["fp16"]] == [r.split("\t")[1]
                                                            for r in rows["fp32"]]
        probs = [np.array([float(r.split("\t")[2]) for r in rows[k][1:]]) for k in rows]
        assert np.abs(probs[0] - probs[1]).max() <= 2e-3
