"""One training step of N runs: a loop over the models, or one vmapped step of stacked weights.

Both steppers take one batch per run and return each run's detached loss terms; between steps
they own the weights, and :meth:`export` writes the current weights and optimizer states back
into the runs' own modules and optimizers (before validation and checkpoints).

- :class:`LoopStep`: for each run in turn, forward (under the precision's autocast), loss,
  backward, optimizer step: exactly the operations of the run trained alone. With N > 1 each
  run keeps its own global RNG state, swapped in around its step, so a model that draws random
  numbers (dropout) sees the stream it would see alone.
- :class:`VmapStep`: the N models' parameters and buffers stacked
  (``torch.func.stack_module_state``), one ``vmap`` of ``functional_call`` + loss over the
  stacked weights and the stacked batches (the convolutions become grouped convolutions), one
  backward of the summed losses (run ``i``'s loss depends on run ``i``'s weights only, so each
  run gets its own gradient), one optimizer step on the stacked tensors. Valid for optimizers
  whose update is elementwise (SGD, Adam, AdamW, RMSprop, ...), identical settings in every run;
  batch-norm running statistics are per run (stacked buffers); models that draw random numbers
  are refused (vmap cannot give each run its own stream). Equal to the runs alone up to float
  rounding.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from cryo_companion.learn.batches import Batch
from cryo_companion.learn.checkpoint import rng_state, set_rng_state
from cryo_companion.learn.precision import autocast, to_channels_last

__all__ = [
    "RANDOM_MODULES",
    "LoopStep",
    "LossFn",
    "VmapStep",
    "check_stackable",
    "loss_terms",
]

#: ``loss_fn(output, *targets)`` -> a scalar tensor, or a mapping of named scalar terms with
#: the total under ``"loss"`` (the others are logged).
LossFn = Callable[..., Tensor | Mapping[str, Tensor]]

#: Module types that draw random numbers in training mode.
RANDOM_MODULES: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                                               nn.Dropout3d, nn.AlphaDropout,
                                               nn.FeatureAlphaDropout)


def loss_terms(value: Tensor | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Return a loss function's value as named terms.

    Parameters
    ----------
    value : torch.Tensor or mapping
        A scalar total, or terms with the total under ``"loss"``.

    Returns
    -------
    dict
        ``{"loss": total, ...}``.

    Raises
    ------
    ValueError
        For a mapping without ``"loss"``.
    """
    if isinstance(value, Tensor):
        return {"loss": value}
    if "loss" not in value:
        raise ValueError(f"the loss function returned terms {sorted(value)} without 'loss'")
    return dict(value)


def _forward(model: nn.Module, x: Tensor, device: torch.device, precision: str,
             channels_last: bool) -> Any:
    if channels_last:
        x = to_channels_last(x)
    with autocast(device, precision):
        return model(x)


class LoopStep:
    """Step N models one after the other (N = 1: an ordinary training step).

    Parameters
    ----------
    models : sequence of torch.nn.Module
        The runs' networks, on ``device``.
    optimizers : sequence of torch.optim.Optimizer
        One per model, over its parameters.
    loss_fn : LossFn
        ``loss_fn(output, *targets)``.
    device : torch.device
        Device of the step.
    precision : str
        ``"fp32"``, ``"tf32"`` or ``"bf16"`` (:mod:`cryo_companion.learn.precision`).
    channels_last : bool
        Convert the models and inputs to the channels-last 3-D layout.
    rng_states : sequence of dict
        Each run's global RNG state (:func:`~cryo_companion.learn.checkpoint.rng_state`) at
        its current iteration. With one run it is restored once; with several, swapped in
        around each run's step.
    """

    def __init__(self, models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer],
                 loss_fn: LossFn, *, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False,
                 rng_states: Sequence[dict[str, Tensor]] | None = None) -> None:
        self.models = list(models)
        self.optimizers = list(optimizers)
        self.loss_fn = loss_fn
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        if channels_last:
            for m in self.models:
                # torch's stub of Module.to omits the memory_format keyword it accepts
                m.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
        self._rng = [dict(s) for s in rng_states] if rng_states is not None else None
        if self._rng is not None and len(self._rng) == 1:
            set_rng_state(self._rng[0], device)

    def step(self, batches: Sequence[Batch]) -> list[dict[str, Tensor]]:
        """Take one training step of every run.

        Parameters
        ----------
        batches : sequence of Batch
            One ``(inputs, *targets)`` per run.

        Returns
        -------
        list of dict
            Each run's detached loss terms.
        """
        swapped = self._rng if self._rng is not None and len(self._rng) > 1 else None
        out = []
        for i, (model, opt, batch) in enumerate(zip(self.models, self.optimizers, batches)):
            if swapped is not None:
                set_rng_state(swapped[i], self.device)
            x, *targets = batch
            terms = loss_terms(self.loss_fn(
                _forward(model, x, self.device, self.precision, self.channels_last), *targets))
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            if swapped is not None:
                swapped[i] = rng_state(self.device)
            out.append({k: v.detach() for k, v in terms.items()})
        return out

    def export(self) -> None:
        """Write nothing back: the runs' modules are trained in place."""

    def rng_state(self, i: int) -> dict[str, Tensor]:
        """Return run ``i``'s global RNG state now.

        Parameters
        ----------
        i : int
            Run index.

        Returns
        -------
        dict
            As :func:`~cryo_companion.learn.checkpoint.rng_state`.
        """
        if self._rng is not None and len(self._rng) > 1:
            return self._rng[i]
        return rng_state(self.device)


def _hyper(opt: torch.optim.Optimizer) -> dict[str, Any]:
    return {k: v for k, v in opt.param_groups[0].items() if k != "params"}


def check_stackable(models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]
                    ) -> None:
    """Refuse runs that one vmapped step cannot train as if alone.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        The runs' networks.
    optimizers : sequence of torch.optim.Optimizer
        One per model.

    Raises
    ------
    ValueError
        If the models differ in type or in their parameters' and buffers' shapes, a model
        has a module that draws random numbers (:data:`RANDOM_MODULES` with ``p > 0``), an
        optimizer has more than one parameter group or not exactly its model's parameters in
        order, or the optimizers differ in class or settings. The message says to use the
        loop strategy.
    """
    hint = "; train these runs with strategy='loop'"
    ref = models[0]
    shapes = {k: v.shape for k, v in ref.state_dict().items()}
    for m, opt in zip(models, optimizers):
        if type(m) is not type(ref) or {k: v.shape for k, v in m.state_dict().items()} != shapes:
            raise ValueError(f"the runs' models differ in type or shapes{hint}")
        rnd = [n for n, mod in m.named_modules()
               if isinstance(mod, RANDOM_MODULES) and getattr(mod, "p", 0) > 0]
        if rnd:
            raise ValueError(f"module(s) {rnd} draw random numbers, which vmap cannot give "
                             f"each run on its own stream{hint}")
        if len(opt.param_groups) != 1 or [id(p) for p in opt.param_groups[0]["params"]] != [
                id(p) for p in m.parameters()]:
            raise ValueError(f"each optimizer must hold its model's parameters, in order, in "
                             f"one parameter group{hint}")
        if type(opt) is not type(optimizers[0]) or _hyper(opt) != _hyper(optimizers[0]):
            raise ValueError(f"the runs' optimizers differ in class or settings{hint}")


class VmapStep:
    """Step N runs of one architecture at once over stacked weights (see the module docstring).

    Parameters
    ----------
    models : sequence of torch.nn.Module
        The runs' networks, same architecture, on ``device``; they keep their weights between
        :meth:`export` calls only.
    optimizers : sequence of torch.optim.Optimizer
        One per model, same class and settings; their states are stacked.
    loss_fn : LossFn
        ``loss_fn(output, *targets)``; vmapped, so it must use tensor operations only (no
        ``.item()``, no data-dependent Python control flow).
    device : torch.device
        Device of the step.
    precision : str
        ``"fp32"``, ``"tf32"`` or ``"bf16"``.
    rng_states : sequence of dict or None
        Each run's global RNG state, kept for its checkpoints (the step draws no random
        numbers, so they do not change).
    """

    def __init__(self, models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer],
                 loss_fn: LossFn, *, device: torch.device, precision: str = "fp32",
                 rng_states: Sequence[dict[str, Tensor]] | None = None) -> None:
        check_stackable(models, optimizers)
        self._rng = [dict(s) for s in rng_states] if rng_states is not None else None
        self.models = list(models)
        self.optimizers = list(optimizers)
        self.loss_fn = loss_fn
        self.device = device
        self.precision = precision
        params, buffers = stack_module_state(self.models)
        self.params: dict[str, Tensor] = params
        self.buffers: dict[str, Tensor] = buffers
        self._base = copy.deepcopy(self.models[0]).to("meta")
        opt0 = self.optimizers[0]
        self.optimizer = type(opt0)(list(self.params.values()), **opt0.defaults)
        self.optimizer.param_groups[0].update(_hyper(opt0))
        self._load_optimizer_states()
        self._step = vmap(self._one, randomness="error")

    def _one(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor,
             *targets: Tensor) -> dict[str, Tensor]:
        with autocast(self.device, self.precision):
            out = functional_call(self._base, (params, buffers), (x,))
        return loss_terms(self.loss_fn(out, *targets))

    def step(self, batches: Sequence[Batch]) -> list[dict[str, Tensor]]:
        """Take one training step of every run.

        Parameters
        ----------
        batches : sequence of Batch
            One ``(inputs, *targets)`` per run, the same shapes in every run.

        Returns
        -------
        list of dict
            Each run's detached loss terms.
        """
        stacked = [torch.stack(col) for col in zip(*batches)]
        terms = self._step(self.params, self.buffers, *stacked)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].sum().backward()
        self.optimizer.step()
        return [{k: v[i].detach() for k, v in terms.items()} for i in range(len(self.models))]

    def _load_optimizer_states(self) -> None:
        stacked = list(self.params.values())
        per_run = [list(m.parameters()) for m in self.models]
        for j, sp in enumerate(stacked):
            found = [opt.state.get(ps[j]) for opt, ps in zip(self.optimizers, per_run)]
            states = [s for s in found if s is not None]
            if len(states) < len(found):
                continue  # an optimizer that has not stepped yet
            self.optimizer.state[sp] = {
                k: (torch.stack([s[k] for s in states])
                    if isinstance(v, Tensor) and v.shape == sp.shape[1:] else v)
                for k, v in states[0].items()}

    @torch.no_grad()
    def export(self) -> None:
        """Write the stacked weights, buffers and optimizer states back into the runs."""
        for i, m in enumerate(self.models):
            for name, p in m.named_parameters():
                p.copy_(self.params[name][i])
            for name, b in m.named_buffers():
                b.copy_(self.buffers[name][i])
        for j, sp in enumerate(self.params.values()):
            st = self.optimizer.state.get(sp)
            if not st:
                continue
            for i, (m, opt) in enumerate(zip(self.models, self.optimizers)):
                p = list(m.parameters())[j]
                opt.state[p] = {k: (v[i].clone() if isinstance(v, Tensor) and v.shape == sp.shape
                                    else v.clone() if isinstance(v, Tensor) else v)
                                for k, v in st.items()}

    def rng_state(self, i: int) -> dict[str, Tensor]:
        """Return run ``i``'s global RNG state (the step draws none: the one it started with).

        Parameters
        ----------
        i : int
            Run index.

        Returns
        -------
        dict
            As :func:`~cryo_companion.learn.checkpoint.rng_state`.
        """
        return self._rng[i] if self._rng is not None else rng_state(self.device)
