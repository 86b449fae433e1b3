"""SHREC 2020's template matching finds planted complexes, their classes and orientations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryo_companion import rotation
from cryo_companion.detect import template_matching as tm
from cryo_companion.papers.shrec2020 import tm as shrec_tm
from cryo_companion.papers.shrec2020.dataset import recipe, templates_for
from cryo_companion.papers.shrec2020.methods import class_label

CLASSES = ("3qm1", "1bxn", "4d8q")


@pytest.fixture(scope="module")
def templates() -> dict:
    return templates_for(recipe("smoke", classes=CLASSES))


def test_prepared_template_mask_and_crowther_step(templates: dict) -> None:
    s = shrec_tm.TMSettings()
    t = templates["4d8q"]
    p = shrec_tm.prepare_template("4d8q", t.density, t.radius_vox, s)
    n = p.template.shape[0]
    assert n % 2 == 1 and p.mask.shape == p.template.shape
    assert p.mask_radius_vox == pytest.approx(t.radius_vox)
    # the first CTF zero at 3 um is at 2.46 nm: TRiC (17 nm across) is searched in ~8 deg steps
    assert s.resolution_vox() == pytest.approx(2.462, abs=0.01)
    assert p.step_deg == pytest.approx(math.degrees(s.resolution_vox() / (2 * t.radius_vox)))
    assert p.n_rotations == tm.n_rotations_for_step(p.step_deg)
    capped = shrec_tm.prepare_template("4d8q", t.density, t.radius_vox,
                                       shrec_tm.TMSettings(max_rotations=500))
    assert capped.n_rotations == 500 and capped.step_deg > p.step_deg
    assert "capped at 500" in capped.step_rule
    assert float(p.template.sum()) < 0                        # mass dark, as the tomogram
    with pytest.raises(ValueError, match="unknown class"):
        shrec_tm.prepare_template("xxxx", t.density, t.radius_vox, s)


def _scene(templates: dict, s: shrec_tm.TMSettings):
    """Two copies of each class, turned by rotations of the search's own sets, plus noise."""
    vol = torch.zeros(44, 72, 72)
    where = {"4d8q": [(22, 16, 16), (22, 54, 50)], "1bxn": [(20, 16, 52), (24, 52, 16)],
             "3qm1": [(22, 36, 34), (12, 36, 60)]}
    truth = []
    for c, centres in where.items():
        p = shrec_tm.prepare_template(c, templates[c].density, templates[c].radius_vox, s)
        R = tm.rotation_set(p.n_rotations)
        for j, (z, y, x) in enumerate(centres):
            k = (7 * j + 3 * class_label(c)) % len(R)
            box = rotation.rotate_volumes(p.template[None], R[k:k + 1])[0]
            h = box.shape[0] // 2
            vol[z - h:z + h + 1, y - h:y + h + 1, x - h:x + h + 1] += box
            truth.append((c, (z, y, x), R[k]))
    g = torch.Generator().manual_seed(0)
    vol += 0.5 * float(vol[vol != 0].std()) * torch.randn(vol.shape, generator=g)
    return vol, truth


def test_search_finds_each_particle_its_class_and_its_orientation(templates: dict) -> None:
    s = shrec_tm.TMSettings(angular_step_deg=40.0, n_candidates=6, batch_size=16)
    vol, truth = _scene(templates, s)
    found = shrec_tm.search(vol, templates, s, classes=CLASSES)
    assert set(found.record["per_class"]) == set(CLASSES)
    for c, zyx, R in truth:
        cand = found.candidates[c]
        d = np.sqrt(((cand.zyx[:2] - np.array(zyx)) ** 2).sum(1))
        j = int(np.argmin(d))
        assert d[j] <= 1.0, (c, zyx, cand.zyx[:3])            # among the class's top two
        tr = float(torch.einsum("ij,ij->", found.orientations[c][j].double(), R.double()))
        assert math.degrees(math.acos(min(1.0, (tr - 1) / 2))) < 1.0
    lists = shrec_tm.tm_lists(found, n_per_class=2)
    for name in ("TM-T", "TM-F"):
        det = lists[name]
        assert len(det) == 6
        assert det.label.tolist() == [12, 12, 9, 9, 2, 2]      # heaviest class first
    assert found.record["rotations_total"] == 3 * tm.n_rotations_for_step(40.0)
    assert all(v["correlation_s"] > 0 for v in found.record["per_class"].values())
