# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Domain randomization
#
# Che et al. 2019 (III-B) do not try to make their simulated subtomograms realistic. Instead
# every training subtomogram draws its own simulation parameters from wide ranges (SNR
# log-uniform on [0.03, 10], missing-wedge angle uniform on [0°, 50°], defocus Dz uniform on
# [−12, 0] µm, Cs uniform on [1.5, 3.0] mm, plus a random change of mean and variance), so that
# real tomograms look like one more variation to the network. Their baseline instead fixes the
# parameters to the values of their real data (α = 30°, Dz = −6 µm, Cs = 2.7 mm, SNR 0.1) with
# only the augmentation random; batches are standardised with a global mean and standard
# deviation.
#
# This chapter shows the two presets of `cryo_companion.papers.che2019.presets`, the distributions they
# sample against the paper's ranges, the paper's Fig. 3 (randomized subtomograms, one column per
# class) and baseline samples beside randomized ones.

# %% tags=["parameters", "remove-cell"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from cryo_companion.book import plotting
from cryo_companion.book import randomization as show
from cryo_companion.papers.che2019.presets import PAPER_BASELINE, PAPER_RANGES, get_preset
from cryo_companion.runs.clean import display_path
from cryo_companion.runs.results import save_result
from cryo_companion.runs.runtime import setup
from cryo_companion.simulate.checks import distribution_check, standardization_check
from cryo_companion.simulate.randomization import sample_params, standardize_batch
from cryo_companion.simulate.subtomogram import Simulator
from cryo_companion.structures.templates import template_bank

run = setup(scale, device, seed, chapter="randomization", paper_needs_gpu=False)
VOXEL_A = 13.68  # Che et al. 2019, III-A
BOX = 40

# %% [markdown]
# ## The two presets
#
# Ranges marked "ours" are not given by the paper (the CTF envelope, the sub-box shift and the
# ranges of the intensity augmentation); see the docstring of
# `cryo_companion.papers.che2019.presets`.

# %%
randomized = get_preset("randomized")
baseline = get_preset("baseline")
display(Markdown(show.preset_table(randomized, baseline, PAPER_RANGES)
                 + f"\n\nBaseline source: {baseline.source}."))

# %% [markdown]
# ## Sampled parameter distributions
#
# Histograms of the parameters the randomized preset draws, with the paper's ranges shaded and
# the baseline's fixed values in red. A Kolmogorov–Smirnov test against the stated distribution
# (log-uniform for the SNR, uniform otherwise) checks the sampler.

# %% mystnb={"figure": {"caption": "The four parameters the randomized preset draws for every subtomogram, against the ranges of Che et al. 2019, III-B (shaded; SNR on a logarithmic axis) and the baseline's fixed values (red)."}}
n_params = run.pick(4000, 100_000)
drawn = {k: v.cpu().numpy().astype(np.float64)
         for k, v in sample_params(randomized, n_params, run.generator(1)).items()}
plotting.plot_histograms(
    {k: drawn[k] for k in PAPER_RANGES}, ranges=PAPER_RANGES, log_x=["snr"], labels=show.LABELS,
    fixed=PAPER_BASELINE, title=f"randomized preset: {n_params} draws")
plt.show()

# %% mystnb={"figure": {"caption": "The intensity augmentation both presets apply (our ranges; the paper gives none): a contrast gain drawn log-uniformly and an offset in units of the subtomogram's standard deviation."}}
plotting.plot_histograms(
    {k: drawn[k] for k in ("intensity_scale", "intensity_offset")},
    ranges={k: getattr(randomized, k) for k in ("intensity_scale", "intensity_offset")},
    log_x=["intensity_scale"], labels=show.LABELS, range_label="preset range (ours)",
    title="intensity augmentation (both presets)")
plt.show()

# %%
checks = {name: distribution_check(drawn[name], lo, hi, log_uniform=(name == "snr"))
          for name, (lo, hi) in PAPER_RANGES.items()}
assert all(c["inside_range"] for c in checks.values())
display(Markdown(show.distribution_table(checks)))

# %% [markdown]
# ## The paper's Fig. 3: randomized subtomograms of the four classes
#
# Each column is one class (membrane, proteasome, TRiC, ribosome, the paper's order), each panel
# an independent randomized subtomogram: random pose, SNR, wedge, Dz, Cs and intensity
# augmentation. Shown: the central x–y slice (perpendicular to the beam), each panel scaled to
# its own range, with its SNR, wedge angle and Dz.

# %% mystnb={"figure": {"caption": "Randomized subtomograms of the four classes (cf. Che et al. 2019, Fig. 3): central x\u2013y slices, one column per class, each panel scaled to its own range, with its SNR, wedge angle \u03b1 and defocus Dz (\u00b5m) in the corner."}}
bank = template_bank("che2019", VOXEL_A, BOX, n_membrane=run.pick(4, 16), seed=run.seed,
                     progress=False)
sim = Simulator.from_template_bank(bank, VOXEL_A, device=run.device)
FIG3_ORDER = ["membrane", "proteasome", "TRiC", "ribosome"]  # Che et al. 2019, Fig. 3 columns
n_rows = run.pick(4, 6)
rand = show.class_batches(sim, bank, randomized, FIG3_ORDER, n_rows, run.seed + 10)
show.plot_subtomogram_grid([[(b, r) for b in rand] for r in range(n_rows)], FIG3_ORDER,
                           [f"sample {r + 1}" for r in range(n_rows)], VOXEL_A,
                           title="Randomized subtomograms (cf. Che et al. 2019, Fig. 3)")
plt.show()

# %% [markdown]
# ## Baseline beside randomized
#
# Left three columns: the baseline preset (fixed SNR, wedge, Dz and Cs; pose and augmentation
# random); right three: the randomized preset. One row per class. The baseline panels all share
# one noise level and one wedge; the randomized ones range from nearly clean to nearly pure
# noise, which is the point of the method.

# %% mystnb={"figure": {"caption": "The baseline preset (left three columns: fixed SNR, wedge, Dz and Cs) beside the randomized preset (right three), one row per class, central x\u2013y slices with each panel's SNR, wedge and defocus."}}
n_side = 3
base = show.class_batches(sim, bank, baseline, FIG3_ORDER, n_side, run.seed + 100)
rnd = show.class_batches(sim, bank, randomized, FIG3_ORDER, n_side, run.seed + 200)
show.plot_subtomogram_grid(
    [[(b, i) for i in range(n_side)] + [(r, i) for i in range(n_side)]
     for b, r in zip(base, rnd)],
    [f"baseline {i + 1}" for i in range(n_side)] + [f"randomized {i + 1}" for i in range(n_side)],
    FIG3_ORDER, VOXEL_A,
    title="baseline preset (left) and randomized preset (right), central x–y slices")
plt.show()

# %%
measured_snr = {
    "baseline": [float(v) for b in base for v in b.params["snr"].cpu()],
    "randomized": [float(v) for b in rnd for v in b.params["snr"].cpu()],
}
display(Markdown(
    "SNR of the panels: baseline "
    + ", ".join(f"{s:g}" for s in sorted({round(s, 4) for s in measured_snr["baseline"]}))
    + "; randomized " + ", ".join(f"{s:.3g}" for s in measured_snr["randomized"]) + "."))

# %% [markdown]
# ## Standardising a batch
#
# The paper standardises every batch of 32 with one global mean and standard deviation, not each
# subtomogram on its own, so the relative intensity differences that the augmentation and the
# SNR create survive into the network's input.

# %%
g = torch.Generator(device=run.device).manual_seed(run.seed + 300)
with torch.no_grad():
    batch = sim.sample(32, randomized, g)
std_summary = standardization_check(batch.noisy, standardize_batch(batch.noisy))
assert abs(std_summary["standardized_mean"]) < 1e-4
assert abs(std_summary["standardized_std"] - 1) < 1e-4
display(Markdown(
    f"A batch of 32: raw mean {std_summary['raw_mean']:.3g}, standard deviation "
    f"{std_summary['raw_std']:.3g}; after standardisation mean "
    f"{std_summary['standardized_mean']:.1e} and standard deviation "
    f"{std_summary['standardized_std']:.4f}, while the standard deviation of single "
    f"subtomograms still ranges from {std_summary['per_sample_std_min']:.2f} to "
    f"{std_summary['per_sample_std_max']:.2f}."))

# %% tags=["hide-input"]
summary = {
    "presets": {"randomized": randomized.as_dict(), "baseline": baseline.as_dict()},
    "paper_ranges": PAPER_RANGES, "paper_baseline": PAPER_BASELINE,
    "n_param_draws": n_params, "distribution_checks": checks,
    "fig3_rows": n_rows, "panel_snr": measured_snr, "standardization": std_summary,
}
path = save_result(run, summary)
display(Markdown(f"All {n_params} draws fall inside the paper's ranges; largest KS distance "
                 f"{max(c['ks_statistic'] for c in checks.values()):.4f}. Saved "
                 f"`{display_path(path)}`."))
