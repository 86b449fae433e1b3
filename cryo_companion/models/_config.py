"""Helpers shared by the networks' configuration classes: fingerprints and class names."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["check_head", "class_names_for", "config_fingerprint"]


def config_fingerprint(d: Mapping[str, Any]) -> str:
    """Hash a configuration's ``to_dict()`` form: equal iff the weights are interchangeable.

    Parameters
    ----------
    d : mapping
        The JSON-able configuration.

    Returns
    -------
    str
        The first 16 hexadecimal digits of the SHA-256 of its sorted JSON.
    """
    return hashlib.sha256(json.dumps(dict(d), sort_keys=True).encode()).hexdigest()[:16]


def class_names_for(n_classes: int, class_names: Sequence[str] | None) -> tuple[str, ...]:
    """Check given class names against the number of outputs, or make generic ones.

    Parameters
    ----------
    n_classes : int
        Output classes of the network.
    class_names : sequence of str or None
        Names of classes ``0 .. n_classes - 1`` (None: ``"class 0"``, ``"class 1"``, ...).

    Returns
    -------
    tuple of str
        ``n_classes`` names.
    """
    if class_names is None:
        return tuple(f"class {k}" for k in range(n_classes))
    names = tuple(str(c) for c in class_names)
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} classes")
    return names


def check_head(n_classes: int, fc_width: int, dropout: float) -> None:
    """Check a classification head's settings (shared by the networks' configurations).

    Parameters
    ----------
    n_classes : int
        Output classes (at least 2).
    fc_width : int
        Hidden units of the fully connected layers (at least 1).
    dropout : float
        Dropout rate, in ``[0, 1)``.

    Raises
    ------
    ValueError
        If any of them is out of range.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if fc_width < 1:
        raise ValueError(f"fc_width must be >= 1, got {fc_width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout {dropout} is outside [0, 1)")
