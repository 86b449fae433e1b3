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
# # Simulating subtomograms
#
# Che et al. 2019 (III-A) train only on cheap simulated subtomograms, generated on the fly: a
# density map of 40³ voxels at 1.368 nm is rotated and shifted at random, noise is added at a
# chosen SNR, the missing wedge of a limited tilt range is cut out, and the volume is convolved
# with the microscope's contrast transfer function (CTF: defocus Dz, spherical aberration Cs) and
# the detector's modulation transfer function (MTF, sinc(πω/2) with ω the fraction of Nyquist).
#
# This chapter follows one subtomogram through every step, in real space and in Fourier space,
# plots the CTF for several Dz and Cs, checks that the SNR we ask for is the SNR we get, and ends
# with an explorer of the four parameters. The simulator is
# `cryo_companion.simulate.subtomogram.Simulator`; the tables and figures come from
# `cryo_companion.book.simulation` and `cryo_companion.book.plotting`, the explorer from
# `cryo_companion.book.explorer`.

# %% tags=["parameters", "remove-cell"]
scale = "smoke"   # "smoke": 2-core CPU in about a minute; "paper": the papers' sizes
device = "auto"   # "auto", "cpu" or "cuda"
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from cryo_companion import optics
from cryo_companion.book import benchmarks, explorer, plotting
from cryo_companion.book import simulation as show
from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.rotation import random_rotation_matrices
from cryo_companion.runs.clean import display_path
from cryo_companion.runs.results import load_result, save_result
from cryo_companion.runs.runtime import setup
from cryo_companion.simulate.checks import snr_check
from cryo_companion.simulate.subtomogram import Simulator
from cryo_companion.structures.catalogue import class_set
from cryo_companion.structures.templates import template_bank

run = setup(scale, device, seed, chapter="simulation", paper_needs_gpu=False)
VOXEL_A = 13.68  # Che et al. 2019, III-A: 1.368 nm voxels
BOX = 40         # Che et al. 2019, III-A: 40³ voxels

# %% [markdown]
# ## Conventions
#
# Stated once here, and in the docstrings of `cryo_companion.optics` and
# `cryo_companion.simulate.subtomogram`:
#
# * **Axes.** Volumes are indexed `(z, y, x)`. The electron beam is along **z**; the tilt axis is
#   **y**. Real-space axes are in nm, spatial frequencies in 1/nm (cycles per nm).
# * **Defocus.** Dz in µm, **negative = underfocus** (the paper's range is Dz ∈ [−12, 0] µm).
#   The phase shift is χ(k) = π λ Dz k² − (π/2) Cs λ³ k⁴, λ = 0.0197 Å at 300 kV, and
#   CTF(k) = √(1−A²) sin χ − A cos χ with amplitude contrast A = 0.07, times an envelope
#   exp(−B k²/4). This physical CTF is −A at k = 0 (dense matter dark); the simulator applies
#   −CTF so that particles stay bright, as the simulator Che et al. used does.
# * **Missing wedge.** A wedge angle α means the tilt series covers ±(90° − α) about y
#   (α = 30° is a ±60° tilt range); a Fourier component is missing when |k_z| sin α > |k_x| cos α.
# * **SNR** = variance of the noise-free subtomogram / variance of the noise, both measured on the
#   final output (after wedge, CTF, MTF and band limit).
# * **MTF** = sinc(πω/2) with ω = |k| / k_Nyquist; the band limit is a sphere at Nyquist.

# %% tags=["hide-input"]
cset = class_set("che2019")
bank = template_bank("che2019", VOXEL_A, BOX, n_membrane=run.pick(4, 16), seed=run.seed,
                     progress=False)
sim = Simulator.from_template_bank(bank, VOXEL_A, device=run.device)
nyquist_per_nm = 10.0 / (2 * VOXEL_A)
display(Markdown(
    f"Templates: {len(bank.labels)} volumes of {BOX}³ voxels at {VOXEL_A / 10:.3f} nm "
    f"({BOX * VOXEL_A / 10:.1f} nm across; Nyquist {nyquist_per_nm:.3f} 1/nm), labels "
    + ", ".join(f"{i} {c.name} (entry {c.entry}, {c.source})" for i, c in enumerate(cset))
    + "."))

# %% [markdown]
# ## From density to subtomogram, step by step
#
# One ribosome, with the paper's baseline optics (α = 30°, Dz = −6 µm, Cs = 2.7 mm) and SNR 1 so
# that the particle stays visible. Each row is one stage; the left three panels are central
# slices in real space, the right three the same planes of log₁₀|F| in Fourier space. The wedge,
# CTF, MTF and band limit are all multiplications in Fourier space, so their order does not
# change the result; the simulator applies them in the paper's order (noise and wedge, then CTF
# and MTF). Noise is white before the optics, so after them it carries the CTF rings too.

# %% mystnb={"figure": {"caption": "One ribosome through the simulator, one stage per row: central x\u2013y, x\u2013z and y\u2013z slices in real space (left, nm) and the same planes of log\u2081\u2080|F| in Fourier space (right, 1/nm). SNR 1, wedge 30\u00b0, Dz \u22126 \u00b5m, Cs 2.7 mm."}}
STEP = {"snr": 1.0, "wedge_deg": 30.0, "defocus_um": -6.0, "cs_mm": 2.7,
        "bfactor_A2": get_preset("randomized").bfactor_A2[0]}
ribo = int(np.flatnonzero(bank.labels == cset.index("ribosome"))[0])
gen = torch.Generator(device=run.device).manual_seed(run.seed)
R = random_rotation_matrices(1, gen, device=run.device)
step = sim.simulate(torch.tensor([ribo]), R, {**STEP, "shift_x_vox": 2.0, "shift_y_vox": -1.0},
                    gen, return_stages=True)
stages = {"template": bank.volumes[ribo],
          "rotated + shifted": step.stages["density"][0],
          "+ noise": step.stages["density+noise"][0],
          "× wedge": step.stages["wedge"][0],
          "× CTF": step.stages["ctf"][0],
          "× MTF": step.stages["mtf"][0],
          "band limit = final": step.stages["bandlimit"][0],
          "final, noise-free": step.clean[0]}
fig = plotting.plot_stages(stages, VOXEL_A)
fig.suptitle(f"ribosome: SNR {STEP['snr']:g}, α {STEP['wedge_deg']:g}°, "
             f"Dz {STEP['defocus_um']:g} µm, Cs {STEP['cs_mm']:g} mm")
plt.show()

# %% [markdown]
# In the x–z Fourier panel (k_y = 0) the double cone about k_z is the missing wedge; the y–z
# panel (k_x = 0) lies entirely inside it apart from its k_z = 0 line. The dark rings that
# appear at the CTF step are the CTF zeros. In real space the wedge elongates the particle
# along z (x–z and y–z slices), and the CTF adds the fringes around its edges.

# %% [markdown]
# ## The CTF for several defocus values and Cs
#
# Curves of −CTF (the sign the simulator applies) along |k| from 0 to just beyond Nyquist, at
# 300 kV with amplitude contrast 0.07, without the envelope (B = 0) so that the zeros are plain
# to see. Larger underfocus moves the first zero to lower frequency and packs the rings closer;
# Cs matters only at the highest frequencies at this voxel size.

# %% mystnb={"figure": {"caption": "\u2212CTF at 300 kV (amplitude contrast 0.07, no envelope) from zero frequency to just beyond Nyquist of 1.368 nm voxels: top, several defoci at Cs 2.7 mm; bottom, several Cs at Dz \u22126 \u00b5m, with the detector MTF dotted."}}
dz_values = [-1.0, -3.0, -6.0, -12.0]
show.plot_ctf_family(VOXEL_A, dz_values, [0.0, 1.5, 2.7, 3.0])
plt.show()

# %% [markdown]
# The first zero of the CTF comes from its closed form
# (`cryo_companion.optics.ctf_first_zero_per_nm`); beside it the weak-phase estimate that
# ignores Cs and the amplitude contrast, $\chi = -\pi \Rightarrow k = 1/\sqrt{\lambda |Dz|}$.

# %%
zeros = {dz: optics.ctf_first_zero_per_nm(dz, 2.7) for dz in dz_values}
nyq_A = nyquist_per_nm / 10.0
chi_cs_nyq = {cs: optics.spherical_aberration_phase_rad(nyq_A, cs) for cs in (1.5, 3.0)}
k_in = torch.linspace(0, nyq_A, 600, dtype=torch.float64)
cs_effect = float((optics.ctf(k_in, -6.0, 3.0) - optics.ctf(k_in, -6.0, 1.5)).abs().max())
display(Markdown(
    show.ctf_zero_table(zeros, VOXEL_A) + "\n\n"
    f"At 1.368 nm voxels the Cs term of χ is tiny: (π/2) Cs λ³ k⁴ at Nyquist is "
    f"{chi_cs_nyq[1.5]:.1e} rad for Cs = 1.5 mm and {chi_cs_nyq[3.0]:.1e} rad for 3 mm, and the "
    f"CTF changes by at most {cs_effect:.1e} between the two (Dz = −6 µm). The Cs curves above "
    "overlap: randomising Cs over the paper's range hardly changes the subtomograms at this "
    "sampling, the defocus does all the work."))

# %% [markdown]
# ## SNR: requested versus measured
#
# For each requested SNR we simulate a batch of ribosomes, TRiC and proteasomes with random
# poses and the baseline optics and measure SNR = var(clean) / var(noisy − clean) on the final
# output. We also estimate it without the clean volume, as an experimentalist would, from two
# noise realisations of the same particle with the Frank & Al-Ali formula SNR ≈ ρ/(1 − ρ)
# (ρ the correlation of the two copies).

# %%
n_snr = run.pick(16, 256)
particles = torch.as_tensor(np.flatnonzero(bank.labels != cset.index("membrane")))
rows = snr_check(sim, particles, [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], STEP, n_snr, run.seed)
worst = max(r["measured_max_rel_err"] for r in rows)
assert worst < 0.10, f"measured SNR off by {worst:.1%}"
display(Markdown(show.snr_check_table(rows)))

# %% mystnb={"figure": {"caption": "SNR measured on the final subtomograms against the SNR requested (ribosome, TRiC and proteasome in random poses, baseline optics): the ratio of variances with the noise-free volume, and the two-copy estimate of Frank & Al-Ali with its standard deviation over the batch."}}
show.plot_snr_check(rows, n_snr)
plt.show()

# %%
display(Markdown(
    f"The SNR measured on the final output matches the request to within **{worst:.1e}** "
    "(relative) for every subtomogram: the noise amplitude is set after the optics. The "
    "two-copy estimate scatters around it because ρ is itself estimated from 40³ voxels."))

# %% [markdown]
# ## Explorer
#
# Move the sliders to see what each parameter does to one particle in a fixed orientation, with
# one fixed noise realisation (so only the parameter you move changes the picture). Top row:
# central slices in real space; bottom row: log₁₀|F| of the same planes (the wedge, the CTF
# rings).
#
# **In Jupyter** (a running kernel) the first cell below shows live ipywidgets sliders that
# re-simulate on every change. **On the website** there is no kernel, so the second cell shows a
# precomputed version: every combination of a few values per slider, rendered in advance and
# embedded in the page, picked by the page's own sliders (no network needed).

# %% tags=["remove-output"]
axes = explorer.default_axes(bank.class_names)
render = explorer.simulator_render_fn(sim, seed=run.seed,
                                      fixed_params={"bfactor_A2": STEP["bfactor_A2"]})
live = explorer.live_explorer(render, axes)
display(live)

# %%
grid = explorer.precompute_frames(render, axes, voxel_size_A=VOXEL_A, progress=False)
page = explorer.static_explorer_html(grid, title="Simulation explorer (precomputed frames)")
display(Markdown(f"{len(grid.frames)} frames "
                 f"({' × '.join(f'{len(a.values)} {a.name}' for a in axes)}), "
                 f"{len(page) / 1e6:.2f} MB embedded in the page."))
explorer.static_explorer(grid, title="Simulation explorer (precomputed frames)")

# %% [markdown]
# ## Throughput
#
# `cryo-companion bench simulate --save` times the full randomized pipeline at 40³ on the CPU and,
# when present, a GPU, for several batch sizes, and writes `results/bench_simulate.json`. The
# simulator's targets: at least 10× a plain per-sample NumPy/SciPy script
# (`cryo_companion.bench.numpy_reference`, one subtomogram at a time with
# `scipy.ndimage.affine_transform` and NumPy FFTs) on the same CPU, and at least 80,000
# subtomograms/s on one H100.
#
# A small shared CPU is a noisy instrument: the same fixed workload runs faster or slower from
# one second to the next (the ranges in the table show how much). So the benchmark runs the
# reference in its own process (as a plain script runs, with the default memory allocator) and
# interleaves it with the torch simulator, a short reference chunk before every batch, in several
# rounds; the speedup of a round is the ratio of the two rates measured side by side, and the
# table gives the median over rounds with its range. Two output sets are timed: everything the
# simulator returns (noisy, noise-free, mask; the reference returns the same three), and noisy +
# mask only (`need_clean=False`, what training uses).

# %% tags=["nbval-ignore-output"]
bench_rows = benchmarks.simulate_rows(load_result("bench_simulate"))
if not bench_rows:
    display(Markdown("Simulator throughput: **not yet measured** (run "
                     "`cryo-companion bench simulate --save`)."))
else:
    display(Markdown("Measured simulator throughput (from `results/bench_simulate.json`):\n\n"
                     + benchmarks.simulate_table(bench_rows) + "\n\n"
                     + "\n".join(f"* {v}" for v in benchmarks.simulate_verdicts(bench_rows))))

# %% [markdown]
# Where the time goes: at its best batch size the benchmark also times each stage of the
# pipeline (`stages_ms_per_subtomogram`, the device synchronised at every stage boundary so that
# the stages add up to the call; on a GPU that removes the overlap of kernel launches, so the sum
# is a little more than the pipelined time per subtomogram above). How the CPU path was made
# fast is told on the developer page ("How the simulator is made fast").

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "The recorded time per subtomogram of each stage of the simulator at its best batch size, per device and output set (from results/bench_simulate.json)."}}
profiles = benchmarks.simulate_stage_profiles(bench_rows)
if profiles:
    plotting.plot_stacked_bars(profiles, xlabel="ms per subtomogram",
                               title="Simulator time per subtomogram, by stage")
display(Markdown(benchmarks.simulate_stage_summary(bench_rows)))

# %% tags=["hide-input"]
summary = {
    "voxel_size_A": VOXEL_A, "box": BOX, "nyquist_per_nm": nyquist_per_nm,
    "step_params": STEP,
    "ctf_first_zero_per_nm_cs2.7": {str(k): v for k, v in zeros.items()},
    "cs_phase_at_nyquist_rad": {str(k): v for k, v in chi_cs_nyq.items()},
    "ctf_max_change_cs1.5_vs_3": cs_effect,
    "snr_check": rows, "snr_max_rel_err": worst,
    "explorer_frames": len(grid.frames), "explorer_html_mb": len(page) / 1e6,
    "throughput_per_s": {f"{r['device']} ({r['outputs']})": r["best"] for r in bench_rows}
    or None,
}
path = save_result(run, summary)
print(f"saved {display_path(path)}")
