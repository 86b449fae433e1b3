"""Checks of the simplified simulator against what it is asked for.

* :func:`snr_check`: the SNR measured on the final subtomograms against the requested one, and
  the experimentalist's two-copy estimate (Frank & Al-Ali 1975) beside it.
* :func:`distribution_check`: sampled parameters against their stated distribution (uniform,
  or uniform on a logarithmic scale), with a Kolmogorov-Smirnov test.
* :func:`standardization_check`: what the global batch standardisation (Che et al. 2019, IV)
  leaves of the batch's mean and spread.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy import stats
from torch import Tensor

from cryo_companion.rotation import random_rotation_matrices
from cryo_companion.simulate.subtomogram import Simulator
from cryo_companion.snr import snr_from_clean, snr_from_correlation

__all__ = ["distribution_check", "snr_check", "standardization_check"]


def snr_check(sim: Simulator, templates: Tensor, snr_values: Sequence[float],
              params: Mapping[str, float], n: int, seed: int) -> list[dict[str, float]]:
    """Measure the SNR of simulated subtomograms for each requested SNR.

    For each requested value, ``n`` subtomograms of random templates (drawn from ``templates``)
    in random poses are simulated twice with independent noise. The SNR is measured on the
    final output as ``var(clean) / var(noisy − clean)``, and estimated without the clean volume
    from the two copies as ``ρ / (1 − ρ)``.

    Parameters
    ----------
    sim : Simulator
        The simulator.
    templates : torch.Tensor
        `(T,)` int64 indices of the templates to draw from (e.g. every non-membrane template).
    snr_values : sequence of float
        The requested SNRs (> 0).
    params : mapping of str to float
        The other simulation parameters (``wedge_deg``, ``defocus_um``, ``cs_mm``, ...), fixed.
    n : int
        Subtomograms per requested SNR (>= 2).
    seed : int
        Seed of the draws: request ``j`` uses generators seeded ``seed + 100 + j`` (templates
        and poses), ``seed + 1000 + j`` and ``seed + 2000 + j`` (the two noise copies).

    Returns
    -------
    list of dict
        One row per requested SNR: ``snr_requested``, ``measured_mean``,
        ``measured_max_rel_err`` (largest ``|measured / requested − 1|`` over the batch),
        ``frank_al_ali_mean`` and ``frank_al_ali_std``.

    Raises
    ------
    ValueError
        For ``n < 2``, no templates or a non-positive SNR.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 subtomograms per SNR, got {n}")
    if len(templates) == 0:
        raise ValueError("templates is empty: give at least one template index")
    if any(not s > 0 for s in snr_values):
        raise ValueError(f"requested SNRs must be > 0, got {list(snr_values)}")
    templates = torch.as_tensor(templates)
    rows = []
    for j, s in enumerate(snr_values):
        g = torch.Generator().manual_seed(seed + 100 + j)
        idx = templates[torch.randint(len(templates), (n,), generator=g)].to(sim.device)
        rot = random_rotation_matrices(n, g).to(sim.device)
        p = {**params, "snr": float(s)}
        a = sim.simulate(idx, rot, p, torch.Generator(device=sim.device).manual_seed(
            seed + 1000 + j))
        b = sim.simulate(idx, rot, p, torch.Generator(device=sim.device).manual_seed(
            seed + 2000 + j))
        if a.clean is None or b.clean is None or not torch.equal(a.clean, b.clean):
            raise RuntimeError("the two copies differ in more than their noise")
        m = snr_from_clean(a.clean, a.noisy).cpu().double().numpy()
        fa = snr_from_correlation(a.noisy, b.noisy).cpu().double().numpy()
        rows.append({"snr_requested": float(s), "measured_mean": float(m.mean()),
                     "measured_max_rel_err": float(np.max(np.abs(m / s - 1))),
                     "frank_al_ali_mean": float(fa.mean()), "frank_al_ali_std": float(fa.std())})
    return rows


def distribution_check(values: npt.ArrayLike, low: float, high: float, *,
                       log_uniform: bool = False, atol: float = 1e-6) -> dict[str, Any]:
    """Compare samples with the uniform distribution on ``[low, high]`` (or its log).

    Parameters
    ----------
    values : array-like
        `(N,)` samples.
    low, high : float
        The stated range (``low < high``; both > 0 for ``log_uniform``).
    log_uniform : bool
        The samples should be uniform in ``log`` (e.g. the SNR of Che et al. 2019, III-B).
    atol : float
        Tolerance of the range check (float32 draws at the edges).

    Returns
    -------
    dict
        ``min``, ``max``, ``inside_range`` (every sample in ``[low, high]``), ``ks_statistic``
        and ``ks_pvalue`` of a Kolmogorov-Smirnov test against the stated distribution.

    Raises
    ------
    ValueError
        For an empty sample, an empty range or a non-positive range with ``log_uniform``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("values is empty")
    if not low < high:
        raise ValueError(f"the range must have low < high, got [{low}, {high}]")
    if log_uniform and (low <= 0 or np.any(v <= 0)):
        raise ValueError("a log-uniform check needs a positive range and positive samples")
    u = ((np.log(v) - np.log(low)) / (np.log(high) - np.log(low)) if log_uniform
         else (v - low) / (high - low))
    ks = stats.kstest(u, "uniform")
    return {"min": float(v.min()), "max": float(v.max()),
            "inside_range": bool(np.all((v >= low - atol) & (v <= high + atol))),
            "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue)}


def standardization_check(raw: Tensor, standardized: Tensor) -> dict[str, float]:
    """Summarise a batch before and after the global standardisation.

    Parameters
    ----------
    raw : torch.Tensor
        `(B, D, D, D)` subtomograms as simulated.
    standardized : torch.Tensor
        The same batch after ``standardize_batch``.

    Returns
    -------
    dict
        ``raw_mean``, ``raw_std``, ``standardized_mean``, ``standardized_std`` (over the whole
        batch) and ``per_sample_std_min`` / ``per_sample_std_max`` after standardisation (one
        global scale keeps the differences between subtomograms).
    """
    per = standardized.reshape(len(standardized), -1)
    return {"raw_mean": float(raw.mean()), "raw_std": float(raw.std(correction=0)),
            "standardized_mean": float(standardized.mean()),
            "standardized_std": float(standardized.std(correction=0)),
            "per_sample_std_min": float(per.std(1).min()),
            "per_sample_std_max": float(per.std(1).max())}
