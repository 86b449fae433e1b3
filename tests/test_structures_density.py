"""Atoms and maps to density: analytic cases, agreement with the shipped maps, bad input."""
from __future__ import annotations

import gzip
import math
import time
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy.special import erf

from cryo_companion.mrc import MrcError, read_mrc
from cryo_companion.structures.atoms import AtomFileError, Atoms, read_atoms
from cryo_companion.structures.density import (
    BoxTooSmallError,
    atoms_to_density,
    compare_atoms_to_map,
    entries_with_atoms_and_map,
    fit_box,
    isolate_copy,
    load_density,
    map_to_density,
    resample_map,
    structure_size,
)
from cryo_companion.structures.gaussian import sigma_from_resolution
from cryo_companion.structures.maps import pearson_r
from cryo_companion.structures.sources import StructureNotFoundError

C_MASS = 12.011


def _pdb_line(serial: int, x: float, y: float, z: float, element: str = "C") -> str:
    return (f"ATOM  {serial:5d}  {element:<3s} ALA A{serial:4d}    "
            f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {element:>2s}")


def _write_pdb(path: Path, coords, element: str = "C") -> Path:
    lines = [_pdb_line(i + 1, *c, element=element) for i, c in enumerate(coords)]
    path.write_text("\n".join(lines + ["END"]) + "\n")
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_CACHE", str(tmp_path / "cache"))


def _voxel_weights(d: np.ndarray, s: float) -> np.ndarray:
    """Analytic voxel-integrated 1-D Gaussian (std s voxels) at offsets d (voxels)."""
    c = 1 / (math.sqrt(2) * s)
    return 0.5 * (erf((d + 0.5) * c) - erf((d - 0.5) * c))


def test_sigma_is_half_the_resolution():
    # PDB2VOL (Situs) convention: R = 2 sigma
    assert sigma_from_resolution(10.0) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="resolution"):
        sigma_from_resolution(-1.0)


def test_two_atoms_analytic(tmp_path):
    """Two carbons 8 Å apart along x: peaks at the right voxels with the analytic heights."""
    h, box, res = 2.0, 32, 4.0  # sigma = 2 Å = 1 voxel
    atoms = read_atoms(_write_pdb(tmp_path / "two.pdb", [(10.0, 5.0, 3.0), (18.0, 5.0, 3.0)]))
    vol = atoms_to_density(atoms, h, box, res, implicit_hydrogens=False)
    assert vol.shape == (box,) * 3 and vol.dtype == np.float32
    # mass conserved: sum * voxel volume = 2 carbons
    assert vol.sum() * h**3 == pytest.approx(2 * C_MASS, rel=1e-5)
    c = box // 2
    s = sigma_from_resolution(res) / h
    k = np.arange(box) - c
    # the full x profile through both atoms (at x = c -+ 2 voxels), analytic
    wx = C_MASS * (_voxel_weights(k + 2.0, s) + _voxel_weights(k - 2.0, s))
    w0 = _voxel_weights(np.array([0.0]), s)[0]
    expected = wx * w0 * w0 / h**3
    # the kernel is truncated at 4 sigma + 1 voxel: tails below 1e-6 of the peak are dropped
    np.testing.assert_allclose(vol[c, c, :], expected, rtol=1e-4, atol=1e-6 * expected.max())
    # the peaks are where the atoms are, and local maxima along x
    prof = vol[c, c, :]
    assert prof[c - 2] == pytest.approx(prof[c + 2], rel=1e-5)
    assert prof[c - 2] > prof[c - 3] and prof[c - 2] > prof[c - 1]
    # peak height: own atom w0^3 plus the other atom's tail at 4 voxels
    peak = C_MASS * (w0**3 + _voxel_weights(np.array([4.0]), s)[0] * w0**2) / h**3
    assert prof[c - 2] == pytest.approx(peak, rel=1e-5)


def test_wide_kernel_fourier_path_matches_gaussian(tmp_path):
    """A wide kernel (sigma 4 voxels) takes the Fourier route; still the analytic Gaussian."""
    h, box, res = 2.0, 48, 16.0
    atoms = read_atoms(_write_pdb(tmp_path / "one.pdb", [(0.0, 0.0, 0.0)]))
    vol = atoms_to_density(atoms, h, box, res, implicit_hydrogens=False)
    assert vol.sum() * h**3 == pytest.approx(C_MASS, rel=1e-4)
    c, s = box // 2, sigma_from_resolution(res) / h
    k = np.arange(box) - c
    g = np.exp(-0.5 * k**2 / (s**2 + 1 / 12)) / math.sqrt(2 * math.pi * (s**2 + 1 / 12))
    line = vol[c, c, :] / vol[c, c, :].sum()
    np.testing.assert_allclose(line, g / g.sum(), atol=2e-3)


def test_device_gives_same_density(tmp_path, device):
    rng = np.random.default_rng(0)
    coords = rng.normal(scale=8.0, size=(200, 3))
    atoms = read_atoms(_write_pdb(tmp_path / "blob.pdb", coords))
    ref = atoms_to_density(atoms, 4.0, 24, 8.0)
    out = atoms_to_density(atoms, 4.0, 24, 8.0, device=device)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)


def test_large_model_is_fast():
    """100k atoms (a large complex) into 40³ in seconds on one CPU core."""
    rng = np.random.default_rng(1)
    n = 100_000
    atoms = Atoms(rng.normal(scale=60.0, size=(n, 3)), np.array(["C"] * n),
                  np.ones(n), np.array(["ALA"] * n), np.zeros(n, bool), "synthetic")
    t = time.perf_counter()
    vol = atoms_to_density(atoms, 13.68, 40, 13.68)
    assert time.perf_counter() - t < 20.0
    assert vol.sum() * 13.68**3 == pytest.approx(n * (C_MASS + 1.1 * 1.008), rel=1e-3)


@pytest.mark.slow
def test_atoms_agree_with_shipped_maps(structures_dir):
    """Issue #3: atoms -> density at 10 Å vs the shipped 10 Å map, r >= 0.9 after centring."""
    entries = entries_with_atoms_and_map()
    assert len(entries) >= 10
    for e in entries:
        row = compare_atoms_to_map(e, voxel_size_A=10.0, box=64, resolution_A=20.0,
                                   use_cache=False)
        assert row["r"] >= 0.9, f"{e}: r = {row['r']:.3f}"
        # the volume-based mass of the map is within 25 % of the model's mass
        assert row["mass_map_kda"] / row["mass_atoms_kda"] == pytest.approx(1.0, abs=0.25), e


def test_structure_size_of_a_ball():
    h, box, radius_vox = 5.0, 40, 8
    k = np.arange(box) - box // 2
    z, y, x = np.meshgrid(k, k, k, indexing="ij")
    ball = (z**2 + y**2 + x**2 <= radius_vox**2).astype(np.float32) * 0.81
    size = structure_size(ball, h)
    assert size["diameter_nm"] == pytest.approx((2 * radius_vox + 1) * h / 10)
    assert size["n_voxels"] == int(ball.astype(bool).sum())
    assert size["mass_kda"] == pytest.approx(ball.sum() * h**3 / 1e3)


def test_fit_box_pads_and_crops_about_the_centre():
    v = np.zeros((9, 9, 9), np.float32)
    v[4, 4, 4] = 1.0
    big = fit_box(v, 16)
    assert big.shape == (16,) * 3 and big[8, 8, 8] == 1.0
    assert fit_box(big, 9)[4, 4, 4] == 1.0
    wide = np.ones((16, 16, 16), np.float32)
    with pytest.raises(BoxTooSmallError, match="grow_box"):
        fit_box(wide, 8)
    assert fit_box(wide, 8, grow_box=True).shape == (16,) * 3


def test_resample_there_and_back(structures_dir):
    """10 Å -> 13.68 Å -> 10 Å conserves mass within 1 % and correlates r >= 0.98."""
    v = read_mrc(structures_dir / "maps_10A" / "1bxn.mrc.gz").data.astype(np.float64)
    v = np.clip(v, 0, None)
    com = np.array([float((v.sum(axis=tuple(j for j in range(3) if j != i))
                           * np.arange(v.shape[i])).sum() / v.sum()) for i in range(3)])
    there = resample_map(v, 10.0, 13.68, (40, 40, 40), center_in_vox=com)
    back = resample_map(there, 13.68, 10.0, v.shape,
                        center_in_vox=np.full(3, 20.0) + (np.array(v.shape) // 2 - com) / 1.368)
    mass = v.sum() * 1000.0
    assert there.sum() * 13.68**3 == pytest.approx(mass, rel=0.01)
    assert back.sum() * 1000.0 == pytest.approx(mass, rel=0.01)
    assert pearson_r(back, v) >= 0.98


def test_map_density_units_and_centre(structures_dir):
    v = load_density("3j9i", 13.68, 40, source="map")
    assert v.shape == (40, 40, 40) and v.dtype == np.float32 and (v >= 0).all()
    com = np.array([(v.sum(axis=tuple(j for j in range(3) if j != i)) * np.arange(40)).sum()
                    / v.sum() for i in range(3)])
    np.testing.assert_allclose(com, 20.0, atol=0.3)
    # protein-like interior density (Da/Å³) at this resolution
    assert 0.3 < v.max() < 1.2


def test_two_copy_map_is_reduced_to_one():
    rng = np.random.default_rng(0)
    blob = np.zeros((40, 40, 40))
    blob[10:18, 10:18, 10:18] = 1.0
    blob[22:30, 22:30, 22:30] = 1.0
    one = isolate_copy(blob + 0.0 * rng.random(blob.shape), 2)
    assert one.sum() == pytest.approx(blob.sum() / 2)


def test_cache_is_used(structures_dir, tmp_path):
    v1 = load_density("3qm1", 10.0, 24)
    files = list((tmp_path / "cache" / "volumes").glob("*.npy"))
    assert len(files) == 1
    v2 = load_density("3qm1", 10.0, 24)
    np.testing.assert_array_equal(v1, v2)
    # a different key (resolution) is another file
    load_density("3qm1", 10.0, 24, 30.0)
    assert len(list((tmp_path / "cache" / "volumes").glob("*.npy"))) == 2


# ------------------------------------------------------------------ bad input
def test_empty_file(tmp_path):
    p = tmp_path / "empty.pdb"
    p.write_text("")
    with pytest.raises(AtomFileError, match="empty"):
        load_density(p, 10.0, 24)


def test_truncated_pdb(tmp_path):
    p = _write_pdb(tmp_path / "cut.pdb", [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)])
    text = p.read_text()
    p.write_text(text[: text.index("\n") + 40])  # second ATOM record cut in its coordinates
    with pytest.raises(AtomFileError):
        load_density(p, 10.0, 24)
    gz = tmp_path / "cut.pdb.gz"
    gz.write_bytes(gzip.compress(text.encode())[:-12])
    with pytest.raises(AtomFileError):
        load_density(gz, 10.0, 24)


def test_corrupt_mrc_header(tmp_path):
    p = tmp_path / "bad.mrc"
    p.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(MrcError):
        load_density(p, 10.0, 24)


def test_nan_map(tmp_path):
    p = tmp_path / "nan.mrc"
    data = np.zeros((16, 16, 16), np.float32)
    data[8, 8, 8] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns about the NaN we want
        with mrcfile.new(p) as m:
            m.set_data(data)
            m.voxel_size = 10.0
    with pytest.raises(ValueError, match="NaN"):
        load_density(p, 10.0, 24)
    with pytest.raises(ValueError, match="NaN"):
        map_to_density(data, 10.0, 10.0, 24)


def test_box_too_small_says_so_or_grows(tmp_path, structures_dir):
    with pytest.raises(BoxTooSmallError, match="grow_box"):
        load_density("3qm1", 10.0, 4, source="atoms")
    grown = load_density("3qm1", 10.0, 4, source="atoms", grow_box=True)
    assert grown.shape[0] > 4
    full = load_density("3qm1", 10.0, grown.shape[0], source="atoms")
    assert grown.sum() == pytest.approx(full.sum(), rel=1e-4)
    with pytest.raises(BoxTooSmallError, match="grow_box"):
        load_density("4v94", 13.68, 12, source="map")
    # nothing half-written in the cache for the failures
    assert not any(p.name.startswith(".") for p in (tmp_path / "cache").rglob("*"))


def test_unknown_id_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_STRUCTURES", str(tmp_path / "empty"))
    monkeypatch.setenv("CRYO_COMPANION_OFFLINE", "1")
    with pytest.raises(StructureNotFoundError, match="9zzz") as exc:
        load_density("9zzz", 10.0, 24)
    assert "CRYO_COMPANION_STRUCTURES" in str(exc.value)
    assert not (tmp_path / "cache" / "volumes").exists()


def test_bad_parameters():
    with pytest.raises(ValueError, match="voxel size"):
        load_density("3qm1", -1.0, 24)
    with pytest.raises(ValueError, match="box"):
        load_density("3qm1", 10.0, 2)
    with pytest.raises(ValueError, match="membrane_patch"):
        load_density("membrane", 10.0, 24)
    with pytest.raises(ValueError, match="source"):
        load_density("3qm1", 10.0, 24, source="xray")
