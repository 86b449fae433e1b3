"""SSN3D's splits: random train / validation / test (4.2) and leave-one-class-out (4.3).

Liu et al. 2018, 4.2: "We randomly split the dataset into 3042 subtomograms for training, and
338 subtomograms for testing. 10 % of training dataset were used for validation." Of 3,380
subtomograms that is a 10 % test set, then 10 % of the remaining 3,042 (304) for validation
and 2,738 for fitting; the same fractions apply to a set of another size. 4.3: one class is
held out, SSN3D-ED is trained "on the dataset that only contains the remaining 21 structural
classes" and tested on the held-out class; we test on *all* of its subtomograms (the paper
does not say whether only those of the 4.2 test split) and take 10 % of the other classes'
subtomograms for validation.

Splits are index arrays into the set, sorted, disjoint and covering what they split; the same
seed gives the same split.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["PAPER_SIZES", "leave_one_out_split", "random_split"]

#: Liu et al. 2018, 4.2: subtomograms per data set and the paper's split.
PAPER_SIZES = {"total": 3380, "train": 3042, "test": 338}


def _perm(n: int, seed: int) -> np.ndarray:
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).numpy()


def _check_fraction(name: str, f: float) -> None:
    if not 0 < f < 1:
        raise ValueError(f"{name} {f} is outside (0, 1)")


def random_split(n: int, seed: int, *, test_fraction: float = PAPER_SIZES["test"]
                 / PAPER_SIZES["total"], validation_fraction: float = 0.1
                 ) -> dict[str, np.ndarray]:
    """Split ``n`` subtomograms at random into train, validation and test (4.2).

    Parameters
    ----------
    n : int
        Subtomograms in the set (>= 3).
    seed : int
        Seed of the permutation.
    test_fraction : float
        Fraction tested on (default 338 / 3380 = 0.1).
    validation_fraction : float
        Fraction of the remaining training set used for validation.

    Returns
    -------
    dict
        ``"train"``, ``"validation"``, ``"test"``: sorted int64 index arrays; the test set has
        ``round(test_fraction · n)`` members, validation ``round(validation_fraction · rest)``.

    Raises
    ------
    ValueError
        A fraction lies outside (0, 1), or ``n`` < 3.
    """
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("validation_fraction", validation_fraction)
    if n < 3:
        raise ValueError(f"need at least 3 subtomograms to split, got {n}")
    n_test = min(n - 2, max(1, round(test_fraction * n)))
    n_val = min(n - n_test - 1, max(1, round(validation_fraction * (n - n_test))))
    p = _perm(n, seed)
    return {"test": np.sort(p[:n_test]), "validation": np.sort(p[n_test:n_test + n_val]),
            "train": np.sort(p[n_test + n_val:])}


def leave_one_out_split(labels: npt.ArrayLike, held_out: int, seed: int, *,
                        validation_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Hold out one class (4.3): test on all of it, train and validate on the others.

    Parameters
    ----------
    labels : array-like
        `(N,)` integer class labels.
    held_out : int
        The class tested on.
    seed : int
        Seed of the validation draw.
    validation_fraction : float
        Fraction of the other classes' subtomograms used for validation.

    Returns
    -------
    dict
        ``"train"``, ``"validation"``, ``"test"``: sorted int64 index arrays; no subtomogram of
        ``held_out`` is in ``train`` or ``validation``.

    Raises
    ------
    ValueError
        ``validation_fraction`` lies outside (0, 1), ``labels`` is not 1-D, ``held_out`` has no
        subtomogram, or fewer than 2 lie outside it.
    """
    _check_fraction("validation_fraction", validation_fraction)
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {lab.shape}")
    test = np.flatnonzero(lab == held_out)
    rest = np.flatnonzero(lab != held_out)
    if test.size == 0:
        raise ValueError(f"class {held_out} has no subtomogram; classes present: "
                         f"{sorted(set(lab.tolist()))}")
    if rest.size < 2:
        raise ValueError(f"only {rest.size} subtomogram(s) outside class {held_out}")
    n_val = min(rest.size - 1, max(1, round(validation_fraction * rest.size)))
    p = rest[_perm(rest.size, seed)]
    return {"test": test, "validation": np.sort(p[:n_val]), "train": np.sort(p[n_val:])}
