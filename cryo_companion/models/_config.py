"""Helpers shared by the networks' configuration classes: fingerprints and class names."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["class_names_for", "config_fingerprint"]


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
