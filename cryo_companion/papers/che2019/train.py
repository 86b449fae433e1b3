"""Training the joint classifier + segmenter on subtomograms simulated on the fly (Che et al. 2019,
IV and IV-A), with exact resume, timing of simulation vs network, and many runs on one GPU.

One run (:func:`train`):

- every iteration simulates a batch of 32 subtomograms with the engine's ``Simulator`` for the
  preset ``"randomized"`` (domain randomization, III-B) or ``"baseline"`` (fixed parameters
  measured on the test domain, IV), standardises it with one global mean and standard deviation
  (``randomization.standardize_batch``, IV) and takes one SGD step;
- loss ``λ·NLL(class) + (1 − λ)·BCE(mask of the true class)`` with λ = 0.15 (IV-A, III-C-2: the
  masks of the other classes get no gradient);
- SGD with Nesterov momentum 0.9, learning rate 5e-3, 15,000 iterations at paper scale (IV-A);
- a separate simulated validation set of the same preset (never the test domain) is evaluated
  every ``val_every`` iterations for monitoring; it selects nothing (the final weights are those
  of the last iteration);
- a checkpoint (model, optimizer, all RNG states, iteration, history) is written atomically every
  ``checkpoint_every`` iterations, and ``resume=True`` continues from it exactly;
- on CUDA the matmuls/convolutions run in TF32 (``precision="tf32"``, the default); bfloat16
  autocast is available (``precision="bf16"``) but not the default because it has not been shown
  to leave the Table I numbers unchanged (see the chapter);
- time per iteration is split into simulation (sample + standardise) and network (forward,
  backward, step), each measured with CUDA-synchronised timers.

Several runs (:func:`train_many`): one subprocess per run (``python -m cryo_companion.cli.main
train ...``), all on the same GPU at once, each writing its own folder; then the summaries are
collected.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion._io import atomic_path, write_json
from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, save_weights

__all__ = [
    "ARMS",
    "BatchFn",
    "TrainConfig",
    "TrainResult",
    "joint_loss",
    "load_summary",
    "precision_check",
    "run_dir",
    "simulator_batches",
    "train",
    "train_many",
]

ARMS = ("randomized", "baseline")

#: A batch source: ``fn(n, generator) -> (x (n, D, D, D), label (n,), mask (n, D, D, D) bool)``
#: on the training device; :func:`train` standardises each batch it takes (IV).
BatchFn = Callable[[int, torch.Generator], tuple[Tensor, Tensor, Tensor]]

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
SUMMARY = "summary.json"


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (defaults: the paper's, IV-A).

    Attributes
    ----------
    arm : ``"randomized"`` or ``"baseline"`` (the simulator preset).
    seed : seed of the weights' initialisation, of the training batches and of the validation set.
    iters : SGD iterations (15,000 in the paper).
    batch_size : subtomograms per iteration (32).
    lr, momentum : SGD with Nesterov momentum (5e-3, 0.9).
    lam : weight λ of the classification loss (0.15).
    checkpoint_every : iterations between checkpoints (0: only at the end).
    val_every, val_size : validation period (iterations) and validation-set size (0: none).
    precision : ``"fp32"``, ``"tf32"`` (CUDA only; default) or ``"bf16"`` (CUDA autocast with
        channels-last 3-D layout; losses and weights stay float32; see :func:`precision_check`).
    sim_chunk : batches simulated per simulator call (the batches are the same kind of fresh,
        independent draws; only the launch overhead of small batches is amortised on a GPU).
        ``checkpoint_every`` must be a multiple, so that a checkpoint never falls inside a chunk
        and resuming stays exact.
    structure_set, voxel_size_A : the templates the simulator draws (set "che2019", 13.68 Å).
    model : architecture.
    """

    arm: str = "randomized"
    seed: int = 0
    iters: int = 15_000
    batch_size: int = 32
    lr: float = 5e-3
    momentum: float = 0.9
    lam: float = 0.15
    checkpoint_every: int = 1000
    val_every: int = 500
    val_size: int = 256
    precision: str = "tf32"
    sim_chunk: int = 1
    structure_set: str = "che2019"
    voxel_size_A: float = 13.68
    model: DSRF3DConfig = field(default_factory=DSRF3DConfig)

    def __post_init__(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"unknown arm {self.arm!r}; valid: {', '.join(ARMS)}")
        for name in ("iters", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must lie in [0, 1], got {self.lam}")
        if self.precision not in ("fp32", "tf32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; valid: fp32, tf32, bf16")
        if self.sim_chunk < 1 or (self.checkpoint_every > 0
                                  and self.checkpoint_every % self.sim_chunk):
            raise ValueError(f"sim_chunk must be >= 1 and divide checkpoint_every "
                             f"({self.checkpoint_every}), got {self.sim_chunk}")
        if isinstance(self.model, dict):
            self.model = DSRF3DConfig.from_dict(self.model)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


@dataclass
class TrainResult:
    """What a finished run leaves: its folder and its summary (see :func:`load_summary`)."""

    out: Path
    summary: dict[str, Any]

    @property
    def weights(self) -> Path:
        """Path of the final weights file."""
        return self.out / WEIGHTS


def joint_loss(log_probs: Tensor, mask_logits: Tensor, label: Tensor, mask: Tensor,
               lam: float) -> tuple[Tensor, Tensor, Tensor]:
    """``λ·NLL + (1 − λ)·BCE`` on the true class's mask only (Che et al. 2019, III-C-2, IV-A).

    Parameters
    ----------
    log_probs : (B, K) log-softmax scores.
    mask_logits : (B, K, D, D, D) mask logits.
    label : (B,) int64 true classes.
    mask : (B, D, D, D) bool ground-truth target masks.
    lam : weight of the classification loss.

    Returns
    -------
    (total, classification, segmentation) losses, scalars.
    """
    cls = F.nll_loss(log_probs.float(), label)
    idx = torch.arange(label.shape[0], device=label.device)
    true_logits = mask_logits[idx, label].float()          # (B, D, D, D): only the true class
    seg = F.binary_cross_entropy_with_logits(true_logits, mask.to(true_logits.dtype))
    return lam * cls + (1.0 - lam) * seg, cls, seg


def simulator_batches(arm: str, device: torch.device, *, structure_set: str = "che2019",
                      voxel_size_A: float = 13.68, box: int = 40) -> tuple[BatchFn, list[str]]:
    """The engine's on-the-fly batches for preset ``arm``, classes balanced (the training loop
    standardises each batch).

    Returns
    -------
    (batch function, class names of the structure set).
    """
    from cryo_companion.papers.che2019.presets import get_preset
    from cryo_companion.simulate.subtomogram import Simulator
    from cryo_companion.structures.templates import template_bank

    bank = template_bank(structure_set, voxel_size_A, box)
    sim = Simulator(torch.as_tensor(bank.volumes), torch.as_tensor(bank.labels),
                    voxel_size_A=voxel_size_A, device=device)
    preset = get_preset(arm)
    # Classes are drawn uniformly, then a template within the class (the membrane class has many
    # patch templates; drawing templates uniformly would make most batches membrane).
    labels = torch.as_tensor(bank.labels, device=device)
    classes = torch.unique(labels)
    order = torch.argsort(labels, stable=True)
    counts = torch.stack([(labels == c).sum() for c in classes])
    starts = torch.cumsum(counts, 0) - counts

    def batch(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        cls = torch.randint(len(classes), (n,), generator=generator, device=device)
        u = torch.rand(n, generator=generator, device=device)
        within = (u * counts[cls]).long().clamp(max=counts[cls] - 1)
        # training needs the noisy volume and the mask only: skip the clean volume's inverse FFT
        b = sim.sample(n, preset, generator, template_index=order[starts[cls] + within],
                       need_clean=False)
        return (b.noisy.to(device), b.label.to(device),
                b.mask.to(device))

    return batch, list(bank.class_names)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    st: dict[str, Any] = {"torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        st["torch_cuda"] = torch.cuda.get_rng_state(device)
    return st


def _set_rng_state(st: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(st["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in st:
        torch.cuda.set_rng_state(st["torch_cuda"], device)


@torch.no_grad()
def _validate(model: DSRF3DSegNet, val: tuple[Tensor, Tensor, Tensor], lam: float,
              chunk: int = 64) -> dict[str, float]:
    from cryo_companion.metrics import segmentation_metrics

    model.eval()
    x, y, m = val
    losses, preds, masks = [], [], []
    for i in range(0, x.shape[0], chunk):
        out = model(x[i:i + chunk])
        losses.append(float(joint_loss(out.log_probs, out.mask_logits, y[i:i + chunk],
                                       m[i:i + chunk], lam)[0]) * x[i:i + chunk].shape[0])
        p = out.log_probs.argmax(1)
        preds.append(p)
        idx = torch.arange(p.shape[0], device=p.device)
        masks.append(out.mask_logits[idx, p] > 0)         # probability > 0.5
    model.train()
    pred = torch.cat(preds)
    seg = segmentation_metrics(torch.cat(masks), m)
    return {"loss": sum(losses) / x.shape[0], "accuracy": float((pred == y).float().mean()),
            "pixel_accuracy": seg["pixel_accuracy"], "miou": seg["miou"]}


def train(cfg: TrainConfig, out: str | os.PathLike, device: torch.device | str = "cpu", *,
          batch_fn: BatchFn | None = None, class_names: Sequence[str] | None = None,
          resume: bool = False, progress: bool = True,
          loss_log: list[float] | None = None) -> TrainResult:
    """Train one arm/seed; write ``checkpoint.pt``, ``weights.pt`` and ``summary.json`` in ``out``.

    Parameters
    ----------
    cfg : hyper-parameters.
    out : output folder (created).
    device : torch device.
    batch_fn : batch source (default: :func:`simulator_batches` for ``cfg.arm``); tests pass a
        small stand-in.
    class_names : class names (default: those of the structure set).
    resume : continue from ``out/checkpoint.pt`` if present (exactly: same batches, same steps).
    progress : show a progress bar (on a terminal only).
    loss_log : if given, the training loss of every iteration is appended to it (a host sync
        per iteration: for checks, not for paper-scale runs).
    """
    from cryo_companion._progress import progress as progress_bar
    from cryo_companion.simulate.randomization import standardize_batch

    device = torch.device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if batch_fn is None:
        batch_fn, names = simulator_batches(cfg.arm, device, structure_set=cfg.structure_set,
                                            voxel_size_A=cfg.voxel_size_A, box=cfg.model.box)
        class_names = class_names or names
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.precision != "fp32"
        torch.backends.cudnn.allow_tf32 = cfg.precision != "fp32"
        torch.backends.cudnn.benchmark = True

    torch.manual_seed(cfg.seed)
    model = DSRF3DSegNet(cfg.model, class_names=class_names).to(device)
    channels_last = cfg.precision == "bf16" and device.type == "cuda"
    if channels_last:  # bf16 convolutions are fastest in the channels-last 3-D layout
        model = model.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    # separate streams: validation set (fixed), training batches
    val = None
    if cfg.val_size > 0 and cfg.val_every > 0:
        vx, vy, vm = batch_fn(cfg.val_size, _generator(device, 1_000_003 + cfg.seed))
        val = (standardize_batch(vx), vy, vm)
    gen = _generator(device, cfg.seed)
    start, history = 0, []
    timing = {"sim_s": 0.0, "net_s": 0.0, "iters_timed": 0}
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck["config"] != cfg.to_dict():
            raise ValueError(f"{ckpt_path}: checkpoint was written with another configuration "
                             f"({ck['config']}); refusing to resume with {cfg.to_dict()}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        _set_rng_state(ck["rng"], device)
        start, history, timing = ck["iteration"], ck["history"], ck["timing"]

    def checkpoint(it: int) -> None:
        with atomic_path(ckpt_path, suffix=".pt") as tmp:
            torch.save({"config": cfg.to_dict(), "iteration": it, "model": model.state_dict(),
                        "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "rng": _rng_state(device), "history": history, "timing": timing}, tmp)

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if cfg.precision == "bf16" and device.type == "cuda" else None)
    model.train()
    t_start = time.perf_counter()
    bar = progress_bar(range(start, cfg.iters), initial=start, total=cfg.iters, show=progress,
               desc=f"train {cfg.arm} seed {cfg.seed}", mininterval=2.0)
    chunk: list[tuple[Tensor, Tensor, Tensor]] = []
    for it in bar:
        _sync(device)
        t0 = time.perf_counter()
        if not chunk:
            n = min(cfg.sim_chunk, cfg.iters - it)
            xs, ys, ms = batch_fn(cfg.batch_size * n, gen)
            # each batch of the chunk is standardised on its own, as a batch drawn alone would be
            chunk = [(standardize_batch(xs[i::n]), ys[i::n], ms[i::n]) for i in range(n)]
            chunk.reverse()
        x, y, m = chunk.pop()
        if channels_last:
            x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last_3d)
        _sync(device)
        t1 = time.perf_counter()
        if autocast is not None:
            with autocast:
                o = model(x)
        else:
            o = model(x)
        loss, lc, ls = joint_loss(o.log_probs, o.mask_logits, y, m, cfg.lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss, lc, ls = loss.detach(), lc.detach(), ls.detach()
        if loss_log is not None:
            loss_log.append(float(loss))
        _sync(device)
        t2 = time.perf_counter()
        timing["sim_s"] += t1 - t0
        timing["net_s"] += t2 - t1
        timing["iters_timed"] += 1
        done = it + 1
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss became {float(loss)} at iteration {done} "
                               f"({cfg.arm}, seed {cfg.seed})")
        if val is not None and (done % cfg.val_every == 0 or done == cfg.iters):
            v = _validate(model, val, cfg.lam)
            history.append({"iteration": done, "train_loss": float(loss),
                            "train_cls": float(lc), "train_seg": float(ls),
                            **{f"val_{k}": x_ for k, x_ in v.items()}})
            bar.set_postfix(loss=f"{float(loss):.3f}", val_acc=f"{v['accuracy']:.3f}")
        if cfg.checkpoint_every > 0 and done % cfg.checkpoint_every == 0 and done < cfg.iters:
            checkpoint(done)
    bar.close()
    checkpoint(cfg.iters)
    # the mask threshold stored with the weights is the paper's for this arm (V); the
    # preprocessing records the voxel size and contrast the network was trained at
    from cryo_companion.models.dsrf3d import DEFAULT_PREPROCESSING
    from cryo_companion.papers.che2019.evaluate import PAPER_THRESHOLDS, TRAINING_CONTRAST

    weights = save_weights(
        model, out / WEIGHTS, threshold=PAPER_THRESHOLDS[cfg.arm],
        preprocessing={**DEFAULT_PREPROCESSING, "voxel_size_A": cfg.voxel_size_A,
                       "contrast": TRAINING_CONTRAST},
        training={"arm": cfg.arm, "seed": cfg.seed, "iters": cfg.iters, "preset": cfg.arm})
    n = max(timing["iters_timed"], 1)
    summary = {
        "config": cfg.to_dict(), "device": str(device), "n_parameters": model.n_parameters(),
        "history": history, "weights": weights.name,
        "timing": {**timing, "sim_ms_per_iter": 1e3 * timing["sim_s"] / n,
                   "net_ms_per_iter": 1e3 * timing["net_s"] / n,
                   "sim_fraction": timing["sim_s"] / max(timing["sim_s"] + timing["net_s"], 1e-12),
                   "wall_s_this_session": time.perf_counter() - t_start},
    }
    write_json(out / SUMMARY, summary)
    return TrainResult(out=out, summary=summary)


def precision_check(device: torch.device | str, *, iters: int = 300, arm: str = "randomized",
                    seed: int = 0, batch_fn: BatchFn | None = None, window: int = 100,
                    tolerance: float = 0.05) -> dict[str, Any]:
    """Does bf16 autocast change training? Train the same network twice from the same weights on
    the same batches, in TF32 and in bf16, and compare the loss curves.

    Returns ``{"tf32": losses, "bf16": losses, "relative_difference": r, "same": r <= tolerance}``
    where ``r`` is the relative difference of the mean loss over the last ``window`` iterations.
    ``tolerance`` (5 %) is a stated criterion, not a measurement; the observed difference is
    reported so a reader can compare it with the spread between seeds.
    """
    import tempfile

    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError("precision_check compares CUDA TF32 with CUDA bf16; it needs a GPU")
    if batch_fn is None:
        batch_fn, _ = simulator_batches(arm, device)
    curves = {}
    for precision in ("tf32", "bf16"):
        cfg = TrainConfig(arm=arm, seed=seed, iters=iters, checkpoint_every=0, val_every=0,
                          val_size=0, precision=precision)
        with tempfile.TemporaryDirectory() as tmp:
            losses: list[float] = []
            # same seed: same initial weights and the same batches in both runs
            train(cfg, tmp, device, batch_fn=batch_fn, progress=False, loss_log=losses)
        curves[precision] = losses
    a = float(np.mean(curves["tf32"][-window:]))
    b = float(np.mean(curves["bf16"][-window:]))
    r = abs(a - b) / max(abs(a), 1e-12)
    return {**curves, "iters": iters, "window": window, "mean_loss_tf32": a,
            "mean_loss_bf16": b, "relative_difference": r, "tolerance": tolerance,
            "same": r <= tolerance}


def load_summary(out: str | os.PathLike) -> TrainResult:
    """The :class:`TrainResult` of a finished run folder."""
    out = Path(out)
    path = out / SUMMARY
    if not path.exists():
        raise FileNotFoundError(f"{path}: no summary; the run in {out} has not finished")
    return TrainResult(out=out, summary=json.loads(path.read_text()))


def run_dir(root: str | os.PathLike, cfg: TrainConfig) -> Path:
    """Folder of one run under ``root``: ``ARM_seedK``."""
    return Path(root) / f"{cfg.arm}_seed{cfg.seed}"


def train_many(configs: Sequence[TrainConfig], root: str | os.PathLike,
               device: str = "cuda", *, resume: bool = True, threads_per_run: int = 2,
               poll_s: float = 5.0, progress: bool = True) -> list[TrainResult]:
    """Train several runs concurrently, one subprocess each, all on ``device`` (one GPU).

    Each run is ``python -m cryo_companion.cli.main train --arm A --seed K --iters N --out
    ROOT/A_seedK --device DEVICE [--resume]`` with its log in ``ROOT/A_seedK/train.log``. A run
    whose summary already exists with the same configuration is not repeated.

    Parameters
    ----------
    configs : the runs (distinct (arm, seed) pairs).
    root : folder of the run folders.
    device : device string passed to every run.
    resume : pass ``--resume`` (an interrupted run continues from its checkpoint).
    threads_per_run : ``OMP_NUM_THREADS`` of each subprocess.
    poll_s : seconds between progress polls.

    Returns
    -------
    The finished runs, in the order of ``configs``.
    """
    from cryo_companion._progress import progress as progress_bar

    keys = [(c.arm, c.seed) for c in configs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate (arm, seed) pairs in {keys}")
    procs: list[tuple[TrainConfig, Path, subprocess.Popen | None, Any]] = []
    for c in configs:
        d = run_dir(root, c)
        d.mkdir(parents=True, exist_ok=True)
        if (d / SUMMARY).exists() and load_summary(d).summary["config"] == c.to_dict():
            procs.append((c, d, None, None))
            continue
        # the whole configuration travels, so no setting is dropped on the way
        cmd = [sys.executable, "-m", "cryo_companion.cli.main", "train", "--arm", c.arm,
               "--seed", str(c.seed), "--out", str(d), "--device", device,
               "--config-json", json.dumps(c.to_dict())]
        if resume:
            cmd.append("--resume")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_run)}
        log = open(d / "train.log", "a")  # noqa: SIM115 - closed when the run ends
        procs.append((c, d, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                             env=env), log))
    running = [p for p in procs if p[2] is not None]
    with progress_bar(total=len(running), desc="runs finished", show=progress) as bar:
        while running:
            time.sleep(poll_s)
            for p in list(running):
                if p[2].poll() is not None:
                    running.remove(p)
                    p[3].close()
                    bar.update(1)
    failed = [(c, d, p.returncode) for c, d, p, _ in procs if p is not None and p.returncode != 0]
    if failed:
        tails = "\n".join(f"--- {d} (exit {rc}):\n" + "\n".join(
            (d / "train.log").read_text().splitlines()[-10:]) for _, d, rc in failed)
        raise RuntimeError(f"{len(failed)} of {len(procs)} training runs failed:\n{tails}")
    return [load_summary(d) for _, d, _, _ in procs]
