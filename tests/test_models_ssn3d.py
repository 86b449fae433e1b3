"""SSN3D-v1 / v2 / ED: the paper's capacities, shapes, the decoder's resolution, bad input."""
from __future__ import annotations

import itertools

import pytest
import torch

from cryo_companion.models.ssn3d import (
    PAPER_PARAMETER_COUNTS,
    SSN3D,
    SSN3DConfig,
    parameter_count_formula,
    ssn3d,
)


@pytest.mark.parametrize("variant,count", [("v1", 2_042_158), ("v2", 2_042_342),
                                           ("ed", 895_746)])
def test_capacities_are_the_papers(variant: str, count: int) -> None:
    # Liu et al. 2018, Table 2 "Capacity", typed here independently of the module's constant
    model = ssn3d(variant, seed=0)
    assert model.n_parameters() == count
    assert parameter_count_formula(model.cfg) == count
    assert PAPER_PARAMETER_COUNTS[variant] == count


def test_ed_has_about_half_the_capacity_of_v2() -> None:
    # 2.2: "its model capacity is just the half that of SSN3D-v2"
    ratio = ssn3d("ed").n_parameters() / ssn3d("v2").n_parameters()
    assert 0.4 < ratio < 0.5


@pytest.mark.parametrize("skips,fc,decoder", list(itertools.product(
    [False, True], [False, True], ["score", "features"])))
@pytest.mark.parametrize("box", [16, 40])
def test_formula_matches_every_switch_combination(skips: bool, fc: bool, decoder: str,
                                                  box: int) -> None:
    cfg = SSN3DConfig(skips=skips, fc=fc, decoder=decoder, box=box, fc_width=16)
    model = SSN3D(cfg)
    assert model.n_parameters() == parameter_count_formula(cfg)
    out = model.eval()(torch.randn(2, box, box, box))
    assert out.shape == (2, 2, box, box, box)


@pytest.mark.parametrize("variant,block", [("v1", 8), ("v2", 2), ("ed", 2)])
def test_decoder_resolution_shows_the_skips(variant: str, block: int) -> None:
    """Without skips the scores are made at D/8 and only upsampled (with pointwise convs in
    between), so v1's logits are constant on 8³ blocks; v2 and ED merge pool1 (D/2) before
    the last upsampling, so theirs are constant on 2³ blocks and not on 4³ blocks."""
    torch.manual_seed(0)
    model = ssn3d(variant, seed=1, box=16).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 16, 16, 16))
    b = out.reshape(3, 2, 16 // block, block, 16 // block, block, 16 // block, block)
    spread = (b.amax(dim=(3, 5, 7)) - b.amin(dim=(3, 5, 7))).abs().max()
    assert float(spread) < 1e-5
    if variant != "v1":
        b4 = out.reshape(3, 2, 4, 4, 4, 4, 4, 4)
        assert float((b4.amax(dim=(3, 5, 7)) - b4.amin(dim=(3, 5, 7))).abs().max()) > 1e-4


def test_same_seed_same_weights_and_eval_is_deterministic() -> None:
    a, b, c = ssn3d("v2", seed=3), ssn3d("v2", seed=3), ssn3d("v2", seed=4)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    x = torch.randn(1, 40, 40, 40)
    a.eval()
    assert torch.equal(a(x), a(x))
    a.train()  # dropout 0.7 on the 1024-channel layers: training passes differ
    assert not torch.equal(a(x), a(x))


def test_keras_initialisation() -> None:
    model = ssn3d("ed", seed=0)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv3d):
            assert torch.count_nonzero(m.bias) == 0
            fan_in = m.weight[0].numel()
            fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            assert float(m.weight.detach().abs().max()) <= bound + 1e-7


def test_every_parameter_gets_a_gradient() -> None:
    for variant in ("v1", "v2", "ed"):
        model = ssn3d(variant, seed=0, box=16, fc_width=8)
        target = torch.randint(0, 2, (2, 16, 16, 16))
        loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 1, 16, 16, 16)), target)
        loss.backward()
        assert all(p.grad is not None and bool(p.grad.abs().sum() > 0)
                   for p in model.parameters()), variant


def test_names_and_variants() -> None:
    assert [SSN3DConfig.variant(v).name for v in ("v1", "SSN3D-v2", "ED")] == \
        ["SSN3D-v1", "SSN3D-v2", "SSN3D-ED"]
    assert "skips=False" in SSN3DConfig(skips=False, fc=False, decoder="features").name
    assert "895,746" in ssn3d("ed").describe()


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        SSN3DConfig(box=36)
    with pytest.raises(ValueError, match="unknown SSN3D variant 'v3'; valid: v1, v2, ed"):
        ssn3d("v3")
    with pytest.raises(ValueError, match="decoder 'unet' is unknown"):
        SSN3DConfig(decoder="unet")
    with pytest.raises(ValueError, match="dropout"):
        SSN3DConfig(dropout=1.0)
    model = ssn3d("ed")
    with pytest.raises(ValueError,
                       match=r"expected input \(B, 40, 40, 40\).*got \(2, 1, 32, 32, 32\)"):
        model(torch.randn(2, 32, 32, 32))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(2, 2, 40, 40, 40))


def test_runs_on_the_device(device: torch.device) -> None:
    model = ssn3d("ed", seed=0, box=16).to(device).eval()
    out = model(torch.randn(2, 16, 16, 16, device=device))
    assert out.device.type == device.type and out.shape == (2, 2, 16, 16, 16)


def test_registered_family_round_trips_and_names_its_channels() -> None:
    from cryo_companion.learn.step import check_stackable
    from cryo_companion.models.registry import build_model, get_spec

    spec = get_spec("ssn3d")
    assert spec.model_cls is SSN3D and spec.config_cls() == SSN3DConfig.variant("ed")
    v2 = SSN3DConfig.variant("v2", box=16)
    m = build_model("ssn3d", v2.to_dict())
    assert isinstance(m, SSN3D) and m.cfg == v2 and m.class_names == ("background", "target")
    assert SSN3DConfig.from_dict(v2.to_dict()) == v2
    # dropout has no weights: not part of the fingerprint; the architecture is
    assert SSN3DConfig.variant("v2", dropout=0.5).fingerprint() == \
        SSN3DConfig.variant("v2").fingerprint() != SSN3DConfig.variant("v1").fingerprint()
    with pytest.raises(ValueError, match="unknown SSN3D configuration keys \\['widths'\\]"):
        SSN3DConfig.from_dict({"widths": 3})
    with pytest.raises(ValueError, match="3 channel names"):
        SSN3D(SSN3DConfig(box=16), class_names=["a", "b", "c"])
    # ED has no dropout module, so N runs of it can share one vmapped step; v1 cannot
    eds = [ssn3d("ed", seed=s, box=16) for s in (0, 1)]
    check_stackable(eds, [torch.optim.Adam(e.parameters()) for e in eds])
    v1s = [ssn3d("v1", seed=s, box=16, fc_width=8) for s in (0, 1)]
    with pytest.raises(ValueError, match="draw random numbers"):
        check_stackable(v1s, [torch.optim.Adam(e.parameters()) for e in v1s])
