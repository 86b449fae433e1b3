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
# # SHREC 2020: methods and results
#
# SHREC 2020 (Gubins et al. 2020, Sections 3-5) compared ten localisation and classification
# methods on model 9 of its data set. This chapter runs four of them on our data set (previous
# chapter), all through one detection layer (tiling, peaks, clusters, particle lists), and
# scores them with the benchmark's metrics in both evaluation modes:
#
# - **template matching** (TM-T, TM-F; 3.7): FFT cross-correlation over rotations sampled at
#   each complex's Crowther step, CTF-modulated templates, the 2,000 best candidates per class;
#   TM-T keeps the top 217 per class from the largest class to the smallest, TM-F also drops
#   candidates closer to an accepted particle than the sum of their radii;
# - **a DeepFinder-style U-Net** (3.2): a 13-class segmentation of 56³ patches (Dice loss), the
#   score maps binned by 2, mean-shift clusters (bandwidth 5) with a size threshold per class;
# - **YOPO** (3.4): a box classifier on 24³ boxes (one global pooling), run densely over the
#   tomogram, voxels with p > 0.99 kept at least 14 voxels apart;
# - **UMC** (3.6): a two-decoder U-Net (denoising and segmentation, MSE + Tversky loss),
#   connected components of the segmentation.
#
# The paper's networks trained for 5 to 168 hours on models 0-8. Ours train for a stated
# budget on fewer models (below), two seeds each trained together in one process (N runs per
# step); the F1 reached at points during training shows what more time would buy. **Every
# number below carries its scale**: at smoke scale (the default, a 2-core CPU) it checks the
# pipeline on tiny models and tiny networks and means nothing about the methods.

# %% tags=["parameters", "remove-cell"]
scale = "smoke"   # "smoke": 2-core CPU in about two minutes; "paper": reads the GPU jobs' pieces
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from cryo_companion.book.shrec_methods_plots import (
    plot_confusions,
    plot_f1_vs_weight,
    plot_method_outputs,
    plot_training_curves,
    table_markdown,
)
from cryo_companion.papers.shrec2020 import experiment as ex
from cryo_companion.papers.shrec2020 import methods_results as mr
from cryo_companion.runs.results import save_result
from cryo_companion.runs.runtime import setup

run = setup(scale, device, seed, chapter="shrec_methods", paper_needs_gpu=False)
p = ex.plan(scale)
print("device:", run.device, "| scale:", scale)

# %% [markdown]
# ## The plan at this scale
#
# At paper scale each piece (template matching, each network) is a GPU job of its own
# (`cryo-companion paper`), saved in `results/shrec_methods/` when it ends; this chapter then
# only assembles them, and a piece not yet run shows as missing. At smoke scale the chapter
# makes everything itself: 64² models of the smoke recipe, networks a few channels wide, six
# iterations.

# %%
display(Markdown(table_markdown(mr.plan_rows(p), first="setting")))

# %%
pieces = ex.collect(p, run, make=(scale == "smoke"))
data = mr.assemble(p, pieces)
print("scale:", scale, "| pieces present:", [k for k, v in pieces.items() if v],
      "| rows missing:", data["missing"])

# %% [markdown]
# ## What each method outputs on model 9
#
# One slice of the test model: the tomogram, its class mask, and each method's output there
# (the networks' first seed). DeepFinder's labels are on the binned grid; YOPO's are the voxels
# whose most likely complex passes the threshold; UMC's come from its segmentation decoder;
# template matching shows its TM-F detections near the slice.

# %% mystnb={"figure": {"caption": "One slice of test model 9 (binned by 2), its class mask, and each method's output there: DeepFinder's binned labels, YOPO's confident voxels, UMC's segmentation (first seed), TM-F's detections within 3 slices."}}
fig = plot_method_outputs(pieces)
if fig is not None:
    fig.suptitle(f"model 9, {scale} scale", y=1.0)
    plt.show()

# %% [markdown]
# ## Training
#
# Losses of every run, and the localisation F1 (default mode, on the plan's crop of model 9)
# after each training segment, against the training time per run (the group's wall time shared
# by its runs).

# %% mystnb={"figure": {"caption": "Training loss of every run (left) and localisation F1 on the plan's crop of model 9 after each training segment against the training time per run (right), at the chapter's scale."}}
fig = plot_training_curves(data["methods"])
if fig is not None:
    fig.suptitle(f"{scale} scale", y=1.0)
    plt.show()

# %% tags=["nbval-ignore-output"]
display(Markdown(table_markdown(mr.timing_rows(data), first="method")))

# %% [markdown]
# ## Tables 3, 4, 6 and 7 beside the paper's
#
# Ours are the mean ± standard deviation over seeds (the count in brackets) in the official
# script's mode (`benchmark_script`, how the paper's tables were made). Table 7 is in seconds:
# the paper's hours on other hardware, ours within the stated budget.

# %%
for name in ("table3", "table4", "table6"):
    display(Markdown(f"**{name.replace('table', 'Table ')}** ({scale} scale)\n\n"
                     + table_markdown(data["tables"][name], first="submission")))

# %% tags=["nbval-ignore-output"]
display(Markdown(f"**Table 7** ({scale} scale)\n\n"
                 + table_markdown(data["tables"]["table7"], first="submission")))

# %% [markdown]
# ## F1 against molecular weight (Fig. 11) and the confusion matrices

# %% mystnb={"figure": {"caption": "Per-class classification F1 against molecular weight (the paper's Fig. 11, our rows), then each method's confusion matrix (first seed, classes by weight, plus not found)."}}
fig = plot_f1_vs_weight(data["f1_vs_weight"])
if fig is not None:
    plt.show()
fig = plot_confusions(data["methods"])
if fig is not None:
    plt.show()

# %% [markdown]
# ## The paper's findings, checked with our numbers

# %%
display(Markdown(f"Checked on our {scale}-scale numbers:\n\n"
                 + table_markdown(mr.finding_rows(data), first="finding")))

# %% [markdown]
# The assembled numbers, timings and provenance are saved (paper scale:
# `results/shrec_methods.json`, which the landing table's SHREC rows read; smoke scale:
# `results/smoke/`, not committed).

# %%
path = save_result(run, data, seeds=list(p.seeds))
print("saved", path.name, "| scale:", scale)
