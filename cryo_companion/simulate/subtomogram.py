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
a finite SNR gives the same clean volume plus noise. The white noise is drawn directly in Fourier
space (complex Gaussian on the ``rfftn`` half grid, with the ``k_x = 0`` and Nyquist planes made
Hermitian), which is statistically the FFT of real white Gaussian noise and saves one FFT per
subtomogram; only the coefficients inside the band limit are drawn (the band limit removes the
others anyway), about half of the half grid.

Steps of :meth:`Simulator.simulate`, each a private method (and a stage of the timer hook
:meth:`Simulator.timed`, :data:`TIMED_STAGES`): the parameters (checked, gathered); the noise
draw (drawn first: the noise is then the same with or without context, and without context
drawing it first or last gives the same numbers, nothing else draws in between); rotation +
mask; the context (neighbours packed around the target by the simulator's
:class:`~cryo_companion.simulate.context.ContextBank`, only when the parameters ask for it); the
forward FFT; the filter; the spectra (clean, filtered noise, σ, augmentation); the inverse FFTs.

Cost: one ``rfftn`` (density) and one ``irfftn`` per output volume; the spectra are stored
``k_x``-major so that each ``irfftn`` makes one transposing copy instead of two. The noise lives
on the band's points only (drawn, filtered and measured there, then added to the clean spectrum
in place), and on the CPU it is drawn in two parallel streams (:mod:`cryo_companion._rng`): one
Mersenne-Twister generator is a serial step. Both variances come from the spectra by Parseval
(exactly the real-space variances, no inverse FFT), and the intensity augmentation (affine per
sample) is applied to the spectra (its gain folded into the filter, its shift added to the DC
term), so ``need_clean=False`` (noisy + mask, for training) needs a single ``irfftn``.
``compile=True`` fuses the rotation (a trilinear gather straight from the template bank) and
the transfer function with :func:`torch.compile`; whether the compiled filter works is decided
once, at construction, by compiling and running it on a two-sample input (a failure warns and
keeps the eager filter for the simulator's life).

Conventions
-----------
* Beam along z, tilt axis y; the missing wedge, CTF and MTF are those of
  :mod:`cryo_companion.optics` (defocus negative = underfocus; MTF ``sinc(πω/2)``; band limit:
  a sphere at Nyquist).
* ``invert_contrast=True`` (default) multiplies the physical CTF (CTF(0) = −A, dense matter dark)
  by −1, so that particles stay bright (positive), as in the AITom simulator used by Che et al.
* Rotation and shift: :mod:`cryo_companion.rotation` (active, about the box centre, trilinear).
* Ground-truth mask: the rotated, shifted, noise-free density of the **target** before the
  optics, thresholded at ``mask_level`` (default 0.25) times the maximum of its (unrotated)
  template; the neighbours of the context are never in it (their masks are disjoint from it).
* Context: the neighbours' density is added to the target's before the optics, so it passes
  through the same wedge, CTF, MTF, noise and augmentation. The SNR is that of the whole box,
  neighbours included (as an SNR measured on a real subtomogram includes its surroundings).
* Generators: every random draw uses the ``torch.Generator`` given; its device must be the
  simulator's device (CUDA: ``torch.Generator(device="cuda").manual_seed(seed)``).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
from cryo_companion.simulate.context import ContextBank
from cryo_companion.simulate.randomization import Preset, sample_params

if TYPE_CHECKING:
    from cryo_companion.structures.templates import TemplateBank

__all__ = ["CONTEXT_PARAM", "DEFAULT_PARAMS", "MAX_CONTEXT_FRACTION", "REQUIRED_PARAMS",
           "STAGES", "TIMED_STAGES", "SimBatch", "Simulator"]

#: Names of the intermediate stages returned with ``return_stages=True`` (Che et al. III-A order).
STAGES = ("density", "noise", "density+noise", "wedge", "ctf", "mtf", "bandlimit")
#: Stages the timer hook of :meth:`Simulator.timed` is called with, in pipeline order
#: ("parameters": drawing and checking them, and the output's bookkeeping).
TIMED_STAGES = ("parameters", "noise draw", "rotation and mask", "context", "forward FFT",
                "filter", "spectra", "inverse FFTs")
#: Parameters :meth:`Simulator.simulate` needs.
REQUIRED_PARAMS = ("snr", "wedge_deg", "defocus_um", "cs_mm")
#: Defaults of the optional parameters of :meth:`Simulator.simulate`.
DEFAULT_PARAMS = {"bfactor_A2": 0.0, "intensity_scale": 1.0, "intensity_offset": 0.0,
                  "shift_x_vox": 0.0, "shift_y_vox": 0.0, "shift_z_vox": 0.0}
#: The optional parameter that asks for context: the occupancy to reach, fraction of the box
#: (absent: no context, exactly the simulator without it).
CONTEXT_PARAM = "context_fraction"
#: Largest occupancy :meth:`Simulator.simulate` accepts (a random packing does not go further).
MAX_CONTEXT_FRACTION = 0.5
#: The timer hook's type: called with the name of the stage that has just ended.
StageTimer = Callable[[str], None]


def _no_timer(stage: str) -> None:
    """Time nothing (the default timer hook)."""


@dataclass
class SimBatch:
    """One simulated batch.

    Attributes
    ----------
    noisy : torch.Tensor
        ``(n, D, D, D)`` float32 subtomograms (after intensity augmentation, not standardised).
    clean : torch.Tensor or None
        ``(n, D, D, D)`` the same without noise (after CTF, MTF, wedge and augmentation); None
        when simulated with ``need_clean=False``.
    mask : torch.Tensor
        ``(n, D, D, D)`` bool ground truth of the target (threshold of the density pre-optics).
    label : torch.Tensor
        ``(n,)`` int64 class labels.
    params : dict[str, torch.Tensor]
        Every parameter used, ``{name: (n,) tensor}`` (template_index, Euler angles in degrees,
        shifts in voxels, snr, wedge_deg, defocus_um, cs_mm, bfactor_A2, ...).
    stages : dict[str, torch.Tensor] or None
        With ``return_stages=True``, ``{stage: (n, D, D, D)}`` for :data:`STAGES` (noisy path,
        before the intensity augmentation); else None.
    context_mask : torch.Tensor or None
        With context, ``(n, D, D, D)`` bool union of the neighbours' masks (disjoint from
        ``mask``); else None.
    """

    noisy: Tensor
    clean: Tensor | None
    mask: Tensor
    label: Tensor
    params: dict[str, Tensor]
    stages: dict[str, Tensor] | None = None
    context_mask: Tensor | None = None

    def __len__(self) -> int:
        """Return the number of subtomograms."""
        return self.noisy.shape[0]

    def to(self, device: torch.device | str) -> SimBatch:
        """Return a copy on ``device``.

        Parameters
        ----------
        device : torch.device or str
            Where the copy lives.

        Returns
        -------
        SimBatch
            The same batch, every tensor on ``device``.
        """
        stages = None if self.stages is None else {k: v.to(device) for k, v in self.stages.items()}
        clean = None if self.clean is None else self.clean.to(device)
        ctx = None if self.context_mask is None else self.context_mask.to(device)
        return SimBatch(self.noisy.to(device), clean, self.mask.to(device),
                        self.label.to(device), {k: v.to(device) for k, v in self.params.items()},
                        stages, ctx)


def _kx_major(t: Tensor) -> Tensor:
    """Return ``t`` ``(.., D, D, W')`` stored k_x-major (``(.., W', D, D)`` in memory)."""
    return t.movedim(-1, -3).contiguous().movedim(-3, -1)


def _kx_major_empty(shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Return an uninitialised ``(n, D, D, W')`` tensor stored k_x-major."""
    n, D1, D2, W = shape
    return torch.empty(n, W, D1, D2, dtype=dtype, device=device).permute(0, 2, 3, 1)


def _sq_norm(t: Tensor, first: int = 1) -> Tensor:
    """Squared Euclidean norm over the axes from ``first`` on (per sample, any memory layout)."""
    return torch.linalg.vector_norm(t, dim=tuple(range(first, t.ndim))).square()


def _var_rfft(X: Tensor, n_vox: int, even: bool) -> Tensor:
    """Return the variance per sample of the real volumes whose ``rfftn`` is ``X``.

    ``X`` is ``(n, D, D, W')``; the variance is the population one.

    Parseval on the half grid: ``var = (Σ_k w_k |X_k|² − |X_0|²) / N²`` with ``w`` = 1 on the
    ``k_x = 0`` plane (and the Nyquist plane when D is even) and 2 elsewhere (the columns the
    half grid stands for twice); the DC term is the mean. No inverse FFT is needed.
    """
    r = torch.view_as_real(X)
    # reduce over all but the batch axis, whatever the memory layout (no reshape copy)
    tot = 2 * _sq_norm(r) - _sq_norm(r[:, :, :, 0]) - r[:, 0, 0, 0].square().sum(-1)
    if even:
        tot = tot - _sq_norm(r[:, :, :, -1])
    return tot.clamp_min(0) / float(n_vox) ** 2


def _transfer_fused(k2: Tensor, k4: Tensor, static: Tensor, wedge: Tensor, a: Tensor,
                    b: Tensor, bq: Tensor, phase: float, gain: Tensor) -> Tensor:
    """Return ``gain · sin(a k² + b k⁴ − phase) · e^{bq k²} · wedge · static``.

    The filter of :meth:`Simulator.transfer` times a per-sample ``gain`` ``(n, 1, 1, 1)``
    (contrast sign × intensity scale).

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


def _checked_volumes(volumes: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(K, D, D, D)`` float templates and their ``(K,)`` labels, or a ``ValueError``."""
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
    return volumes, labels


class Simulator:
    """Batched simplified subtomogram simulator (Che et al. 2019, III-A; see the module docstring).

    Parameters
    ----------
    volumes : torch.Tensor
        ``(K, D, D, D)`` density templates (z-y-x, e.g. Da/Å³; any positive scale).
    labels : torch.Tensor
        ``(K,)`` integer class label of each template.
    voxel_size_A : float
        Voxel size in Å (Che et al.: 13.68 Å).
    device : torch.device or str or None
        Simulation device (default: the device of ``volumes``).
    box : int or None
        Output box size (default ``D``); templates are cropped or zero-padded about the centre,
        which needs ``box`` and ``D`` of the same parity.
    invert_contrast : bool
        Apply −CTF so particles stay bright (True, AITom convention) or the physical CTF (False).
    mask_level : float
        Ground-truth threshold as a fraction of each template's maximum, in (0, 1).
    bandlimit_fraction_nyquist : float
        Radius of the spherical band limit, fraction of Nyquist.
    class_names : list of str or None
        Optional names of the labels.
    compile : bool
        Rotate with the :func:`torch.compile`-fused trilinear gather of
        :class:`cryo_companion.rotation.VolumeBank` and evaluate the filter as one compiled loop
        (several times faster on the CPU). The filter is compiled here, once, and run on a
        two-sample input; if that fails it warns and stays eager. Results equal the default
        path to float rounding.
    context : ContextBank or None
        Neighbours to pack around the target when the parameters ask for context
        (``context_fraction``; presets with a context range); its box must be ``box`` and its
        device this simulator's. None: no context (asking for it is an error).
    """

    def __init__(self, volumes: Tensor, labels: Tensor, voxel_size_A: float = 13.68,
                 device: torch.device | str | None = None, *, box: int | None = None,
                 invert_contrast: bool = True, mask_level: float = 0.25,
                 bandlimit_fraction_nyquist: float = 1.0, class_names: list[str] | None = None,
                 compile: bool = False, context: ContextBank | None = None) -> None:
        volumes, labels = _checked_volumes(volumes, labels)
        if not voxel_size_A > 0:
            raise ValueError(f"voxel_size_A must be > 0 Å, got {voxel_size_A}")
        if not 0 < mask_level < 1:
            raise ValueError(f"mask_level must be in (0, 1), got {mask_level}")
        box = int(volumes.shape[-1] if box is None else box)
        if box < 2:
            raise ValueError(f"box must be >= 2 voxels, got {box}")
        self.device = torch.device(device) if device is not None else volumes.device
        self.volumes = _center_resize(volumes.to(self.device, torch.float32), box).contiguous()
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
        self._bank = VolumeBank(self.volumes, compile=compile)
        self._grids(bandlimit_fraction_nyquist)
        self._mark: StageTimer = _no_timer
        self._filter: Callable[..., Tensor] | None = self._compiled_filter() if compile else None
        if context is not None and not isinstance(context, ContextBank):
            raise TypeError(f"context must be a ContextBank, got {type(context).__name__}")
        if context is not None and (context.box != box
                                    or context.device.type != self.device.type):
            raise ValueError(f"the context bank's box {context.box} on {context.device} must be "
                             f"the simulator's box {box} on {self.device}")
        self.context = context

    def _grids(self, bandlimit_fraction_nyquist: float) -> None:
        """Precompute the frequency grids on the rfftn half grid ``(D, D, D // 2 + 1)``."""
        box = self.box
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
        self._band_planes: list[tuple[int, int, Tensor]] = []
        for j in [0] + ([self._w_half - 1] if box % 2 == 0 else []):
            lo, hi = (int(torch.searchsorted(self._noise_index, j * box * box + e))
                      for e in (0, box * box))
            local = self._noise_index[lo:hi] - j * box * box
            run = torch.full((box * box,), -1, dtype=torch.int64, device=self.device)
            run[local] = torch.arange(hi - lo, device=self.device)
            self._band_planes.append((lo, hi, run[self._mirror[local]]))

    def _compiled_filter(self) -> Callable[..., Tensor] | None:
        """Compile :func:`_transfer_fused` and run it on a two-sample input.

        Returns None (with a warning) if that fails: decided here, once, not on every call.
        """
        try:
            with warnings.catch_warnings():  # compiler internals' deprecation notices
                warnings.simplefilter("ignore", DeprecationWarning)
                fn = torch.compile(_transfer_fused, dynamic=True)
                n = 2  # sizes 0 and 1 are specialised by the compiler; 2 stays symbolic
                probe = {"defocus_um": -6.0, "cs_mm": 2.7, "bfactor_A2": 0.0, "wedge_deg": 30.0}
                p = {k: torch.full((n,), v, device=self.device) for k, v in probe.items()}
                a, b, bq, phase = self._ctf_coeffs(p["defocus_um"], p["cs_mm"], p["bfactor_A2"],
                                                   0.07, 300.0)
                H = fn(self._k2, self._k4, self._static, self._wedge(p["wedge_deg"]), a, b, bq,
                       phase, torch.ones(n, 1, 1, 1, device=self.device))
                if H.shape != (n, *self._k2.shape[-3:]) or not bool(torch.isfinite(H).all()):
                    raise RuntimeError("the compiled filter returned a wrong or non-finite result")
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - any backend failure: stay eager
            warnings.warn(f"torch.compile of the Fourier filter failed ({type(e).__name__}: {e});"
                          " eager path", RuntimeWarning, stacklevel=3)
            return None
        return fn

    @classmethod
    def from_template_bank(cls, bank: TemplateBank, voxel_size_A: float,
                           device: torch.device | str | None = None, **kw: Any) -> Simulator:
        """Build from a :class:`cryo_companion.structures.templates.TemplateBank`.

        Parameters
        ----------
        bank : TemplateBank
            Its ``volumes``, ``labels`` and ``class_names`` are used.
        voxel_size_A : float
            Voxel size in Å.
        device : torch.device or str or None
            Simulation device.
        **kw
            Further keyword arguments of :class:`Simulator`.

        Returns
        -------
        Simulator
        """
        return cls(torch.as_tensor(bank.volumes), torch.as_tensor(bank.labels), voxel_size_A,
                   device, class_names=list(bank.class_names), **kw)

    # ------------------------------------------------------------------ the timer hook
    @contextmanager
    def timed(self, timer: StageTimer) -> Iterator[Simulator]:
        """Call ``timer(stage)`` at the end of each stage of every simulation inside the block.

        Parameters
        ----------
        timer : callable
            Called with a name of :data:`TIMED_STAGES` when that stage ends (the benchmark's
            stage profile synchronises the device and reads a clock there).

        Yields
        ------
        Simulator
            This simulator; the previous hook is restored on leaving the block.
        """
        previous, self._mark = self._mark, timer
        try:
            yield self
        finally:
            self._mark = previous

    # ------------------------------------------------------------------ parameters
    def _param(self, params: Mapping[str, object], name: str, n: int) -> Tensor:
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

    def _inputs(self, template_index: Tensor, rotations: Tensor, params: Mapping[str, object],
                generator: torch.Generator | None, *, validate: bool
                ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Return template indices ``(n,)``, rotations ``(n, 3, 3)`` and parameters on the device.

        The parameters are ``{name: (n,)}``; ``validate=False`` (:meth:`sample`'s own draws, valid
        by construction) skips their check, a host sync.
        """
        idx = torch.as_tensor(template_index, device=self.device).long().reshape(-1)
        n = idx.numel()
        if validate and n and not bool(((idx >= 0) & (idx < len(self.volumes))).all()):
            raise ValueError(f"template_index must be in [0, {len(self.volumes)})")
        R = torch.as_tensor(rotations, dtype=torch.float32, device=self.device)
        if R.shape != (n, 3, 3):
            raise ValueError(f"rotations must be ({n}, 3, 3), got {tuple(R.shape)}")
        missing = [k for k in REQUIRED_PARAMS if k not in params]
        if missing:
            raise ValueError(f"missing parameter(s) {missing}; required: {list(REQUIRED_PARAMS)}")
        self._check_generator(generator)
        p = {k: self._param(params, k, n) for k in (*REQUIRED_PARAMS, *DEFAULT_PARAMS)}
        if validate:
            self._check_params(p)
        if CONTEXT_PARAM in params:
            p[CONTEXT_PARAM] = self._context_fraction(params, n, validate)
        return idx, R, p

    def _context_fraction(self, params: Mapping[str, object], n: int, validate: bool) -> Tensor:
        """Return the ``(n,)`` occupancy asked for, after checking that context can be made."""
        if self.context is None:
            raise ValueError(f"{CONTEXT_PARAM} asks for context, but this simulator has no "
                             "context bank: build it with Simulator(..., context=ContextBank(...))"
                             " (Che et al. 2019: cryo_companion.papers.che2019.context."
                             "context_bank)")
        phi = self._param(params, CONTEXT_PARAM, n)
        if validate and not bool(((phi >= 0) & (phi <= MAX_CONTEXT_FRACTION)).all()):
            raise ValueError(f"{CONTEXT_PARAM} must be in [0, {MAX_CONTEXT_FRACTION}] (fraction "
                             "of the box volume)")
        return phi

    # ------------------------------------------------------------------ filters
    def transfer(self, params: Mapping[str, object], *, amplitude_contrast: float = 0.07,
                 voltage_kv: float = 300.0) -> Tensor:
        """Return the Fourier filter ``H = wedge · CTF · MTF · band limit`` (rfftn half grid).

        Parameters
        ----------
        params : mapping
            ``wedge_deg``, ``defocus_um``, ``cs_mm`` (and optionally ``bfactor_A2``): scalars or
            ``(n,)`` tensors, as for :meth:`simulate`.
        amplitude_contrast : float
            Amplitude contrast fraction of the CTF.
        voltage_kv : float
            Accelerating voltage in kV.

        Returns
        -------
        torch.Tensor
            ``H`` ``(n, D, D, D//2+1)``, the CTF carrying the contrast sign of
            ``invert_contrast``.
        """
        wedge, c_t = self._wedge_and_ctf(params, amplitude_contrast, voltage_kv)
        return c_t.mul_(wedge).mul_(self._static)

    def _wedge_and_ctf(self, params: Mapping[str, object], amplitude_contrast: float,
                       voltage_kv: float) -> tuple[Tensor, Tensor]:
        """Return the factors of :meth:`transfer` that vary per sample.

        The wedge is ``(n, D, 1, W')``, the CTF ``(n, D, D, W')`` (with the contrast sign).
        """
        n = int(torch.as_tensor(params["wedge_deg"]).numel())
        wedge = self._wedge(self._param(params, "wedge_deg", n))
        c_t = self._ctf(self._param(params, "defocus_um", n), self._param(params, "cs_mm", n),
                        self._param(params, "bfactor_A2", n), amplitude_contrast, voltage_kv)
        return wedge, c_t

    def _check_generator(self, generator: torch.Generator | None) -> None:
        """Refuse a generator that is not on the simulator's device (draws happen there)."""
        if generator is not None and generator.device.type != self.device.type:
            raise ValueError(f"generator is on {generator.device} but the simulator on "
                             f"{self.device}; make it with torch.Generator(device="
                             f"{str(self.device)!r})")

    def _wedge(self, wedge_deg: Tensor) -> Tensor:
        """Return ``(n, D, 1, W')`` float missing-wedge masks (:func:`optics.wedge_measured`)."""
        # the grids carry a leading batch axis of 1; the rule adds the batch axis itself
        return wedge_measured(self._kz_abs[0], self._kx_abs[0],
                              torch.deg2rad(wedge_deg.double())).float()

    @staticmethod
    def _ctf_coeffs(defocus_um: Tensor, cs_mm: Tensor, bfactor_A2: Tensor,
                    amplitude_contrast: float, voltage_kv: float
                    ) -> tuple[Tensor, Tensor, Tensor, float]:
        """Return ``(a, b, bq)`` ``(n, 1, 1, 1)`` and the CTF phase (of optics.ctf_coefficients)."""
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
        """Draw the Fourier coefficients of real white Gaussian noise inside the band limit.

        ``(n, P)`` complex, at the half-grid points in the order of ``self._noise_index``
        (k_x-major flat indices).

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
        """Return the ``(n, D, D, W')`` half-grid spectrum (k_x-major) of band coefficients."""
        D, n = self.box, Z.shape[0]
        N = torch.zeros(n, self._w_half * D * D, dtype=Z.dtype, device=self.device)
        N.index_copy_(1, self._noise_index, Z)
        return N.reshape(n, self._w_half, D, D).permute(0, 2, 3, 1)

    def _var_band(self, X: Tensor, n_vox: int) -> Tensor:
        """Return :func:`_var_rfft` of a spectrum that is zero outside the band.

        From its band coefficients ``(n, P)`` (weight 1 on the Hermitian planes, 2 elsewhere;
        [0] is DC).
        """
        r = torch.view_as_real(X)
        tot = 2 * _sq_norm(r) - r[:, 0].square().sum(-1)
        for lo, hi, _ in self._band_planes:
            tot = tot - _sq_norm(r[:, lo:hi])
        return tot.clamp_min(0) / float(n_vox) ** 2

    # ------------------------------------------------------------------ the steps of simulate
    def _rotate_and_mask(self, idx: Tensor, R: Tensor, p: dict[str, Tensor]
                         ) -> tuple[Tensor, Tensor]:
        """Rotate / shift the density map (Che et al. III-A); the ground truth is its threshold."""
        shift = torch.stack([p["shift_x_vox"], p["shift_y_vox"], p["shift_z_vox"]], 1)
        density = self._bank.rotate(idx, R, shift)
        return density, density > self._mask_thr[idx].reshape(-1, 1, 1, 1)

    def _add_context(self, density: Tensor, mask: Tensor, p: dict[str, Tensor],
                     generator: torch.Generator | None) -> tuple[Tensor, Tensor | None]:
        """Add the neighbours' density to the target's; return it and the neighbours' masks.

        Without :data:`CONTEXT_PARAM` nothing is drawn or added (``density`` itself comes back).
        The measured occupancy and the number of neighbours join ``p``.
        """
        if CONTEXT_PARAM not in p:
            return density, None
        assert self.context is not None  # checked with the parameters
        pack = self.context.pack(mask, p[CONTEXT_PARAM], generator)
        p["context_fraction_measured"] = pack.fraction
        p["context_count"] = pack.count
        return density + pack.density, pack.mask

    def _inverse(self, F_: Tensor) -> Tensor:
        """Return the real volumes ``(n, D, D, D)`` of half-grid spectra."""
        return torch.fft.irfftn(F_, s=self._shape, dim=(-3, -2, -1))

    def _filter_with_gain(self, p: dict[str, Tensor], amplitude_contrast: float,
                          voltage_kv: float) -> Tensor:
        """Return ``H' = g H`` ``(n, D, D, W')``, the filter with the augmentation's gain.

        Che et al. III-B: the intensity augmentation x' = m + g (x − m) + o s, with m and s the
        mean and std of the noise-free volume, is applied to both outputs, so noisy − clean
        stays the noise, the SNR is unchanged and the clean output does not depend on the SNR.
        It is affine, so it acts on the spectra: the gain g is folded into the filter (no extra
        pass) and (m (1 − g) + o s) N is added to the DC term (:meth:`_spectra`).
        """
        g = p["intensity_scale"]
        if self._filter is not None and g.numel() > 0:
            sign = -1.0 if self.invert_contrast else 1.0
            a, b, bq, phase = self._ctf_coeffs(p["defocus_um"], p["cs_mm"], p["bfactor_A2"],
                                               amplitude_contrast, voltage_kv)
            with warnings.catch_warnings():  # compiler internals' deprecation notices
                warnings.simplefilter("ignore", DeprecationWarning)
                return self._filter(self._k2, self._k4, self._static, self._wedge(p["wedge_deg"]),
                                    a, b, bq, phase, (sign * g).reshape(-1, 1, 1, 1))
        H = self.transfer(p, amplitude_contrast=amplitude_contrast, voltage_kv=voltage_kv)
        return H.mul_(g.reshape(-1, 1, 1, 1))

    def _spectra(self, S: Tensor, H: Tensor, Z: Tensor, p: dict[str, Tensor],
                 return_stages: bool) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Return the augmented clean spectrum, the filtered noise, σ and the stage "bandlimit".

        ``C`` is k_x-major, the filtered noise ``H'N`` lives on the band, σ is ``(n,)``; the
        last is (``return_stages`` only) the noisy volume before the augmentation.

        ``Z`` is filtered in place unless ``return_stages`` (the stages need the white noise).
        """
        n, N, g = S.shape[0], self.box ** 3, p["intensity_scale"]
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
        final = (self._inverse(C + sigma.reshape(-1, 1, 1, 1) * self._scatter_band(HN))
                 / g.reshape(-1, 1, 1, 1)) if return_stages else None
        # m = C₀ / (g N) and s = sqrt(var_c) / g of the volume before the augmentation
        C[:, 0, 0, 0] += (C[:, 0, 0, 0].real / (g * N) * (1 - g)
                          + p["intensity_offset"] * torch.sqrt(var_c) / g) * N
        return C, HN, sigma, final

    def _add_noise_spectrum(self, C: Tensor, HN: Tensor, sigma: Tensor) -> None:
        """``C += σ H'N`` in place: the noisy spectrum ``g (H S + σ H N)`` in C's memory.

        A view of C ``(n, W' D D)`` (k_x-major); σ = 0 adds exact zeros, so SNR = inf gives
        noisy == clean bit for bit.
        """
        n, M = C.shape[0], self._w_half * self.box ** 2
        C.permute(0, 3, 1, 2).view(n, M).index_add_(1, self._noise_index,
                                                     HN.mul_(sigma.reshape(-1, 1)))

    def _stages(self, density: Tensor, S: Tensor, Z: Tensor, sigma: Tensor, final: Tensor | None,
                p: dict[str, Tensor], amplitude_contrast: float, voltage_kv: float
                ) -> dict[str, Tensor]:
        """Return the intermediate volumes of :data:`STAGES` (noisy path, before augmentation)."""
        assert final is not None
        white = self._inverse(self._scatter_band(Z)) * sigma.reshape(-1, 1, 1, 1)
        X = S + torch.fft.rfftn(white, dim=(-3, -2, -1))
        wedge, c_t = self._wedge_and_ctf(p, amplitude_contrast, voltage_kv)
        m_t, inv = self._mtf, self._inverse
        return {"density": density, "noise": white, "density+noise": density + white,
                "wedge": inv(X * wedge), "ctf": inv(X * wedge * c_t),
                "mtf": inv(X * wedge * c_t * m_t), "bandlimit": final}

    def _out_params(self, idx: Tensor, R: Tensor, p: dict[str, Tensor]) -> dict[str, Tensor]:
        """Return every parameter used, with the rotation as ZYZ Euler angles in degrees."""
        phi, theta, psi = matrix_to_euler_zyz(R.double())
        return {"template_index": idx, **p,
                "euler_phi_deg": torch.rad2deg(phi).float(),
                "euler_theta_deg": torch.rad2deg(theta).float(),
                "euler_psi_deg": torch.rad2deg(psi).float()}

    def _run(self, idx: Tensor, R: Tensor, p: dict[str, Tensor],
             generator: torch.Generator | None, *, amplitude_contrast: float, voltage_kv: float,
             return_stages: bool, need_clean: bool) -> SimBatch:
        """Run the pipeline on checked inputs, one named step at a time (module docstring)."""
        mark = self._mark
        mark("parameters")
        Z = self._white_noise_band(idx.numel(), generator)
        mark("noise draw")
        density, mask = self._rotate_and_mask(idx, R, p)
        mark("rotation and mask")
        density, context_mask = self._add_context(density, mask, p, generator)
        mark("context")
        S = torch.fft.rfftn(density, dim=(-3, -2, -1))
        mark("forward FFT")
        H = self._filter_with_gain(p, amplitude_contrast, voltage_kv)
        mark("filter")
        C, HN, sigma, final = self._spectra(S, H, Z, p, return_stages)
        mark("spectra")
        clean = self._inverse(C) if need_clean or return_stages else None
        mark("inverse FFTs")
        self._add_noise_spectrum(C, HN, sigma)
        mark("spectra")
        noisy = self._inverse(C)
        mark("inverse FFTs")
        stages = None
        if return_stages:
            stages = self._stages(density, S, Z, sigma, final, p, amplitude_contrast, voltage_kv)
            if not need_clean:
                clean = None
        out = SimBatch(noisy=noisy, clean=clean, mask=mask, label=self.labels[idx],
                       params=self._out_params(idx, R, p), stages=stages,
                       context_mask=context_mask)
        mark("parameters")
        return out

    # ------------------------------------------------------------------ main entry points
    def simulate(self, template_index: Tensor, rotations: Tensor, params: Mapping[str, object],
                 generator: torch.Generator | None = None, *, amplitude_contrast: float = 0.07,
                 voltage_kv: float = 300.0, return_stages: bool = False,
                 need_clean: bool = True) -> SimBatch:
        """Simulate subtomograms with explicit per-sample parameters.

        Parameters
        ----------
        template_index : torch.Tensor
            ``(n,)`` int indices into the templates.
        rotations : torch.Tensor
            ``(n, 3, 3)`` rotation matrices (x-y-z, :mod:`cryo_companion.rotation`);
            ``torch.eye(3).expand(n, 3, 3)`` for none.
        params : mapping
            Scalars or ``(n,)`` tensors: required ``snr`` (> 0, inf = no noise), ``wedge_deg``
            ([0, 90)), ``defocus_um`` (negative = underfocus), ``cs_mm`` (>= 0); optional
            (defaults :data:`DEFAULT_PARAMS`) ``bfactor_A2`` (Å²), ``intensity_scale``,
            ``intensity_offset``, ``shift_{x,y,z}_vox``; and :data:`CONTEXT_PARAM`
            (``context_fraction``, in [0, 0.5]: the occupancy of the box by neighbours to reach,
            which needs the simulator's ``context`` bank; absent: no context).
        generator : torch.Generator or None
            Generator of the noise, on the simulator's device (on the CPU it seeds the two
            noise streams of :func:`cryo_companion._rng.randn_complex`).
        amplitude_contrast : float
            Amplitude contrast fraction of the CTF.
        voltage_kv : float
            Accelerating voltage in kV.
        return_stages : bool
            Also return the intermediate stages (:data:`STAGES`).
        need_clean : bool
            Also return the noise-free volumes (``SimBatch.clean``); False (training: noisy +
            mask only) saves one inverse FFT per subtomogram and sets ``clean`` None.

        Returns
        -------
        SimBatch
            The batch; the stage timer of :meth:`timed`, if any, is called along the way. With
            context, ``params`` also holds ``context_fraction_measured`` (the occupancy reached)
            and ``context_count`` (neighbours placed), and ``context_mask`` the neighbours.

        Raises
        ------
        ValueError
            For a parameter, index, rotation shape or generator device that is not valid, before
            any work.
        """
        idx, R, p = self._inputs(template_index, rotations, params, generator, validate=True)
        return self._run(idx, R, p, generator, amplitude_contrast=amplitude_contrast,
                         voltage_kv=voltage_kv, return_stages=return_stages,
                         need_clean=need_clean)

    def sample(self, n: int, preset: Preset, generator: torch.Generator | None = None,
               *, template_index: Tensor | None = None, return_stages: bool = False,
               need_clean: bool = True) -> SimBatch:
        """Draw ``n`` subtomograms with parameters drawn from ``preset``'s ranges.

        Draw order (fixed, so a seed reproduces a batch): parameters
        (:func:`cryo_companion.simulate.randomization.sample_params`), template indices (uniform
        over the templates unless ``template_index`` is given), rotations (uniform on SO(3)),
        noise, context (the neighbours, when ``preset`` has a context range). The timer's first
        stage, "parameters", includes the first three.

        Parameters
        ----------
        n : int
            Number of subtomograms (>= 0).
        preset : Preset
            The parameter ranges (named presets of the papers:
            :func:`cryo_companion.papers.che2019.presets.get_preset`).
        generator : torch.Generator or None
            Generator of every draw, on the simulator's device.
        template_index : torch.Tensor or None
            ``(n,)`` templates to use instead of uniform draws.
        return_stages : bool
            See :meth:`simulate`.
        need_clean : bool
            See :meth:`simulate`.

        Returns
        -------
        SimBatch

        Raises
        ------
        TypeError
            ``preset`` is not a :class:`~cryo_companion.simulate.randomization.Preset`.
        ValueError
            ``n`` is not a non-negative integer, the preset draws context and the simulator has no
            context bank, or ``template_index`` is not ``n`` indices of the templates.
        """
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        if not isinstance(preset, Preset):
            raise TypeError(f"preset must be a Preset, got {type(preset).__name__} (named "
                            "presets: cryo_companion.papers.che2019.presets.get_preset)")
        if preset.has_context and self.context is None:
            raise ValueError(f"preset {preset.name!r} randomizes the context (context_fraction "
                             f"{preset.context_fraction}) but this simulator has no context "
                             "bank: build it with Simulator(..., context=ContextBank(...)) (Che "
                             "et al. 2019: cryo_companion.papers.che2019.context.context_bank)")
        self._check_generator(generator)
        params = sample_params(preset, n, generator, self.device)
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
        idx, R, p = self._inputs(template_index, R, params, generator, validate=False)
        return self._run(idx, R, p, generator, amplitude_contrast=preset.amplitude_contrast,
                         voltage_kv=preset.voltage_kv, return_stages=return_stages,
                         need_clean=need_clean)
