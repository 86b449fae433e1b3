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
# # DSM-Net: classify, segment and recover structure with one network
#
# **The paper's claims** (Liu et al., DSM-Net): one residual 3-D backbone shared by a
# classification subnet, a segmentation subnet and a coarse structure-recovery subnet is
# better at every task than the single-task networks (the tasks help each other), DSM-Net is
# best in mIoU and object accuracy on simulated data at SNR 0.06 and 0.01 and on experimental
# subtomograms (Tables 2-4), and its hidden units separate a structure it never saw in
# training (GroEL), whose density it recovers (3.5).
#
# **This chapter** makes data sets A (SNR 0.06) and B (SNR 0.01) with the crowded-tomogram
# generator of the SSN3D chapter, and C (the stand-in for the experimental set) with the
# realistic test-domain simulator; builds DSM-Net, its subnets and the paper's two baselines;
# trains every row of Tables 2-4 with the paper's recipe (three seeds for every row of Table 2
# and for DSM-Net in Table 3) through the project's training engine; shows ours beside the
# paper's tables and decides the claims from our numbers; and repeats the unseen-GroEL
# experiment (k-means of the hidden units, t-SNE, the recovered structure's FSC). No author code
# was released: every choice is the book's reading of the text, stated where it is made.

# %% tags=["parameters", "remove-cell"]
scale = "smoke"   # "smoke": 2-core CPU in about two minutes; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0
n_seeds = 0       # seeds per row at most; 0: the scale's (smoke 1, paper each row's own)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from cryo_companion.book.dsmnet_figures import (
    claims_table,
    parameters_table,
    plot_fig2,
    plot_fsc,
    plot_tsne,
    results_table,
    runs_table,
    unseen_table,
)
from cryo_companion.book.ssn3d import dataset_table
from cryo_companion.papers.dsmnet.datasets import DATASETS
from cryo_companion.papers.dsmnet.evaluate import PREPROCESSING
from cryo_companion.papers.dsmnet.experiments import (
    DATA_RESULT,
    UNSEEN_RESULT,
    WEIGHTS,
    collect_records,
    ensure_data,
    fig2_examples,
    scale_note,
    table_runs,
    train_recorded,
    unseen_experiment,
    weights_path,
)
from cryo_companion.papers.dsmnet.tables import assemble, check_claims, table_rows
from cryo_companion.papers.dsmnet.train import Settings
from cryo_companion.papers.dsmnet.training import PAPER_RECIPE, parameter_counts
from cryo_companion.runs.clean import display_path
from cryo_companion.runs.results import load_result, save_result
from cryo_companion.runs.runtime import setup

run = setup(scale, device, seed, chapter="dsmnet", paper_needs_gpu=True)
settings = Settings.for_scale(run.scale)
runs = table_runs(n_seeds or run.pick(1, None))
n_shown = max(len([r for r in runs if r.spec.name == "table2/dsmnet"]), 1)
display(Markdown(scale_note(run.scale, settings, n_shown)))

# %% [markdown]
# ## The data sets (3.1)
#
# A and B are one crowded scene (22 classes, the stand-ins of the chapter "Structures")
# imaged at two doses, each calibrated once on a pilot tomogram until the SNR of the GroEL
# stand-in's boxes is the paper's, 3,205 subtomograms of 40³ at 13.68 Å each. C stands in for
# the paper's 400 ribosomes and 386 single-capped proteasomes from rat-neuron tomograms: crowded
# scenes with membranes imaged tilt by tilt from −50° to +70° (per-tilt CTF, shot noise,
# detector MTF) and reconstructed by weighted back-projection, made for Table 3 and nothing
# else; its masks and densities come from the true poses (the paper aligned templates). Every
# data set is split once: 10 % test, 10 % validation, the rest for training (our reading; the
# paper gives no split), the same split for every run.

# %% tags=["hide-input"]
data_sets = ensure_data(["A"] if run.paper else list(DATASETS), run, progress=False)
summaries = (load_result(DATA_RESULT, run.scale) or {}).get("data") or {}
display(Markdown(dataset_table({k: summaries[k] for k in DATASETS if k in summaries})))

# %% [markdown]
# ## The networks (2.1-2.3)
#
# The backbone: a 3-D convolution, stride-2 max pooling, two residual blocks each followed by a
# stride-2 convolution, a residual block and average pooling (widths 32, 64, 128). The
# classification subnet: 1,024 hidden units with dropout 0.7, softmax over the classes. The
# segmentation subnet: two stride-2 deconvolutions each followed by a residual block, a third,
# a 1×1×1 convolution to 2 channels, skips from the backbone's residual blocks. The recovery
# subnet: one 1×1×1 convolution to 1 channel on the segmentation decoder. It regresses the
# target's noise-free density as a protein fraction per voxel (the paper regresses the response
# of an unsupervised averaging model: ours has the truth that such a model estimates). The
# baselines: DSRF3D-v2 (the authors' 22-class 3-D VGG) and SSN3D-ED (the SSN3D chapter's).
# Trainable parameters, every network at the paper's widths:

# %% tags=["hide-input"]
counts = parameter_counts()
display(Markdown(parameters_table(counts)))

# %% [markdown]
# ## Training (3.2)
#
# The paper's recipe for every network: Adam (learning rate 1e-3, β = (0.9, 0.99), Keras'
# ε = 1e-7), batches of 64, at most 100 epochs, early stopping after 15 epochs without
# improvement of the validation loss (the row's weighted sum, Keras' default quantity), the
# weights of the best epoch kept. Loss weights classification : segmentation : recovery are
# DSM-Net's 1 : 10 : 1, Table 4's as its rows say (Table 2's Cls+Rec and Cls+Seg are Table 4's
# 1 : 10 rows). Each box is standardised on its own, mass dark as reconstructed. The seeds of
# a row train together, several per step, each with its own weights, optimizer, batches and
# dropout. A run "fails to converge" (the paper's *) when its classification loss on the
# training boxes never falls below 0.9 · ln C.

# %% tags=["hide-input"]
display(Markdown(f"Recipe: {PAPER_RECIPE.to_dict()}; this run's settings: "
                 f"{settings.to_dict()}."))
if not run.paper:   # at paper scale the runs are the GPU jobs of papers/dsmnet/jobs.py
    train_recorded(runs, run, settings, weights=WEIGHTS, progress=False)
records = collect_records(runs, settings, run.scale)
display(Markdown(runs_table(records)))

# %% [markdown]
# ## Table 2 (data set A), ours beside the paper's
#
# Accuracies in %: ours the mean ± standard deviation over seeds (n seeds); "-" where a task
# does not apply, "missing" where we have not produced it.

# %% tags=["hide-input"]
tables = assemble(records)
display(Markdown(results_table(table_rows(tables, "table2"))))

# %% [markdown]
# ## Table 3 (data sets B and C)

# %% tags=["hide-input"]
display(Markdown("**Data set B (SNR 0.01)**\n\n" + results_table(table_rows(tables, "table3",
                                                                             "B"))))
display(Markdown("**Data set C (the experimental set's stand-in)**\n\n"
                 + results_table(table_rows(tables, "table3", "C"))))

# %% [markdown]
# ## Table 4: the loss weights

# %% tags=["hide-input"]
display(Markdown(results_table(table_rows(tables, "table4"))))

# %% [markdown]
# ### Do the paper's claims hold here?
#
# Each claim decided on the paper's own tables and on ours; "not produced yet" where a row is
# missing.

# %% tags=["hide-input"]
checks = check_claims(tables)
display(Markdown(claims_table(checks)))

# %% [markdown]
# ## The paper's Fig. 2
#
# Test subtomograms of data set A (the first of four classes) through DSM-Net (seed 0):
# central slices of the input, the true structure, the segmentation and the recovered density.

# %% mystnb={"figure": {"caption": "The paper's Fig. 2 on our data set A: central x-y slices of (a) the standardised input, (b) the target's true density, (c) DSM-Net's segmentation and (d) its recovered density, for test subtomograms of four classes."}}
ex = fig2_examples(data_sets["A"], weights_path(WEIGHTS[0], run.scale), settings, run.device)
if ex is None:
    display(Markdown("*DSM-Net's weights (Table 2, seed 0) not yet produced.*"))
else:
    plot_fig2(ex["volumes"], ex["truth"], ex["masks"], ex["recovery"],
              data_sets["A"].voxel_size_A, titles=ex["titles"])
    plt.show()

# %% [markdown]
# ## A structure never seen (3.5)
#
# DSM-Net with 21 outputs trained on data set A without GroEL (its stand-in); the 1,024
# hidden units of every subtomogram of A, GroEL included, clustered by k-means with k = 22; the
# cluster richest in GroEL, its purity (GroEL's share of it) and recall (the share of GroEL in
# it); the recovery outputs of the GroEL boxes aligned by their true poses and averaged, against
# the same average of their true densities by Fourier shell correlation. The paper reports an
# FSC "score" of 5.0 without unit or threshold: most likely the resolution in nm at FSC 0.5
# (at 13.68 Å, Nyquist is 2.7 nm); ours is given at 0.5 and at 0.143. The average of the noisy
# inputs by the same true poses is what an ideal unsupervised averaging recovers from them.

# %% tags=["hide-input"]
unseen_rec = (load_result(UNSEEN_RESULT, run.scale) if run.paper
              else unseen_experiment(run, settings, progress=False))
unseen = (unseen_rec or {}).get("data")
display(Markdown(unseen_table(unseen) if unseen else "*The unseen-structure run is missing.*"))

# %% mystnb={"figure": {"caption": "t-SNE map of the 1,024 hidden units of every subtomogram of data set A, by DSM-Net trained without GroEL: GroEL (never seen) in red, the other classes in grey."}}
if unseen:
    plot_tsne(unseen["discovery"]["tsne"], unseen["labels"], unseen["groel"],
              clusters=unseen["discovery"]["clusters"],
              enriched=unseen["discovery"]["enriched"]["cluster"], highlight_name="GroEL")
    plt.show()

# %% mystnb={"figure": {"caption": "Fourier shell correlation of the recovered GroEL structure (recovery outputs averaged by true poses) with the average of its true densities; thresholds 0.5 and 0.143 marked."}}
if unseen:
    plot_fsc(unseen["fsc"], title="GroEL, recovered by DSM-Net that never saw it")
    plt.show()

# %% [markdown]
# ## Saving the numbers
#
# Everything above goes to `results/dsmnet.json` (paper scale; smoke scale: `results/smoke/`,
# not committed): Tables 2-4 with per-seed values, the claims, the unseen-structure numbers,
# the parameter counts, the data sets, the settings; the weights of DSM-Net (Table 2, seed 0)
# are in `results/weights/`, for `cryo-companion dsmnet`.

# %% tags=["hide-input"]
data = {
    **tables, "claims": [c.to_dict() for c in checks], "parameter_counts": counts,
    "unseen": None if not unseen else {k: unseen[k] for k in (
        "n", "n_groel", "groel_name", "groel_predicted", "fsc", "reference_fsc", "run_name",
        "test", "test_held_out")} | {"enriched": unseen["discovery"]["enriched"]},
    "datasets": summaries, "settings": settings.to_dict(), "recipe": PAPER_RECIPE.to_dict(),
    "preprocessing": PREPROCESSING, "weights": [weights_path(w, run.scale).name for w in WEIGHTS],
    "runs": {n: r["data"].get("test") for n, r in records.items()},
    "runs_missing": sorted({r.name for r in runs} - set(records)),
    "reduced": scale_note(run.scale, settings, n_shown),
}
path = save_result(run, data, seeds=sorted({r.seed for r in runs}))
print(f"saved {display_path(path)}")
