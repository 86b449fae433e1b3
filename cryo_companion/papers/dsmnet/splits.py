"""DSM-Net's splits: training / validation / test "at the ratio of 0.1", and leaving GroEL out.

3.3: "Dataset A, B, C were randomly split into training, validation, and testing set at the
ratio of 0.1 respectively." Read as: a random 10 % of the set for testing, another 10 % for
validation, the rest for training, the 10 % rounded down: 3,205 -> 2,565 / 320 / 320 and
786 -> 630 / 78 / 78. The paper's accuracies are all multiples of 1/320
(:func:`cryo_companion.papers.dsmnet.paper_tables.consistent_test_sizes`), which a test set of
⌊0.1 × 3,205⌋ = 320 gives and sklearn's ⌈0.1 × 3,205⌉ = 321 does not.

3.5 (the unseen structure): DSM-Net with 21 outputs is trained on data set A "excluding all the
GroEL subtomograms" and then run on all of data set A. :func:`without_class` drops the class
from the training and validation parts of a split and renumbers the other labels 0 .. 20.

Splits are index arrays into the set, sorted, disjoint and covering it; the same seed gives the
same split.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from cryo_companion.papers.dsmnet.paper_tables import SPLIT_FRACTIONS

__all__ = ["random_split", "relabel_without", "split_sizes", "without_class"]


def split_sizes(n: int) -> dict[str, int]:
    """Sizes of the three parts of a set of ``n`` subtomograms (the module's reading).

    Parameters
    ----------
    n : int
        Subtomograms in the set (>= 10, so that every part is non-empty).

    Returns
    -------
    dict
        ``{"train", "validation", "test"}`` counts summing to ``n``.
    """
    if n < 10:
        raise ValueError(f"need at least 10 subtomograms for a 10 % split, got {n}")
    test = math.floor(SPLIT_FRACTIONS["test"] * n)
    val = math.floor(SPLIT_FRACTIONS["validation"] * n)
    return {"train": n - test - val, "validation": val, "test": test}


def random_split(n: int, seed: int) -> dict[str, np.ndarray]:
    """Random training / validation / test split of ``n`` subtomograms.

    Parameters
    ----------
    n : int
        Subtomograms in the set.
    seed : int
        Seed of the permutation (same seed, same split).

    Returns
    -------
    dict
        ``"train"``, ``"validation"``, ``"test"``: sorted int64 index arrays of
        :func:`split_sizes`.
    """
    sizes = split_sizes(n)
    p = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).numpy()
    t, v = sizes["test"], sizes["validation"]
    return {"test": np.sort(p[:t]), "validation": np.sort(p[t:t + v]),
            "train": np.sort(p[t + v:])}


def without_class(split: dict[str, np.ndarray], labels: Any, held_out: int
                  ) -> dict[str, np.ndarray]:
    """Remove the subtomograms of class ``held_out`` from the training and validation parts.

    Parameters
    ----------
    split : dict
        A :func:`random_split` result.
    labels : array-like
        `(N,)` integer labels of the set.
    held_out : int
        The class never trained or validated on.

    Returns
    -------
    dict
        ``"train"`` and ``"validation"`` without the class, ``"test"`` as it was, and
        ``"all"``: every index of the set (the unseen-structure experiment runs on all of it).
    """
    lab = np.asarray(labels)
    if not (lab == held_out).any():
        raise ValueError(f"class {held_out} has no subtomogram; classes present: "
                         f"{sorted(set(lab.tolist()))}")
    keep = {k: v[lab[v] != held_out] for k, v in split.items() if k in ("train", "validation")}
    return {**keep, "test": split["test"], "all": np.arange(lab.size)}


def relabel_without(labels: Any, held_out: int) -> np.ndarray:
    """Renumber the labels of the other classes 0 .. K - 2 (the held-out class becomes -1).

    Parameters
    ----------
    labels : array-like
        `(N,)` integer labels in ``0 .. K - 1``.
    held_out : int
        The class left out.

    Returns
    -------
    numpy.ndarray
        `(N,)` int64: labels above ``held_out`` decremented by one, ``held_out`` itself -1.
    """
    lab = np.asarray(labels).astype(np.int64)
    out = np.where(lab > held_out, lab - 1, lab)
    out[lab == held_out] = -1
    return out
