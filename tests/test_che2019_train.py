"""Training (Che et al. 2019, IV-A): the joint loss, learning, exact resume, many runs."""
from __future__ import annotations

import json

import pytest
import torch

from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, load_weights
from cryo_companion.papers.che2019.train import TrainConfig, joint_loss, run_dir, train, train_many

SMALL = DSRF3DConfig(n_classes=3, box=32, enc_widths=(4, 4, 8, 8, 8), fc_widths=(16, 16))


def stub_batches(box: int = 32):
    """A stand-in for the simulator: class k is a ball of radius 4 + 3k at a random centre."""
    def fn(n: int, gen: torch.Generator):
        dev = gen.device
        label = torch.randint(0, 3, (n,), generator=gen, device=dev)
        c = box / 2 + (torch.rand(n, 3, generator=gen, device=dev) - 0.5) * 6
        g = torch.arange(box, device=dev, dtype=torch.float32)
        zz, yy, xx = torch.meshgrid(g, g, g, indexing="ij")
        d2 = ((zz - c[:, 0, None, None, None]) ** 2 + (yy - c[:, 1, None, None, None]) ** 2
              + (xx - c[:, 2, None, None, None]) ** 2)
        mask = d2 <= ((4 + 3 * label).float() ** 2)[:, None, None, None]
        x = mask.float() + 0.3 * torch.randn(n, box, box, box, generator=gen, device=dev)
        return (x - x.mean()) / x.std(), label, mask
    return fn


def test_joint_loss_weights_and_true_class_only():
    torch.manual_seed(0)
    lp = torch.log_softmax(torch.randn(4, 3), 1)
    ml = torch.randn(4, 3, 5, 5, 5)
    y = torch.tensor([0, 2, 1, 2])
    m = torch.rand(4, 5, 5, 5) > 0.5
    tot, cls, seg = joint_loss(lp, ml, y, m, 0.15)
    assert cls == pytest.approx(float(-lp[torch.arange(4), y].mean()))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(ml[torch.arange(4), y], m.float())
    assert seg == pytest.approx(float(bce))
    assert tot == pytest.approx(0.15 * float(cls) + 0.85 * float(seg))
    # the masks of the other classes do not enter the loss (III-C-2)
    ml2 = ml.clone()
    other = torch.ones(4, 3, dtype=torch.bool)
    other[torch.arange(4), y] = False
    ml2[other] = 100.0
    assert joint_loss(lp, ml2, y, m, 0.15)[0] == pytest.approx(float(tot))


def test_config_validation():
    with pytest.raises(ValueError, match="arm"):
        TrainConfig(arm="mixed")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="iters"):
        TrainConfig(iters=0)


def _cfg(**kw):
    base = {"arm": "randomized", "seed": 3, "iters": 4, "batch_size": 2, "checkpoint_every": 2,
                "val_every": 2, "val_size": 4, "model": SMALL}
    base.update(kw)
    return TrainConfig(**base)


def test_resume_is_exact(tmp_path):
    names = ["s", "m", "l"]
    full = train(_cfg(), tmp_path / "full", batch_fn=stub_batches(), class_names=names,
                 progress=False)
    # an "interrupted" run: the same configuration stopped after 2 iterations ...
    half = tmp_path / "half"
    train(_cfg(iters=2), half, batch_fn=stub_batches(), class_names=names, progress=False)
    ck = torch.load(half / "checkpoint.pt", weights_only=False)
    ck["config"] = _cfg().to_dict()          # ... as the 4-iteration run would have left it
    torch.save(ck, half / "checkpoint.pt")
    resumed = train(_cfg(), half, batch_fn=stub_batches(), class_names=names, resume=True,
                    progress=False)
    a, _ = load_weights(full.weights)
    b, _ = load_weights(resumed.weights)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert [h["iteration"] for h in resumed.summary["history"]] == [2, 4]
    assert resumed.summary["history"] == full.summary["history"]
    # resuming with another configuration is refused
    with pytest.raises(ValueError, match="another configuration"):
        train(_cfg(lr=1e-3), half, batch_fn=stub_batches(), class_names=names, resume=True,
              progress=False)


def test_outputs_and_timing(tmp_path):
    res = train(_cfg(arm="baseline"), tmp_path, batch_fn=stub_batches(),
                class_names=["s", "m", "l"], progress=False)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["n_parameters"] > 0 and s["config"]["arm"] == "baseline"
    t = s["timing"]
    assert t["iters_timed"] == 4 and t["sim_s"] > 0 and t["net_s"] > 0
    assert 0 < t["sim_fraction"] < 1
    _, meta = load_weights(res.weights)
    assert meta["threshold"] == 0.2 and meta["training"]["arm"] == "baseline"
    assert all(torch.isfinite(torch.tensor(h["val_loss"])) for h in s["history"])


def test_learns_stub_task(tmp_path):
    """Loss falls on an easy task: a wrong loss/optimizer wiring would not."""
    torch.manual_seed(0)
    cfg = _cfg(iters=30, batch_size=4, val_every=30, val_size=16, checkpoint_every=0,
               lr=5e-2)
    res = train(cfg, tmp_path, batch_fn=stub_batches(), class_names=["s", "m", "l"],
                progress=False)
    h = res.summary["history"][-1]
    gen = torch.Generator().manual_seed(1_000_003 + cfg.seed)
    x, y, m = stub_batches()(16, gen)
    torch.manual_seed(cfg.seed)                   # the initialisation train() starts from
    with torch.no_grad():
        o = DSRF3DSegNet(SMALL)(x)
    untrained = joint_loss(o.log_probs, o.mask_logits, y, m, cfg.lam)[0]
    assert h["val_loss"] < 0.7 * float(untrained)
    assert h["val_pixel_accuracy"] > 0.8


def test_train_many_collects_finished_runs(tmp_path):
    # finished runs with the same configuration are collected, not repeated (no subprocess here)
    cfgs = [_cfg(arm=a, seed=s, iters=1, val_every=0, checkpoint_every=0)
            for a in ("randomized", "baseline") for s in (0, 1)]
    for c in cfgs:
        train(c, run_dir(tmp_path, c), batch_fn=stub_batches(), class_names=["s", "m", "l"],
              progress=False)
    runs = train_many(cfgs, tmp_path, device="cpu", poll_s=0.1, progress=False)
    assert [(r.summary["config"]["arm"], r.summary["config"]["seed"]) for r in runs] == \
        [(c.arm, c.seed) for c in cfgs]
    assert all(r.weights.exists() for r in runs)
    with pytest.raises(ValueError, match="duplicate"):
        train_many(cfgs + cfgs[:1], tmp_path, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_many_reports_failed_subprocess(tmp_path):
    # a run that fails (CUDA requested where there is none) is reported with its log tail
    cfg = TrainConfig(arm="baseline", seed=0, iters=1)
    with pytest.raises(RuntimeError, match="1 of 1 training runs failed(.|\n)*no CUDA GPU"):
        train_many([cfg], tmp_path, device="cuda", poll_s=0.2, progress=False)
    assert (run_dir(tmp_path, cfg) / "train.log").exists()


def test_sim_chunk_must_divide_checkpoints():
    with pytest.raises(ValueError, match="sim_chunk"):
        TrainConfig(sim_chunk=3, checkpoint_every=1000)
    with pytest.raises(ValueError, match="sim_chunk"):
        TrainConfig(sim_chunk=0)


def test_chunked_simulation_resumes_exactly(tmp_path):
    """Batches simulated two at a time: an interrupted run resumes to the same weights."""
    names = ["s", "m", "l"]
    full = train(_cfg(sim_chunk=2), tmp_path / "full", batch_fn=stub_batches(),
                 class_names=names, progress=False)
    half = tmp_path / "half"
    train(_cfg(iters=2, sim_chunk=2), half, batch_fn=stub_batches(), class_names=names,
          progress=False)
    ck = torch.load(half / "checkpoint.pt", weights_only=False)
    ck["config"] = _cfg(sim_chunk=2).to_dict()
    torch.save(ck, half / "checkpoint.pt")
    resumed = train(_cfg(sim_chunk=2), half, batch_fn=stub_batches(), class_names=names,
                    resume=True, progress=False)
    a, _ = load_weights(full.weights)
    b, _ = load_weights(resumed.weights)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    # a chunk is not the same as one big batch: each iteration still sees batch_size samples
    losses: list[float] = []
    train(_cfg(sim_chunk=2, checkpoint_every=0), tmp_path / "log", batch_fn=stub_batches(),
          class_names=names, progress=False, loss_log=losses)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


def test_cli_takes_the_whole_config_as_json(tmp_path):
    """train_many hands every setting to its subprocesses (nothing silently dropped)."""
    from cryo_companion.cli.main import main

    cfg = _cfg(lr=1e-3, iters=2, checkpoint_every=0, val_every=0, val_size=0)
    blob = json.dumps(cfg.to_dict())
    assert main(["train", "--arm", "baseline", "--seed", "3", "--out", str(tmp_path / "x"),
                 "--config-json", blob]) == 2          # arm disagrees with the JSON
    assert not (tmp_path / "x" / "summary.json").exists()
