"""Context randomization: neighbours packed around the target of each subtomogram, batched.

A subtomogram cut from a real (or a crowded simulated) tomogram is never one complex alone in an
empty box: its neighbours, whole or cut by the box, and membranes fill it to the edge. A
:class:`ContextBank` holds density volumes of possible neighbours (non-target complexes, copies
of the classes, membrane fragments: which ones is the paper module's choice, e.g.
:func:`cryo_companion.papers.che2019.context.context_bank`), and :meth:`ContextBank.pack` places
them around a batch of targets. The simulator adds the neighbours' density to the target's before
the optics, so they pass through the same CTF, MTF, wedge and noise; the ground-truth mask stays
the target's own.

Choices (stated here, tested in ``tests/test_simulate_context.py``)
-------------------------------------------------------------------
* **Masks.** A neighbour's mask is its rendered density above ``mask_level`` times its
  template's maximum: the rule of the simulator's target mask.
* **Occupancy** of a box is the fraction of its voxels inside the neighbours' masks (the
  target's mask not counted; the parts of a neighbour outside the box not counted).
* **No overlap, touching allowed.** A neighbour is placed only where its mask shares no voxel
  with the target's mask or with a neighbour placed before (the masks of a box are disjoint);
  densities below the masks may add up where objects touch.
* **Poses.** Each call renders a pool of posed neighbours, shared by the batch: every volume
  of the bank once plus ``pool_per_sample`` per sample drawn with the bank's weights, each with
  its own uniform rotation (SO(3)) and sub-voxel offset. Candidates are pool entries drawn with
  the bank's weights (per entry: its volume's weight over its copies in the pool) and placed at
  integer positions, so a box may hold the same posed neighbour twice, at different places.
* **Placement.** Rounds; in each, every sample that still needs occupancy draws ``candidates``
  neighbours (more when few samples are left: about ``n × candidates`` per round, at most 8
  times as many per sample) and ``proposals`` centres for each, drawn uniformly in the box
  enlarged on each side by ``margin`` times the neighbour's mask radius (neighbours cut by the
  box edge are common, as in a tomogram). A candidate takes the first centre at which every
  8th of its mask voxels is free (a cheap preselection), and is kept if its whole mask is free
  there; candidates of the same sample that would overlap each other are resolved in their
  drawing order (the first claims the voxels, the later ones wait for the next round).
  Neighbours are not slid into contact: they touch where chance puts them.
* **Reaching the drawn occupancy φ.** Candidates are drawn among the pool entries whose whole
  mask is less than twice the missing occupancy (those that could be accepted anywhere), and
  accepted, in drawing order, while each brings the occupancy closer to φ (its in-box volume
  ``v`` is less than twice what is still missing). A sample is done when no pool entry could be
  accepted, so when the rounds suffice the measured occupancy is within half the largest
  neighbour's volume of φ (above) or half the smallest's (below): the packing's granularity.
  ``max_rounds`` bounds the work (later rounds only work on the samples still open); a sample
  that runs out of rounds (a box near jamming: random packing without sliding fills a box to
  about 40 %, target included) keeps less: the measured value is always returned
  (``ContextPack.fraction``).
* **Rendering.** Each pose is rotated (trilinear, :class:`cryo_companion.rotation.VolumeBank`)
  in a sub-box just large enough for its support (its voxels above :data:`SUPPORT_LEVEL` of its
  maximum: the renderer drops only density below that), then kept as two sparse lists, its mask
  voxels (for the overlap tests) and its support voxels with their density (added to the box
  when accepted): the same as rotating and shifting the whole template in the box.

Batching: the rounds, the candidates' ranks within a round (the in-order acceptance), the waves
of density additions (one neighbour per sample each) and the few sub-box sizes of the pool's
rendering are Python loops; every operation inside them acts on all the samples of the batch at
once (no loop over samples), on the CPU and CUDA alike. The random draws have fixed shapes
(every sample draws in every round, finished or not), so a seed gives the same batch; a batch
whose every φ is 0 draws nothing.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from cryo_companion.rotation import VolumeBank, random_rotation_matrices
from cryo_companion.structures.membrane import membrane_patch

__all__ = ["SUPPORT_LEVEL", "ContextBank", "ContextPack", "membrane_fragments"]

#: Fraction of a volume's maximum below which the renderer drops its density (for the che2019
#: bank the dropped density is < 0.5 % of each neighbour's mass).
SUPPORT_LEVEL = 1e-2
#: Sub-box sizes are rounded up to a multiple of this (fewer sizes, fewer kernel launches).
_SIZE_STEP = 4
#: An unclaimed voxel of the packer's claim grid.
_NO_CLAIM = 2**31 - 1
#: The proposals of a candidate are first compared on every this-many-th of its mask voxels.
_PRESELECT_STRIDE = 8
#: When few samples are left open, each gets up to this many times ``candidates`` per round.
_TAIL_FACTOR = 8


@dataclass
class ContextPack:
    """Neighbours packed around a batch of targets.

    Attributes
    ----------
    density : torch.Tensor
        ``(n, D, D, D)`` float32 density of the neighbours (zero where there are none).
    mask : torch.Tensor
        ``(n, D, D, D)`` bool union of the neighbours' masks, disjoint from the target's.
    fraction : torch.Tensor
        ``(n,)`` float32 occupancy measured: ``mask.mean()`` per sample.
    count : torch.Tensor
        ``(n,)`` int64 number of neighbours placed (whole or cut by the box).
    smallest_voxels : int
        Mask volume (voxels) of the smallest posed neighbour of the call (0 if none was drawn):
        a sample stops when even it would overshoot, so the measured occupancy falls short of
        the drawn one by at most half of it (when the rounds suffice).
    largest_voxels : int
        Mask volume of the largest posed neighbour: the occupancy overshoots by less than half
        of it.
    """

    density: Tensor
    mask: Tensor
    fraction: Tensor
    count: Tensor
    smallest_voxels: int = 0
    largest_voxels: int = 0


def _radius_vox(volumes: Tensor, level: Tensor) -> Tensor:
    """Return per volume the largest distance (voxels) of a voxel above ``level`` from the centre.

    The centre is the rotation centre ``(D − 1) / 2``.
    """
    D = volumes.shape[-1]
    ax = torch.arange(D, dtype=torch.float32, device=volumes.device) - (D - 1) / 2
    r = torch.sqrt(ax.reshape(-1, 1, 1) ** 2 + ax.reshape(1, -1, 1) ** 2
                   + ax.reshape(1, 1, -1) ** 2)
    inside = volumes > level.reshape(-1, 1, 1, 1)
    return torch.where(inside, r, torch.zeros_like(r)).reshape(len(volumes), -1).amax(1)


def _resize(vol: Tensor, size: int) -> Tensor:
    """Crop or zero-pad ``(K, D, D, D)`` to ``size`` about the centre (same parity as D)."""
    D = vol.shape[-1]
    if size <= D:
        a = (D - size) // 2
        return vol[:, a:a + size, a:a + size, a:a + size].contiguous()
    p = (size - D) // 2
    return torch.nn.functional.pad(vol, (p, p, p, p, p, p))


def _render_size(radius_vox: float, box: int) -> int:
    """Return the sub-box edge that holds a support of ``radius_vox`` under any rotation.

    The edge is at least ``2 r + 5``: a rotated support voxel lies within ``r`` of the centre,
    the sub-voxel shift adds up to √3/2 and trilinear interpolation one voxel. It is rounded up to
    a multiple of :data:`_SIZE_STEP` with the parity of ``box`` (centres must coincide).
    """
    need = math.ceil(2 * radius_vox + 5)
    size = _SIZE_STEP * math.ceil(need / _SIZE_STEP)
    return size + ((size - box) % 2)


def _segments(lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Return, for segments of ``lengths``, each element's segment and position in it."""
    seg = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
    start = torch.cumsum(lengths, 0) - lengths
    return seg, torch.arange(len(seg), device=lengths.device) - start[seg]


@dataclass
class _Pool:
    """Posed neighbours of one call, as sparse voxel lists (CSR by entry).

    ``volume`` ``(M,)`` bank index of each entry; ``weight`` ``(M,)`` its draw weight;
    ``reach`` ``(M,)`` half-extent of its centre draws (voxels); the mask voxels ``mask_zyx``
    ``(T, 3)`` (box coordinates at zero shift) start at ``mask_ptr[e]``, ``mask_len[e]`` of them;
    the support voxels ``sup_zyx`` with their density ``sup_val`` likewise.
    """

    volume: Tensor
    weight: Tensor
    reach: Tensor
    mask_zyx: Tensor
    mask_ptr: Tensor
    mask_len: Tensor
    sup_zyx: Tensor
    sup_val: Tensor
    sup_ptr: Tensor
    sup_len: Tensor

    def voxels(self, which: str, entry: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Return the mask or support voxels of ``entry`` ``(m,)``.

        Per voxel: its segment (index into ``entry``), its position in the segment, its zyx
        and (support) its density.
        """
        ptr, length = ((self.mask_ptr, self.mask_len) if which == "mask"
                       else (self.sup_ptr, self.sup_len))
        seg, pos = _segments(length[entry])
        src = ptr[entry][seg] + pos
        if which == "mask":
            return seg, pos, self.mask_zyx[src], None
        return seg, pos, self.sup_zyx[src], self.sup_val[src]


class ContextBank:
    """Volumes that can be neighbours in a box, and the batched packer that places them.

    Parameters
    ----------
    volumes : torch.Tensor
        ``(K, D, D, D)`` densities (z-y-x, the simulator's scale and voxel size), each centred
        on the rotation centre ``(D − 1) / 2``; ``D`` is the simulator's box.
    kinds : sequence of str
        What each volume is (e.g. ``"complex"``, ``"class copy"``, ``"membrane fragment"``).
    weights : sequence of float or torch.Tensor or None
        ``(K,)`` sampling weights of the volumes (>= 0, positive sum; default equal).
    names : sequence of str or None
        What each volume was made from (structure entry, ...), for provenance.
    mask_level : float
        A neighbour's mask is its density above this fraction of its maximum, in (0, 1).
    max_rounds : int
        Placement rounds at most.
    candidates : int
        Candidate neighbours per unfinished sample and round.
    proposals : int
        Centres tried per candidate; the first where it fits is taken.
    margin : float
        Centres are drawn in the box enlarged on each side by ``margin`` times the neighbour's
        mask radius (0: centres inside the box).
    pool_per_sample : float
        Posed neighbours rendered per sample of a call, beyond one per bank volume.
    device : torch.device or str or None
        Where the bank lives (default: the device of ``volumes``); the simulator's device.
    compile : bool
        Rotate with the compiled gather of :class:`cryo_companion.rotation.VolumeBank`.
    """

    def __init__(self, volumes: Tensor, kinds: Sequence[str], *,
                 weights: Sequence[float] | Tensor | None = None,
                 names: Sequence[str] | None = None, mask_level: float = 0.25,
                 max_rounds: int = 128, candidates: int = 8, proposals: int = 8,
                 margin: float = 0.5, pool_per_sample: float = 2.0,
                 device: torch.device | str | None = None, compile: bool = False) -> None:
        vols = torch.as_tensor(volumes)
        self.device = torch.device(device) if device is not None else vols.device
        vols = vols.to(self.device, torch.float32).contiguous()
        K = _check_bank(vols, kinds, names, weights, mask_level)
        _check_packing(max_rounds, candidates, proposals, margin, pool_per_sample)
        w = torch.ones(K, dtype=torch.float64) if weights is None else torch.as_tensor(
            weights, dtype=torch.float64).cpu()
        self.volumes = vols
        self.box = int(vols.shape[-1])
        self.kinds = [str(k) for k in kinds]
        self.names = [str(x) for x in names] if names is not None else [""] * K
        self.weights = (w / w.sum()).tolist()
        self.mask_level = float(mask_level)
        self.max_rounds = int(max_rounds)
        self.candidates = int(candidates)
        self.proposals = int(proposals)
        self.margin = float(margin)
        self.pool_per_sample = float(pool_per_sample)
        vmax = vols.reshape(K, -1).amax(1)
        self._thr = self.mask_level * vmax
        self._sup = SUPPORT_LEVEL * vmax
        #: mask volume (voxels) of each neighbour whole and unrotated
        self.mask_voxels = (vols > self._thr.reshape(-1, 1, 1, 1)).reshape(K, -1).sum(1).cpu()
        self._reach = self.box / 2 + self.margin * _radius_vox(vols, self._thr)
        self._w = torch.as_tensor(self.weights, dtype=torch.float64, device=self.device)
        sizes = [_render_size(r, self.box) for r in _radius_vox(vols, self._sup).tolist()]
        self._bucket_of = torch.tensor([sorted(set(sizes)).index(s) for s in sizes],
                                       device=self.device)
        self._local_of = torch.zeros(K, dtype=torch.int64, device=self.device)
        self._banks: list[tuple[int, VolumeBank]] = []
        for size in sorted(set(sizes)):
            members = [k for k, s in enumerate(sizes) if s == size]
            self._local_of[members] = torch.arange(len(members), device=self.device)
            self._banks.append((size, VolumeBank(_resize(vols[members], size), compile=compile)))

    def __len__(self) -> int:
        """Return the number of volumes."""
        return len(self.kinds)

    def describe(self) -> dict[str, object]:
        """Return what the bank holds: per kind its entries and total weight (JSON-friendly).

        Returns
        -------
        dict
            ``{"kinds": {kind: {"names": [...], "weight": w}}, "mask_level": ...,
            "max_rounds": ..., "candidates": ..., "proposals": ..., "margin": ...,
            "pool_per_sample": ...}``.
        """
        kinds: dict[str, dict[str, object]] = {}
        for kind in dict.fromkeys(self.kinds):
            mine = [i for i, x in enumerate(self.kinds) if x == kind]
            kinds[kind] = {"names": [self.names[i] for i in mine],
                           "weight": round(sum(self.weights[i] for i in mine), 6)}
        return {"kinds": kinds, "mask_level": self.mask_level, "max_rounds": self.max_rounds,
                "candidates": self.candidates, "proposals": self.proposals, "margin": self.margin,
                "pool_per_sample": self.pool_per_sample}

    # ------------------------------------------------------------------ packing
    def pack(self, target_mask: Tensor, fraction: Tensor,
             generator: torch.Generator | None = None) -> ContextPack:
        """Pack neighbours around the targets of a batch (see the module docstring).

        Parameters
        ----------
        target_mask : torch.Tensor
            ``(n, D, D, D)`` bool masks of the targets; neighbours never overlap them.
        fraction : torch.Tensor
            ``(n,)`` occupancy to reach per sample, fraction of the box volume in [0, 1).
        generator : torch.Generator or None
            Generator of every draw, on the bank's device.

        Returns
        -------
        ContextPack
            The neighbours (density, masks) and the occupancy measured.

        Raises
        ------
        ValueError
            ``target_mask`` is not `(n, D, D, D)` for the bank's box D, or ``fraction`` is not
            `(n,)`.
        """
        n, D = target_mask.shape[0], self.box
        if target_mask.shape[1:] != (D, D, D):
            raise ValueError(f"target_mask must be (n, {D}, {D}, {D}), got "
                             f"{tuple(target_mask.shape)}")
        phi = torch.as_tensor(fraction, dtype=torch.float64, device=self.device).reshape(-1)
        if phi.shape != (n,):
            raise ValueError(f"fraction must have shape ({n},), got {tuple(phi.shape)}")
        st = _State(target_mask.to(self.device), phi * D ** 3)
        if not bool((2 * st.room() > float(self.mask_voxels.min())).any()):
            return st.result()  # nothing to place: no draws
        pool = self._pool(len(self) + math.ceil(self.pool_per_sample * n), generator)
        v_min = float(pool.mask_len.min())
        st.extremes = (int(v_min), int(pool.mask_len.max()))
        for _ in range(self.max_rounds):
            room = st.room()
            e, t = self._draw(pool, room, generator)
            rows = (2 * room > v_min).nonzero().reshape(-1)  # samples still open
            if rows.numel() == 0:
                break
            # the fewer samples still open, the more candidates each (about n C per round)
            c = min(_TAIL_FACTOR * self.candidates, self.candidates * n // rows.numel())
            self._place(st, pool, rows, e[rows, :c], t[rows, :c])
        return st.result()

    def _pool(self, M: int, generator: torch.Generator | None) -> _Pool:
        """Render ``M`` posed neighbours: every bank volume once, the rest drawn by weight."""
        dev, K, D = self.device, len(self), self.box
        u = torch.rand(M - K, generator=generator, device=dev, dtype=torch.float64)
        drawn = torch.searchsorted(torch.cumsum(self._w, 0), u, right=True).clamp_max(K - 1)
        vol_of = torch.cat([torch.arange(K, device=dev), drawn])
        R = random_rotation_matrices(M, generator, device=dev)
        frac = torch.rand(M, 3, generator=generator, device=dev) - 0.5  # sub-voxel offset, x-y-z
        parts: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
        for b, (size, bank) in enumerate(self._banks):
            sel = (self._bucket_of[vol_of] == b).nonzero().reshape(-1)
            if sel.numel() == 0:
                continue
            k = vol_of[sel]
            vol = bank.rotate(self._local_of[k], R[sel], frac[sel])  # (m, S, S, S)
            nz = (vol > self._sup[k].reshape(-1, 1, 1, 1)).nonzero()  # (T, 4): i, z, y, x
            val = vol[nz[:, 0], nz[:, 1], nz[:, 2], nz[:, 3]]
            in_mask = val > self._thr[k][nz[:, 0]]
            parts.append((sel[nz[:, 0]], nz[:, 1:] + (D - size) // 2, val, in_mask))
        entry, zyx, val, in_mask = (torch.cat(x) for x in zip(*parts))
        order = torch.argsort(entry, stable=True)  # group the voxels by entry
        entry, zyx, val, in_mask = entry[order], zyx[order], val[order], in_mask[order]
        sup_len = torch.bincount(entry, minlength=M)
        mask_len = torch.bincount(entry[in_mask], minlength=M)
        copies = torch.bincount(vol_of, minlength=K).to(torch.float64)
        return _Pool(volume=vol_of, weight=self._w[vol_of] / copies[vol_of],
                     reach=self._reach[vol_of], mask_zyx=zyx[in_mask],
                     mask_ptr=torch.cumsum(mask_len, 0) - mask_len, mask_len=mask_len,
                     sup_zyx=zyx, sup_val=val, sup_ptr=torch.cumsum(sup_len, 0) - sup_len,
                     sup_len=sup_len)

    def _draw(self, pool: _Pool, room: Tensor, generator: torch.Generator | None
              ) -> tuple[Tensor, Tensor]:
        """Draw, for every sample, pool entries that could fit and centres for them.

        Returns the entries ``(n, C)`` and integer centre shifts ``(n, C, P, 3)`` (voxels from
        the box centre, z-y-x; ``P`` proposals per candidate), with ``C`` the most candidates a
        round can use (:data:`_TAIL_FACTOR` times ``candidates``): fixed shapes, fixed draws.
        """
        dev, n, C, P = self.device, room.numel(), _TAIL_FACTOR * self.candidates, self.proposals
        fits = pool.mask_len.reshape(1, -1) < 2 * room.reshape(-1, 1)
        cum = torch.cumsum(torch.where(fits, pool.weight, torch.zeros_like(pool.weight)), 1)
        u = torch.rand(n, C, generator=generator, device=dev, dtype=torch.float64)
        e = torch.searchsorted(cum, u * cum[:, -1:], right=True)
        e = e.clamp_max(len(pool.volume) - 1)
        reach = pool.reach[e].reshape(n, C, 1, 1)
        t = (2 * torch.rand(n, C, P, 3, generator=generator, device=dev) - 1) * reach
        return e, torch.round(t).long()

    def _place(self, st: _State, pool: _Pool, rows: Tensor, e: Tensor, t: Tensor) -> None:
        """Try the candidates of ``rows`` (``(m, C)`` entries, ``(m, C, P, 3)`` centres)."""
        (m, C), D, dev = e.shape, self.box, self.device
        q_row = rows.repeat_interleave(C)  # candidate q = i C + c belongs to sample rows[i]
        t = t.reshape(m * C, self.proposals, 3)
        seg, pos, zyx, _ = pool.voxels("mask", e.reshape(-1))  # mask voxels of each candidate
        best = self._proposal(st, q_row, seg, pos, zyx, t)
        # the chosen proposal, tested on every mask voxel
        shift = t[torch.arange(m * C, device=dev), best]  # (q, 3)
        at = zyx + shift[seg]
        inside = ((at >= 0) & (at < D)).all(-1)
        hit = torch.zeros(m * C, device=dev).index_add_(0, seg, st.taken(q_row[seg], at, inside))
        v = torch.zeros(m * C, device=dev).index_add_(0, seg, inside.to(hit.dtype))
        fit = (hit == 0) & (v > 0) & (v < 2 * st.room()[q_row])
        # candidates of one sample must not overlap each other: the lowest c claims a voxel
        mine = (fit[seg] & inside).nonzero().reshape(-1)
        lost = st.claim(q_row[seg[mine]], at[mine], (seg[mine] % C).to(torch.int32))
        beaten = torch.zeros(m * C, device=dev).index_add_(0, seg[mine], lost.to(v.dtype))
        accepted, acc = self._accept((fit & (beaten == 0)).reshape(m, C),
                                     v.reshape(m, C).double(), st.room()[rows])
        keep = (accepted.reshape(-1)[seg] & inside).nonzero().reshape(-1)
        if keep.numel() == 0:
            return
        st.mark(q_row[seg[keep]], at[keep])
        # the density of the accepted, added in waves of one neighbour per sample (no index
        # repeats within a wave: a deterministic sum on CUDA too)
        qs = accepted.reshape(-1).nonzero().reshape(-1)
        wave = (accepted.cumsum(1) - 1).reshape(-1)[qs]
        s_seg, _, s_zyx, s_val = pool.voxels("support", e.reshape(-1)[qs])
        assert s_val is not None
        s_row, s_zyx, s_wave = q_row[qs][s_seg], s_zyx + shift[qs][s_seg], wave[s_seg]
        for w in range(int(wave.max()) + 1):
            here = s_wave == w
            st.add_density(s_row[here], s_zyx[here], s_val[here])
        st.voxels.index_add_(0, rows, acc)
        st.count.index_add_(0, rows, accepted.sum(1))

    def _proposal(self, st: _State, q_row: Tensor, seg: Tensor, pos: Tensor, zyx: Tensor,
                  t: Tensor) -> Tensor:
        """Return, per candidate, the first of its proposals ``t`` ``(q, P, 3)`` that looks free.

        That is: every :data:`_PRESELECT_STRIDE`-th of its mask voxels is free there and one at
        least is in the box (the first proposal if none looks free).
        """
        P, q = t.shape[1], t.shape[0]
        sub = (pos % _PRESELECT_STRIDE == 0).nonzero().reshape(-1)
        s_seg = seg[sub]
        at = zyx[sub].unsqueeze(0) + t[s_seg].transpose(0, 1)  # (P, Ts, 3)
        inside = ((at >= 0) & (at < self.box)).all(-1)
        taken = st.taken(q_row[s_seg].expand(P, -1), at, inside)
        hit = torch.zeros(P, q, device=t.device).index_add_(1, s_seg, taken)
        seen = torch.zeros(P, q, device=t.device).index_add_(1, s_seg, inside.to(hit.dtype))
        return ((hit == 0) & (seen > 0)).to(torch.uint8).argmax(0)

    @staticmethod
    def _accept(win: Tensor, v: Tensor, room: Tensor) -> tuple[Tensor, Tensor]:
        """Accept, in candidate order, each winner that still brings the occupancy closer to φ.

        That is: its ``v`` is less than twice what is still missing. Return the ``(m, C)``
        acceptances and the voxels added per sample ``(m,)``.
        """
        acc = torch.zeros_like(room)
        accepted = torch.zeros_like(win)
        for c in range(win.shape[1]):
            accepted[:, c] = win[:, c] & (v[:, c] < 2 * (room - acc))
            acc += torch.where(accepted[:, c], v[:, c], torch.zeros_like(acc))
        return accepted, acc


class _State:
    """The packer's bookkeeping for a batch.

    ``occ`` ``(n, D + 1, D + 1, D + 1)`` marks the voxels taken (the targets' and the
    neighbours' masks): index ``D`` on any axis stands for "outside the box", a face that is
    never marked, so looking a voxel outside the box up finds it free. ``density`` ``(n, D, D,
    D)`` is the neighbours' density.
    """

    def __init__(self, target: Tensor, goal_vox: Tensor) -> None:
        n, D = target.shape[0], target.shape[-1]
        self.D, self.G = D, D + 1
        self.goal = goal_vox  # (n,) float64: occupancy to reach, in voxels
        self.target = target
        self.occ = torch.zeros(n, D + 1, D + 1, D + 1, device=target.device)
        self.occ[:, :D, :D, :D] = target.to(self.occ.dtype)
        self.density = torch.zeros(n, D, D, D, device=target.device)
        self.voxels = torch.zeros(n, dtype=torch.float64, device=target.device)
        self.count = torch.zeros(n, dtype=torch.int64, device=target.device)
        self._claims: Tensor | None = None
        self.extremes = (0, 0)  # smallest and largest posed mask (voxels)

    def room(self) -> Tensor:
        """Return the voxels still missing to the goal ``(n,)`` (float64, may be negative)."""
        return self.goal - self.voxels

    def _flat(self, row: Tensor, zyx: Tensor, size: int) -> Tensor:
        """Return flat indices of ``zyx`` in ``(n, size, size, size)`` grids, per ``row``."""
        return ((row * size + zyx[..., 0]) * size + zyx[..., 1]) * size + zyx[..., 2]

    def taken(self, row: Tensor, zyx: Tensor, inside: Tensor) -> Tensor:
        """Return 1 where ``zyx`` (of sample ``row``) is taken, 0 where free or outside."""
        at = torch.where(inside.unsqueeze(-1), zyx, torch.full_like(zyx, self.D))
        return self.occ.view(-1)[self._flat(row, at, self.G)]

    def claim(self, row: Tensor, zyx: Tensor, rank: Tensor) -> Tensor:
        """Let candidates claim in-box voxels ``zyx`` of sample ``row``: the lowest ``rank`` wins.

        Returns True where a voxel was won by a lower rank (the claim is lost).
        """
        if self._claims is None:
            self._claims = torch.full((self.occ.numel(),), _NO_CLAIM, dtype=torch.int32,
                                      device=self.occ.device)
        idx = self._flat(row, zyx, self.G)
        self._claims.scatter_reduce_(0, idx, rank, "amin")
        lost = self._claims[idx] != rank
        self._claims[idx] = _NO_CLAIM  # ready for the next round
        return lost

    def mark(self, row: Tensor, zyx: Tensor) -> None:
        """Mark in-box voxels ``zyx`` of sample ``row`` taken."""
        self.occ.view(-1).index_fill_(0, self._flat(row, zyx, self.G), 1.0)

    def add_density(self, row: Tensor, zyx: Tensor, val: Tensor) -> None:
        """Add ``val`` at the in-box voxels among ``zyx`` of sample ``row``.

        One neighbour per row and call, so no index repeats and the sum is deterministic.
        """
        inside = ((zyx >= 0) & (zyx < self.D)).all(-1)
        self.density.view(-1).index_add_(0, self._flat(row[inside], zyx[inside], self.D),
                                         val[inside])

    def result(self) -> ContextPack:
        """Return the packed neighbours as a :class:`ContextPack`."""
        D = self.D
        taken = self.occ[:, :D, :D, :D] > 0
        return ContextPack(density=self.density, mask=taken & ~self.target,
                           fraction=(self.voxels / D ** 3).float(), count=self.count,
                           smallest_voxels=self.extremes[0], largest_voxels=self.extremes[1])


def _check_bank(vols: Tensor, kinds: Sequence[str], names: Sequence[str] | None,
                weights: Sequence[float] | Tensor | None, mask_level: float) -> int:
    """Raise ``ValueError`` for an invalid bank; return the number of volumes."""
    if vols.ndim != 4 or len({*vols.shape[1:]}) != 1 or vols.shape[0] == 0:
        raise ValueError(f"volumes must be (K, D, D, D) with K >= 1, got {tuple(vols.shape)}")
    K = vols.shape[0]
    if not bool(torch.isfinite(vols).all()):
        raise ValueError("context volumes contain NaN or inf")
    if bool((vols.reshape(K, -1).amax(1) <= 0).any()):
        raise ValueError("every context volume needs a positive maximum (an empty box?)")
    if len(kinds) != K or (names is not None and len(names) != K):
        raise ValueError(f"kinds (and names) must list one entry per volume ({K})")
    if weights is not None:
        w = torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (K,) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) \
                or not float(w.sum()) > 0:
            raise ValueError(f"weights must be {K} finite values >= 0 with a positive sum, "
                             f"got {w.tolist()}")
    if not 0 < mask_level < 1:
        raise ValueError(f"mask_level must be in (0, 1), got {mask_level}")
    return K


def _check_packing(max_rounds: int, candidates: int, proposals: int, margin: float,
                   pool_per_sample: float) -> None:
    """Raise ``ValueError`` for invalid packing settings."""
    if not (isinstance(max_rounds, int) and max_rounds >= 1):
        raise ValueError(f"max_rounds must be an integer >= 1, got {max_rounds!r}")
    if not (isinstance(candidates, int) and candidates >= 1):
        raise ValueError(f"candidates must be an integer >= 1, got {candidates!r}")
    if not (isinstance(proposals, int) and proposals >= 1):
        raise ValueError(f"proposals must be an integer >= 1, got {proposals!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be finite and >= 0, got {margin}")
    if not (math.isfinite(pool_per_sample) and pool_per_sample >= 0):
        raise ValueError(f"pool_per_sample must be finite and >= 0, got {pool_per_sample}")


def membrane_fragments(n: int, box: int, voxel_size_A: float, seed: int = 0, *,
                       radius_fraction: tuple[float, float] = (0.25, 0.45),
                       edge_vox: float = 1.0) -> np.ndarray:
    """Cut ``n`` discs of lipid bilayer, to be neighbours in a box.

    Each is a patch of :func:`cryo_companion.structures.membrane.membrane_patch` (random
    orientation and curvature, no embedded protein) whose mid-surface passes through the box
    centre, multiplied by a spherical window about that centre: radius uniform in
    ``radius_fraction`` times ``box``, edge a Gaussian error function of width ``edge_vox``. Placed
    off-centre by the packer, a fragment crosses part of the box like the membrane of a nearby
    vesicle or organelle.

    Parameters
    ----------
    n : int
        Number of fragments (>= 1).
    box : int
        Box edge (voxels).
    voxel_size_A : float
        Voxel size in Å.
    seed : int
        Seed of every draw (same seed, same fragments).
    radius_fraction : tuple of float
        Range of the window's radius, fraction of ``box`` (within (0, 0.5]).
    edge_vox : float
        Width (voxels, > 0) of the window's soft edge.

    Returns
    -------
    np.ndarray
        ``(n, box, box, box)`` float32, z-y-x, Da/Å³.

    Raises
    ------
    ValueError
        ``n`` is not an integer >= 1, ``radius_fraction`` does not satisfy 0 < lo <= hi <= 0.5, or
        ``edge_vox`` <= 0.
    """
    lo, hi = radius_fraction
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not 0 < lo <= hi <= 0.5:
        raise ValueError(f"radius_fraction {radius_fraction} must satisfy 0 < lo <= hi <= 0.5")
    if not edge_vox > 0:
        raise ValueError(f"edge_vox must be > 0, got {edge_vox}")
    rng = np.random.default_rng(seed)
    ax = torch.arange(box, dtype=torch.float64) - box // 2  # membrane_patch's centre voxel
    r = torch.sqrt(ax.reshape(-1, 1, 1) ** 2 + ax.reshape(1, -1, 1) ** 2
                   + ax.reshape(1, 1, -1) ** 2)
    out = np.empty((n, box, box, box), dtype=np.float32)
    for i in range(n):
        patch = membrane_patch(box, voxel_size_A, rng, max_offset_A=0.0, protein=None)
        radius = rng.uniform(lo, hi) * box
        window = 0.5 * torch.special.erfc((r - radius) / (math.sqrt(2.0) * edge_vox))
        out[i] = patch * window.numpy()
    return out
