"""SSN3D-v1, SSN3D-v2 and SSN3D-ED (Liu et al., ICIP 2018, sections 2.1 and 2.2): one family.

The three networks share an encoder and differ by three switches of :class:`SSN3DConfig`::

    input (B, 1, D, D, D), D divisible by 8 (the paper: 40)
    encoder: 3 blocks of two Conv3d(3x3x3, padding 1) + ReLU and MaxPool3d(2)
        widths 32, 32 | 64, 64 | 128, 128; spatial D -> D/2 (pool1) -> D/4 (pool2) -> D/8 (pool3)
    fc (v1, v2): two fully convolutional Conv3d(1x1x1) 1024 + ReLU + Dropout(0.7) on pool3
    decoder, 3 stages from D/8 back to D, each ending in a nearest-neighbour UpSampling3D(2):
      "score" decoder (v1, v2; FCN):  1x1x1 score conv -> 2 channels at D/8 (linear), then
          at D/4 and D/2 the upsampled scores are merged with the encoder:
            skips=True  (v2): + Conv3d(1x1x1)(pool2 resp. pool1) -> 2 (FCN skip, added)
            skips=False (v1): a Conv3d(1x1x1) 2 -> 2 of the upsampled scores instead
      "features" decoder (ED): before each upsampling a Conv3d(1x1x1) + ReLU to the encoder's
          width at that depth (128, 64, 32); at D/4 and D/2 the skip Conv3d(1x1x1)(pool2 resp.
          pool1) to the same width is added; after the last upsampling Conv3d(1x1x1) 32 -> 2
    output: (B, 2, D, D, D) logits, channel 0 background, channel 1 target (softmax over the
        channels gives the paper's per-voxel probabilities)

Parameter counts (:func:`parameter_count_formula`, checked against the paper in the tests):
SSN3D-v1 2,042,158, SSN3D-v2 2,042,342, SSN3D-ED 895,746, as in Table 2.

Where the paper's prose disagrees with its counts, the counts win (they are what was trained):

* 2.1 describes the upsampling blocks as "two 3x3x3 convolution layers" followed by upsampling,
  and 2.1 says the v2 skip convolutions after the pooling layers are 3x3x3. With any 3x3x3
  convolution in the decoder the counts cannot be reached; every decoder convolution is 1x1x1,
  as in the authors' released Keras code (``segmentation/model.py`` of xulabs/projects:
  ``FCN1``, ``FCN8``, ``FCN_ed``).
* v2 = encoder + fc + score (1024 -> 2: 2,050) + skip scores of pool2 (64 -> 2: 130) and pool1
  (32 -> 2: 66): 858,400 + 1,181,696 + 2,246 = 2,042,342, exactly the released ``FCN8``.
* v1 must then have 184 parameters fewer than v2: 2,050 + 2 x 6, i.e. exactly two 2 -> 2
  convolutions besides the score conv. The released ``FCN1`` has three on its output path
  (and a fourth unused one), 2,042,164; we place the two where v2 merges its skips, so that v1
  and v2 differ "only in the upsampling phase" (2.1).
* ED = encoder + 1x1x1 convs 128->128, 64->128 (skip), 128->64, 32->64 (skip), 64->32 and the
  output 32->2: 858,400 + 37,346 = 895,746, exactly the released ``FCN_ed``. The skip
  convolutions are linear and the pre-upsampling ones have a ReLU, as there.

Other choices from the released code: Keras' default initialisation (Glorot-uniform weights,
zero biases) rather than PyTorch's; dropout as Keras ``Dropout(0.7)`` (a fraction 0.7 of the
units zeroed during training); max pooling of even sizes only (Keras ``padding="same"`` equals
floor mode when the size is even, hence the box divisible by 8).

The family is registered as ``"ssn3d"`` (:mod:`cryo_companion.models.registry`); its default
configuration is SSN3D-ED on 40³ boxes. The output channels are named ``("background",
"target")``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cryo_companion.models._config import check_head, config_fingerprint
from cryo_companion.models.registry import ModelSpec, register

__all__ = ["CHANNELS", "DECODERS", "ENCODER_WIDTHS", "PAPER_PARAMETER_COUNTS", "SPEC", "SSN3D",
           "VARIANTS", "SSN3DConfig", "example_batch", "parameter_count_formula", "ssn3d"]

#: Names of the two output channels, in order.
CHANNELS = ("background", "target")

#: Output channels of the six encoder convolutions (two per block, three blocks).
ENCODER_WIDTHS: tuple[int, ...] = (32, 32, 64, 64, 128, 128)
#: Decoder kinds: FCN class scores ("score") or encoder-width features ("features").
DECODERS = ("score", "features")
#: Flags of the paper's three networks.
VARIANTS: dict[str, dict[str, object]] = {
    "v1": {"skips": False, "fc": True, "decoder": "score"},
    "v2": {"skips": True, "fc": True, "decoder": "score"},
    "ed": {"skips": True, "fc": False, "decoder": "features"},
}
#: Liu et al. 2018, Table 2, "Capacity" column.
PAPER_PARAMETER_COUNTS: dict[str, int] = {"v1": 2_042_158, "v2": 2_042_342, "ed": 895_746}


@dataclass(frozen=True)
class SSN3DConfig:
    """Switches and sizes of one SSN3D network.

    Attributes
    ----------
    skips : bool
        Add 1x1x1 convolutions of pool2 and pool1 to the upsampled decoder (FCN skips).
    fc : bool
        Two 1x1x1 fully convolutional layers of ``fc_width`` channels with dropout on pool3.
    decoder : str
        ``"score"`` (the decoder carries ``n_classes`` score channels, FCN) or ``"features"``
        (it carries the encoder's widths 128, 64, 32, encoder-decoder).
    box : int
        Edge of the cubic input in voxels, divisible by 8.
    n_classes : int
        Output channels (2: background and target).
    fc_width : int
        Channels of the fully convolutional layers.
    dropout : float
        Fraction of units dropped after each fully convolutional layer while training.
    """

    skips: bool = True
    fc: bool = False
    decoder: str = "features"
    box: int = 40
    n_classes: int = 2
    fc_width: int = 1024
    dropout: float = 0.7

    def __post_init__(self) -> None:
        """Refuse switches and sizes the network cannot have."""
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder {self.decoder!r} is unknown; valid: {', '.join(DECODERS)}")
        if self.box < 8 or self.box % 8:
            raise ValueError(f"box {self.box} must be a positive multiple of 8 (three 2x "
                             "poolings and upsamplings), e.g. 40")
        check_head(self.n_classes, self.fc_width, self.dropout)

    @classmethod
    def variant(cls, name: str, **overrides: object) -> SSN3DConfig:
        """Return the paper's network ``name`` (``"v1"``, ``"v2"`` or ``"ed"``).

        Parameters
        ----------
        name : str
            ``"v1"`` (SSN3D-v1), ``"v2"`` (SSN3D-v2) or ``"ed"`` (SSN3D-ED); case-insensitive,
            an ``"SSN3D-"`` prefix is accepted.
        **overrides : object
            Other fields (``box``, ``n_classes``, ...).

        Returns
        -------
        SSN3DConfig
        """
        key = str(name).lower().removeprefix("ssn3d-").removeprefix("ssn3d_")
        if key not in VARIANTS:
            raise ValueError(f"unknown SSN3D variant {name!r}; valid: {', '.join(VARIANTS)}")
        return cls(**{**VARIANTS[key], **overrides})  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        """``"SSN3D-v1"``, ``"SSN3D-v2"``, ``"SSN3D-ED"`` or a description of other switches."""
        flags = {"skips": self.skips, "fc": self.fc, "decoder": self.decoder}
        for key, v in VARIANTS.items():
            if v == flags:
                return f"SSN3D-{key.upper() if key == 'ed' else key}"
        return f"SSN3D(skips={self.skips}, fc={self.fc}, decoder={self.decoder})"

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SSN3DConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error).

        Parameters
        ----------
        d : dict
            A dictionary written by :meth:`to_dict`.

        Returns
        -------
        SSN3DConfig
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SSN3D configuration keys {unknown}; valid: {sorted(known)}")
        return cls(**d)

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the architecture: equal iff the weights are compatible.

        The dropout rate is not part of it (it has no weights).

        Returns
        -------
        str
        """
        d = {k: v for k, v in self.to_dict().items() if k != "dropout"}
        return config_fingerprint(d)


def _conv_params(c_in: int, c_out: int, k: int) -> int:
    return k ** 3 * c_in * c_out + c_out


def parameter_count_formula(cfg: SSN3DConfig) -> int:
    """Trainable parameters of :class:`SSN3D` with ``cfg``, by hand (weights + biases).

    Written from the module docstring, independently of the module code, so that the tests
    check one against the other and both against Table 2.

    Parameters
    ----------
    cfg : SSN3DConfig
        The network.

    Returns
    -------
    int
    """
    c = (1, *ENCODER_WIDTHS)
    n = sum(_conv_params(c[i], c[i + 1], 3) for i in range(6))
    k = cfg.n_classes
    top = ENCODER_WIDTHS[-1]
    if cfg.fc:
        n += _conv_params(top, cfg.fc_width, 1) + _conv_params(cfg.fc_width, cfg.fc_width, 1)
        top = cfg.fc_width
    pools = (ENCODER_WIDTHS[3], ENCODER_WIDTHS[1])        # pool2 (64), pool1 (32)
    if cfg.decoder == "score":
        n += _conv_params(top, k, 1)
        for p in pools:
            n += _conv_params(p, k, 1) if cfg.skips else _conv_params(k, k, 1)
        return n
    widths = (ENCODER_WIDTHS[5], ENCODER_WIDTHS[3], ENCODER_WIDTHS[1])   # 128, 64, 32
    prev = top
    for i, w in enumerate(widths):
        n += _conv_params(prev, w, 1)
        if i < 2 and cfg.skips:
            n += _conv_params(pools[i], w, 1)
        prev = w
    return n + _conv_params(prev, k, 1)


def _conv1(c_in: int, c_out: int) -> nn.Conv3d:
    return nn.Conv3d(c_in, c_out, kernel_size=1)


class SSN3D(nn.Module):
    """The SSN3D family (see the module docstring for the layers of each switch).

    Parameters
    ----------
    cfg : SSN3DConfig or None
        The network; default SSN3D-ED on 40³ boxes (:meth:`SSN3DConfig.variant` gives the
        paper's three).
    class_names : sequence of str or None
        Names of the output channels (default :data:`CHANNELS`, background and target).
    generator : torch.Generator or None
        CPU generator of the initial weights (same seed, same weights); None uses PyTorch's
        global generator.
    """

    def __init__(self, cfg: SSN3DConfig | None = None,
                 class_names: Sequence[str] | None = None, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg or SSN3DConfig()
        if class_names is None:
            class_names = CHANNELS if self.cfg.n_classes == 2 else tuple(
                f"class{i}" for i in range(self.cfg.n_classes))
        if len(class_names) != self.cfg.n_classes:
            raise ValueError(f"{len(class_names)} channel names {list(class_names)} for "
                             f"{self.cfg.n_classes} output channels")
        self.class_names = tuple(class_names)
        c = (1, *ENCODER_WIDTHS)
        self.encoder = nn.ModuleList(nn.Conv3d(c[i], c[i + 1], 3, padding=1) for i in range(6))
        top = ENCODER_WIDTHS[-1]
        self.fc = nn.ModuleList()
        if self.cfg.fc:
            self.fc.extend([_conv1(top, self.cfg.fc_width),
                            _conv1(self.cfg.fc_width, self.cfg.fc_width)])
            top = self.cfg.fc_width
        # no dropout module without the fc layers (ED), so that N runs can share a vmapped step
        self.dropout = nn.Dropout(self.cfg.dropout) if self.cfg.fc else nn.Identity()
        k = self.cfg.n_classes
        pools = (ENCODER_WIDTHS[3], ENCODER_WIDTHS[1])
        if self.cfg.decoder == "score":
            widths: tuple[int, ...] = (k, k, k)
            self.pre = nn.ModuleList([_conv1(top, k)])
        else:
            widths = (ENCODER_WIDTHS[5], ENCODER_WIDTHS[3], ENCODER_WIDTHS[1])
            self.pre = nn.ModuleList([_conv1(top, widths[0]), _conv1(widths[0], widths[1]),
                                      _conv1(widths[1], widths[2])])
        # merge at D/4 and D/2: skip score of pool2 / pool1, or (v1) a conv of the scores
        if self.cfg.skips:
            self.merge = nn.ModuleList(_conv1(p, w) for p, w in zip(pools, widths))
        elif self.cfg.decoder == "score":
            self.merge = nn.ModuleList(_conv1(k, k) for _ in pools)
        else:
            self.merge = nn.ModuleList()
        self.head = _conv1(widths[2], k) if self.cfg.decoder == "features" else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Keras' defaults, as the authors trained: Glorot-uniform weights, zero biases.

        Parameters
        ----------
        generator : torch.Generator or None
            CPU generator of the weights (None: PyTorch's global generator).
        """
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                assert m.bias is not None
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Segment a batch of subtomograms.

        Parameters
        ----------
        x : torch.Tensor
            `(B, D, D, D)` or `(B, 1, D, D, D)` float subtomograms, z-y-x, D = ``cfg.box``
            (standardised by the caller).

        Returns
        -------
        torch.Tensor
            `(B, n_classes, D, D, D)` logits; channel 1 is the target, 0 the background.
        """
        if x.dim() == 4:
            x = x.unsqueeze(1)
        D = self.cfg.box
        if x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[-3:]) != (D, D, D):
            raise ValueError(f"expected input (B, {D}, {D}, {D}) or (B, 1, {D}, {D}, {D}), "
                             f"got {tuple(x.shape)}")
        h = x
        pooled = []
        for i, conv in enumerate(self.encoder):
            h = F.relu(conv(h))
            if i % 2 == 1:
                h = F.max_pool3d(h, 2)
                pooled.append(h)                      # pool1 (D/2), pool2 (D/4), pool3 (D/8)
        for fc in self.fc:
            h = self.dropout(F.relu(fc(h)))
        skips = (pooled[1], pooled[0])
        features = self.cfg.decoder == "features"
        for stage in range(3):
            if stage < len(self.pre):
                h = self.pre[stage](h)
                if features:
                    h = F.relu(h)
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            if stage < 2 and len(self.merge):
                m = self.merge[stage]
                h = h + m(skips[stage]) if self.cfg.skips else m(h)
        return self.head(h) if self.head is not None else h

    def n_parameters(self) -> int:
        """Count the trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> str:
        """One line: the network's name, switches, box and parameter count."""
        c = self.cfg
        return (f"{c.name}: encoder {list(ENCODER_WIDTHS)} (3x3x3, 3 poolings, {c.box} -> "
                f"{c.box // 8}), fc {'2 x ' + str(c.fc_width) if c.fc else 'none'}, "
                f"{c.decoder} decoder, skips {'on' if c.skips else 'off'}, "
                f"{c.n_classes} output channels; {self.n_parameters():,} parameters")


def ssn3d(variant: str = "ed", seed: int | None = None, **overrides: object) -> SSN3D:
    """Build the paper's network ``variant`` (``"v1"``, ``"v2"``, ``"ed"``), initialised.

    Parameters
    ----------
    variant : str
        ``"v1"``, ``"v2"`` or ``"ed"``.
    seed : int or None
        Seed of the initial weights (same seed, same weights); None draws from PyTorch's
        global generator.
    **overrides : object
        :class:`SSN3DConfig` fields (``box``, ``n_classes``, ``dropout``).

    Returns
    -------
    SSN3D
        The network, on the CPU.
    """
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return SSN3D(SSN3DConfig.variant(variant, **overrides), generator=g)


def example_batch(cfg: SSN3DConfig, n: int, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """Random inputs and targets of the right shapes for benchmarks and tests (not data).

    Parameters
    ----------
    cfg : SSN3DConfig
        The network (its box).
    n : int
        Batch size.
    generator : torch.Generator
        Source of the draws; the tensors are made on its device.

    Returns
    -------
    tuple of torch.Tensor
        `(n, D, D, D)` float32 standard normal inputs, `(n,)` int64 class labels (unused by
        the loss; a data set's batches carry them) and `(n, D, D, D)` bool target masks
        (about 2 % of the voxels set, SSN3D's target fraction).
    """
    dev = generator.device
    d = cfg.box
    x = torch.randn(n, d, d, d, generator=generator, device=dev)
    label = torch.randint(22, (n,), generator=generator, device=dev)
    mask = torch.rand(n, d, d, d, generator=generator, device=dev) > 0.98
    return x, label, mask


#: The registry entry of the SSN3D family (default: SSN3D-ED).
SPEC = register(ModelSpec(name="ssn3d", config_cls=SSN3DConfig, model_cls=SSN3D,
                          example_batch=example_batch,
                          description="SSN3D-v1/v2/ED, Liu et al. 2018, 2.1-2.2 and Fig. 2"))
