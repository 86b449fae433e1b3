"""``Simulator.simulate`` and ``sample`` as they were before the simulator was cut into named
steps (commit d26ccf1): the reference the refactored simulator must equal bit for bit, and a
comparison of two batches. Not a test module; imported by the simulator's tests."""
from __future__ import annotations

import torch


def reference_simulate(sim, template_index, rotations, params, generator, *,
                        amplitude_contrast=0.07, voltage_kv=300.0, return_stages=False,
                        need_clean=True, validate=True):
    """``Simulator.simulate`` as it was before it was cut into named steps (commit d26ccf1), on
    the simulator's unchanged low-level helpers: the reference the steps must equal bit for bit."""
    from cryo_companion.rotation import matrix_to_euler_zyz
    from cryo_companion.simulate.subtomogram import (
        DEFAULT_PARAMS,
        REQUIRED_PARAMS,
        SimBatch,
        _kx_major_empty,
        _var_rfft,
    )

    idx = torch.as_tensor(template_index, device=sim.device).long().reshape(-1)
    n = idx.numel()
    R = torch.as_tensor(rotations, dtype=torch.float32, device=sim.device)
    p = {k: sim._param(params, k, n) for k in (*REQUIRED_PARAMS, *DEFAULT_PARAMS)}
    if validate:
        sim._check_params(p)
    shift = torch.stack([p["shift_x_vox"], p["shift_y_vox"], p["shift_z_vox"]], 1)
    density = sim._bank.rotate(idx, R, shift)
    mask = density > sim._mask_thr[idx].reshape(-1, 1, 1, 1)
    dims, N = (-3, -2, -1), sim.box ** 3

    def inv(F_):
        return torch.fft.irfftn(F_, s=sim._shape, dim=dims)

    S = torch.fft.rfftn(density, dim=dims)
    Z = sim._white_noise_band(n, generator)
    g = p["intensity_scale"]
    sign = -1.0 if sim.invert_contrast else 1.0

    def wedge_ctf():
        wedge = sim._wedge(sim._param(p, "wedge_deg", n))
        c_t = sim._ctf(sim._param(p, "defocus_um", n), sim._param(p, "cs_mm", n),
                       sim._param(p, "bfactor_A2", n), amplitude_contrast, voltage_kv)
        return wedge, c_t

    if sim._filter is not None and n > 0:
        a, b, bq, phase = sim._ctf_coeffs(p["defocus_um"], p["cs_mm"], p["bfactor_A2"],
                                          amplitude_contrast, voltage_kv)
        H = sim._filter(sim._k2, sim._k4, sim._static, sim._wedge(p["wedge_deg"]), a, b, bq,
                        phase, (sign * g).reshape(-1, 1, 1, 1))
    else:
        wedge, c_t = wedge_ctf()
        H = c_t.mul_(wedge).mul_(sim._static)
        H.mul_(g.reshape(-1, 1, 1, 1))
    C = torch.mul(S, H, out=_kx_major_empty(S.shape, S.dtype, sim.device))
    M = sim._w_half * sim.box ** 2
    Hb = H.permute(0, 3, 1, 2).reshape(n, M).index_select(1, sim._noise_index)
    HN = Z * Hb if return_stages else Z.mul_(Hb)
    var_c = _var_rfft(C, N, sim.box % 2 == 0)
    var_n = sim._var_band(HN, N).clamp_min(1e-30)
    finite = torch.isfinite(p["snr"])
    sigma = torch.where(finite, torch.sqrt(var_c / (var_n * torch.where(
        finite, p["snr"], torch.ones_like(p["snr"])))), torch.zeros_like(var_c))
    final = (inv(C + sigma.reshape(-1, 1, 1, 1) * sim._scatter_band(HN))
             / g.reshape(-1, 1, 1, 1)) if return_stages else None
    C[:, 0, 0, 0] += (C[:, 0, 0, 0].real / (g * N) * (1 - g)
                      + p["intensity_offset"] * torch.sqrt(var_c) / g) * N
    clean = inv(C) if need_clean or return_stages else None
    C.permute(0, 3, 1, 2).view(n, M).index_add_(1, sim._noise_index,
                                                 HN.mul_(sigma.reshape(-1, 1)))
    noisy = inv(C)
    stages = None
    if return_stages:
        sig = sigma.reshape(-1, 1, 1, 1)
        white = inv(sim._scatter_band(Z)) * sig
        X = S + torch.fft.rfftn(white, dim=dims)
        wedge, c_t = wedge_ctf()
        m_t = sim._mtf
        stages = {"density": density, "noise": white, "density+noise": density + white,
                  "wedge": inv(X * wedge), "ctf": inv(X * wedge * c_t),
                  "mtf": inv(X * wedge * c_t * m_t), "bandlimit": final}
        if not need_clean:
            clean = None
    phi, theta, psi = matrix_to_euler_zyz(R.double())
    out_params = {"template_index": idx, **p, "euler_phi_deg": torch.rad2deg(phi).float(),
                  "euler_theta_deg": torch.rad2deg(theta).float(),
                  "euler_psi_deg": torch.rad2deg(psi).float()}
    return SimBatch(noisy=noisy, clean=clean, mask=mask, label=sim.labels[idx],
                    params=out_params, stages=stages)


def reference_sample(sim, n, preset, generator, **kw):
    """``Simulator.sample`` before the steps: the same draws, then the reference simulate."""
    from cryo_companion.rotation import random_rotation_matrices
    from cryo_companion.simulate.randomization import sample_params

    params = sample_params(preset, n, generator, sim.device)
    idx = torch.randint(len(sim.volumes), (n,), generator=generator, device=sim.device)
    R = random_rotation_matrices(n, generator, device=sim.device)
    return reference_simulate(sim, idx, R, params, generator, validate=False,
                               amplitude_contrast=preset.amplitude_contrast,
                               voltage_kv=preset.voltage_kv, **kw)


def assert_same_batch(a, b):
    for f in ("noisy", "clean", "mask", "label"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None and y is None) or torch.equal(x, y), f
    assert a.params.keys() == b.params.keys()
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert (a.stages is None) == (b.stages is None)
    if a.stages is not None:
        assert a.stages.keys() == b.stages.keys()
        assert all(torch.equal(a.stages[k], b.stages[k]) for k in a.stages)
