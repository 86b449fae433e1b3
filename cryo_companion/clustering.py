"""Clustering and embedding of learned features: k-means, t-SNE and the cluster a class fills.

Used to discover a structure a network never saw (DSM-Net 3.5): the hidden units of every
subtomogram are clustered by k-means, the cluster holding most subtomograms of the unseen class
is picked out and scored by its purity and recall (:func:`enriched_cluster`), and all of them
are embedded in the plane by t-SNE for a picture. scikit-learn does the numerics; every random
choice comes from the seed given.

Definitions (:func:`enriched_cluster`): for a class ``t`` and a cluster assignment, the
*enriched cluster* is the cluster with the most members of ``t`` (ties: the purer one, then the
lower index); its **purity** is the fraction of its members that are of ``t``, its **recall**
the fraction of ``t``'s members that it holds, and its **enrichment** the purity divided by the
fraction of ``t`` in the whole set (1 = no better than chance).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cryo_companion.devices import ArrayOrTensor

__all__ = ["contingency", "enriched_cluster", "kmeans", "tsne"]


def _features(x: ArrayOrTensor) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    f = np.asarray(x, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"features must be (N, F) with N >= 2 samples, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or infinite values")
    return f


def _labels(x: ArrayOrTensor, n: int, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    v = np.asarray(x)
    if v.shape != (n,) or not np.issubdtype(v.dtype, np.integer) or (v < 0).any():
        raise ValueError(f"{name} must be {n} non-negative integers, got shape {v.shape}, "
                         f"dtype {v.dtype}")
    return v.astype(np.int64)


def kmeans(features: ArrayOrTensor, k: int, seed: int, *, n_init: int = 10) -> np.ndarray:
    """Assign each sample to one of ``k`` clusters by k-means (Lloyd, k-means++ starts).

    Parameters
    ----------
    features : numpy.ndarray or torch.Tensor
        `(N, F)` features, one row per sample.
    k : int
        Number of clusters (the paper: 22), at most N.
    seed : int
        Seed of the starts (same seed, same clusters).
    n_init : int
        Starts; the one with the smallest within-cluster sum of squares is kept.

    Returns
    -------
    numpy.ndarray
        `(N,)` int64 cluster of each sample, in ``0 .. k - 1``.

    Raises
    ------
    ValueError
        ``features`` is not `(N, F)` with N >= 2 or holds NaN or infinite values, ``k`` lies
        outside [1, N], or ``n_init`` < 1.
    """
    from sklearn.cluster import KMeans

    f = _features(features)
    if not 1 <= k <= f.shape[0]:
        raise ValueError(f"k must lie in [1, {f.shape[0]}] (the number of samples), got {k}")
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, got {n_init}")
    km = KMeans(n_clusters=int(k), n_init=int(n_init), random_state=int(seed))
    return km.fit_predict(f).astype(np.int64)


def tsne(features: ArrayOrTensor, seed: int, *, perplexity: float = 30.0) -> np.ndarray:
    """Embed samples in the plane by t-SNE (van der Maaten & Hinton 2008).

    Parameters
    ----------
    features : numpy.ndarray or torch.Tensor
        `(N, F)` features.
    seed : int
        Seed of the optimisation (same seed, same map).
    perplexity : float
        Effective number of neighbours, below N (scikit-learn's default 30; lowered to
        ``(N - 1) / 3`` for small sets).

    Returns
    -------
    numpy.ndarray
        `(N, 2)` float64 coordinates (arbitrary units: only neighbourhoods mean something).

    Raises
    ------
    ValueError
        ``features`` is not `(N, F)` with N >= 2 or holds NaN or infinite values, or ``perplexity``
        <= 0.
    """
    from sklearn.manifold import TSNE

    f = _features(features)
    if not perplexity > 0:
        raise ValueError(f"perplexity must be > 0, got {perplexity}")
    p = min(float(perplexity), max((f.shape[0] - 1) / 3.0, 1.0))
    emb = TSNE(n_components=2, perplexity=p, init="pca", random_state=int(seed))
    return np.asarray(emb.fit_transform(f), dtype=np.float64)


def contingency(clusters: ArrayOrTensor, labels: ArrayOrTensor, n_clusters: int,
                n_classes: int) -> np.ndarray:
    """Count the samples of every class in every cluster.

    Parameters
    ----------
    clusters : array-like
        `(N,)` cluster of each sample, in ``0 .. n_clusters - 1``.
    labels : array-like
        `(N,)` class of each sample, in ``0 .. n_classes - 1``.
    n_clusters : int
        Number of clusters.
    n_classes : int
        Number of classes.

    Returns
    -------
    numpy.ndarray
        `(n_clusters, n_classes)` int64: ``C[c, j]`` samples of class j in cluster c.

    Raises
    ------
    ValueError
        ``clusters`` or ``labels`` are not N non-negative integers each, or a value is not below
        ``n_clusters`` or ``n_classes``.
    """
    c = _labels(clusters, np.asarray(clusters).shape[0], "clusters")
    y = _labels(labels, c.shape[0], "labels")
    if c.size and (c.max() >= n_clusters or y.max() >= n_classes):
        raise ValueError(f"clusters must lie in [0, {n_clusters}) and labels in "
                         f"[0, {n_classes}), got maxima {c.max()} and {y.max()}")
    out = np.zeros((n_clusters, n_classes), dtype=np.int64)
    np.add.at(out, (c, y), 1)
    return out


def enriched_cluster(clusters: ArrayOrTensor, labels: ArrayOrTensor, target: int) -> dict[str, Any]:
    """Find the cluster that holds most samples of class ``target``, with its purity and recall.

    Parameters
    ----------
    clusters : array-like
        `(N,)` cluster of each sample (e.g. from :func:`kmeans`).
    labels : array-like
        `(N,)` true class of each sample.
    target : int
        The class looked for (the unseen structure).

    Returns
    -------
    dict
        ``cluster`` (its index), ``purity``, ``recall``, ``enrichment`` (module docstring),
        ``n_members`` (samples in the cluster), ``n_target_in_cluster``, ``n_target`` (samples
        of the class in the set), ``base_rate`` (``n_target / N``) and ``composition``
        (``{class: count}`` of the cluster, largest first).

    Raises
    ------
    ValueError
        ``clusters`` or ``labels`` are not N non-negative integers each, or ``target`` has no
        sample.
    """
    c = _labels(clusters, np.asarray(clusters).shape[0], "clusters")
    y = _labels(labels, c.shape[0], "labels")
    n_t = int((y == target).sum())
    if n_t == 0:
        raise ValueError(f"class {target} has no sample; classes present: "
                         f"{sorted(set(y.tolist()))}")
    table = contingency(c, y, int(c.max()) + 1, max(int(y.max()), target) + 1)
    sizes = table.sum(axis=1)
    hits = table[:, target]
    purity = np.where(sizes > 0, hits / np.maximum(sizes, 1), 0.0)
    best = int(np.lexsort((np.arange(len(hits)), -purity, -hits))[0])
    comp = {int(j): int(table[best, j]) for j in np.argsort(-table[best], kind="stable")
            if table[best, j] > 0}
    base = n_t / c.shape[0]
    return {"cluster": best, "purity": float(purity[best]), "recall": float(hits[best] / n_t),
            "enrichment": float(purity[best] / base), "n_members": int(sizes[best]),
            "n_target_in_cluster": int(hits[best]), "n_target": n_t, "base_rate": float(base),
            "composition": comp}
