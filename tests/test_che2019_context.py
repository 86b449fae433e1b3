"""The context arms of the Che et al. 2019 chapter: their bank and presets (beyond the paper)."""
from __future__ import annotations

import math

import pytest
import torch

from cryo_companion.papers.che2019 import context as che_context
from cryo_companion.papers.che2019.presets import (
    CONTEXT_FRACTION,
    PRESETS,
    get_preset,
)
from cryo_companion.simulate.randomization import PARAM_NAMES, sample_params
from cryo_companion.structures.sources import find_structure
from cryo_companion.structures.templates import template_bank


@pytest.fixture(scope="module")
def templates():
    return template_bank("che2019", 13.68, 40, n_membrane=3, seed=1, progress=False)


@pytest.fixture(scope="module")
def bank(templates):
    return che_context.context_bank(templates)


def test_training_context_never_holds_the_test_domains_structures():
    held_out = che_context.test_domain_structures()
    assert {"2uv8", "3cf3", "1qvr", "1bxn", "3d2f", "1u6g", "2cg9", "3h84", "4v7r", "4v94",
            "4cr2"} <= held_out  # the frozen test domain's crowders and targets
    assert not set(che_context.CONTEXT_COMPLEXES) & held_out
    assert not set(che_context.CONTEXT_COMPLEXES) & set(che_context.EXCLUDED_FROM_CONTEXT)
    assert len(set(che_context.CONTEXT_COMPLEXES)) == len(che_context.CONTEXT_COMPLEXES) == 8
    for entry in che_context.CONTEXT_COMPLEXES:  # all in the offline structures
        assert find_structure(entry).path.is_file()


def test_bank_holds_complexes_class_copies_and_membrane_fragments(bank, templates):
    d = bank.describe()
    kinds = d["kinds"]
    assert list(kinds) == ["complex", "class copy", "membrane fragment"]
    assert kinds["complex"]["names"] == list(che_context.CONTEXT_COMPLEXES)
    assert kinds["class copy"]["names"] == ["4v7r", "4v94", "4cr2"]  # the particle classes
    assert len(kinds["membrane fragment"]["names"]) == che_context.MEMBRANE_FRAGMENTS
    for kind, w in che_context.CONTEXT_MIX.items():
        assert kinds[kind]["weight"] == pytest.approx(w)
    assert bank.box == 40 and len(bank) == 8 + 3 + che_context.MEMBRANE_FRAGMENTS
    assert bank.mask_level == 0.25


def test_packing_the_che2019_bank_reaches_the_drawn_occupancy(bank, templates):
    from cryo_companion.rotation import random_rotation_matrices
    from cryo_companion.simulate.subtomogram import Simulator

    sim = Simulator.from_template_bank(templates, 13.68)
    n = 8
    g = torch.Generator().manual_seed(0)
    idx = torch.arange(n) % len(templates)  # every class, membranes included
    dens = sim._bank.rotate(idx, random_rotation_matrices(n, g), None)
    mask = dens > sim._mask_thr[idx].reshape(-1, 1, 1, 1)
    phi = torch.linspace(0.0, CONTEXT_FRACTION[1], n)
    pk = bank.pack(mask, phi, g)
    d = pk.fraction.double() - phi.double()
    N = 40 ** 3
    assert d.max().item() < 0.5 * pk.largest_voxels / N
    assert d.min().item() >= -0.5 * pk.smallest_voxels / N - 1e-9, d
    assert not bool((pk.mask & mask).any())


def test_context_presets_add_the_context_factor_only():
    assert set(PRESETS) == {"randomized", "baseline", "randomized+context", "baseline+context"}
    for base in ("randomized", "baseline"):
        p, c = get_preset(base), get_preset(f"{base}+context")
        assert not p.has_context and c.has_context
        assert c.context_fraction == CONTEXT_FRACTION == (0.0, 0.25)
        assert c.replace(name=p.name, context_fraction=(0.0, 0.0), source=p.source) == p
        assert p.source in c.source and "context" in c.source
        # the shared factors draw exactly as without context; the occupancy is drawn after them
        a = sample_params(p, 500, torch.Generator().manual_seed(3))
        b = sample_params(c, 500, torch.Generator().manual_seed(3))
        assert set(b) == set(PARAM_NAMES) | {"context_fraction"} and set(a) == set(PARAM_NAMES)
        assert all(torch.equal(a[k], b[k]) for k in PARAM_NAMES)
        phi = b["context_fraction"]
        assert 0.0 <= phi.min().item() and phi.max().item() <= 0.25
        assert phi.mean().item() == pytest.approx(0.125, abs=0.01)  # uniform
        assert phi.var().item() == pytest.approx(0.25 ** 2 / 12, rel=0.15)
    with pytest.raises(ValueError, match="randomized\\+context"):
        get_preset("context")


def test_a_context_preset_simulates_with_the_bank(bank, templates):
    from cryo_companion.simulate.subtomogram import Simulator

    sim = Simulator.from_template_bank(templates, 13.68, context=bank)
    b = sim.sample(4, get_preset("randomized+context"), torch.Generator().manual_seed(1),
                   need_clean=False)
    assert b.noisy.shape == (4, 40, 40, 40) and bool(torch.isfinite(b.noisy).all())
    assert not bool((b.mask & b.context_mask).any())
    assert b.params["context_count"].dtype == torch.int64
    assert all(math.isfinite(v) for v in b.params["context_fraction_measured"].tolist())
