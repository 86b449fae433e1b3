"""Training (Che et al. 2019, IV-A): the joint loss, learning, exact resume, many runs."""
from __future__ import annotations

import json

import pytest
import torch

from cryo_companion.metrics import segmentation_metrics
from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, load_weights
from cryo_companion.papers.che2019.train import (
    TrainConfig,
    joint_loss,
    load_summary,
    run_dir,
    train,
    train_many,
)
from cryo_companion.simulate.randomization import standardize_batch

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
    untrained = joint_loss(o.log_probs, o.mask_logits, y, m, cfg.cls_weight)[0]
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
        train_many([cfg], tmp_path, device="cuda", poll_s=0.2, progress=False,
                   launcher="processes")
    assert (run_dir(tmp_path, cfg) / "train.log").exists()
    # in one process the same request fails at once, before any work
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        train_many([cfg], tmp_path / "inprocess", device="cuda", progress=False)


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


# --- the Table I loop before cryo_companion.learn, kept as the reference ---------------------
def reference_train(cfg: dict, batch_fn, class_names, out=None, stop=None):
    """A faithful minimal copy of ``train()`` as it was before ``learn.fit`` (commit d26ccf1):
    seed, model, SGD, validation set, chunked standardised batches, joint loss with ``lam``,
    history, checkpoints in the old format. Returns (losses, model, history)."""
    torch.manual_seed(cfg["seed"])
    model = DSRF3DSegNet(DSRF3DConfig.from_dict(cfg["model"]), class_names=class_names)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          nesterov=True)
    val = None
    if cfg["val_size"] > 0 and cfg["val_every"] > 0:
        vx, vy, vm = batch_fn(cfg["val_size"],
                              torch.Generator().manual_seed(1_000_003 + cfg["seed"]))
        val = (standardize_batch(vx), vy, vm)
    gen = torch.Generator().manual_seed(cfg["seed"])
    losses, history, chunk = [], [], []
    stop = stop or cfg["iters"]
    for it in range(stop):
        if not chunk:
            n = min(cfg["sim_chunk"], cfg["iters"] - it)
            xs, ys, ms = batch_fn(cfg["batch_size"] * n, gen)
            chunk = [(standardize_batch(xs[i::n]), ys[i::n], ms[i::n]) for i in range(n)]
            chunk.reverse()
        x, y, m = chunk.pop()
        o = model(x)
        loss, lc, ls = joint_loss(o.log_probs, o.mask_logits, y, m, cfg["lam"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss, lc, ls = loss.detach(), lc.detach(), ls.detach()
        losses.append(float(loss))
        done = it + 1
        if val is not None and (done % cfg["val_every"] == 0 or done == cfg["iters"]):
            with torch.no_grad():
                model.eval()
                vl, preds, masks = [], [], []
                for i in range(0, val[0].shape[0], 64):
                    ov = model(val[0][i:i + 64])
                    vl.append(float(joint_loss(ov.log_probs, ov.mask_logits, val[1][i:i + 64],
                                               val[2][i:i + 64], cfg["lam"])[0])
                              * val[0][i:i + 64].shape[0])
                    p = ov.log_probs.argmax(1)
                    preds.append(p)
                    masks.append(ov.mask_logits[torch.arange(p.shape[0]), p] > 0)
                model.train()
            seg = segmentation_metrics(torch.cat(masks), val[2])
            history.append({"iteration": done, "train_loss": float(loss),
                            "train_cls": float(lc), "train_seg": float(ls),
                            "val_loss": sum(vl) / val[0].shape[0],
                            "val_accuracy": float((torch.cat(preds) == val[1]).float().mean()),
                            "val_pixel_accuracy": seg["pixel_accuracy"],
                            "val_miou": seg["miou"]})
    if out is not None:     # the old checkpoint format (at a chunk boundary)
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"config": cfg, "iteration": stop, "model": model.state_dict(),
                    "optimizer": opt.state_dict(), "generator": gen.get_state(),
                    "rng": {"torch_cpu": torch.get_rng_state()}, "history": history,
                    "timing": {"sim_s": 0.5, "net_s": 1.0, "iters_timed": stop}},
                   out / "checkpoint.pt")
    return losses, model, history


def _old_dict(cfg: TrainConfig) -> dict:
    d = cfg.to_dict()
    d["lam"] = d.pop("cls_weight")
    return d


@pytest.mark.parametrize("chunk", [1, 2])
def test_learn_path_equals_the_old_loop(tmp_path, chunk):
    """Same settings, same seed: identical losses, history and weights (CPU)."""
    cfg = _cfg(iters=4, sim_chunk=chunk, cls_weight=0.3)
    names = ["s", "m", "l"]
    ref_losses, ref_model, ref_hist = reference_train(_old_dict(cfg), stub_batches(), names)
    losses: list[float] = []
    res = train(cfg, tmp_path, batch_fn=stub_batches(), class_names=names, progress=False,
                loss_log=losses)
    assert losses == ref_losses
    assert res.summary["history"] == ref_hist
    new, _ = load_weights(res.weights)
    for k, v in ref_model.state_dict().items():
        assert torch.equal(new.state_dict()[k], v), k


def test_resume_from_a_checkpoint_of_the_old_loop(tmp_path):
    """An old checkpoint (config key ``lam``, no batch-source state) resumes exactly."""
    cfg = _cfg(iters=4, val_every=0, val_size=0, checkpoint_every=2)
    names = ["s", "m", "l"]
    full, model_full, _ = reference_train(_old_dict(cfg), stub_batches(), names)
    reference_train(_old_dict(cfg), stub_batches(), names, out=tmp_path, stop=2)
    losses: list[float] = []
    res = train(cfg, tmp_path, batch_fn=stub_batches(), class_names=names, resume=True,
                progress=False, loss_log=losses)
    assert losses == full[2:]
    new, _ = load_weights(res.weights)
    for k, v in model_full.state_dict().items():
        assert torch.equal(new.state_dict()[k], v), k
    assert res.summary["timing"]["iters_timed"] == 4     # 2 recorded before, 2 now


def test_config_reads_the_old_key_lam():
    d = _cfg(cls_weight=0.25).to_dict()
    assert "lam" not in d and d["cls_weight"] == 0.25
    old = _old_dict(_cfg(cls_weight=0.25))
    assert TrainConfig.from_dict(old) == _cfg(cls_weight=0.25)
    assert _cfg(cls_weight=0.25).same_run(old) and not _cfg().same_run(old)
    with pytest.raises(ValueError, match="differ"):
        TrainConfig.from_dict({**d, "lam": 0.5})
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({**d, "lambda": 0.5})
    with pytest.raises(ValueError, match="cls_weight"):
        _cfg(cls_weight=1.5)


def test_old_summaries_and_cli_json_are_read(tmp_path):
    from cryo_companion.cli.main import main

    cfg = _cfg(iters=1, val_every=0, val_size=0, checkpoint_every=0)
    train(cfg, run_dir(tmp_path, cfg), batch_fn=stub_batches(), class_names=["s", "m", "l"],
          progress=False)
    path = run_dir(tmp_path, cfg) / "summary.json"
    s = json.loads(path.read_text())
    s["config"] = _old_dict(cfg)                      # as written before the rename
    path.write_text(json.dumps(s))
    assert load_summary(run_dir(tmp_path, cfg)).summary["config"] == cfg.to_dict()
    # a finished run with the old key is collected, not repeated
    runs = train_many([cfg], tmp_path, device="cpu", progress=False)
    assert runs[0].summary["config"]["cls_weight"] == cfg.cls_weight
    # --config-json with the old key: parsed (the arm check then refuses the mismatch)
    assert main(["train", "--arm", "baseline", "--seed", "3", "--out", str(tmp_path / "x"),
                 "--config-json", json.dumps(_old_dict(cfg))]) == 2


def test_train_many_in_one_process_equals_runs_alone(tmp_path):
    """Two arms trained as one group in one process (simulator batches, the loop stepper):
    the same weights as each run trained alone; summaries say how they ran."""
    four = DSRF3DConfig(n_classes=4, box=32, enc_widths=(4, 4, 8, 8, 8), fc_widths=(16, 16))
    cfgs = [_cfg(arm=a, seed=1, iters=2, batch_size=2, val_every=2, val_size=2,
                 checkpoint_every=0, model=four) for a in ("randomized", "baseline")]
    runs = train_many(cfgs, tmp_path / "group", device="cpu", strategy="loop", progress=False)
    for c, r in zip(cfgs, runs):
        assert r.summary["timing"]["runs_per_step"] == 2
        assert r.summary["timing"]["stepper"] == "loop"
        alone = train(c, tmp_path / "alone" / c.arm, progress=False)
        a, _ = load_weights(alone.weights)
        b, _ = load_weights(r.weights)
        for k, v in a.state_dict().items():
            assert torch.equal(b.state_dict()[k], v), k
        assert r.summary["history"] == alone.summary["history"]


def test_train_many_cli(tmp_path, capsys):
    """cryo-companion train-many: one line per run; a second call collects the finished runs."""
    from cryo_companion.cli.main import main

    four = DSRF3DConfig(n_classes=4, box=32, enc_widths=(2, 2, 4, 4, 4), fc_widths=(4, 4))
    base = TrainConfig(iters=1, batch_size=2, val_every=0, val_size=0, checkpoint_every=0,
                       model=four).to_dict()
    argv = ["train-many", "--root", str(tmp_path), "--arms", "baseline", "--seeds", "0", "1",
            "--device", "cpu", "--quiet", "--config-json", json.dumps(base)]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["baseline seed 0", "baseline seed 1"]
    mtime = (tmp_path / "baseline_seed0" / "weights.pt").stat().st_mtime_ns
    assert main(argv) == 0
    assert (tmp_path / "baseline_seed0" / "weights.pt").stat().st_mtime_ns == mtime


def test_measured_step_times_come_from_the_bench_record(tmp_path, monkeypatch):
    from cryo_companion.papers.che2019.train import measured_step_ms

    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path))
    cpu = torch.device("cpu")
    assert measured_step_ms(6, cpu) == {}                        # nothing recorded
    modes = {"loop": {"6": {"ms_per_step": 30.0}}, "vmap": {"6": {"ms_per_step": 12.0}},
             "processes": {"6": {"ms_per_step": 40.0}}}
    rec = {"data": {"cpu": {"settings": {"batch": 32}, "networks": {"dsrf3d": {"modes": modes}}}}}
    (tmp_path / "bench_train.json").write_text(json.dumps(rec))
    assert measured_step_ms(6, cpu) == {"loop": 30.0, "vmap": 12.0}
    assert measured_step_ms(2, cpu) == {}                        # N = 2 not measured
    rec["data"]["cpu"]["settings"]["batch"] = 2                  # not Table I's batch
    (tmp_path / "bench_train.json").write_text(json.dumps(rec))
    assert measured_step_ms(6, cpu) == {}


@pytest.mark.parametrize("arm, threshold", [("randomized+context", 0.5), ("baseline+context", 0.2)])
def test_context_arms_train_with_neighbours_and_keep_their_papers_threshold(tmp_path, arm,
                                                                           threshold):
    """A context arm draws its batches with neighbours packed around the target (the training
    context bank), and its weights carry the mask threshold of the arm it is built on (V)."""
    from cryo_companion.papers.che2019.presets import get_preset
    from cryo_companion.papers.che2019.train import _simulator, simulator_batches

    sim, _ = _simulator("che2019", 13.68, 32, torch.device("cpu"), context=True)
    b = sim.sample(4, get_preset(arm), torch.Generator().manual_seed(0), need_clean=False)
    occupied = b.params["context_fraction_measured"]
    assert bool((occupied > 0).any()) and not bool((b.mask & b.context_mask).any())
    draw, names = simulator_batches(arm, torch.device("cpu"), box=32)
    assert names == ["ribosome", "membrane", "TRiC", "proteasome"]
    x, y, m = draw(4, torch.Generator().manual_seed(0))[:3]
    assert x.shape == (4, 32, 32, 32) and m.dtype == torch.bool
    four = DSRF3DConfig(n_classes=4, box=32, enc_widths=(4, 4, 8, 8, 8), fc_widths=(16, 16))
    res = train(_cfg(arm=arm, seed=0, iters=1, batch_size=2, val_every=0, val_size=0,
                     checkpoint_every=0, model=four), tmp_path / arm, progress=False)
    _, meta = load_weights(res.weights)
    assert meta["threshold"] == threshold and meta["training"]["arm"] == arm


FOUR_TINY = DSRF3DConfig(n_classes=4, box=32, enc_widths=(2, 2, 4, 4, 4), fc_widths=(4, 4))


def test_ablation_arms_train_on_their_presets(tmp_path):
    """An ablation is an arm ``ablation:NAME``: its preset is the ablation's (one factor fixed),
    its threshold the randomized arm's, its folder name has no colon; unknown names are refused."""
    from cryo_companion.papers.che2019.ablation import ablation_preset, available
    from cryo_companion.papers.che2019.train import all_arms, arm_preset, base_arm

    arms = all_arms()
    assert arms[:4] == ("randomized", "baseline", "randomized+context", "baseline+context")
    assert arms[4:] == tuple(f"ablation:{n}" for n in available())
    assert arm_preset("ablation:fixed_snr") == ablation_preset("fixed_snr")
    assert arm_preset("ablation:fixed_snr").snr[0] == arm_preset("ablation:fixed_snr").snr[1]
    assert [base_arm(a) for a in ("ablation:no_context", "baseline+context", "randomized")] == [
        "randomized", "baseline", "randomized"]
    with pytest.raises(ValueError, match="ablation:fixed_snr"):
        TrainConfig(arm="ablation:fixed_nothing")
    with pytest.raises(ValueError, match="unknown arm"):
        arm_preset("context")
    cfg = _cfg(arm="ablation:fixed_wedge", seed=0, iters=1, val_every=0, val_size=0,
               checkpoint_every=0, model=FOUR_TINY)
    assert run_dir(tmp_path, cfg).name == "ablation-fixed_wedge_seed0"
    res = train_many([cfg], tmp_path, device="cpu", progress=False)[0]
    _, meta = load_weights(res.weights)
    assert meta["threshold"] == 0.5 and meta["training"]["arm"] == "ablation:fixed_wedge"


def test_a_group_with_a_context_arm_trains_and_leaves_the_other_arm_as_alone(tmp_path):
    """A context arm and a plain arm train in one group (one simulator with the context bank):
    the plain arm gets exactly the weights it gets alone (a preset without context draws as
    from a simulator without a bank); each group is handed to ``on_group`` as it finishes."""
    cfgs = [_cfg(arm=a, seed=2, iters=2, batch_size=2, val_every=0, val_size=0,
                 checkpoint_every=0, model=FOUR_TINY) for a in ("randomized", "baseline+context")]
    groups = []
    runs = train_many(cfgs, tmp_path / "group", device="cpu", strategy="loop", progress=False,
                      on_group=groups.append)
    assert [[r.summary["config"]["arm"] for r in g] for g in groups] == [
        ["randomized", "baseline+context"]]
    assert runs[1].summary["timing"]["runs_per_step"] == 2
    alone = train(cfgs[0], tmp_path / "alone", progress=False)
    a, _ = load_weights(alone.weights)
    b, _ = load_weights(runs[0].weights)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k
    # settings that differ make two groups, each handed over on its own
    more = [cfgs[0], _cfg(arm="baseline", seed=2, iters=1, batch_size=2, val_every=0,
                          val_size=0, checkpoint_every=0, model=FOUR_TINY)]
    groups.clear()
    train_many(more, tmp_path / "two", device="cpu", progress=False, on_group=groups.append)
    assert sorted(len(g) for g in groups) == [1, 1]


def test_checked_precision_is_tf32_on_the_cpu_without_a_check():
    from cryo_companion.papers.che2019.train import checked_precision

    assert checked_precision("cpu") == ("tf32", None)
