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
# # Macromolecular structures
#
# Every paper of this book starts from the density maps of real complexes. Che et al. (2019,
# Sec. III-A) convert PDB entries with Situs PDB2VOL into $40^3$ volumes "with a resolution and
# voxel spacing of 1.368 nm" for four classes (ribosome, membrane, TRiC, single-capped
# proteasome); SHREC 2020 (Gubins et al. 2020, Table 1) uses twelve complexes at 1 nm per voxel;
# SSN3D and DSM-Net (Liu et al.) use 22 complexes in $40^3$ subvolumes.
#
# This chapter builds those class sets from the offline mirror of real structures
# (`CRYO_COMPANION_STRUCTURES`): atomic models become densities the PDB2VOL way (one
# mass-weighted Gaussian per atom, $\sigma = R/2$, the Situs convention), maps are resampled
# with their mass conserved, membranes are drawn procedurally. It shows every class at the
# papers' voxel sizes, their sizes, how well the densities from atoms agree with the shipped
# maps, and which paper entries had to be substituted.

# %% tags=["parameters", "remove-cell"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from cryo_companion.book import structures as show
from cryo_companion.runs.clean import display_path
from cryo_companion.runs.results import save_result
from cryo_companion.runs.runtime import setup
from cryo_companion.structures.catalogue import substitution_table
from cryo_companion.structures.density import compare_atoms_to_map, entries_with_atoms_and_map
from cryo_companion.structures.membrane import membrane_patch
from cryo_companion.structures.templates import PAPER_BOX, PAPER_VOXEL_SIZE_A, template_bank

run = setup(scale, device, seed, chapter="structures", paper_needs_gpu=False)
SETS = ["che2019", "shrec2020", "liu22"]
# smoke: the first classes of each set; paper: all of them
N_SHOW = run.pick(4, None)

# %% [markdown]
# ## The class sets
#
# Each set keeps the paper's ID beside the entry we use. Che et al. give no PDB IDs; SHREC 2020
# lists its twelve; none of SSN3D's 22 entries is in the offline mirror, so each has a distinct
# stand-in (the table at the end gives the reasons).

# %%
display(Markdown("\n\n".join(show.class_set_table(name) for name in SETS)))

# %% [markdown]
# ## Densities at the papers' voxel sizes
#
# `template_bank` computes every class of a set (membranes: random patches) at the paper's
# voxel size in a $40^3$ box; the time includes reading the files and computing every volume
# (the disk cache of computed volumes is bypassed here).

# %%
banks, timings = {}, {}
for name in SETS:
    t0 = time.perf_counter()
    banks[name] = template_bank(name, PAPER_VOXEL_SIZE_A[name], PAPER_BOX[name], n_membrane=4,
                                seed=run.seed, use_cache=False, progress=False)
    timings[name] = time.perf_counter() - t0
display(Markdown(show.bank_table(banks, timings)))

# %% [markdown]
# The first volume of each class, as a central slice (top) and as its projection along the
# beam (bottom), one figure per set (at smoke scale only the first classes).

# %% mystnb={"figure": {"caption": "Che et al. 2019: ribosome, membrane, TRiC and single-capped proteasome at 13.68 \u00c5 per voxel (40\u00b3 box); central z slice and projection along z of the first volume of each class."}}
show.plot_class_densities(banks["che2019"], list(range(banks["che2019"].n_classes))[:N_SHOW])
plt.show()

# %% mystnb={"figure": {"caption": "SHREC 2020: the classes of its Table 1 at 10 \u00c5 per voxel, label and name above each column; central z slice and projection along z."}}
show.plot_class_densities(banks["shrec2020"], list(range(banks["shrec2020"].n_classes))[:N_SHOW])
plt.show()

# %% mystnb={"figure": {"caption": "The 22 stand-in classes of SSN3D and DSM-Net (Liu et al.) at 13.68 \u00c5 per voxel; central z slice and projection along z."}}
show.plot_class_densities(banks["liu22"], list(range(banks["liu22"].n_classes))[:N_SHOW])
plt.show()

# %% [markdown]
# ## Membranes
#
# The fourth class of Che et al. is membrane. A patch is a lipid bilayer: two head-group
# leaflets (about 2 nm thick, 4 nm apart) around a lighter hydrocarbon core, on a sphere of
# random radius (or a plane) with random orientation and offset; some patches carry a membrane
# protein from `maps_10A/mb_*`, inserted with its membrane normal along the bilayer's.

# %% mystnb={"figure": {"caption": "Four random membrane patches in a 40\u00b3 box at 13.68 \u00c5 per voxel (central z slice): two bare bilayers and two carrying a membrane protein; the title gives the radius of curvature and the protein."}}
rng = np.random.default_rng(run.seed)
patches = [membrane_patch(40, 13.68, rng, protein=prot, return_params=True)
           for prot in [None, None, "random", "random"]]
show.plot_membrane_patches(patches, 13.68)
plt.show()

# %% [markdown]
# ## Sizes
#
# Diameter: twice the largest distance from the centre of mass of the voxels above 10 % of the
# maximum; voxels: how many; mass: the integral of the density (for maps, the volume-based
# estimate at 0.81 Da/Å³). The paper's molecular weight is shown where the paper gives one
# (SHREC 2020 Table 1, for the biological assembly; the shipped models and maps hold the
# asymmetric unit, so some are smaller).

# %%
sizes = {name: show.class_sizes(banks[name], N_SHOW) for name in SETS}
display(Markdown("\n\n".join(f"**{name}** ({banks[name].voxel_size_A:g} Å/voxel)\n\n"
                              + show.sizes_table(sizes[name]) for name in SETS)))

# %% [markdown]
# ## Atoms against maps
#
# For the entries held both as atomic model and as 10 Å map, the density computed from the
# atoms at 10 Å (resolution 20 Å) is compared with the shipped map after centring both. The
# test suite requires r ≥ 0.9 for every one of them.

# %%
both = entries_with_atoms_and_map()
both = both if run.paper else both[:4]
rvals = {e: compare_atoms_to_map(e, voxel_size_A=10.0, box=64, resolution_A=20.0) for e in both}
r_min = min(v["r"] for v in rvals.values())
assert r_min >= 0.9, r_min
display(Markdown(show.atoms_vs_map_table(rvals)
                 + f"\n\nSmallest r: **{r_min:.3f}** over {len(rvals)} entries."))

# %% [markdown]
# ## Substitutions
#
# Where an entry of a paper is not in the offline mirror, a similar complex stands in; the
# paper's ID, the substitute and the reason are kept in the catalogue.

# %%
display(Markdown("\n\n".join(show.substitutions_table(name) for name in SETS)))

# %% [markdown]
# ## Result
#
# The papers' class sets are real densities here: the 4 classes of Che et al. at 13.68 Å, the
# 12 of SHREC 2020 at 10 Å and 22 stand-ins for SSN3D/DSM-Net at 13.68 Å, each computed in
# seconds on a CPU (times above). Densities from atoms reproduce the shipped maps (r above).

# %% tags=["hide-input"]
path = save_result(run, {
    "timings_s": timings,
    "n_volumes": {n: len(b) for n, b in banks.items()},
    "voxel_size_A": {n: b.voxel_size_A for n, b in banks.items()},
    "resolution_A": {n: b.resolution_A for n, b in banks.items()},
    "sizes": {n: s for n, s in sizes.items() if s},
    "atoms_vs_map_r": {e: v["r"] for e, v in rvals.items()},
    "atoms_vs_map_mass_kda": {e: [v["mass_atoms_kda"], v["mass_map_kda"]]
                              for e, v in rvals.items()},
    "substitutions": {name: substitution_table(name) for name in SETS},
})
print(f"saved {display_path(path)}")
