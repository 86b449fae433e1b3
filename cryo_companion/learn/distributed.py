"""Independent runs spread over the processes of ``torchrun`` (one or several GPUs or nodes).

The trainings of the book are many independent runs (seeds, arms, held-out classes), not one
large model, so several GPUs are used by giving each process a share of the runs rather than by
splitting one run's batch (data-parallel training would change the effective batch size and
with it the results). Under ``torchrun --nproc_per_node G ...`` every process reads its rank
from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), takes the runs ``rank,
rank + G, ...`` (:func:`shard`), trains them on its own device (``cuda:LOCAL_RANK``, or the
CPU), and the results of all processes are gathered on every process (gloo, a few small Python
objects; no tensor crosses processes). The run folders must lie on a file system the processes
share (one node, or a shared disk) for the weights to end up in one place.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) :func:`run_sharded` simply runs everything
here.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from cryo_companion.devices import resolve_device

__all__ = ["RankInfo", "rank_device", "rank_info", "run_sharded", "shard"]

T = TypeVar("T")


@dataclass(frozen=True)
class RankInfo:
    """Place of a process among ``torchrun``'s processes.

    Attributes
    ----------
    rank : int
        Global rank in ``[0, world_size)``.
    world_size : int
        Number of processes.
    local_rank : int
        Rank on this node (the GPU index it uses).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when there is more than one process."""
        return self.world_size > 1


def rank_info(environ: Mapping[str, str] | None = None) -> RankInfo:
    """Read the rank, world size and local rank that ``torchrun`` put in the environment.

    Parameters
    ----------
    environ : mapping or None
        The environment (default ``os.environ``).

    Returns
    -------
    RankInfo
        ``RankInfo()`` (one process) when ``WORLD_SIZE`` is unset.

    Raises
    ------
    ValueError
        For values that are not integers or not ``0 <= rank < world_size``.
    """
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc})") from exc
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"inconsistent RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return RankInfo(rank=rank, world_size=world, local_rank=local)


def shard(n: int, info: RankInfo) -> list[int]:
    """List the indices of ``n`` runs that this process trains: ``rank, rank + world, ...``.

    Parameters
    ----------
    n : int
        Number of runs.
    info : RankInfo
        This process's rank.

    Returns
    -------
    list of int
        Its share (empty when ``rank >= n``); the shares of all ranks partition ``range(n)``.
    """
    return list(range(info.rank, n, info.world_size))


def rank_device(device: str | torch.device, info: RankInfo) -> torch.device:
    """Resolve the process's device: ``cuda`` becomes ``cuda:LOCAL_RANK``, the rest as is.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    info : RankInfo
        This process's rank.

    Returns
    -------
    torch.device
        The resolved device.

    Raises
    ------
    RuntimeError
        If CUDA is asked for and absent, or the node has fewer GPUs than local ranks.
    """
    dev = resolve_device(str(device))
    if dev.type == "cuda" and dev.index is None and info.distributed:
        if info.local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"local rank {info.local_rank} has no GPU (this node has "
                               f"{torch.cuda.device_count()})")
        dev = torch.device("cuda", info.local_rank)
    return dev


def run_sharded(n: int, work: Callable[[list[int], torch.device], list[T]],
                device: str | torch.device, *, info: RankInfo | None = None) -> list[T]:
    """Run ``work`` on this process's share of ``n`` runs and gather every process's results.

    Parameters
    ----------
    n : int
        Number of runs.
    work : callable
        ``work(indices, device) -> results``, one result per index, in order (results must
        pickle).
    device : str or torch.device
        Device name (see :func:`rank_device`).
    info : RankInfo or None
        The rank (default: :func:`rank_info`).

    Returns
    -------
    list
        The results of all ``n`` runs, in index order, on every process.

    Raises
    ------
    RuntimeError
        The processes disagree on the number of runs, or ``work`` returns another number of results
        than it was given runs.
    """
    info = rank_info() if info is None else info
    dev = rank_device(device, info)
    if not info.distributed:
        return work(list(range(n)), dev)
    own = not dist.is_initialized()
    if own:
        dist.init_process_group("gloo")
    try:
        counts: list[int | None] = [None] * info.world_size
        dist.all_gather_object(counts, n)
        if len(set(counts)) != 1:
            raise RuntimeError(f"the processes disagree on the number of runs {counts}")
        mine = shard(n, info)
        results = work(mine, dev)
        if len(results) != len(mine):
            raise RuntimeError(f"work returned {len(results)} results for {len(mine)} runs")
        gathered: list[list[tuple[int, T]] | None] = [None] * info.world_size
        dist.all_gather_object(gathered, list(zip(mine, results)))
    finally:
        if own:
            dist.destroy_process_group()
    by_index = {i: r for part in gathered for i, r in (part or [])}
    return [by_index[i] for i in range(n)]
