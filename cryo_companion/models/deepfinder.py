"""DeepFinder's segmentation network (Moebel et al. 2020; SHREC 2020, Gubins et al. 3.2).

The published Keras network (``deepfinder/models.py``, ``my_model``), in PyTorch::

    input (B, 1, D, D, D), D divisible by 4 (training patches: 56)
    32, 32 (3x3x3)           -> "high" (D)          | MaxPool 2
    48, 48 (3x3x3)           -> "mid" (D/2)         | MaxPool 2
    64, 64, 64, 64 (3x3x3)   at D/4
    UpSampling x2 (nearest), Conv 2x2x2 64 ; concatenate "mid"  (64 + 48)
    48, 48 (3x3x3)
    UpSampling x2 (nearest), Conv 2x2x2 48 ; concatenate "high" (48 + 32)
    32, 32 (3x3x3)
    Conv 1x1x1 -> n_classes (13 for SHREC 2020: 12 complexes + background), softmax

Every convolution but the last has a ReLU; 3x3x3 convolutions are zero-padded to keep the size
("same"). The 2x2x2 convolutions after the up-sampling are Keras' ``padding="same"`` for an
even kernel: one zero voxel *after* the data on each axis, none before. With 13 classes the
network has 903,357 parameters (:func:`parameter_count_formula`; the paper: "about 903,000").

Training (3.2): Dice loss (:func:`cryo_companion.models.tversky.tversky_loss` with α = β =
0.5), Adam (lr 1e-4, β 0.9 / 0.999), 56³ patches, batches of 25 (the published code's
defaults); Keras' initialisation (Glorot-uniform, zero biases).

``DeepFinderConfig.widths`` (32, 48, 64 by default: the published network) narrows the three
levels for small checks (the book's smoke scale); the layout stays the same. The network is
registered as ``"deepfinder"`` (:mod:`cryo_companion.models.registry`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cryo_companion.models._config import class_names_for, config_fingerprint
from cryo_companion.models._keras_init import keras_init
from cryo_companion.models.registry import ModelSpec, register

__all__ = ["APPROX_PARAMETER_COUNT", "SPEC", "DeepFinder", "DeepFinderConfig", "deepfinder",
           "example_batch", "parameter_count_formula"]

#: "About 903,000" parameters: the published network's size as the project's issue states it
#: (the paper gives no count); the exact count is :func:`parameter_count_formula`.
APPROX_PARAMETER_COUNT = 903_000


@dataclass(frozen=True)
class DeepFinderConfig:
    """Sizes of the network.

    Attributes
    ----------
    n_classes : int
        Output classes including the background (SHREC 2020: 13).
    patch : int
        Edge of the training patches (voxels, divisible by 4): 56.
    widths : tuple of int
        Filters at the full, half and quarter resolution (32, 48, 64: the published network).
    """

    n_classes: int = 13
    patch: int = 56
    widths: tuple[int, int, int] = (32, 48, 64)

    def __post_init__(self) -> None:
        """Refuse sizes the network cannot have."""
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2 (background + one class), got "
                             f"{self.n_classes}")
        if self.patch < 4 or self.patch % 4:
            raise ValueError(f"patch {self.patch} must be a positive multiple of 4 (two 2x "
                             "poolings)")
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise ValueError(f"widths {self.widths}: need three positive filter counts (full, "
                             "half and quarter resolution)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeepFinderConfig:
        """Inverse of :meth:`to_dict` (``widths`` optional: the published ones)."""
        widths = tuple(int(x) for x in d.get("widths", (32, 48, 64)))
        return cls(n_classes=int(d["n_classes"]), patch=int(d["patch"]),
                   widths=widths)  # type: ignore[arg-type]  # length checked on construction

    def fingerprint(self) -> str:
        """Hash of the architecture (16 hexadecimal digits): equal iff weights fit."""
        return config_fingerprint(self.to_dict())


def _c(c_in: int, c_out: int, k: int) -> int:
    return k ** 3 * c_in * c_out + c_out


def parameter_count_formula(cfg: DeepFinderConfig) -> int:
    """Trainable parameters of :class:`DeepFinder`, by hand from the module docstring.

    Parameters
    ----------
    cfg : DeepFinderConfig
        The network.

    Returns
    -------
    int
    """
    a, b, c = cfg.widths                      # 32, 48, 64 in the published network
    enc = _c(1, a, 3) + _c(a, a, 3) + _c(a, b, 3) + _c(b, b, 3) + _c(b, c, 3) + 3 * _c(c, c, 3)
    dec = _c(c, c, 2) + _c(c + b, b, 3) + _c(b, b, 3) + _c(b, b, 2) + _c(b + a, a, 3) \
        + _c(a, a, 3)
    return enc + dec + _c(a, cfg.n_classes, 1)


def _conv3(c_in: int, c_out: int) -> nn.Conv3d:
    return nn.Conv3d(c_in, c_out, 3, padding=1)


class DeepFinder(nn.Module):
    """DeepFinder's network (see the module docstring).

    Parameters
    ----------
    cfg : DeepFinderConfig or None
        Sizes (default: 13 classes, 56³ patches).
    class_names : sequence of str or None
        Names of the output channels (default ``"class 0"``, ...; channel 0 the background).
    generator : torch.Generator or None
        CPU generator of the initial weights.
    """

    def __init__(self, cfg: DeepFinderConfig | None = None,
                 class_names: Sequence[str] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DeepFinderConfig()
        self.class_names = class_names_for(self.cfg.n_classes, class_names)
        a, b, c = self.cfg.widths
        self.high = nn.ModuleList([_conv3(1, a), _conv3(a, a)])
        self.mid = nn.ModuleList([_conv3(a, b), _conv3(b, b)])
        self.low = nn.ModuleList([_conv3(b, c)] + [_conv3(c, c) for _ in range(3)])
        self.up1 = nn.Conv3d(c, c, 2)
        self.dec1 = nn.ModuleList([_conv3(c + b, b), _conv3(b, b)])
        self.up2 = nn.Conv3d(b, b, 2)
        self.dec2 = nn.ModuleList([_conv3(b + a, a), _conv3(a, a)])
        self.head = nn.Conv3d(a, self.cfg.n_classes, 1)
        keras_init(self, generator)

    @staticmethod
    def _stack(layers: nn.ModuleList, h: Tensor) -> Tensor:
        for conv in layers:
            h = F.relu(conv(h))
        return h

    @staticmethod
    def _up(conv: nn.Conv3d, h: Tensor) -> Tensor:
        """Nearest up-sampling, then the 2x2x2 convolution with Keras' "same" padding."""
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        return F.relu(conv(F.pad(h, (0, 1, 0, 1, 0, 1))))

    def forward(self, x: Tensor) -> Tensor:
        """Segment a batch of patches.

        Parameters
        ----------
        x : torch.Tensor
            `(B, 1, D, H, W)` or `(B, D, H, W)` float patches, z-y-x, every size divisible by
            4 (standardised by the caller: zero mean, unit sd over the tomogram).

        Returns
        -------
        torch.Tensor
            `(B, n_classes, D, H, W)` logits (a softmax over dim 1 gives the score maps;
            channel 0 is the background).
        """
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if x.dim() != 5 or x.shape[1] != 1 or any(s % 4 for s in x.shape[-3:]) \
                or min(x.shape[-3:]) < 4:
            raise ValueError(f"expected (B, 1, D, H, W) with sizes divisible by 4, got "
                             f"{tuple(x.shape)}")
        high = self._stack(self.high, x)
        mid = self._stack(self.mid, F.max_pool3d(high, 2))
        h = self._stack(self.low, F.max_pool3d(mid, 2))
        h = self._stack(self.dec1, torch.cat([self._up(self.up1, h), mid], 1))
        h = self._stack(self.dec2, torch.cat([self._up(self.up2, h), high], 1))
        return self.head(h)

    def n_parameters(self) -> int:
        """Count the trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def deepfinder(seed: int | None = None, **overrides: Any) -> DeepFinder:
    """Build DeepFinder's network, initialised from ``seed``.

    Parameters
    ----------
    seed : int or None
        Seed of the initial weights (None: PyTorch's global generator).
    **overrides : Any
        :class:`DeepFinderConfig` fields (``n_classes``, ``patch``, ``widths``).

    Returns
    -------
    DeepFinder
        On the CPU.
    """
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return DeepFinder(DeepFinderConfig(**overrides), generator=g)


def example_batch(cfg: DeepFinderConfig, n: int, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor]:
    """Random inputs and targets of the training batch's shapes (benchmarks and tests; not data).

    Parameters
    ----------
    cfg : DeepFinderConfig
        The network (patch edge, number of classes).
    n : int
        Patches.
    generator : torch.Generator
        Source of the draws; the tensors are made on its device.

    Returns
    -------
    tuple of torch.Tensor
        `(n, 1, P, P, P)` float32 standard normal patches and `(n, P, P, P)` int64 labels
        uniform in ``[0, n_classes)``.
    """
    dev, p = generator.device, cfg.patch
    x = torch.randn(n, 1, p, p, p, generator=generator, device=dev)
    y = torch.randint(cfg.n_classes, (n, p, p, p), generator=generator, device=dev)
    return x, y


#: The registry entry (:mod:`cryo_companion.models.registry`).
SPEC = register(ModelSpec(name="deepfinder", config_cls=DeepFinderConfig, model_cls=DeepFinder,
                          example_batch=example_batch,
                          description="DeepFinder's U-Net, Moebel et al. 2020; SHREC 2020, 3.2"))
