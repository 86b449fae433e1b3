"""DSRF3D-v2, the 3-D VGG subtomogram classifier that DSM-Net compares against (its Table 2, [7]).

The network of the authors' 22-class experiments, as DSM-Net's Table 2 uses it ("3D VGG-8")::

    input (B, 1, D, D, D), standardised, D divisible by 8 (the paper: 40)
    encoder: Conv3d(3x3x3, padding 1) + ReLU, widths 32, 32, MaxPool3d(2),
             64, 64, MaxPool3d(2), 128, 128, MaxPool3d(2)   (the same encoder as SSN3D's)
    flatten (128 (D/8)³) -> Linear 1024 + ReLU + Dropout(0.7)
                         -> Linear 1024 + ReLU + Dropout(0.7) -> Linear C logits

With C = 22 and D = 40 it has 18,315,574 parameters (:func:`parameter_count_formula`), the
"about 18.3 M" of the authors' 22-class version; 6 convolutions + 2 hidden fully connected
layers are the "8" of "VGG-8". DSM-Net reports that it fails to converge on crowded boxes
("*" in Table 2). Initialisation as Keras' defaults (Glorot-uniform, zero biases), dropout as
Keras' ``Dropout(0.7)`` (a fraction 0.7 of the units zeroed while training).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cryo_companion.models._config import check_head, config_fingerprint
from cryo_companion.models.registry import ModelSpec, register
from cryo_companion.models.ssn3d import ENCODER_WIDTHS

__all__ = ["SPEC", "DSRF3Dv2", "DSRF3Dv2Config", "dsrf3d_v2", "example_batch",
           "parameter_count_formula"]


@dataclass(frozen=True)
class DSRF3Dv2Config:
    """Sizes of one DSRF3D-v2 classifier.

    Attributes
    ----------
    n_classes : int
        Output classes (22).
    box : int
        Edge of the cubic input in voxels, divisible by 8.
    fc_width : int
        Units of each of the two hidden fully connected layers (1024).
    dropout : float
        Fraction of units dropped after each hidden fully connected layer while training.
    """

    n_classes: int = 22
    box: int = 40
    fc_width: int = 1024
    dropout: float = 0.7

    def __post_init__(self) -> None:
        """Refuse sizes the network cannot have."""
        if self.box < 8 or self.box % 8:
            raise ValueError(f"box {self.box} must be a positive multiple of 8 (three 2x "
                             "poolings), e.g. 40")
        check_head(self.n_classes, self.fc_width, self.dropout)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DSRF3Dv2Config:
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        d : Mapping
            A dictionary written by :meth:`to_dict`.

        Returns
        -------
        DSRF3Dv2Config
        """
        return cls(**dict(d))

    def fingerprint(self) -> str:
        """Return the SHA-256 (16 hex digits) of the architecture: equal iff weights fit."""
        return config_fingerprint({"network": "dsrf3d_v2", **self.to_dict()})


def parameter_count_formula(cfg: DSRF3Dv2Config) -> int:
    """Trainable parameters of :class:`DSRF3Dv2` with ``cfg``, by hand (weights + biases).

    Parameters
    ----------
    cfg : DSRF3Dv2Config
        The network.

    Returns
    -------
    int
    """
    c = (1, *ENCODER_WIDTHS)
    n = sum(27 * c[i] * c[i + 1] + c[i + 1] for i in range(6))
    f = (ENCODER_WIDTHS[-1] * (cfg.box // 8) ** 3, cfg.fc_width, cfg.fc_width, cfg.n_classes)
    return n + sum((f[i] + 1) * f[i + 1] for i in range(3))


class DSRF3Dv2(nn.Module):
    """The DSRF3D-v2 classifier (see the module docstring).

    Parameters
    ----------
    cfg : DSRF3Dv2Config or None
        The network; default 22 classes on 40³ boxes.
    class_names : sequence of str or None
        Names of the classes.
    generator : torch.Generator or None
        CPU generator of the initial weights (same seed, same weights).
    """

    def __init__(self, cfg: DSRF3Dv2Config | None = None,
                 class_names: Sequence[str] | None = None, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DSRF3Dv2Config()
        if class_names is not None and len(class_names) != self.cfg.n_classes:
            raise ValueError(f"{len(class_names)} class names for {self.cfg.n_classes} classes")
        self.class_names = (tuple(class_names) if class_names is not None
                            else tuple(f"class{i}" for i in range(self.cfg.n_classes)))
        c = (1, *ENCODER_WIDTHS)
        self.encoder = nn.ModuleList(nn.Conv3d(c[i], c[i + 1], 3, padding=1) for i in range(6))
        f = (ENCODER_WIDTHS[-1] * (self.cfg.box // 8) ** 3, self.cfg.fc_width,
             self.cfg.fc_width, self.cfg.n_classes)
        self.fc = nn.ModuleList(nn.Linear(f[i], f[i + 1]) for i in range(3))
        self.dropout = nn.Dropout(self.cfg.dropout)
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                assert m.bias is not None
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Classify a batch of subtomograms.

        Parameters
        ----------
        x : torch.Tensor
            `(B, D, D, D)` or `(B, 1, D, D, D)` float subtomograms, z-y-x, D = ``cfg.box``.

        Returns
        -------
        dict of torch.Tensor
            ``class_logits`` `(B, C)` and ``features`` `(B, fc_width)` (the second hidden layer
            after its ReLU, before dropout), the keys DSM-Net's classification head returns.
        """
        if x.dim() == 4:
            x = x.unsqueeze(1)
        D = self.cfg.box
        if x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[-3:]) != (D, D, D):
            raise ValueError(f"expected input (B, {D}, {D}, {D}) or (B, 1, {D}, {D}, {D}), "
                             f"got {tuple(x.shape)}")
        h = x
        for i, conv in enumerate(self.encoder):
            h = F.relu(conv(h))
            if i % 2 == 1:
                h = F.max_pool3d(h, 2)
        h = self.dropout(F.relu(self.fc[0](h.flatten(1))))
        feats = F.relu(self.fc[1](h))
        return {"features": feats, "class_logits": self.fc[2](self.dropout(feats))}

    def n_parameters(self) -> int:
        """Count the trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> str:
        """One line: the network, its sizes and parameter count."""
        c = self.cfg
        return (f"DSRF3D-v2: encoder {list(ENCODER_WIDTHS)} (3x3x3, 3 poolings, {c.box} -> "
                f"{c.box // 8}), FC {c.fc_width}-{c.fc_width} (dropout {c.dropout:g}) -> "
                f"{c.n_classes} classes; {self.n_parameters():,} parameters")


def dsrf3d_v2(seed: int | None = None, *, class_names: Sequence[str] | None = None,
              **overrides: Any) -> DSRF3Dv2:
    """Build DSRF3D-v2, initialised.

    Parameters
    ----------
    seed : int or None
        Seed of the initial weights (None: PyTorch's global generator).
    class_names : sequence of str or None
        Names of the classes.
    **overrides : Any
        :class:`DSRF3Dv2Config` fields.

    Returns
    -------
    DSRF3Dv2
        The network, on the CPU, in training mode.
    """
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return DSRF3Dv2(DSRF3Dv2Config(**overrides), class_names=class_names, generator=g)


def example_batch(cfg: DSRF3Dv2Config, n: int, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor]:
    """Random inputs and labels of the right shapes for benchmarks and tests (not data).

    Parameters
    ----------
    cfg : DSRF3Dv2Config
        The network (its box and classes).
    n : int
        Batch size.
    generator : torch.Generator
        Source of the draws; the tensors are made on its device.

    Returns
    -------
    tuple of torch.Tensor
        `(n, D, D, D)` float32 standard normal inputs and `(n,)` int64 class labels.
    """
    dev = generator.device
    d = cfg.box
    return (torch.randn(n, d, d, d, generator=generator, device=dev),
            torch.randint(cfg.n_classes, (n,), generator=generator, device=dev))


#: The registry entry of DSRF3D-v2 (22 classes, 40³ boxes); it has dropout: loop stepper.
SPEC = register(ModelSpec(name="dsrf3d_v2", config_cls=DSRF3Dv2Config, model_cls=DSRF3Dv2,
                          example_batch=example_batch,
                          description="DSRF3D-v2, the 22-class 3-D VGG of DSM-Net's Table 2"))
