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
# # One factor at a time: what each randomized factor contributes
#
# **Beyond the paper.** Che et al. 2019 compare two arms, everything randomized against
# everything fixed (Table I). This chapter asks which of the randomized factors matter: it
# trains the fully randomized arm with the context randomized too (`randomized+context`, the
# chapter "Table I") as the *reference*, and, in turn, the same arm with **one** factor fixed at
# the value the baseline arm uses (SNR, missing wedge, defocus, spherical aberration, the
# intensity augmentation, the context), every other factor still randomized. The drop of each
# ablation against the reference, with its 95 % interval over seeds, is reported on **both
# frozen test domains** (the chapter "Test domain") under **both test protocols** (the paper's
# Gaussian filter at test time, and none, as in training).
#
# The ablations train for fewer iterations than Table I's 15,000 (the numbers below say how
# many); a drop measured after a shorter training says what a factor contributes at that
# length, not necessarily at the paper's.

# %% tags=["parameters", "remove-cell"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %% tags=["hide-input"]
import shutil
import time

from IPython.display import Markdown, display

from cryo_companion.papers.che2019 import ablation, table1, table1_runs
from cryo_companion.papers.che2019.ablation import ABLATION_ARMS, ABLATION_ITERS, ABLATION_SEEDS
from cryo_companion.papers.che2019.test_domain import DEFAULT_DOMAIN, DOMAIN_FILES, domain_hash
from cryo_companion.papers.che2019.train import TrainConfig
from cryo_companion.papers.che2019.weights import train_and_export
from cryo_companion.runs.clean import display_path
from cryo_companion.runs.results import repo_root, save_result
from cryo_companion.runs.runtime import setup

run = setup(scale, device, seed, chapter="ablation", paper_needs_gpu=True)

# %% [markdown]
# ## The configurations
#
# "Fixed at its baseline value" takes the value from the baseline preset (the SNR measured on
# the first test domain, a 30° wedge, −6 µm defocus, Cs 2.7 mm, no context); the intensity
# augmentation, random in the baseline arm too, is switched off (gain 1, offset 0). Every
# ablation is evaluated at the randomized arm's mask threshold (0.5).

# %%
display(Markdown(ablation.configurations_table()))

# %% [markdown]
# ## Training
#
# At paper scale the ablations are GPU jobs (`cryo-companion paper`; `papers/che2019/jobs.py`),
# trained and exported like Table I's arms (float16 weights in `results/weights/`, records with
# provenance in `results/training/`); this chapter trains nothing at paper scale and shows a run
# that has not been trained yet as missing. At smoke scale it trains every configuration for a
# few iterations of tiny batches with narrow channels, which only checks that everything runs.

# %% tags=["hide-input"]
seeds = list(ABLATION_SEEDS) if run.paper else [run.seed, run.seed + 1]
t0 = time.perf_counter()
if run.paper:
    records = table1_runs.exported_runs(ABLATION_ARMS, seeds, "paper")
else:
    runs_root = repo_root() / "build" / "ablation_runs_smoke"
    shutil.rmtree(runs_root, ignore_errors=True)
    configs = [TrainConfig(arm=a, seed=s, **table1.SMOKE_TRAINING)
               for a in ABLATION_ARMS for s in seeds]
    recs = train_and_export(configs, runs_root, str(run.device), scale="smoke", retrain=True,
                            progress=False)
    records = {(c.arm, c.seed): r for c, r in zip(configs, recs)}
train_wall_s = time.perf_counter() - t0
display(Markdown(table1_runs.training_lengths(records, scale=run.scale)))
print(f"the paper-scale plan: {len(ABLATION_ARMS)} configurations x {len(ABLATION_SEEDS)} seeds "
      f"x {ABLATION_ITERS:,} iterations")

# %% [markdown]
# ## The drops, on both domains and under both protocols
#
# Per domain and protocol (the title says which): mean ± standard deviation over seeds of each
# configuration's accuracy and mIoU, and its drop, reference − ablation, with the 95 % Welch-t
# interval. A drop whose interval lies above zero means that randomizing that factor helps on
# that domain; below zero, that fixing it helps.

# %%
weights = ablation.ablation_weights(records, run.scale)
results = (ablation.evaluate_ablations(weights, scale=run.scale, device=run.device)
           if ablation.REFERENCE in weights else {})
if results:
    display(Markdown(ablation.ablation_sections(results)))
else:
    display(Markdown("**No result yet**: the reference configuration has not been trained."))
missing = table1_runs.missing_runs(records)
if missing:
    display(Markdown("**Missing runs** (not trained yet): " + ", ".join(missing) + "."))

# %% [markdown]
# ## Saving the numbers
#
# `results/ablation.json` keeps every evaluation (per protocol, domain and configuration, with
# every seed's values), the training records' settings and provenance, and the test domains'
# hashes.

# %% tags=["hide-input"]
data = {
    "evaluations": results,
    "configurations": ablation.training_plan(ABLATION_ITERS if run.paper else
                                             table1.SMOKE_TRAINING["iters"], seeds),
    "training": {"arms": list(ABLATION_ARMS), "seeds": seeds,
                 **table1_runs.training_record_summary(records)},
    "timing": {"wall_s_this_session": train_wall_s},
}
path = save_result(run, data, seeds=seeds, test_domain_hash=domain_hash(DEFAULT_DOMAIN),
                   test_domain_hashes={d: domain_hash(d) for d in DOMAIN_FILES})
print(f"saved {display_path(path)}")
