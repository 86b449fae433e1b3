"""Per-sample NumPy/SciPy reference of the simplified simulator (issue #4's baseline for speed).

The plain way: one subtomogram at a time, scipy.ndimage.affine_transform (trilinear, order=1, the
same interpolation as the torch simulator) for the random rotation + shift, real white noise, NumPy
FFTs (rfftn of signal and noise, two irfftn), the CTF / MTF / wedge / band limit evaluated for each
sample's parameters on a precomputed frequency grid, noise scaled to the SNR of the final volume,
intensity augmentation. Prints `numpy reference subtomograms/s: <number>`.

    python scripts/bench_simulate_numpy_reference.py [--n 200] [--box 40]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import scipy.ndimage as ndi

LAM_A = 0.0196875  # 300 kV, relativistic
VOXEL_A = 13.68


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def simulate_one(vol: np.ndarray, rng: np.random.Generator, grids) -> tuple[np.ndarray, np.ndarray]:
    kz, kx, k = grids
    D = vol.shape[0]
    snr = math.exp(rng.uniform(math.log(0.03), math.log(10)))
    wedge = math.radians(rng.uniform(0, 50))
    dz_A = rng.uniform(-12, 0) * 1e4
    cs_A = rng.uniform(1.5, 3.0) * 1e7
    R = random_rotation(rng)
    shift = rng.uniform(-2, 2, 3)
    # out(p) = vol(R^T (p - c - t) + c); arrays are z-y-x, R acts on x-y-z
    P = np.eye(3)[::-1]
    M = P @ R.T @ P
    c = np.full(3, (D - 1) / 2)
    offset = c - M @ (c + shift[::-1])
    rot = ndi.affine_transform(vol, M, offset=offset, order=1)
    mask = rot > 0.25 * vol.max()
    chi = math.pi * LAM_A * dz_A * k**2 - 0.5 * math.pi * cs_A * LAM_A**3 * k**4
    ctf = -(math.sqrt(1 - 0.07**2) * np.sin(chi) - 0.07 * np.cos(chi)) * np.exp(-500.0 * k**2)
    w_nyq = k / (0.5 / VOXEL_A)
    mtf = np.sinc(w_nyq / 2) * (w_nyq <= 1)
    wedge_m = np.abs(kz) * math.sin(wedge) <= np.abs(kx) * math.cos(wedge) + 1e-12
    H = ctf * mtf * wedge_m
    clean = np.fft.irfftn(np.fft.rfftn(rot) * H, s=vol.shape, axes=(0, 1, 2))
    noise = np.fft.irfftn(np.fft.rfftn(rng.standard_normal(vol.shape)) * H, s=vol.shape,
                          axes=(0, 1, 2))
    noisy = clean + noise * math.sqrt(clean.var() / (snr * noise.var()))
    m, s = clean.mean(), clean.std()
    g = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
    noisy = m + g * (noisy - m) + rng.uniform(-0.2, 0.2) * s
    return noisy.astype(np.float32), mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--box", type=int, default=40)
    args = ap.parse_args()
    D = args.box
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:D, :D, :D] - (D - 1) / 2
    vol = (np.exp(-((x - 4) ** 2 + y**2 + z**2) / 18) + np.exp(-(x**2 + (y - 5) ** 2 + z**2) / 8)
           ).astype(np.float32)
    kz = np.fft.fftfreq(D, VOXEL_A).reshape(D, 1, 1)
    ky = np.fft.fftfreq(D, VOXEL_A).reshape(1, D, 1)
    kx = np.fft.rfftfreq(D, VOXEL_A).reshape(1, 1, -1)
    k = np.sqrt(kz**2 + ky**2 + kx**2)
    simulate_one(vol, rng, (kz, kx, k))
    t0 = time.perf_counter()
    for _ in range(args.n):
        simulate_one(vol, rng, (kz, kx, k))
    rate = args.n / (time.perf_counter() - t0)
    print(f"numpy reference subtomograms/s: {rate:.1f}")


if __name__ == "__main__":
    main()
