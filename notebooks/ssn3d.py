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
# # SSN3D: semantic segmentation of subtomograms
#
# **The paper's claims** (Liu et al., ICIP 2018): three 3-D networks segment the complex at the
# centre of a 40³ subtomogram from its crowded neighbours and the background. On simulated data
# at SNR 0.5 all of them are far above the unsupervised method of Xu & Alber 2013; skip
# connections help (SSN3D-v2 over SSN3D-v1); the encoder-decoder SSN3D-ED is as good as
# SSN3D-v2 with half its parameters, keeps at least 97 % pixel accuracy and 73 % mIoU at SNR
# 0.01 (Table 2), and segments structures it never saw in training with at least 96 % and 72 %
# (Table 3, leave one class out).
#
# **This chapter** makes the paper's three data sets with the project's tomogram simulator,
# builds the three networks at the paper's capacities, trains them with the paper's recipe
# (several seeds per row), reproduces Tables 2 and 3 beside the paper's numbers, decides the
# paper's claims from ours, and shows the paper's Fig. 5 and the learning curves.

# %% tags=["parameters", "remove-cell"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0
n_seeds = 0       # seeds per row of Table 2; 0: the scale's (smoke 1, paper 3)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from cryo_companion.book.ssn3d import (
    dataset_table,
    networks_table,
    plot_fig5,
    plot_learning_curves,
    plot_subtomograms,
    plot_tomogram_slices,
    recipe_table,
    runs_table,
)
from cryo_companion.book.structures import substitutions_table
from cryo_companion.models.ssn3d import PAPER_PARAMETER_COUNTS, VARIANTS, ssn3d
from cryo_companion.papers.ssn3d.datasets import (
    DATASETS,
    SCALES,
    TARGET_SNR,
    count_analysis,
    dataset_config,
)
from cryo_companion.papers.ssn3d.experiments import (
    DATA_RESULT,
    collect_records,
    ensure_data,
    fig5_examples,
    first_of_each_class,
    run_baseline,
    scale_note,
    table2_specs,
    table3_classes,
    table3_specs,
    train_specs,
    weights_path,
)
from cryo_companion.papers.ssn3d.tables import (
    check_claims,
    claims_markdown,
    table2,
    table2_markdown,
    table3,
    table3_markdown,
)
from cryo_companion.papers.ssn3d.train import Settings
from cryo_companion.papers.ssn3d.training import DEVIATIONS, PAPER, RELEASED_CODE
from cryo_companion.runs.clean import display_path
from cryo_companion.runs.results import load_result, save_result
from cryo_companion.runs.runtime import setup
from cryo_companion.simulate.crowded import pilot_tomograms

run = setup(scale, device, seed, chapter="ssn3d", paper_needs_gpu=True)
settings = Settings.for_scale(run.scale)
seeds = list(range(run.seed, run.seed + (n_seeds or run.pick(1, 3))))
display(Markdown(scale_note(run.scale, settings, len(seeds))))

# %% [markdown]
# ## The data sets (4.1)
#
# Tomograms of 600 × 600 × 300 voxels at 13.68 Å, each with 10,000 randomly placed and
# oriented complexes of the 22 classes of Table 1, are imaged as tilt series over ±60° (2°
# steps, CTF at −6 µm, radiation damage, shot noise) and reconstructed by weighted
# back-projection; 40³ boxes are cut around the true centres of the complexes whose box lies
# inside the tomogram. The ground truth of a box is its centre complex (its density above 0.2
# of its maximum, less its neighbours); everything else, neighbours included, is background.
# The three data sets are one scene imaged at three doses; the dose of each is calibrated once,
# on a pilot tomogram of the same crowding, until the SNR of the boxes of GroEL (stand-in:
# TRiC) measured as Frank & Al-Ali's ratio is the paper's: 0.5 (A), 0.06 (B), 0.01 (C). The
# chapter "Structures" explains the stand-ins; the substitutions of this class set:

# %%
display(Markdown(substitutions_table("liu22")))

# %% [markdown]
# The paper keeps 3,380 of the boxes of 10,000 complexes. Placed uniformly in the tomogram,
# far more of them have whole boxes, so the data set draws 3,380 of them at random (the
# paper's size and split):

# %%
ca = count_analysis()
display(Markdown(
    f"Uniform placement keeps about {ca['uniform_boxes']:,.0f} whole boxes of 10,000 complexes "
    f"({100 * ca['uniform_fraction']:.1f} %), not the paper's 3,380 ({100 * ca['paper_fraction']:.1f}"
    f" %; DSM-Net, from the same recipe: {100 * ca['dsmnet_fraction']:.2f} %); complexes packed in"
    f" a 600³ cube of which the tomogram holds 300 voxels of height would give "
    f"{ca['cube_boxes']:,.0f} ({100 * ca['cube_fraction']:.1f} %)."))

# %% tags=["hide-input"]
data_sets = ensure_data(["A"] if run.paper else list(DATASETS), run, progress=False)
summaries = (load_result(DATA_RESULT, run.scale) or {}).get("data") or {}
display(Markdown(dataset_table({k: summaries[k] for k in DATASETS if k in summaries})))

# %% [markdown]
# The measured SNR is the median over the GroEL boxes of var(noise-free box) / var(noise),
# computed against the same tilt series reconstructed without noise (the quantity that Frank
# & Al-Ali's correlation estimates). Below, one pilot region of the same crowding imaged at the
# three calibrated doses (the region the calibration measured on), then one subtomogram of data
# set A per class with the outline of its target.

# %% mystnb={"figure": {"caption": "One pilot region of the data sets' crowding reconstructed at the three calibrated doses: central xy slice (top) and xz slice (bottom, the missing wedge elongates along z); each image scaled to its own range."}}
doses = {k: summaries[k]["dose_e_A2"] for k in DATASETS if k in summaries}
tomos, n_pilot = pilot_tomograms(dataset_config("A", run.scale), list(doses.values()),
                                 pilot_xy=SCALES[run.scale]["pilot_xy"], device=run.device,
                                 progress=False)
plot_tomogram_slices(tomos, [f"data set {k}: SNR {TARGET_SNR[k]:g}, {d:.3g} e/Å²"
                             for k, d in doses.items()], 13.68)
plt.show()

# %% mystnb={"figure": {"caption": "Subtomograms of data set A (SNR 0.5), the first of each of six classes: central xy slice, the target's mask outlined in red; neighbours are background."}}
a = data_sets["A"][0]
show = first_of_each_class(a.labels, 6)
plot_subtomograms(a.volumes[show], a.masks[show], [a.class_names[a.labels[i]] for i in show],
                  a.voxel_size_A)
plt.show()

# %% [markdown]
# ## The networks (2.1, 2.2)
#
# One parameterised family: an encoder of 3×3×3 convolutions (32, 32, pool, 64, 64, pool, 128,
# 128, pool); SSN3D-v1 and -v2 add two fully convolutional layers of 1024 channels with dropout
# 0.7 and score the two classes (target, background) at 1/8 of the box, upsampled three times,
# v2 adding scores of pool2 and pool1 (FCN skips); SSN3D-ED carries features of the encoder's
# widths back up and adds pool2 and pool1 to them. **Every decoder convolution is 1×1×1**: the
# paper's prose (3×3×3 convolutions in the upsampling blocks) cannot reach its own parameter
# counts, the authors' released code uses 1×1×1, and with it the counts are exactly the
# paper's:

# %%
nets = {v: ssn3d(v, seed=0) for v in VARIANTS}
display(Markdown("\n".join(f"- {m.describe()}" for m in nets.values())))
display(Markdown(networks_table({m.cfg.name: m.n_parameters() for m in nets.values()},
                                {nets[v].cfg.name: c for v, c in PAPER_PARAMETER_COUNTS.items()})))

# %% [markdown]
# ## Training (4.2)
#
# The paper's recipe beside what the authors' released script does. The book trains with the
# paper's: Adam with learning rate 1e-3 and β = (0.9, 0.99); Keras' `decay` of 1e-8 is a
# time-based decay of the learning rate, lr / (1 + 1e-8 · iteration), not a weight decay (it
# changes the rate by less than 1e-4 over a run); categorical cross-entropy over the voxels;
# batches of 128; at most 200 epochs; early stopping after 10 epochs without improvement of the
# validation pixel accuracy; 3,042 / 338 subtomograms, 10 % of the training part for
# validation.

# %%
display(Markdown(recipe_table(PAPER.to_dict(), RELEASED_CODE.to_dict())))
display(Markdown("The released code differs:\n\n" + "\n".join(f"- {d}" for d in DEVIATIONS)))

# %% [markdown]
# Choices the paper leaves open, ours: each subtomogram standardised on its own (zero mean,
# unit variance), mass dark as reconstructed; one split for every run (every row is tested on
# the same 338 subtomograms; a run's seed draws its initial weights, batches and dropout); an
# epoch is the full batches of a new permutation (Keras' last, partial batch is dropped); after
# early stopping a run keeps the weights of its best epoch (the paper: "stop and be saved"; the
# released script saves the best but tests the last); Keras' initialisation (Glorot-uniform,
# zero biases) and Keras' ε = 1e-7 in Adam; TF32 on the GPU. Runs of one network on one data
# set train together, several per step (SSN3D-ED: one vmapped step; v1 and v2 have dropout, so
# a loop), each stopping on its own. Table 3 trains SSN3D-ED on the 21 other classes of data set
# A (10 % of them for validation) and tests it on every subtomogram of the held-out class.

# %% tags=["hide-input"]
specs = table2_specs(seeds) + table3_specs([run.seed], table3_classes(run.scale, a.labels))
if not run.paper:   # at paper scale the runs are the GPU jobs of papers/ssn3d/jobs.py
    train_specs(specs, run, settings, progress=False)
    run_baseline("A", run, settings, progress=False)
records = collect_records(specs, settings, run.scale)
display(Markdown(runs_table(records)))

# %% [markdown]
# ## Table 2, ours beside the paper's
#
# Pixel accuracy and mIoU in %, ours as mean ± standard deviation over seeds with the per-seed
# values in brackets. The mIoU is the authors' code's: per subtomogram the IoU of the target and
# of the background, each averaged over the test set, and their mean; the target IoU alone is
# shown too. The paper's Xu row (27.40 %) is most likely a target IoU: at its pixel accuracy the
# two-class mIoU cannot be below about 45 %.

# %%
t2 = table2(records)
display(Markdown(table2_markdown(t2)))

# %% [markdown]
# ## Table 3, ours beside the paper's
#
# SSN3D-ED trained without the class and tested on all its subtomograms (one seed per class).

# %%
t3 = table3(records)
display(Markdown(table3_markdown(t3)))

# %% [markdown]
# ### Do the paper's claims hold here?
#
# Decided from the numbers above; "not decided" where a row has not been reproduced.

# %%
checks = check_claims(t2, t3)
display(Markdown(claims_markdown(checks)))

# %% [markdown]
# ## The paper's Fig. 5
#
# Test subtomograms of data set A (the first of four classes), segmented by SSN3D-ED (seed 0):
# central slices of the standardised input, the ground truth and the prediction, then both as
# isosurfaces.

# %% mystnb={"figure": {"caption": "The paper's Fig. 5 on our data set A: central xy slices of the input, the ground truth and the prediction of SSN3D-ED (seed 0), then isosurfaces of the ground truth (grey) and the prediction (orange)."}}
ex = fig5_examples(a, weights_path("table2_ed_A_seed0", run.scale), settings, run.device)
if ex is None:
    display(Markdown("*SSN3D-ED's weights (seed 0, data set A) not yet produced.*"))
else:
    plot_fig5(*ex, a.voxel_size_A)
    plt.show()

# %% [markdown]
# ## Learning curves
#
# Validation pixel accuracy and loss after every epoch of the Table 2 runs; a dot marks the
# epoch whose weights each run kept.

# %% mystnb={"figure": {"caption": "Validation pixel accuracy and cross-entropy after every epoch of the Table 2 runs (one colour per network and data set); dots mark the best epoch, whose weights each run kept."}}
plot_learning_curves(records)
plt.show()

# %% [markdown]
# ## Saving the numbers
#
# Everything above goes to `results/ssn3d.json` (paper scale; smoke scale: `results/smoke/`,
# not committed): both tables with per-seed values, the claims, the parameter counts, the data
# sets' measured SNRs and doses, the settings; the weights of SSN3D-ED (seed 0) at each SNR
# are in `results/weights/`, for `cryo-companion segment`.

# %% tags=["hide-input"]
data = {
    "table2": t2, "table3": t3, "claims": checks,
    "parameter_counts": {m.cfg.name: m.n_parameters() for m in nets.values()},
    "paper_parameter_counts": {nets[v].cfg.name: c for v, c in PAPER_PARAMETER_COUNTS.items()},
    "datasets": summaries, "pilot_complexes": n_pilot, "count_analysis": ca,
    "settings": settings.to_dict(), "seeds": seeds, "recipe": PAPER.to_dict(),
    "released_code": RELEASED_CODE.to_dict(), "deviations": list(DEVIATIONS),
    "runs": {n: r["data"].get("test") for n, r in records.items()},
    "runs_missing": sorted({s.name for s in specs} - set(records)),
    "reduced": scale_note(run.scale, settings, len(seeds)),
}
path = save_result(run, data, seeds=seeds)
print(f"saved {display_path(path)}")
