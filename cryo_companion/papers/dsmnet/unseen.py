"""The unseen structure (DSM-Net 3.5): discover, embed and recover GroEL without training on it.

DSM-Net with 21 outputs is trained on data set A without the GroEL subtomograms, then run on
all of data set A:

1. **discovery**: the 1,024 hidden units of every subtomogram (the classification subnet's
   fully connected layer) are clustered by k-means with k = 22 (the paper's), and the cluster
   holding most GroEL subtomograms is picked out with its purity and recall
   (:func:`cryo_companion.clustering.enriched_cluster`);
2. **the map**: t-SNE of the hidden units in the plane, GroEL highlighted (the paper's Fig. 3g);
3. **recovery**: the recovery outputs of the GroEL subtomograms are aligned by their true poses
   and averaged (:func:`cryo_companion.simulate.targets.align_by_poses`), and so are their
   recovery targets (the noise-free densities); the two averages are compared by Fourier shell
   correlation, with the resolution at FSC 0.5 and 0.143. Both pass through the same alignment
   (the same interpolation), so the comparison measures the network, not the resampling.

GroEL (1KP8) is the ``liu22`` class "1KPB GroEL", whose stand-in is TRiC (entry 4v94). The
paper's "5.0" is read as a resolution in nm (:mod:`cryo_companion.papers.dsmnet.paper_tables`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cryo_companion.clustering import enriched_cluster, kmeans, tsne
from cryo_companion.metrics import fourier_shell_correlation, fsc_resolution
from cryo_companion.papers.dsmnet.paper_tables import FSC_SCORE
from cryo_companion.simulate.targets import align_by_poses

__all__ = ["FSC_THRESHOLDS", "GROEL", "K", "discover", "groel_label", "recovered_structure",
           "structure_fsc"]

#: The held-out class of the ``liu22`` set.
GROEL = "1KPB GroEL"
#: k of the k-means (3.5: "k-means clustering with k = 22").
K = 22
#: The FSC criteria reported.
FSC_THRESHOLDS = (0.5, 0.143)


def groel_label(class_names: Sequence[str]) -> int:
    """Return the label of GroEL in a class list.

    Parameters
    ----------
    class_names : sequence of str
        The data set's classes (``liu22``).

    Returns
    -------
    int
    """
    names = list(class_names)
    if GROEL not in names:
        raise ValueError(f"{GROEL!r} is not among the classes {names}")
    return names.index(GROEL)


def discover(features: Any, labels: Any, held_out: int, seed: int, *, k: int = K,
             embed: bool = True) -> dict[str, Any]:
    """Cluster the hidden units, pick the cluster of the held-out class, embed them in 2-D.

    Parameters
    ----------
    features : numpy.ndarray or torch.Tensor
        `(N, F)` hidden units of every subtomogram of the set.
    labels : array-like
        `(N,)` true classes (in the set's numbering, the held-out class included).
    held_out : int
        The class never trained on.
    seed : int
        Seed of k-means and t-SNE.
    k : int
        Clusters.
    embed : bool
        Also compute the t-SNE map.

    Returns
    -------
    dict
        ``k``, ``clusters`` (list of N ints), ``enriched`` (its cluster, purity, recall,
        enrichment, counts and composition), ``tsne`` (list of N ``[x, y]``, when ``embed``).
    """
    lab = np.asarray(labels)
    clusters = kmeans(features, k, seed)
    out: dict[str, Any] = {"k": int(k), "clusters": clusters.tolist(),
                           "enriched": enriched_cluster(clusters, lab, held_out)}
    if embed:
        out["tsne"] = tsne(features, seed).tolist()
    return out


def recovered_structure(recovery: Any, truth: Any, euler_zyz_deg: Any, offset_xyz_vox: Any
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the recovered and the true densities of one class, aligned by the true poses.

    Parameters
    ----------
    recovery : torch.Tensor or numpy.ndarray
        `(n, D, D, D)` the network's recovery outputs for the class's subtomograms.
    truth : torch.Tensor or numpy.ndarray
        `(n, D, D, D)` their recovery targets (noise-free densities).
    euler_zyz_deg : array-like
        `(n, 3)` the targets' true rotations (degrees).
    offset_xyz_vox : array-like
        `(n, 3)` the targets' centres minus the boxes' centre voxels (x, y, z).

    Returns
    -------
    tuple of torch.Tensor
        The aligned averages `(D, D, D)`: recovered, true.
    """
    r = torch.as_tensor(np.asarray(recovery) if not isinstance(recovery, torch.Tensor)
                        else recovery.detach().cpu())
    t = torch.as_tensor(np.asarray(truth) if not isinstance(truth, torch.Tensor)
                        else truth.detach().cpu())
    if r.shape != t.shape or r.dim() != 4 or r.shape[0] == 0:
        raise ValueError(f"recovery {tuple(r.shape)} and truth {tuple(t.shape)} must both be "
                         "(n, D, D, D) with n >= 1")
    return (align_by_poses(r, euler_zyz_deg, offset_xyz_vox).mean(0),
            align_by_poses(t, euler_zyz_deg, offset_xyz_vox).mean(0))


def _key(threshold: float) -> str:
    """``0.5`` -> ``"fsc_0_5"``: a key without dots (results are read by dotted paths)."""
    return "fsc_" + f"{threshold:g}".replace(".", "_")


def structure_fsc(recovered: Any, truth: Any, voxel_size_A: float) -> dict[str, Any]:
    """FSC of a recovered structure against the true one, with the resolutions at 0.5 and 0.143.

    Parameters
    ----------
    recovered, truth : torch.Tensor or numpy.ndarray
        `(D, D, D)` aligned averages (:func:`recovered_structure`).
    voxel_size_A : float
        Voxel edge in Å.

    Returns
    -------
    dict
        ``curve`` (:func:`~cryo_companion.metrics.fourier_shell_correlation`), ``resolution``
        (``{"fsc_0_5": ..., "fsc_0_143": ...}``, each
        :func:`~cryo_companion.metrics.fsc_resolution`),
        ``nyquist_nm`` and the paper's ``paper_score`` (5.0, read as nm).
    """
    curve = fourier_shell_correlation(recovered, truth, voxel_size_A)
    res = {_key(t): fsc_resolution(curve, t) for t in FSC_THRESHOLDS}
    # JSON has no infinity: shell 0's resolution (and a constant volume's NaN FSC) as None
    curve = {k: [None if isinstance(x, float) and not math.isfinite(x) else x for x in v]
             if isinstance(v, list) else v for k, v in curve.items()}
    return {"curve": curve, "resolution": res,
            "nyquist_nm": 2 * voxel_size_A / 10, "paper_score": FSC_SCORE,
            "paper_score_reading": "resolution in nm at an FSC threshold the paper does not name"}
