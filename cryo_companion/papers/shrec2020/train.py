"""Training SHREC 2020's networks through ``cryo_companion.learn`` (Gubins et al. 2020, 3.2-3.6).

Each network's recipe (:data:`~.methods.RECIPES`) becomes a loss, a batch source and an
optimiser here; the loop is the generic one (:func:`cryo_companion.learn.budget.fit_segments`
over :func:`cryo_companion.learn.multirun.fit_many`), so two or more seeds of one network train
together, N runs per step (``vmap`` on CUDA: DeepFinder and UMC have no batch statistics, YOPO's
batch-norm statistics are stacked per run; the loop elsewhere).

* **DeepFinder**: Dice loss (Tversky α = β = 0.5, summed over the 13 classes as in the published
  code) on the softmax of the logits; Adam lr 1e-4 (β 0.9 / 0.999); batches of 25 patches of 56³
  drawn by :func:`~.training_data.deepfinder_batch` (a random particle, a shift of up to 13
  voxels, per-patch standardisation, a 180° turn about y).
* **YOPO**: cross-entropy over the 13 classes; Adam lr 1e-3; batches of 64 boxes (the paper
  gives no batch size: this package's choice) drawn in shuffled epochs over the boxes of
  :func:`~.training_data.yopo_boxes` (a 24³ box at every particle and 20,000 background boxes,
  cut once with the data seed, the same for every run).
* **UMC**: ``mse_weight × MSE(denoised, grand model) + tversky_weight × Tversky(α 0.7, β 0.3)``
  with both weights 1 (the paper names the two objectives and no weighting: their plain sum is
  this package's choice; the Tversky term, summed over 13 classes, is the larger one); Adam lr
  1e-3; batches of 24 patches of 64³ in shuffled epochs over the grid of
  :func:`~.training_data.umc_corners` (stride 16: 75 % overlap), randomly flipped along x and y.

Training is time-boxed (:class:`TrainSettings` ``budget_s``: the group's training wall time, all
seeds together) at paper scale and a fixed number of iterations at smoke scale, in segments that
end with a checkpoint and a score of every run (F1 against training time). Weights are written
as detector files (:func:`~.pipelines.save_detector`) that ``cryo-companion detect`` reads.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion.learn.batches import BatchSource, EpochBatches
from cryo_companion.learn.budget import ScoreFn, SegmentedResult, fit_segments
from cryo_companion.learn.fit import FitConfig, Job
from cryo_companion.learn.step import LossFn
from cryo_companion.models.registry import build_model
from cryo_companion.models.tversky import tversky_loss
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
from cryo_companion.papers.shrec2020.pipelines import save_detector
from cryo_companion.papers.shrec2020.training_data import (
    ModelVolumes,
    deepfinder_batch,
    umc_batch,
    umc_corners,
    yopo_boxes,
)

__all__ = [
    "CLASS_NAMES",
    "METHODS",
    "SETTINGS",
    "TrainSettings",
    "TrainedMethod",
    "deepfinder_loss",
    "deepfinder_min_sizes",
    "loss_for",
    "make_jobs",
    "make_source",
    "models_to",
    "train_method",
    "umc_loss",
    "yopo_loss",
]

#: The trained methods.
METHODS: tuple[str, ...] = ("deepfinder", "yopo", "umc")
#: Output channel k of every network: 0 background, then Table 1 by molecular weight.
CLASS_NAMES: tuple[str, ...] = ("background", *CLASS_ORDER)
#: Seed of the data cut once for all runs (YOPO's background boxes).
DATA_SEED = 2020


def deepfinder_loss(alpha: float = 0.5, beta: float = 0.5) -> LossFn:
    """DeepFinder's loss: the Tversky loss of the softmax (Dice for α = β = 0.5).

    Parameters
    ----------
    alpha, beta : float
        Weights of the false positives and false negatives.

    Returns
    -------
    LossFn
        ``loss(logits (B, C, D, H, W), labels (B, D, H, W)) -> scalar``, tensor operations only
        (runs under ``vmap``).
    """
    def loss(logits: Tensor, labels: Tensor) -> Tensor:
        return tversky_loss(torch.softmax(logits.float(), 1), labels, alpha=alpha, beta=beta,
                            check_labels=False)
    return loss


def yopo_loss() -> LossFn:
    """YOPO's loss: cross-entropy of the box's class (13 classes, 0 background).

    Returns
    -------
    LossFn
        ``loss(logits (B, C), labels (B,)) -> scalar``.
    """
    def loss(logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), labels)
    return loss


def umc_loss(alpha: float = 0.7, beta: float = 0.3, *, mse_weight: float = 1.0,
             tversky_weight: float = 1.0) -> LossFn:
    """UMC's two objectives: MSE of the denoising decoder, Tversky loss of the segmentation.

    Parameters
    ----------
    alpha, beta : float
        Tversky weights of the false positives and false negatives (0.7, 0.3).
    mse_weight, tversky_weight : float
        Weights of the two terms in the total (both 1: the paper states none).

    Returns
    -------
    LossFn
        ``loss((denoised, logits), denoise_target, labels) -> {"loss", "mse", "tversky"}``.
    """
    def loss(out: Sequence[Tensor], target: Tensor, labels: Tensor) -> dict[str, Tensor]:
        mse = F.mse_loss(out[0].float(), target.float())
        tv = tversky_loss(torch.softmax(out[-1].float(), 1), labels, alpha=alpha, beta=beta,
                          check_labels=False)
        return {"loss": mse_weight * mse + tversky_weight * tv, "mse": mse, "tversky": tv}
    return loss


@dataclass(frozen=True)
class TrainSettings:
    """How one network is trained (defaults: none; see :data:`SETTINGS`).

    Attributes
    ----------
    method : str
        ``deepfinder``, ``yopo`` or ``umc``.
    network : dict
        The network's configuration (``to_dict`` form of its config class).
    batch_size : int
        Items per batch and run.
    lr : float
        Adam's learning rate.
    betas : tuple of float
        Adam's β₁, β₂.
    loss : dict
        Keyword arguments of the method's loss (:func:`loss_for`).
    sampling : dict
        The batch source's settings: DeepFinder ``shift_vox``; YOPO ``n_background``; UMC
        ``stride``.
    iters : int
        The most iterations (with ``budget_s``) or exactly these (without).
    budget_s : float or None
        Training wall time of all runs together, seconds (None: ``iters`` exactly).
    points : int
        Segments, i.e. scored points of the F1-against-time curve.
    first_iters : int
        First segment's iterations with a budget (its speed plans the rest).
    precision : str
        ``fp32``, ``tf32`` or ``bf16`` (:mod:`cryo_companion.learn.precision`).
    """

    method: str
    network: dict[str, Any]
    batch_size: int
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    loss: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    iters: int = 100
    budget_s: float | None = None
    points: int = 4
    first_iters: int = 20
    precision: str = "fp32"

    def __post_init__(self) -> None:
        """Refuse an unknown method or impossible sizes."""
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; trained methods: "
                             f"{', '.join(METHODS)}")
        if self.batch_size < 1 or self.iters < 1 or self.points < 1 or self.first_iters < 1:
            raise ValueError("batch_size, iters, points and first_iters must be >= 1")
        if not self.lr > 0 or (self.budget_s is not None and not self.budget_s > 0):
            raise ValueError("lr and budget_s must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def replace(self, **changes: Any) -> TrainSettings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def fit_config(self) -> FitConfig:
        """Return the loop's settings (on the CPU tf32 is the same as fp32)."""
        return FitConfig(iters=self.iters, precision=self.precision, desc=f"train {self.method}")


def _paper() -> dict[str, TrainSettings]:
    from cryo_companion.models.deepfinder import DeepFinderConfig
    from cryo_companion.models.umc import UMCConfig
    from cryo_companion.models.yopo import YOPOConfig

    common: dict[str, Any] = {"iters": 100_000, "budget_s": 90.0, "points": 3,
                              "first_iters": 20, "precision": "tf32"}
    return {
        "deepfinder": TrainSettings("deepfinder", DeepFinderConfig().to_dict(), 25, 1e-4,
                                    loss={"alpha": 0.5, "beta": 0.5},
                                    sampling={"shift_vox": 13}, **common),
        "yopo": TrainSettings("yopo", YOPOConfig().to_dict(), 64, 1e-3,
                              sampling={"n_background": 20_000}, **common),
        "umc": TrainSettings("umc", UMCConfig().to_dict(), 24, 1e-3,
                             loss={"alpha": 0.7, "beta": 0.3, "mse_weight": 1.0,
                                   "tversky_weight": 1.0},
                             sampling={"stride": 16}, **common),
    }


def _smoke() -> dict[str, TrainSettings]:
    from cryo_companion.models.deepfinder import DeepFinderConfig
    from cryo_companion.models.umc import UMCConfig
    from cryo_companion.models.yopo import YOPOConfig

    common: dict[str, Any] = {"iters": 6, "budget_s": None, "points": 2, "precision": "fp32"}
    return {
        "deepfinder": TrainSettings("deepfinder",
                                    DeepFinderConfig(patch=24, widths=(4, 6, 8)).to_dict(), 4,
                                    1e-3, loss={"alpha": 0.5, "beta": 0.5},
                                    sampling={"shift_vox": 4}, **common),
        "yopo": TrainSettings("yopo", YOPOConfig(widths=(8,) * 10, fc_width=32).to_dict(), 16,
                              1e-3, sampling={"n_background": 200}, **common),
        "umc": TrainSettings("umc", UMCConfig(widths=(4, 8, 16), patch=32).to_dict(), 2, 1e-3,
                             loss={"alpha": 0.7, "beta": 0.3, "mse_weight": 1.0,
                                   "tversky_weight": 1.0},
                             sampling={"stride": 16}, **common),
    }


#: Settings by scale: ``"paper"`` (the paper's networks and batches, 90 s of training per
#: network for all its seeds together, at most 100,000 iterations) and ``"smoke"`` (narrow
#: networks, small patches, 6 iterations: a check of the pipeline on the CPU).
SETTINGS: dict[str, dict[str, TrainSettings]] = {"paper": _paper(), "smoke": _smoke()}


def loss_for(s: TrainSettings) -> LossFn:
    """Return the loss of a method's settings.

    Parameters
    ----------
    s : TrainSettings
        The settings (``method`` and ``loss``).

    Returns
    -------
    LossFn
    """
    if s.method == "deepfinder":
        return deepfinder_loss(**s.loss)
    if s.method == "yopo":
        return yopo_loss(**s.loss)
    return umc_loss(**s.loss)


def models_to(models: Sequence[ModelVolumes], device: torch.device | str) -> list[ModelVolumes]:
    """Move the training models' volumes to the training device (labels stay on the host).

    Parameters
    ----------
    models : sequence of ModelVolumes
        The training models.
    device : torch.device or str
        Where batches are cut.

    Returns
    -------
    list of ModelVolumes
    """
    return [dataclasses.replace(m, tomogram=m.tomogram.to(device),
                                class_mask=m.class_mask.to(device),
                                occupancy=m.occupancy.to(device),
                                grandmodel=m.grandmodel.to(device)) for m in models]


class _Patches:
    """DeepFinder's patches: every batch a fresh draw (no state besides the generator)."""

    def __init__(self, models: Sequence[ModelVolumes], batch_size: int, patch: int,
                 shift_vox: int, device: torch.device) -> None:
        self.models, self.batch_size, self.patch = list(models), batch_size, patch
        self.shift_vox, self.device = shift_vox, device

    def next_batch(self, generator: torch.Generator) -> tuple[Tensor, ...]:
        x, y = deepfinder_batch(self.models, self.batch_size, generator, patch=self.patch,
                                shift_vox=self.shift_vox)
        return x.to(self.device), y.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None


def make_source(s: TrainSettings, models: Sequence[ModelVolumes], device: torch.device | str,
                *, shared: dict[str, Any] | None = None) -> BatchSource:
    """Return the batch source of one run of a method.

    Parameters
    ----------
    s : TrainSettings
        The method's settings.
    models : sequence of ModelVolumes
        The training models (on ``device``: :func:`models_to`).
    device : torch.device or str
        Where the batches go.
    shared : dict or None
        A cache shared by the runs of one group (YOPO's boxes are cut once into it).

    Returns
    -------
    BatchSource
        DeepFinder: fresh patches per batch; YOPO and UMC: shuffled epochs
        (:class:`~cryo_companion.learn.batches.EpochBatches`).
    """
    dev = torch.device(device)
    net = s.network
    if s.method == "deepfinder":
        return _Patches(models, s.batch_size, int(net["patch"]), int(s.sampling["shift_vox"]),
                        dev)
    cache = shared if shared is not None else {}
    if s.method == "yopo":
        if "yopo_boxes" not in cache:
            g = torch.Generator().manual_seed(DATA_SEED)
            boxes, labels = yopo_boxes(models, int(s.sampling["n_background"]), g,
                                       box=int(net["box"]))
            cache["yopo_boxes"] = (boxes.to(dev), labels.to(dev))
        boxes, labels = cache["yopo_boxes"]

        def cut_boxes(idx: Tensor, g: torch.Generator) -> tuple[Tensor, ...]:
            i = idx.to(boxes.device)
            return boxes[i], labels[i]
        return EpochBatches(len(labels), s.batch_size, cut_boxes)
    patch, stride = int(net["patch"]), int(s.sampling["stride"])
    items = [(k, c) for k, m in enumerate(models)
             for c in umc_corners(tuple(m.tomogram.shape), patch=patch, stride=stride)]

    def cut_patches(idx: Tensor, g: torch.Generator) -> tuple[Tensor, ...]:
        x, d, y = umc_batch(models, [items[int(i)] for i in idx], g, patch=patch)
        return x.to(dev), d.to(dev), y.to(dev)
    return EpochBatches(len(items), s.batch_size, cut_patches)


def make_jobs(s: TrainSettings, models: Sequence[ModelVolumes], seeds: Sequence[int],
              root: str | Path, device: torch.device | str) -> list[Job]:
    """One :class:`~cryo_companion.learn.fit.Job` per seed, each seeded and built in turn.

    Parameters
    ----------
    s : TrainSettings
        The method's settings.
    models : sequence of ModelVolumes
        The training models, on ``device``.
    seeds : sequence of int
        One run per seed: its weights (``torch.manual_seed(seed)``) and its batches (a CPU
        generator seeded with ``seed``).
    root : str or Path
        Runs go to ``root/METHOD/seed_S`` (created; a checkpoint there is refused by
        :func:`~cryo_companion.learn.budget.fit_segments`).
    device : torch.device or str
        Training device.

    Returns
    -------
    list of Job
    """
    dev = torch.device(device)
    shared: dict[str, Any] = {}
    jobs = []
    for seed in seeds:
        out = Path(root) / s.method / f"seed_{int(seed)}"
        out.mkdir(parents=True, exist_ok=True)
        source = make_source(s, models, dev, shared=shared)
        torch.manual_seed(int(seed))
        model = build_model(s.method, s.network, class_names=CLASS_NAMES).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=s.lr,
                               betas=(float(s.betas[0]), float(s.betas[1])))
        jobs.append(Job(model=model, optimizer=opt, batches=source,
                        generator=torch.Generator().manual_seed(int(seed)), out=out,
                        config={**s.to_dict(), "seed": int(seed)},
                        name=f"{s.method} seed {int(seed)}"))
    return jobs


def deepfinder_min_sizes(models: Sequence[ModelVolumes], *, fraction: float = 0.1,
                         bin_factor: int = 2) -> dict[int, int]:
    """DeepFinder's per-class cluster-size thresholds, from the training models' masks.

    DeepFinder drops clusters smaller than a threshold of their class, "determined on the
    validation set" in its published example and not given for SHREC 2020. This package takes,
    for each class, ``fraction`` of the median size of its particles in the training models'
    occupancy maps, in voxels of the binned map (``size / bin_factor³``), at least 1. Nothing
    of the test model is used.

    Parameters
    ----------
    models : sequence of ModelVolumes
        The training models.
    fraction : float
        Share of the median particle size (0.1).
    bin_factor : int
        Binning of the clustered map (2).

    Returns
    -------
    dict of int to int
        Label (1-12) -> smallest cluster kept (binned voxels); classes absent from the
        training models are not listed (no threshold).
    """
    if not 0 < fraction <= 1 or bin_factor < 1:
        raise ValueError(f"need 0 < fraction <= 1 and bin_factor >= 1, got {fraction}, "
                         f"{bin_factor}")
    sizes: dict[int, list[int]] = {}
    for m in models:
        counts = np.bincount(m.occupancy.reshape(-1).cpu().numpy(), minlength=len(m.labels) + 1)
        for i, lab in enumerate(m.labels.tolist()):
            if counts[i + 1] > 0:
                sizes.setdefault(int(lab), []).append(int(counts[i + 1]))
    return {k: max(1, int(round(fraction * float(np.median(v)) / bin_factor ** 3)))
            for k, v in sorted(sizes.items())}


@dataclass
class TrainedMethod:
    """A method's runs after training.

    Attributes
    ----------
    settings : TrainSettings
        How they were trained.
    seeds : list of int
        One run per seed.
    jobs : list of Job
        The runs (their models trained, in evaluation mode).
    segmented : SegmentedResult
        Losses, scored points, times, stepper.
    detectors : list of Path
        The detector files written (one per seed), or empty.
    """

    settings: TrainSettings
    seeds: list[int]
    jobs: list[Job]
    segmented: SegmentedResult
    detectors: list[Path] = field(default_factory=list)

    def record(self, every: int = 1) -> dict[str, Any]:
        """JSON-able record: settings, iterations, stepper, times, losses, the scored points.

        Parameters
        ----------
        every : int
            Keep every ``every``-th iteration's loss (the curve's resolution).

        Returns
        -------
        dict
        """
        seg = self.segmented
        runs = []
        for seed, job, res, loss in zip(self.seeds, self.jobs, seg.results, seg.losses):
            t = res.timing
            runs.append({"seed": seed, "iterations": res.iterations,
                         "data_ms_per_iter": t["data_ms_per_iter"],
                         "net_ms_per_iter": t["net_ms_per_iter"],
                         "data_fraction": t["data_fraction"],
                         "loss_every": every, "loss": [float(x) for x in loss[::every]],
                         "n_parameters": sum(p.numel() for p in job.model.parameters())})
        return {"settings": self.settings.to_dict(), "seeds": list(self.seeds),
                "stepper": seg.stepper, "runs_per_step": len(self.jobs),
                "train_s": seg.train_s, "train_s_per_run": seg.train_s / len(self.jobs),
                "score_s": seg.score_s, "stopped_by": seg.stopped_by, "points": seg.points,
                "runs": runs, "detectors": [p.name for p in self.detectors]}


def train_method(s: TrainSettings, models: Sequence[ModelVolumes], seeds: Sequence[int],
                 root: str | Path, device: torch.device | str, *, score: ScoreFn | None = None,
                 postprocess: Mapping[str, Any] | None = None, strategy: str = "auto",
                 progress: bool = True) -> TrainedMethod:
    """Train one method's seeds together (time-boxed or fixed), scoring them as they go.

    Parameters
    ----------
    s : TrainSettings
        The method's settings.
    models : sequence of ModelVolumes
        The training models (any device: moved to ``device``).
    seeds : sequence of int
        One run per seed.
    root : str or Path
        Runs go to ``root/METHOD/seed_S``: checkpoint and ``detector.pt``.
    device : torch.device or str
        Training device.
    score : ScoreFn or None
        Called for every run after every segment (its model in evaluation mode).
    postprocess : mapping or None
        The inference settings stored with each detector file.
    strategy : str
        ``auto``, ``loop`` or ``vmap``.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    TrainedMethod
    """
    if not seeds:
        raise ValueError("no seeds to train")
    dev = torch.device(device)
    on_dev = models_to(models, dev)
    jobs = make_jobs(s, on_dev, seeds, root, dev)
    seg = fit_segments(jobs, loss_for(s), s.fit_config(), points=s.points,
                       budget_s=s.budget_s, first_iters=s.first_iters, score=score,
                       strategy=strategy, progress=progress)
    voxel = float(models[0].voxel_size_A)
    paths = []
    for seed, job, res in zip(seeds, jobs, seg.results):
        job.model.eval()
        assert job.out is not None
        paths.append(save_detector(job.out / "detector.pt", s.method, job.model,
                                   voxel_size_A=voxel, postprocess=postprocess,
                                   meta={"seed": int(seed), "iterations": res.iterations,
                                         "train_s_group": seg.train_s,
                                         "runs_per_step": len(jobs),
                                         "settings": s.to_dict()}))
    return TrainedMethod(s, [int(x) for x in seeds], jobs, seg, paths)
