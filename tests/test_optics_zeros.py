"""The CTF's first zero in closed form, against its analytic root and a numerical search."""
from __future__ import annotations

import math

import pytest
import torch

from cryo_companion import optics


def _numerical_first_zero_per_nm(dz_um: float, cs_mm: float, k_max_per_nm: float = 2.0) -> float:
    """First sign change of the CTF along k on a fine grid (the chapter's old search)."""
    k = torch.linspace(1e-6, k_max_per_nm, 400001, dtype=torch.float64)
    c = optics.ctf(k / 10.0, dz_um, cs_mm)
    j = int(torch.nonzero(torch.sign(c[1:]) != torch.sign(c[:-1]))[0])
    return float(k[j])


def test_without_cs_the_zero_is_the_analytic_root() -> None:
    lam = float(optics.electron_wavelength_A(300.0))
    for dz in (-1.0, -3.0, -6.0, -12.0):
        # π λ |Δf| k² = π − arcsin A  (Δf in Å, k in 1/Å)
        k_A = math.sqrt((math.pi - math.asin(0.07)) / (math.pi * lam * abs(dz) * 1e4))
        assert optics.ctf_first_zero_per_nm(dz, 0.0) == pytest.approx(10 * k_A, rel=1e-12)
    # A = 0: the weak-phase estimate 1/sqrt(λ|Δf|)
    k0 = optics.ctf_first_zero_per_nm(-6.0, 0.0, amplitude_contrast=0.0)
    assert k0 == pytest.approx(10 / math.sqrt(lam * 6e4), rel=1e-12)


@pytest.mark.parametrize("dz,cs", [(-1.0, 2.7), (-6.0, 2.7), (-12.0, 1.5), (-0.2, 3.0),
                                   (0.0, 2.7), (0.5, 2.7)])
def test_matches_the_numerical_sign_change_and_the_ctf_vanishes_there(dz: float, cs: float) -> None:
    k0 = optics.ctf_first_zero_per_nm(dz, cs)
    assert k0 == pytest.approx(_numerical_first_zero_per_nm(dz, cs, 3 * k0), abs=2e-5 * 3 * k0)
    assert abs(float(optics.ctf(torch.tensor([k0 / 10], dtype=torch.float64), dz, cs))) < 1e-9


def test_more_underfocus_moves_the_zero_down() -> None:
    zeros = [optics.ctf_first_zero_per_nm(dz, 2.7) for dz in (-1.0, -3.0, -6.0, -12.0)]
    assert zeros == sorted(zeros, reverse=True)


def test_no_zero_and_bad_input_are_refused() -> None:
    with pytest.raises(ValueError, match="no zero"):
        optics.ctf_first_zero_per_nm(0.0, 0.0)
    with pytest.raises(ValueError, match="cs_mm"):
        optics.ctf_first_zero_per_nm(-6.0, -1.0)


def test_spherical_aberration_phase_is_the_cs_term_of_chi() -> None:
    k = 0.0365  # 1/Å, Nyquist at 13.68 Å
    _, b, _, _ = optics.ctf_coefficients(torch.tensor(0.0, dtype=torch.float64),
                                         torch.tensor(2.7, dtype=torch.float64),
                                         torch.tensor(0.0, dtype=torch.float64))
    assert optics.spherical_aberration_phase_rad(k, 2.7) == pytest.approx(float(b) * k**4)
    assert optics.spherical_aberration_phase_rad(2 * k, 1.0) == pytest.approx(
        16 * optics.spherical_aberration_phase_rad(k, 1.0))
    with pytest.raises(ValueError):
        optics.spherical_aberration_phase_rad(k, -1.0)
