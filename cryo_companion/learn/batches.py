"""Batch sources for :func:`cryo_companion.learn.fit.fit`: fresh simulated draws, or a data set.

A batch source (:class:`BatchSource`) gives one batch per call of ``next_batch(generator)``, a
tuple ``(inputs, *targets)`` of tensors on the training device, and draws every random number
from ``generator`` (never the global RNG), so the run's generator state plus the source's
``state_dict()`` reproduce the batch stream exactly after a resume.

- :class:`DrawnBatches`: batches drawn by a function ``draw(n, generator)``, ``chunk`` batches
  per call (one larger call amortises a GPU simulator's launch overhead; each batch is still a
  fresh independent draw). With ``standardize=True`` **the source standardises** the inputs of
  each batch on its own with one global mean and standard deviation (Che et al. 2019, IV).
- :func:`simulator_draw`: the draw function of the simplified simulator
  (:class:`~cryo_companion.simulate.subtomogram.Simulator`) for a
  :class:`~cryo_companion.simulate.randomization.Preset`, classes balanced.
- :class:`DatasetBatches`: shuffled epochs over a
  :class:`~cryo_companion.dataset.SubtomogramSet` (e.g. read from disk with
  ``load_subtomograms``).
- :class:`EpochBatches`: shuffled epochs over ``n`` items that a function cuts on demand
  (patches of large volumes that are never all held at once).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from cryo_companion.dataset import SubtomogramSet
from cryo_companion.simulate.randomization import Preset, standardize_batch
from cryo_companion.simulate.subtomogram import Simulator

__all__ = ["Batch", "BatchSource", "CutFn", "DatasetBatches", "DrawFn", "DrawnBatches",
           "EpochBatches", "simulator_draw"]

#: One batch: ``(inputs, *targets)``, tensors with the batch first.
Batch = tuple[Tensor, ...]
#: ``draw(n, generator) -> (inputs, *targets)`` with ``n`` items, on the generator's device.
DrawFn = Callable[[int, torch.Generator], Batch]
#: ``cut(indices, generator) -> (inputs, *targets)``: the batch of items ``indices`` (a CPU
#: int64 tensor); any random augmentation draws from ``generator``.
CutFn = Callable[[Tensor, torch.Generator], Batch]


class BatchSource(Protocol):
    """What the training loop takes batches from."""

    def next_batch(self, generator: torch.Generator) -> Batch:
        """Return the next batch; all random draws from ``generator``."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Return what besides the generator's state the source needs to continue exactly."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        ...


def _check_positive(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class DrawnBatches:
    """Batches of fresh draws of ``draw(n, generator)``, ``chunk`` batches per call.

    Parameters
    ----------
    draw : callable
        ``draw(n, generator) -> (inputs, *targets)``, each with ``n`` items first.
    batch_size : int
        Items per batch.
    chunk : int
        Batches per call of ``draw``: a call draws ``batch_size * chunk`` items and batch ``i``
        of the chunk takes items ``i, i + chunk, i + 2 chunk, ...``.
    standardize : bool
        Standardise each batch's inputs on their own with one global mean and standard
        deviation (:func:`~cryo_companion.simulate.randomization.standardize_batch`).
    total : int or None
        Batches that will be taken in all (a training run's iterations): the last call draws
        only the batches still needed. None: every call draws a full chunk.
    """

    def __init__(self, draw: DrawFn, batch_size: int, *, chunk: int = 1,
                 standardize: bool = False, total: int | None = None) -> None:
        self.draw = draw
        self.batch_size = _check_positive("batch_size", batch_size)
        self.chunk = _check_positive("chunk", chunk)
        self.standardize = bool(standardize)
        self.total = None if total is None else _check_positive("total", total)
        self._pending: list[Batch] = []
        self._taken = 0

    def next_batch(self, generator: torch.Generator) -> Batch:
        """Return the next batch (drawing a new chunk when the last one is used up).

        Parameters
        ----------
        generator : torch.Generator
            Source of every random draw.

        Returns
        -------
        tuple of torch.Tensor
            ``(inputs, *targets)`` with ``batch_size`` items each.
        """
        if not self._pending:
            n = self.chunk
            if self.total is not None:
                n = max(1, min(n, self.total - self._taken))
            cols = self.draw(self.batch_size * n, generator)
            subs = [tuple(c[i::n] for c in cols) for i in range(n)]
            if self.standardize:
                subs = [(standardize_batch(b[0]), *b[1:]) for b in subs]
            self._pending = subs[::-1]
        self._taken += 1
        return self._pending.pop()

    def state_dict(self) -> dict[str, Any]:
        """Return the batches drawn but not yet used, and the count taken.

        Returns
        -------
        dict
            ``{"pending": [batch, ...], "taken": int}``.
        """
        return {"pending": [list(b) for b in self._pending], "taken": self._taken}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict`.
        """
        self._pending = [tuple(b) for b in state.get("pending", [])]
        self._taken = int(state.get("taken", 0))


def simulator_draw(simulator: Simulator, preset: Preset, *, class_balanced: bool = True
                   ) -> DrawFn:
    """Make the draw function of the simplified simulator for ``preset``.

    Parameters
    ----------
    simulator : Simulator
        The simulator (its templates, labels and device).
    preset : Preset
        Ranges of the imaging parameters.
    class_balanced : bool
        Draw a class uniformly, then a template uniformly within the class (a class with many
        templates, such as procedural membrane patches, is then not over-represented); False:
        templates uniformly.

    Returns
    -------
    callable
        ``draw(n, generator) -> (noisy (n, D, D, D) float32, label (n,) int64,
        mask (n, D, D, D) bool)`` on the simulator's device, not standardised. Draw order per
        call: class, position within the class, then the simulator's own draws.
    """
    if not isinstance(preset, Preset):
        raise TypeError(f"preset must be a Preset, got {type(preset).__name__}")
    labels = simulator.labels
    device = simulator.device
    classes = torch.unique(labels)
    order = torch.argsort(labels, stable=True)
    counts = torch.stack([(labels == c).sum() for c in classes])
    starts = torch.cumsum(counts, 0) - counts

    def draw(n: int, generator: torch.Generator) -> Batch:
        index = None
        if class_balanced:
            cls = torch.randint(len(classes), (n,), generator=generator, device=device)
            u = torch.rand(n, generator=generator, device=device)
            within = (u * counts[cls]).long().clamp(max=counts[cls] - 1)
            index = order[starts[cls] + within]
        # training needs the noisy volume and the mask only: no inverse FFT of the clean one
        b = simulator.sample(n, preset, generator, template_index=index, need_clean=False)
        return b.noisy.to(device), b.label.to(device), b.mask.to(device)

    return draw


class DatasetBatches:
    """Shuffled epochs over a subtomogram set: a new permutation from the generator per epoch.

    Parameters
    ----------
    dataset : SubtomogramSet
        Volumes `(N, D, D, D)`, labels `(N,)` and optionally masks `(N, D, D, D)`.
    batch_size : int
        Items per batch (at most ``N``); an epoch's last ``N mod batch_size`` items of the
        permutation are skipped (every batch is full).
    device : torch.device or str
        Where the batches are put (the set stays in host memory unless ``resident``).
    standardize : bool
        Standardise each batch's volumes with one global mean and standard deviation.
    masks : bool
        Include the masks as the third tensor (the set must have them).
    resident : bool
        Copy the set to ``device`` once and draw the batches there (no host-to-device copy per
        batch; the set must fit in the device's memory); False keeps it in host memory.
    extra : sequence of array-like
        Further columns, one item per subtomogram each (`(N, ...)`, e.g. the targets' densities
        `(N, D, D, D)` float32 that a recovery head regresses), appended to every batch after
        the masks (or the labels), in order.

    Notes
    -----
    Batches are ``(volumes float32, labels int64)`` or ``(volumes, labels, masks bool)``, then
    the ``extra`` columns. The epochs are those of :class:`EpochBatches` (``torch.randperm`` on
    the generator's device).
    """

    def __init__(self, dataset: SubtomogramSet, batch_size: int, *,
                 device: torch.device | str = "cpu", standardize: bool = False,
                 masks: bool = True, resident: bool = False,
                 extra: Sequence[Any] = ()) -> None:
        n = len(dataset)
        _check_positive("batch_size", batch_size)
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} exceeds the set's {n} subtomograms")
        if masks and dataset.masks is None:
            raise ValueError("the set has no masks; pass masks=False")
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.standardize = bool(standardize)
        self._cols = [torch.from_numpy(dataset.volumes), torch.from_numpy(dataset.labels)]
        if masks and dataset.masks is not None:
            self._cols.append(torch.from_numpy(dataset.masks))
        for i, col in enumerate(extra):
            c = torch.as_tensor(col)
            if c.dim() == 0 or c.shape[0] != n:
                raise ValueError(f"extra column {i} has shape {tuple(c.shape)}; it needs one "
                                 f"item per subtomogram ({n}, ...)")
            self._cols.append(c)
        if resident:
            self._cols = [c.to(self.device) for c in self._cols]
        self._epochs = EpochBatches(n, batch_size, self._gather)

    def _gather(self, idx: Tensor, generator: torch.Generator) -> Batch:
        idx = idx.to(self._cols[0].device)
        out = tuple(c[idx].to(self.device) for c in self._cols)
        if self.standardize:
            out = (standardize_batch(out[0]), *out[1:])
        return out

    @property
    def epoch(self) -> int:
        """Epochs begun so far."""
        return self._epochs.epoch

    def next_batch(self, generator: torch.Generator) -> Batch:
        """Return the next batch of the current epoch (a new epoch when it is used up).

        Parameters
        ----------
        generator : torch.Generator
            Source of the epochs' permutations.

        Returns
        -------
        tuple of torch.Tensor
            ``(volumes, labels[, masks], *extra)`` with ``batch_size`` items on :attr:`device`.
        """
        return self._epochs.next_batch(generator)

    def state_dict(self) -> dict[str, Any]:
        """Return the position in the current epoch.

        Returns
        -------
        dict
            ``{"perm": permutation or None, "pos": int, "epoch": int}``.
        """
        return self._epochs.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict`.
        """
        self._epochs.load_state_dict(state)


class EpochBatches:
    """Shuffled epochs over ``n`` items, each batch cut on demand by ``cut(indices, generator)``.

    Like :class:`DatasetBatches`, but the items need not be held in memory: ``cut`` makes the
    batch of the chosen indices (e.g. patches at grid corners of large volumes, randomly
    flipped with the same generator).

    Parameters
    ----------
    n_items : int
        Items in an epoch.
    batch_size : int
        Items per batch (at most ``n_items``); an epoch's last ``n_items mod batch_size`` items
        of the permutation are skipped (every batch is full).
    cut : CutFn
        ``cut(indices, generator) -> (inputs, *targets)``; ``indices`` is a CPU int64 tensor
        of ``batch_size`` items.

    Notes
    -----
    The permutation of each epoch is drawn with ``torch.randperm`` on the generator's device,
    before the batch's own draws.
    """

    def __init__(self, n_items: int, batch_size: int, cut: CutFn) -> None:
        _check_positive("n_items", n_items)
        _check_positive("batch_size", batch_size)
        if batch_size > n_items:
            raise ValueError(f"batch_size {batch_size} exceeds the {n_items} items of an epoch")
        self.n_items, self.batch_size, self.cut = n_items, batch_size, cut
        self._perm: Tensor | None = None
        self._pos = 0
        self.epoch = 0

    def next_batch(self, generator: torch.Generator) -> Batch:
        """Return the next batch of the current epoch (a new epoch when it is used up).

        Parameters
        ----------
        generator : torch.Generator
            Source of the permutations and of ``cut``'s draws.

        Returns
        -------
        tuple of torch.Tensor
            What ``cut`` returns for the next ``batch_size`` items.
        """
        if self._perm is None or self._pos + self.batch_size > self.n_items:
            self._perm = torch.randperm(self.n_items, generator=generator,
                                        device=generator.device).cpu()
            self._pos = 0
            self.epoch += 1
        idx = self._perm[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.cut(idx, generator)

    def state_dict(self) -> dict[str, Any]:
        """Return the position in the current epoch.

        Returns
        -------
        dict
            ``{"perm": permutation or None, "pos": int, "epoch": int}``.
        """
        return {"perm": self._perm, "pos": self._pos, "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict`.
        """
        perm = state.get("perm")
        self._perm = None if perm is None else torch.as_tensor(perm).cpu()
        self._pos = int(state.get("pos", 0))
        self.epoch = int(state.get("epoch", 0))
