"""Batch sources (cryo_companion.learn.batches): chunks, standardisation, resumable state,
class-balanced simulator draws, shuffled epochs over a SubtomogramSet."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cryo_companion.dataset import SubtomogramSet
from cryo_companion.learn.batches import DatasetBatches, DrawnBatches, simulator_draw
from cryo_companion.simulate.randomization import Preset, standardize_batch
from cryo_companion.simulate.subtomogram import Simulator


def counting_draw(n: int, gen: torch.Generator):
    """Items numbered by a counter, plus a random column (so the generator is consumed)."""
    counting_draw.calls.append(n)
    start = sum(counting_draw.calls[:-1])
    return (torch.arange(start, start + n, dtype=torch.float32) + torch.rand(n, generator=gen),
            torch.arange(start, start + n))


def test_chunks_interleave_and_the_last_chunk_is_short():
    counting_draw.calls = []
    src = DrawnBatches(counting_draw, 2, chunk=3, total=4)
    gen = torch.Generator().manual_seed(0)
    got = [src.next_batch(gen)[1].tolist() for _ in range(4)]
    # one call of 6 items gives batches (0, 3), (1, 4), (2, 5); the 4th batch alone is drawn
    assert counting_draw.calls == [6, 2]
    assert got == [[0, 3], [1, 4], [2, 5], [6, 7]]


def test_state_dict_continues_exactly():
    counting_draw.calls = []
    a = DrawnBatches(counting_draw, 2, chunk=3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(2):
        a.next_batch(gen)
    state, gstate = a.state_dict(), gen.get_state()
    rest = [a.next_batch(gen)[0] for _ in range(3)]
    b = DrawnBatches(counting_draw, 2, chunk=3)
    b.load_state_dict(state)
    gen.set_state(gstate)
    counting_draw.calls = counting_draw.calls[:1]
    again = [b.next_batch(gen)[0] for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(rest, again))


def test_the_source_standardises_each_batch_on_its_own():
    def draw(n, gen):
        return (torch.randn(n, 4, 4, 4, generator=gen) * 5 + 3,)

    gen = torch.Generator().manual_seed(0)
    raw = draw(4, torch.Generator().manual_seed(0))[0]
    src = DrawnBatches(draw, 2, chunk=2, standardize=True)
    x = src.next_batch(gen)[0]
    assert torch.allclose(x, standardize_batch(raw[0::2]))
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(correction=0)) - 1) < 1e-4


def test_bad_sizes():
    with pytest.raises(ValueError, match="batch_size"):
        DrawnBatches(counting_draw, 0)
    with pytest.raises(ValueError, match="chunk"):
        DrawnBatches(counting_draw, 2, chunk=0)


def _simulator(n_membrane: int = 6) -> Simulator:
    """Two classes: one template of class 0, ``n_membrane`` of class 1 (16^3 blobs)."""
    g = torch.arange(16, dtype=torch.float32) - 7.5
    z, y, x = torch.meshgrid(g, g, g, indexing="ij")
    vols = [torch.exp(-(z * z + y * y + x * x) / (2 * (2 + i) ** 2))
            for i in range(1 + n_membrane)]
    labels = torch.tensor([0] + [1] * n_membrane)
    return Simulator(torch.stack(vols), labels, voxel_size_A=13.68)


PRESET = Preset(name="test", snr=(1.0, 1.0), wedge_deg=(30.0, 30.0), defocus_um=(-4.0, -4.0),
                cs_mm=(2.7, 2.7))


def test_simulator_draw_balances_classes_and_is_seeded():
    draw = simulator_draw(_simulator(), PRESET)
    x, label, mask = draw(400, torch.Generator().manual_seed(0))
    assert x.shape == (400, 16, 16, 16) and mask.dtype == torch.bool
    share0 = float((label == 0).float().mean())
    assert 0.4 < share0 < 0.6            # uniform over templates would give 1/7
    x2, label2, _ = draw(400, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(label, label2)
    flat = simulator_draw(_simulator(), PRESET, class_balanced=False)
    _, lab, _ = flat(700, torch.Generator().manual_seed(0))
    assert 0.08 < float((lab == 0).float().mean()) < 0.22
    with pytest.raises(TypeError, match="Preset"):
        simulator_draw(_simulator(), "randomized")  # type: ignore[arg-type]


def _set(n: int = 10, masks: bool = True) -> SubtomogramSet:
    rng = np.random.default_rng(0)
    vols = rng.normal(size=(n, 4, 4, 4)).astype(np.float32)
    vols[:, 0, 0, 0] = np.arange(n)          # an id per subtomogram
    return SubtomogramSet(vols, np.arange(n) % 3, vols > 0 if masks else None,
                          ["a", "b", "c"], 10.0)


def test_dataset_epochs_are_permutations_and_resume():
    src = DatasetBatches(_set(), 3)
    gen = torch.Generator().manual_seed(0)
    ep1 = [src.next_batch(gen) for _ in range(3)]           # 9 of 10; 1 left over
    ids = torch.cat([b[0][:, 0, 0, 0] for b in ep1]).long().tolist()
    assert len(set(ids)) == 9 and src.epoch == 1
    _, y, m = ep1[0]
    assert torch.equal(y, torch.as_tensor(ids[:3]) % 3) and m.dtype == torch.bool
    state, gstate = src.state_dict(), gen.get_state()
    nxt = src.next_batch(gen)
    assert src.epoch == 2
    other = DatasetBatches(_set(), 3)
    other.load_state_dict(state)
    gen.set_state(gstate)
    assert torch.equal(other.next_batch(gen)[0], nxt[0])
    src2 = DatasetBatches(_set(), 3, standardize=True, masks=False)
    b = src2.next_batch(torch.Generator().manual_seed(0))
    assert len(b) == 2 and abs(float(b[0].mean())) < 1e-5


def test_a_resident_set_gives_the_same_batches_on_its_device(device):
    host, res = DatasetBatches(_set(), 3, device=device), DatasetBatches(_set(), 3, device=device,
                                                                         resident=True)
    assert all(c.device.type == device.type for c in res._cols)
    g1, g2 = torch.Generator(device=device).manual_seed(1), torch.Generator(device=device).manual_seed(1)
    for _ in range(5):
        for a, b in zip(host.next_batch(g1), res.next_batch(g2)):
            assert a.device.type == b.device.type == device.type and torch.equal(a, b)


def test_dataset_batches_errors():
    with pytest.raises(ValueError, match="exceeds"):
        DatasetBatches(_set(4), 5)
    with pytest.raises(ValueError, match="no masks"):
        DatasetBatches(_set(4, masks=False), 2)
