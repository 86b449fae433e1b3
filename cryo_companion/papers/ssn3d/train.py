"""Training and testing SSN3D (Liu et al. 2018, 4.2 and 4.3) through :mod:`cryo_companion.learn`.

What is the paper's lives here; how to train lives in ``learn``:

- a run (:class:`RunSpec`) is a network (``"v1"``, ``"v2"``, ``"ed"``), a data set (A, B, C),
  a seed and, for Table 3, a held-out class; its split is the paper's random 3,042 / 338 with
  10 % of the training part for validation (Table 2), or all of the held-out class for testing
  and 10 % of the others for validation (Table 3) (:mod:`cryo_companion.papers.ssn3d.splits`).
  **One split seed for every run** (``Settings.split_seed``): the rows of Table 2 are tested on
  the same 338 subtomograms; the run's seed draws the initial weights, the batches and dropout;
- the inputs are standardised per subtomogram (zero mean, unit variance) in the contrast they
  were simulated in (mass dark, a raw reconstruction); the paper and the released code do not
  normalise (the released script feeds the arrays as generated), so this is ours;
- the paper's recipe (:data:`cryo_companion.papers.ssn3d.training.PAPER`): Adam with learning
  rate 1e-3, Keras' decay 1e-8 (a time-based decay of the rate, ``lr / (1 + 1e-8 t)``, not a
  weight decay: :class:`~cryo_companion.learn.optim.TimeDecayAdam`), β = (0.9, 0.99) and Keras'
  ε = 1e-7; categorical cross-entropy over the voxels (:func:`segmentation_loss`); batches of
  128; at most 200 epochs; early stopping after 10 epochs without improvement of the validation
  pixel accuracy (:class:`~cryo_companion.learn.early_stopping.EarlyStopping`), **ending with
  the weights of the best epoch** (the paper says the training "would stop and be saved"; the
  released script saves the best epoch's weights but evaluates the last epoch's);
- an epoch is ``floor(n_train / 128)`` iterations over a new permutation (every batch full;
  Keras' last, partial batch of an epoch is dropped), validated at its end;
- the test metrics are SSN3D's (:func:`cryo_companion.metrics.two_class_scores`: pixel
  accuracy, the mean of the background and target IoU per subtomogram as the headline mIoU,
  and the target IoU).

Several runs of one network on one data set train together, N runs per step
(:func:`cryo_companion.learn.multirun.fit_many`; SSN3D-v1 and -v2 have dropout, so they step
by the loop, SSN3D-ED may be vmapped), each stopping on its own.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion.dataset import SubtomogramSet
from cryo_companion.learn.batches import DatasetBatches
from cryo_companion.learn.early_stopping import EarlyStopping
from cryo_companion.learn.fit import FitConfig, FitResult, Job
from cryo_companion.learn.multirun import fit_many
from cryo_companion.learn.optim import TimeDecayAdam
from cryo_companion.learn.predict import predict
from cryo_companion.metrics import two_class_scores
from cryo_companion.models.ssn3d import SSN3D, VARIANTS, ssn3d
from cryo_companion.papers.ssn3d.paper_tables import TABLE1_IDS, TABLE3_ID_OF_TABLE1
from cryo_companion.papers.ssn3d.splits import leave_one_out_split, random_split
from cryo_companion.papers.ssn3d.training import PAPER
from cryo_companion.segment.network import check_volumes, preprocess
from cryo_companion.structures.catalogue import class_set

__all__ = ["TABLES", "RunSpec", "Settings", "TrainedRun", "check_training_set", "class_index",
           "evaluate", "held_out_ids", "iters_per_epoch", "make_job", "segmentation_loss",
           "split_of", "train_runs", "validation_hook"]

#: The tables a run belongs to.
TABLES = ("table2", "table3")
#: The class set of SSN3D's data sets.
CLASS_SET = "liu22"


def held_out_ids() -> tuple[str, ...]:
    """Return the 22 classes as Table 3 names them, in the class set's order (1KP8 for 1KPB).

    Returns
    -------
    tuple of str
    """
    return tuple(TABLE3_ID_OF_TABLE1.get(i, i) for i in TABLE1_IDS)


def class_index(table3_id: str) -> int:
    """Return the class index of a Table 3 PDB ID (``"1KP8"``; Table 1's ``"1KPB"`` works too).

    Parameters
    ----------
    table3_id : str
        A PDB ID of Table 1 or Table 3, any case.

    Returns
    -------
    int
        The index in the ``liu22`` class set.
    """
    key = table3_id.upper()
    for ids in (held_out_ids(), TABLE1_IDS):
        if key in ids:
            return ids.index(key)
    raise ValueError(f"unknown SSN3D class {table3_id!r}; valid (Table 3): "
                     f"{', '.join(held_out_ids())}")


@dataclass(frozen=True)
class RunSpec:
    """One training run of Table 2 or Table 3.

    Attributes
    ----------
    table : str
        ``"table2"`` or ``"table3"``.
    variant : str
        ``"v1"``, ``"v2"`` or ``"ed"``.
    dataset : str
        ``"A"``, ``"B"`` or ``"C"``.
    seed : int
        Seed of the initial weights, the batches and dropout.
    held_out : str or None
        Table 3: the held-out class as Table 3 names it (``"1KP8"``); None for Table 2.
    """

    table: str
    variant: str
    dataset: str
    seed: int
    held_out: str | None = None

    def __post_init__(self) -> None:
        """Refuse a run the tables do not have."""
        if self.table not in TABLES:
            raise ValueError(f"unknown table {self.table!r}; valid: {', '.join(TABLES)}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown SSN3D variant {self.variant!r}; valid: "
                             f"{', '.join(VARIANTS)}")
        if self.dataset not in ("A", "B", "C"):
            raise ValueError(f"unknown SSN3D data set {self.dataset!r}; valid: A, B, C")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if (self.table == "table3") != (self.held_out is not None):
            raise ValueError("a Table 3 run needs a held-out class and a Table 2 run none")
        if self.held_out is not None:
            object.__setattr__(self, "held_out", held_out_ids()[class_index(self.held_out)])

    @property
    def name(self) -> str:
        """File-safe name: ``table2_ed_A_seed0``, ``table3_ed_A_1KP8_seed0``."""
        mid = f"_{self.held_out}" if self.held_out else ""
        return f"{self.table}_{self.variant}_{self.dataset}{mid}_seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        return asdict(self)


@dataclass(frozen=True)
class Settings:
    """How the runs train (the paper's recipe, with the sizes a scale allows).

    Attributes
    ----------
    batch_size : int
        Subtomograms per batch (128).
    max_epochs : int
        Epochs at most (200).
    patience : int
        Epochs without improvement of the validation pixel accuracy before stopping (10).
    min_delta : float
        Smallest improvement that counts (0).
    keep : str
        ``"best"`` (end with the best epoch's weights) or ``"last"``.
    lr : float
        Adam's learning rate (1e-3).
    betas : tuple of float
        Adam's (β1, β2), (0.9, 0.99).
    lr_decay : float
        Keras' time-based decay per iteration (1e-8).
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
    """

    batch_size: int = PAPER.batch_size
    max_epochs: int = PAPER.max_epochs
    patience: int = PAPER.patience
    min_delta: float = PAPER.min_delta
    keep: str = "best"
    lr: float = PAPER.lr
    betas: tuple[float, float] = PAPER.betas
    lr_decay: float = PAPER.lr_decay_per_iteration
    eps: float = 1e-7
    precision: str = "tf32"
    split_seed: int = 0
    checkpoint_epochs: int = 10
    max_iters_per_epoch: int | None = None

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> Settings:
        """Return the paper's settings (``"paper"``) or a pipeline check's (``"smoke"``).

        Parameters
        ----------
        scale : str
            ``"paper"`` or ``"smoke"`` (batches of 4, at most 2 reduced epochs of 2
            iterations, patience 1).
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
                               checkpoint_epochs=0, max_iters_per_epoch=2), **overrides)
        raise ValueError(f"unknown scale {scale!r}; valid: paper, smoke")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def check_training_set(data: SubtomogramSet, box: int = 40) -> None:
    """Refuse a data set the SSN3D runs cannot train on, before any work.

    Parameters
    ----------
    data : SubtomogramSet
        Subtomograms with target masks and ``liu22`` labels.
    box : int
        The networks' box edge.

    Raises
    ------
    ValueError
        Boxes of another size, NaN or infinite volumes, no masks, labels or masks that do not
        match the volumes, or classes other than the ``liu22`` set's.
    """
    n = len(data.volumes)
    if data.masks is None:
        raise ValueError("the set has no target masks; SSN3D trains on (volume, target mask) "
                         "pairs")
    if np.shape(data.labels) != (n,) or np.shape(data.masks) != np.shape(data.volumes):
        raise ValueError(f"labels {np.shape(data.labels)} and masks {np.shape(data.masks)} do "
                         f"not match the {np.shape(data.volumes)} volumes (one label and one "
                         "mask per volume)")
    expected = class_set(CLASS_SET).class_names
    if list(data.class_names) != list(expected):
        raise ValueError(f"unknown class set {list(data.class_names)[:3]}...: SSN3D's runs "
                         f"take the {len(expected)} classes of {CLASS_SET!r} in its order")
    if n and (int(np.min(data.labels)) < 0 or int(np.max(data.labels)) >= len(expected)):
        raise ValueError(f"labels outside [0, {len(expected)})")
    check_volumes(data.volumes, box, "subtomograms")


def split_of(spec: RunSpec, labels: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """Return the run's train / validation / test indices.

    Parameters
    ----------
    spec : RunSpec
        The run.
    labels : numpy.ndarray
        `(N,)` class labels of the data set.
    settings : Settings
        The split seed and the validation fraction.

    Returns
    -------
    dict
        ``"train"``, ``"validation"``, ``"test"`` sorted index arrays.
    """
    if spec.held_out is None:
        return random_split(len(labels), settings.split_seed,
                            validation_fraction=PAPER.validation_fraction)
    return leave_one_out_split(labels, class_index(spec.held_out), settings.split_seed,
                               validation_fraction=PAPER.validation_fraction)


def iters_per_epoch(n_train: int, batch_size: int) -> int:
    """Return the full batches of one epoch over ``n_train`` subtomograms (at least 1).

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


def segmentation_loss(logits: Tensor, _label: Tensor, mask: Tensor) -> Tensor:
    """Categorical cross-entropy of the two-class output, averaged over every voxel of the batch.

    Parameters
    ----------
    logits : torch.Tensor
        `(B, 2, D, D, D)` network output (channel 1: target).
    _label : torch.Tensor
        `(B,)` class labels (unused: the batch source's second column).
    mask : torch.Tensor
        `(B, D, D, D)` bool target masks.

    Returns
    -------
    torch.Tensor
        A float32 scalar.
    """
    return F.cross_entropy(logits.float(), mask.long())


def _scores(model: torch.nn.Module, x: Tensor, masks: Tensor, chunk: int) -> dict[str, Any]:
    def reduce(out: Tensor, sl: slice) -> tuple[Tensor, Tensor]:
        out = out.float()
        loss = F.cross_entropy(out, masks[sl].to(out.device).long(), reduction="sum")
        return loss.reshape(1), out[:, 1] > out[:, 0]

    loss, pred = predict(model, x, batch_size=chunk, reduce=reduce, out_device=None)
    scores = two_class_scores(pred, masks.to(pred.device))
    return {"loss": float(loss.sum()) / masks.numel(), **scores}


def validation_hook(x: Tensor, masks: Tensor, chunk: int = 64) -> Callable[..., dict[str, float]]:
    """Make a run's validation: loss, pixel accuracy, mIoU and target IoU of a held-out part.

    Parameters
    ----------
    x : torch.Tensor
        `(N, D, D, D)` standardised validation subtomograms (on the training device).
    masks : torch.Tensor
        `(N, D, D, D)` bool target masks.
    chunk : int
        Subtomograms per forward pass.

    Returns
    -------
    callable
        ``hook(model) -> {"loss", "pixel_accuracy", "miou", "target_iou", "background_iou"}``.
    """
    def hook(model: torch.nn.Module) -> dict[str, float]:
        return _scores(model, x, masks, chunk)

    return hook


def evaluate(model: torch.nn.Module, x: Tensor, masks: Tensor, chunk: int = 64
             ) -> dict[str, float]:
    """Score a trained network on standardised test subtomograms (SSN3D's metrics).

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    x : torch.Tensor
        `(N, D, D, D)` standardised subtomograms.
    masks : torch.Tensor
        `(N, D, D, D)` bool ground truth.
    chunk : int
        Subtomograms per forward pass.

    Returns
    -------
    dict
        ``loss``, ``pixel_accuracy``, ``miou`` (mean of background and target IoU),
        ``target_iou``, ``background_iou``.
    """
    return _scores(model, x, masks, chunk)


def _optimizer(model: torch.nn.Module, s: Settings) -> TimeDecayAdam:
    return TimeDecayAdam(model.parameters(), lr=s.lr, decay=s.lr_decay, betas=s.betas, eps=s.eps)


def make_job(spec: RunSpec, settings: Settings, train: SubtomogramSet, val: tuple[Tensor, Tensor],
             device: torch.device, out: str | os.PathLike | None = None,
             resident: bool = False) -> Job:
    """One run as a :class:`~cryo_companion.learn.fit.Job` (model seeded and built).

    Parameters
    ----------
    spec : RunSpec
        The run.
    settings : Settings
        The recipe.
    train : SubtomogramSet
        Its standardised training subtomograms with masks.
    val : tuple of torch.Tensor
        Its standardised validation subtomograms and masks, on ``device``.
    device : torch.device
        Training device.
    out : str or os.PathLike or None
        Its checkpoint folder (None: none).
    resident : bool
        Keep the training set on ``device`` (no host-to-device copy per batch).

    Returns
    -------
    Job
        With the run's seed for the weights (:func:`cryo_companion.models.ssn3d.ssn3d`), the
        batches' generator and the global RNG (dropout).
    """
    torch.manual_seed(spec.seed)
    model = ssn3d(spec.variant, seed=spec.seed).to(device)
    batches = DatasetBatches(train, settings.batch_size, device=device, masks=True,
                             resident=resident)
    return Job(model=model, optimizer=_optimizer(model, settings), batches=batches,
               generator=torch.Generator(device=device).manual_seed(spec.seed),
               out=None if out is None else Path(out), validate=validation_hook(*val),
               config={"run": spec.to_dict(), "settings": settings.to_dict()}, name=spec.name)


@dataclass
class TrainedRun:
    """A finished run: its network (with the kept weights), the loop's result and its test.

    Attributes
    ----------
    spec : RunSpec
        The run.
    model : SSN3D
        The network, on the training device, in evaluation mode.
    result : FitResult
        History, timing, where it stopped.
    test : dict
        :func:`evaluate` on its test split.
    split_sizes : dict
        Subtomograms in train / validation / test.
    iters_per_epoch : int
        Iterations of one epoch.
    """

    spec: RunSpec
    model: SSN3D
    result: FitResult
    test: dict[str, float]
    split_sizes: dict[str, int]
    iters_per_epoch: int


def train_runs(specs: Sequence[RunSpec], data: SubtomogramSet, settings: Settings,
               device: torch.device | str, *, root: str | os.PathLike | None = None,
               strategy: str = "auto", resume: bool = True, progress: bool = True,
               resident: bool | None = None) -> list[TrainedRun]:
    """Train runs of one network on one data set together (N runs per step), then test each.

    Parameters
    ----------
    specs : sequence of RunSpec
        The runs: one variant, one data set, distinct names, splits of equal epoch length
        (:func:`iters_per_epoch`).
    data : SubtomogramSet
        The data set (raw: mass dark), checked by :func:`check_training_set`.
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
        In the order of ``specs``.

    Raises
    ------
    ValueError
        For bad data (:func:`check_training_set`), runs of several networks or data sets, or
        splits of unequal epoch length; all before any training.
    """
    if not specs:
        raise ValueError("no runs to train")
    check_training_set(data)
    if len({(s.variant, s.dataset) for s in specs}) != 1 or len({s.name for s in specs}) != len(
            specs):
        raise ValueError("train_runs trains distinct runs of one network on one data set; got "
                         f"{[s.name for s in specs]}")
    device = torch.device(device)
    resident = device.type == "cuda" if resident is None else resident
    x = preprocess(torch.from_numpy(data.volumes), invert=False)
    masks = torch.from_numpy(data.masks)  # type: ignore[arg-type]
    splits = [split_of(s, data.labels, settings) for s in specs]
    ipes = {iters_per_epoch(len(sp["train"]), settings.batch_size) for sp in splits}
    if len(ipes) != 1:
        raise ValueError(f"the runs' epochs differ ({sorted(ipes)} iterations): group runs of "
                         "equal training-set size")
    ipe = min(ipes.pop(), settings.max_iters_per_epoch or settings.max_epochs * 10**6)
    std = SubtomogramSet(x.numpy(), data.labels, data.masks, data.class_names, data.voxel_size_A)
    jobs, shared = [], {}
    for s, sp in zip(specs, splits):
        key = tuple(sp["train"].tolist())
        if key not in shared:       # runs of one split share one training set
            shared[key] = std.subset(sp["train"])
        v = sp["validation"]
        jobs.append(make_job(s, settings, shared[key], (x[v].to(device), masks[v].to(device)),
                             device, None if root is None else Path(root) / s.name, resident))
    rule = EarlyStopping("pixel_accuracy", patience=settings.patience,
                         min_delta=settings.min_delta, keep=settings.keep)
    cfg = FitConfig(iters=settings.max_epochs * ipe, validate_every=ipe,
                    checkpoint_every=settings.checkpoint_epochs * ipe,
                    precision=settings.precision, early_stopping=rule,
                    desc=f"SSN3D-{specs[0].variant} on {specs[0].dataset}, {len(specs)} run(s)")
    results = fit_many(jobs, segmentation_loss, cfg, strategy=strategy, resume=resume,
                       progress=progress)
    out = []
    for s, sp, j, r in zip(specs, splits, jobs, results):
        t = sp["test"]
        test = evaluate(j.model, x[t].to(device), masks[t].to(device))
        assert isinstance(j.model, SSN3D)
        out.append(TrainedRun(s, j.model.eval(), r, test,
                              {k: len(v) for k, v in sp.items()}, ipe))
    return out


def run_record(run: TrainedRun, settings: Settings, dataset: Mapping[str, Any]) -> dict[str, Any]:
    """Return what a finished run records (JSON-able): test scores, curve, where it stopped.

    Parameters
    ----------
    run : TrainedRun
        The run.
    settings : Settings
        Its recipe.
    dataset : mapping
        What to record of its data set (name, measured SNR, calibrated dose, size).

    Returns
    -------
    dict
        ``run``, ``settings``, ``test``, ``history``, ``epochs_trained``, ``stopped_epoch``,
        ``best_epoch``, ``iters_per_epoch``, ``split_sizes``, ``n_parameters``, ``timing``,
        ``stepper``, ``dataset``.
    """
    r, ipe = run.result, run.iters_per_epoch
    t = r.timing
    return {
        "run": run.spec.to_dict(), "settings": settings.to_dict(), "test": run.test,
        "history": r.history, "epochs_trained": r.iterations // ipe,
        "stopped_epoch": None if r.stopped_at is None or r.iterations >= settings.max_epochs
        * ipe else r.stopped_at // ipe,
        "best_epoch": None if r.best_iteration is None else r.best_iteration // ipe,
        "best_validation_pixel_accuracy": r.best_value, "iters_per_epoch": ipe,
        "split_sizes": run.split_sizes, "n_parameters": run.model.n_parameters(),
        "timing": {k: t[k] for k in ("data_ms_per_iter", "net_ms_per_iter", "data_fraction",
                                     "runs_per_step", "wall_s_this_session")},
        "stepper": r.stepper, "dataset": dict(dataset)}
