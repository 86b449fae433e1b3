"""DSM-Net and its subnets (DSM-Net paper, 2.1-2.3): one residual backbone, three task heads.

No author code was released; this is a reconstruction from the text. Every layer below is either
the paper's words or a choice marked *choice* (with the reason)::

    input (B, 1, D, D, D), standardised, D divisible by 8 (the paper: 40)
    backbone ("3D ResNet-9", Table 2: 1 + 2 + 3 x 2 = 9 convolutions)
      stem   Conv3d(1 -> 32, 3x3x3) + ReLU at D                  (*choice*: 32 channels, the first
             MaxPool3d(2, stride 2) -> D/2                         residual width, so the first
                                                                   shortcut is the identity)
      res1   residual block, 32 channels, at D/2
      down1  Conv3d(32 -> 64, 3x3x3, stride 2) + ReLU -> D/4      (*choice*: the stride-2
      res2   residual block, 64 channels, at D/4                   convolutions change the width,
      down2  Conv3d(64 -> 128, 3x3x3, stride 2) + ReLU -> D/8      so every shortcut is the
      res3   residual block, 128 channels, at D/8                  identity)
    classification subnet ("cls")
      global average pooling of res3 -> 128                       (*choice*: "3D average pooling
      Linear(128 -> 1024) + ReLU: the 1024 hidden units (features)  layer" read as global, as in
      Dropout(0.7) -> Linear(1024 -> C) logits (softmax: the class) ResNets)
    segmentation decoder (shared by "seg" and "rec")
      up1    ConvTranspose3d(128 -> 64, 3x3x3, stride 2) + ReLU -> D/4, + res2 (skip, added)
      dres1  residual block, 64 channels
      up2    ConvTranspose3d(64 -> 32, 3x3x3, stride 2) + ReLU -> D/2, + res1 (skip, added)
      dres2  residual block, 32 channels
      up3    ConvTranspose3d(32 -> 32, 3x3x3, stride 2) + ReLU -> D (*choice*: 32 channels)
    segmentation head ("seg"):  Conv3d(32 -> 2, 1x1x1) logits, channel 0 background, 1 target
    recovery head ("rec"):      Conv3d(32 -> 1, 1x1x1), linear: the recovered density

A residual block is He et al.'s basic block without normalisation: ``relu(x + conv(relu(conv
x)))`` with two 3x3x3 convolutions of the block's width (*choice*: the paper names no batch
normalisation and says every convolution is followed by a ReLU). The transposed convolutions
have padding 1 and output padding 1, so each exactly doubles the size. The skips are added
(*choice*: "skip connections ... are added to the correspondingly higher deconvolution
layers"; SSN3D-ED, which the decoder is adopted from, adds its skips too); there is no skip
at full resolution (the backbone has no residual block there). "All following convolution and
deconvolution layers are followed by a ReLU and their kernel size is 3x3x3 except the final
convolution layers of segmentation and structure recovery subnet" (2.1): the two 1x1x1 heads
are linear. Weights are initialised as Keras does by default (Glorot-uniform, zero biases),
the authors' framework (3.2).

The subnets of Tables 2-4 are the same network with heads switched off (:data:`VARIANTS`):
"cls" (Cls Subnet: backbone + classification), "seg" (Seg Subnet: backbone + decoder +
segmentation head), "cls+rec", "cls+seg" and "dsmnet" (all three). Recovery shares the
decoder with segmentation "except the final convolution layer" (2.3), so "cls+rec" keeps the
decoder with only the recovery head. Parameter counts (C = 22,
:func:`parameter_count_formula`): Cls 1,593,878; Seg 2,020,226; Cls+Rec 2,174,839; Cls+Seg
2,174,872; DSM-Net 2,174,905 (2,173,880 with C = 21, the unseen-structure experiment). The paper
prints none.

What the recovery head regresses is the caller's choice (the paper regresses the response of an
unsupervised averaging model; the book uses the noise-free density of the target,
``cryo_companion.papers.dsmnet``). :func:`multitask_loss` is the paper's objective (3.2):
categorical cross-entropy for classification and segmentation (mean over voxels), mean squared
error for recovery (mean over voxels, as Keras' ``mse``), weighted.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cryo_companion.models._config import check_head, config_fingerprint
from cryo_companion.models.registry import ModelSpec, register

__all__ = ["HEADS", "OUTPUT_KEYS", "SPEC", "VARIANTS", "VARIANT_NAMES", "WEIGHTS_FORMAT",
           "DSMNet", "DSMNetConfig", "ResidualBlock", "dsmnet", "example_batch", "load_weights",
           "multitask_loss", "parameter_count_formula", "save_weights"]

#: The task heads: classification, segmentation, structure recovery.
HEADS: tuple[str, ...] = ("cls", "seg", "rec")
#: The networks of Tables 2-4: variant -> its heads.
VARIANTS: dict[str, tuple[str, ...]] = {
    "cls": ("cls",), "seg": ("seg",), "cls+rec": ("cls", "rec"), "cls+seg": ("cls", "seg"),
    "dsmnet": ("cls", "seg", "rec")}
#: Their names in the paper's tables.
VARIANT_NAMES: dict[str, str] = {"cls": "Cls Subnet", "seg": "Seg Subnet",
                                 "cls+rec": "Cls+Rec Subnet", "cls+seg": "Cls+Seg Subnet",
                                 "dsmnet": "DSM-Net"}
#: What :meth:`DSMNet.forward` returns for each head (``features`` comes with ``cls``).
OUTPUT_KEYS: dict[str, tuple[str, ...]] = {"cls": ("class_logits", "features"),
                                           "seg": ("segmentation",), "rec": ("recovery",)}


@dataclass(frozen=True)
class DSMNetConfig:
    """Heads and sizes of one DSM-Net (sub)network.

    Attributes
    ----------
    heads : tuple of str
        The task heads, a non-empty subset of :data:`HEADS` (kept in that order).
    n_classes : int
        Classes of the classification head (22; 21 for the unseen-structure experiment).
    box : int
        Edge of the cubic input in voxels, divisible by 8.
    widths : tuple of int
        Channels of the three backbone residual blocks (the paper: 32, 64, 128); the stem
        has ``widths[0]`` channels.
    fc_width : int
        Hidden units of the classification subnet.
    dropout : float
        Fraction of the hidden units dropped while training.
    """

    heads: tuple[str, ...] = HEADS
    n_classes: int = 22
    box: int = 40
    widths: tuple[int, int, int] = (32, 64, 128)
    fc_width: int = 1024
    dropout: float = 0.7

    def __post_init__(self) -> None:
        """Refuse heads and sizes the network cannot have."""
        heads = tuple(self.heads)
        unknown = [h for h in heads if h not in HEADS]
        if not heads or unknown or len(set(heads)) != len(heads):
            raise ValueError(f"heads {list(heads)} must be a non-empty subset of "
                             f"{', '.join(HEADS)} without repeats")
        object.__setattr__(self, "heads", tuple(h for h in HEADS if h in heads))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.box < 8 or self.box % 8:
            raise ValueError(f"box {self.box} must be a positive multiple of 8 (three halvings "
                             "and three doublings), e.g. 40")
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise ValueError(f"widths must be three positive channel counts, got {self.widths}")
        check_head(self.n_classes, self.fc_width, self.dropout)

    @classmethod
    def variant(cls, name: str, **overrides: Any) -> DSMNetConfig:
        """Return the network ``name`` of the paper's tables.

        Parameters
        ----------
        name : str
            A key of :data:`VARIANTS` (``"cls"``, ``"seg"``, ``"cls+rec"``, ``"cls+seg"``,
            ``"dsmnet"``) or its table name (``"Cls+Seg Subnet"``, ``"DSM-Net"``);
            case-insensitive.
        **overrides : Any
            Other fields (``n_classes``, ``box``, ...).

        Returns
        -------
        DSMNetConfig
        """
        key = str(name).lower().replace(" subnet", "").replace("dsm-net", "dsmnet")
        if key not in VARIANTS:
            raise ValueError(f"unknown DSM-Net variant {name!r}; valid: {', '.join(VARIANTS)}")
        return cls(heads=VARIANTS[key], **overrides)

    @property
    def variant_key(self) -> str:
        """Return the key of :data:`VARIANTS` with these heads.

        ``("seg", "rec")`` and ``("rec",)`` are no table's network: they are named by their
        heads (``"seg+rec"``, ``"rec"``).
        """
        for k, v in VARIANTS.items():
            if v == self.heads:
                return k
        return "+".join(self.heads)

    @property
    def name(self) -> str:
        """The paper's name of the network (``"DSM-Net"``, ``"Cls Subnet"``, ...)."""
        return VARIANT_NAMES.get(self.variant_key, f"DSM-Net heads {'+'.join(self.heads)}")

    @property
    def decoder(self) -> bool:
        """True when the segmentation decoder is built (a ``seg`` or ``rec`` head)."""
        return "seg" in self.heads or "rec" in self.heads

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form (tuples as lists)."""
        d = asdict(self)
        d["heads"], d["widths"] = list(self.heads), list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DSMNetConfig:
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        d : Mapping
            A dictionary written by :meth:`to_dict`.

        Returns
        -------
        DSMNetConfig
        """
        kw = dict(d)
        for k in ("heads", "widths"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    def fingerprint(self) -> str:
        """Return the SHA-256 (16 hex digits) of the architecture: equal iff weights fit."""
        return config_fingerprint({"network": "dsmnet", **self.to_dict()})


def _conv(c_in: int, c_out: int, k: int) -> int:
    return k ** 3 * c_in * c_out + c_out


def parameter_count_formula(cfg: DSMNetConfig) -> int:
    """Trainable parameters of :class:`DSMNet` with ``cfg``, by hand (weights + biases).

    Written from the module docstring, independently of the module code, so that the tests
    check one against the other.

    Parameters
    ----------
    cfg : DSMNetConfig
        The network.

    Returns
    -------
    int
    """
    w1, w2, w3 = cfg.widths
    res = 2 * _conv(w1, w1, 3) + 2 * _conv(w2, w2, 3) + 2 * _conv(w3, w3, 3)
    n = _conv(1, w1, 3) + res + _conv(w1, w2, 3) + _conv(w2, w3, 3)
    if "cls" in cfg.heads:
        n += (w3 + 1) * cfg.fc_width + (cfg.fc_width + 1) * cfg.n_classes
    if cfg.decoder:
        n += _conv(w3, w2, 3) + 2 * _conv(w2, w2, 3) + _conv(w2, w1, 3) + 2 * _conv(w1, w1, 3)
        n += _conv(w1, w1, 3)
    if "seg" in cfg.heads:
        n += _conv(w1, 2, 1)
    if "rec" in cfg.heads:
        n += _conv(w1, 1, 1)
    return n


class ResidualBlock(nn.Module):
    """He et al.'s basic residual block without normalisation: ``relu(x + c2(relu(c1(x))))``.

    Parameters
    ----------
    channels : int
        Input and output channels (the shortcut is the identity).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block.

        Parameters
        ----------
        x : torch.Tensor
            `(B, channels, d, h, w)` features.

        Returns
        -------
        torch.Tensor
            Features of the same shape.
        """
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


def _up(c_in: int, c_out: int) -> nn.ConvTranspose3d:
    return nn.ConvTranspose3d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)


class DSMNet(nn.Module):
    """DSM-Net or one of its subnets (see the module docstring for the layers).

    Parameters
    ----------
    cfg : DSMNetConfig or None
        The network; default the full DSM-Net, 22 classes, 40³ boxes.
    class_names : sequence of str or None
        Names of the ``cfg.n_classes`` classes (kept with the weights).
    generator : torch.Generator or None
        CPU generator of the initial weights (same seed, same weights); None uses PyTorch's
        global generator.
    """

    def __init__(self, cfg: DSMNetConfig | None = None, class_names: Sequence[str] | None = None,
                 *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DSMNetConfig()
        c = self.cfg
        if class_names is not None and len(class_names) != c.n_classes:
            raise ValueError(f"{len(class_names)} class names for {c.n_classes} classes")
        self.class_names = (tuple(class_names) if class_names is not None
                            else tuple(f"class{i}" for i in range(c.n_classes)))
        w1, w2, w3 = c.widths
        self.stem = nn.Conv3d(1, w1, 3, padding=1)
        self.res1, self.res2, self.res3 = ResidualBlock(w1), ResidualBlock(w2), ResidualBlock(w3)
        self.down1 = nn.Conv3d(w1, w2, 3, stride=2, padding=1)
        self.down2 = nn.Conv3d(w2, w3, 3, stride=2, padding=1)
        self.fc: nn.Linear | None = None
        self.classifier: nn.Linear | None = None
        if "cls" in c.heads:
            self.fc = nn.Linear(w3, c.fc_width)
            self.classifier = nn.Linear(c.fc_width, c.n_classes)
        # only a classification head has dropout (a network without one draws no random
        # numbers, so its runs can share one vmapped step)
        self.dropout: nn.Module = nn.Dropout(c.dropout) if "cls" in c.heads else nn.Identity()
        self.decoder = nn.ModuleDict()
        if c.decoder:
            self.decoder.update({"up1": _up(w3, w2), "dres1": ResidualBlock(w2),
                                 "up2": _up(w2, w1), "dres2": ResidualBlock(w1),
                                 "up3": _up(w1, w1)})
        self.seg_head = nn.Conv3d(w1, 2, 1) if "seg" in c.heads else None
        self.rec_head = nn.Conv3d(w1, 1, 1) if "rec" in c.heads else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Keras' defaults: Glorot-uniform weights, zero biases.

        Parameters
        ----------
        generator : torch.Generator or None
            CPU generator of the weights (None: PyTorch's global generator).
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                assert m.bias is not None
                nn.init.zeros_(m.bias)

    def _check(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(1)
        D = self.cfg.box
        if x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[-3:]) != (D, D, D):
            raise ValueError(f"expected input (B, {D}, {D}, {D}) or (B, 1, {D}, {D}, {D}), "
                             f"got {tuple(x.shape)}")
        return x

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Classify, segment and recover a batch of subtomograms (the heads ``cfg`` has).

        Parameters
        ----------
        x : torch.Tensor
            `(B, D, D, D)` or `(B, 1, D, D, D)` float subtomograms, z-y-x, D = ``cfg.box``,
            standardised by the caller.

        Returns
        -------
        dict of torch.Tensor
            The keys of :data:`OUTPUT_KEYS` for the network's heads: ``class_logits`` `(B, C)`,
            ``features`` `(B, fc_width)` (the hidden units after their ReLU, before dropout),
            ``segmentation`` `(B, 2, D, D, D)` logits (channel 1 the target),
            ``recovery`` `(B, D, D, D)` the recovered density.
        """
        h = F.max_pool3d(F.relu(self.stem(self._check(x))), 2)
        r1 = self.res1(h)
        r2 = self.res2(F.relu(self.down1(r1)))
        r3 = self.res3(F.relu(self.down2(r2)))
        out: dict[str, Tensor] = {}
        if self.fc is not None and self.classifier is not None:
            feats = F.relu(self.fc(r3.mean(dim=(2, 3, 4))))
            out["features"] = feats
            out["class_logits"] = self.classifier(self.dropout(feats))
        if self.cfg.decoder:
            d = self.decoder
            u = d["dres1"](F.relu(d["up1"](r3)) + r2)
            u = d["dres2"](F.relu(d["up2"](u)) + r1)
            u = F.relu(d["up3"](u))
            if self.seg_head is not None:
                out["segmentation"] = self.seg_head(u)
            if self.rec_head is not None:
                out["recovery"] = self.rec_head(u)[:, 0]
        return out

    def n_parameters(self) -> int:
        """Count the trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> str:
        """One line: the network's name, heads, sizes and parameter count."""
        c = self.cfg
        heads = {"cls": f"classification (FC {c.fc_width}, dropout {c.dropout:g}, "
                        f"{c.n_classes} classes)",
                 "seg": "segmentation (2 channels)", "rec": "recovery (1 channel)"}
        return (f"{c.name}: 3D ResNet-9 backbone, residual widths {list(c.widths)}, "
                f"{c.box}^3 -> {c.box // 8}^3; heads: "
                f"{', '.join(heads[h] for h in c.heads)}; {self.n_parameters():,} parameters")


def dsmnet(variant: str = "dsmnet", seed: int | None = None, *,
           class_names: Sequence[str] | None = None, **overrides: Any) -> DSMNet:
    """Build the network ``variant`` of the paper's tables, initialised.

    Parameters
    ----------
    variant : str
        A key of :data:`VARIANTS` or a table name (:meth:`DSMNetConfig.variant`).
    seed : int or None
        Seed of the initial weights (same seed, same weights); None draws from PyTorch's
        global generator.
    class_names : sequence of str or None
        Names of the classes.
    **overrides : Any
        :class:`DSMNetConfig` fields (``n_classes``, ``box``, ``fc_width``, ...).

    Returns
    -------
    DSMNet
        The network, on the CPU, in training mode.
    """
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return DSMNet(DSMNetConfig.variant(variant, **overrides), class_names=class_names,
                  generator=g)


def multitask_loss(outputs: Mapping[str, Tensor], labels: Tensor | None = None,
                   masks: Tensor | None = None, density: Tensor | None = None, *,
                   weights: Mapping[str, float]) -> tuple[Tensor, dict[str, Tensor]]:
    """Compute the weighted objective of DSM-Net (3.2) for whichever heads ``outputs`` has.

    Parameters
    ----------
    outputs : Mapping of str to torch.Tensor
        What :meth:`DSMNet.forward` returned.
    labels : torch.Tensor or None
        `(B,)` int64 classes (needed with a ``class_logits`` output).
    masks : torch.Tensor or None
        `(B, D, D, D)` bool or 0/1 target masks (needed with ``segmentation``).
    density : torch.Tensor or None
        `(B, D, D, D)` float recovery targets (needed with ``recovery``).
    weights : Mapping of str to float
        Weight of each head's loss, keys ``"cls"``, ``"seg"``, ``"rec"`` for the heads present
        (the paper: 1, 10, 1).

    Returns
    -------
    tuple
        The total loss (a scalar tensor) and each head's unweighted loss (``{"cls": ...}``).

    Raises
    ------
    ValueError
        A head without its target or its weight, or a target of the wrong shape.
    """
    parts: dict[str, Tensor] = {}
    pairs = (("cls", "class_logits", labels), ("seg", "segmentation", masks),
             ("rec", "recovery", density))
    for head, key, target in pairs:
        if key not in outputs:
            continue
        if target is None or head not in weights:
            raise ValueError(f"the {head!r} head needs its target and a weight "
                             f"(weights given: {dict(weights)})")
        pred = outputs[key]
        want = tuple(pred.shape) if head == "rec" else (pred.shape[0], *pred.shape[2:])
        if tuple(target.shape) != want:
            raise ValueError(f"{head!r} target has shape {tuple(target.shape)}; expected {want}")
        if head == "rec":
            parts[head] = F.mse_loss(pred, target.to(pred.dtype))
        else:
            parts[head] = F.cross_entropy(pred, target.long())
    if not parts:
        raise ValueError(f"no head output among {sorted(outputs)}")
    total = sum(float(weights[h]) * v for h, v in parts.items())
    assert isinstance(total, Tensor)
    return total, parts


#: Format tag of the weights files written by :func:`save_weights`.
WEIGHTS_FORMAT = "cryo_companion.dsmnet/1"


def save_weights(model: DSMNet, path: str | os.PathLike, *,
                 preprocessing: Mapping[str, Any] | None = None,
                 training: Mapping[str, Any] | None = None) -> Path:
    """Write the weights with everything needed to use them, atomically.

    Parameters
    ----------
    model : DSMNet
        The trained network.
    path : str or os.PathLike
        Destination (``.pt``).
    preprocessing : Mapping or None
        How inputs were prepared (standardisation, contrast, voxel size, recovery scale).
    training : Mapping or None
        Training metadata (recipe, data set, seed, epochs).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from cryo_companion._io import atomic_path

    payload = {"format": WEIGHTS_FORMAT, "config": model.cfg.to_dict(),
               "fingerprint": model.cfg.fingerprint(), "class_names": list(model.class_names),
               "preprocessing": dict(preprocessing or {}), "training": dict(training or {}),
               "state_dict": {k: v.detach().float().cpu() for k, v in model.state_dict().items()}}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                 ) -> tuple[DSMNet, dict[str, Any]]:
    """Read a weights file of :func:`save_weights`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    map_location : str or torch.device
        Where the model goes.

    Returns
    -------
    tuple
        The model (evaluation mode) and the file's metadata (everything but the weights).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a DSM-Net weights file (other format, unreadable, or weights that do not fit the
        recorded architecture).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch's own message advises weights_only=False: not for us
        raise ValueError(f"{path}: not a cryo_companion weights file (torch.load could not "
                         f"read it: {type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        fmt = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: weights of another model (format {fmt!r}); expected "
                         f"{WEIGHTS_FORMAT!r}")
    try:
        cfg = DSMNetConfig.from_dict(payload["config"])
        if cfg.fingerprint() != payload.get("fingerprint"):
            raise ValueError(f"fingerprint {payload.get('fingerprint')} is not the "
                             f"configuration's {cfg.fingerprint()}")
        model = DSMNet(cfg, class_names=payload["class_names"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: the weights do not fit their recorded architecture "
                         f"({first})") from exc
    model.eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.to(map_location), meta


def example_batch(cfg: DSMNetConfig, n: int, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random inputs and targets of the right shapes for benchmarks and tests (not data).

    Parameters
    ----------
    cfg : DSMNetConfig
        The network (its box and classes).
    n : int
        Batch size.
    generator : torch.Generator
        Source of the draws; the tensors are made on its device.

    Returns
    -------
    tuple of torch.Tensor
        `(n, D, D, D)` float32 standard normal inputs, `(n,)` int64 class labels, `(n, D, D, D)`
        bool target masks (about 2 % of the voxels) and `(n, D, D, D)` float32 recovery targets
        (the masks as 0/1): the columns every DSM-Net run trains on, whichever heads it has.
    """
    dev = generator.device
    d = cfg.box
    x = torch.randn(n, d, d, d, generator=generator, device=dev)
    label = torch.randint(cfg.n_classes, (n,), generator=generator, device=dev)
    mask = torch.rand(n, d, d, d, generator=generator, device=dev) > 0.98
    return x, label, mask, mask.float()


#: The registry entry of DSM-Net (:mod:`cryo_companion.models.registry`); the default
#: configuration is the full network, 22 classes, 40³ boxes. It has dropout (the
#: classification head): its runs step by the loop, not vmapped.
SPEC = register(ModelSpec(name="dsmnet", config_cls=DSMNetConfig, model_cls=DSMNet,
                          example_batch=example_batch,
                          description="DSM-Net and its subnets (default: all three heads), "
                                      "DSM-Net paper 2.1-2.3"))
