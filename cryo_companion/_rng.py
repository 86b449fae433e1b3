"""Random draws shared by the simulators: complex standard normals, in parallel streams on the CPU.

A CPU ``torch.Generator`` is one Mersenne Twister, so one ``torch.randn`` call runs on one core
however many the process has; for the simulator's noise (about 17,000 complex numbers per 40³
subtomogram) that was the largest serial step. :func:`randn_complex` therefore splits a CPU batch
into :data:`CPU_STREAMS` fixed blocks of rows, each drawn from its own generator seeded from the
caller's generator, and draws them concurrently (torch releases the GIL). The split depends
neither on the machine nor on ``torch.get_num_threads()`` (with one thread the streams are drawn
one after the other), so a seed gives the same numbers everywhere. On CUDA the generator is already
parallel (Philox) and is used directly.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

from cryo_companion.devices import DeviceLike

__all__ = ["CPU_STREAMS", "randn_complex"]

#: Independent generators a CPU batch of :func:`randn_complex` is drawn from.
CPU_STREAMS = 2

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _executor() -> ThreadPoolExecutor:
    """Return the one worker thread's pool, made again after a fork.

    A forked child inherits the pool object but not its thread.
    """
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=CPU_STREAMS - 1,
                                   thread_name_prefix="cryo_companion_rng")
        _pool_pid = os.getpid()
    return _pool


def randn_complex(n: int, m: int, generator: torch.Generator | None = None,
                  device: DeviceLike = None) -> Tensor:
    """Draw ``(n, m)`` complex standard normals (real and imaginary parts N(0, 1/2), E|z|² = 1).

    On the CPU, consecutive blocks of ``⌈n / CPU_STREAMS⌉`` rows come from their own generators,
    seeded by 63-bit integers drawn from ``generator`` (the global generator if None), and are
    drawn concurrently; on CUDA, and for ``n < CPU_STREAMS``, from ``generator`` directly. Same
    generator state, same numbers.

    Parameters
    ----------
    n : int
        Number of rows (the batch).
    m : int
        Number of values per row.
    generator : torch.Generator or None
        Source of randomness (None: the global generator); on CUDA it must live on ``device``.
    device : DeviceLike
        Where the numbers are made (None: the generator's device, else the CPU).

    Returns
    -------
    torch.Tensor
        `(n, m)` complex64 tensor on ``device``.
    """
    device = torch.device(device) if device is not None else (
        generator.device if generator is not None else torch.device("cpu"))
    if device.type != "cpu" or n < CPU_STREAMS:
        return torch.randn(n, m, dtype=torch.complex64, device=device, generator=generator)
    seeds = torch.randint(0, 2**63 - 1, (CPU_STREAMS,), generator=generator).tolist()
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    out = torch.empty(n, m, dtype=torch.complex64)
    h = -(-n // CPU_STREAMS)
    rows = [(min(n, i * h), min(n, (i + 1) * h)) for i in range(CPU_STREAMS)]

    def draw(i: int) -> None:
        a, b = rows[i]
        torch.randn(b - a, m, dtype=torch.complex64, generator=gens[i], out=out[a:b])

    if torch.get_num_threads() < 2:
        for i in range(CPU_STREAMS):
            draw(i)
    else:
        pending = [_executor().submit(draw, i) for i in range(1, CPU_STREAMS)]
        draw(0)
        for f in pending:
            f.result()
    return out
