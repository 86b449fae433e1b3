"""SHREC 2020's method recipes and template matching's TM-T / TM-F rules on hand-worked lists."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cryo_companion.detect.detections import Detections
from cryo_companion.papers.shrec2020.methods import (
    BIGGEST_FIRST,
    RECIPES,
    class_label,
    class_radius_vox,
    select_tm,
    to_particle_list,
)
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER


def _cand(points: list[tuple[float, float, float]], scores: list[float]) -> Detections:
    return Detections.make(points, [1] * len(points), scores)


def _two_classes() -> dict[str, Detections]:
    # class 4d8q (heavier) and 1s3x; x positions only, candidates best first
    return {"4d8q": _cand([(0, 0, 0), (0, 0, 3), (0, 0, 20)], [0.9, 0.8, 0.7]),
            "1s3x": _cand([(0, 0, 1), (0, 0, 10), (0, 0, 40)], [0.6, 0.5, 0.4])}


def test_tm_t_takes_the_top_n_of_each_class_heaviest_first() -> None:
    det = select_tm(_two_classes(), filtered=False, n_per_class=2, order=("4d8q", "1s3x"))
    assert det.zyx[:, 2].tolist() == [0, 3, 1, 10]
    assert det.label.tolist() == [12, 12, 1, 1]
    assert det.score.tolist() == [0.9, 0.8, 0.6, 0.5]


def test_tm_f_skips_candidates_closer_than_the_sum_of_radii() -> None:
    radii = {"4d8q": 2.0, "1s3x": 1.0}
    det = select_tm(_two_classes(), filtered=True, n_per_class=2, order=("4d8q", "1s3x"),
                    radius_vox=radii)
    # 4d8q: x=0 accepted; x=3 is 3 < 2 + 2 from it: skipped; x=20 accepted.
    # 1s3x: x=1 is 1 < 2 + 1 from x=0: skipped; x=10 accepted; x=40 accepted.
    assert det.zyx[:, 2].tolist() == [0, 20, 10, 40]
    assert det.label.tolist() == [12, 12, 1, 1]
    # a class with too few acceptable candidates gives fewer than N: with a 1s3x radius of 25
    # every 1s3x candidate lies within 2 + 25 of an accepted 4d8q (x=1, 10 from 0; 40 from 20)
    short = select_tm(_two_classes(), filtered=True, n_per_class=3, order=("4d8q", "1s3x"),
                      radius_vox={"4d8q": 2.0, "1s3x": 25.0})
    assert short.zyx[:, 2].tolist() == [0, 20]


def test_order_matters_to_which_class_comes_first() -> None:
    det = select_tm(_two_classes(), filtered=True, n_per_class=1, order=("1s3x", "4d8q"),
                    radius_vox={"4d8q": 2.0, "1s3x": 1.0})
    # 1s3x first: x=1 accepted; 4d8q: x=0 (1 < 3) and x=3 (2 < 3) skipped, x=20 accepted
    assert det.zyx[:, 2].tolist() == [1, 20]
    with pytest.raises(ValueError, match="no candidates"):
        select_tm(_two_classes(), filtered=False)


def test_default_order_radii_and_labels() -> None:
    assert BIGGEST_FIRST[0] == "4d8q" and BIGGEST_FIRST[-1] == "1s3x"
    assert class_label("1s3x") == 1 and class_label("4d8q") == 12
    # TRiC's Table 1 volume 2152 nm^3 -> a sphere of 8.01 nm: 8.01 voxels at 1 nm
    assert class_radius_vox("4d8q") == pytest.approx((3 * 2152 / (4 * math.pi)) ** (1 / 3) * 1)
    assert class_radius_vox("4d8q", 5.0) == pytest.approx(2 * class_radius_vox("4d8q"))
    assert class_radius_vox("1s3x", kind="effective") == pytest.approx(2.56)
    with pytest.raises(ValueError, match="unknown"):
        class_radius_vox("1s3x", kind="huge")


def test_particle_list_of_detections() -> None:
    det = Detections.make([(5, 6, 7), (1, 2, 3)], [1, 12])
    pl = to_particle_list(det, z_offset=156)
    assert pl.classes == ("1s3x", "4d8q")
    np.testing.assert_array_equal(pl.xyz, [[7, 6, 161], [3, 2, 157]])
    with pytest.raises(ValueError, match="outside"):
        to_particle_list(Detections.make([(0, 0, 0)], [13]))


def test_recipes_are_the_papers() -> None:
    assert set(RECIPES) == {"deepfinder", "yopo", "umc", "tm"}
    df, yp, um = RECIPES["deepfinder"], RECIPES["yopo"], RECIPES["umc"]
    assert (df.training["patch"], df.training["batch_size"]) == (56, 25)
    assert df.training["loss"] == {"name": "tversky", "alpha": 0.5, "beta": 0.5}
    assert df.inference["bandwidth_vox_binned"] == 5 and df.inference["bin"] == 2
    assert (yp.training["box"], yp.training["n_background"]) == (24, 20000)
    assert (yp.inference["threshold"], yp.inference["min_distance_vox"]) == (0.99, 14)
    assert (um.training["patch"], um.training["stride"]) == (64, 16)      # 75 % overlap
    assert (um.training["loss"]["alpha"], um.training["loss"]["beta"]) == (0.7, 0.3)
    assert (um.inference["min_size"], um.inference["min_separation_vox"]) == (10, 5)
    for r in RECIPES.values():
        assert r.to_dict()["key"] == r.key
        if r.network:
            assert r.training["n_classes"] == len(CLASS_ORDER) + 1
