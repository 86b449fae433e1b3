"""Rotations: uniform random rotations on SO(3), ZYZ Euler angles, batched rotation of volumes.

Conventions
-----------
* A rotation matrix ``R`` acts on **column vectors of physical coordinates in (x, y, z) order**
  (right-handed; volumes are stored ``(z, y, x)``, so x is the last array axis and z the first).
* Rotating a volume is *active*: the object is turned by ``R`` about the box centre
  ``c = (N − 1) / 2`` per axis (the geometric centre, between two voxels for an even size) and
  then shifted by ``shift_xyz`` (voxels, x-y-z order)::

      out(p) = vol(Rᵀ (p − c − t) + c)

  so a feature at position ``p0`` moves to ``R (p0 − c) + c + t``.
* Euler angles are ZYZ, intrinsic, in radians: ``R = Rz(φ) · Ry(θ) · Rz(ψ)`` with
  ``Rz(a) = [[cos a, −sin a, 0], [sin a, cos a, 0], [0, 0, 1]]`` and
  ``Ry(a) = [[cos a, 0, sin a], [0, 1, 0], [−sin a, 0, cos a]]``: the object is turned by ψ about
  z, then by θ about y, then by φ about z (all about fixed axes). θ ∈ [0, π], φ, ψ ∈ (−π, π].
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion.devices import DeviceLike, ScalarOrTensor

__all__ = [
    "VolumeBank",
    "euler_zyz_to_matrix",
    "matrix_to_euler_zyz",
    "quaternion_to_matrix",
    "random_rotation_matrices",
    "rotate_volumes",
    "rotation_grid",
]


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Convert quaternions to rotation matrices.

    Parameters
    ----------
    q : Tensor
        ``(*S, 4)`` quaternions ordered (w, x, y, z); they need not be normalised (they are
        normalised here).

    Returns
    -------
    Tensor
        ``(*S, 3, 3)`` rotation matrices acting on (x, y, z) column vectors.
    """
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def random_rotation_matrices(n: int, generator: torch.Generator | None = None, *,
                             device: DeviceLike = None,
                             dtype: torch.dtype = torch.float32) -> Tensor:
    """Draw ``n`` rotations uniformly (Haar measure) on SO(3).

    A normalised 4-D standard normal vector is a uniform unit quaternion (Shoemake 1992), and
    unit quaternions cover SO(3) twice, uniformly.

    Parameters
    ----------
    n : int
        Number of rotations (>= 0).
    generator : torch.Generator or None, optional
        Torch generator; its device must be ``device`` (a CUDA generator is made with
        ``torch.Generator(device="cuda").manual_seed(seed)``).
    device : DeviceLike
        Device of the result (default: the generator's device, else the CPU).
    dtype : torch.dtype, optional
        Floating dtype of the result.

    Returns
    -------
    Tensor
        ``(n, 3, 3)`` rotation matrices acting on (x, y, z) column vectors.

    Raises
    ------
    ValueError
        If ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    q = torch.randn(n, 4, generator=generator, device=device, dtype=torch.float64)
    return quaternion_to_matrix(q).to(dtype)


def _rz(a: Tensor) -> Tensor:
    c, s = torch.cos(a), torch.sin(a)
    o, z = torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*a.shape, 3, 3)


def _ry(a: Tensor) -> Tensor:
    c, s = torch.cos(a), torch.sin(a)
    o, z = torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*a.shape, 3, 3)


def euler_zyz_to_matrix(phi: ScalarOrTensor, theta: ScalarOrTensor,
                        psi: ScalarOrTensor) -> Tensor:
    """Compose ``R = Rz(phi) Ry(theta) Rz(psi)`` from ZYZ Euler angles (module conventions).

    Parameters
    ----------
    phi, theta, psi : float or Tensor
        Angles in radians: tensors of one shape ``S`` (floats become float64 scalars).

    Returns
    -------
    Tensor
        ``(*S, 3, 3)`` rotation matrices acting on (x, y, z) column vectors.
    """
    phi, theta, psi = (torch.as_tensor(a, dtype=torch.float64) if not isinstance(a, Tensor)
                       else a for a in (phi, theta, psi))
    return _rz(phi) @ _ry(theta) @ _rz(psi)


def matrix_to_euler_zyz(R: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Invert :func:`euler_zyz_to_matrix`: ZYZ Euler angles of rotation matrices.

    θ = arccos(R₂₂) ∈ [0, π]. At the gimbal lock (θ = 0 or π) only φ ± ψ is defined; then ψ = 0.

    Parameters
    ----------
    R : Tensor
        ``(*S, 3, 3)`` rotation matrices acting on (x, y, z) column vectors.

    Returns
    -------
    phi, theta, psi : Tensor
        ``S`` angles in radians: φ, ψ in (−π, π], θ in [0, π].
    """
    r22 = R[..., 2, 2].clamp(-1.0, 1.0)
    theta = torch.arccos(r22)
    sin_t = torch.sqrt(torch.clamp(1 - r22 * r22, min=0.0))
    eps = 1e-6 if R.dtype == torch.float64 else 1e-4
    regular = sin_t > eps
    phi = torch.atan2(R[..., 1, 2], R[..., 0, 2])
    psi = torch.atan2(R[..., 2, 1], -R[..., 2, 0])
    # gimbal lock: R = Rz(phi ± psi) (θ = 0) or Rz(phi) Ry(π) Rz(psi) (θ = π); set psi = 0
    phi_lock = torch.where(r22 > 0, torch.atan2(R[..., 1, 0], R[..., 0, 0]),
                           torch.atan2(-R[..., 1, 0], -R[..., 0, 0]))
    phi = torch.where(regular, phi, phi_lock)
    psi = torch.where(regular, psi, torch.zeros_like(psi))
    return phi, theta, psi


def rotation_grid(R: Tensor, shape: Sequence[int], shift_xyz: Tensor | None = None) -> Tensor:
    """Make the :func:`torch.nn.functional.grid_sample` grid of the module's rotation convention.

    Parameters
    ----------
    R : Tensor
        ``(B, 3, 3)`` rotation matrices (x-y-z).
    shape : sequence of int
        Volume shape ``(D, H, W)`` (z, y, x); input and output boxes are the same.
    shift_xyz : Tensor or None, optional
        Optional ``(B, 3)`` shift in voxels, (x, y, z) order.

    Returns
    -------
    Tensor
        ``(B, D, H, W, 3)`` normalised coordinates (``align_corners=True``).
    """
    D, H, W = (int(s) for s in shape)
    B = R.shape[0]
    dt = R.dtype if R.dtype in (torch.float32, torch.float64) else torch.float32
    dev = R.device
    # half-extent per axis in voxels, x-y-z order; a size-1 axis has no extent (avoid 0/0)
    half = torch.tensor([max(W - 1, 1) / 2, max(H - 1, 1) / 2, max(D - 1, 1) / 2],
                        dtype=dt, device=dev)
    Rt = R.to(dt).transpose(-1, -2)
    # p_in = Rᵀ (p_out − t) in centred voxel units (x-y-z); normalised u_in = p_in / half.
    # The output coordinates are separable, so each component of u_in is a sum of three
    # outer terms: cheaper than affine_grid's (B, D·H·W, 4) x (B, 4, 3) product on the CPU.
    cx = torch.arange(W, dtype=dt, device=dev) - (W - 1) / 2
    cy = torch.arange(H, dtype=dt, device=dev) - (H - 1) / 2
    cz = torch.arange(D, dtype=dt, device=dev) - (D - 1) / 2
    M = Rt / half.reshape(1, 3, 1)  # (B, 3 in, 3 out)
    off = torch.zeros(B, 3, dtype=dt, device=dev)
    if shift_xyz is not None:
        off = -(M @ shift_xyz.to(dt).reshape(B, 3, 1)).squeeze(-1)
    gx = (M[:, :, 0:1] * cx + off.unsqueeze(-1)).reshape(B, 3, 1, 1, W)
    gy = (M[:, :, 1:2] * cy).reshape(B, 3, 1, H, 1)
    gz = (M[:, :, 2:3] * cz).reshape(B, 3, D, 1, 1)
    # (B, 3, D, H, W) computed contiguously, returned as a (B, D, H, W, 3) view
    return ((gz + gy) + gx).permute(0, 2, 3, 4, 1)


def rotate_volumes(vol: Tensor, R: Tensor, shift_xyz: Tensor | None = None, *,
                   mode: str = "bilinear", padding_mode: str = "zeros") -> Tensor:
    """Rotate (and shift) a batch of volumes about the box centre (see the module conventions).

    Parameters
    ----------
    vol : Tensor
        ``(B, D, H, W)`` or ``(B, C, D, H, W)`` real volumes, any box shape.
    R : Tensor
        ``(B, 3, 3)`` rotation matrices acting on (x, y, z) coordinates (or ``(3, 3)``,
        broadcast).
    shift_xyz : Tensor or None, optional
        Optional ``(B, 3)`` shift in voxels, (x, y, z) order, applied after the rotation.
    mode : str, optional
        ``"bilinear"`` (trilinear in 3-D) or ``"nearest"``.
    padding_mode : str, optional
        What enters from outside the box (``"zeros"``, ``"border"``, ``"reflection"``).

    Returns
    -------
    Tensor
        Tensor of the same shape as ``vol``.

    Raises
    ------
    ValueError
        If ``vol`` is not 4-D or 5-D, or ``R`` or ``shift_xyz`` does not match the batch.
    """
    if vol.ndim not in (4, 5):
        raise ValueError(f"vol must be (B, D, H, W) or (B, C, D, H, W), got {tuple(vol.shape)}")
    B = vol.shape[0]
    if R.ndim == 2:
        R = R.expand(B, 3, 3)
    if R.shape != (B, 3, 3):
        raise ValueError(f"R must be ({B}, 3, 3), got {tuple(R.shape)}")
    if shift_xyz is not None and shift_xyz.shape != (B, 3):
        raise ValueError(f"shift_xyz must be ({B}, 3), got {tuple(shift_xyz.shape)}")
    x = vol if vol.ndim == 5 else vol.unsqueeze(1)
    grid = rotation_grid(R.to(x.device), x.shape[-3:],
                         None if shift_xyz is None else shift_xyz.to(x.device)).to(x.dtype)
    out = F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    return out if vol.ndim == 5 else out.squeeze(1)


def _gather_trilinear(flat: Tensor, index: Tensor, M: Tensor, off: Tensor,
                      shape: tuple[int, int, int]) -> Tensor:
    """Sample a zero-padded bank trilinearly at ``u = M p + off`` (:class:`VolumeBank`'s kernel).

    ``flat`` is the bank padded by one voxel before and two after each axis, flattened; ``index``
    ``(B,)`` picks the volume; ``M`` ``(B, 3, 3)`` maps centred output voxel coordinates (x-y-z)
    to input voxel indices ``u`` (x-y-z) with offset ``off`` ``(B, 3)``. Clamping ``u`` to
    ``[-1, n]`` per axis keeps every corner inside the padded bank and gives exactly the
    ``padding_mode="zeros"`` result of ``grid_sample`` (a clamped corner sits on the zero pad).
    Written as plain tensor algebra so that ``torch.compile`` fuses it into one loop.
    """
    D, H, W = shape
    B = M.shape[0]
    Pz, Py, Px = D + 3, H + 3, W + 3
    dt, dev = M.dtype, M.device
    cz = (torch.arange(D, dtype=dt, device=dev) - (D - 1) / 2).reshape(1, D, 1, 1)
    cy = (torch.arange(H, dtype=dt, device=dev) - (H - 1) / 2).reshape(1, 1, H, 1)
    cx = (torch.arange(W, dtype=dt, device=dev) - (W - 1) / 2).reshape(1, 1, 1, W)
    m = M.reshape(B, 9, 1, 1, 1)
    o = off.reshape(B, 3, 1, 1, 1)
    lim = (W, H, D)

    def comp(a: int) -> Tensor:
        u = m[:, 3 * a + 2] * cz + m[:, 3 * a + 1] * cy + (m[:, 3 * a] * cx + o[:, a])
        return u.clamp(-1.0, float(lim[a]))

    ux, uy, uz = comp(0), comp(1), comp(2)
    fx, fy, fz = ux.floor(), uy.floor(), uz.floor()
    wx, wy, wz = ux - fx, uy - fy, uz - fz
    lin = ((fz + 1) * (Py * Px) + (fy + 1) * Px + (fx + 1)).long() \
        + index.reshape(B, 1, 1, 1) * (Pz * Py * Px)
    sy, sz = Px, Py * Px

    def edge(o0: int) -> Tensor:  # linear along x between corners o0 and o0 + 1
        a = flat[lin + o0]
        return a + wx * (flat[lin + (o0 + 1)] - a)

    c0 = edge(0)
    c0 = c0 + wy * (edge(sy) - c0)
    c1 = edge(sz)
    c1 = c1 + wy * (edge(sz + sy) - c1)
    return c0 + wz * (c1 - c0)


class VolumeBank:
    """A bank of volumes ``(K, D, H, W)`` to rotate and shift by index, many times.

    ``bank.rotate(index, R, shift_xyz)`` equals ``rotate_volumes(volumes[index], R, shift_xyz)``
    (trilinear, zero padding, the module's conventions) to float rounding. Two implementations:

    * eager (default): ``grid_sample`` on ``volumes[index]``;
    * ``compile=True``: a trilinear gather straight from the zero-padded bank (no ``(B, D, H, W)``
      copy of the templates), fused by :func:`torch.compile` into one kernel (CPU: C++/OpenMP,
      CUDA: Triton); several times faster than ``grid_sample`` on the CPU. The first call
      compiles (tens of seconds on a CPU, cached on disk afterwards); if compilation fails the
      bank warns once and falls back to the eager path.

    Parameters
    ----------
    volumes : Tensor
        ``(K, D, H, W)`` volumes (z, y, x), on the device the rotations run on.
    compile : bool
        Use the compiled gather instead of ``grid_sample``.

    Raises
    ------
    ValueError
        If ``volumes`` is not 4-D.
    """

    def __init__(self, volumes: Tensor, *, compile: bool = False) -> None:
        if volumes.ndim != 4:
            raise ValueError(f"volumes must be (K, D, H, W), got {tuple(volumes.shape)}")
        self.volumes = volumes
        D, H, W = (int(s) for s in volumes.shape[1:])
        self.shape: tuple[int, int, int] = (D, H, W)
        self.compile = bool(compile)
        self._kernel: Callable[..., Tensor] | None = None
        self._flat: Tensor | None = None
        if self.compile:
            self._flat = F.pad(volumes, (1, 2, 1, 2, 1, 2)).contiguous().reshape(-1)
            try:
                with warnings.catch_warnings():  # compiler internals' deprecation notices
                    warnings.simplefilter("ignore", DeprecationWarning)
                    # the kernel's indices are in range by construction (coordinates clamped
                    # onto the zero pad; template indices checked in rotate() on the CPU), so
                    # the CPU kernel drops inductor's per-load bounds checks
                    self._kernel = torch.compile(
                        _gather_trilinear, dynamic=True,
                        options=({"assert_indirect_indexing": False}
                                 if volumes.device.type == "cpu" else None))
            except Exception as e:  # noqa: BLE001 - any backend failure: stay eager
                self._fallback(e)

    def _fallback(self, e: Exception) -> None:
        """Warn once and switch to the eager ``grid_sample`` path."""
        warnings.warn(f"torch.compile of the rotation kernel failed ({type(e).__name__}: {e}); "
                      "using grid_sample", RuntimeWarning, stacklevel=3)
        self.compile, self._kernel, self._flat = False, None, None

    def rotate(self, index: Tensor, R: Tensor, shift_xyz: Tensor | None = None) -> Tensor:
        """Rotate volume ``index[b]`` by ``R[b]``, then shift it by ``shift_xyz[b]``.

        Parameters
        ----------
        index : Tensor
            ``(B,)`` int64 indices into the bank, on the bank's device.
        R : Tensor
            ``(B, 3, 3)`` rotation matrices acting on (x, y, z) coordinates.
        shift_xyz : Tensor or None
            ``(B, 3)`` shifts in voxels, (x, y, z) order, applied after the rotation.

        Returns
        -------
        Tensor
            ``(B, D, H, W)`` rotated volumes, the bank's dtype.

        Raises
        ------
        ValueError
            If ``R`` does not match the batch; on the compiled CPU path also for an index
            outside the bank or a non-finite rotation or shift.
        """
        B = index.shape[0]
        if R.shape != (B, 3, 3):
            raise ValueError(f"R must be ({B}, 3, 3), got {tuple(R.shape)}")
        if self._kernel is not None and self._flat is not None and B > 0:
            if index.device.type == "cpu":  # the CPU kernel has no bounds checks (__init__)
                if not 0 <= int(index.min()) <= int(index.max()) < self.volumes.shape[0]:
                    raise ValueError(f"index must be in [0, {self.volumes.shape[0]}), got "
                                     f"values in [{int(index.min())}, {int(index.max())}]")
                if not bool(torch.isfinite(R).all()) or (
                        shift_xyz is not None and not bool(torch.isfinite(shift_xyz).all())):
                    raise ValueError("R and shift_xyz must be finite (NaN or inf found)")
            D, H, W = self.shape
            dt = self.volumes.dtype
            Rt = R.to(dt).transpose(1, 2)
            # u = Rᵀ (p − c − t) + c, with p − c the centred output coordinate (no host tensor:
            # a host-to-device copy would synchronise CUDA)
            off = torch.zeros(B, 3, dtype=dt, device=R.device)
            if shift_xyz is not None:
                off = off - (Rt @ shift_xyz.to(dt).reshape(B, 3, 1)).squeeze(-1)
            for a, size in enumerate((W, H, D)):
                off[:, a] += (size - 1) / 2
            try:
                with warnings.catch_warnings():  # compiler internals' deprecation notices
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return self._kernel(self._flat, index, Rt.contiguous(), off.contiguous(),
                                        self.shape)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001
                self._fallback(e)
        return rotate_volumes(self.volumes[index], R, shift_xyz)
