"""The Che et al. 2019 network (III-C): shapes, parameter count, weights files."""
from __future__ import annotations

import pytest
import torch

from cryo_companion.models.dsrf3d import (
    DSRF3DConfig,
    DSRF3DSegNet,
    encoder_sizes,
    load_weights,
    parameter_count_formula,
    save_weights,
)

SMALL = DSRF3DConfig(n_classes=3, box=32, enc_widths=(4, 4, 8, 8, 8), fc_widths=(8, 8))


def test_default_parameter_count_matches_formula_and_stated_value():
    m = DSRF3DSegNet()
    assert m.n_parameters() == parameter_count_formula(m.cfg) == 1_065_864
    assert "1,065,864 parameters" in m.describe()


@pytest.mark.parametrize("cfg", [SMALL, DSRF3DConfig(n_classes=5, box=48),
                                 DSRF3DConfig(box=64, enc_widths=(2, 3, 5, 7, 11),
                                              fc_widths=(13, 17))])
def test_parameter_count_formula_independent(cfg):
    assert DSRF3DSegNet(cfg).n_parameters() == parameter_count_formula(cfg)


def test_pooling_sizes():
    # floor mode: 40 -> 20 -> 10 -> 5 -> 2 -> 1 (stated in the module docstring)
    assert encoder_sizes(40) == [20, 10, 5, 2, 1]
    assert encoder_sizes(32) == [16, 8, 4, 2, 1]
    assert encoder_sizes(64)[-1] == 2


def test_shapes_40(device):
    m = DSRF3DSegNet().to(device)
    x = torch.randn(2, 40, 40, 40, device=device)
    out = m(x)
    assert out.log_probs.shape == (2, 4)
    assert out.mask_logits.shape == (2, 4, 40, 40, 40)
    assert torch.allclose(out.log_probs.exp().sum(1), torch.ones(2, device=device), atol=1e-5)
    assert torch.isfinite(out.mask_logits).all()


def test_shapes_small_and_channel_dim():
    m = DSRF3DSegNet(SMALL)
    x = torch.randn(3, 32, 32, 32)
    a, b = m(x), m(x[:, None])
    assert a.mask_logits.shape == (3, 3, 32, 32, 32)
    assert torch.equal(a.log_probs, b.log_probs)


def test_mask_depends_on_local_input_through_skips():
    # the full-resolution skip connection makes the mask at a voxel sensitive to that voxel
    torch.manual_seed(0)
    m = DSRF3DSegNet(SMALL)
    x = torch.randn(1, 32, 32, 32, requires_grad=True)
    m(x).mask_logits[0, 0, 3, 3, 3].backward()
    assert x.grad[0, 3, 3, 3] != 0


def test_bad_input():
    m = DSRF3DSegNet(SMALL)
    with pytest.raises(ValueError, match="expected input"):
        m(torch.randn(2, 40, 40, 40))
    with pytest.raises(ValueError, match="too small"):
        DSRF3DConfig(box=24)
    with pytest.raises(ValueError, match="5 entries"):
        DSRF3DConfig(enc_widths=(1, 2))
    with pytest.raises(ValueError, match="class names"):
        DSRF3DSegNet(SMALL, class_names=["a"])


def test_weights_roundtrip_and_rejections(tmp_path):
    torch.manual_seed(1)
    m = DSRF3DSegNet(SMALL, class_names=["a", "b", "c"])
    p = save_weights(m, tmp_path / "w.pt", threshold=0.2)
    m2, meta = load_weights(p)
    x = torch.randn(2, 32, 32, 32)
    m.eval()
    assert torch.equal(m(x).mask_logits, m2(x).mask_logits)
    assert meta["class_names"] == ["a", "b", "c"] and meta["threshold"] == 0.2
    assert meta["fingerprint"] == SMALL.fingerprint() != DSRF3DConfig().fingerprint()
    assert p.stat().st_size < 5e6
    assert save_weights(DSRF3DSegNet(), tmp_path / "big.pt").stat().st_size < 5e6

    # another model's weights
    torch.save({"format": "other/1", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="another model"):
        load_weights(tmp_path / "other.pt")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ValueError, match="another model"):
        load_weights(tmp_path / "sd.pt")
    # fingerprint that does not match the configuration
    payload = torch.load(p, weights_only=True)
    payload["config"]["enc_widths"] = [4, 4, 8, 8, 16]
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(ValueError, match="fingerprint"):
        load_weights(tmp_path / "tampered.pt")
    (tmp_path / "junk.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="not a cryo_companion weights file"):
        load_weights(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "missing.pt")
