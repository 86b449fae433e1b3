"""Keras' default initialisation (Glorot-uniform weights, zero biases, unit/zero batch norm).

The networks of SHREC 2020's methods were written in Keras (DeepFinder, YOPO); their PyTorch
versions here start from the same distribution, drawn from a given generator so that a seed
gives the same weights.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["keras_init"]


def keras_init(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Initialise every convolution, linear and batch-norm layer of ``module`` in place.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    generator : torch.Generator or None
        CPU generator of the weights (None: PyTorch's global generator).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
