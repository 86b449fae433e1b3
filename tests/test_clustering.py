"""k-means, t-SNE and the enriched cluster's purity and recall: hand-worked and blob cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cryo_companion.clustering import contingency, enriched_cluster, kmeans, tsne


def _blobs(n_per: int = 30, k: int = 4, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, dim))
    x = np.concatenate([c + rng.normal(0, 0.5, (n_per, dim)) for c in centres])
    return x, np.repeat(np.arange(k), n_per)


def test_kmeans_finds_separated_blobs_and_is_seeded() -> None:
    x, y = _blobs()
    c = kmeans(x, 4, seed=0)
    table = contingency(c, y, 4, 4)
    assert sorted(table.max(axis=1).tolist()) == [30, 30, 30, 30]       # one blob per cluster
    assert np.array_equal(c, kmeans(torch.as_tensor(x), 4, seed=0))
    assert c.dtype == np.int64 and set(c.tolist()) == {0, 1, 2, 3}


def test_tsne_keeps_blobs_apart() -> None:
    x, y = _blobs(n_per=20, k=3)
    e = tsne(x, seed=0, perplexity=10)
    assert e.shape == (60, 2) and np.isfinite(e).all()
    d = ((e[:, None] - e[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(1)] == y).all()                     # every nearest neighbour: same blob
    assert np.allclose(e, tsne(x, seed=0, perplexity=10))


def test_contingency_by_hand() -> None:
    t = contingency([0, 0, 1, 2, 2, 2], [1, 0, 1, 1, 1, 0], 3, 2)
    assert t.tolist() == [[1, 1], [0, 1], [1, 2]]


def test_enriched_cluster_by_hand() -> None:
    # target 5: cluster 0 holds 2 of its 3 members (of 3), cluster 1 one (of 2)
    r = enriched_cluster([0, 0, 0, 1, 1, 2], [5, 5, 1, 5, 2, 2], 5)
    assert r["cluster"] == 0 and r["n_members"] == 3 and r["n_target_in_cluster"] == 2
    assert r["purity"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 3)
    assert r["base_rate"] == pytest.approx(0.5) and r["enrichment"] == pytest.approx(4 / 3)
    assert r["composition"] == {5: 2, 1: 1}
    # equal counts: the purer cluster wins
    r2 = enriched_cluster([0, 0, 1], [1, 0, 1], 1)
    assert r2["cluster"] == 1 and r2["purity"] == 1.0 and r2["recall"] == 0.5


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="k must lie in"):
        kmeans(np.zeros((5, 2)), 6, seed=0)
    with pytest.raises(ValueError, match="features must be"):
        kmeans(np.zeros(5), 2, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        tsne(np.full((5, 2), np.nan), seed=0)
    with pytest.raises(ValueError, match="class 3 has no sample"):
        enriched_cluster([0, 1], [0, 1], 3)
    with pytest.raises(ValueError, match="labels must be 2 non-negative integers"):
        enriched_cluster([0, 1], [0.5, 1.0], 1)
