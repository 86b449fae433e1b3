"""Benchmark one training step of the Table I network (Che et al. 2019) at batch 32, 40^3.

Prints milliseconds per step (forward + backward + SGD) for several numeric/layout options, so
the fastest option that leaves results unchanged can be chosen. Usage:

    cryo-companion bench train-step [--device cuda] [--iters 100] [--batch 32]
"""
from __future__ import annotations

import argparse
import time

import torch

from cryo_companion.models.dsrf3d import DSRF3DSegNet
from cryo_companion.papers.che2019.train import joint_loss


def step_time(device: torch.device, *, bf16: bool, channels_last: bool, compile_: bool,
              iters: int, batch: int) -> float:
    torch.manual_seed(0)
    model = DSRF3DSegNet().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    fwd = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=5e-3, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 1, 40, 40, 40, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    y = torch.randint(4, (batch,), device=device)
    m = torch.rand(batch, 40, 40, 40, device=device) > 0.8

    def one() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            o = fwd(x)
        loss, _, _ = joint_loss(o.log_probs.float(), o.mask_logits.float(), y, m, 0.15)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1e3 * (time.perf_counter() - t0) / iters


def add_args(p: argparse.ArgumentParser) -> None:
    """Options of ``cryo-companion bench train-step``."""
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default cuda when available)")
    p.add_argument("--iters", type=int, default=100, help="timed steps per option (default 100)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--compile", action="store_true", help="also try torch.compile")


def main(a: argparse.Namespace) -> int:
    """Time the options; 0 on success."""
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    opts = [(False, False, False), (False, True, False), (True, False, False), (True, True, False)]
    if a.compile:
        opts += [(True, True, True)]
    for bf16, cl, comp in opts:
        try:
            ms = step_time(dev, bf16=bf16, channels_last=cl, compile_=comp, iters=a.iters,
                           batch=a.batch)
            print(f"{dev.type} bf16={bf16!s:5} channels_last_3d={cl!s:5} compile={comp!s:5}: "
                  f"{ms:8.2f} ms/step", flush=True)
        except Exception as exc:  # report and go on: the point is the comparison
            print(f"{dev.type} bf16={bf16} channels_last_3d={cl} compile={comp}: failed ({exc})")
    return 0
