"""Figures of context randomization (cryo_companion.book.context_figures)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from cryo_companion.book.context_figures import context_examples, plot_context_examples
from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate.context import ContextBank
from cryo_companion.simulate.subtomogram import Simulator

D = 24


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _blob(sx, sy, sz):
    c = (D - 1) / 2
    z, y, x = torch.meshgrid(*[torch.arange(D, dtype=torch.float32) - c] * 3, indexing="ij")
    return torch.exp(-(x ** 2 / sx + y ** 2 / sy + z ** 2 / sz))


@pytest.fixture(scope="module")
def sim():
    bank = ContextBank(torch.stack([_blob(2, 2, 2), _blob(6, 3, 3), _blob(5, 5, 5)]),
                       ["a", "b", "c"])
    return Simulator(torch.stack([_blob(12, 4, 6), _blob(4, 4, 4), _blob(3, 8, 3)]),
                     torch.tensor([0, 1, 1]), class_names=["rod", "ball"], context=bank)


def test_examples_differ_only_by_the_neighbours(sim):
    preset = get_preset("randomized+context").replace(context_fraction=(0.1, 0.15))
    ex = context_examples(sim, preset, seed=3)
    assert ex.labels == ["rod", "ball"]  # one example per class: its first template
    assert ex.alone.shape == ex.clean.shape == ex.noisy.shape == (2, D, D, D)
    assert not bool((ex.mask & ex.context_mask).any())
    occ = ex.context_mask.float().mean((1, 2, 3))
    torch.testing.assert_close(occ, ex.params["context_fraction_measured"], rtol=0, atol=1e-6)
    assert bool((occ > 0.05).all())
    # where neither the neighbours nor the optics' reach are, alone and with context agree: the
    # same pose and optics; the difference is the filtered neighbours (nonzero)
    assert float((ex.clean - ex.alone).abs().max()) > 0.1 * float(ex.alone.abs().max())
    again = context_examples(sim, preset, seed=3)
    assert torch.equal(again.noisy, ex.noisy)  # same seed, same figure


def test_the_figure_shows_each_example_alone_with_context_and_noisy(sim):
    ex = context_examples(sim, get_preset("randomized+context"), seed=1,
                          template_index=torch.tensor([0, 2, 1]))
    fig = plot_context_examples(ex, plane="xz")
    axes = fig.axes
    assert len(axes) == 9
    titles = [a.get_title() for a in axes]
    assert titles[0] == "alone, noise-free" and titles[2] == "with context, noisy"
    assert titles[1].startswith("with context, noise-free\n")
    notes = titles[1::3]  # the middle column: class, occupancy measured and drawn, neighbours
    assert all("occupancy" in t and "drawn" in t and "neighbours" in t for t in notes)
    assert axes[0].get_xlabel() == "x (nm)" and axes[0].get_ylabel() == "z (nm)"
    fig.canvas.draw()  # renders without warnings (pytest turns them into errors)


def test_examples_need_context():
    plain = Simulator(torch.stack([_blob(4, 4, 4)]), torch.tensor([0]))
    with pytest.raises(ValueError, match="context"):
        context_examples(plain, get_preset("randomized+context"))
