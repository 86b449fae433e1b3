"""The classifier + segmenter of Che et al. 2019 (section III-C).

A DSRF3D-v2 style encoder with a U-Net decoder.

Architecture (the paper gives the layer structure, not the widths; the widths are ours)::

    input (B, 1, 40, 40, 40), standardised
    encoder, 5 stacks of Conv3d(3x3x3, padding 1) -> ReLU -> MaxPool3d(2, floor mode)
        widths 16, 32, 64, 64, 128
        spatial 40 -> 20 -> 10 -> 5 -> 2 -> 1  (floor mode: at 5 -> 2 the last row of each axis,
        the outermost 8 voxels of the 40^3 box, does not reach the classifier)
    classifier: flatten (128 * 1^3) -> FC 128 -> ReLU -> FC 128 -> ReLU -> FC K -> log-softmax
    decoder (U-Net), 4 stacks of ConvTranspose3d(2, stride 2) -> concat skip -> Conv3d(3x3x3)
        -> ReLU, starting from the 5th conv's output (2^3, before its pooling):
        2 -> 5 (skip: conv 4, 64 ch), 5 -> 10 (conv 3, 64 ch), 10 -> 20 (conv 2, 32 ch),
        20 -> 40 (conv 1, 16 ch); the transposed convolution is given the skip's size as
        ``output_size`` (2 -> 5 uses output padding 1), so the 4 stacks return exactly to 40^3
    head: Conv3d(1x1x1) 16 -> K mask logits, one mask per class

With K = 4 classes the network has 1,065,864 parameters (4.3 MB in float32); see
:func:`parameter_count_formula` for the closed form, which the tests check against PyTorch.

Any cubic box of at least 32 voxels works (the 5 poolings need 2^5); the FC input size follows
the box (1^3 for boxes 32 to 63).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cryo_companion.models._config import config_fingerprint
from cryo_companion.models.blocks import UNetUp, count_parameters
from cryo_companion.models.registry import ModelSpec, register

__all__ = [
    "CHE2019_CLASSES",
    "DEFAULT_PREPROCESSING",
    "SPEC",
    "WEIGHTS_FORMAT",
    "DSRF3DConfig",
    "DSRF3DSegNet",
    "ModelOutput",
    "encoder_sizes",
    "example_batch",
    "load_weights",
    "parameter_count_formula",
    "save_weights",
]

#: Class order of the structure set "che2019" (structures.templates).
CHE2019_CLASSES: tuple[str, ...] = ("ribosome", "membrane", "TRiC", "proteasome")


@dataclass(frozen=True)
class DSRF3DConfig:
    """Hyper-parameters of :class:`DSRF3DSegNet` (what the architecture fingerprint hashes).

    Attributes
    ----------
    n_classes : number of classes K (one mask per class).
    box : edge of the cubic input in voxels (>= 32).
    enc_widths : output channels of the 5 encoder convolutions.
    fc_widths : widths of the two hidden fully connected layers (the third outputs K).
    """

    n_classes: int = 4
    box: int = 40
    enc_widths: tuple[int, ...] = (16, 32, 64, 64, 128)
    fc_widths: tuple[int, ...] = (128, 128)
    name: str = field(default="che2019-dsrf3d-unet", compare=True)

    def __post_init__(self) -> None:
        """Refuse fewer than two classes."""
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        if len(self.enc_widths) != 5:
            raise ValueError(f"enc_widths must have 5 entries (5 stacks, III-C), got "
                             f"{self.enc_widths}")
        if len(self.fc_widths) != 2:
            raise ValueError(f"fc_widths must have 2 entries (3 FC layers, III-C), got "
                             f"{self.fc_widths}")
        if self.box < 32:
            raise ValueError(f"box {self.box} is too small: the 5 max-poolings need >= 32 voxels")

    def to_dict(self) -> dict:
        """JSON-able form (tuples as lists)."""
        d = asdict(self)
        d["enc_widths"] = list(self.enc_widths)
        d["fc_widths"] = list(self.fc_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DSRF3DConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(n_classes=int(d["n_classes"]), box=int(d["box"]),
                   enc_widths=tuple(int(w) for w in d["enc_widths"]),
                   fc_widths=tuple(int(w) for w in d["fc_widths"]), name=str(d["name"]))

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the architecture: equal iff the weights are compatible."""
        return config_fingerprint(self.to_dict())


def encoder_sizes(box: int) -> list[int]:
    """Spatial edge after each of the 5 poolings (floor mode), e.g. 40 -> [20, 10, 5, 2, 1]."""
    sizes, s = [], box
    for _ in range(5):
        s = s // 2
        sizes.append(s)
    return sizes


def parameter_count_formula(cfg: DSRF3DConfig) -> int:
    """Count the trainable parameters of :class:`DSRF3DSegNet` by hand (weights + biases).

    Written independently of the module code so the tests can check one against the other.
    """
    k = cfg.n_classes
    c = [1, *cfg.enc_widths]
    n = sum(27 * c[i] * c[i + 1] + c[i + 1] for i in range(5))           # encoder convs
    flat = cfg.enc_widths[-1] * encoder_sizes(cfg.box)[-1] ** 3
    f = [flat, *cfg.fc_widths, k]
    n += sum(f[i] * f[i + 1] + f[i + 1] for i in range(3))               # 3 FC layers
    prev = cfg.enc_widths[4]
    for skip in (cfg.enc_widths[3], cfg.enc_widths[2], cfg.enc_widths[1], cfg.enc_widths[0]):
        n += 8 * prev * skip + skip                                        # transposed conv 2^3
        n += 27 * (2 * skip) * skip + skip                                 # conv after concat
        prev = skip
    n += prev * k + k                                                      # 1x1x1 head
    return n


@dataclass
class ModelOutput:
    """Output of :class:`DSRF3DSegNet`.

    Attributes
    ----------
    log_probs : (B, K) log-softmax class scores.
    mask_logits : (B, K, D, D, D) one mask logit volume per class (sigmoid gives probabilities).
    """

    log_probs: Tensor
    mask_logits: Tensor


class DSRF3DSegNet(nn.Module):
    """Joint classifier and per-class segmenter of Che et al. 2019, III-C (see module docstring).

    Parameters
    ----------
    cfg : architecture; default: 4 classes, 40^3 box, widths (16, 32, 64, 64, 128), FC 128, 128.
    class_names : optional names of the K classes (stored with the weights).
    """

    def __init__(self, cfg: DSRF3DConfig | None = None,
                 class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DSRF3DConfig()
        if class_names is not None and len(class_names) != self.cfg.n_classes:
            raise ValueError(f"{len(class_names)} class names for {self.cfg.n_classes} classes")
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            f"class{i}" for i in range(self.cfg.n_classes))
        c = [1, *self.cfg.enc_widths]
        self.enc = nn.ModuleList(nn.Conv3d(c[i], c[i + 1], 3, padding=1) for i in range(5))
        flat = self.cfg.enc_widths[-1] * encoder_sizes(self.cfg.box)[-1] ** 3
        f = [flat, *self.cfg.fc_widths, self.cfg.n_classes]
        self.fc = nn.ModuleList(nn.Linear(f[i], f[i + 1]) for i in range(3))
        w = self.cfg.enc_widths
        self.dec = nn.ModuleList([UNetUp(w[4], w[3]), UNetUp(w[3], w[2]), UNetUp(w[2], w[1]),
                                  UNetUp(w[1], w[0])])
        self.head = nn.Conv3d(w[0], self.cfg.n_classes, kernel_size=1)

    def forward(self, x: Tensor) -> ModelOutput:
        """Classify and segment a batch.

        Parameters
        ----------
        x : torch.Tensor
            `(B, D, D, D)` or `(B, 1, D, D, D)` standardised subtomograms, z-y-x,
            ``D = cfg.box``.

        Returns
        -------
        ModelOutput
            ``log_probs`` `(B, K)` class log-probabilities and ``mask_logits``
            `(B, K, D, D, D)` per-voxel class logits.

        Raises
        ------
        ValueError
            If ``x`` is not of one of the two shapes.
        """
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[-3:]) != (self.cfg.box,) * 3:
            raise ValueError(f"expected input (B, {self.cfg.box}, {self.cfg.box}, {self.cfg.box})"
                             f" or (B, 1, ...), got {tuple(x.shape)}")
        skips = []
        h = x
        for conv in self.enc:
            h = F.relu(conv(h))
            skips.append(h)                      # pre-pool features: 40, 20, 10, 5, 2
            h = F.max_pool3d(h, 2)               # floor mode: 40 -> 20 -> 10 -> 5 -> 2 -> 1
        z = h.flatten(1)
        z = F.relu(self.fc[0](z))
        z = F.relu(self.fc[1](z))
        log_probs = F.log_softmax(self.fc[2](z), dim=1)
        d = skips[4]
        for up, skip in zip(self.dec, (skips[3], skips[2], skips[1], skips[0])):
            d = up(d, skip)
        return ModelOutput(log_probs=log_probs, mask_logits=self.head(d))

    def n_parameters(self) -> int:
        """Return the number of trainable parameters."""
        return count_parameters(self)

    def describe(self) -> str:
        """One paragraph: widths, sizes and parameter count."""
        c = self.cfg
        return (f"DSRF3D-v2 encoder widths {list(c.enc_widths)} (spatial {c.box} -> "
                f"{' -> '.join(map(str, encoder_sizes(c.box)))}), FC {list(c.fc_widths)} -> "
                f"{c.n_classes}, U-Net decoder widths {list(c.enc_widths[3::-1])} back to "
                f"{c.box}^3, 1x1x1 head -> {c.n_classes} masks; "
                f"{self.n_parameters():,} parameters")


#: Format tag of the weights files written by :func:`save_weights`.
WEIGHTS_FORMAT = "cryo_companion.dsrf3d-segnet/1"

#: Test-time preprocessing of Che et al. 2019, IV-B, as implemented in ``evaluate``: one global
#: mean/std over the whole set, then a Gaussian filter of ``gaussian_sigma_vox`` voxels.
DEFAULT_PREPROCESSING: dict = {"standardize": "global", "gaussian_sigma_vox": 1.0,
                               "voxel_size_A": 13.68, "contrast": "bright"}


def save_weights(model: DSRF3DSegNet, path: str | os.PathLike, *,
                 preprocessing: dict | None = None, training: dict | None = None,
                 threshold: float = 0.5) -> Path:
    """Write the weights with everything needed to use them, atomically.

    The file (``torch.save`` of a dict) holds the format tag, the architecture configuration and
    its fingerprint, the class names, the preprocessing, the mask threshold, training metadata
    and the float32 state dict.
    """
    from cryo_companion._io import atomic_path

    payload = {
        "format": WEIGHTS_FORMAT,
        "config": model.cfg.to_dict(),
        "fingerprint": model.cfg.fingerprint(),
        "class_names": list(model.class_names),
        "preprocessing": dict(preprocessing or DEFAULT_PREPROCESSING),
        "threshold": float(threshold),
        "training": dict(training or {}),
        "state_dict": {k: v.detach().float().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                 ) -> tuple[DSRF3DSegNet, dict]:
    """Read a weights file of :func:`save_weights`; return (model in eval mode, metadata).

    Raises
    ------
    FileNotFoundError : no such file.
    ValueError : not a weights file of this model (other format, other architecture, or a
        state dict that does not match its fingerprint).
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
        cfg = DSRF3DConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable architecture configuration ({exc})") from exc
    if cfg.fingerprint() != payload.get("fingerprint"):
        raise ValueError(f"{path}: architecture fingerprint {payload.get('fingerprint')} does "
                         f"not match its configuration ({cfg.fingerprint()})")
    model = DSRF3DSegNet(cfg, class_names=payload["class_names"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: state dict does not fit architecture {cfg.fingerprint()}: "
                         f"{str(exc).splitlines()[0]}") from exc
    model.eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.to(map_location), meta


def example_batch(cfg: DSRF3DConfig, n: int, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """Random inputs and targets of the right shapes for benchmarks and tests (not data).

    Parameters
    ----------
    cfg : DSRF3DConfig
        Architecture (box and number of classes).
    n : int
        Batch size.
    generator : torch.Generator
        Source of the draws; the tensors are made on its device.

    Returns
    -------
    tuple of torch.Tensor
        `(n, D, D, D)` float32 standard normal inputs, `(n,)` int64 labels uniform in
        ``[0, K)``, `(n, D, D, D)` bool target masks (about a fifth of the voxels set).
    """
    dev = generator.device
    d = cfg.box
    x = torch.randn(n, d, d, d, generator=generator, device=dev)
    label = torch.randint(cfg.n_classes, (n,), generator=generator, device=dev)
    mask = torch.rand(n, d, d, d, generator=generator, device=dev) > 0.8
    return x, label, mask


#: The registry entry of the Table I network (:mod:`cryo_companion.models.registry`).
SPEC = register(ModelSpec(name="dsrf3d", config_cls=DSRF3DConfig, model_cls=DSRF3DSegNet,
                          example_batch=example_batch,
                          description="DSRF3D-v2 classifier + U-Net segmenter, Che et al. 2019, "
                                      "III-C"))
