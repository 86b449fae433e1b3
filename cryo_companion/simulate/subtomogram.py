"""The simplified subtomogram simulator of Che et al. 2019 (III-A), batched in torch (CPU and CUDA).

From a bank of density volumes (``K`` templates, ``(D, D, D)``, z-y-x, voxel size ``voxel_size_A``)
each subtomogram of a batch gets its own template, uniform random rotation on SO(3), sub-box shift,
SNR, missing-wedge angle, defocus, Cs and CTF envelope, and the intensity augmentation
(:mod:`cryo_companion.simulate.randomization`). No Python loop runs over samples.

Pipeline and the choice made for the SNR
----------------------------------------
Che et al. (III-A): "we first include into the density map proper noises with desired SNR level
and missing-wedge effects. Next we convolve the 3D images with the adjusted CTF and MTF". Every
one of these operations except the noise is a *linear, real, Hermitian-symmetric Fourier
multiplier*, so with the total filter ``H = wedge · CTF · MTF · band limit`` the paper's order
gives::

    noisy = F⁻¹[ H · F(density + σ n) ] = F⁻¹[H · F(density)] + σ F⁻¹[H · F(n)]
          =            clean              +       σ · filtered noise

i.e. exactly the noise-before-optics model of the paper (white noise n coloured by the same
optics as the signal). The SNR is measured on the **final** output, so σ is
chosen *after* filtering, per subtomogram, as ``σ² = var(clean) / (SNR · var(F⁻¹[H F(n)]))``:
the requested SNR then holds exactly (to float rounding) for every volume, ``noisy − clean`` is
the noise, ``SNR = inf`` gives σ = 0 and ``noisy == clean`` bit for bit, and the same seed with
a finite SNR gives the same clean volume plus noise (the noise is drawn last). The white noise
is drawn directly in Fourier space (complex Gaussian on the ``rfftn`` half grid, with the
``k_x = 0`` and Nyquist planes made Hermitian), which is statistically the FFT of real white
Gaussian noise and saves one FFT per subtomogram; only the coefficients inside the band limit are
drawn (the band limit removes the others anyway), about half of the half grid.

Cost: one ``rfftn`` (density) and one ``irfftn`` per output volume; the spectra are stored
``k_x``-major so that each ``irfftn`` makes one transposing copy instead of two. The noise lives
on the band's points only (drawn, filtered and measured there, then added to the clean spectrum
in place), and on the CPU it is drawn in two parallel streams (:mod:`cryo_companion._rng`): one
Mersenne-Twister generator is a serial step. Both variances come from the spectra by Parseval
(exactly the real-space variances, no inverse FFT), and the intensity augmentation (affine per
sample) is applied to the spectra (its gain folded into the filter, its shift added to the DC
term), so ``need_clean=False`` (noisy + mask, for training) needs a single ``irfftn``.
``compile=True`` fuses the rotation (a trilinear gather straight from the template bank) and
the transfer function with :func:`torch.compile`.

Conventions
-----------
* Beam along z, tilt axis y; the missing wedge, CTF and MTF are those of :mod:`cryo_companion.optics`
  (defocus negative = underfocus; MTF ``sinc(πω/2)``; band limit: a sphere at Nyquist).
* ``invert_contrast=True`` (default) multiplies the physical CTF (CTF(0) = −A, dense matter dark)
  by −1, so that particles stay bright (positive), as in the AITom simulator used by Che et al.
* Rotation and shift: :mod:`cryo_companion.rotation` (active, about the box centre, trilinear).
* Ground-truth mask: the rotated, shifted, noise-free density **before** the optics, thresholded
  at ``mask_level`` (default 0.25) times the maximum of its (unrotated) template.
* Generators: every random draw uses the ``torch.Generator`` given; its device must be the
  simulator's device (CUDA: ``torch.Generator(device="cuda").manual_seed(seed)``).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from cryo_companion._rng import randn_complex
from cryo_companion.optics import (
    bandlimit_mask,
    ctf_coefficients,
    fourier_grid,
    mtf,
    wedge_measured,
)
from cryo_companion.rotation import VolumeBank, matrix_to_euler_zyz, random_rotation_matrices
from cryo_companion.simulate.randomization import Preset, sample_params

__all__ = ["DEFAULT_PARAMS", "REQUIRED_PARAMS", "STAGES", "TIMED_STAGES", "SimBatch",
           "Simulator"]

#: Names of the intermediate stages returned with ``return_stages=True`` (Che et al. III-A order).
STAGES = ("density", "noise", "density+noise", "wedge", "ctf", "mtf", "bandlimit")
#: Stages the ``_timer`` of :meth:`Simulator.simulate` is called with, in pipeline order
#: ("parameters": drawing and checking them, and the output's bookkeeping).
TIMED_STAGES = ("parameters", "rotation and mask", "forward FFT", "noise draw", "filter",
                "spectra", "inverse FFTs")
#: Parameters :meth:`Simulator.simulate` needs.
REQUIRED_PARAMS = ("snr", "wedge_deg", "defocus_um", "cs_mm")
#: Defaults of the optional parameters of :meth:`Simulator.simulate`.
DEFAULT_PARAMS = {"bfactor_A2": 0.0, "intensity_scale": 1.0, "intensity_offset": 0.0,
                  "shift_x_vox": 0.0, "shift_y_vox": 0.0, "shift_z_vox": 0.0}


@dataclass
class SimBatch:
    """One simulated batch.

    Attributes
    ----------
    noisy : ``(n, D, D, D)`` float32 subtomograms (after intensity augmentation, not standardised).
    clean : ``(n, D, D, D)`` the same without noise (after CTF, MTF, wedge and augmentation);
        None when simulated with ``need_clean=False``.
    mask : ``(n, D, D, D)`` bool ground truth of the target (threshold of the density pre-optics).
    label : ``(n,)`` int64 class labels.
    params : ``{name: (n,) tensor}`` every parameter used (template_index, Euler angles in
        degrees, shifts in voxels, snr, wedge_deg, defocus_um, cs_mm, bfactor_A2, ...).
    stages : with ``return_stages=True``, ``{stage: (n, D, D, D)}`` for :data:`STAGES`
        (noisy path, before the intensity augmentation); else None.
    """

    noisy: Tensor
    clean: Tensor | None
    mask: Tensor
    label: Tensor
    params: dict[str, Tensor]
    stages: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        return self.noisy.shape[0]

    def to(self, device) -> SimBatch:
        """A copy on ``device``."""
        mv = lambda d: None if d is None else {k: v.to(device) for k, v in d.items()}
        clean = None if self.clean is None else self.clean.to(device)
        return SimBatch(self.noisy.to(device), clean, self.mask.to(device),
                        self.label.to(device), mv(self.params), mv(self.stages))


def _kx_major(t: Tensor) -> Tensor:
    """``t`` ``(.., D, D, W')`` with the same values, stored k_x-major (``(.., W', D, D)`` in
    memory)."""
    return t.movedim(-1, -3).contiguous().movedim(-3, -1)


def _kx_major_empty(shape, dtype, device) -> Tensor:
    """An uninitialised ``(n, D, D, W')`` tensor stored k_x-major."""
    n, D1, D2, W = shape
    return torch.empty(n, W, D1, D2, dtype=dtype, device=device).permute(0, 2, 3, 1)


def _var_rfft(X: Tensor, n_vox: int, even: bool) -> Tensor:
    """Population variance per sample of the real volumes whose ``rfftn`` is ``X`` ``(n, D, D, W')``.

    Parseval on the half grid: ``var = (Σ_k w_k |X_k|² − |X_0|²) / N²`` with ``w`` = 1 on the
    ``k_x = 0`` plane (and the Nyquist plane when D is even) and 2 elsewhere (the columns the
    half grid stands for twice); the DC term is the mean. No inverse FFT is needed.
    """
    r = torch.view_as_real(X)
    # reduce over all but the batch axis, whatever the memory layout (no reshape copy)
    sq = lambda t: torch.linalg.vector_norm(t, dim=tuple(range(1, t.ndim))).square()
    tot = 2 * sq(r) - sq(r[:, :, :, 0]) - r[:, 0, 0, 0].square().sum(-1)
    if even:
        tot = tot - sq(r[:, :, :, -1])
    return tot.clamp_min(0) / float(n_vox) ** 2


def _transfer_fused(k2: Tensor, k4: Tensor, static: Tensor, wedge: Tensor, a: Tensor,
                    b: Tensor, bq: Tensor, phase: float, gain: Tensor) -> Tensor:
    """``gain · sin(a k² + b k⁴ − phase) · e^{bq k²} · wedge · static``: the filter of
    :meth:`Simulator.transfer` times a per-sample ``gain`` ``(n, 1, 1, 1)`` (contrast sign ×
    intensity scale).

    One expression, so that ``torch.compile`` evaluates it in a single loop.
    """
    return gain * torch.sin(k2 * a + k4 * b - phase) * torch.exp(k2 * bq) * wedge * static


def _center_resize(vol: Tensor, box: int) -> Tensor:
    """Crop or zero-pad the last three axes of ``(K, D, D, D)`` to ``box`` about the centre."""
    D = vol.shape[-1]
    if box == D:
        return vol
    if (D - box) % 2:
        raise ValueError(f"even/odd box mismatch: template box {D} and output box {box} differ "
                         "by an odd number of voxels, so their centres cannot coincide; use a "
                         f"box of the same parity as {D}")
    if box < D:
        a = (D - box) // 2
        return vol[:, a:a + box, a:a + box, a:a + box].contiguous()
    p = (box - D) // 2
    return torch.nn.functional.pad(vol, (p, p, p, p, p, p))


class Simulator:
    """Batched simplified subtomogram simulator (Che et al. 2019, III-A; see the module docstring).

    Parameters
    ----------
    volumes : ``(K, D, D, D)`` density templates (z-y-x, e.g. Da/Å³; any positive scale).
    labels : ``(K,)`` integer class label of each template.
    voxel_size_A : voxel size in Å (Che et al.: 13.68 Å).
    device : simulation device (default: the device of ``volumes``).
    box : output box size (default ``D``); templates are cropped or zero-padded about the centre,
        which needs ``box`` and ``D`` of the same parity.
    invert_contrast : apply −CTF so particles stay bright (True, AITom convention) or the
        physical CTF (False).
    mask_level : ground-truth threshold as a fraction of each template's maximum, in (0, 1).
    bandlimit_fraction_nyquist : radius of the spherical band limit, fraction of Nyquist.
    class_names : optional names of the labels.
    compile : rotate with the :func:`torch.compile`-fused trilinear gather of
        :class:`cryo_companion.rotation.VolumeBank` (several times faster on the CPU; the first
        batch pays the compilation; falls back to ``grid_sample`` with a warning if compiling
        fails). Results equal the default path to float rounding.
    """

    def __init__(self, volumes: Tensor, labels: Tensor, voxel_size_A: float = 13.68,
                 device=None, *, box: int | None = None, invert_contrast: bool = True,
                 mask_level: float = 0.25, bandlimit_fraction_nyquist: float = 1.0,
                 class_names: list[str] | None = None, compile: bool = False) -> None:
        volumes = torch.as_tensor(volumes)
        labels = torch.as_tensor(labels)
        if volumes.ndim == 3:
            volumes = volumes.unsqueeze(0)
        if volumes.ndim != 4 or len({*volumes.shape[1:]}) != 1:
            raise ValueError(f"volumes must be cubic templates (K, D, D, D), got "
                             f"{tuple(volumes.shape)}")
        if volumes.shape[0] == 0:
            raise ValueError("volumes holds no template (K = 0)")
        if not volumes.is_floating_point():
            volumes = volumes.float()
        if not bool(torch.isfinite(volumes).all()):
            bad = (~torch.isfinite(volumes)).reshape(volumes.shape[0], -1).any(1).nonzero()
            raise ValueError(f"density volume(s) {bad.flatten().tolist()} contain NaN or inf")
        if labels.shape != (volumes.shape[0],):
            raise ValueError(f"labels must have shape ({volumes.shape[0]},), got "
                             f"{tuple(labels.shape)}")
        if not voxel_size_A > 0:
            raise ValueError(f"voxel_size_A must be > 0 Å, got {voxel_size_A}")
        if not 0 < mask_level < 1:
            raise ValueError(f"mask_level must be in (0, 1), got {mask_level}")
        box = int(volumes.shape[-1] if box is None else box)
        if box < 2:
            raise ValueError(f"box must be >= 2 voxels, got {box}")
        self.device = torch.device(device) if device is not None else volumes.device
        vols = _center_resize(volumes.to(self.device, torch.float32), box)
        self.volumes = vols.contiguous()
        self._bank = VolumeBank(self.volumes, compile=compile)
        self._filter = None
        if compile:
            try:
                with warnings.catch_warnings():  # compiler internals' deprecation notices
                    warnings.simplefilter("ignore", DeprecationWarning)
                    self._filter = torch.compile(_transfer_fused, dynamic=True)
            except Exception as e:  # noqa: BLE001 - any backend failure: stay eager
                warnings.warn(f"torch.compile of the Fourier filter failed ({e}); eager path",
                              RuntimeWarning, stacklevel=2)
        self.labels = labels.to(self.device, torch.int64)
        self.voxel_size_A = float(voxel_size_A)
        self.box = box
        self.invert_contrast = bool(invert_contrast)
        self.mask_level = float(mask_level)
        self.class_names = list(class_names) if class_names is not None else None
        vmax = self.volumes.reshape(len(self.volumes), -1).amax(1)
        if bool((vmax <= 0).any()):
            bad = (vmax <= 0).nonzero().flatten().tolist()
            raise ValueError(f"template(s) {bad} have no positive density (empty box?)")
        self._mask_thr = self.mask_level * vmax
        # precomputed frequency grids on the rfftn half grid (D, D, D // 2 + 1)
        shape = (box,) * 3
        self._shape = shape
        kz, ky, kx = fourier_grid(shape, self.voxel_size_A, self.device, rfft=True)
        # Fourier-space arrays are stored k_x-major, (.., W', D, D) in memory and seen as the
        # usual (.., D, D, W') through a permuted view: irfftn then needs one transposing copy
        # instead of two (torch emulates a 3-D c2r by a 2-D c2c over (k_z, k_y) and a 1-D c2r)
        self._k2 = _kx_major(kz * kz + ky * ky + kx * kx)  # 1/Å²
        self._k4 = _kx_major(self._k2 * self._k2)
        self._k_A = torch.sqrt(self._k2)  # 1/Å
        k_nyq = 0.5 / self.voxel_size_A
        # MTF (Che et al. III-A, sinc(πω/2)) and band limit do not vary per sample
        self._mtf = mtf(self._k_A / k_nyq)
        self._bandlimit = _kx_major(bandlimit_mask(shape, bandlimit_fraction_nyquist, self.device,
                                                   rfft=True))
        self._static = _kx_major(self._mtf * self._bandlimit)
        self._kz_abs = kz.abs().reshape(1, box, 1, 1)
        self._kx_abs = kx.abs().reshape(1, 1, 1, -1)
        self._w_half = kx.shape[-1]
        # flat index of (-k_z, -k_y) for each (k_z, k_y) of a (D, D) plane
        neg = (-torch.arange(box, device=self.device)) % box
        self._mirror = (neg.reshape(-1, 1) * box + neg.reshape(1, -1)).reshape(-1)
        # half-grid points where noise is drawn: inside the band limit (see _white_noise_band)
        # (flat indices into the k_x-major memory (W', D, D))
        inside = self._bandlimit.permute(2, 0, 1).reshape(-1) != 0
        self._noise_index = inside.nonzero().reshape(-1)  # ascending; [0] is the DC term
        # the k_x = 0 (and, D even, Nyquist) planes of the half grid must be Hermitian in
        # (k_z, k_y); their drawn points are contiguous runs [lo, hi) of the band's points, and
        # ``mirror`` gives the run position of (-k_z, -k_y) for each (the band limit is a
        # sphere, so the mirror of a drawn point was drawn too)
        self._band_planes = []
        for j in [0] + ([self._w_half - 1] if box % 2 == 0 else []):
            lo, hi = (int(torch.searchsorted(self._noise_index, j * box * box + e))
                      for e in (0, box * box))
            local = self._noise_index[lo:hi] - j * box * box
            run = torch.full((box * box,), -1, dtype=torch.int64, device=self.device)
            run[local] = torch.arange(hi - lo, device=self.device)
            self._band_planes.append((lo, hi, run[self._mirror[local]]))

    @classmethod
    def from_template_bank(cls, bank, voxel_size_A: float, device=None, **kw) -> Simulator:
        """Build from a ``cryo_companion.structures.templates.TemplateBank``."""
        return cls(torch.as_tensor(bank.volumes), torch.as_tensor(bank.labels), voxel_size_A,
                   device, class_names=list(bank.class_names), **kw)

    # ------------------------------------------------------------------ parameters
    def _param(self, params: Mapping, name: str, n: int) -> Tensor:
        v = params[name] if name in params else DEFAULT_PARAMS[name]
        if isinstance(v, (int, float)):  # filled on the device: no host-to-device copy (sync)
            return torch.full((n,), float(v), dtype=torch.float32, device=self.device)
        t = torch.as_tensor(v, dtype=torch.float32, device=self.device)
        if t.ndim == 0:
            t = t.expand(n)
        if t.shape != (n,):
            raise ValueError(f"parameter {name} must be a scalar or ({n},), got {tuple(t.shape)}")
        return t

    def _check_params(self, p: dict[str, Tensor]) -> None:
        snr, wedge, cs = p["snr"], p["wedge_deg"], p["cs_mm"]
        finite = [torch.isfinite(p[k]).all() for k in (
            "wedge_deg", "cs_mm", "defocus_um", "bfactor_A2", "intensity_scale",
            "intensity_offset", "shift_x_vox", "shift_y_vox", "shift_z_vox")]
        ok = torch.stack([(snr > 0).all(), (wedge >= 0).all(), (wedge < 90).all(),
                          (cs >= 0).all(), (p["bfactor_A2"] >= 0).all(),
                          (p["intensity_scale"] > 0).all(), *finite]).all()
        if bool(ok):  # one host sync when all is well; the messages below find the culprit
            return
        if bool(torch.isnan(snr).any()) or bool((snr <= 0).any()):
            bad = snr[torch.isnan(snr) | (snr <= 0)][0].item()
            raise ValueError(f"SNR {bad:g} is not > 0 (valid: > 0, or inf for no noise)")
        ok = torch.isfinite(wedge) & (wedge >= 0) & (wedge < 90)
        if not bool(ok.all()):
            raise ValueError(f"wedge angle {wedge[~ok][0].item():g} deg is outside [0, 90)")
        if not bool(torch.isfinite(cs).all()) or bool((cs < 0).any()):
            bad = cs[~(torch.isfinite(cs) & (cs >= 0))][0].item()
            raise ValueError(f"Cs {bad:g} mm is invalid (valid: finite, >= 0)")
        for name in ("defocus_um", "bfactor_A2", "intensity_scale", "intensity_offset",
                     "shift_x_vox", "shift_y_vox", "shift_z_vox"):
            if not bool(torch.isfinite(p[name]).all()):
                raise ValueError(f"parameter {name} must be finite")
        if bool((p["bfactor_A2"] < 0).any()):
            raise ValueError("bfactor_A2 must be >= 0 Å²")
        if bool((p["intensity_scale"] <= 0).any()):
            raise ValueError("intensity_scale must be > 0")

    # ------------------------------------------------------------------ filters
    def transfer(self, params: Mapping, *, amplitude_contrast: float = 0.07,
                 voltage_kv: float = 300.0, parts: bool = False):
        """The Fourier filter ``H`` on the rfftn half grid, ``(n, D, D, D//2+1)``.

        With ``parts=True`` returns ``(wedge (n,D,1,W'), ctf (n,D,D,W'), mtf, bandlimit)``
        (CTF already carrying the contrast sign of ``invert_contrast``).
        """
        n = int(torch.as_tensor(params["wedge_deg"]).numel())
        wedge = self._wedge(self._param(params, "wedge_deg", n))
        c_t = self._ctf(self._param(params, "defocus_um", n), self._param(params, "cs_mm", n),
                        self._param(params, "bfactor_A2", n), amplitude_contrast, voltage_kv)
        if parts:
            return wedge, c_t, self._mtf, self._bandlimit
        return c_t.mul_(wedge).mul_(self._static)

    def _check_generator(self, generator: torch.Generator | None) -> None:
        """A generator must live on the simulator's device (random draws happen there)."""
        if generator is not None and generator.device.type != self.device.type:
            raise ValueError(f"generator is on {generator.device} but the simulator on "
                             f"{self.device}; make it with torch.Generator(device="
                             f"{str(self.device)!r})")

    def _wedge(self, wedge_deg: Tensor) -> Tensor:
        """``(n, D, 1, W')`` float missing-wedge masks (the rule of :func:`optics.wedge_measured`)."""
        # the grids carry a leading batch axis of 1; the rule adds the batch axis itself
        return wedge_measured(self._kz_abs[0], self._kx_abs[0],
                              torch.deg2rad(wedge_deg.double())).float()

    @staticmethod
    def _ctf_coeffs(defocus_um: Tensor, cs_mm: Tensor, bfactor_A2: Tensor,
                    amplitude_contrast: float, voltage_kv: float):
        """``(a, b, bq)`` ``(n, 1, 1, 1)`` and the phase of :func:`optics.ctf_coefficients`."""
        v = (-1, 1, 1, 1)
        a, b, bq, phase = ctf_coefficients(defocus_um.float(), cs_mm.float(), bfactor_A2,
                                           amplitude_contrast=amplitude_contrast,
                                           voltage_kv=voltage_kv)
        return a.reshape(v), b.reshape(v), bq.reshape(v), phase

    def _ctf(self, defocus_um: Tensor, cs_mm: Tensor, bfactor_A2: Tensor,
             amplitude_contrast: float, voltage_kv: float) -> Tensor:
        """Batched CTF on the precomputed grid, with the sign of ``invert_contrast``.

        Same formula as :func:`cryo_companion.optics.ctf` (tested equal), written with fewer
        full-size temporaries: ``sqrt(1−A²) sin χ − A cos χ = sin(χ − arcsin A)``.
        """
        a, b, bq, phase = self._ctf_coeffs(defocus_um, cs_mm, bfactor_A2, amplitude_contrast,
                                           voltage_kv)
        chi = self._k2 * a
        chi.addcmul_(self._k4.expand_as(chi), b.expand_as(chi))
        chi.sub_(phase)
        out = torch.sin_(chi)
        if self.device.type != "cpu" or bool((bfactor_A2 != 0).any()):  # no sync on CUDA
            out.mul_(torch.exp(self._k2 * bq))
        return out.neg_() if self.invert_contrast else out

    # ------------------------------------------------------------------ noise
    def _white_noise_band(self, n: int, generator: torch.Generator | None) -> Tensor:
        """Fourier coefficients of real white Gaussian noise at the half-grid points inside the
        band limit: ``(n, P)`` complex, in the order of ``self._noise_index`` (k_x-major flat
        indices).

        Only these coefficients are drawn (one complex normal each, E|z|² = 1, in a fixed order):
        those outside are zero, which changes nothing downstream because the filter ``H``
        removes them anyway, and it halves the random draws at the default band limit. On the
        k_x = 0 (and Nyquist) planes they are made Hermitian, N(−k) = N(k)*, as the spectrum of a
        real volume must be.
        """
        Z = randn_complex(n, self._noise_index.numel(), generator, self.device)
        for lo, hi, mirror in self._band_planes:
            P = Z[:, lo:hi]
            Z[:, lo:hi] = (P + P[:, mirror].conj()) / math.sqrt(2.0)
        return Z

    def _scatter_band(self, Z: Tensor) -> Tensor:
        """The ``(n, D, D, W')`` half-grid spectrum (k_x-major) of band coefficients ``(n, P)``."""
        D, n = self.box, Z.shape[0]
        N = torch.zeros(n, self._w_half * D * D, dtype=Z.dtype, device=self.device)
        N.index_copy_(1, self._noise_index, Z)
        return N.reshape(n, self._w_half, D, D).permute(0, 2, 3, 1)

    def _var_band(self, X: Tensor, n_vox: int) -> Tensor:
        """:func:`_var_rfft` of a spectrum that is zero outside the band, from its band
        coefficients ``(n, P)`` (weight 1 on the Hermitian planes, 2 elsewhere; [0] is DC)."""
        r = torch.view_as_real(X)
        sq = lambda t: torch.linalg.vector_norm(t, dim=(1, 2)).square()
        tot = 2 * sq(r) - r[:, 0].square().sum(-1)
        for lo, hi, _ in self._band_planes:
            tot = tot - sq(r[:, lo:hi])
        return tot.clamp_min(0) / float(n_vox) ** 2

    # ------------------------------------------------------------------ main entry points
    def simulate(self, template_index: Tensor, rotations: Tensor, params: Mapping,
                 generator: torch.Generator | None = None, *, amplitude_contrast: float = 0.07,
                 voltage_kv: float = 300.0, return_stages: bool = False,
                 need_clean: bool = True, _validate: bool = True,
                 _timer: Callable[[str], None] | None = None) -> SimBatch:
        """Simulate subtomograms with explicit per-sample parameters.

        Parameters
        ----------
        template_index : ``(n,)`` int indices into the templates.
        rotations : ``(n, 3, 3)`` rotation matrices (x-y-z, :mod:`cryo_companion.rotation`);
            ``torch.eye(3).expand(n, 3, 3)`` for none.
        params : scalars or ``(n,)`` tensors: required ``snr`` (> 0, inf = no noise),
            ``wedge_deg`` ([0, 90)), ``defocus_um`` (negative = underfocus), ``cs_mm`` (>= 0);
            optional (defaults :data:`DEFAULT_PARAMS`) ``bfactor_A2``, ``intensity_scale``,
            ``intensity_offset``, ``shift_{x,y,z}_vox``.
        generator : torch generator for the noise, on the simulator's device (on the CPU it seeds
            the two noise streams of :func:`cryo_companion._rng.randn_complex`).
        amplitude_contrast, voltage_kv : CTF constants.
        return_stages : also return the intermediate stages (:data:`STAGES`).
        need_clean : also return the noise-free volumes (``SimBatch.clean``); False (training:
            noisy + mask only) saves one inverse FFT per subtomogram and sets ``clean`` None.
        _timer : called with a stage name at the end of each stage (:data:`TIMED_STAGES`; the
            benchmark's stage profile); None (default) times nothing.
        """
        mark = _timer if _timer is not None else (lambda stage: None)
        mark("parameters")
        idx = torch.as_tensor(template_index, device=self.device).long().reshape(-1)
        n = idx.numel()
        if _validate and n and not bool(((idx >= 0) & (idx < len(self.volumes))).all()):
            raise ValueError(f"template_index must be in [0, {len(self.volumes)})")
        R = torch.as_tensor(rotations, dtype=torch.float32, device=self.device)
        if R.shape != (n, 3, 3):
            raise ValueError(f"rotations must be ({n}, 3, 3), got {tuple(R.shape)}")
        missing = [k for k in REQUIRED_PARAMS if k not in params]
        if missing:
            raise ValueError(f"missing parameter(s) {missing}; required: {list(REQUIRED_PARAMS)}")
        self._check_generator(generator)
        p = {k: self._param(params, k, n) for k in (*REQUIRED_PARAMS, *DEFAULT_PARAMS)}
        if _validate:  # (sample() skips it: its draws are valid by construction, no host sync)
            self._check_params(p)

        shift = torch.stack([p["shift_x_vox"], p["shift_y_vox"], p["shift_z_vox"]], 1)
        # Che et al. III-A: rotate / shift the density map
        density = self._bank.rotate(idx, R, shift)
        mask = density > self._mask_thr[idx].reshape(-1, 1, 1, 1)
        mark("rotation and mask")
        dims, N = (-3, -2, -1), self.box ** 3
        inv = lambda F_: torch.fft.irfftn(F_, s=self._shape, dim=dims)
        S = torch.fft.rfftn(density, dim=dims)
        mark("forward FFT")
        # noise drawn last: the same seed gives the same clean volume whatever the SNR
        Z = self._white_noise_band(n, generator)
        mark("noise draw")
        # Che et al. III-B: the intensity augmentation x' = m + g (x − m) + o s, with m and s the
        # mean and std of the noise-free volume, is applied to both outputs, so noisy − clean
        # stays the noise, the SNR is unchanged and the clean output does not depend on the SNR.
        # It is affine, so it acts on the spectra: the gain g is folded into the filter
        # (H' = g H, no extra pass) and (m (1 − g) + o s) N is added to the DC term.
        g = p["intensity_scale"]
        sign = -1.0 if self.invert_contrast else 1.0
        H = None
        if self._filter is not None and n > 0:
            try:
                a, b, bq, phase = self._ctf_coeffs(p["defocus_um"], p["cs_mm"], p["bfactor_A2"],
                                                   amplitude_contrast, voltage_kv)
                with warnings.catch_warnings():  # compiler internals' deprecation notices
                    warnings.simplefilter("ignore", DeprecationWarning)
                    H = self._filter(self._k2, self._k4, self._static,
                                     self._wedge(p["wedge_deg"]), a, b, bq, phase,
                                     (sign * g).reshape(-1, 1, 1, 1))
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001
                warnings.warn(f"compiled Fourier filter failed ({type(e).__name__}: {e}); "
                              "eager path", RuntimeWarning, stacklevel=2)
                self._filter = None
        if H is None:
            H = self.transfer(p, amplitude_contrast=amplitude_contrast, voltage_kv=voltage_kv)
            H.mul_(g.reshape(-1, 1, 1, 1))
        mark("filter")
        # C = H' S (clean spectrum, × g), written k_x-major; complex * real is several times
        # faster on the CPU than multiplying the (..., 2) real view by a broadcast H' (an inner
        # loop 2 long). The filtered noise H' N (× g) lives on the band's points only.
        C = torch.mul(S, H, out=_kx_major_empty(S.shape, S.dtype, self.device))
        M = self._w_half * self.box ** 2  # points of the half grid
        Hb = H.permute(0, 3, 1, 2).reshape(n, M).index_select(1, self._noise_index)
        HN = Z * Hb if return_stages else Z.mul_(Hb)
        # σ² = var(clean) / (SNR var(filtered noise)), both variances by Parseval (exactly those
        # of the real-space volumes, without their inverse FFTs); the g² of both cancels
        var_c = _var_rfft(C, N, self.box % 2 == 0)  # g² var(clean before augmentation)
        var_n = self._var_band(HN, N).clamp_min(1e-30)
        finite = torch.isfinite(p["snr"])
        sigma = torch.where(finite, torch.sqrt(var_c / (var_n * torch.where(
            finite, p["snr"], torch.ones_like(p["snr"])))), torch.zeros_like(var_c))
        final = (inv(C + sigma.reshape(-1, 1, 1, 1) * self._scatter_band(HN))
                 / g.reshape(-1, 1, 1, 1)) if return_stages else None
        # m = C₀ / (g N) and s = sqrt(var_c) / g of the volume before the augmentation
        C[:, 0, 0, 0] += (C[:, 0, 0, 0].real / (g * N) * (1 - g)
                          + p["intensity_offset"] * torch.sqrt(var_c) / g) * N
        mark("spectra")
        clean = inv(C) if need_clean or return_stages else None
        mark("inverse FFTs")
        # noisy spectrum g (H S + σ H N), formed in C's memory (a view: (n, W' D D) k_x-major);
        # σ = 0 adds exact zeros: SNR = inf gives noisy == clean
        C.permute(0, 3, 1, 2).view(n, M).index_add_(1, self._noise_index,
                                                     HN.mul_(sigma.reshape(-1, 1)))
        mark("spectra")
        noisy = inv(C)
        mark("inverse FFTs")

        stages = None
        if return_stages:
            sig = sigma.reshape(-1, 1, 1, 1)
            white = inv(self._scatter_band(Z)) * sig
            X = S + torch.fft.rfftn(white, dim=dims)
            wedge, c_t, m_t, _ = self.transfer(p, amplitude_contrast=amplitude_contrast,
                                                voltage_kv=voltage_kv, parts=True)
            stages = {"density": density, "noise": white, "density+noise": density + white,
                      "wedge": inv(X * wedge), "ctf": inv(X * wedge * c_t),
                      "mtf": inv(X * wedge * c_t * m_t), "bandlimit": final}
            if not need_clean:
                clean = None

        phi, theta, psi = matrix_to_euler_zyz(R.double())
        out_params = {"template_index": idx, **p,
                      "euler_phi_deg": torch.rad2deg(phi).float(),
                      "euler_theta_deg": torch.rad2deg(theta).float(),
                      "euler_psi_deg": torch.rad2deg(psi).float()}
        mark("parameters")
        return SimBatch(noisy=noisy, clean=clean, mask=mask, label=self.labels[idx],
                        params=out_params, stages=stages)

    def sample(self, n: int, preset: Preset, generator: torch.Generator | None = None,
               *, template_index: Tensor | None = None, return_stages: bool = False,
               need_clean: bool = True,
               _timer: Callable[[str], None] | None = None) -> SimBatch:
        """Draw ``n`` subtomograms with parameters drawn from ``preset``'s ranges.

        Draw order (fixed, so a seed reproduces a batch): parameters
        (:func:`cryo_companion.simulate.randomization.sample_params`), template indices (uniform over the
        templates unless ``template_index`` is given), rotations (uniform on SO(3)), noise.
        ``need_clean``, ``_timer``: see :meth:`simulate` (the timer's first stage,
        "parameters", includes these draws).
        """
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        if not isinstance(preset, Preset):
            raise TypeError(f"preset must be a Preset, got {type(preset).__name__} (named "
                            "presets: cryo_companion.papers.che2019.presets.get_preset)")
        pr = preset
        self._check_generator(generator)
        params = sample_params(pr, n, generator, self.device)
        if template_index is None:
            template_index = torch.randint(len(self.volumes), (n,), generator=generator,
                                           device=self.device)
        else:
            template_index = torch.as_tensor(template_index, device=self.device).long().reshape(-1)
            if template_index.shape != (n,) or (n and not bool(
                    ((template_index >= 0) & (template_index < len(self.volumes))).all())):
                raise ValueError(f"template_index must be ({n},) ints in "
                                 f"[0, {len(self.volumes)})")
        R = random_rotation_matrices(n, generator, device=self.device)
        return self.simulate(template_index, R, params, generator,
                             amplitude_contrast=pr.amplitude_contrast, voltage_kv=pr.voltage_kv,
                             return_stages=return_stages, need_clean=need_clean,
                             _validate=False, _timer=_timer)
