"""Chunked prediction on the model's device, for any network output.

:func:`predict` runs a model on a large set of inputs in chunks (inputs move to the model's
device one chunk at a time), in evaluation mode and without gradients, and concatenates what
each chunk gives along the first axis. The output may be a tensor or any nesting of tuples,
lists, dicts and dataclasses of tensors (e.g. ``DSRF3DSegNet``'s ``ModelOutput``); a ``reduce``
function can turn each chunk's output into something smaller first (the predicted class and
its mask instead of every class's logits).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cryo_companion._progress import progress as progress_bar

__all__ = ["concat_outputs", "model_device", "predict"]


def model_device(model: nn.Module) -> torch.device:
    """Return the device of a model's first parameter (or buffer; else the CPU).

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    torch.device
        Where its inputs must go.
    """
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _move(tree: Any, device: torch.device | None) -> Any:
    if device is None:
        return tree
    if isinstance(tree, Tensor):
        return tree.to(device)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return dataclasses.replace(tree, **{f.name: _move(getattr(tree, f.name), device)
                                            for f in dataclasses.fields(tree)})
    if isinstance(tree, Mapping):
        return {k: _move(v, device) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_move(v, device) for v in tree)
    return tree


def concat_outputs(parts: Sequence[Any]) -> Any:
    """Concatenate chunk outputs of the same structure along their first axis.

    Parameters
    ----------
    parts : sequence
        Outputs of the chunks: tensors, or the same nesting of tuples, lists, dicts and
        dataclasses of tensors in each.

    Returns
    -------
    Any
        One output of that structure, each tensor ``torch.cat`` over the chunks.

    Raises
    ------
    TypeError
        For a leaf that is not a tensor.
    ValueError
        For no parts.
    """
    if not parts:
        raise ValueError("nothing to concatenate (no chunks)")
    first = parts[0]
    if isinstance(first, Tensor):
        return torch.cat(list(parts))
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(first, **{
            f.name: concat_outputs([getattr(p, f.name) for p in parts])
            for f in dataclasses.fields(first)})
    if isinstance(first, Mapping):
        return {k: concat_outputs([p[k] for p in parts]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(concat_outputs([p[i] for p in parts]) for i in range(len(first)))
    raise TypeError(f"cannot concatenate chunk outputs of type {type(first).__name__}")


@torch.no_grad()
def predict(model: nn.Module, inputs: Tensor, *, batch_size: int = 64,
            reduce: Callable[[Any, slice], Any] | None = None,
            out_device: torch.device | str | None = "cpu", progress: bool = False,
            desc: str = "predict") -> Any:
    """Run ``model`` on ``inputs`` in chunks on the model's device.

    Parameters
    ----------
    model : torch.nn.Module
        The network; put in evaluation mode for the call, its mode restored afterwards.
    inputs : torch.Tensor
        `(N, ...)` inputs, on any device (each chunk is moved to the model's).
    batch_size : int
        Items per chunk.
    reduce : callable or None
        ``reduce(output, chunk)`` with ``chunk`` the ``slice`` of ``inputs`` it came from;
        returns what is kept of the chunk (tensors with the chunk's items first, or a nesting
        of them). None keeps the whole output.
    out_device : torch.device or str or None
        Where the kept tensors go after each chunk (default the CPU, so a large set does not
        stay in GPU memory); None leaves them on the model's device.
    progress : bool
        Show a progress bar (on a terminal only).
    desc : str
        Label of the progress bar.

    Returns
    -------
    Any
        The kept outputs of all chunks, concatenated along the first axis.

    Raises
    ------
    ValueError
        For ``batch_size < 1`` or no inputs.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if inputs.shape[0] == 0:
        raise ValueError("no inputs to predict (N = 0)")
    dev = model_device(model)
    target = None if out_device is None else torch.device(out_device)
    was_training = model.training
    model.eval()
    parts = []
    try:
        for i in progress_bar(range(0, inputs.shape[0], batch_size), show=progress, desc=desc):
            chunk = slice(i, min(i + batch_size, inputs.shape[0]))
            out = model(inputs[chunk].to(dev))
            parts.append(_move(out if reduce is None else reduce(out, chunk), target))
    finally:
        model.train(was_training)
    return concat_outputs(parts)
