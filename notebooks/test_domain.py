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
# # The test domain
#
# Che et al. (2019, IV-B) test their networks on **1,051 real subtomograms** picked from a
# rat-neuron tomogram (the paper's numbers: 80 ribosome, 460 mitochondrial membrane, 125 TRiC,
# 386 single-capped proteasome; tilt range −50° to +70°; SNR about 0.1 measured on those data).
# Those data cannot be reached from here. This chapter builds the stand-in: a *held-out test
# domain* made by an image-formation path that the training simulator never uses.
#
# | | training simulator | test domain (this chapter) |
# |---|---|---|
# | sample | one complex in an empty box | crowded ice slab: complexes in contact, vesicles, membrane sheets |
# | optics | one CTF convolved with the volume | per tilt, per 20-nm slab of beam height: the tilt's own defocus (defocus gradient of the tilted field) |
# | noise | Gaussian at a set SNR | Poisson electron counts from a dose spread over the tilts, ice attenuation |
# | missing wedge | a mask in Fourier space | the tilt series itself, reconstructed by weighted back-projection |
#
# Every parameter is frozen in `cryo_companion/papers/che2019/test_domain.json` and its hash is recorded in
# every result that uses the test set (pre-registration).

# %% tags=["parameters"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %%
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from cryo_companion.runs.runtime import setup
from cryo_companion.runs.results import save_result
from cryo_companion.dataset import save_subtomograms
from cryo_companion.papers.che2019 import test_domain as ts

run = setup(scale, device, seed, chapter="test_domain", paper_needs_gpu=True)
cfg = ts.TEST_DOMAIN_CONFIG
print("device:", run.device, "| config version", cfg["version"], "| hash", ts.test_domain_hash())

# %% [markdown]
# ## The frozen parameters
# Physical choices and the reason for each (from the config's `notes`). The dose may be
# calibrated once so that the measured SNR is near the paper's ≈ 0.1, *before* any network is
# evaluated; any change after results were seen would bump `version` and be listed here.

# %%
print(json.dumps(cfg["imaging"], indent=1))
for k, v in cfg["notes"].items():
    print(f"- {k}: {v}")

# %% [markdown]
# ## Simulating the test set
# The test set's seed is the pre-registered one (the config's, not the chapter's), so every
# chapter that evaluates on it sees the same data. It is cached under `$CRYO_COMPANION_DATA`
# (default `data/` at the repository root, ignored by git), where `ensure_testset` finds it again.

# %%
data, tomos = ts.make_testset(scale, run.device, None, return_tomograms=True)
folder = ts.default_data_dir() / f"test_domain_{scale}"
save_subtomograms(folder, data)
print(len(data), "subtomograms", data.counts, "from", data.meta["tomograms"], "tomogram(s);",
      f"{run.wall_time_s:.0f} s so far")
scene, series, tomo = tomos[0]
print("scene:", scene.stats)

# %% [markdown]
# ## A tomogram and its tilt series
# Slices through the reconstruction (xy at the centre of the ice; xz across it, where the
# missing wedge elongates everything along z), the class mask of the same xy slice, and three
# images of the tilt series. Mass is dark (raw contrast).

# %%
t = tomo.numpy()
Zt = t.shape[0]
b = scene.potential_V.shape[0] // Zt
fig, ax = plt.subplots(1, 3, figsize=(13, 4.2))
im0 = ax[0].imshow(t[Zt // 2], cmap="gray")
ax[0].set(title="tomogram, xy slice", xlabel="x (voxel, 13.68 Å)", ylabel="y (voxel)")
plt.colorbar(im0, ax=ax[0], shrink=0.8, label="contrast (a.u.)")
im1 = ax[1].imshow(t[:, t.shape[1] // 2], cmap="gray", aspect="auto")
ax[1].set(title="tomogram, xz slice", xlabel="x (voxel)", ylabel="z (voxel)")
plt.colorbar(im1, ax=ax[1], shrink=0.8)
cm = scene.class_mask[Zt // 2 * b].cpu().numpy()[::b, ::b]
cmap = plt.get_cmap("tab10", 5)
cm_show = np.where(cm <= 4, cm, 5)  # crowders (classes after the four) drawn as one colour
im2 = ax[2].imshow(cm_show, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
ax[2].set(title="class mask (0 ice, 1-4 classes, 5 crowders)", xlabel="x (voxel)",
          ylabel="y (voxel)")
plt.colorbar(im2, ax=ax[2], shrink=0.8, label="class")
plt.tight_layout()
plt.show()

T = len(series.tilts_deg)
fig, ax = plt.subplots(1, 3, figsize=(12, 4))
for a, i in zip(ax, [0, int(np.argmin(np.abs(series.tilts_deg))), T - 1]):
    img = series.images[i].cpu().numpy()
    h = a.imshow(img, cmap="gray")
    a.set(title=f"tilt {series.tilts_deg[i]:+.0f}°, defocus {series.defocus_um[i]:.2f} µm",
          xlabel="u (pixel)", ylabel="y (pixel)")
    plt.colorbar(h, ax=a, shrink=0.8, label="counts/expected − 1")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Examples of each class (the paper's Fig. 4)
# Central slices along all three axes of one subtomogram per class; the contour is the
# segmentation ground truth of the target only (neighbours fall into the box unlabelled).

# %%
fig, ax = plt.subplots(4, 3, figsize=(8, 11))
for r, name in enumerate(data.class_names):
    i = int(np.flatnonzero(data.labels == r)[0])
    v, m = data.volumes[i], data.masks[i]
    for c, (sl, lab) in enumerate([((20, slice(None), slice(None)), "xy"),
                                   ((slice(None), 20, slice(None)), "xz"),
                                   ((slice(None), slice(None), 20), "yz")]):
        ax[r, c].imshow(v[sl], cmap="gray")
        if m[sl].any():
            ax[r, c].contour(m[sl], levels=[0.5], colors="tab:orange", linewidths=0.8)
        ax[r, c].set_xticks([]); ax[r, c].set_yticks([])
        ax[r, c].set_title(f"{name}, {lab}", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Measured SNR and the baseline preset
# As one would on real data (and as the paper's baseline "measured the testing data"): pairs of
# same-class subtomograms are aligned (here with their true poses) and the correlation ρ of
# each pair gives SNR = ρ / (1 − ρ) (Frank & Al-Ali 1975). The baseline training preset reads
# SNR, wedge, Dz and Cs from the result saved below.

# %%
snr = data.meta["snr"]
preset = data.meta["baseline_preset"]
display(Markdown(
    f"Measured SNR (median over {snr['pairs']} pairs): **{snr['median']:.3g}** "
    f"(per class: {', '.join(f'{k} {v:.3g}' for k, v in snr['per_class'].items())}); "
    f"the paper's value for its real data: about 0.1. Baseline preset: {preset}."))

# %% [markdown]
# ## The reality gap
# The training simulator's subtomograms (the baseline preset: one complex, a CTF, a wedge,
# Gaussian noise) beside the test domain's: radially averaged power spectra and intensity
# histograms after the global standardisation used at test time.

# %%
from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate.subtomogram import Simulator
from cryo_companion.structures.templates import template_bank

bank = template_bank("che2019", data.voxel_size_A, 40, progress=False)
sim = Simulator.from_template_bank(bank, data.voxel_size_A, run.device)
gen = torch.Generator(device=run.device).manual_seed(seed)
train = sim.sample(run.pick(16, 256), get_preset("baseline"), gen).noisy.cpu().numpy()
test = data.volumes[: run.pick(16, 256)]


def standardise(x):
    return (x - x.mean()) / x.std()


def radial_power(vols):
    D = vols.shape[-1]
    P = (np.abs(np.fft.fftn(vols, axes=(1, 2, 3))) ** 2).mean(0)
    k = np.sqrt(sum(g ** 2 for g in np.meshgrid(*(np.fft.fftfreq(D),) * 3, indexing="ij")))
    bins = np.linspace(0, 0.5, 21)
    idx = np.digitize(k.ravel(), bins)
    prof = np.array([P.ravel()[idx == j].mean() for j in range(1, len(bins))])
    return 0.5 * (bins[1:] + bins[:-1]) / data.voxel_size_A, prof


fig, ax = plt.subplots(1, 2, figsize=(11, 4))
for x, lab in [(train, "training simulator (baseline)"), (test, "test domain")]:
    k, p = radial_power(standardise(x))
    ax[0].semilogy(k, p / p.sum(), label=lab)
    ax[1].hist(standardise(x).ravel(), bins=100, density=True, histtype="step", label=lab)
ax[0].set(xlabel="spatial frequency (1/Å)", ylabel="normalised power", title="power spectra")
ax[1].set(xlabel="standardised intensity", ylabel="density", title="intensity histograms",
          yscale="log")
ax[0].legend(); ax[1].legend()
plt.tight_layout()
plt.show()

# %%
result = {"test_domain_hash": ts.test_domain_hash(), "config_version": cfg["version"],
          "counts": data.counts, "snr": snr, "baseline_preset": preset,
          "tomograms": data.meta["tomograms"], "scene_stats": scene.stats,
          "wall_time_s": run.wall_time_s}
path = save_result(run, result)
print("saved", path)
assert data.counts == ts.scale_config(scale)["counts"]

# %% [markdown]
# ## Performance
#
# The time this chapter took to simulate its test set (all tomograms, tilt series,
# reconstructions and extraction) on its device, and the benchmark of one SHREC-sized tomogram
# (200 × 512 × 512 voxels at 1 nm, about 2,500 particles, 61 tilts) recorded by
# `cryo-companion bench tomogram` in `results/bench_tomogram.json`.

# %%
from cryo_companion.runs.results import load_result

print(f"this run ({run.scale} scale, {run.device}): {len(data)} subtomograms in "
      f"{result['wall_time_s']:.0f} s")
bench = load_result("bench_tomogram")
if bench is None:
    print("SHREC-sized tomogram benchmark: not yet measured")
else:
    t = bench["data"]["timing_s"]
    print(f"SHREC-sized tomogram {bench['data']['shape_zyx']} with "
          f"{bench['data']['particles_requested']} particles and {bench['data']['tilts']} tilts on "
          f"{bench['provenance']['device']}: scene {t['scene']:.1f} s, tilt series + WBP "
          f"{t['tilt_series_and_wbp']:.1f} s, total {t['total']:.1f} s")
