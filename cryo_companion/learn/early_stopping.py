"""Early stopping for :func:`cryo_companion.learn.fit.run_jobs`: a rule and each run's state.

:class:`EarlyStopping` is the rule (``FitConfig.early_stopping``): after every validation a run
compares the number ``monitor`` of its validation hook with the best seen so far; an
improvement (by more than ``min_delta``, upwards for ``mode="max"``, downwards for ``"min"``)
resets its count, anything else adds one, and when the count reaches ``patience`` the run
stops. This is Keras' ``EarlyStopping`` (``wait >= patience``, ``current - min_delta > best``);
with one validation per epoch, ``patience`` counts epochs. The first validation is always an
improvement.

``keep`` says which weights a run ends with: ``"best"`` (a copy of the weights at its best
validation is kept in the run's state and loaded into the model at the end, whether the run
stopped or reached its last iteration) or ``"last"`` (the weights of its last step).

With N runs per step each run stops on its own (:class:`StopState` per run): a stopped run is
skipped (it draws no more batches and is no longer stepped; the loop re-forms the step over the
runs still training, so the others train exactly as before), validated no more, and its
checkpoint is written at the iteration it stopped. The state is part of the checkpoint
(``"early_stopping"``): a resumed run continues its count, a run that had stopped stays stopped
and ends with the same weights as without the interruption.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["KEEP", "MODES", "EarlyStopping", "StopState"]

#: Directions of improvement.
MODES = ("max", "min")
#: Which weights a run ends with.
KEEP = ("best", "last")


@dataclass(frozen=True)
class EarlyStopping:
    """When a run stops, and which weights it keeps.

    Attributes
    ----------
    monitor : str
        Key of the validation hook's numbers (``"pixel_accuracy"``, not ``"val_..."``).
    patience : int
        Validations in a row without improvement after which the run stops (>= 1).
    mode : str
        ``"max"`` (larger is better) or ``"min"``.
    min_delta : float
        Smallest change that counts as an improvement (>= 0).
    keep : str
        ``"best"`` (end with the weights of the best validation) or ``"last"``.
    """

    monitor: str
    patience: int
    mode: str = "max"
    min_delta: float = 0.0
    keep: str = "best"

    def __post_init__(self) -> None:
        """Refuse a rule that cannot work."""
        if not self.monitor:
            raise ValueError("early stopping needs the name of a validation number (monitor)")
        if int(self.patience) < 1:
            raise ValueError(f"patience must be >= 1 validation, got {self.patience}")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is unknown; valid: {', '.join(MODES)}")
        if not self.min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")
        if self.keep not in KEEP:
            raise ValueError(f"keep {self.keep!r} is unknown; valid: {', '.join(KEEP)}")

    def improves(self, value: float, best: float | None) -> bool:
        """Tell whether ``value`` improves on ``best`` (None: nothing seen yet).

        Parameters
        ----------
        value : float
            The monitored number now.
        best : float or None
            The best so far.

        Returns
        -------
        bool
            True for the first value and for a change beyond ``min_delta`` in the good
            direction; False for NaN.
        """
        if math.isnan(value):
            return False
        if best is None:
            return True
        if self.mode == "max":
            return value - self.min_delta > best
        return value + self.min_delta < best

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        return asdict(self)


@dataclass
class StopState:
    """One run's early-stopping state (part of its checkpoint).

    Attributes
    ----------
    best : float or None
        Best monitored value so far.
    best_iteration : int or None
        Iteration of that validation.
    wait : int
        Validations since the last improvement.
    stopped_at : int or None
        Iteration at which the run stopped (None: still training).
    best_weights : dict or None
        Copy of the model's state dict at ``best_iteration`` (``keep="best"`` only), on the
        model's device.
    """

    best: float | None = None
    best_iteration: int | None = None
    wait: int = 0
    stopped_at: int | None = None
    best_weights: dict[str, Tensor] | None = field(default=None, repr=False)

    @property
    def stopped(self) -> bool:
        """True once the run has stopped."""
        return self.stopped_at is not None

    def update(self, rule: EarlyStopping, numbers: Mapping[str, float], iteration: int,
               model: nn.Module) -> bool:
        """Take one validation into account; return True if the run stops here.

        Parameters
        ----------
        rule : EarlyStopping
            The rule.
        numbers : mapping
            The validation hook's numbers (must hold ``rule.monitor``).
        iteration : int
            The iteration validated.
        model : torch.nn.Module
            The run's model (its weights are copied at an improvement with ``keep="best"``).

        Returns
        -------
        bool
            Whether the run stops at this validation.

        Raises
        ------
        KeyError
            If the hook did not return ``rule.monitor``.
        """
        if rule.monitor not in numbers:
            raise KeyError(f"early stopping monitors {rule.monitor!r}, which the validation "
                           f"hook does not return (it returns {sorted(numbers)})")
        value = float(numbers[rule.monitor])
        if rule.improves(value, self.best):
            self.best, self.best_iteration, self.wait = value, iteration, 0
            if rule.keep == "best":
                self.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        if self.wait >= rule.patience:
            self.stopped_at = iteration
        return self.stopped

    def finish(self, rule: EarlyStopping | None, model: nn.Module) -> None:
        """Load the kept weights into ``model`` at the end of training (``keep="best"``).

        Parameters
        ----------
        rule : EarlyStopping or None
            The rule (None: nothing to do).
        model : torch.nn.Module
            The run's model.
        """
        if rule is not None and rule.keep == "best" and self.best_weights is not None:
            with torch.no_grad():
                model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        """Return the checkpointed form."""
        return {"best": self.best, "best_iteration": self.best_iteration, "wait": self.wait,
                "stopped_at": self.stopped_at, "best_weights": self.best_weights}

    @classmethod
    def from_state_dict(cls, d: Mapping[str, Any] | None) -> StopState:
        """Inverse of :meth:`state_dict` (None or a checkpoint without it: a fresh state).

        Parameters
        ----------
        d : mapping or None
            A :meth:`state_dict`.

        Returns
        -------
        StopState
        """
        if not d:
            return cls()
        return cls(best=d.get("best"), best_iteration=d.get("best_iteration"),
                   wait=int(d.get("wait", 0)), stopped_at=d.get("stopped_at"),
                   best_weights=d.get("best_weights"))
