"""Training the joint classifier + segmenter of Table I (Che et al. 2019, IV and IV-A).

Table I is expressed through the model-agnostic loop of :mod:`cryo_companion.learn`.

What is the paper's lives here; how to train lives in ``learn``:

- every iteration takes a batch of 32 subtomograms simulated on the fly for the preset
  ``"randomized"`` (domain randomization, III-B) or ``"baseline"`` (fixed parameters, IV)
  (:func:`cryo_companion.papers.che2019.presets.get_preset`), classes drawn uniformly;
  **the batch source standardises** each batch with one global mean and standard deviation
  (:class:`~cryo_companion.learn.batches.DrawnBatches`, ``standardize=True``; IV);
- loss ``w·NLL(class) + (1 − w)·BCE(mask of the true class)`` with the classification weight
  ``w = cls_weight = 0.15`` (IV-A's λ; III-C-2: the masks of the other classes get no
  gradient), :func:`joint_loss`;
- SGD with Nesterov momentum 0.9, learning rate 5e-3, 15,000 iterations at paper scale (IV-A);
- a simulated validation set of the same preset (never the test domain) is evaluated every
  ``val_every`` iterations for monitoring; it selects nothing (the final weights are those of
  the last iteration);
- checkpoints, exact resume, timing split into simulation and network, precision (TF32 on CUDA
  by default; bf16 autocast only behind :func:`precision_check`) and progress come from
  :func:`cryo_companion.learn.fit.run_jobs`;
- the weights are saved with the paper's mask threshold of the arm
  (:data:`~cryo_companion.papers.che2019.evaluate.PAPER_THRESHOLDS`, V) and the training
  contrast.

Several runs (:func:`train_many`): by default in one process, N runs per step
(:func:`cryo_companion.learn.multirun.fit_many`); under ``torchrun`` the runs are spread over
the processes (:mod:`cryo_companion.learn.distributed`); ``launcher="processes"`` keeps the
older way, one subprocess per run.

``TrainConfig.cls_weight`` was called ``lam`` before (it read as the electron wavelength):
:meth:`TrainConfig.from_dict` reads the old key, so old checkpoints, summaries and
``--config-json`` strings still load.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion._io import write_json
from cryo_companion.learn.batches import DrawnBatches, simulator_draw
from cryo_companion.learn.fit import CHECKPOINT, FitConfig, FitResult, Job, ValidateFn, run_jobs
from cryo_companion.learn.multirun import fit_many
from cryo_companion.learn.predict import predict
from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, save_weights

__all__ = [
    "ABLATION_ARM_PREFIX",
    "ARMS",
    "LAUNCHERS",
    "PRECISION_CHECK",
    "BatchFn",
    "GroupCallback",
    "TrainConfig",
    "TrainResult",
    "all_arms",
    "arm_preset",
    "base_arm",
    "checked_precision",
    "joint_loss",
    "load_summary",
    "make_job",
    "measured_step_ms",
    "precision_check",
    "run_dir",
    "simulator_batches",
    "table1_loss",
    "train",
    "train_many",
    "validation_hook",
]

ARMS = ("randomized", "baseline", "randomized+context", "baseline+context")
#: Prefix of the one-factor ablations' arms (``"ablation:fixed_snr"``; beyond the paper, see
#: :mod:`cryo_companion.papers.che2019.ablation`).
ABLATION_ARM_PREFIX = "ablation:"


def all_arms() -> tuple[str, ...]:
    """Every arm a run can train: Table I's four and one per available ablation.

    Returns
    -------
    tuple of str
        :data:`ARMS`, then ``"ablation:NAME"`` for every
        :func:`cryo_companion.papers.che2019.ablation.available` name.
    """
    from cryo_companion.papers.che2019.ablation import available

    return (*ARMS, *(ABLATION_ARM_PREFIX + name for name in available()))


def arm_preset(arm: str) -> Any:
    """Return the simulator preset an arm trains on.

    Parameters
    ----------
    arm : str
        One of :func:`all_arms`.

    Returns
    -------
    cryo_companion.simulate.randomization.Preset
        :func:`~cryo_companion.papers.che2019.presets.get_preset` of a Table I arm, or
        :func:`~cryo_companion.papers.che2019.ablation.ablation_preset` of an ablation's.

    Raises
    ------
    ValueError
        For an unknown arm, listing the valid ones.
    """
    if arm.startswith(ABLATION_ARM_PREFIX):
        from cryo_companion.papers.che2019.ablation import ablation_preset, available

        name = arm[len(ABLATION_ARM_PREFIX):]
        if name not in available():
            raise ValueError(f"unknown arm {arm!r}; valid: {', '.join(all_arms())}")
        return ablation_preset(name)
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; valid: {', '.join(all_arms())}")
    from cryo_companion.papers.che2019.presets import get_preset

    return get_preset(arm)


def base_arm(arm: str) -> str:
    """Return the paper's arm an arm is built on (``"randomized+context"`` -> ``"randomized"``).

    Parameters
    ----------
    arm : str
        One of :func:`all_arms`.

    Returns
    -------
    str
        ``"randomized"`` or ``"baseline"``: the arm whose mask threshold (V) applies. Every
        ablation is built on the fully randomized preset, so its base is ``"randomized"``.
    """
    if arm.startswith(ABLATION_ARM_PREFIX):
        return "randomized"
    return arm.split("+", 1)[0]
#: How :func:`train_many` runs several trainings.
LAUNCHERS = ("inprocess", "processes")

#: A batch function: ``fn(n, generator) -> (x (n, D, D, D), label (n,), mask (n, D, D, D) bool)``
#: on the training device, not standardised (the batch source standardises, IV).
BatchFn = Callable[[int, torch.Generator], tuple[Tensor, ...]]

WEIGHTS = "weights.pt"
SUMMARY = "summary.json"
#: Offset of the validation set's seed from the run's seed.
VAL_SEED_OFFSET = 1_000_003


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (defaults: the paper's, IV-A).

    Attributes
    ----------
    arm : str
        The simulator preset: one of :data:`ARMS` (the paper's ``"randomized"`` and
        ``"baseline"``, and both with context randomization) or ``"ablation:NAME"`` (the
        one-factor ablations, :func:`all_arms`).
    seed : int
        Seed of the weights' initialisation, of the training batches and of the validation set.
    iters : int
        SGD iterations (15,000 in the paper).
    batch_size : int
        Subtomograms per iteration (32).
    lr : float
        Learning rate of SGD with Nesterov momentum (5e-3).
    momentum : float
        Momentum (0.9).
    cls_weight : float
        Weight ``w`` of the classification loss, IV-A's λ (0.15); the segmentation loss has
        ``1 − w``. Read from the old key ``lam`` too (:meth:`from_dict`).
    checkpoint_every : int
        Iterations between checkpoints (0: only at the end).
    val_every : int
        Iterations between validations (0: none).
    val_size : int
        Simulated validation subtomograms (0: none).
    precision : str
        ``"fp32"``, ``"tf32"`` (default; TF32 on CUDA, fp32 on the CPU) or ``"bf16"``
        (autocast, with channels-last 3-D on CUDA; losses and weights stay float32; see
        :func:`precision_check`).
    sim_chunk : int
        Batches simulated per simulator call (each batch a fresh independent draw; only a GPU's
        launch overhead of small batches is amortised). ``checkpoint_every`` must be a multiple
        so that a checkpoint holds no batch simulated ahead.
    structure_set : str
        Templates the simulator draws (``"che2019"``).
    voxel_size_A : float
        Voxel size in Å (13.68).
    model : DSRF3DConfig
        Architecture.
    """

    arm: str = "randomized"
    seed: int = 0
    iters: int = 15_000
    batch_size: int = 32
    lr: float = 5e-3
    momentum: float = 0.9
    cls_weight: float = 0.15
    checkpoint_every: int = 1000
    val_every: int = 500
    val_size: int = 256
    precision: str = "tf32"
    sim_chunk: int = 1
    structure_set: str = "che2019"
    voxel_size_A: float = 13.68
    model: DSRF3DConfig = field(default_factory=DSRF3DConfig)

    def __post_init__(self) -> None:
        """Validate the settings (``ValueError`` naming the bad one)."""
        if self.arm not in ARMS and self.arm not in all_arms():
            raise ValueError(f"unknown arm {self.arm!r}; valid: {', '.join(all_arms())}")
        for name in ("iters", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not 0.0 <= self.cls_weight <= 1.0:
            raise ValueError(f"cls_weight must lie in [0, 1], got {self.cls_weight}")
        if self.precision not in ("fp32", "tf32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; valid: fp32, tf32, bf16")
        if self.sim_chunk < 1 or (self.checkpoint_every > 0
                                  and self.checkpoint_every % self.sim_chunk):
            raise ValueError(f"sim_chunk must be >= 1 and divide checkpoint_every "
                             f"({self.checkpoint_every}), got {self.sim_chunk}")
        if isinstance(self.model, dict):
            self.model = DSRF3DConfig.from_dict(self.model)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form.

        Returns
        -------
        dict
            Every field; ``model`` as :meth:`DSRF3DConfig.to_dict`.
        """
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`, also reading the old key ``lam`` (now ``cls_weight``).

        Parameters
        ----------
        d : mapping
            A configuration as written by :meth:`to_dict` (now or before the rename).

        Returns
        -------
        TrainConfig
            The configuration.

        Raises
        ------
        ValueError
            For unknown keys, or ``lam`` and ``cls_weight`` both given and different.
        """
        d = dict(d)
        if "lam" in d:
            lam = d.pop("lam")
            if "cls_weight" in d and d["cls_weight"] != lam:
                raise ValueError(f"both cls_weight ({d['cls_weight']}) and its old name lam "
                                 f"({lam}) given, and they differ")
            d["cls_weight"] = lam
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; valid: {sorted(names)}")
        return cls(**d)

    def same_run(self, stored: Mapping[str, Any] | None) -> bool:
        """Tell whether a stored configuration (old key names allowed) is this one.

        Parameters
        ----------
        stored : mapping or None
            The ``config`` of a checkpoint or summary.

        Returns
        -------
        bool
            True if it describes the same run.
        """
        if stored is None:
            return False
        try:
            return TrainConfig.from_dict(stored) == self
        except (TypeError, ValueError):
            return False

    def fit_config(self, *, validate: bool) -> FitConfig:
        """Return the loop's settings of this run.

        Parameters
        ----------
        validate : bool
            Whether the run has a validation set.

        Returns
        -------
        FitConfig
            Iterations, checkpoint and validation periods, precision.
        """
        return FitConfig(iters=self.iters, checkpoint_every=self.checkpoint_every,
                         validate_every=self.val_every if validate else 0,
                         precision=self.precision, desc=f"train {self.arm} seed {self.seed}")

    def group_key(self) -> str:
        """Return the settings shared by runs that train in one group (all but arm and seed).

        Returns
        -------
        str
            A canonical JSON string.
        """
        d = self.to_dict()
        del d["arm"], d["seed"]
        return json.dumps(d, sort_keys=True)


@dataclass
class TrainResult:
    """What a finished run leaves: its folder and its summary (see :func:`load_summary`).

    Attributes
    ----------
    out : pathlib.Path
        The run's folder.
    summary : dict
        The contents of ``summary.json``.
    """

    out: Path
    summary: dict[str, Any]

    @property
    def weights(self) -> Path:
        """Path of the final weights file."""
        return self.out / WEIGHTS


def joint_loss(log_probs: Tensor, mask_logits: Tensor, label: Tensor, mask: Tensor,
               cls_weight: float) -> tuple[Tensor, Tensor, Tensor]:
    """``w·NLL + (1 − w)·BCE`` on the true class's mask only (Che et al. 2019, III-C-2, IV-A).

    Parameters
    ----------
    log_probs : torch.Tensor
        `(B, K)` log-softmax scores.
    mask_logits : torch.Tensor
        `(B, K, D, D, D)` mask logits.
    label : torch.Tensor
        `(B,)` int64 true classes.
    mask : torch.Tensor
        `(B, D, D, D)` bool ground-truth target masks.
    cls_weight : float
        Weight ``w`` of the classification loss (the paper's λ = 0.15).

    Returns
    -------
    tuple of torch.Tensor
        ``(total, classification, segmentation)`` losses, float32 scalars.
    """
    cls = F.nll_loss(log_probs.float(), label)
    idx = torch.arange(label.shape[0], device=label.device)
    true_logits = mask_logits[idx, label].float()          # (B, D, D, D): only the true class
    seg = F.binary_cross_entropy_with_logits(true_logits, mask.to(true_logits.dtype))
    return cls_weight * cls + (1.0 - cls_weight) * seg, cls, seg


def table1_loss(cls_weight: float) -> Callable[..., dict[str, Tensor]]:
    """Make the loop's loss: :func:`joint_loss` on a ``ModelOutput``, as named terms.

    Parameters
    ----------
    cls_weight : float
        Weight of the classification loss.

    Returns
    -------
    callable
        ``loss(output, label, mask) -> {"loss", "cls", "seg"}``.
    """
    def loss(out: Any, label: Tensor, mask: Tensor) -> dict[str, Tensor]:
        total, cls, seg = joint_loss(out.log_probs, out.mask_logits, label, mask, cls_weight)
        return {"loss": total, "cls": cls, "seg": seg}

    return loss


def _simulator(structure_set: str, voxel_size_A: float, box: int, device: torch.device,
               context: bool = False) -> tuple[Any, list[str]]:
    from cryo_companion.simulate.subtomogram import Simulator
    from cryo_companion.structures.templates import template_bank

    bank = template_bank(structure_set, voxel_size_A, box)
    ctx = None
    if context:  # the context arms: neighbours from the training bank around every target
        from cryo_companion.papers.che2019.context import context_bank

        ctx = context_bank(bank, device=device)
    sim = Simulator(torch.as_tensor(bank.volumes), torch.as_tensor(bank.labels),
                    voxel_size_A=voxel_size_A, device=device, context=ctx)
    return sim, list(bank.class_names)


def simulator_batches(arm: str, device: torch.device, *, structure_set: str = "che2019",
                      voxel_size_A: float = 13.68, box: int = 40) -> tuple[BatchFn, list[str]]:
    """Make the simulator's on-the-fly batches for preset ``arm``, classes balanced.

    Parameters
    ----------
    arm : str
        One of :func:`all_arms` (presets with context simulate with the training context bank
        of :mod:`cryo_companion.papers.che2019.context`).
    device : torch.device
        Simulation device.
    structure_set : str
        Templates (a class set of :mod:`cryo_companion.structures.catalogue`).
    voxel_size_A : float
        Voxel size in Å.
    box : int
        Box edge in voxels.

    Returns
    -------
    tuple
        ``(batch function, class names)``; the batches are not standardised.
    """
    preset = arm_preset(arm)
    sim, names = _simulator(structure_set, voxel_size_A, box, torch.device(device),
                            context=preset.has_context)
    return simulator_draw(sim, preset), names


def validation_hook(val: tuple[Tensor, ...], cls_weight: float, chunk: int = 64) -> ValidateFn:
    """Make the monitoring validation of a run: loss, accuracy, pixel accuracy and mIoU.

    Parameters
    ----------
    val : tuple of torch.Tensor
        Standardised ``(x (N, D, D, D), label (N,), mask (N, D, D, D))`` on the device.
    cls_weight : float
        Weight of the classification loss.
    chunk : int
        Subtomograms per forward pass.

    Returns
    -------
    ValidateFn
        ``hook(model) -> {"loss", "accuracy", "pixel_accuracy", "miou"}``: the loss averaged
        over the set (chunk losses weighted by their sizes), the masks of the predicted class
        at logit 0 (probability 0.5).
    """
    from cryo_companion.metrics import segmentation_metrics

    x, y, m = val
    n = x.shape[0]

    def reduce(out: Any, sl: slice) -> tuple[Tensor, Tensor, Tensor]:
        loss = joint_loss(out.log_probs, out.mask_logits, y[sl], m[sl], cls_weight)[0]
        p = out.log_probs.argmax(1)
        idx = torch.arange(p.shape[0], device=p.device)
        return loss.reshape(1), p, out.mask_logits[idx, p] > 0

    def hook(model: torch.nn.Module) -> dict[str, float]:
        losses, pred, masks = predict(model, x, batch_size=chunk, reduce=reduce,
                                      out_device=None)
        sizes = [min(chunk, n - i) for i in range(0, n, chunk)]
        seg = segmentation_metrics(masks, m)
        return {"loss": sum(v * s for v, s in zip(losses.tolist(), sizes)) / n,
                "accuracy": float((pred == y).float().mean()),
                "pixel_accuracy": seg["pixel_accuracy"], "miou": seg["miou"]}

    return hook


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def make_job(cfg: TrainConfig, out: str | os.PathLike | None, device: torch.device | str, *,
             batch_fn: BatchFn | None = None,
             class_names: Sequence[str] | None = None) -> Job:
    """One Table I run as a :class:`~cryo_companion.learn.fit.Job` (model seeded and built).

    Parameters
    ----------
    cfg : TrainConfig
        The run.
    out : str or os.PathLike or None
        Its folder (checkpoint, weights, summary); None: nothing is written.
    device : torch.device or str
        Training device.
    batch_fn : BatchFn or None
        Batch function (default: :func:`simulator_batches` of ``cfg.arm``).
    class_names : sequence of str or None
        Class names (default: those of the structure set; with a ``batch_fn``, generic names).

    Returns
    -------
    Job
        Seeded with ``cfg.seed`` (weights) and its own generators for the training batches
        (seed ``cfg.seed``) and the validation set (``cfg.seed + 1,000,003``).
    """
    from cryo_companion.simulate.randomization import standardize_batch

    device = torch.device(device)
    if batch_fn is None:
        batch_fn, names = simulator_batches(cfg.arm, device, structure_set=cfg.structure_set,
                                            voxel_size_A=cfg.voxel_size_A, box=cfg.model.box)
        class_names = class_names or names
    torch.manual_seed(cfg.seed)
    model = DSRF3DSegNet(cfg.model, class_names=class_names).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    validate = None
    if cfg.val_size > 0 and cfg.val_every > 0:
        vx, vy, vm = batch_fn(cfg.val_size, _generator(device, VAL_SEED_OFFSET + cfg.seed))
        validate = validation_hook((standardize_batch(vx), vy, vm), cfg.cls_weight)
    source = DrawnBatches(batch_fn, cfg.batch_size, chunk=cfg.sim_chunk, standardize=True,
                          total=cfg.iters)
    return Job(model=model, optimizer=opt, batches=source,
               generator=_generator(device, cfg.seed),
               out=None if out is None else Path(out), validate=validate,
               config=cfg.to_dict(), accepts=cfg.same_run, name=f"{cfg.arm} seed {cfg.seed}")


def _finish(cfg: TrainConfig, job: Job, res: FitResult, device: torch.device) -> TrainResult:
    # the mask threshold stored with the weights is the paper's for this arm (V); the
    # preprocessing records the voxel size and contrast the network was trained at
    from cryo_companion.models.dsrf3d import DEFAULT_PREPROCESSING
    from cryo_companion.papers.che2019.evaluate import PAPER_THRESHOLDS, TRAINING_CONTRAST

    out = Path(job.out)  # type: ignore[arg-type]
    model = job.model
    assert isinstance(model, DSRF3DSegNet)
    weights = save_weights(
        model, out / WEIGHTS, threshold=PAPER_THRESHOLDS[base_arm(cfg.arm)],
        preprocessing={**DEFAULT_PREPROCESSING, "voxel_size_A": cfg.voxel_size_A,
                       "contrast": TRAINING_CONTRAST},
        training={"arm": cfg.arm, "seed": cfg.seed, "iters": cfg.iters, "preset": cfg.arm})
    t = res.timing
    summary = {
        "config": cfg.to_dict(), "device": str(device), "n_parameters": model.n_parameters(),
        "history": res.history, "weights": weights.name,
        "timing": {"sim_s": t["data_s"], "net_s": t["net_s"], "iters_timed": t["iters_timed"],
                   "sim_ms_per_iter": t["data_ms_per_iter"],
                   "net_ms_per_iter": t["net_ms_per_iter"], "sim_fraction": t["data_fraction"],
                   "wall_s_this_session": t["wall_s_this_session"],
                   "runs_per_step": t["runs_per_step"], "stepper": res.stepper},
    }
    write_json(out / SUMMARY, summary)
    return TrainResult(out=out, summary=summary)


def train(cfg: TrainConfig, out: str | os.PathLike, device: torch.device | str = "cpu", *,
          batch_fn: BatchFn | None = None, class_names: Sequence[str] | None = None,
          resume: bool = False, progress: bool = True,
          loss_log: list[float] | None = None) -> TrainResult:
    """Train one arm/seed; write ``checkpoint.pt``, ``weights.pt`` and ``summary.json`` in ``out``.

    Parameters
    ----------
    cfg : TrainConfig
        Hyper-parameters.
    out : str or os.PathLike
        Output folder (created).
    device : torch.device or str
        Training device.
    batch_fn : BatchFn or None
        Batch function (default: :func:`simulator_batches` for ``cfg.arm``); tests pass a
        small stand-in.
    class_names : sequence of str or None
        Class names (default: those of the structure set).
    resume : bool
        Continue from ``out/checkpoint.pt`` if present (exactly: same batches, same steps).
    progress : bool
        Show a progress bar (on a terminal only).
    loss_log : list of float or None
        If given, the training loss of every iteration is appended to it (a host sync per
        iteration: for checks, not for paper-scale runs).

    Returns
    -------
    TrainResult
        The run's folder and summary (``config``, ``device``, ``n_parameters``, ``history``,
        ``weights``, ``timing``: ``sim_ms_per_iter``, ``net_ms_per_iter``, ``sim_fraction``, ...).
    """
    device = torch.device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    job = make_job(cfg, out, device, batch_fn=batch_fn, class_names=class_names)
    res = run_jobs([job], table1_loss(cfg.cls_weight),
                   cfg.fit_config(validate=job.validate is not None), stepper="loop",
                   resume=resume, progress=progress,
                   loss_logs=None if loss_log is None else [loss_log])[0]
    return _finish(cfg, job, res, device)


def precision_check(device: torch.device | str, *, iters: int = 300, arm: str = "randomized",
                    seed: int = 0, batch_fn: BatchFn | None = None, window: int = 100,
                    tolerance: float = 0.05) -> dict[str, Any]:
    """Test whether bf16 autocast changes training: one network trained in TF32 and in bf16.

    Both runs start from the same weights and see the same batches; the loss curves are
    compared.

    Parameters
    ----------
    device : torch.device or str
        A CUDA device.
    iters : int
        Iterations of each run.
    arm : str
        Preset of the batches.
    seed : int
        Seed of both runs.
    batch_fn : BatchFn or None
        Batch function (default: the simulator's).
    window : int
        Last iterations whose mean loss is compared.
    tolerance : float
        Largest relative difference called "the same" (5 %: a stated criterion, not a
        measurement; the observed difference is reported so a reader can compare it with the
        spread between seeds).

    Returns
    -------
    dict
        ``{"tf32": losses, "bf16": losses, "relative_difference": r, "same": r <= tolerance,
        ...}`` with ``r`` the relative difference of the mean loss over the last ``window``
        iterations.
    """
    from cryo_companion.learn.parity import precision_parity

    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError("precision_check compares CUDA TF32 with CUDA bf16; it needs a GPU")
    if batch_fn is None:
        batch_fn, _ = simulator_batches(arm, device)
    cfg = TrainConfig(arm=arm, seed=seed, iters=iters, checkpoint_every=0, val_every=0,
                      val_size=0)
    # same seed: same initial weights and the same batches in both runs
    return precision_parity(lambda: make_job(cfg, None, device, batch_fn=batch_fn),
                            table1_loss(cfg.cls_weight), cfg.fit_config(validate=False),
                            window=window, tolerance=tolerance)


#: Name of the recorded precision check (``results/table1_precision_check.json``).
PRECISION_CHECK = "table1_precision_check"


def checked_precision(device: torch.device | str, *, scale: str = "paper"
                      ) -> tuple[str, dict[str, Any] | None]:
    """Choose the runs' precision: bf16 where :func:`precision_check` says it changes nothing.

    The check is made once per device model and recorded with provenance
    (``results/table1_precision_check.json``); later calls, and later GPU windows once the
    record is committed, read it.

    Parameters
    ----------
    device : torch.device or str
        The training device.
    scale : str
        Where the record is (``"paper"``: ``results/``; ``"smoke"``: ``results/smoke/``).

    Returns
    -------
    tuple of (str, dict or None)
        ``"bf16"`` if the check found the loss curves the same, else ``"tf32"``; on the CPU
        ``"tf32"`` (fp32 there) and no check. The record as saved (None on the CPU).
    """
    from cryo_companion.runs.results import device_name, load_result, save_result
    from cryo_companion.runs.runtime import Run

    dev = torch.device(device)
    if dev.type != "cuda":
        return "tf32", None
    rec = load_result(PRECISION_CHECK, scale)
    if rec is None or rec["provenance"].get("device") != device_name(dev):
        run = Run(scale=scale, device=dev, seed=0, chapter=PRECISION_CHECK)
        save_result(run, precision_check(dev), seeds=[0])
        rec = load_result(PRECISION_CHECK, scale)
    assert rec is not None
    return ("bf16" if rec["data"]["same"] else "tf32"), rec


def load_summary(out: str | os.PathLike) -> TrainResult:
    """Read the :class:`TrainResult` of a finished run folder.

    Parameters
    ----------
    out : str or os.PathLike
        The run's folder.

    Returns
    -------
    TrainResult
        With ``summary["config"]`` in today's key names (``lam`` read as ``cls_weight``).

    Raises
    ------
    FileNotFoundError
        If the run has no summary (it has not finished).
    """
    out = Path(out)
    path = out / SUMMARY
    if not path.exists():
        raise FileNotFoundError(f"{path}: no summary; the run in {out} has not finished")
    summary = json.loads(path.read_text())
    if isinstance(summary.get("config"), dict):
        summary["config"] = TrainConfig.from_dict(summary["config"]).to_dict()
    return TrainResult(out=out, summary=summary)


def run_dir(root: str | os.PathLike, cfg: TrainConfig) -> Path:
    """Folder of one run under ``root``: ``ARM_seedK``.

    Parameters
    ----------
    root : str or os.PathLike
        Folder of the run folders.
    cfg : TrainConfig
        The run.

    Returns
    -------
    pathlib.Path
        ``root / f"{arm}_seed{seed}"`` (an ablation's ``:`` written ``-``:
        ``ablation-fixed_snr_seed0``).
    """
    return Path(root) / f"{cfg.arm.replace(':', '-')}_seed{cfg.seed}"


def _finished(cfg: TrainConfig, root: str | os.PathLike) -> TrainResult | None:
    d = run_dir(root, cfg)
    if (d / SUMMARY).exists():
        res = load_summary(d)
        if cfg.same_run(res.summary["config"]):
            return res
    return None


def _start_iteration(cfg: TrainConfig, root: str | os.PathLike, resume: bool) -> int:
    ck = run_dir(root, cfg) / CHECKPOINT
    if not (resume and ck.exists()):
        return 0
    from cryo_companion.learn.checkpoint import load_checkpoint

    return int(load_checkpoint(ck, torch.device("cpu"))["iteration"])


def measured_step_ms(n_runs: int, device: torch.device) -> dict[str, float]:
    """Read the recorded step times of ``n_runs`` DSRF3D runs on ``device``'s kind.

    Parameters
    ----------
    n_runs : int
        Runs trained together.
    device : torch.device
        The training device (its type selects the record's ``cpu`` or ``cuda`` entry).

    Returns
    -------
    dict
        ``{stepper: ms per step}`` from ``results/bench_train.json`` (``cryo-companion bench
        train``) for exactly ``n_runs`` runs, measured at Table I's batch of 32; empty when
        not recorded (the choice then falls back to
        :func:`cryo_companion.learn.multirun.choose_strategy`'s rule).
    """
    from cryo_companion.runs.results import load_result

    try:
        rec = load_result("bench_train") or {}
    except (OSError, ValueError):  # a malformed record must not stop a training
        return {}
    entry = (rec.get("data") or {}).get(device.type) or {}
    if (entry.get("settings") or {}).get("batch") != 32:
        return {}
    modes = ((entry.get("networks") or {}).get("dsrf3d") or {}).get("modes") or {}
    return {m: float(v[str(n_runs)]["ms_per_step"]) for m, v in modes.items()
            if m in ("loop", "vmap") and "ms_per_step" in (v.get(str(n_runs)) or {})}


def _train_group(configs: Sequence[TrainConfig], root: str | os.PathLike, device: torch.device,
                 *, resume: bool, strategy: str, progress: bool) -> list[TrainResult]:
    """Train runs of equal settings (but arm and seed) and equal start, one step for all.

    One simulator serves every arm of the group; it has the context bank when any arm's preset
    asks for context (a preset without context draws exactly as from a simulator without it).
    """
    c0 = configs[0]
    presets = {arm: arm_preset(arm) for arm in sorted({c.arm for c in configs})}
    sim, names = _simulator(c0.structure_set, c0.voxel_size_A, c0.model.box, device,
                            context=any(p.has_context for p in presets.values()))
    draws = {arm: simulator_draw(sim, p) for arm, p in presets.items()}
    jobs = []
    for c in configs:
        d = run_dir(root, c)
        d.mkdir(parents=True, exist_ok=True)
        jobs.append(make_job(c, d, device, batch_fn=draws[c.arm], class_names=names))
    cfg = c0.fit_config(validate=jobs[0].validate is not None)
    if len(jobs) > 1:
        cfg = replace(cfg, desc=f"train {len(jobs)} runs")
    results = fit_many(jobs, table1_loss(c0.cls_weight), cfg, strategy=strategy,
                       resume=resume, progress=progress,
                       measured_ms=measured_step_ms(len(jobs), device))
    return [_finish(c, j, r, device) for c, j, r in zip(configs, jobs, results)]


#: Called with the finished runs of each group as soon as the group has trained.
GroupCallback = Callable[[list[TrainResult]], None]


def _train_in_process(configs: Sequence[TrainConfig], root: str | os.PathLike,
                      device: torch.device, *, resume: bool, strategy: str,
                      progress: bool, on_group: GroupCallback | None = None
                      ) -> list[TrainResult]:
    groups: dict[tuple[str, int], list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault((c.group_key(), _start_iteration(c, root, resume)), []).append(i)
    out: dict[int, TrainResult] = {}
    for idx in groups.values():
        done = _train_group([configs[i] for i in idx], root, device, resume=resume,
                            strategy=strategy, progress=progress)
        for i, r in zip(idx, done):
            out[i] = r
        if on_group is not None:
            on_group(done)
    return [out[i] for i in range(len(configs))]


def _train_processes(configs: Sequence[TrainConfig], root: str | os.PathLike, device: str, *,
                     resume: bool, threads_per_run: int, poll_s: float,
                     progress: bool) -> list[TrainResult]:
    from cryo_companion._progress import progress as progress_bar

    procs: list[tuple[Path, subprocess.Popen[bytes], Any]] = []
    for c in configs:
        d = run_dir(root, c)
        d.mkdir(parents=True, exist_ok=True)
        # the whole configuration travels, so no setting is dropped on the way
        cmd = [sys.executable, "-m", "cryo_companion.cli.main", "train", "--arm", c.arm,
               "--seed", str(c.seed), "--out", str(d), "--device", device,
               "--config-json", json.dumps(c.to_dict())]
        if resume:
            cmd.append("--resume")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_run)}
        log = open(d / "train.log", "a")  # noqa: SIM115 - closed when the run ends
        procs.append((d, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                      log))
    running = list(procs)
    with progress_bar(total=len(running), desc="runs finished", show=progress) as bar:
        while running:
            time.sleep(poll_s)
            for p in list(running):
                if p[1].poll() is not None:
                    running.remove(p)
                    p[2].close()
                    bar.update(1)
    failed = [(d, p.returncode) for d, p, _ in procs if p.returncode != 0]
    if failed:
        tails = "\n".join(f"--- {d} (exit {rc}):\n" + "\n".join(
            (d / "train.log").read_text().splitlines()[-10:]) for d, rc in failed)
        raise RuntimeError(f"{len(failed)} of {len(procs)} training runs failed:\n{tails}")
    return [load_summary(d) for d, _, _ in procs]


def train_many(configs: Sequence[TrainConfig], root: str | os.PathLike,
               device: str = "cuda", *, resume: bool = True, launcher: str = "inprocess",
               strategy: str = "auto", threads_per_run: int = 2, poll_s: float = 5.0,
               progress: bool = True, on_group: GroupCallback | None = None
               ) -> list[TrainResult]:
    """Train several runs, each in its own folder ``run_dir(root, cfg)``; collect the summaries.

    A run whose summary already exists with the same configuration is not repeated.

    Parameters
    ----------
    configs : sequence of TrainConfig
        The runs (distinct (arm, seed) pairs).
    root : str or os.PathLike
        Folder of the run folders.
    device : str
        Device of every run (under ``torchrun``, ``"cuda"`` means each process's own GPU,
        ``cuda:LOCAL_RANK``).
    resume : bool
        An interrupted run continues from its checkpoint.
    launcher : str
        ``"inprocess"`` (default): runs of equal settings train together in this process,
        N runs per step (:func:`cryo_companion.learn.multirun.fit_many`); under ``torchrun``
        the runs are spread over the processes first. ``"processes"``: one subprocess per run
        (``cryo-companion train``), all at once, each logging to ``train.log`` in its folder.
    strategy : str
        Step of an in-process group: ``"loop"``, ``"vmap"`` or ``"auto"`` (the faster one in
        ``results/bench_train.json`` for this many runs on this kind of device, see
        :func:`measured_step_ms`; else :func:`cryo_companion.learn.multirun.choose_strategy`).
    threads_per_run : int
        ``OMP_NUM_THREADS`` of each subprocess (``"processes"`` only).
    poll_s : float
        Seconds between polls of the subprocesses (``"processes"`` only).
    progress : bool
        Show progress (on a terminal only).
    on_group : callable or None
        Called with the runs of each group as soon as it has trained (in-process launcher; under
        ``torchrun`` in the process that trained it), e.g. to save them where a window that
        ends midway keeps them; with ``"processes"`` once, with all the new runs.

    Returns
    -------
    list of TrainResult
        The finished runs, in the order of ``configs``.

    Raises
    ------
    ValueError
        For duplicate (arm, seed) pairs or an unknown launcher.
    RuntimeError
        When a subprocess fails (its log's tail is included).
    """
    from cryo_companion.learn.distributed import rank_info, run_sharded

    keys = [(c.arm, c.seed) for c in configs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate (arm, seed) pairs in {keys}")
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; valid: {', '.join(LAUNCHERS)}")
    done = {i: r for i, c in enumerate(configs) if (r := _finished(c, root)) is not None}
    todo = [c for i, c in enumerate(configs) if i not in done]
    if todo and launcher == "processes":
        fresh = _train_processes(todo, root, device, resume=resume,
                                 threads_per_run=threads_per_run, poll_s=poll_s,
                                 progress=progress)
        if on_group is not None:
            on_group(list(fresh))
    elif todo:
        def work(idx: list[int], dev: torch.device) -> list[TrainResult]:
            return _train_in_process([todo[i] for i in idx], root, dev, resume=resume,
                                     strategy=strategy, progress=progress,
                                     on_group=on_group) if idx else []

        info = rank_info()
        fresh = run_sharded(len(todo), work, device, info=info)
    else:
        fresh = []
    it = iter(fresh)
    return [done[i] if i in done else next(it) for i in range(len(configs))]
