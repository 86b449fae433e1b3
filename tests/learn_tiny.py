"""A tiny network, loss and batch source for the tests of cryo_companion.learn (any model works).

Class 1 when an 8^3 volume's mean is positive; a 3-D convolution, optional batch norm and
dropout, global average pooling and a linear head. A step takes milliseconds on one core.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cryo_companion.learn.batches import DrawnBatches
from cryo_companion.learn.fit import Job
from cryo_companion.models.registry import ModelSpec

BOX = 8


class Tiny(nn.Module):
    """Conv3d(1 -> 4) [-> BatchNorm3d] -> ReLU -> mean -> [Dropout] -> Linear(4 -> 2)."""

    def __init__(self, *, bn: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(1)
        h = F.relu(self.bn(self.conv(x))).mean((2, 3, 4))
        return self.head(self.drop(h))


def draw(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    x = torch.randn(n, BOX, BOX, BOX, generator=gen, device=gen.device)
    x = x + 0.5 * torch.randn(n, 1, 1, 1, generator=gen, device=gen.device)
    return x, (x.mean((1, 2, 3)) > 0).long()


def loss(out: Tensor, y: Tensor) -> dict[str, Tensor]:
    ce = F.cross_entropy(out, y)
    return {"loss": ce, "ce": ce}


def job(seed: int, *, out=None, bn: bool = False, dropout: float = 0.0, adam: bool = False,
        batch_size: int = 4, chunk: int = 1, validate: bool = True, name: str | None = None,
        device: torch.device | str = "cpu") -> Job:
    """One run on ``device``: seeded model and optimizer, its own generator, a validation hook."""
    device = torch.device(device)
    torch.manual_seed(seed)
    model = Tiny(bn=bn, dropout=dropout).to(device)
    opt = (torch.optim.Adam(model.parameters(), lr=1e-2) if adam else
           torch.optim.SGD(model.parameters(), lr=5e-2, momentum=0.9, nesterov=True))
    vx, vy = draw(16, torch.Generator(device=device).manual_seed(10_000 + seed))

    def val(m: nn.Module) -> dict[str, float]:
        o = m(vx)
        return {"loss": float(F.cross_entropy(o, vy)), "accuracy": float((o.argmax(1) == vy)
                                                                         .float().mean())}

    return Job(model=model, optimizer=opt, batches=DrawnBatches(draw, batch_size, chunk=chunk),
               generator=torch.Generator(device=device).manual_seed(seed), out=out,
               validate=val if validate else None, config={"seed": seed},
               name=name or f"seed {seed}")


@dataclass(frozen=True)
class TinyConfig:
    """Configuration of :class:`Tiny` for the registry (benchmark tests)."""

    bn: bool = False

    def to_dict(self) -> dict:
        return {"bn": self.bn}

    @classmethod
    def from_dict(cls, d: dict) -> TinyConfig:
        return cls(bn=bool(d["bn"]))

    def fingerprint(self) -> str:
        return f"tiny-bn{int(self.bn)}".ljust(16, "0")


class TinyNet(Tiny):
    """:class:`Tiny` built the registry's way, ``TinyNet(config, class_names=None)``."""

    def __init__(self, cfg: TinyConfig | None = None, class_names=None) -> None:
        super().__init__(bn=(cfg or TinyConfig()).bn)


def tiny_example(cfg: TinyConfig, n: int, gen: torch.Generator):
    return draw(n, gen)


TINY_SPEC = ModelSpec(name="tiny", config_cls=TinyConfig, model_cls=TinyNet,
                      example_batch=tiny_example, description="test network")
