"""Signal-to-noise ratio of subtomograms: from the noise-free volume, or from two noisy copies.

SNR = var(signal) / var(noise), the definition of Che et al. 2019 (III-A) and of the simulator,
measured over the voxels of each volume of a batch.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["pearson_correlation", "snr_from_clean", "snr_from_correlation"]


def _flat(x: Tensor, name: str) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{name} must be batched (B, ...), got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1).to(torch.float64)


def snr_from_clean(clean: Tensor, noisy: Tensor) -> Tensor:
    """Compute ``var(clean) / var(noisy − clean)`` per volume.

    Parameters
    ----------
    clean, noisy : Tensor
        ``(B, ...)`` noise-free and noisy volumes of the same shape.

    Returns
    -------
    Tensor
        ``(B,)`` float64; ``inf`` where ``noisy == clean``.

    Raises
    ------
    ValueError
        If the shapes differ or the volumes are not batched.
    """
    if clean.shape != noisy.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and noisy {tuple(noisy.shape)} differ")
    c = _flat(clean, "clean")
    n = _flat(noisy, "noisy") - c
    return c.var(1, correction=0) / n.var(1, correction=0)


def pearson_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Compute the Pearson correlation coefficient of ``a`` and ``b`` per volume.

    Parameters
    ----------
    a, b : Tensor
        ``(B, ...)`` volumes of the same shape.

    Returns
    -------
    Tensor
        ``(B,)`` float64 coefficients in [-1, 1] (NaN for a constant volume).

    Raises
    ------
    ValueError
        If the shapes differ or the volumes are not batched.
    """
    if a.shape != b.shape:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} differ")
    x = _flat(a, "a")
    y = _flat(b, "b")
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    return (x * y).sum(1) / torch.sqrt((x * x).sum(1) * (y * y).sum(1))


def snr_from_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Estimate the SNR as ``ρ / (1 − ρ)`` from two noisy copies (Frank & Al-Ali 1975).

    For ``a = s + n₁`` and ``b = s + n₂`` with independent noise of equal variance, the
    correlation is ``ρ = var(s) / (var(s) + var(n))``, hence ``SNR = ρ / (1 − ρ)``.

    Parameters
    ----------
    a, b : Tensor
        ``(B, ...)`` two realisations (same signal, independent noise).

    Returns
    -------
    Tensor
        ``(B,)`` float64 SNR estimates (negative when ρ < 0, i.e. pure noise by chance).

    Raises
    ------
    ValueError
        If the shapes differ or the volumes are not batched.
    """
    rho = pearson_correlation(a, b)
    return rho / (1 - rho)
