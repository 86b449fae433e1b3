"""Training and testing DSM-Net, its subnets and the baselines through :mod:`cryo_companion.learn`.

What is the paper's lives here; how to train lives in ``learn``:

- a run (:class:`SeedRun`) is one seed of one row of the tables
  (:class:`~cryo_companion.papers.dsmnet.training.RunSpec`: network, heads, loss weights, data
  set, classes, held-out class); its split is the paper's 10 % test / 10 % validation / the rest
  (:mod:`cryo_companion.papers.dsmnet.splits`), **one split seed for every run of a data set**
  (``Settings.split_seed``), so every row is tested on the same 320 subtomograms of A; the
  run's seed draws the initial weights, the batches and dropout;
- inputs and targets (:func:`cryo_companion.papers.dsmnet.evaluate.prepare`): each box
  standardised on its own, in the contrast it was reconstructed in (mass dark); the class, the
  target's mask and the target's noise-free density (the recovery target, the protein fraction
  of each voxel); every run's batches carry all four columns, each loss takes the ones its
  heads need;
- the loss (:func:`make_loss`): the paper's weighted sum (3.2: categorical cross-entropy for
  classification and segmentation, mean squared error for recovery) with the row's weights;
- the paper's recipe (3.2; :data:`~cryo_companion.papers.dsmnet.training.PAPER_RECIPE`): Adam
  with learning rate 1e-3, β = (0.9, 0.99) and Keras' ε = 1e-7, batches of 64, at most 100
  epochs, early stopping after 15 epochs without improvement of the **validation loss** (the
  row's weighted sum; Keras' ``EarlyStopping`` watches ``val_loss`` by default) **ending with
  the weights of the best epoch**; an epoch is ``floor(n_train / 64)`` full batches of a new
  permutation (Keras' last, partial batch is dropped), validated at its end;
- each validation also scores a fixed subset of the training set (as many boxes as the
  validation set, evaluation mode, ``fit_*`` numbers): its classification loss is what
  :func:`~cryo_companion.papers.dsmnet.evaluate.converged` decides Table 2's "fails to
  converge" from (an optimisation failure, not a generalisation one);
- the test: the scores of :func:`~cryo_companion.papers.dsmnet.evaluate.score` on the test
  split (for the unseen-structure run, the test boxes of the 21 trained classes; the
  held-out class's boxes, none of them ever trained on, are scored for segmentation and
  recovery apart, ``test_held_out``).

Several runs of one row (one network, one data set, one split) train together, N runs per step
(:func:`cryo_companion.learn.multirun.fit_many`): a network with a classification head has
dropout, so its runs step by the loop; the Seg Subnet and SSN3D-ED may be vmapped on CUDA.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cryo_companion.dataset import SubtomogramSet
from cryo_companion.learn.batches import DatasetBatches
from cryo_companion.learn.early_stopping import EarlyStopping
from cryo_companion.learn.fit import FitConfig, FitResult, Job
from cryo_companion.learn.multirun import fit_many
from cryo_companion.learn.predict import predict
from cryo_companion.metrics import target_masks_from_scores
from cryo_companion.models.dsmnet import multitask_loss
from cryo_companion.papers.dsmnet.evaluate import converged, head_outputs, prepare, score
from cryo_companion.papers.dsmnet.splits import (
    random_split,
    relabel_without,
    split_sizes,
    without_class,
)
from cryo_companion.papers.dsmnet.training import PAPER_RECIPE, SPLIT_SEED, RunSpec, build_network

__all__ = ["SeedRun", "Settings", "TrainedRun", "check_training_set", "evaluate_network",
           "iters_per_epoch", "make_job", "make_loss", "run_classes", "run_record", "split_of",
           "train_runs", "validation_hook"]


@dataclass(frozen=True)
class Settings:
    """How the runs train (the paper's recipe, with the sizes a scale allows).

    Attributes
    ----------
    batch_size : int
        Subtomograms per batch (64).
    max_epochs : int
        Epochs at most (100).
    patience : int
        Epochs without improvement of the validation loss before stopping (15).
    min_delta : float
        Smallest decrease of the validation loss that counts (0, Keras' default).
    keep : str
        ``"best"`` (end with the best epoch's weights) or ``"last"``.
    lr : float
        Adam's learning rate (1e-3).
    betas : tuple of float
        Adam's (β1, β2), (0.9, 0.99).
    eps : float
        Adam's ε (Keras' 1e-7).
    precision : str
        ``"fp32"``, ``"tf32"`` (TF32 on CUDA, fp32 on the CPU) or ``"bf16"``.
    split_seed : int
        Seed of every run's split.
    checkpoint_epochs : int
        Epochs between checkpoints (0: only at the end).
    max_iters_per_epoch : int or None
        Validate after at most this many iterations (a reduced epoch, smoke scale only); None:
        full epochs, as the paper.
    widths : tuple of int
        DSM-Net's residual widths (32, 64, 128; narrower at smoke scale). DSRF3D-v2 and
        SSN3D-ED keep their own.
    fc_width : int
        DSM-Net's hidden units (1024).
    """

    batch_size: int = PAPER_RECIPE.batch_size
    max_epochs: int = PAPER_RECIPE.max_epochs
    patience: int = PAPER_RECIPE.patience
    min_delta: float = 0.0
    keep: str = "best" if PAPER_RECIPE.restore_best else "last"
    lr: float = PAPER_RECIPE.lr
    betas: tuple[float, float] = PAPER_RECIPE.betas
    eps: float = 1e-7
    precision: str = "tf32"
    split_seed: int = SPLIT_SEED
    checkpoint_epochs: int = 10
    max_iters_per_epoch: int | None = None
    widths: tuple[int, int, int] = (32, 64, 128)
    fc_width: int = 1024

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> Settings:
        """Return the paper's settings (``"paper"``) or a pipeline check's (``"smoke"``).

        Parameters
        ----------
        scale : str
            ``"paper"`` or ``"smoke"`` (batches of 4, at most 2 reduced epochs of 2
            iterations, patience 1, DSM-Net's widths 8, 16, 32 and 64 hidden units).
        **overrides : Any
            Other fields.

        Returns
        -------
        Settings
        """
        if scale == "paper":
            return replace(cls(), **overrides)
        if scale == "smoke":
            return replace(cls(batch_size=4, max_epochs=2, patience=1, precision="fp32",
                               checkpoint_epochs=0, max_iters_per_epoch=2, widths=(8, 16, 32),
                               fc_width=64), **overrides)
        raise ValueError(f"unknown scale {scale!r}; valid: paper, smoke")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        d = asdict(self)
        d["betas"], d["widths"] = list(self.betas), list(self.widths)
        return d


@dataclass(frozen=True)
class SeedRun:
    """One training run: one seed of one row of the paper's tables.

    Attributes
    ----------
    spec : RunSpec
        The row (network, heads, loss weights, data set, classes, held-out class).
    seed : int
        Seed of the initial weights, the batches and dropout.
    """

    spec: RunSpec
    seed: int

    def __post_init__(self) -> None:
        """Refuse a negative seed."""
        if int(self.seed) < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def name(self) -> str:
        """Return the file-safe name, e.g. ``table3_B_seg_seed0``, ``table4_cls_seg_1-100_seed0``.

        Returns
        -------
        str
        """
        row = self.spec.row.replace("+", "_").replace(":", "-")
        mid = f"_{self.spec.dataset}" if self.spec.table == "table3" else ""
        return f"{self.spec.table}{mid}_{row}_seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form (the row's fields and the seed)."""
        return {**self.spec.to_dict(), "seed": int(self.seed)}


def check_training_set(data: Any) -> None:
    """Refuse a data set DSM-Net's runs cannot train on, before any work.

    Parameters
    ----------
    data : CrowdedSubtomograms
        Subtomograms with labels, target masks and the targets' densities.

    Raises
    ------
    ValueError
        Not cubic boxes of a multiple of 8 voxels, NaN or infinite volumes, no masks or
        densities, or fewer than 10 subtomograms (a 10 % split needs them).
    """
    vols = np.asarray(data.volumes)
    if vols.ndim != 4 or len(set(vols.shape[1:])) != 1 or vols.shape[1] % 8:
        raise ValueError(f"subtomograms of shape {vols.shape[1:]}: DSM-Net takes cubic boxes "
                         "whose edge is a multiple of 8 voxels (the paper: 40^3)")
    if data.masks is None or getattr(data, "density", None) is None:
        raise ValueError("the set needs target masks and the targets' densities (a DSM-Net "
                         "data set: datasets.ensure_dataset)")
    finite = np.isfinite(vols.reshape(len(vols), -1)).all(axis=1)
    if not finite.all():
        raise ValueError(f"subtomograms {np.flatnonzero(~finite)[:10].tolist()} contain NaN or "
                         "infinite values")
    split_sizes(len(vols))


def run_classes(spec: RunSpec, class_names: Sequence[str]) -> tuple[list[str], int | None]:
    """Return the classes a run's network outputs and the index of its held-out class.

    Parameters
    ----------
    spec : RunSpec
        The row.
    class_names : sequence of str
        The data set's classes.

    Returns
    -------
    tuple
        The network's class names (the data set's, less the held-out class) and the held-out
        class's index in the data set (None without one).

    Raises
    ------
    ValueError
        When the network's class count is not the data set's (less the held-out class).
    """
    names = list(class_names)
    held = None
    if spec.held_out is not None:
        if spec.held_out not in names:
            raise ValueError(f"held-out class {spec.held_out!r} is not among {names}")
        held = names.index(spec.held_out)
        names = names[:held] + names[held + 1:]
    if spec.network != "ssn3d_ed" and len(names) != spec.n_classes:
        raise ValueError(f"{spec.name} outputs {spec.n_classes} classes; the data set has "
                         f"{len(names)} ({'less the held-out class' if held is not None else ''})"
                         .replace(" ()", ""))
    return names, held


def split_of(spec: RunSpec, labels: Any, class_names: Sequence[str], settings: Settings
             ) -> dict[str, np.ndarray]:
    """Return a run's train / validation / test indices.

    Parameters
    ----------
    spec : RunSpec
        The row.
    labels : array-like
        `(N,)` labels of the data set.
    class_names : sequence of str
        The data set's classes (to find a held-out class).
    settings : Settings
        The split seed.

    Returns
    -------
    dict
        Sorted index arrays ``train``, ``validation``, ``test``
        (:func:`~cryo_companion.papers.dsmnet.splits.random_split`); with a held-out class the
        training and validation parts without it, and ``all``
        (:func:`~cryo_companion.papers.dsmnet.splits.without_class`).
    """
    lab = np.asarray(labels)
    sp = random_split(len(lab), settings.split_seed)
    _, held = run_classes(spec, class_names)
    return sp if held is None else without_class(sp, lab, held)


def iters_per_epoch(n_train: int, batch_size: int) -> int:
    """Return the full batches of one epoch over ``n_train`` subtomograms.

    Parameters
    ----------
    n_train : int
        Training subtomograms.
    batch_size : int
        Batch size.

    Returns
    -------
    int
    """
    if n_train < batch_size:
        raise ValueError(f"{n_train} training subtomograms are fewer than one batch of "
                         f"{batch_size}")
    return n_train // batch_size


def make_loss(weights: Mapping[str, float]) -> Callable[..., dict[str, Tensor]]:
    """Make the training loss of a row: the paper's weighted sum over the network's heads.

    Parameters
    ----------
    weights : Mapping of str to float
        Weight of each head's loss (``"cls"``, ``"seg"``, ``"rec"``; the row's).

    Returns
    -------
    callable
        ``loss(output, labels, masks, density) -> {"loss": total, "cls": ..., ...}`` (the
        unweighted terms of the heads present) for DSM-Net's and DSRF3D-v2's dict outputs and
        SSN3D-ED's logits; tensor operations only, so it can be vmapped.
    """
    w = {k: float(v) for k, v in weights.items()}

    def loss(output: Any, labels: Tensor, masks: Tensor, density: Tensor) -> dict[str, Tensor]:
        out = {k: v.float() for k, v in head_outputs(output).items() if k != "features"}
        total, parts = multitask_loss(out, labels, masks, density, weights=w)
        return {"loss": total, **parts}

    return loss


def evaluate_network(model: nn.Module, cols: Mapping[str, Tensor],
                     weights: Mapping[str, float], *, chunk: int = 64) -> dict[str, float]:
    """Score a network on prepared subtomograms: the weighted loss, its terms and the metrics.

    Parameters
    ----------
    model : torch.nn.Module
        The network (evaluation mode is set for the call).
    cols : Mapping of str to torch.Tensor
        ``x``, ``labels``, ``masks``, ``density`` (:func:`~cryo_companion.papers.dsmnet.
        evaluate.prepare`), on any device.
    weights : Mapping of str to float
        The row's loss weights.
    chunk : int
        Subtomograms per forward pass.

    Returns
    -------
    dict
        ``loss`` (the weighted sum), ``cls_loss`` / ``seg_loss`` / ``rec_loss`` for the heads
        present, and :func:`~cryo_companion.papers.dsmnet.evaluate.score`'s metrics.
    """
    loss_fn = make_loss(weights)
    n = int(cols["x"].shape[0])

    def reduce(out: Any, sl: slice) -> dict[str, Tensor]:
        o = head_outputs(out)
        dev = next(iter(o.values())).device
        terms = loss_fn(out, *(cols[k][sl].to(dev) for k in ("labels", "masks", "density")))
        kept: dict[str, Tensor] = {f"{k}_sum": (v.detach() * (sl.stop - sl.start)).reshape(1)
                                   for k, v in terms.items()}
        if "class_logits" in o:
            kept["class_logits"] = o["class_logits"].float()
        if "segmentation" in o:
            kept["masks"] = target_masks_from_scores(o["segmentation"])
        if "recovery" in o:
            kept["recovery"] = o["recovery"].float()
        return kept

    got = predict(model, cols["x"], batch_size=chunk, reduce=reduce)
    res: dict[str, float] = {}
    for k in [k for k in got if k.endswith("_sum")]:
        name = k[:-4]
        res["loss" if name == "loss" else f"{name}_loss"] = float(got[k].sum()) / n
    # the predicted masks stand for the segmentation logits (two_class_scores takes either)
    outs = {k: v for k, v in (("class_logits", got.get("class_logits")),
                              ("segmentation", got.get("masks")),
                              ("recovery", got.get("recovery"))) if v is not None}
    res.update(score(outs, cols["labels"].cpu(), cols["masks"].cpu(), cols["density"].cpu()))
    return res


def validation_hook(val: Mapping[str, Tensor], fit: Mapping[str, Tensor],
                    weights: Mapping[str, float], chunk: int = 64
                    ) -> Callable[[nn.Module], dict[str, float]]:
    """Make a run's validation: the validation set's scores and a training subset's (``fit_*``).

    Parameters
    ----------
    val : Mapping of str to torch.Tensor
        The prepared validation subtomograms.
    fit : Mapping of str to torch.Tensor
        A fixed subset of the prepared training subtomograms.
    weights : Mapping of str to float
        The row's loss weights.
    chunk : int
        Subtomograms per forward pass.

    Returns
    -------
    callable
        ``hook(model) -> {"loss", ..., "fit_loss", "fit_cls_loss", ...}``; early stopping
        watches ``loss``.
    """
    def hook(model: nn.Module) -> dict[str, float]:
        v = evaluate_network(model, val, weights, chunk=chunk)
        f = evaluate_network(model, fit, weights, chunk=chunk)
        return {**v, **{f"fit_{k}": x for k, x in f.items()
                        if k.endswith("loss") or k == "object_accuracy"}}

    return hook


def _columns(cols: Mapping[str, Tensor], idx: np.ndarray, device: torch.device
             ) -> dict[str, Tensor]:
    t = torch.as_tensor(idx, dtype=torch.long)
    return {k: v[t].to(device) for k, v in cols.items()}


def make_job(run: SeedRun, settings: Settings, train: SubtomogramSet, density: np.ndarray,
             hook: Callable[[nn.Module], dict[str, float]], class_names: Sequence[str],
             device: torch.device, out: str | os.PathLike | None = None,
             resident: bool = False) -> Job:
    """One run as a :class:`~cryo_companion.learn.fit.Job` (model seeded and built).

    Parameters
    ----------
    run : SeedRun
        The run.
    settings : Settings
        The recipe.
    train : SubtomogramSet
        Its standardised training subtomograms with masks (labels in the network's numbering).
    density : numpy.ndarray
        `(n_train, D, D, D)` their recovery targets.
    hook : callable
        Its validation (:func:`validation_hook`).
    class_names : sequence of str
        The network's classes.
    device : torch.device
        Training device.
    out : str or os.PathLike or None
        Its checkpoint folder (None: none).
    resident : bool
        Keep the training set on ``device``.

    Returns
    -------
    Job
        With the run's seed for the weights, the batches' generator and the global RNG
        (dropout); Adam with the recipe's rate, betas and ε.
    """
    torch.manual_seed(run.seed)
    kw = ({"widths": settings.widths, "fc_width": settings.fc_width}
          if run.spec.network == "dsmnet" else {})
    model = build_network(run.spec, run.seed, box=int(train.volumes.shape[1]),
                          class_names=class_names, **kw).to(device)
    batches = DatasetBatches(train, settings.batch_size, device=device, masks=True,
                             resident=resident, extra=[density])
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=settings.betas,
                           eps=settings.eps)
    return Job(model=model, optimizer=opt, batches=batches,
               generator=torch.Generator(device=device).manual_seed(run.seed),
               out=None if out is None else Path(out), validate=hook,
               config={"run": run.to_dict(), "settings": settings.to_dict()}, name=run.name)


@dataclass
class TrainedRun:
    """A finished run: its network (the kept weights), the loop's result and its test.

    Attributes
    ----------
    run : SeedRun
        The run.
    model : torch.nn.Module
        The network, on the training device, in evaluation mode.
    result : FitResult
        History, timing, where it stopped.
    test : dict
        :func:`evaluate_network` on its test split (the trained classes' boxes).
    split_sizes : dict
        Subtomograms in train / validation / test.
    iters_per_epoch : int
        Iterations of one epoch.
    converged : bool or None
        Whether its classification loss on the training subset fell below 0.9 ln C at some
        epoch (None without a classification head).
    test_held_out : dict or None
        Segmentation and recovery scores of the held-out class's subtomograms (none of them
        trained on); None without a held-out class.
    class_names : list of str
        The network's classes.
    """

    run: SeedRun
    model: nn.Module
    result: FitResult
    test: dict[str, float]
    split_sizes: dict[str, int]
    iters_per_epoch: int
    converged: bool | None
    test_held_out: dict[str, float] | None = None
    class_names: list[str] = field(default_factory=list)


def train_runs(runs: Sequence[SeedRun], data: Any, settings: Settings,
               device: torch.device | str, *, root: str | os.PathLike | None = None,
               strategy: str = "auto", resume: bool = True, progress: bool = True,
               resident: bool | None = None) -> list[TrainedRun]:
    """Train the seeds of one row together (N runs per step), then test each.

    Parameters
    ----------
    runs : sequence of SeedRun
        Seeds of one row (one network, data set, split), distinct.
    data : CrowdedSubtomograms
        The row's data set (raw: mass dark), checked by :func:`check_training_set`.
    settings : Settings
        The recipe.
    device : torch.device or str
        Training device.
    root : str or os.PathLike or None
        Folder of the runs' checkpoint folders (``root/NAME``; None: no checkpoints).
    strategy : str
        ``"auto"``, ``"loop"`` or ``"vmap"`` (:func:`~cryo_companion.learn.multirun.fit_many`).
    resume : bool
        Continue runs from their checkpoints.
    progress : bool
        Progress bar on a terminal.
    resident : bool or None
        Keep the training sets on the device (None: on CUDA).

    Returns
    -------
    list of TrainedRun
        In the order of ``runs``.

    Raises
    ------
    ValueError
        For bad data (:func:`check_training_set`), runs of several rows or repeated seeds, or
        classes that do not fit the network; all before any training.
    """
    if not runs:
        raise ValueError("no runs to train")
    check_training_set(data)
    if len({r.spec.name for r in runs}) != 1 or len({r.seed for r in runs}) != len(runs):
        raise ValueError("train_runs trains distinct seeds of one row; got "
                         f"{[r.name for r in runs]}")
    spec = runs[0].spec
    names, held = run_classes(spec, data.class_names)
    device = torch.device(device)
    resident = device.type == "cuda" if resident is None else resident
    lab = np.asarray(data.labels)
    labels = relabel_without(lab, held) if held is not None else lab
    sp = split_of(spec, lab, data.class_names, settings)
    cols = prepare(data, labels=np.where(labels < 0, 0, labels))   # -1 never reaches a loss
    ipe = min(iters_per_epoch(len(sp["train"]), settings.batch_size),
              settings.max_iters_per_epoch or 10**9)
    tr = sp["train"]
    train = SubtomogramSet(cols["x"][tr].numpy(), labels[tr], cols["masks"][tr].numpy(), names,
                           data.voxel_size_A)
    fit_idx = tr[np.linspace(0, len(tr) - 1, min(len(tr), len(sp["validation"]))).astype(int)]
    val = _columns(cols, sp["validation"], device)
    fit = _columns(cols, fit_idx, device)
    hook = validation_hook(val, fit, spec.loss_weights)
    jobs = [make_job(r, settings, train, cols["density"][tr].numpy(), hook, names, device,
                     None if root is None else Path(root) / r.name, resident) for r in runs]
    rule = EarlyStopping("loss", patience=settings.patience, mode="min",
                         min_delta=settings.min_delta, keep=settings.keep)
    cfg = FitConfig(iters=settings.max_epochs * ipe, validate_every=ipe,
                    checkpoint_every=settings.checkpoint_epochs * ipe,
                    precision=settings.precision, early_stopping=rule,
                    desc=f"{spec.name}, {len(runs)} run(s)")
    results = fit_many(jobs, make_loss(spec.loss_weights), cfg, strategy=strategy,
                       resume=resume, progress=progress)
    test_idx = sp["test"][labels[sp["test"]] >= 0]
    held_idx = np.flatnonzero(lab == held) if held is not None else None
    sizes = {k: len(sp[k]) for k in ("train", "validation", "test")}
    out = []
    for r, j, res in zip(runs, jobs, results):
        model = j.model.eval()
        test = evaluate_network(model, _columns(cols, test_idx, device), spec.loss_weights)
        held_scores = None
        if held_idx is not None:       # no class of the network is right: seg and rec only
            s = evaluate_network(model, _columns(cols, held_idx, device), spec.loss_weights)
            held_scores = {k: v for k, v in s.items()
                           if k not in ("object_accuracy", "cls_loss", "loss")}
            held_scores["n"] = float(len(held_idx))
        conv = None
        if "cls" in spec.loss_weights:
            curve = [h["val_fit_cls_loss"] for h in res.history if "val_fit_cls_loss" in h]
            conv = converged(curve, len(names)) if curve else None
        out.append(TrainedRun(r, model, res, test, {**sizes, "test_scored": len(test_idx)},
                              ipe, conv, held_scores, names))
    return out


def run_record(run: TrainedRun, settings: Settings, dataset: Mapping[str, Any]
               ) -> dict[str, Any]:
    """Return what a finished run records (JSON-able): test scores, curve, where it stopped.

    Parameters
    ----------
    run : TrainedRun
        The run.
    settings : Settings
        Its recipe.
    dataset : mapping
        What to record of its data set (name, measured SNR, calibrated dose, size, hash).

    Returns
    -------
    dict
        ``run``, ``name``, ``settings``, ``test``, ``test_held_out``, ``converged``,
        ``history``, ``epochs_trained``, ``stopped_epoch``, ``best_epoch``,
        ``best_validation_loss``, ``iters_per_epoch``, ``split_sizes``, ``n_parameters``,
        ``class_names``, ``timing``, ``stepper``, ``dataset``.
    """
    r, ipe = run.result, run.iters_per_epoch
    t = r.timing
    return {
        "run": run.run.to_dict(), "name": run.run.name, "settings": settings.to_dict(),
        "test": run.test, "test_held_out": run.test_held_out, "converged": run.converged,
        "history": r.history, "epochs_trained": r.iterations // ipe,
        "stopped_epoch": None if r.stopped_at is None or r.iterations >= settings.max_epochs
        * ipe else r.stopped_at // ipe,
        "best_epoch": None if r.best_iteration is None else r.best_iteration // ipe,
        "best_validation_loss": r.best_value, "iters_per_epoch": ipe,
        "split_sizes": run.split_sizes,
        "n_parameters": sum(p.numel() for p in run.model.parameters() if p.requires_grad),
        "class_names": list(run.class_names),
        "timing": {k: t[k] for k in ("data_ms_per_iter", "net_ms_per_iter", "data_fraction",
                                     "runs_per_step", "wall_s_this_session")},
        "stepper": r.stepper, "dataset": dict(dataset)}
