"""Building blocks shared by the networks of several papers (3-D U-Net style encoders/decoders).

A block goes here once a second network uses it; a block used by one network stays in that
network's file. Attribute names are part of the weights files' state-dict keys: renaming one
breaks the weights already written.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNetUp", "count_parameters"]


class UNetUp(nn.Module):
    """One U-Net decoder stack: 3-D transposed convolution, concatenated skip, convolution, ReLU.

    Parameters
    ----------
    c_in : int
        Channels of the coarser input.
    c_skip : int
        Channels of the skip connection; also the block's output channels.
    kernel_size : int
        Edge of the convolution after the concatenation (3 in Che et al. 2019, III-C-2).

    Notes
    -----
    The transposed convolution (kernel 2, stride 2) is given the skip's spatial size as
    ``output_size``, so odd sizes (2 -> 5 needs output padding 1) return exactly to the skip's
    size.
    """

    def __init__(self, c_in: int, c_skip: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.up = nn.ConvTranspose3d(c_in, c_skip, kernel_size=2, stride=2)
        self.conv = nn.Conv3d(2 * c_skip, c_skip, kernel_size=kernel_size,
                              padding=kernel_size // 2)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Upsample ``x`` to the size of ``skip``, concatenate, convolve.

        Parameters
        ----------
        x : torch.Tensor
            `(B, c_in, d, h, w)` coarse features.
        skip : torch.Tensor
            `(B, c_skip, D, H, W)` encoder features, ``D`` in ``2d .. 2d + 1``.

        Returns
        -------
        torch.Tensor
            `(B, c_skip, D, H, W)` features after the ReLU.
        """
        x = self.up(x, output_size=list(skip.shape[-3:]))
        return F.relu(self.conv(torch.cat([x, skip], dim=1)))


def count_parameters(module: nn.Module) -> int:
    """Count the trainable parameters of ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        Any module.

    Returns
    -------
    int
        Sum of the element counts of the parameters that require gradients.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
