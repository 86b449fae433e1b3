"""DSM-Net, its subnets and DSRF3D-v2: parameter counts, outputs, shared layers, loss, weights."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cryo_companion.models.dsmnet import (
    VARIANTS,
    DSMNet,
    DSMNetConfig,
    dsmnet,
    load_weights,
    multitask_loss,
    parameter_count_formula,
    save_weights,
)
from cryo_companion.models.dsrf3d_v2 import DSRF3Dv2Config, dsrf3d_v2
from cryo_companion.models.dsrf3d_v2 import parameter_count_formula as dsrf_formula


def _conv(c_in: int, c_out: int, k: int = 3) -> int:
    return k ** 3 * c_in * c_out + c_out


# Counted by hand from the layer list of the module docstring, layer by layer.
BACKBONE = (_conv(1, 32) + 2 * _conv(32, 32) + _conv(32, 64) + 2 * _conv(64, 64)
            + _conv(64, 128) + 2 * _conv(128, 128))
CLS = (128 * 1024 + 1024) + (1024 * 22 + 22)
DECODER = (_conv(128, 64) + 2 * _conv(64, 64) + _conv(64, 32) + 2 * _conv(32, 32)
           + _conv(32, 32))
SEG, REC = 32 * 2 + 2, 32 + 1


def test_hand_counts_are_the_docstrings() -> None:
    assert BACKBONE == 1_439_232 and CLS == 154_646 and DECODER == 580_928
    assert BACKBONE + CLS == 1_593_878
    assert BACKBONE + DECODER + SEG == 2_020_226
    assert BACKBONE + CLS + DECODER + SEG + REC == 2_174_905


@pytest.mark.parametrize("variant,count", [
    ("cls", BACKBONE + CLS), ("seg", BACKBONE + DECODER + SEG),
    ("cls+rec", BACKBONE + CLS + DECODER + REC), ("cls+seg", BACKBONE + CLS + DECODER + SEG),
    ("dsmnet", BACKBONE + CLS + DECODER + SEG + REC)])
def test_parameter_counts(variant: str, count: int) -> None:
    model = dsmnet(variant, seed=0)
    assert model.n_parameters() == count == parameter_count_formula(model.cfg)
    assert f"{count:,} parameters" in model.describe()


def test_the_unseen_structure_network_has_21_outputs() -> None:
    model = dsmnet("dsmnet", seed=0, n_classes=21)
    assert model.n_parameters() == BACKBONE + CLS - 1025 + DECODER + SEG + REC == 2_173_880
    assert model(torch.randn(1, 40, 40, 40))["class_logits"].shape == (1, 21)


@pytest.mark.parametrize("heads", [("cls",), ("seg",), ("rec",), ("seg", "rec"),
                                   ("cls", "rec"), ("cls", "seg", "rec")])
def test_formula_and_outputs_for_other_sizes(heads: tuple[str, ...]) -> None:
    cfg = DSMNetConfig(heads=heads, n_classes=5, box=16, widths=(4, 6, 8), fc_width=12)
    model = DSMNet(cfg).eval()
    assert model.n_parameters() == parameter_count_formula(cfg)
    out = model(torch.randn(3, 1, 16, 16, 16))
    want = {"class_logits": (3, 5), "features": (3, 12), "segmentation": (3, 2, 16, 16, 16),
            "recovery": (3, 16, 16, 16)}
    keys = {"cls": ["class_logits", "features"], "seg": ["segmentation"], "rec": ["recovery"]}
    expected = {k for h in heads for k in keys[h]}
    assert set(out) == expected
    for k in expected:
        assert tuple(out[k].shape) == want[k], k


def test_variant_names_and_keys() -> None:
    assert [DSMNetConfig.variant(v).name for v in VARIANTS] == [
        "Cls Subnet", "Seg Subnet", "Cls+Rec Subnet", "Cls+Seg Subnet", "DSM-Net"]
    assert DSMNetConfig.variant("Cls+Seg Subnet").heads == ("cls", "seg")
    assert DSMNetConfig.variant("DSM-Net").variant_key == "dsmnet"
    assert DSMNetConfig(heads=("rec", "cls")).heads == ("cls", "rec")   # canonical order
    assert DSMNetConfig(heads=("seg", "rec")).variant_key == "seg+rec"


def test_config_round_trip_and_fingerprint() -> None:
    cfg = DSMNetConfig.variant("cls+seg", n_classes=21)
    assert DSMNetConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.fingerprint() == DSMNetConfig.from_dict(cfg.to_dict()).fingerprint()
    assert cfg.fingerprint() != DSMNetConfig.variant("cls+seg").fingerprint()


def test_features_feed_the_classifier_and_dropout_acts_only_there() -> None:
    model = dsmnet("dsmnet", seed=1, box=16, fc_width=32)
    x = torch.randn(2, 16, 16, 16)
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert model.classifier is not None
        assert torch.allclose(out["class_logits"], model.classifier(out["features"]))
        assert bool((out["features"] >= 0).all())            # after the ReLU
        model.train()
        a, b = model(x), model(x)
    assert not torch.equal(a["class_logits"], b["class_logits"])      # dropout 0.7
    for k in ("features", "segmentation", "recovery"):
        assert torch.equal(a[k], b[k]), k


def test_segmentation_and_recovery_share_the_decoder() -> None:
    model = dsmnet("dsmnet", seed=2, box=16).eval()
    x = torch.randn(2, 16, 16, 16)
    with torch.no_grad():
        ref = model(x)
        assert model.rec_head is not None
        model.rec_head.weight.add_(1.0)                    # the recovery head alone
        out = model(x)
        assert torch.equal(out["segmentation"], ref["segmentation"])
        assert not torch.equal(out["recovery"], ref["recovery"])
        model.decoder["up3"].bias.add_(0.5)                 # the shared decoder
        out2 = model(x)
    assert not torch.equal(out2["segmentation"], out["segmentation"])
    assert not torch.equal(out2["recovery"], out["recovery"])
    assert torch.equal(out2["class_logits"], ref["class_logits"])   # not on the cls path


def test_the_decoder_uses_the_backbone_skips() -> None:
    """The skip from res1 (D/2) reaches the decoder directly: with every path through the
    deeper backbone cut (down1 zeroed), the segmentation still depends on the input."""
    model = dsmnet("seg", seed=3, box=16).eval()
    with torch.no_grad():
        model.down1.weight.zero_()
        model.down1.bias.zero_()
        a = model(torch.randn(1, 16, 16, 16))["segmentation"]
        b = model(torch.randn(1, 16, 16, 16))["segmentation"]
    assert not torch.allclose(a, b)


def test_same_seed_same_weights() -> None:
    a, b, c = dsmnet(seed=3), dsmnet(seed=3), dsmnet(seed=4)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_keras_initialisation() -> None:
    for m in dsmnet(seed=0).modules():
        if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d, torch.nn.Linear)):
            assert torch.count_nonzero(m.bias) == 0
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            assert float(m.weight.detach().abs().max()) <= bound + 1e-7


def test_every_parameter_gets_a_gradient_from_the_weighted_loss() -> None:
    model = dsmnet("dsmnet", seed=0, box=16, fc_width=16, n_classes=4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 16, 16, generator=g)
    labels = torch.tensor([1, 3])
    masks = torch.rand(2, 16, 16, 16, generator=g) > 0.9
    density = torch.rand(2, 16, 16, 16, generator=g)
    total, parts = multitask_loss(model(x), labels, masks, density,
                                  weights={"cls": 1.0, "seg": 10.0, "rec": 1.0})
    total.backward()
    assert set(parts) == {"cls", "seg", "rec"}
    for name, p in model.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_multitask_loss_by_hand() -> None:
    # two samples, three classes; logits chosen so that the cross-entropy is known
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0]])
    ce_cls = (math.log(3.0) + math.log(5.0 / 3.0)) / 2          # p = 1/3, then 3/5
    seg = torch.zeros(2, 2, 1, 1, 2)                             # all voxels p = 1/2
    rec = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 0.0]]]])         # (2, 1, 1, 2)
    dens = torch.zeros(2, 1, 1, 2)
    out = {"class_logits": logits, "segmentation": seg, "recovery": rec}
    total, parts = multitask_loss(out, torch.tensor([0, 0]), torch.zeros(2, 1, 1, 2),
                                  dens, weights={"cls": 1.0, "seg": 10.0, "rec": 2.0})
    assert float(parts["cls"]) == pytest.approx(ce_cls, rel=1e-6)
    assert float(parts["seg"]) == pytest.approx(math.log(2.0), rel=1e-6)
    assert float(parts["rec"]) == pytest.approx((1 + 4) / 4, rel=1e-6)
    assert float(total) == pytest.approx(ce_cls + 10 * math.log(2.0) + 2 * 1.25, rel=1e-6)
    # only the heads present count; a head without its target or weight is an error
    t2, p2 = multitask_loss({"recovery": rec}, density=dens, weights={"rec": 1.0})
    assert set(p2) == {"rec"} and float(t2) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="'cls' head needs its target"):
        multitask_loss(out, None, torch.zeros(2, 1, 1, 2), dens, weights={"cls": 1, "seg": 1,
                                                                          "rec": 1})
    with pytest.raises(ValueError, match="'seg' head needs its target and a weight"):
        multitask_loss(out, torch.tensor([0, 0]), torch.zeros(2, 1, 1, 2), dens,
                       weights={"cls": 1, "rec": 1})
    with pytest.raises(ValueError, match=r"'rec' target has shape \(2, 2\)"):
        multitask_loss({"recovery": rec}, density=torch.zeros(2, 2), weights={"rec": 1})


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        DSMNetConfig(box=36)
    with pytest.raises(ValueError, match="non-empty subset of cls, seg, rec"):
        DSMNetConfig(heads=("cls", "det"))
    with pytest.raises(ValueError, match="non-empty subset"):
        DSMNetConfig(heads=())
    with pytest.raises(ValueError, match="unknown DSM-Net variant 'rec'; valid: cls, seg"):
        dsmnet("rec")
    with pytest.raises(ValueError, match="dropout"):
        DSMNetConfig(dropout=1.0)
    with pytest.raises(ValueError, match="3 class names for 22 classes"):
        DSMNet(class_names=["a", "b", "c"])
    model = dsmnet(seed=0)
    with pytest.raises(ValueError, match=r"expected input \(B, 40, 40, 40\).*got \(2, 1, 32"):
        model(torch.randn(2, 32, 32, 32))


def test_weights_round_trip(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(4)]
    model = dsmnet("cls+seg", seed=5, box=16, n_classes=4, fc_width=8, class_names=names)
    path = save_weights(model, tmp_path / "w.pt", preprocessing={"standardize": "per_box"},
                        training={"seed": 5})
    back, meta = load_weights(path)
    assert back.cfg == model.cfg and back.class_names == tuple(names) and not back.training
    assert meta["preprocessing"] == {"standardize": "per_box"} and meta["training"]["seed"] == 5
    x = torch.randn(2, 16, 16, 16)
    model.eval()
    with torch.no_grad():
        a, b = model(x), back(x)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weights_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        load_weights(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="not a cryo_companion weights file"):
        load_weights(tmp_path / "junk.pt")
    torch.save({"format": "cryo_companion.dsrf3d-segnet/1"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="weights of another model"):
        load_weights(tmp_path / "other.pt")
    model = dsmnet("seg", seed=0, box=16)
    path = save_weights(model, tmp_path / "w.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["heads"] = ["cls", "seg"]       # the architecture no longer matches
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(ValueError, match="do not fit their recorded architecture"):
        load_weights(tmp_path / "tampered.pt")


def test_runs_on_the_device(device: torch.device) -> None:
    model = dsmnet("dsmnet", seed=0, box=16, fc_width=8).to(device).eval()
    out = model(torch.randn(2, 16, 16, 16, device=device))
    assert all(v.device.type == device.type for v in out.values())


def test_dsrf3d_v2_has_the_papers_capacity() -> None:
    # DSM-Net's Table 2 baseline: encoder 32, 32, pool, 64, 64, pool, 128, 128, pool; FC 1024 -
    # 1024; 22 classes: "about 18.3 M" parameters
    enc = (_conv(1, 32) + _conv(32, 32) + _conv(32, 64) + _conv(64, 64) + _conv(64, 128)
           + _conv(128, 128))
    fc = (128 * 5 ** 3 + 1) * 1024 + 1025 * 1024 + 1025 * 22
    model = dsrf3d_v2(seed=0)
    assert model.n_parameters() == enc + fc == 18_315_574 == dsrf_formula(model.cfg)
    assert round(model.n_parameters() / 1e6, 1) == 18.3


def test_dsrf3d_v2_outputs_and_bad_input() -> None:
    cfg = DSRF3Dv2Config(n_classes=3, box=16, fc_width=8)
    model = dsrf3d_v2(seed=0, n_classes=3, box=16, fc_width=8).eval()
    assert model.n_parameters() == dsrf_formula(cfg)
    out = model(torch.randn(2, 16, 16, 16))
    assert out["class_logits"].shape == (2, 3) and out["features"].shape == (2, 8)
    assert DSRF3Dv2Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="multiple of 8"):
        DSRF3Dv2Config(box=20)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(2, 40, 40, 40))
    loss = F.cross_entropy(dsrf3d_v2(seed=0, n_classes=3, box=16, fc_width=8)(
        torch.randn(2, 16, 16, 16))["class_logits"], torch.tensor([0, 2]))
    assert math.isfinite(float(loss.detach()))


def test_registered_with_example_batches_and_the_right_stepper() -> None:
    """Both networks are in the registry; only a network with a classification head has dropout,
    so the Seg Subnet's runs can share a vmapped step and the others step by the loop."""
    from cryo_companion.learn.step import check_stackable
    from cryo_companion.models.registry import build_model, get_spec, network_names

    assert {"dsmnet", "dsrf3d_v2"} <= set(network_names())
    spec = get_spec("dsmnet")
    cfg = DSMNetConfig.variant("seg", box=16, widths=(2, 2, 4), fc_width=4)
    x, label, mask, dens = spec.example_batch(cfg, 3, torch.Generator().manual_seed(0))
    assert x.shape == mask.shape == dens.shape == (3, 16, 16, 16) and label.shape == (3,)
    assert mask.dtype == torch.bool and torch.equal(dens, mask.float())
    assert isinstance(build_model("dsmnet", cfg.to_dict()), DSMNet)
    v = get_spec("dsrf3d_v2").example_batch(DSRF3Dv2Config(box=16, n_classes=5), 2,
                                            torch.Generator().manual_seed(0))
    assert v[0].shape == (2, 16, 16, 16) and int(v[1].max()) < 5
    for variant, stackable in (("seg", True), ("cls", False), ("dsmnet", False)):
        models = [dsmnet(variant, s, box=16, widths=(2, 2, 4), fc_width=4) for s in (0, 1)]
        opts = [torch.optim.Adam(m.parameters()) for m in models]
        if stackable:
            check_stackable(models, opts)
        else:
            with pytest.raises(ValueError, match="draw random numbers"):
                check_stackable(models, opts)
    with pytest.raises(TypeError):
        DSMNet(DSMNetConfig(), None, torch.Generator())  # type: ignore[misc]   # by keyword
