"""The registry of networks: name -> configuration class, model class and an example batch.

Every network family registers itself at the bottom of its module (``register(ModelSpec(...))``)
and its module is listed in :data:`FAMILIES`; the registry imports the families the first time
it is asked, so ``import cryo_companion.models`` stays cheap. Adding a network is its file, one
``register`` call and one line in :data:`FAMILIES` (CONTRIBUTING.md, "Adding a network").

The benchmark (``cryo-companion bench train``) and the tests iterate over
:func:`network_names`, so a registered network is measured and its example batch checked
without further wiring.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

__all__ = ["FAMILIES", "ModelConfig", "ModelSpec", "build_model", "get_spec", "network_names",
           "register"]

#: Modules that register networks (imported on the first look-up).
FAMILIES: tuple[str, ...] = ("cryo_companion.models.dsrf3d",
                             "cryo_companion.models.ssn3d",
                             "cryo_companion.models.dsmnet",
                             "cryo_companion.models.dsrf3d_v2",
                             "cryo_companion.models.deepfinder", "cryo_companion.models.yopo",
                             "cryo_companion.models.umc")


class ModelConfig(Protocol):
    """What the registry needs of a network's configuration (a frozen dataclass in practice)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, read back by the class's ``from_dict``."""
        ...

    def fingerprint(self) -> str:
        """Hash of the architecture: equal iff weights are interchangeable."""
        ...


#: ``example_batch(config, n, generator) -> (inputs, *targets)`` on the generator's device.
ExampleBatch = Callable[[Any, int, torch.Generator], tuple[Tensor, ...]]


@dataclass(frozen=True)
class ModelSpec:
    """One registered network.

    Attributes
    ----------
    name : str
        Registry name (lower case, e.g. ``"dsrf3d"``).
    config_cls : type
        Configuration class: default-constructible, ``from_dict(d)`` classmethod, ``to_dict()``.
    model_cls : type
        ``model_cls(config, class_names=None)`` builds the network.
    example_batch : callable
        ``example_batch(config, n, generator)``: random inputs and training targets of the
        right shapes and dtypes (``(inputs, *targets)``) on ``generator.device``, for
        benchmarks and tests; not training data.
    description : str
        One line: the paper and section the network comes from.
    """

    name: str
    config_cls: type
    model_cls: type[nn.Module]
    example_batch: ExampleBatch
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}
_loaded = False


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (idempotent for the same spec).

    Parameters
    ----------
    spec : ModelSpec
        The network to register.

    Returns
    -------
    ModelSpec
        ``spec``, so that a module can keep it as a constant.

    Raises
    ------
    ValueError
        If another network is already registered under ``spec.name``.
    """
    old = _REGISTRY.get(spec.name)
    if old is not None and old != spec:
        raise ValueError(f"network name {spec.name!r} is already registered "
                         f"({old.model_cls.__module__}.{old.model_cls.__name__})")
    _REGISTRY[spec.name] = spec
    return spec


def _load_families() -> None:
    global _loaded
    if not _loaded:
        for module in FAMILIES:
            importlib.import_module(module)
        _loaded = True


def network_names() -> tuple[str, ...]:
    """List the names of the registered networks, sorted.

    Returns
    -------
    tuple of str
        Every name :func:`get_spec` accepts.
    """
    _load_families()
    return tuple(sorted(_REGISTRY))


def get_spec(name: str) -> ModelSpec:
    """Look up the registered network ``name``.

    Parameters
    ----------
    name : str
        A name of :func:`network_names`.

    Returns
    -------
    ModelSpec
        Its configuration class, model class and example batch.

    Raises
    ------
    ValueError
        For an unknown name, listing the registered ones.
    """
    _load_families()
    if name not in _REGISTRY:
        raise ValueError(f"unknown network {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build_model(name: str, config: ModelConfig | Mapping[str, Any] | None = None, *,
                class_names: Any = None) -> nn.Module:
    """Build the registered network ``name``.

    Parameters
    ----------
    name : str
        Registry name.
    config : ModelConfig or mapping or None
        Its configuration, or the ``to_dict`` form of one, or None for the defaults.
    class_names : sequence of str or None
        Passed to the model class.

    Returns
    -------
    torch.nn.Module
        The network, on the CPU, in training mode, initialised from the global RNG.
    """
    spec = get_spec(name)
    if config is None:
        config = spec.config_cls()
    elif isinstance(config, Mapping):
        config = spec.config_cls.from_dict(dict(config))  # type: ignore[attr-defined]
    return spec.model_cls(config, class_names=class_names)
