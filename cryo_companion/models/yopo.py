"""YOPO, "You Only Pool Once" (Zeng & Xu; SHREC 2020, Gubins et al. 3.4).

A box classifier with a single, global pooling stage::

    input (B, 1, 24, 24, 24)
    ten unpadded 3x3x3 convolutions, widths 64, 80, 96, ..., 208 (steps of 16), each followed
        by ELU and batch normalisation; the box shrinks by 2 per layer (24 -> 4)
    after every convolution a global max-pool "tap" (B, width)
    concatenate the ten taps (B, 1360) -> Linear 1024 + ELU + BatchNorm -> Linear n_classes

``n_classes`` = 13 for SHREC 2020: the background and the twelve complexes (channel 0 is the
background). The paper gives the structure (ten convolutions from 64 to 208 filters, ELU and
batch normalisation, one global pooling, a fully connected layer of 1024, 13 classes); the
steps of 16, the order convolution -> ELU -> batch norm (Keras' habit in the authors' code) and
the ELU + batch norm after the fully connected layer are this package's reading.

**Dense prediction.** YOPO "predicted at every location" of the test tomogram. Because every
layer is a convolution and each tap is a maximum over the whole box, the prediction for every
24³ box of a larger input is exactly: the ten convolutions on the whole input, each tap a
sliding maximum with a window of ``24 − 2k`` voxels after layer ``k``, and the fully connected
layers as 1x1x1 convolutions (:meth:`YOPO.dense`, in eval mode). Output voxel ``j`` is the box
that starts at input voxel ``j``, whose centre is ``j + 12`` (:data:`DENSE_MARGIN`).
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

__all__ = ["BOX", "DENSE_MARGIN", "SPEC", "WIDTHS", "YOPO", "YOPOConfig", "example_batch",
           "parameter_count_formula", "yopo"]

#: Edge of the boxes (voxels), Gubins et al. 2020, 3.4: "subtomograms of size 24³".
BOX = 24
#: Ten convolutions, 64 to 208 filters.
WIDTHS: tuple[int, ...] = tuple(64 + 16 * i for i in range(10))
#: ``(before, after)``: the dense output of an input of edge ``T`` has edge ``T − 23``; its voxel
#: ``j`` is the box centred at input voxel ``j + 12`` (box ``[j, j + 24)``).
DENSE_MARGIN: tuple[int, int] = (BOX // 2, BOX // 2 - 1)


@dataclass(frozen=True)
class YOPOConfig:
    """Sizes of the network.

    Attributes
    ----------
    n_classes : int
        Output classes including the background (SHREC 2020: 13).
    widths : tuple of int
        Filters of the ten convolutions.
    fc_width : int
        Units of the fully connected layer (1024).
    box : int
        Edge of the training boxes (24); ``2 x len(widths) < box``.
    """

    n_classes: int = 13
    widths: tuple[int, ...] = WIDTHS
    fc_width: int = 1024
    box: int = BOX

    def __post_init__(self) -> None:
        """Refuse sizes the network cannot have."""
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        if not self.widths or min(self.widths) < 1 or self.fc_width < 1:
            raise ValueError("widths and fc_width must be positive")
        if self.box <= 2 * len(self.widths):
            raise ValueError(f"box {self.box} must exceed 2 x {len(self.widths)} (each unpadded "
                             "convolution removes 2 voxels)")

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> YOPOConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(n_classes=int(d["n_classes"]), widths=tuple(int(w) for w in d["widths"]),
                   fc_width=int(d["fc_width"]), box=int(d["box"]))

    def fingerprint(self) -> str:
        """Hash of the architecture (16 hexadecimal digits): equal iff weights fit."""
        return config_fingerprint(self.to_dict())


def parameter_count_formula(cfg: YOPOConfig) -> int:
    """Trainable parameters of :class:`YOPO`, by hand from the module docstring.

    Parameters
    ----------
    cfg : YOPOConfig
        The network.

    Returns
    -------
    int
        Convolutions (weights, biases) and batch norms (scale, shift), the two linear layers
        and the batch norm between them.
    """
    n, c_in = 0, 1
    for w in cfg.widths:
        n += 27 * c_in * w + w + 2 * w
        c_in = w
    taps = sum(cfg.widths)
    return n + taps * cfg.fc_width + cfg.fc_width + 2 * cfg.fc_width \
        + cfg.fc_width * cfg.n_classes + cfg.n_classes


def _box_max(h: Tensor, k: int) -> Tensor:
    """Max over every ``k``³ window (stride 1), as three 1-D passes: 3k instead of k³ reads."""
    h = F.max_pool3d(h, (k, 1, 1), stride=1)
    h = F.max_pool3d(h, (1, k, 1), stride=1)
    return F.max_pool3d(h, (1, 1, k), stride=1)


class YOPO(nn.Module):
    """YOPO (see the module docstring).

    Parameters
    ----------
    cfg : YOPOConfig or None
        Sizes (default: the paper's, 13 classes).
    class_names : sequence of str or None
        Names of the output classes (default ``"class 0"``, ...; class 0 the background).
    generator : torch.Generator or None
        CPU generator of the initial weights.
    """

    def __init__(self, cfg: YOPOConfig | None = None, class_names: Sequence[str] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg or YOPOConfig()
        self.class_names = class_names_for(self.cfg.n_classes, class_names)
        c_in = 1
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for w in self.cfg.widths:
            self.convs.append(nn.Conv3d(c_in, w, 3))
            self.norms.append(nn.BatchNorm3d(w))
            c_in = w
        self.fc = nn.Linear(sum(self.cfg.widths), self.cfg.fc_width)
        self.fc_norm = nn.BatchNorm1d(self.cfg.fc_width)
        self.out = nn.Linear(self.cfg.fc_width, self.cfg.n_classes)
        keras_init(self, generator)

    def _features(self, x: Tensor) -> list[Tensor]:
        h, maps = x, []
        for conv, norm in zip(self.convs, self.norms):
            h = norm(F.elu(conv(h)))
            maps.append(h)
        return maps

    def _head(self, taps: Tensor) -> Tensor:
        """`(M, sum(widths))` -> `(M, n_classes)` logits."""
        return self.out(self.fc_norm(F.elu(self.fc(taps))))

    @staticmethod
    def _as_5d(x: Tensor) -> Tensor:
        x = x.unsqueeze(1) if x.dim() == 4 else x
        if x.dim() != 5 or x.shape[1] != 1:
            raise ValueError(f"expected (B, 1, D, H, W) or (B, D, H, W), got {tuple(x.shape)}")
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Classify a batch of boxes.

        Parameters
        ----------
        x : torch.Tensor
            `(B, 1, box, box, box)` or `(B, box, box, box)` float boxes, z-y-x (standardised by
            the caller).

        Returns
        -------
        torch.Tensor
            `(B, n_classes)` logits (channel 0: background).
        """
        x = self._as_5d(x)
        b = self.cfg.box
        if tuple(x.shape[-3:]) != (b, b, b):
            raise ValueError(f"expected boxes of {b}^3, got {tuple(x.shape)}; use dense() for "
                             "larger inputs")
        taps = torch.cat([m.amax((2, 3, 4)) for m in self._features(x)], 1)
        return self._head(taps)

    def dense(self, x: Tensor) -> Tensor:
        """Logits of every ``box``³ window of a larger input, in one pass (eval mode only).

        Parameters
        ----------
        x : torch.Tensor
            `(B, 1, D, H, W)` float input, every size >= ``box``.

        Returns
        -------
        torch.Tensor
            `(B, n_classes, D − box + 1, H − box + 1, W − box + 1)` logits; voxel ``j`` is the
            window ``[j, j + box)`` (its centre ``j + box // 2``), equal to ``forward`` of that
            window.
        """
        if self.training:
            raise RuntimeError("YOPO.dense needs eval mode: batch norm must use its running "
                               "statistics, as a box-by-box prediction does")
        x = self._as_5d(x)
        b = self.cfg.box
        if min(x.shape[-3:]) < b:
            raise ValueError(f"input {tuple(x.shape)} is smaller than a {b}^3 box")
        h, taps = x, []
        for k, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(F.elu(conv(h)))
            taps.append(_box_max(h, b - 2 * (k + 1)))                 # pooled at once: memory
        t = torch.cat(taps, 1)                                 # (B, sum(widths), D', H', W')
        B, C, *s = t.shape
        logits = self._head(t.permute(0, 2, 3, 4, 1).reshape(-1, C))
        return logits.reshape(B, *s, -1).permute(0, 4, 1, 2, 3).contiguous()

    def n_parameters(self) -> int:
        """Count the trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def yopo(seed: int | None = None, **overrides: object) -> YOPO:
    """Build YOPO, initialised from ``seed``.

    Parameters
    ----------
    seed : int or None
        Seed of the initial weights (None: PyTorch's global generator).
    **overrides : object
        :class:`YOPOConfig` fields.

    Returns
    -------
    YOPO
        On the CPU.
    """
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return YOPO(YOPOConfig(**overrides), generator=g)  # type: ignore[arg-type]


def example_batch(cfg: YOPOConfig, n: int, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor]:
    """Random boxes and classes of the training batch's shapes (benchmarks and tests; not data).

    Parameters
    ----------
    cfg : YOPOConfig
        The network (box edge, number of classes).
    n : int
        Boxes (>= 2: batch normalisation needs two in training mode).
    generator : torch.Generator
        Source of the draws; the tensors are made on its device.

    Returns
    -------
    tuple of torch.Tensor
        `(n, 1, box, box, box)` float32 standard normal boxes and `(n,)` int64 classes uniform
        in ``[0, n_classes)``.
    """
    dev, b = generator.device, cfg.box
    x = torch.randn(n, 1, b, b, b, generator=generator, device=dev)
    return x, torch.randint(cfg.n_classes, (n,), generator=generator, device=dev)


#: The registry entry (:mod:`cryo_companion.models.registry`).
SPEC = register(ModelSpec(name="yopo", config_cls=YOPOConfig, model_cls=YOPO,
                          example_batch=example_batch,
                          description="YOPO box classifier, Zeng & Xu; SHREC 2020, 3.4"))
