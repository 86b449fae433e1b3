"""The network registry (cryo_companion.models.registry) and the shared blocks."""
from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch

from cryo_companion.models.blocks import UNetUp, count_parameters
from cryo_companion.models.dsrf3d import SPEC, DSRF3DConfig, DSRF3DSegNet
from cryo_companion.models.registry import (
    FAMILIES,
    ModelSpec,
    build_model,
    get_spec,
    network_names,
    register,
)


def test_dsrf3d_is_registered_and_builds_from_a_dict():
    assert "dsrf3d" in network_names() and get_spec("dsrf3d") is SPEC
    small = DSRF3DConfig(n_classes=3, box=32, enc_widths=(2, 2, 4, 4, 4), fc_widths=(4, 4))
    m = build_model("dsrf3d", small.to_dict(), class_names=["a", "b", "c"])
    assert isinstance(m, DSRF3DSegNet) and m.cfg == small and m.class_names == ("a", "b", "c")
    assert isinstance(build_model("dsrf3d"), DSRF3DSegNet)


@pytest.mark.parametrize("name", network_names())
def test_every_network_trains_one_step_on_its_example_batch(name):
    """What the benchmark relies on: the example batch fits the model and its first output."""
    spec = get_spec(name)
    cfg = spec.config_cls()
    torch.manual_seed(0)
    model = build_model(name, cfg)
    x, *targets = spec.example_batch(cfg, 2, torch.Generator().manual_seed(0))
    assert x.shape[0] == 2 and all(t.shape[0] == 2 for t in targets)
    out = model(x)
    if isinstance(out, torch.Tensor):
        leaves = [out]
    elif isinstance(out, Mapping):
        leaves = list(out.values())
    elif isinstance(out, tuple):
        leaves = list(out)
    else:
        leaves = list(vars(out).values())
    sum(t.float().mean() for t in leaves).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert type(cfg).from_dict(cfg.to_dict()) == cfg and len(cfg.fingerprint()) == 16
    assert spec.model_cls.__module__ in FAMILIES


def test_register_refuses_a_second_network_under_one_name():
    assert register(SPEC) is SPEC                  # idempotent
    other = ModelSpec(name="dsrf3d", config_cls=DSRF3DConfig, model_cls=torch.nn.Linear,
                      example_batch=SPEC.example_batch)
    with pytest.raises(ValueError, match="already registered"):
        register(other)
    with pytest.raises(ValueError, match="unknown network 'ssn9d'; registered: .*dsrf3d"):
        get_spec("ssn9d")


def test_unet_up_returns_to_the_skip_size_and_counts_parameters():
    up = UNetUp(8, 4)
    y = up(torch.randn(1, 8, 2, 2, 2), torch.randn(1, 4, 5, 5, 5))
    assert y.shape == (1, 4, 5, 5, 5) and bool((y >= 0).all())
    # transposed conv 2^3 * 8 * 4 + 4, conv 3^3 * 8 * 4 + 4
    assert count_parameters(up) == 8 * 8 * 4 + 4 + 27 * 8 * 4 + 4
