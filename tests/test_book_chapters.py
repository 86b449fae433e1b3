"""The chapters' tables and figures (cryo_companion.book.*): hand-worked tables, figures with
their axes, units, scale bars and colour bars, sentences decided from the recorded results."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from cryo_companion import optics
from cryo_companion.book import benchmarks, plotting, randomization, simulation
from cryo_companion.book import structures as bstruct
from cryo_companion.book import test_domain as btd
from cryo_companion.book.shrec_tables import detection_table
from cryo_companion.papers.che2019.presets import PAPER_RANGES, get_preset
from cryo_companion.structures.templates import TemplateBank


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _bank() -> TemplateBank:
    d = 12
    z, y, x = np.mgrid[:d, :d, :d] - d // 2
    blob = np.exp(-(x**2 + y**2 + z**2) / 4.0).astype(np.float32)
    vols = np.stack([blob, np.full((d, d, d), 0.1, np.float32), blob * 2, blob * 3])
    return TemplateBank(vols, np.array([0, 1, 2, 3]), ["ribosome", "membrane", "TRiC",
                                                       "proteasome"],
                        ["4v7r", "membrane:0:0", "4v94", "4cr2"], "che2019", 13.68, 30.0)


def test_structures_tables() -> None:
    md = bstruct.class_set_table("che2019")
    assert md.startswith("**che2019** — ")
    assert "| 0 | ribosome | – | " in md and "| 1 | membrane | – | membrane | procedural |" in md
    sizes = bstruct.class_sizes(_bank())
    assert list(sizes) == ["ribosome", "TRiC", "proteasome"]     # the membrane has no size
    assert sizes["TRiC"]["entry"] == "4v94"
    table = bstruct.sizes_table(sizes)
    assert table.splitlines()[0] == ("| class | entry | diameter (nm) | voxels | mass (kDa) | "
                                     "paper MW (kDa) |")
    cmp = bstruct.atoms_vs_map_table({"1bxn": {"r": 0.98412, "mass_atoms_kda": 258.4,
                                               "mass_map_kda": 254.2}})
    assert cmp.splitlines()[2] == "| 1bxn | 0.984 | 258 | 254 |"
    assert "| ribosome | – | 4v7r |" in bstruct.substitutions_table("che2019")
    banks = bstruct.bank_table({"che2019": _bank()}, {"che2019": 1.234})
    assert banks.splitlines()[2] == "| che2019 | 4 | 12³ | 13.68 | 1.23 s |"


def test_structures_figures_have_axes_in_nm_and_colour_bars() -> None:
    fig = bstruct.plot_class_densities(_bank(), [0, 2, 3])
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert "x (nm)" in labels and "density (Da/Å³)" in labels
    assert "projected density (Da/Å²)" in labels
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["0: ribosome", "2: TRiC", "3: proteasome"]
    # 9 classes: two rows of panels of at most 8
    big = TemplateBank(np.repeat(_bank().volumes[:1], 9, 0), np.arange(9),
                       [f"c{i}" for i in range(9)], ["e"] * 9, "x", 10.0, None)
    assert sum(bool(ax.images) for ax in bstruct.plot_class_densities(big).axes) == 18
    patch = (np.ones((8, 8, 8)), SimpleNamespace(radius_A=np.inf, protein=None))
    fig = bstruct.plot_membrane_patches([patch, patch], 13.68)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["flat, no protein"] * 2


def test_simulation_tables_and_figures() -> None:
    zeros = {-6.0: optics.ctf_first_zero_per_nm(-6.0, 2.7)}
    md = simulation.ctf_zero_table(zeros, 13.68)
    row = md.splitlines()[2].split(" | ")
    assert row[0] == "| -6" and float(row[1]) == pytest.approx(zeros[-6.0], abs=1e-4)
    assert float(row[4].rstrip(" |")) == pytest.approx(10 / (2 * 13.68), abs=1e-4)
    fig = simulation.plot_ctf_family(13.68, [-1.0, -6.0], [1.5, 3.0])
    assert [ax.get_ylabel() for ax in fig.axes] == ["−CTF", "−CTF"]
    assert fig.axes[1].get_xlabel() == "spatial frequency |k| (1/nm)"
    rows = [{"snr_requested": 0.1, "measured_mean": 0.1, "measured_max_rel_err": 2.5e-6,
             "frank_al_ali_mean": 0.098, "frank_al_ali_std": 0.01}]
    row = simulation.snr_check_table(rows).splitlines()[2]
    assert row == "| 0.1 | 0.1 | 2.5e-06 | 0.098 | 0.01 |"
    ax = simulation.plot_snr_check(rows, 4).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "requested SNR"


BENCH = {"data": {
    "cpu": {"device_name": "CPU X (2 cores)", "need_clean": True, "rounds": 9,
            "subtomograms_per_s": {"32": 460.0, "128": 548.0}, "best_subtomograms_per_s": 548.0,
            "numpy_reference_subtomograms_per_s": 50.0, "speedup_vs_numpy_reference": 10.83,
            "speedup_range": [9.77, 12.06], "commit": "87e1cc46523e571060f4",
            "stages_ms_per_subtomogram": {"FFT": 1.0, "noise": 3.0}},
    "cuda": {"device_name": "GPU Y", "best_subtomograms_per_s": 134332.4,
             "subtomograms_per_s": {"8192": 134332.4}},
    "note": "not a device"}}


def test_benchmark_rows_verdicts_and_profiles() -> None:
    rows = benchmarks.simulate_rows(BENCH)
    assert [r["device"] for r in rows] == ["CPU X (2 cores)", "GPU Y"]
    assert rows[0]["commit"] == "87e1cc4652" and rows[1]["commit"] == "not recorded"
    md = benchmarks.simulate_table(rows)
    assert "**10.83×** (9.8–12.1×)" in md and "| **134,332** |" in md and "32: 460, 128: 548" in md
    verdicts = benchmarks.simulate_verdicts(rows)
    assert verdicts[0] == ("CPU X (2 cores), noisy + clean + mask: median 10.83× — target 10× "
                           "**met** (9.8× in the slowest round)")
    assert "GPU Y (noisy + clean + mask): measured before the benchmark recorded" in verdicts[1]
    assert "**not met**" in benchmarks.simulate_verdicts(rows, target=11.0)[0]
    assert benchmarks.simulate_stage_profiles(rows) == {
        "CPU X (2 cores)\nnoisy + clean + mask": {"FFT": 1.0, "noise": 3.0}}
    summary = benchmarks.simulate_stage_summary(rows)
    assert "4.000 ms per subtomogram; noise 75 %, FFT 25 %" in summary
    assert "stage profile not recorded for: GPU Y" in summary
    assert benchmarks.simulate_rows(None) == []
    assert "not yet measured" in benchmarks.simulate_stage_summary([])


def test_tomogram_summary_is_decided_from_the_result() -> None:
    assert "**not yet measured**" in benchmarks.tomogram_summary(None)
    res = {"data": {"shape_zyx": [200, 512, 512], "voxel_size_A": 10.0,
                    "particles_requested": 2500, "tilts": 61,
                    "timing_s": {"scene": 4.98, "tilt_series_and_wbp": 1.52, "total": 6.5}},
           "provenance": {"device": "GPU Z"}}
    text = benchmarks.tomogram_summary(res)
    assert "200 × 512 × 512" in text and "2,500 particles" in text and "**6.5 s**" in text
    assert "GPU Z" in text and "not yet" not in text


def test_randomization_tables_and_grid() -> None:
    md = randomization.preset_table(get_preset("randomized"), get_preset("baseline"),
                                    PAPER_RANGES)
    assert "| SNR | 0.03 – 10 |" in md and "| 0.03 – 10 |" in md
    assert "| envelope B (Å²) | 2000 | 2000 | ours |" in md
    checks = {"snr": {"min": 0.03, "max": 9.99, "inside_range": True, "ks_statistic": 0.01,
                      "ks_pvalue": 0.5}}
    assert randomization.distribution_table(checks).splitlines()[2] == \
        "| SNR | 0.03 | 9.99 | yes | 0.0100 | 0.50 |"
    batch = SimpleNamespace(noisy=torch.rand(2, 8, 8, 8),
                            params={"snr": torch.tensor([0.1, 1.0]),
                                    "wedge_deg": torch.tensor([30.0, 0.0]),
                                    "defocus_um": torch.tensor([-6.0, -1.0])})
    fig = randomization.plot_subtomogram_grid([[(batch, 0), (batch, 1)]], ["a", "b"], ["r"],
                                              13.68)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "SNR 0.1\nα 30°, Dz -6.0" in texts and "SNR 1\nα 0°, Dz -1.0" in texts


def test_test_domain_figures() -> None:
    md = btd.config_table({"imaging": {"tilt_step_deg": 2.0, "voltage_kv": 300.0},
                           "notes": {"dose": "calibrated once"}})
    assert "| `tilt_step_deg` | 2 |" in md and "- **dose**: calibrated once" in md
    d = 10
    vols = np.random.default_rng(0).standard_normal((3, d, d, d))
    masks = np.zeros((3, d, d, d), bool)
    masks[:, 3:7, 3:7, 3:7] = True
    fig = btd.plot_class_examples(vols, masks, np.array([0, 2, 2]), ["a", "b", "c"], 13.68)
    assert len(fig.axes) == 6                              # classes a and c, three planes each
    assert all(any(isinstance(c, AnchoredSizeBar) for c in ax.artists) for ax in fig.axes)
    assert {ax.get_xlabel() for ax in fig.axes} == {"x (nm)", "y (nm)"}
    assert fig.axes[0].get_title() == "a, xy"
    fig = btd.plot_tomogram(np.zeros((4, 6, 8)), np.zeros((4, 6, 8)), 13.68)
    assert fig.axes[0].get_xlabel() == "x (nm)" and fig.axes[1].get_ylabel() == "z (nm)"
    fig = btd.plot_tilt_images(np.zeros((3, 4, 4)), [-50.0, 0.0, 70.0], [-6.1, -6.0, -5.9], 13.68)
    assert fig.axes[0].get_title() == "tilt -50°, defocus -6.10 µm"
    fig = btd.plot_reality_gap(vols, vols + 1, 13.68)
    assert fig.axes[0].get_xlabel() == "spatial frequency (1/nm)"


def test_confusion_matrix_plot() -> None:
    _, ax = plt.subplots()
    plotting.plot_confusion_matrix(ax, [[3, 1], [0, 2]], ["a", "b"], normalise_rows=True)
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "2"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert ax.images[0].get_array()[0, 0] == pytest.approx(0.75)
    _, ax = plt.subplots()
    plotting.plot_confusion_matrix(ax, [[3, 0, 1]], ["a"], ["a", "b", "none"], show_zeros=False,
                                   colorbar=False)
    assert [t.get_text() for t in ax.texts] == ["3", "1"]
    with pytest.raises(ValueError, match="do not match"):
        plotting.plot_confusion_matrix(ax, [[1, 2]], ["a", "b"])


def test_detection_table() -> None:
    from cryo_companion.papers.shrec2020.particles import ParticleList

    pred = ParticleList(("1bxn", "3qm1"), np.array([[1.0, 2.5, 3.0], [40.2, 0.0, 1.0]]))
    loc = SimpleNamespace(particle=np.array([1, 0]), outcome=np.array(["TP", "RO"]))
    md = detection_table(pred, loc)
    assert md.splitlines()[2] == "| 0 | 1bxn | (1, 2.5, 3) | (1, 2, 3) | 1 | TP |"
    assert md.splitlines()[3] == "| 1 | 3qm1 | (40.2, 0, 1) | (40, 0, 1) | 0 | RO |"
