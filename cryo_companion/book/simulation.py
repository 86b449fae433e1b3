"""Tables and figures of the simulation chapter: CTF curves and zeros, the SNR check."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from cryo_companion import optics
from cryo_companion.book.plotting import plot_curves
from cryo_companion.tables import format_table

__all__ = ["ctf_zero_table", "plot_ctf_family", "plot_snr_check", "snr_check_table"]


def plot_ctf_family(voxel_size_A: float, defocus_um: Sequence[float], cs_mm: Sequence[float], *,
                    fixed_cs_mm: float = 2.7, fixed_defocus_um: float = -6.0,
                    n_points: int = 600) -> Figure:
    """Plot −CTF (the sign the simulator applies) for several Dz and several Cs.

    Parameters
    ----------
    voxel_size_A : float
        Voxel size in Å; the curves run from 0 to 1.05 × Nyquist.
    defocus_um : sequence of float
        Defocus values (µm, negative = underfocus) of the top panel, at ``fixed_cs_mm``.
    cs_mm : sequence of float
        Spherical aberrations (mm) of the bottom panel, at ``fixed_defocus_um``.
    fixed_cs_mm, fixed_defocus_um : float
        The parameter held fixed in each panel.
    n_points : int
        Points per curve.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing the frequency axis (1/nm), Nyquist marked, the detector MTF dotted
        in the bottom one; 300 kV, amplitude contrast 0.07, no envelope.
    """
    nyquist = 10.0 / (2 * voxel_size_A)
    k_nm = torch.linspace(0, 1.05 * nyquist, n_points, dtype=torch.float64)
    k_A = k_nm / 10.0
    fig, axs = plt.subplots(2, 1, figsize=(8, 6.5), layout="constrained", sharex=True)
    xlabel = "spatial frequency |k| (1/nm)"
    plot_curves(k_nm, {f"Dz = {dz:g} µm": -optics.ctf(k_A, dz, fixed_cs_mm) for dz in defocus_um},
                xlabel=xlabel, ylabel="−CTF", title=f"Cs = {fixed_cs_mm:g} mm, several Dz",
                vlines={"Nyquist": nyquist}, ax=axs[0])
    plot_curves(k_nm, {f"Cs = {cs:g} mm": -optics.ctf(k_A, fixed_defocus_um, cs) for cs in cs_mm},
                xlabel=xlabel, ylabel="−CTF", title=f"Dz = {fixed_defocus_um:g} µm, several Cs",
                vlines={"Nyquist": nyquist}, ax=axs[1])
    axs[1].plot(k_nm, optics.mtf(k_nm / nyquist), "k:", label="MTF sinc(πω/2)")
    axs[1].legend(fontsize="small", loc="lower left")
    return fig


def ctf_zero_table(zeros_per_nm: Mapping[float, float], voxel_size_A: float, *,
                   voltage_kv: float = 300.0) -> str:
    """Tabulate the CTF's first zero per defocus beside the weak-phase estimate.

    Parameters
    ----------
    zeros_per_nm : mapping of float to float
        ``{defocus_um: first zero in 1/nm}`` (:func:`cryo_companion.optics.ctf_first_zero_per_nm`).
    voxel_size_A : float
        Voxel size in Å (for Nyquist).
    voltage_kv : float
        Accelerating voltage in kV (for λ).

    Returns
    -------
    str
        A Markdown table: the zero in 1/nm and as a period in nm, ``1 / sqrt(λ |Dz|)`` (no Cs,
        no amplitude contrast) and Nyquist.
    """
    lam_A = float(optics.electron_wavelength_A(voltage_kv))
    nyquist = 10.0 / (2 * voxel_size_A)
    rows = {f"{dz:g}": {"first zero (1/nm)": k0, "period (nm)": 1 / k0,
                        "1/√(λ|Dz|) (1/nm)": 10.0 / np.sqrt(lam_A * abs(dz) * 1e4),
                        "Nyquist (1/nm)": nyquist}
            for dz, k0 in zeros_per_nm.items()}
    cols = ["first zero (1/nm)", "period (nm)", "1/√(λ|Dz|) (1/nm)", "Nyquist (1/nm)"]
    return format_table(rows, cols, first="Dz (µm)", style="markdown",
                        formats={"first zero (1/nm)": ".4f", "period (nm)": ".2f",
                                 "1/√(λ|Dz|) (1/nm)": ".4f", "Nyquist (1/nm)": ".4f"})


def snr_check_table(rows: Sequence[Mapping[str, float]]) -> str:
    """Tabulate :func:`cryo_companion.simulate.checks.snr_check`.

    Parameters
    ----------
    rows : sequence of mapping
        The rows of the SNR check.

    Returns
    -------
    str
        A Markdown table: requested SNR, measured mean, largest relative error, and the
        Frank & Al-Ali estimate with its standard deviation.
    """
    cols = ["requested", "measured (mean)", "max rel. err", "Frank & Al-Ali", "± std"]
    recs = [{"requested": r["snr_requested"], "measured (mean)": r["measured_mean"],
             "max rel. err": r["measured_max_rel_err"], "Frank & Al-Ali": r["frank_al_ali_mean"],
             "± std": r["frank_al_ali_std"]} for r in rows]
    return format_table(recs, cols, style="markdown",
                        formats={"requested": "g", "measured (mean)": ".4g",
                                 "max rel. err": ".1e", "Frank & Al-Ali": ".4g", "± std": ".2g"})


def plot_snr_check(rows: Sequence[Mapping[str, float]], n_per_snr: int) -> Figure:
    """Plot the measured against the requested SNR, both estimates, on logarithmic axes.

    Parameters
    ----------
    rows : sequence of mapping
        The rows of :func:`cryo_companion.simulate.checks.snr_check`.
    n_per_snr : int
        Subtomograms per requested SNR (for the title).

    Returns
    -------
    matplotlib.figure.Figure
        The identity line, ``var(clean)/var(noise)`` and the two-copy estimate with its spread.

    Raises
    ------
    ValueError
        ``rows`` is empty.
    """
    if not rows:
        raise ValueError("rows is empty")
    fig, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    req = np.array([r["snr_requested"] for r in rows])
    ax.loglog(req, req, "k--", lw=1, label="measured = requested")
    ax.loglog(req, [r["measured_mean"] for r in rows], "o", label="var(clean)/var(noise)")
    ax.errorbar(req, [r["frank_al_ali_mean"] for r in rows],
                yerr=[r["frank_al_ali_std"] for r in rows], fmt="s", ms=4, capsize=3,
                label="Frank & Al-Ali ρ/(1−ρ)")
    ax.set_xlabel("requested SNR")
    ax.set_ylabel("measured SNR")
    ax.legend(fontsize="small")
    ax.set_title(f"{n_per_snr} subtomograms per SNR")
    return fig
