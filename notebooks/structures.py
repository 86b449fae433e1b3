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

# %% tags=["parameters"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from cryo_companion.runs.results import save_result
from cryo_companion.runs.runtime import setup
from cryo_companion.structures.catalogue import class_set, substitution_table
from cryo_companion.structures.density import (
    compare_atoms_to_map,
    entries_with_atoms_and_map,
    structure_size,
)
from cryo_companion.structures.membrane import membrane_patch
from cryo_companion.structures.templates import PAPER_BOX, PAPER_VOXEL_SIZE_A, template_bank

run = setup(scale, device, seed, chapter="structures", paper_needs_gpu=False)
SETS = ["che2019", "shrec2020", "liu22"]
# smoke: the first classes of each set; paper: all of them
N_SHOW = run.pick(4, None)
print(f"scale={run.scale}, device={run.device}")

# %% [markdown]
# ## The class sets
#
# Each set keeps the paper's ID beside the entry we use. Che et al. give no PDB IDs; SHREC 2020
# lists its twelve; none of SSN3D's 22 entries is in the offline mirror, so each has a distinct
# stand-in (the table at the end gives the reasons).

# %%
for name in SETS:
    cs = class_set(name)
    rows = "\n".join(f"| {i} | {c.name} | {c.paper_id or '–'} | {c.entry} | {c.source} |"
                     for i, c in enumerate(cs))
    display(Markdown(f"**{name}** — {cs.description}\n\n| label | class | paper ID | entry | "
                     f"source |\n|---|---|---|---|---|\n{rows}"))

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
    b = banks[name]
    print(f"{name}: {len(b)} volumes of {b.volumes.shape[1]}³ at {b.voxel_size_A} Å "
          f"in {timings[name]:.2f} s")


# %%
def show_set(name: str, labels: list[int]) -> None:
    """Central z slice and z projection of the first volume of each class in ``labels``."""
    b = banks[name]
    fig, axes = plt.subplots(2, len(labels), figsize=(1.9 * len(labels) + 1, 4.2), squeeze=False)
    h = b.voxel_size_A / 10.0
    ext = [0, b.volumes.shape[-1] * h, 0, b.volumes.shape[-2] * h]
    c = b.volumes.shape[1] // 2
    slices = [b.of_class(lab)[0][c] for lab in labels]
    projs = [b.of_class(lab)[0].sum(0) * b.voxel_size_A for lab in labels]
    vmax0, vmax1 = max(x.max() for x in slices), max(x.max() for x in projs)
    for j, lab in enumerate(labels):
        im0 = axes[0, j].imshow(slices[j], cmap="gray_r", origin="lower", extent=ext, vmin=0,
                                vmax=vmax0)
        im1 = axes[1, j].imshow(projs[j], cmap="gray_r", origin="lower", extent=ext, vmin=0,
                                vmax=vmax1)
        axes[0, j].set_title(b.class_names[lab][:18], fontsize=8)
        for ax in axes[:, j]:
            ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("central slice\ny (nm)", fontsize=8)
    axes[1, 0].set_ylabel("projection along z\ny (nm)", fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("x (nm)", fontsize=8)
    fig.colorbar(im0, ax=axes[0].tolist(), shrink=0.8, label="Da/Å³")
    fig.colorbar(im1, ax=axes[1].tolist(), shrink=0.8, label="Da/Å²")
    fig.suptitle(f"{name} at {b.voxel_size_A} Å per voxel (classes {labels[0]}-{labels[-1]})",
                 fontsize=10)
    plt.show()


for name in SETS:
    shown = list(range(banks[name].n_classes))[:N_SHOW]
    for start in range(0, len(shown), 8):  # at most 8 classes per figure
        show_set(name, shown[start:start + 8])

# %% [markdown]
# ## Membranes
#
# The fourth class of Che et al. is membrane. A patch is a lipid bilayer: two head-group
# leaflets (about 2 nm thick, 4 nm apart) around a lighter hydrocarbon core, on a sphere of
# random radius (or a plane) with random orientation and offset; some patches carry a membrane
# protein from `maps_10A/mb_*`, inserted with its membrane normal along the bilayer's.

# %%
rng = np.random.default_rng(run.seed)
patches = [membrane_patch(40, 13.68, rng, protein=prot, return_params=True)
           for prot in [None, None, "random", "random"]]
vmax = max(v[20].max() for v, _ in patches)
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for ax, (v, par) in zip(axes, patches):
    im = ax.imshow(v[20], cmap="gray_r", origin="lower", extent=[0, 54.7, 0, 54.7], vmin=0,
                   vmax=vmax)
    r = "flat" if par.radius_A == np.inf else f"R = {par.radius_A / 10:.0f} nm"
    ax.set_title(f"{r}, {par.protein or 'no protein'}", fontsize=8)
    ax.set_xlabel("x (nm)")
axes[0].set_ylabel("y (nm)")
fig.colorbar(im, ax=axes.tolist(), shrink=0.8, label="density, central z slice (Da/Å³)")
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
sizes = {}
for name in SETS:
    b = banks[name]
    cs = class_set(name)
    rows = []
    for lab, c in enumerate(cs.classes[:N_SHOW] if N_SHOW else cs.classes):
        if c.source == "procedural":
            continue  # a membrane patch fills the box: no size of its own
        s = structure_size(b.of_class(lab)[0], b.voxel_size_A)
        s["paper_mw_kda"] = c.mw_kda
        s["entry"] = c.entry
        sizes.setdefault(name, {})[c.name] = s
        paper = f"{c.mw_kda:.0f}" if c.mw_kda else "–"
        rows.append(f"| {c.name} | {c.entry} | {s['diameter_nm']:.1f} | {s['n_voxels']} | "
                    f"{s['mass_kda']:.0f} | {paper} |")
    display(Markdown(f"**{name}** ({b.voxel_size_A} Å/voxel)\n\n| class | entry | diameter "
                     "(nm) | voxels | mass (kDa) | paper MW (kDa) |\n|---|---|---|---|---|---|\n"
                     + "\n".join(rows)))

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
display(Markdown("| entry | r | mass from atoms (kDa) | mass of map, volume estimate (kDa) |\n"
                 "|---|---|---|---|\n" + "\n".join(
                     f"| {e} | {v['r']:.3f} | {v['mass_atoms_kda']:.0f} | "
                     f"{v['mass_map_kda']:.0f} |" for e, v in rvals.items())))
r_min = min(v["r"] for v in rvals.values())
assert r_min >= 0.9, r_min
print(f"smallest r: {r_min:.3f} over {len(rvals)} entries")

# %% [markdown]
# ## Substitutions
#
# Where an entry of a paper is not in the offline mirror, a similar complex stands in; the
# paper's ID, the substitute and the reason are kept in the catalogue.

# %%
subs = {name: substitution_table(name) for name in SETS}
for name in SETS:
    rows = "\n".join(f"| {r['class']} | {r['paper_id'] or '–'} | {r['entry']} | {r['reason']} |"
                     for r in subs[name])
    display(Markdown(f"**{name}**\n\n| class | paper ID | used | reason |\n|---|---|---|---|\n"
                     + rows))

# %% [markdown]
# ## Result
#
# The papers' class sets are real densities here: the 4 classes of Che et al. at 13.68 Å, the
# 12 of SHREC 2020 at 10 Å and 22 stand-ins for SSN3D/DSM-Net at 13.68 Å, each computed in
# seconds on a CPU (times above). Densities from atoms reproduce the shipped maps (r above).

# %%
path = save_result(run, {
    "timings_s": timings,
    "n_volumes": {n: len(b) for n, b in banks.items()},
    "voxel_size_A": {n: b.voxel_size_A for n, b in banks.items()},
    "resolution_A": {n: b.resolution_A for n, b in banks.items()},
    "sizes": sizes,
    "atoms_vs_map_r": {e: v["r"] for e, v in rvals.items()},
    "atoms_vs_map_mass_kda": {e: [v["mass_atoms_kda"], v["mass_map_kda"]]
                              for e, v in rvals.items()},
    "substitutions": subs,
})
print(f"saved {path}")
