"""UMC, the U-net Multi-task Cascade (Gubins, Veltkamp & Förster; SHREC 2020, 3.6, Fig. 9).

A U-Net encoder shared by a cascade of decoders; "each decoder block accepts skip connections
from encoder and previous decoders at the same depth level". SHREC 2020 used two decoders, the
first denoising (regressing the noise-free grand model), the second segmenting (13 classes),
with depth 5 and 16, 32, 64, 128, 256 filters, "resulting in 8.82M of parameters"::

    encoder, level l = 0..4 (width w_l = 16 · 2^l): two 3x3x3 convolutions + ReLU; MaxPool 2
        between levels (input sizes divisible by 16)
    decoder d = 0, 1, level l = 3..0: nearest up-sampling x2 of the level below (for both
        decoders the first input is the encoder's bottom, 256 channels), concatenated with
        the encoder's level-l features and the level-l outputs of every earlier decoder, then
        two 3x3x3 convolutions to w_l + ReLU
    heads: 1x1x1 convolutions, 16 -> 1 (denoised, linear) and 16 -> 13 (segmentation logits)

With parameter-free up-sampling this gives 8,822,334 parameters (:func:`parameter_count_formula`),
the paper's 8.82 M to three digits; learned 2x2x2 up-convolutions would give 8.34 M, batch norm
would add 3,904 (8.83 M), so the count fixes both choices. Training (3.6): MSE between the
denoising output and the grand model, Tversky loss (α 0.7, β 0.3) on the class mask, 64³
patches with 75 % overlap and random flips, Adam lr 1e-3, batches of 24, 25 epochs. The
initialisation (Glorot-uniform, zero biases) is this package's choice.
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

__all__ = ["PAPER_PARAMETERS_M", "SPEC", "UMC", "UMCConfig", "example_batch",
           "parameter_count_formula", "umc"]

#: Gubins et al. 2020, 3.6: "8.82M of parameters".
PAPER_PARAMETERS_M = 8.82


@dataclass(frozen=True)
class UMCConfig:
    """Sizes of the network.

    Attributes
    ----------
    widths : tuple of int
        Filters per level, top to bottom (16, 32, 64, 128, 256: depth 5).
    outputs : tuple of int
        Output channels of each decoder of the cascade, in order: (1, 13) = denoising, then
        segmentation (12 complexes + background).
    patch : int
        Edge of the training patches (64), divisible by ``2 ** (depth − 1)``.
    """

    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    outputs: tuple[int, ...] = (1, 13)
    patch: int = 64

    def __post_init__(self) -> None:
        """Refuse sizes the network cannot have."""
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"widths {self.widths}: need at least two positive levels")
        if not self.outputs or min(self.outputs) < 1:
            raise ValueError(f"outputs {self.outputs}: need at least one decoder with >= 1 "
                             "channel")
        f = 2 ** (len(self.widths) - 1)
        if self.patch < f or self.patch % f:
            raise ValueError(f"patch {self.patch} must be a positive multiple of {f} "
                             f"({len(self.widths) - 1} poolings)")

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this (``2 ** (depth − 1)``)."""
        return 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        d = asdict(self)
        d["widths"], d["outputs"] = list(self.widths), list(self.outputs)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UMCConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(widths=tuple(int(w) for w in d["widths"]),
                   outputs=tuple(int(o) for o in d["outputs"]), patch=int(d["patch"]))

    def fingerprint(self) -> str:
        """Hash of the architecture (16 hexadecimal digits): equal iff weights fit."""
        return config_fingerprint(self.to_dict())


def _c3(c_in: int, c_out: int) -> int:
    return 27 * c_in * c_out + c_out


def parameter_count_formula(cfg: UMCConfig) -> int:
    """Trainable parameters of :class:`UMC`, by hand from the module docstring.

    Parameters
    ----------
    cfg : UMCConfig
        The network.

    Returns
    -------
    int
    """
    w = cfg.widths
    n, c_in = 0, 1
    for width in w:
        n += _c3(c_in, width) + _c3(width, width)
        c_in = width
    for d, out in enumerate(cfg.outputs):
        for lvl in range(len(w) - 2, -1, -1):
            n += _c3(w[lvl + 1] + w[lvl] * (1 + d), w[lvl]) + _c3(w[lvl], w[lvl])
        n += w[0] * out + out
    return n


class _Block(nn.Module):
    """Two 3x3x3 convolutions with ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = nn.Conv3d(c_in, c_out, 3, padding=1)
        self.b = nn.Conv3d(c_out, c_out, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Apply both convolutions."""
        return F.relu(self.b(F.relu(self.a(x))))


class UMC(nn.Module):
    """UMC (see the module docstring).

    Parameters
    ----------
    cfg : UMCConfig or None
        Sizes (default: the paper's, a denoising and a 13-class segmentation decoder).
    class_names : sequence of str or None
        Names of the last decoder's output channels (default ``"class 0"``, ...; channel 0
        the background).
    generator : torch.Generator or None
        CPU generator of the initial weights.
    """

    def __init__(self, cfg: UMCConfig | None = None, class_names: Sequence[str] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg or UMCConfig()
        self.class_names = class_names_for(self.cfg.outputs[-1], class_names)
        w = self.cfg.widths
        self.encoder = nn.ModuleList(_Block(1 if i == 0 else w[i - 1], w[i])
                                     for i in range(len(w)))
        self.decoders = nn.ModuleList()
        self.heads = nn.ModuleList()
        for d, out in enumerate(self.cfg.outputs):
            # block j works at level len(w) - 2 - j (from the bottom up)
            self.decoders.append(nn.ModuleList(
                _Block(w[lvl + 1] + w[lvl] * (1 + d), w[lvl])
                for lvl in range(len(w) - 2, -1, -1)))
            self.heads.append(nn.Conv3d(w[0], out, 1))
        keras_init(self, generator)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """Run the encoder and every decoder of the cascade.

        Parameters
        ----------
        x : torch.Tensor
            `(B, 1, D, H, W)` or `(B, D, H, W)` float input, z-y-x, sizes divisible by
            ``cfg.divisor`` (16; standardised by the caller).

        Returns
        -------
        tuple of torch.Tensor
            One output per decoder, `(B, outputs[d], D, H, W)`: with the paper's configuration
            the denoised volume (linear) and the segmentation logits (channel 0: background).
        """
        if x.dim() == 4:
            x = x.unsqueeze(1)
        f = self.cfg.divisor
        if x.dim() != 5 or x.shape[1] != 1 or any(s % f for s in x.shape[-3:]):
            raise ValueError(f"expected (B, 1, D, H, W) with sizes divisible by {f}, got "
                             f"{tuple(x.shape)}")
        skips, h = [], x
        for i, block in enumerate(self.encoder):
            h = block(h if i == 0 else F.max_pool3d(h, 2))
            skips.append(h)
        bottom = skips.pop()
        earlier: list[list[Tensor]] = []          # per decoder: its outputs, bottom level first
        outs = []
        for blocks, head in zip(self.decoders, self.heads):
            h = bottom
            mine: list[Tensor] = []
            for j, block in enumerate(blocks):  # type: ignore[arg-type]
                lvl = len(skips) - 1 - j
                up = F.interpolate(h, scale_factor=2, mode="nearest")
                h = block(torch.cat([up, skips[lvl], *(e[j] for e in earlier)], 1))
                mine.append(h)
            earlier.append(mine)
            outs.append(head(h))
        return tuple(outs)

    def n_parameters(self) -> int:
        """Count the trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def umc(seed: int | None = None, **overrides: object) -> UMC:
    """Build UMC, initialised from ``seed``.

    Parameters
    ----------
    seed : int or None
        Seed of the initial weights (None: PyTorch's global generator).
    **overrides : object
        :class:`UMCConfig` fields.

    Returns
    -------
    UMC
        On the CPU.
    """
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return UMC(UMCConfig(**overrides), generator=g)  # type: ignore[arg-type]


def example_batch(cfg: UMCConfig, n: int, generator: torch.Generator
                  ) -> tuple[Tensor, ...]:
    """Random inputs and targets of the training batch's shapes (benchmarks and tests; not data).

    Parameters
    ----------
    cfg : UMCConfig
        The network (patch edge, outputs of the decoders).
    n : int
        Patches.
    generator : torch.Generator
        Source of the draws; the tensors are made on its device.

    Returns
    -------
    tuple of torch.Tensor
        `(n, 1, P, P, P)` float32 standard normal patches, then one target per decoder: a
        regression target `(n, c, P, P, P)` (standard normal) for every decoder but the last,
        and `(n, P, P, P)` int64 labels uniform in ``[0, outputs[-1])`` for the last
        (with the paper's configuration: the denoising target and the class mask).
    """
    dev, p = generator.device, cfg.patch
    x = torch.randn(n, 1, p, p, p, generator=generator, device=dev)
    targets = [torch.randn(n, c, p, p, p, generator=generator, device=dev)
               for c in cfg.outputs[:-1]]
    labels = torch.randint(cfg.outputs[-1], (n, p, p, p), generator=generator, device=dev)
    return (x, *targets, labels)


#: The registry entry (:mod:`cryo_companion.models.registry`).
SPEC = register(ModelSpec(name="umc", config_cls=UMCConfig, model_cls=UMC,
                          example_batch=example_batch,
                          description="U-net Multi-task Cascade, Gubins et al.; SHREC 2020, 3.6"))
