"""Tests of the figure helpers: slice geometry, Fourier slices, labels and colour bars."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from cryo_companion.book import plotting


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _marker_volume(shape=(7, 9, 11)) -> np.ndarray:
    """A volume whose value at (z, y, x) encodes the coordinates: 100 z + 10 y + x."""
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (100 * z + 10 * y + x).astype(float)


def test_central_slices_hold_the_centre_coordinate():
    v = _marker_volume()
    s = plotting.central_slices(v)
    # xy: z fixed at 3, rows y, columns x
    assert s["xy"].shape == (9, 11)
    assert np.all(s["xy"] // 100 == 3)
    assert s["xy"][2, 5] == 300 + 20 + 5
    # xz: y fixed at 4, rows z, columns x
    assert s["xz"].shape == (7, 11)
    assert s["xz"][1, 6] == 100 + 40 + 6
    # yz: x fixed at 5, rows z, columns y
    assert s["yz"].shape == (7, 9)
    assert s["yz"][6, 2] == 600 + 20 + 5


def test_central_slices_accepts_tensors_and_rejects_2d():
    v = torch.from_numpy(_marker_volume())
    assert plotting.central_slices(v)["xy"][0, 0] == 300
    with pytest.raises(ValueError, match="3-D"):
        plotting.central_slices(np.zeros((4, 4)))


def test_fourier_log_amplitude_centre_is_dc_and_wedge_stays_finite():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((8, 8, 8)) + 5.0
    la = plotting.fourier_log_amplitude(v)
    # zero frequency sits at index N//2 after fftshift and equals |sum(v)|
    assert np.isclose(la[4, 4, 4], np.log10(abs(v.sum())))
    # an exact spectral zero stays finite (eps), i.e. a masked wedge can be shown
    f = np.fft.fftn(v)
    f[1:, 0, 0] = 0
    la0 = plotting.fourier_log_amplitude(np.fft.ifftn(f).real)
    assert np.all(np.isfinite(la0))


def test_fourier_slice_shows_a_missing_wedge_in_the_xz_panel():
    # a volume with an empty double cone about k_y (beam z, tilt axis y): |kz| > |kx|
    n = 16
    rng = np.random.default_rng(1)
    f = np.fft.fftn(rng.standard_normal((n, n, n)))
    kz, _ky, kx = np.meshgrid(*(np.fft.fftfreq(n),) * 3, indexing="ij")
    f[np.abs(kz) > np.abs(kx) + 1e-9] = 0
    v = np.fft.ifftn(f).real
    la = plotting.central_slices(plotting.fourier_log_amplitude(v))
    xz = la["xz"]  # rows kz, columns kx, origin at index n//2
    c = n // 2
    assert xz[c + 5, c] < -6  # on the kz axis: inside the wedge
    assert xz[c, c + 5] > -3  # on the kx axis: measured
    fig = plotting.plot_fourier_slices(v, 13.68)
    labels = [ax.get_xlabel() for ax in fig.axes[:3]]
    assert labels == ["kx (1/nm)", "kx (1/nm)", "ky (1/nm)"]


def test_plot_central_slices_axes_in_nm_with_colorbar():
    fig = plotting.plot_central_slices(_marker_volume((10, 10, 10)), 10.0, title="t")
    axes = fig.axes
    assert len(axes) == 4  # three panels + colour bar
    assert axes[0].get_xlabel() == "x (nm)" and axes[0].get_ylabel() == "y (nm)"
    assert axes[1].get_ylabel() == "z (nm)" and axes[2].get_xlabel() == "y (nm)"
    # 10 voxels of 1 nm: extent -5..5 nm
    assert np.allclose(axes[0].images[0].get_extent(), [-5, 5, -5, 5])
    assert axes[3].get_ylabel() == "density (a.u.)"


def test_fourier_extent_reaches_nyquist():
    fig = plotting.plot_fourier_slices(np.random.default_rng(0).random((10, 10, 10)), 10.0)
    left, right, _, _ = fig.axes[0].images[0].get_extent()
    # 1 nm voxels: Nyquist 0.5 1/nm; pixel centres from -0.5 to 0.4, edges half a step beyond
    assert np.isclose(left, -0.55) and np.isclose(right, 0.45)


def test_plot_stages_rows_and_colorbars():
    vols = {name: np.random.default_rng(i).random((6, 6, 6)) for i, name in
            enumerate(["density", "noisy", "wedge"])}
    fig = plotting.plot_stages(vols, 13.68)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 3 * 6
    colorbars = [ax for ax in fig.axes if not ax.images]
    assert len(colorbars) == 3 * 2
    fig2 = plotting.plot_stages(vols, 13.68, fourier=False)
    assert len([ax for ax in fig2.axes if ax.images]) == 9
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_stages({}, 13.68)


def test_plot_image_grid_labels_and_shape_checks():
    imgs = np.random.default_rng(0).random((2, 4, 5, 5))
    fig = plotting.plot_image_grid(imgs, row_labels=["a", "b"], col_labels=list("wxyz"),
                                   voxel_size_A=13.68)
    titles = [ax.get_title() for ax in fig.axes if ax.images][:4]
    assert titles == list("wxyz")
    assert "per-image range" in fig.axes[-1].get_ylabel()
    with pytest.raises(ValueError, match="col_labels"):
        plotting.plot_image_grid(imgs, col_labels=["a"])
    with pytest.raises(ValueError, match="rows, cols"):
        plotting.plot_image_grid(imgs[0])


def test_plot_curves_and_histograms():
    x = np.linspace(0, 1, 11)
    fig = plotting.plot_curves(x, {"a": x, "b": -x}, xlabel="k (1/nm)", ylabel="CTF",
                               vlines={"Nyquist": 0.9})
    ax = fig.axes[0]
    assert len(ax.lines) == 2 + 2  # two curves, Nyquist line, zero line
    assert ax.get_xlabel() == "k (1/nm)"
    with pytest.raises(ValueError, match="points"):
        plotting.plot_curves(x, {"a": x[:3]}, xlabel="", ylabel="")
    rng = np.random.default_rng(0)
    fig = plotting.plot_histograms(
        {"snr": np.exp(rng.uniform(np.log(0.03), np.log(10), 200)),
         "wedge": rng.uniform(0, 50, 200)},
        ranges={"snr": (0.03, 10), "wedge": (0, 50)}, log_x=["snr"],
        labels={"snr": "SNR", "wedge": "wedge (°)"}, fixed={"wedge": 30})
    assert fig.axes[0].get_xscale() == "log"
    assert fig.axes[1].get_xlabel() == "wedge (°)"
    # every sample falls in a bin of the paper's range
    assert sum(p.get_height() for p in fig.axes[0].patches[:30]) == 200
    with pytest.raises(ValueError, match="positive"):
        plotting.plot_histograms({"snr": np.array([-1.0, 1.0])}, log_x=["snr"])


def test_log_histogram_under_a_decade_has_readable_tick_labels():
    """Under a decade matplotlib labels the log axis's minor ticks too (0.8, 0.9, 1 collide);
    the panel shows a few plain major labels instead."""
    rng = np.random.default_rng(1)
    fig = plotting.plot_histograms({"g": np.exp(rng.uniform(np.log(0.8), np.log(1.25), 300))},
                                   ranges={"g": (0.8, 1.25)}, log_x=["g"])
    ax = fig.axes[0]
    fig.canvas.draw()
    major = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    minor = [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    assert minor == [] and major[0] == "0.8" and major[-1] == "1.25" and len(major) <= 4


def test_stacked_bars_stack_the_parts_of_each_row():
    rows = {"cpu": {"a": 1.0, "b": 2.0}, "gpu": {"a": 0.5, "b": 0.25}}
    fig = plotting.plot_stacked_bars(rows, xlabel="ms per subtomogram")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ms per subtomogram"
    ends = sorted(p.get_x() + p.get_width() for p in ax.patches)
    assert ends == pytest.approx(sorted([1.0, 3.0, 0.5, 0.75]))
    with pytest.raises(ValueError, match="parts"):
        plotting.plot_stacked_bars({"x": {"a": 1.0}, "y": {"b": 1.0}}, xlabel="")
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_stacked_bars({}, xlabel="")
