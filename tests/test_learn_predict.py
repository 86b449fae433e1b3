"""Chunked prediction (cryo_companion.learn.predict): equal to one big forward pass, for any
output structure, with a reduce step; evaluation mode restored."""
from __future__ import annotations

import pytest
import torch

from cryo_companion.learn.predict import concat_outputs, model_device, predict
from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, ModelOutput

SMALL = DSRF3DConfig(n_classes=3, box=32, enc_widths=(2, 2, 4, 4, 4), fc_widths=(4, 4))


def test_chunks_equal_one_pass_for_a_dataclass_output():
    torch.manual_seed(0)
    model = DSRF3DSegNet(SMALL).train()
    x = torch.randn(5, 32, 32, 32)
    got = predict(model, x, batch_size=2)
    assert model.training                          # mode restored
    model.eval()
    with torch.no_grad():
        ref = model(x)
    assert isinstance(got, ModelOutput)
    torch.testing.assert_close(got.log_probs, ref.log_probs)
    torch.testing.assert_close(got.mask_logits, ref.mask_logits)


def test_reduce_sees_each_chunk_and_its_slice():
    model = torch.nn.Linear(3, 2)
    x = torch.randn(7, 3)
    seen = []

    def reduce(out, sl):
        seen.append((sl.start, sl.stop))
        return {"arg": out.argmax(1), "rows": torch.arange(sl.start, sl.stop)}

    got = predict(model, x, batch_size=3, reduce=reduce, out_device=None)
    assert seen == [(0, 3), (3, 6), (6, 7)]
    assert got["rows"].tolist() == list(range(7))
    assert torch.equal(got["arg"], model(x).argmax(1))


def test_concat_nested_and_errors():
    parts = [(torch.ones(2), [torch.zeros(2, 1)]), (torch.ones(1), [torch.zeros(1, 1)])]
    a, (b,) = concat_outputs(parts)
    assert a.shape == (3,) and b.shape == (3, 1)
    with pytest.raises(TypeError, match="str"):
        concat_outputs(["a", "b"])
    with pytest.raises(ValueError, match="no chunks"):
        concat_outputs([])
    with pytest.raises(ValueError, match="batch_size"):
        predict(torch.nn.Linear(1, 1), torch.ones(2, 1), batch_size=0)
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")
