"""Detections in a tomogram: centres, integer class labels, scores and sizes (one table).

Every detector of :mod:`cryo_companion.detect` returns a :class:`Detections`; a paper's module
turns its labels into class names (the SHREC 2020 particle lists, say). Conventions: centres are
``(z, y, x)`` in voxels of the volume that was searched, 0-based (voxel ``[k, j, i]`` has its
centre at ``(k, j, i)``); labels are integers ``>= 1`` (0 is the background of a label map and
never a detection); a larger score is a more confident detection.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Detections"]


@dataclass(frozen=True)
class Detections:
    """Detected objects, one row each.

    Attributes
    ----------
    zyx : np.ndarray
        `(N, 3)` float64 centres ``(z, y, x)``, voxels, 0-based.
    label : np.ndarray
        `(N,)` int64 class labels, ``>= 1``.
    score : np.ndarray
        `(N,)` float64 confidence (cross-correlation, probability, cluster size, ...).
    size : np.ndarray
        `(N,)` int64 number of voxels of the object (clusters, components), 0 when not known.
    """

    zyx: np.ndarray
    label: np.ndarray
    score: np.ndarray
    size: np.ndarray

    def __post_init__(self) -> None:
        """Convert the columns and check that they agree in length and values."""
        zyx = np.asarray(self.zyx, dtype=np.float64).reshape(-1, 3)
        n = len(zyx)
        cols = {"label": np.asarray(self.label, dtype=np.int64).reshape(-1),
                "score": np.asarray(self.score, dtype=np.float64).reshape(-1),
                "size": np.asarray(self.size, dtype=np.int64).reshape(-1)}
        for name, col in cols.items():
            if len(col) != n:
                raise ValueError(f"detections: {n} centres but {len(col)} values of {name}")
        if not np.isfinite(zyx).all():
            raise ValueError("detections: centres contain NaN or inf")
        if n and cols["label"].min() < 1:
            raise ValueError(f"detections: labels must be >= 1 (0 is background), got "
                             f"{int(cols['label'].min())}")
        object.__setattr__(self, "zyx", zyx)
        for name, col in cols.items():
            object.__setattr__(self, name, col)

    @classmethod
    def make(cls, zyx: np.ndarray | Sequence[Sequence[float]], label: np.ndarray | Sequence[int],
             score: np.ndarray | Sequence[float] | None = None,
             size: np.ndarray | Sequence[int] | None = None) -> Detections:
        """Build detections, with scores and sizes 0 where not given.

        Parameters
        ----------
        zyx : array-like
            `(N, 3)` centres ``(z, y, x)``, voxels.
        label : array-like
            `(N,)` labels ``>= 1``.
        score : array-like or None
            `(N,)` scores (default 0).
        size : array-like or None
            `(N,)` sizes in voxels (default 0).

        Returns
        -------
        Detections
        """
        z = np.asarray(zyx, dtype=np.float64).reshape(-1, 3)
        n = len(z)
        return cls(z, np.asarray(label), np.zeros(n) if score is None else np.asarray(score),
                   np.zeros(n, dtype=np.int64) if size is None else np.asarray(size))

    @classmethod
    def empty(cls) -> Detections:
        """Return no detections."""
        return cls.make(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        """Return the number of detections."""
        return len(self.zyx)

    def take(self, index: np.ndarray | Sequence[int]) -> Detections:
        """Return the rows ``index`` (integer positions or a boolean mask), in that order.

        Parameters
        ----------
        index : array-like
            Integer positions or an `(N,)` boolean mask.

        Returns
        -------
        Detections
        """
        i = np.asarray(index)
        if i.dtype != bool:
            i = i.astype(np.int64)
        return Detections(self.zyx[i], self.label[i], self.score[i], self.size[i])

    def relabel(self, label: int) -> Detections:
        """Return the same rows, every one with ``label`` (>= 1)."""
        return Detections(self.zyx, np.full(len(self), int(label)), self.score, self.size)

    def by_score(self) -> Detections:
        """Return the rows sorted by decreasing score (stable: ties keep their order)."""
        return self.take(np.argsort(-self.score, kind="stable"))

    def shifted(self, offset_zyx: Sequence[float], scale: float = 1.0) -> Detections:
        """Return the centres mapped to another grid: ``zyx * scale + offset_zyx``.

        Parameters
        ----------
        offset_zyx : sequence of float
            Added after scaling (voxels of the new grid), ``(z, y, x)``.
        scale : float
            Voxels of the new grid per voxel of this one (2 for a map binned by 2).

        Returns
        -------
        Detections
        """
        off = np.asarray(offset_zyx, dtype=np.float64).reshape(1, 3)
        return Detections(self.zyx * float(scale) + off, self.label, self.score, self.size)

    @staticmethod
    def concat(parts: Sequence[Detections]) -> Detections:
        """Concatenate detections in order.

        Parameters
        ----------
        parts : sequence of Detections
            The tables, in order.

        Returns
        -------
        Detections
        """
        if not parts:
            return Detections.empty()
        return Detections(np.concatenate([p.zyx for p in parts]),
                          np.concatenate([p.label for p in parts]),
                          np.concatenate([p.score for p in parts]),
                          np.concatenate([p.size for p in parts]))
