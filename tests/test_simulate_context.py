"""Context randomization: neighbours packed around the target (cryo_companion.simulate.context)."""
from __future__ import annotations

import math

import pytest
import torch
from simulator_reference import assert_same_batch, reference_sample

from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate import context as context_module
from cryo_companion.simulate.context import ContextBank, membrane_fragments
from cryo_companion.simulate.subtomogram import Simulator

D = 24
N = D ** 3


def _blob(sx: float, sy: float, sz: float, D: int = D, at=(0.0, 0.0, 0.0)) -> torch.Tensor:
    c = (D - 1) / 2
    z, y, x = torch.meshgrid(*[torch.arange(D, dtype=torch.float32) - c] * 3, indexing="ij")
    return torch.exp(-((x - at[0]) ** 2 / sx + (y - at[1]) ** 2 / sy + (z - at[2]) ** 2 / sz))


def _targets() -> tuple[torch.Tensor, torch.Tensor]:
    """Two targets: an elongated particle and a slab crossing the box (a 'membrane')."""
    slab = _blob(1e6, 1e6, 2.0)
    return torch.stack([_blob(12, 4, 6), slab]), torch.tensor([0, 1])


def _bank(device="cpu", **kw) -> ContextBank:
    """Neighbours of several sizes and shapes (masks of about 10 to 300 voxels)."""
    vols = torch.stack([_blob(1, 1, 1), _blob(2, 2, 2), _blob(4, 3, 3), _blob(12, 2, 2),
                        _blob(6, 6, 6)])
    return ContextBank(vols, ["small", "small", "medium", "rod", "large"],
                       weights=[1, 1, 1, 1, 1], device=device, **kw)


def _sim(device="cpu", **kw) -> Simulator:
    return Simulator(*_targets(), device=device, context=_bank(device, **kw))


def _preset(lo: float = 0.0, hi: float = 0.15, base: str = "randomized"):
    return get_preset(base).replace(name="test+context", context_fraction=(lo, hi))


def _pack(bank: ContextBank, n: int, hi: float, seed: int = 0, device="cpu"):
    v, _ = _targets()
    mask = (v > 0.25)[torch.arange(n) % 2].to(device)
    phi = torch.linspace(0.0, hi, n, device=device)
    return mask, phi, bank.pack(mask, phi, torch.Generator(device=device).manual_seed(seed))


def test_occupancy_measured_equals_occupancy_drawn_within_the_granularity(device):
    bank = _bank(device)
    _, phi, pk = _pack(bank, 12, 0.15, device=device)
    # the measured occupancy is exactly that of the neighbours' masks ...
    torch.testing.assert_close(pk.fraction, pk.mask.float().mean((1, 2, 3)), rtol=0, atol=1e-7)
    # ... and within half a neighbour of the drawn one: less than half the largest posed one
    # above, at most half the smallest below (the packer stops when the smallest would overshoot)
    assert 0 < pk.smallest_voxels <= pk.largest_voxels
    d = (pk.fraction.double() - phi.double()).cpu()
    assert d.max().item() < 0.5 * pk.largest_voxels / N
    assert d.min().item() >= -0.5 * pk.smallest_voxels / N - 1e-9, d
    assert d.abs().max().item() < 0.005  # at most 70 voxels of the 24³ box
    assert pk.count[0].item() == 0 and pk.count[-1].item() > 5  # phi = 0: no neighbour


def test_neighbours_never_overlap_the_target_or_each_other(device):
    bank = _bank(device)
    mask, _, pk = _pack(bank, 8, 0.2, seed=3, device=device)
    assert not bool((pk.mask & mask).any())
    # the occupancy is the sum of the neighbours' own in-box mask volumes: had two neighbours
    # overlapped, the union would count less
    assert torch.equal((pk.fraction.double() * N).round().long().cpu(),
                       pk.mask.reshape(8, -1).sum(1).cpu())
    # density where the neighbours' masks are, and only near them
    assert bool((pk.density[pk.mask] > 0).all())


def test_the_mask_is_the_targets_only_and_the_neighbours_pass_through_the_same_optics():
    s = _sim()
    n = 4
    R = torch.eye(3).expand(n, 3, 3)
    idx = torch.tensor([0, 1, 0, 1])
    base = {"snr": math.inf, "wedge_deg": 30.0, "defocus_um": -4.0, "cs_mm": 2.0}
    kw = {"return_stages": True}
    a = s.simulate(idx, R, base, torch.Generator().manual_seed(1), **kw)
    b = s.simulate(idx, R, {**base, "context_fraction": 0.12}, torch.Generator().manual_seed(1),
                   **kw)
    assert torch.equal(a.mask, b.mask)  # the target's mask, whatever surrounds it
    assert b.context_mask is not None and not bool((b.context_mask & b.mask).any())
    assert b.context_mask.float().mean().item() > 0.08
    # optics are linear: the clean difference is the filtered density of the neighbours
    ctx = b.stages["density"] - a.stages["density"]
    H = s.transfer(base)
    expect = torch.fft.irfftn(torch.fft.rfftn(ctx, dim=(-3, -2, -1)) * H, s=(D,) * 3,
                              dim=(-3, -2, -1))
    torch.testing.assert_close(b.clean - a.clean, expect, atol=1e-5 * expect.abs().max().item(),
                               rtol=0)
    assert set(b.params) - set(a.params) == {"context_fraction", "context_fraction_measured",
                                             "context_count"}
    assert a.context_mask is None


def test_zero_occupancy_reproduces_the_simulator_without_context_exactly():
    v, lab = _targets()
    plain = Simulator(v, lab)
    s = _sim()
    # a preset without context: the output of the simulator before context existed, bit for bit
    for preset in ("randomized", "baseline"):
        a = s.sample(6, get_preset(preset), torch.Generator().manual_seed(2))
        assert_same_batch(a, reference_sample(plain, 6, get_preset(preset),
                                              torch.Generator().manual_seed(2)))
        assert a.context_mask is None
    # a context range of (0, 0) is no context (sample_params draws nothing more)
    assert not _preset(0.0, 0.0).has_context
    assert_same_batch(s.sample(6, _preset(0.0, 0.0), torch.Generator().manual_seed(2)),
                      plain.sample(6, get_preset("randomized"), torch.Generator().manual_seed(2)))
    # an explicit occupancy of 0: the same volumes, masks and noise
    R = torch.eye(3).expand(3, 3, 3)
    p = {"snr": 0.5, "wedge_deg": 20.0, "defocus_um": -3.0, "cs_mm": 2.7}
    x = plain.simulate(torch.tensor([0, 1, 0]), R, p, torch.Generator().manual_seed(4))
    y = s.simulate(torch.tensor([0, 1, 0]), R, {**p, "context_fraction": 0.0},
                   torch.Generator().manual_seed(4))
    for f in ("noisy", "clean", "mask"):
        assert torch.equal(getattr(x, f), getattr(y, f)), f
    assert int(y.params["context_count"].sum()) == 0 and not bool(y.context_mask.any())


def test_same_seed_same_batch_and_the_noise_does_not_depend_on_the_context(device):
    s = _sim(device)

    def g(seed: int) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(seed)

    a = s.sample(6, _preset(), g(5))
    b = s.sample(6, _preset(), g(5))
    c = s.sample(6, _preset(), g(6))
    assert_same_batch(a, b)
    assert torch.equal(a.context_mask, b.context_mask)
    assert not torch.equal(a.noisy, c.noisy)
    # the noise is drawn before the neighbours: with and without context the white noise is the
    # same, so noisy - clean differs only by the factor sigma (which follows var(clean))
    R = torch.eye(3, device=device).expand(2, 3, 3)
    p = {"snr": 1.0, "wedge_deg": 0.0, "defocus_um": -2.0, "cs_mm": 2.0}
    x = s.simulate(torch.tensor([0, 1]), R, p, g(9))
    y = s.simulate(torch.tensor([0, 1]), R, {**p, "context_fraction": 0.1}, g(9))
    nx, ny = (x.noisy - x.clean).flatten(1), (y.noisy - y.clean).flatten(1)
    corr = torch.nn.functional.cosine_similarity(nx.double(), ny.double(), dim=1)
    assert bool((corr > 0.999).all()), corr


def test_one_batched_call_for_the_whole_batch(monkeypatch):
    """The packer runs once per batch, on every sample at once: its rounds do not grow with n."""
    calls, rounds = [], []
    pack, place = ContextBank.pack, ContextBank._place

    def counting_pack(self, target_mask, fraction, generator=None):
        calls.append(target_mask.shape[0])
        return pack(self, target_mask, fraction, generator)

    def counting_place(self, st, pool, rows, e, t):
        rounds.append(rows.numel())
        return place(self, st, pool, rows, e, t)

    monkeypatch.setattr(ContextBank, "pack", counting_pack)
    monkeypatch.setattr(ContextBank, "_place", counting_place)
    s = _sim(max_rounds=20)
    s.sample(16, _preset(0.05, 0.15), torch.Generator().manual_seed(0))
    assert calls == [16]
    assert 0 < len(rounds) <= 20 and max(rounds) == 16  # the first round: all 16 samples


def test_context_needs_a_bank_and_valid_ranges():
    v, lab = _targets()
    plain = Simulator(v, lab)
    with pytest.raises(ValueError, match="no context bank.*context_bank"):
        plain.sample(2, _preset())
    R = torch.eye(3).expand(1, 3, 3)
    p = {"snr": 1.0, "wedge_deg": 0.0, "defocus_um": -2.0, "cs_mm": 2.0}
    with pytest.raises(ValueError, match="no context bank"):
        plain.simulate(torch.tensor([0]), R, {**p, "context_fraction": 0.1})
    with pytest.raises(ValueError, match=r"context_fraction must be in \[0, 0.5\]"):
        _sim().simulate(torch.tensor([0]), R, {**p, "context_fraction": 0.7})
    with pytest.raises(ValueError, match="context_fraction"):
        _preset(0.1, 0.6)
    with pytest.raises(ValueError, match="needs lo <= hi"):
        _preset(0.2, 0.1)
    with pytest.raises(ValueError, match="box 24 .* simulator's box 20"):
        Simulator(v, lab, box=20, context=_bank())
    with pytest.raises(TypeError, match="ContextBank"):
        Simulator(v, lab, context=v)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive maximum"):
        ContextBank(torch.zeros(1, 8, 8, 8), ["empty"])
    with pytest.raises(ValueError, match="one entry per volume"):
        ContextBank(torch.ones(2, 8, 8, 8), ["a"])
    with pytest.raises(ValueError, match="weights"):
        ContextBank(torch.ones(2, 8, 8, 8), ["a", "b"], weights=[1, -1])
    with pytest.raises(ValueError, match="candidates"):
        ContextBank(torch.ones(1, 8, 8, 8), ["a"], candidates=0)


def test_a_batch_without_occupancy_draws_nothing():
    bank = _bank()
    g = torch.Generator().manual_seed(7)
    state = g.get_state()
    pk = bank.pack(torch.zeros(3, D, D, D, dtype=torch.bool), torch.zeros(3), g)
    assert torch.equal(g.get_state(), state)
    assert not bool(pk.mask.any()) and float(pk.density.abs().max()) == 0.0


def test_rendering_in_sub_boxes_equals_rotating_the_whole_template():
    """A neighbour placed by the packer is the template rotated and shifted in the whole box."""
    from cryo_companion.rotation import rotate_volumes

    vol = _blob(12, 2, 4, at=(2.0, -1.0, 0.5))
    bank = ContextBank(vol[None], ["rod"], pool_per_sample=0.0)
    g = torch.Generator().manual_seed(11)
    pool = bank._pool(1, g)
    # the pose the pool drew, replayed: same rotation and sub-voxel offset
    g2 = torch.Generator().manual_seed(11)
    torch.rand(0, generator=g2, dtype=torch.float64)
    from cryo_companion.rotation import random_rotation_matrices

    R = random_rotation_matrices(1, g2)
    frac = torch.rand(1, 3, generator=g2) - 0.5
    whole = rotate_volumes(vol[None], R, frac)[0]
    placed = torch.zeros(D, D, D)
    inside = ((pool.sup_zyx >= 0) & (pool.sup_zyx < D)).all(1)
    z, y, x = pool.sup_zyx[inside].unbind(1)
    placed[z, y, x] = pool.sup_val[inside]
    keep = whole > context_module.SUPPORT_LEVEL * vol.max()
    torch.testing.assert_close(placed[keep], whole[keep], atol=1e-5, rtol=1e-5)
    assert float(placed[~keep].abs().max()) == 0.0
    assert int(pool.mask_len[0]) == int((whole > 0.25 * vol.max()).sum())


def test_membrane_fragments_are_seeded_discs_of_bilayer():
    a = membrane_fragments(3, 32, 13.68, seed=4)
    b = membrane_fragments(3, 32, 13.68, seed=4)
    assert a.shape == (3, 32, 32, 32) and a.dtype.name == "float32"
    assert (a == b).all() and not (a == membrane_fragments(3, 32, 13.68, seed=5)).all()
    ax = torch.arange(32, dtype=torch.float64) - 16
    r = torch.sqrt(ax.reshape(-1, 1, 1) ** 2 + ax.reshape(1, -1, 1) ** 2
                   + ax.reshape(1, 1, -1) ** 2)
    for f in torch.from_numpy(a):
        assert float(f.max()) > 0.5  # leaflets as dense as protein (Da/Å³)
        # nothing beyond the largest window radius (0.45 box) plus its soft edge
        assert float(f[r > 0.45 * 32 + 5].max()) < 1e-4
        # a disc, not a ball: the dense voxels fill a thin shell-like sheet
        assert (f > 0.25 * f.max()).float().mean().item() < 0.15
    with pytest.raises(ValueError, match="radius_fraction"):
        membrane_fragments(1, 32, 13.68, radius_fraction=(0.3, 0.6))


def test_the_context_benchmark_measures_both_ways():
    from cryo_companion.bench.context import measure

    out = measure(_sim(), {"no context": get_preset("randomized"), "context": _preset()}, 4,
                  rounds=1, min_time=0.0)
    assert set(out) == {"no context", "context"}
    assert all(float(v["subtomograms_per_s"]) > 0 for v in out.values())
    assert "occupancy_measured_mean" not in out["no context"]
    assert 0 < float(out["context"]["occupancy_measured_mean"]) <= 0.15 + 0.01
