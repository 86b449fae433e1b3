"""Optimizers with the semantics of other frameworks, for reproducing papers trained there.

:class:`TimeDecayAdam` is Keras' ``Adam(lr, decay=d)``: Keras' ``decay`` is a *time-based
learning-rate decay*, not a weight decay (L2): the ``t``-th update (1-based) uses the rate
``lr / (1 + d (t - 1))`` (Keras 2: ``lr * 1 / (1 + decay * iterations)`` with ``iterations``
the updates done before). The update itself is PyTorch's Adam; Keras adds its ``epsilon`` to
``sqrt(v_t)`` before the bias correction of the rate, PyTorch after it, which differs only
while ``v_t`` is of the order of ``epsilon²`` (pass Keras' ``eps=1e-7`` to keep its value).

The rate of each step is computed from the number of updates in the optimizer's own state
(Adam's ``step``), so a checkpoint (``state_dict``) resumes the decay exactly, and N runs
stepped together by :class:`~cryo_companion.learn.step.VmapStep` (which builds one optimizer of
the same class over the stacked weights) decay alike.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["TimeDecayAdam"]


class TimeDecayAdam(torch.optim.Adam):
    """Adam with Keras' time-based learning-rate decay ``lr / (1 + decay · iterations)``.

    Parameters
    ----------
    params : iterable
        Parameters (or parameter groups) to optimise.
    lr : float
        Learning rate of the first update.
    decay : float
        Keras' ``decay`` (>= 0; 0 is plain Adam).
    **kwargs : Any
        Other arguments of :class:`torch.optim.Adam` (``betas``, ``eps``, ...).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, *, decay: float = 0.0,
                 **kwargs: Any) -> None:
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        super().__init__(params, lr=lr, **kwargs)
        self.defaults["decay"] = float(decay)
        for g in self.param_groups:
            g.setdefault("decay", float(decay))
            g.setdefault("base_lr", float(g["lr"]))

    def _updates_done(self, group: dict[str, Any]) -> float:
        for p in group["params"]:
            st = self.state.get(p)
            if st and "step" in st:
                return float(st["step"])
        return 0.0

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        """Set each group's rate for this update, then take Adam's step.

        Parameters
        ----------
        closure : callable or None
            As :meth:`torch.optim.Adam.step`.

        Returns
        -------
        Any
            The closure's loss, if any.
        """
        for g in self.param_groups:
            g["lr"] = g["base_lr"] / (1.0 + g["decay"] * self._updates_done(g))
        return super().step(closure)
