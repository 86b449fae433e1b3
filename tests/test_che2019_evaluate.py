"""Evaluation (Che et al. 2019, IV-B): preprocessing, mask of the predicted class, metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from cryo_companion.dataset import SubtomogramSet
from cryo_companion.filters import gaussian_filter3d
from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, ModelOutput
from cryo_companion.papers.che2019.evaluate import evaluate, preprocess

SMALL = DSRF3DConfig(n_classes=3, box=32, enc_widths=(4, 4, 8, 8, 8), fc_widths=(8, 8))
NAMES = ["a", "b", "c"]


def test_gaussian_filter_matches_scipy(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 12, 10, 11)).astype(np.float32)
    ours = gaussian_filter3d(torch.from_numpy(x).to(device), 1.0).cpu().numpy()
    # torch "reflect" padding is scipy's "mirror"; both truncate at 3 sigma here
    ref = np.stack([ndimage.gaussian_filter(v, 1.0, mode="mirror", truncate=3.0) for v in x])
    assert np.allclose(ours, ref, atol=1e-5)
    assert torch.equal(gaussian_filter3d(torch.from_numpy(x), 0.0), torch.from_numpy(x))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_filter3d(torch.from_numpy(x), -1.0)


def test_preprocess_is_global():
    x = torch.stack([torch.zeros(8, 8, 8), torch.ones(8, 8, 8) * 4])
    y = preprocess(x, sigma_vox=0.0)
    assert y.mean().abs() < 1e-6 and abs(float(y.std()) - 1) < 1e-5
    # one mean/std for the whole set: the two volumes keep different levels
    assert float(y[0].mean()) < 0 < float(y[1].mean())
    with pytest.raises(ValueError, match="constant"):
        preprocess(torch.ones(2, 8, 8, 8))


class _Fixed(DSRF3DSegNet):
    """Always predicts class 2; its class-2 mask is everywhere on, the others everywhere off."""

    def forward(self, x):
        b, d = x.shape[0], self.cfg.box
        lp = torch.log_softmax(torch.tensor([[0.0, 0.0, 5.0]]).expand(b, 3), 1)
        ml = torch.full((b, 3, d, d, d), -10.0)
        ml[:, 2] = 10.0
        return ModelOutput(lp, ml)


def _set(n=6, seed=0):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, 32, 32, 32)) < rng.random((n, 1, 1, 1)) * 0.3
    vols = masks + rng.standard_normal(masks.shape).astype(np.float32)
    labels = np.arange(n) % 3
    return SubtomogramSet(vols, labels, masks, NAMES, 13.68)


def test_evaluate_uses_mask_of_predicted_class():
    ds = _set()
    ev = evaluate(_Fixed(SMALL, NAMES), ds, threshold=0.5, sweep=(0.2, 0.8))
    m = ev.metrics
    assert m["accuracy"] == pytest.approx(2 / 6)
    assert m["confusion_matrix"] == [[0, 0, 2], [0, 0, 2], [0, 0, 2]]
    assert m["per_class_accuracy"] == {"a": 0.0, "b": 0.0, "c": 1.0}
    # predicted mask = everything: pixel accuracy = target fraction, IoU = |T| / N per sample
    frac = ds.masks.reshape(6, -1).mean(1)
    assert m["pixel_accuracy"] == pytest.approx(frac.mean())
    assert m["miou"] == pytest.approx(frac.mean())
    assert m["sweep"]["threshold"] == [0.2, 0.5, 0.8]
    assert ev.prediction.mask_prob.shape == (6, 32, 32, 32)


def test_evaluate_real_model_finite_and_consistent():
    torch.manual_seed(0)
    ds = _set(4)
    m = evaluate(DSRF3DSegNet(SMALL, NAMES), ds, threshold=0.3).metrics
    cm = np.array(m["confusion_matrix"])
    assert cm.sum() == 4 and m["accuracy"] == pytest.approx(np.trace(cm) / 4)
    for k in ("pixel_accuracy", "miou", "iou_pooled", "miou_fg_bg"):
        assert 0 <= m[k] <= 1
    i = m["sweep"]["threshold"].index(0.3)
    assert m["sweep"]["miou"][i] == m["miou"]


def test_evaluate_bad_input():
    model = DSRF3DSegNet(SMALL, NAMES)
    ds = _set(3)
    with pytest.raises(ValueError, match="box"):
        evaluate(DSRF3DSegNet(DSRF3DConfig(n_classes=3, box=40), NAMES), ds)
    with pytest.raises(ValueError, match="class names"):
        evaluate(DSRF3DSegNet(SMALL, ["x", "y", "z"]), ds)
    with pytest.raises(ValueError, match="threshold"):
        evaluate(model, ds, threshold=1.0)
    ds.volumes[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate(model, ds)


def test_evaluation_records_the_test_domain():
    from cryo_companion.papers.che2019.test_domain import FROZEN_HASHES, domain_hash

    model = _Fixed(SMALL, class_names=NAMES)
    ds = _set()
    assert evaluate(model, ds).metrics["test_domain"] is None          # not a test-domain set
    b = "che2019_test_domain_b"
    ds.meta.update({"test_domain": b, "test_domain_hash": domain_hash(b), "config_version": 1})
    assert evaluate(model, ds).metrics["test_domain"] == {"name": b, "hash": FROZEN_HASHES[b],
                                                          "version": 1}


def _run(arm: str, seed: int, acc: float) -> dict:
    return {"arm": arm, "seed": seed, "metrics": {
        "threshold": 0.5, "class_names": NAMES, "accuracy": acc, "miou": acc / 2,
        "per_class_accuracy": dict.fromkeys(NAMES, acc), "confusion_matrix": [[1, 0, 0]] * 3}}


def test_summarize_runs_reports_every_comparison_of_present_arms():
    """Each difference of COMPARISONS (first minus second) is there when both arms have two
    seeds, with the hand-worked mean difference; ``difference`` stays randomized − baseline."""
    from cryo_companion.papers.che2019.evaluate import COMPARISONS, comparison_name, summarize_runs

    acc = {"randomized": (0.4, 0.6), "baseline": (0.3, 0.5), "randomized+context": (0.8, 0.9),
           "baseline+context": (0.6, 0.6)}
    runs = [_run(a, s, v[s]) for a, v in acc.items() for s in (0, 1)]
    summ = summarize_runs(runs)
    assert set(summ["differences"]) == {comparison_name(a, b) for a, b in COMPARISONS}
    d = summ["differences"]["randomized+context − baseline"]["accuracy"]["t"]
    assert d["diff"] == pytest.approx(0.85 - 0.4)
    assert summ["differences"]["baseline+context − baseline"]["miou"]["t"]["diff"] == (
        pytest.approx(0.3 - 0.2))
    assert summ["difference"] == summ["differences"]["randomized − baseline"]
    assert summ["arms"]["randomized"]["accuracy"]["values"] == [0.4, 0.6]
    # an arm with one seed: no interval for its comparisons; absent arms: none at all
    one = summarize_runs([r for r in runs if not (r["arm"] == "baseline" and r["seed"] == 1)])
    assert one["difference"] == {} and "randomized+context − baseline" in one["differences"]
    assert one["differences"]["randomized+context − baseline"] == {}
    only = summarize_runs([r for r in runs if r["arm"] in ("randomized", "randomized+context")])
    assert list(only["differences"]) == ["randomized+context − randomized"]
