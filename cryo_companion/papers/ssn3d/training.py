"""SSN3D's training recipe (Liu et al. 2018, 4.2) and where the authors' released code differs.

:data:`PAPER` is the recipe as the paper states it, :data:`RELEASED_CODE` what the released
Keras script (``segmentation/FCN.py`` of xulabs/projects) actually does; :data:`DEVIATIONS`
lists the differences in words for the chapter. The book trains with :data:`PAPER`.

Keras semantics that a PyTorch reimplementation must keep:

* ``Adam(decay=1e-8)`` is Keras' *time-based learning-rate decay*,
  ``lr_t = lr / (1 + decay · iteration)``, not a weight decay (L2); at 1e-8 it changes the
  rate by less than 1e-4 over a whole run.
* ``Dropout(0.7)`` zeroes a fraction 0.7 of the units (PyTorch ``Dropout(p=0.7)``).
* ``categorical_crossentropy`` on the per-voxel softmax is the mean over all voxels of all
  subtomograms of a batch (PyTorch ``cross_entropy`` on ``(B, 2, D, D, D)`` logits).
* ``EarlyStopping(monitor="val_acc", patience=P)`` stops after ``P`` epochs without
  improvement of the validation pixel accuracy; the script's ``ModelCheckpoint`` saves the
  best epoch's weights, but the script then tests the model as it is after the last epoch
  (Keras' ``restore_best_weights`` defaults to False and the ``load_model`` of the best
  checkpoint is commented out).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DEVIATIONS", "PAPER", "RELEASED_CODE", "Recipe"]


@dataclass(frozen=True)
class Recipe:
    """One training recipe.

    Attributes
    ----------
    optimizer : str
        ``"adam"``.
    lr : float
        Learning rate.
    betas : tuple of float
        Adam's (β1, β2).
    lr_decay_per_iteration : float
        Keras' time-based decay (``lr / (1 + decay · iteration)``).
    batch_size : int
        Subtomograms per batch.
    max_epochs : int
        Epochs at most.
    patience : int
        Epochs without improvement of the monitored metric before stopping.
    min_delta : float
        Smallest change that counts as an improvement.
    monitor : str
        The early-stopping metric.
    validation_fraction : float
        Fraction of the training set held out for validation.
    loss : str
        The loss.
    """

    optimizer: str
    lr: float
    betas: tuple[float, float]
    lr_decay_per_iteration: float
    batch_size: int
    max_epochs: int
    patience: int
    min_delta: float
    monitor: str
    validation_fraction: float
    loss: str = "categorical cross-entropy over the voxels"

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-able form."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


#: Liu et al. 2018, 4.2: "Adam with the learning rate of 1e-3 under a decay factor of 1e-8 and
#: exponential decay rates β1 = 0.9 and β2 = 0.99 ... batch size of 128 for 200 epochs ...
#: stop ... if the validation dataset did not improve for 10 consecutive epochs in terms of
#: pixel accuracy"; "10 % of training dataset were used for validation".
PAPER = Recipe(optimizer="adam", lr=1e-3, betas=(0.9, 0.99), lr_decay_per_iteration=1e-8,
               batch_size=128, max_epochs=200, patience=10, min_delta=0.0,
               monitor="validation pixel accuracy", validation_fraction=0.1)

#: The released script: it builds ``Adam(lr=0.001, beta_1=0.9, beta_2=0.99, decay=1e-8)`` but
#: compiles with ``optimizer='adam'`` (a string), so Keras' default Adam is what trains
#: (β2 = 0.999, no decay); 150 epochs, EarlyStopping(min_delta=1e-4, patience=20) on val_acc,
#: ``validation_split=0.1`` (the *last* 10 % of the training arrays, not a random draw).
RELEASED_CODE = Recipe(optimizer="adam", lr=1e-3, betas=(0.9, 0.999), lr_decay_per_iteration=0.0,
                       batch_size=128, max_epochs=150, patience=20, min_delta=1e-4,
                       monitor="validation pixel accuracy", validation_fraction=0.1)

#: What the released code does differently from the paper, for the chapter.
DEVIATIONS: tuple[str, ...] = (
    ("Adam's β2: 0.999 (Keras' default, because the script passes optimizer='adam' as a "
     "string and its configured Adam(β2 = 0.99, decay = 1e-8) is never used) instead of 0.99"),
    "no learning-rate decay instead of 1e-8 per iteration (same reason; negligible either way)",
    "at most 150 epochs instead of 200",
    "early-stopping patience 20 epochs (min_delta 1e-4) instead of 10",
    ("train / test split by position (first 90 % / last 10 % of the arrays) and validation = "
     "the last 10 % of the training arrays, instead of a random split"),
    ("the test scores are those of the last epoch's weights (the best epoch's are saved but not "
     "loaded back), where the paper says the training would 'stop and be saved'"),
)
