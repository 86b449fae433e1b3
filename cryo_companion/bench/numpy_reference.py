"""Per-sample NumPy/SciPy reference of the simplified simulator (the baseline for speed).

The plain way: one subtomogram at a time, scipy.ndimage.affine_transform (trilinear, order=1, the
same interpolation as the torch simulator) for the random rotation + shift, real white noise, NumPy
FFTs (rfftn of signal and noise, two irfftn), the CTF / MTF / wedge / band limit evaluated for each
sample's parameters on a precomputed frequency grid, noise scaled to the SNR of the final volume,
intensity augmentation; it returns the noisy volume, the noise-free one and the mask, as the
torch simulator does. Prints `numpy reference subtomograms/s: <number>`.

    python -m cryo_companion.bench.numpy_reference [--n 200] [--box 40]

`cryo-companion bench simulate` runs it with --serve and interleaves it with the torch simulator.
"""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
import scipy.ndimage as ndi

LAM_A = 0.0196875  # 300 kV, relativistic
VOXEL_A = 13.68


#: ``(kz, kx, |k|)`` on the rfft grid, 1/Å.
Grids = tuple[np.ndarray, np.ndarray, np.ndarray]


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Draw a uniform random rotation from a unit quaternion.

    Parameters
    ----------
    rng : np.random.Generator
        Source of the four normal draws.

    Returns
    -------
    np.ndarray
        `(3, 3)` rotation matrix acting on x-y-z vectors.
    """
    q = rng.standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def simulate_one(vol: np.ndarray, rng: np.random.Generator, grids: Grids
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate one subtomogram, with the outputs of the torch simulator's batch.

    Parameters
    ----------
    vol : np.ndarray
        `(D, D, D)` template, z-y-x.
    rng : np.random.Generator
        Source of every random parameter and of the noise.
    grids : tuple of np.ndarray
        ``(kz, kx, |k|)`` on the rfft grid of the box, 1/Å.

    Returns
    -------
    noisy : np.ndarray
        `(D, D, D)` float32 noisy subtomogram.
    clean : np.ndarray
        `(D, D, D)` float32 noise-free subtomogram.
    mask : np.ndarray
        `(D, D, D)` bool mask of the rotated template.
    """
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
    o = rng.uniform(-0.2, 0.2) * s
    noisy = m + g * (noisy - m) + o
    clean = m + g * (clean - m) + o
    return noisy.astype(np.float32), clean.astype(np.float32), mask


def make_runner(box: int = 40, seed: int = 0) -> Callable[[int], float]:
    """Make a function ``run(n)`` that simulates ``n`` subtomograms and returns the seconds.

    The benchmark CLI interleaves it with the torch simulator.

    Parameters
    ----------
    box : int
        Box edge in voxels.
    seed : int
        Seed of the runner's generator.

    Returns
    -------
    callable
        ``run(n) -> seconds`` (after one warm-up subtomogram).
    """
    D = box
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:D, :D, :D] - (D - 1) / 2
    vol = (np.exp(-((x - 4) ** 2 + y**2 + z**2) / 18) + np.exp(-(x**2 + (y - 5) ** 2 + z**2) / 8)
           ).astype(np.float32)
    kz = np.fft.fftfreq(D, VOXEL_A).reshape(D, 1, 1)
    ky = np.fft.fftfreq(D, VOXEL_A).reshape(1, D, 1)
    kx = np.fft.rfftfreq(D, VOXEL_A).reshape(1, 1, -1)
    grids = (kz, kx, np.sqrt(kz**2 + ky**2 + kx**2))
    simulate_one(vol, rng, grids)  # warm-up

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            simulate_one(vol, rng, grids)
        return time.perf_counter() - t0

    return run


def serve(box: int) -> None:
    """Answer requests on stdin: a line ``n`` -> simulate n subtomograms, print the seconds.

    The benchmark CLI keeps this process open and interleaves it with the torch simulator, so
    that the reference runs as a plain script does (its own process, default allocator) while
    both see the same spells of a machine whose speed swings.

    Parameters
    ----------
    box : int
        Box edge in voxels.
    """
    import sys

    run = make_runner(box)
    print("ready", flush=True)
    for line in sys.stdin:
        print(f"{run(int(line)):.9f}", flush=True)


def main() -> None:
    """Run ``python -m cryo_companion.bench.numpy_reference [--n N] [--box D] [--serve]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--box", type=int, default=40)
    ap.add_argument("--serve", action="store_true",
                    help="answer 'n' lines on stdin with seconds (used by the benchmark CLI)")
    args = ap.parse_args()
    if args.serve:
        serve(args.box)
        return
    rate = args.n / make_runner(args.box)(args.n)
    print(f"numpy reference subtomograms/s: {rate:.1f}")


if __name__ == "__main__":
    main()
