"""DSM-Net's training recipe and every run of Tables 2-4 and 3.5, as data.

The recipe (3.2) is the paper's for every network of its tables (the book trains DSRF3D-v2 and
SSN3D-ED with it too, as the paper compares them in one table): Adam, learning rate 1e-3,
β = (0.9, 0.99), batch 64, at most 100 epochs, early stopping after 15 epochs without
improvement. Readings:

* **what early stopping watches**: "if the validation dataset did not improve" names no metric;
  Keras' ``EarlyStopping`` watches the validation loss by default, so the book watches the
  weighted validation loss, and keeps the weights of its best epoch;
* **loss weights** (classification : segmentation : recovery): DSM-Net 1 : 10 : 1 (3.3); Table
  2's Cls+Rec and Cls+Seg are Table 4's 1 : 10 rows (the paper prints the same numbers), Table 4
  adds Cls+Rec 1 : 1 and Cls+Seg 1 : 100; single-task networks weigh their one loss 1;
* **seeds**: at least 3 for every row of Table 2 and for DSM-Net in Table 3, 1 elsewhere
  (:data:`SEEDS`); a seed sets the weights' initialisation, the data order and dropout; the
  split is the same for every run of a data set (:data:`SPLIT_SEED`).

Each :class:`RunSpec` is one row's runs: which network, heads, loss weights, data set, classes,
held-out class and seeds. Phase B's jobs train them with ``cryo_companion.learn``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from cryo_companion.models.dsmnet import dsmnet
from cryo_companion.models.dsrf3d_v2 import dsrf3d_v2
from cryo_companion.models.ssn3d import ssn3d
from cryo_companion.papers.dsmnet.paper_tables import RECIPE

__all__ = ["PAPER_RECIPE", "RUNS", "SEEDS", "SPLIT_SEED", "Recipe", "RunSpec", "run_spec"]

#: The seed of every data set's training / validation / test split.
SPLIT_SEED = 0
#: Seeds of a row with several runs, and of a row with one.
SEEDS = {"several": (0, 1, 2), "one": (0,)}


@dataclass(frozen=True)
class Recipe:
    """How a network is trained.

    Attributes
    ----------
    optimizer : str
        ``"adam"``.
    lr : float
        Learning rate.
    betas : tuple of float
        Adam's (β1, β2).
    batch_size : int
        Subtomograms per step.
    max_epochs : int
        Epochs at most.
    patience : int
        Epochs without improvement of the monitored value before stopping.
    monitor : str
        What early stopping watches.
    restore_best : bool
        Keep the weights of the best epoch (else those of the last).
    """

    optimizer: str
    lr: float
    betas: tuple[float, float]
    batch_size: int
    max_epochs: int
    patience: int
    monitor: str = "validation loss (the weighted sum of the heads' losses)"
    restore_best: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


#: 3.2, for every run.
PAPER_RECIPE = Recipe(optimizer=str(RECIPE["optimizer"]), lr=float(RECIPE["lr"]),
                      betas=(0.9, 0.99), batch_size=int(RECIPE["batch_size"]),
                      max_epochs=int(RECIPE["max_epochs"]), patience=int(RECIPE["patience"]))


@dataclass(frozen=True)
class RunSpec:
    """The runs of one row of the paper's tables.

    Attributes
    ----------
    table : str
        ``"table2"``, ``"table3"``, ``"table4"`` or ``"unseen"``.
    row : str
        The row's key (:mod:`cryo_companion.papers.dsmnet.paper_tables`).
    network : str
        ``"dsmnet"`` (with ``variant``), ``"dsrf3d_v2"`` or ``"ssn3d_ed"``.
    variant : str or None
        The DSM-Net variant (:data:`cryo_companion.models.dsmnet.VARIANTS`).
    loss_weights : dict
        Weight of each head's loss (``"cls"``, ``"seg"``, ``"rec"``).
    dataset : str
        ``"A"``, ``"B"`` or ``"C"``.
    n_classes : int
        Output classes (22; 2 for C; 21 without GroEL).
    seeds : tuple of int
        Seeds of the runs.
    held_out : str or None
        Class never trained or validated on.
    recipe : Recipe
        How it trains.
    """

    table: str
    row: str
    network: str
    variant: str | None
    loss_weights: dict[str, float]
    dataset: str
    n_classes: int
    seeds: tuple[int, ...]
    held_out: str | None = None
    recipe: Recipe = field(default=PAPER_RECIPE)

    @property
    def name(self) -> str:
        """``TABLE/ROW`` (``TABLE/DATASET/ROW`` in Table 3): the runs' identifier."""
        return (f"{self.table}/{self.dataset}/{self.row}" if self.table == "table3"
                else f"{self.table}/{self.row}")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        d["recipe"] = self.recipe.to_dict()
        return d


_MANY, _ONE = SEEDS["several"], SEEDS["one"]
_DSM = {"cls": 1.0, "seg": 10.0, "rec": 1.0}


def _dsm(table: str, row: str, variant: str, weights: dict[str, float], dataset: str = "A",
         seeds: tuple[int, ...] = _MANY, n_classes: int = 22, held_out: str | None = None
         ) -> RunSpec:
    return RunSpec(table, row, "dsmnet", variant, weights, dataset, n_classes, seeds, held_out)


#: Every run the chapter needs (Table 4's 1:10 rows are Table 2's runs; see ``tables``).
RUNS: tuple[RunSpec, ...] = (
    RunSpec("table2", "dsrf3d_v2", "dsrf3d_v2", None, {"cls": 1.0}, "A", 22, _MANY),
    _dsm("table2", "cls", "cls", {"cls": 1.0}),
    RunSpec("table2", "ssn3d_ed", "ssn3d_ed", None, {"seg": 1.0}, "A", 22, _MANY),
    _dsm("table2", "seg", "seg", {"seg": 1.0}),
    _dsm("table2", "cls+rec", "cls+rec", {"cls": 1.0, "rec": 10.0}),
    _dsm("table2", "cls+seg", "cls+seg", {"cls": 1.0, "seg": 10.0}),
    _dsm("table2", "dsmnet", "dsmnet", _DSM),
    _dsm("table3", "cls", "cls", {"cls": 1.0}, "B", _ONE),
    _dsm("table3", "seg", "seg", {"seg": 1.0}, "B", _ONE),
    _dsm("table3", "dsmnet", "dsmnet", _DSM, "B"),
    _dsm("table3", "cls", "cls", {"cls": 1.0}, "C", _ONE, n_classes=2),
    _dsm("table3", "seg", "seg", {"seg": 1.0}, "C", _ONE, n_classes=2),
    _dsm("table3", "dsmnet", "dsmnet", _DSM, "C", n_classes=2),
    _dsm("table4", "cls+rec_1:1", "cls+rec", {"cls": 1.0, "rec": 1.0}, seeds=_ONE),
    _dsm("table4", "cls+seg_1:100", "cls+seg", {"cls": 1.0, "seg": 100.0}, seeds=_ONE),
    _dsm("unseen", "dsmnet_21", "dsmnet", _DSM, seeds=_ONE, n_classes=21,
         held_out="1KPB GroEL"),
)


def run_spec(name: str) -> RunSpec:
    """Return the runs called ``name`` (:attr:`RunSpec.name`, e.g. ``"table3/B/dsmnet"``).

    Parameters
    ----------
    name : str
        The identifier.

    Returns
    -------
    RunSpec
    """
    for r in RUNS:
        if r.name == name:
            return r
    raise KeyError(f"no runs called {name!r}; valid: {', '.join(r.name for r in RUNS)}")


def build_network(spec: RunSpec, seed: int, *, box: int = 40,
                  class_names: Sequence[str] | None = None, **overrides: Any) -> nn.Module:
    """Build the network of ``spec``, initialised from ``seed``.

    Parameters
    ----------
    spec : RunSpec
        The runs.
    seed : int
        Seed of the initial weights.
    box : int
        Edge of the input boxes.
    class_names : sequence of str or None
        Names of the ``spec.n_classes`` classes (classifiers keep them).
    **overrides : Any
        Further :class:`~cryo_companion.models.dsmnet.DSMNetConfig` fields of a DSM-Net
        (``widths``, ``fc_width``: narrower networks at smoke scale); refused for the others.

    Returns
    -------
    torch.nn.Module
        DSM-Net (the spec's variant and classes), DSRF3D-v2 (its classes) or SSN3D-ED (two
        output channels, target and background), on the CPU, in training mode.
    """
    if spec.network == "dsmnet":
        assert spec.variant is not None
        return dsmnet(spec.variant, seed, n_classes=spec.n_classes, box=box,
                      class_names=class_names, **overrides)
    if overrides:
        raise ValueError(f"{spec.network} takes no overrides (got {sorted(overrides)})")
    if spec.network == "dsrf3d_v2":
        return dsrf3d_v2(seed, n_classes=spec.n_classes, box=box, class_names=class_names)
    if spec.network == "ssn3d_ed":
        return ssn3d("ed", seed, box=box)
    raise ValueError(f"unknown network {spec.network!r}; valid: dsmnet, dsrf3d_v2, ssn3d_ed")


def parameter_counts() -> dict[str, int]:
    """Count the trainable parameters of every network the runs train, by run name.

    Returns
    -------
    dict
        ``{RunSpec.name: parameters}`` for every run of :data:`RUNS`.
    """
    return {r.name: sum(p.numel() for p in build_network(r, 0).parameters()
                        if p.requires_grad) for r in RUNS}
