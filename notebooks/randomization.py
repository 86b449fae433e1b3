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
# This chapter shows the two presets of `cryo_companion.simulate.randomization`, the distributions they
# sample against the paper's ranges, the paper's Fig. 3 (randomized subtomograms, one column per
# class) and baseline samples beside randomized ones.

# %% tags=["parameters"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from scipy import stats

from cryo_companion.book import plotting
from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate.randomization import sample_params, standardize_batch
from cryo_companion.runs.results import save_result
from cryo_companion.runs.runtime import setup
from cryo_companion.simulate.subtomogram import Simulator
from cryo_companion.structures.templates import template_bank

run = setup(scale, device, seed, chapter="randomization", paper_needs_gpu=False)
VOXEL_A = 13.68  # Che et al. 2019, III-A
BOX = 40
print(f"scale={run.scale}, device={run.device}, seed={run.seed}")

# %% [markdown]
# ## The two presets
#
# Ranges marked "ours" are not given by the paper (the CTF envelope, the sub-box shift and the
# ranges of the intensity augmentation); see the docstring of `cryo_companion.simulate.randomization`.

# %%
randomized = get_preset("randomized")
baseline = get_preset("baseline")
PAPER = {"snr": (0.03, 10.0), "wedge_deg": (0.0, 50.0), "defocus_um": (-12.0, 0.0),
         "cs_mm": (1.5, 3.0)}  # Che et al. 2019, III-B
PAPER_BASELINE = {"snr": 0.1, "wedge_deg": 30.0, "defocus_um": -6.0, "cs_mm": 2.7}  # IV
LABELS = {"snr": "SNR", "wedge_deg": "missing wedge α (°)", "defocus_um": "defocus Dz (µm)",
          "cs_mm": "Cs (mm)", "intensity_scale": "contrast gain g",
          "intensity_offset": "offset o (× std)", "bfactor_A2": "envelope B (Å²)"}
print(f"{'parameter':<22}{'randomized':>22}{'baseline':>22}{'paper (III-B)':>18}")
for name in ("snr", "wedge_deg", "defocus_um", "cs_mm", "bfactor_A2", "intensity_scale",
             "intensity_offset"):
    r, b = getattr(randomized, name), getattr(baseline, name)
    paper = f"{PAPER[name][0]:g} – {PAPER[name][1]:g}" if name in PAPER else "ours"
    r_txt, b_txt = (f"{v[0]:g}" if v[0] == v[1] else f"{v[0]:g} – {v[1]:g}" for v in (r, b))
    print(f"{LABELS[name]:<22}{r_txt:>22}{b_txt:>22}{paper:>18}")
print(f"baseline source: {baseline.source}")

# %% [markdown]
# ## Sampled parameter distributions
#
# Histograms of the parameters the randomized preset draws, with the paper's ranges shaded and
# the baseline's fixed values in red. A Kolmogorov–Smirnov test against the stated distribution
# (log-uniform for the SNR, uniform otherwise) checks the sampler.

# %%
n_params = run.pick(4000, 100_000)
drawn = {k: v.cpu().numpy().astype(np.float64)
         for k, v in sample_params(randomized, n_params, run.generator(1)).items()}
fig = plotting.plot_histograms(
    {k: drawn[k] for k in PAPER}, ranges=PAPER, log_x=["snr"], labels=LABELS,
    fixed=PAPER_BASELINE, title=f"randomized preset: {n_params} draws")
plt.show()
fig = plotting.plot_histograms(
    {k: drawn[k] for k in ("intensity_scale", "intensity_offset")},
    ranges={k: getattr(randomized, k) for k in ("intensity_scale", "intensity_offset")},
    log_x=["intensity_scale"], labels=LABELS, range_label="preset range (ours)",
    title="intensity augmentation (both presets)")
plt.show()

# %%
checks = {}
for name, (lo, hi) in PAPER.items():
    v = drawn[name]
    if name == "snr":  # Che et al. III-B: uniform at a logarithmic scale
        u = (np.log(v) - np.log(lo)) / (np.log(hi) - np.log(lo))
    else:
        u = (v - lo) / (hi - lo)
    ks = stats.kstest(u, "uniform")
    checks[name] = {"min": float(v.min()), "max": float(v.max()),
                    "inside_paper_range": bool(np.all((v >= lo - 1e-6) & (v <= hi + 1e-6))),
                    "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue)}
    print(f"{LABELS[name]:<22} drawn [{v.min():8.4g}, {v.max():8.4g}] in paper range: "
          f"{checks[name]['inside_paper_range']}; KS D = {ks.statistic:.4f} "
          f"(p = {ks.pvalue:.2f})")
assert all(c["inside_paper_range"] for c in checks.values())

# %% [markdown]
# ## The paper's Fig. 3: randomized subtomograms of the four classes
#
# Each column is one class (membrane, proteasome, TRiC, ribosome, the paper's order), each panel
# an independent randomized subtomogram: random pose, SNR, wedge, Dz, Cs and intensity
# augmentation. Shown: the central x–y slice (perpendicular to the beam), each panel scaled to
# its own range, with its SNR, wedge angle and Dz.

# %%
bank = template_bank("che2019", VOXEL_A, BOX, n_membrane=run.pick(4, 16), seed=run.seed,
                     progress=False)
sim = Simulator.from_template_bank(bank, VOXEL_A, device=run.device)
FIG3_ORDER = ["membrane", "proteasome", "TRiC", "ribosome"]  # Che et al. 2019, Fig. 3 columns
n_rows = run.pick(4, 6)


def class_batch(preset, name: str, n: int, offset: int):
    """``n`` subtomograms of class ``name`` (templates of the class drawn uniformly)."""
    g = torch.Generator(device=run.device).manual_seed(run.seed + offset)
    pool = torch.as_tensor(np.flatnonzero(bank.labels == bank.class_names.index(name)),
                           device=run.device)
    idx = pool[torch.randint(len(pool), (n,), generator=g, device=run.device)]
    with torch.no_grad():
        return sim.sample(n, preset, g, template_index=idx)


def xy(batch) -> np.ndarray:
    """Central x–y slices ``(n, Y, X)``."""
    return batch.noisy[:, BOX // 2].cpu().numpy()


def annotate(fig, batches, rows: int) -> None:
    """Write each panel's SNR, wedge and Dz into its corner."""
    img_axes = [ax for ax in fig.axes if ax.images]
    for c, b in enumerate(batches):
        for r in range(rows):
            p = {k: float(b.params[k][r]) for k in ("snr", "wedge_deg", "defocus_um")}
            img_axes[r * len(batches) + c].text(
                0.02, 0.02, f"SNR {p['snr']:.2g}\nα {p['wedge_deg']:.0f}°, Dz {p['defocus_um']:.1f}",
                transform=img_axes[r * len(batches) + c].transAxes, fontsize=6, color="yellow",
                va="bottom")


rand = [class_batch(randomized, name, n_rows, 10 + i) for i, name in enumerate(FIG3_ORDER)]
images = np.stack([xy(b) for b in rand], axis=1)  # (rows, classes, Y, X)
fig = plotting.plot_image_grid(images, col_labels=FIG3_ORDER,
                               row_labels=[f"sample {r + 1}" for r in range(n_rows)],
                               voxel_size_A=VOXEL_A,
                               title="Randomized subtomograms (cf. Che et al. 2019, Fig. 3)")
annotate(fig, rand, n_rows)
plt.show()

# %% [markdown]
# ## Baseline beside randomized
#
# Left three columns: the baseline preset (fixed SNR, wedge, Dz and Cs; pose and augmentation
# random); right three: the randomized preset. One row per class. The baseline panels all share
# one noise level and one wedge; the randomized ones range from nearly clean to nearly pure
# noise, which is the point of the method.

# %%
n_side = 3
base = [class_batch(baseline, name, n_side, 100 + i) for i, name in enumerate(FIG3_ORDER)]
rnd = [class_batch(randomized, name, n_side, 200 + i) for i, name in enumerate(FIG3_ORDER)]
side = np.stack([np.concatenate([xy(b), xy(r)]) for b, r in zip(base, rnd)])  # (4, 6, Y, X)
fig = plotting.plot_image_grid(
    side, row_labels=FIG3_ORDER, voxel_size_A=VOXEL_A,
    col_labels=[f"baseline {i + 1}" for i in range(n_side)]
    + [f"randomized {i + 1}" for i in range(n_side)],
    title="baseline preset (left) and randomized preset (right), central x–y slices")
plt.show()
measured_snr = {
    "baseline": [float(v) for b in base for v in b.params["snr"].cpu()],
    "randomized": [float(v) for b in rnd for v in b.params["snr"].cpu()],
}
print("SNR of the panels: baseline", sorted({round(s, 4) for s in measured_snr["baseline"]}),
      "| randomized", [f"{s:.3g}" for s in measured_snr["randomized"]])

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
x = batch.noisy
z = standardize_batch(x)
per_sample = z.reshape(len(z), -1)
std_summary = {
    "raw_mean": float(x.mean()), "raw_std": float(x.std(correction=0)),
    "standardized_mean": float(z.mean()), "standardized_std": float(z.std(correction=0)),
    "per_sample_std_min": float(per_sample.std(1).min()),
    "per_sample_std_max": float(per_sample.std(1).max()),
}
print(f"batch of 32: raw mean {std_summary['raw_mean']:.3g}, std {std_summary['raw_std']:.3g} -> "
      f"standardised mean {std_summary['standardized_mean']:.1e}, "
      f"std {std_summary['standardized_std']:.4f}; per-subtomogram std after standardisation "
      f"from {std_summary['per_sample_std_min']:.2f} to {std_summary['per_sample_std_max']:.2f}")
assert abs(std_summary["standardized_mean"]) < 1e-4
assert abs(std_summary["standardized_std"] - 1) < 1e-4

# %%
summary = {
    "presets": {"randomized": randomized.as_dict(), "baseline": baseline.as_dict()},
    "paper_ranges": PAPER, "paper_baseline": PAPER_BASELINE,
    "n_param_draws": n_params, "distribution_checks": checks,
    "fig3_rows": n_rows, "panel_snr": measured_snr, "standardization": std_summary,
}
path = save_result(run, summary)
display(Markdown(f"All {n_params} draws fall inside the paper's ranges; largest KS distance "
                 f"{max(c['ks_statistic'] for c in checks.values()):.4f}. Saved `{path.name}`."))
