"""SHREC 2020 evaluation (Gubins et al. 2020, Sec. 2.2, Tables 3-6): hand-worked cases and
properties."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import distance

from cryo_companion.papers.shrec2020.metrics import (
    CLASS_ORDER,
    check_class_mask,
    check_truth,
    dilate_occupancy,
    evaluate,
    evaluate_classification,
    evaluate_localisation,
)
from cryo_companion.papers.shrec2020.particles import particle_list
from cryo_companion.papers.shrec2020.worked_example import (
    EXPECTED,
    sphere_occupancy,
    worked_example,
)

# Two-particle scene: balls of radius 2 at x = 4 and x = 12, in a (z, y, x) = (7, 7, 20) box.
SHAPE = (7, 7, 20)
TRUTH = particle_list(["1bxn", "4d8q"], [[4, 3, 3], [12, 3, 3]])
OCC = sphere_occupancy(SHAPE, TRUTH.xyz, np.array([2, 2]))


def loc(dets, classes=None, **kw):
    classes = classes or ["1bxn"] * len(dets)
    return evaluate_localisation(particle_list(classes, dets), TRUTH, OCC, **kw)


def test_worked_example_every_counter():
    w = worked_example()
    r = evaluate_localisation(w.pred, w.truth, w.occupancy)
    for k, v in EXPECTED.items():
        got = tuple(getattr(r, k)) if k == "outcome" else getattr(r, k)
        assert got == pytest.approx(v) if isinstance(v, float) else got == v, k


def test_single_hit_is_tp():
    r = loc([[4, 3, 3]])
    assert (r.RR, r.TP, r.FP, r.FN, r.MH, r.RO) == (1, 1, 0, 1, 0, 0)
    assert r.recall == 0.5 and r.precision == 1.0 and r.miss_rate == 0.5
    assert r.f1 == pytest.approx(2 / 3)
    assert r.AD == 0.0


def test_double_hit_counts_once_in_tp_and_once_in_mh():
    r = loc([[4, 3, 3], [5, 3, 3], [4, 4, 3]])  # three detections on particle 1
    assert (r.RR, r.TP, r.MH, r.duplicates, r.FP, r.FN) == (3, 1, 1, 2, 0, 1)
    assert r.precision == pytest.approx(1 / 3)  # precision = TP / RR (Table 3 caption)
    assert tuple(r.outcome) == ("TP", "MH", "MH")


def test_duplicate_lines_are_separate_detections():
    r = loc([[12, 3, 3], [12, 3, 3]])
    assert (r.RR, r.TP, r.MH, r.duplicates) == (2, 1, 1, 1)


def test_detection_outside_volume_is_ro_only():
    r = loc([[4, 3, 3], [25, 3, 3], [4, 3, -2]])
    assert (r.RR, r.TP, r.FP, r.RO) == (3, 1, 0, 2)
    assert r.precision == pytest.approx(1 / 3)  # RO detections are in RR
    assert tuple(r.outcome) == ("TP", "RO", "RO")


def test_clip_mode_reproduces_the_benchmark_script():
    # Script: clamp into the volume, count as outside AND look up there.
    r = loc([[-1, 3, 3], [25, 3, 3]], outside="clip")  # -> (0,3,3) background; (19,3,3) background
    assert (r.RO, r.FP, r.TP) == (2, 2, 0)
    r = loc([[12, 3, 3], [12, 3, 9]], outside="clip")  # z=9 clamps to 6: (12,3,6) background
    assert (r.RO, r.TP, r.FP) == (1, 1, 1)
    r = loc([[12, 3, 3], [12, 3, 3.6 - 5]], outside="clip")
    assert r.RO == 1


def test_detection_on_background_is_fp():
    r = loc([[8, 3, 3]])  # between the two balls
    assert (r.TP, r.FP, r.FN) == (0, 1, 2)
    assert r.f1 == 0.0 and math.isnan(r.AD)


def test_boundary_voxel_is_a_hit_and_one_beyond_is_not():
    assert OCC[3, 3, 14] == 2 and OCC[3, 3, 15] == 0  # radius 2: x = 14 is the last voxel
    r = loc([[14, 3, 3]])
    assert r.TP == 1 and r.AD == 2.0
    assert loc([[15, 3, 3]]).FP == 1


def test_rounding_is_half_to_even_like_the_script():
    # Python round(14.5) = 14 (in), round(15.5) = 16 (out of the ball), numpy.rint agrees.
    assert loc([[14.5, 3, 3]]).TP == 1
    assert loc([[14.6, 3, 3]]).FP == 1
    assert loc([[-0.5, 3, 3]]).RO == 0  # rounds to -0.0 -> voxel 0, inside the volume
    assert loc([[19.5, 3, 3]]).RO == 1  # rounds to 20 = shape: outside


def test_ad_uses_the_first_detection_of_each_particle():
    r = loc([[5, 3, 3], [4, 3, 3], [12, 3, 5]])
    assert r.AD == pytest.approx((1.0 + 2.0) / 2)


def test_empty_prediction_list():
    r = loc(np.zeros((0, 3)), classes=[])
    assert (r.RR, r.TP, r.FP, r.FN, r.MH, r.RO) == (0, 0, 0, 2, 0, 0)
    assert r.recall == 0.0 and r.f1 == 0.0 and r.miss_rate == 1.0
    assert math.isnan(r.precision) and math.isnan(r.AD)
    assert r.table3_row()["Precision"] is None


def test_wrong_class_on_correct_location():
    pred = particle_list(["1bxn", "1bxn"], [[4, 3, 3], [12, 3, 3]])  # second is a 4d8q
    ev = evaluate(pred, TRUTH, OCC)
    assert ev.localisation.TP == 2  # localisation ignores the class
    c = ev.classification
    i, j = CLASS_ORDER.index("4d8q"), CLASS_ORDER.index("1bxn")
    assert c.confusion[i, j] == 1 and c.confusion[j, j] == 1
    assert c.f1["1bxn"] == pytest.approx(2 / 3)  # TP 1, FP 1
    assert c.f1["4d8q"] == 0.0
    assert c.precision["1bxn"] == 0.5 and c.recall["1bxn"] == 1.0
    assert math.isnan(c.f1["1s3x"])  # absent from truth and predictions


def test_classification_uses_first_hit_and_missed_particles_are_fn():
    pred = particle_list(["1bxn", "4d8q"], [[4, 3, 3], [4, 3, 3]])  # second hit ignored
    ev = evaluate(pred, TRUTH, OCC)
    c = ev.classification
    assert c.f1["1bxn"] == 1.0
    assert c.confusion[CLASS_ORDER.index("4d8q"), -1] == 1  # never hit: "not found"
    assert c.f1["4d8q"] == 0.0
    only_hits = evaluate(pred, TRUTH, OCC, count_missed_as_fn=False).classification
    assert math.isnan(only_hits.f1["4d8q"])
    assert c.mean_f1 == pytest.approx(0.5)
    assert c.group_f1 == {"small": pytest.approx(math.nan, nan_ok=True),
                          "medium": 1.0, "large": 0.0}
    assert c.cumulative_f1[-1] == pytest.approx(1.0)
    assert np.all(np.diff(c.cumulative_f1) >= 0)


def test_group_means_match_paper_table4_to_table6():
    from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES, size_group
    from cryo_companion.papers.shrec2020.paper_tables import TABLE4, TABLE6
    for name, row in TABLE4.items():
        for group in ("small", "medium", "large"):
            vals = [row[c.pdb_id] for c in SHREC2020_CLASSES if size_group(c.mw_kda) == group]
            assert np.mean(vals) == pytest.approx(TABLE6[name][group.capitalize()], abs=1.5e-3)


def test_dilation_closes_one_voxel_gap_and_max_label_wins():
    occ = np.zeros((3, 3, 5), dtype=np.int32)
    occ[1, 1, 1], occ[1, 1, 3] = 1, 2
    d = dilate_occupancy(occ)
    assert d[1, 1, 0] == 1 and d[1, 1, 2] == 2  # the gap voxel takes the larger label
    assert d[0, 0, 0] == 0  # the cross footprint does not reach diagonals
    truth = particle_list(["1bxn", "4d8q"], [[1, 1, 1], [3, 1, 1]])
    pred = particle_list(["1bxn"], [[0, 1, 1]])
    assert evaluate_localisation(pred, truth, occ).FP == 1
    assert evaluate_localisation(pred, truth, occ, dilate=True).TP == 1


def test_truth_outside_map_names_shapes():
    bad = particle_list(["1bxn", "4d8q"], [[4, 3, 3], [3, 3, 30]])
    with pytest.raises(ValueError,
                       match=r"outside the occupancy map of shape \(z, y, x\) = \(7, 7, 20\)"):
        check_truth(bad, OCC)


def test_swapped_axes_are_detected():
    truth = particle_list(["1bxn", "4d8q"], [[4, 10, 10], [14, 10, 10]])
    occ = sphere_occupancy((20, 20, 20), truth.xyz, np.array([2, 2]))
    evaluate_localisation(truth, truth, occ)  # right order: fine
    with pytest.raises(ValueError, match="swapped"):
        evaluate_localisation(truth, truth, np.ascontiguousarray(occ.transpose(2, 1, 0)))
    with pytest.raises(ValueError, match="outside"):  # non-cubic: the centres fall outside
        evaluate_localisation(TRUTH, TRUTH, np.ascontiguousarray(OCC.transpose(2, 1, 0)))


def test_labels_beyond_truth_list_are_refused():
    with pytest.raises(ValueError, match="label 2 but the truth list"):
        check_truth(particle_list(["1bxn"], [[4, 3, 3]]), OCC)


def test_float_occupancy_must_be_whole_numbers():
    with pytest.raises(ValueError, match="whole non-negative"):
        evaluate_localisation(TRUTH, TRUTH, OCC + 0.5)
    r = evaluate_localisation(TRUTH, TRUTH, OCC.astype(np.float32))
    assert r.TP == 2


def test_class_mask_checked_and_numbering_inferred():
    w = worked_example()
    mapping = check_class_mask(w.class_mask, w.occupancy, w.truth)
    assert mapping[9] == "1bxn" and mapping[12] == "4d8q"
    with pytest.raises(ValueError, match="shape"):
        check_class_mask(w.class_mask[:, :, :-1], w.occupancy, w.truth)
    bad = w.class_mask.copy()
    bad[w.occupancy == 2] = 9  # 4d8q voxels labelled like 1bxn
    with pytest.raises(ValueError, match="label 9 is used for both"):
        check_class_mask(bad, w.occupancy, w.truth)


def _reference(pred, truth, occ, outside):
    """The benchmark script's loop, one detection at a time (independent of the vectorised code)."""
    n = len(truth)
    found: list[list[float]] = [[] for _ in range(n + 1)]
    ro = fp = 0
    for (x, y, z) in pred.xyz:
        c = [round(float(v)) for v in (x, y, z)]
        cl = [max(min(v, s - 1), 0) for v, s in zip(c, occ.shape[::-1])]
        if cl != c:
            ro += 1
            if outside == "exclude":
                continue
        label = int(occ[cl[2], cl[1], cl[0]])
        if label == 0:
            fp += 1
            continue
        found[label].append(distance.euclidean(cl, truth.xyz[label - 1]))
    hits = [len(f) for f in found[1:]]
    tp = sum(h >= 1 for h in hits)
    ad = sum(f[0] for f in found[1:] if f) / tp if tp else math.nan
    return {"TP": tp, "FN": sum(h == 0 for h in hits), "MH": sum(h > 1 for h in hits),
            "FP": fp, "RO": ro, "duplicates": sum(hits) - tp, "AD": ad}


@st.composite
def scenes(draw):
    shape = tuple(draw(st.integers(2, 9)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(0, 12))
    occ = rng.integers(0, n + 1, size=shape).astype(np.int32)
    centres = np.stack([rng.integers(0, s, n) for s in shape[::-1]], axis=1).astype(float)
    occ[centres[:, 2].astype(int), centres[:, 1].astype(int), centres[:, 0].astype(int)] = \
        np.arange(1, n + 1)  # centres inside their own region (later ones may overwrite)
    truth = particle_list(rng.choice(CLASS_ORDER, n).tolist(), centres)
    m = draw(st.integers(0, 40))
    lo = np.array([-3.0] * 3)
    hi = np.array(shape[::-1], float) + 3
    pred = particle_list(rng.choice(CLASS_ORDER, m).tolist(), rng.uniform(lo, hi, (m, 3)))
    return pred, truth, occ


@settings(max_examples=60, deadline=None)
@given(scenes(), st.sampled_from(["exclude", "clip"]))
def test_property_counts_add_up_and_match_reference(scene, outside):
    pred, truth, occ = scene
    r = evaluate_localisation(pred, truth, occ, outside=outside, check=False)
    assert r.TP + r.FN == len(truth)
    if outside == "exclude":
        assert r.TP + r.FP + r.duplicates + r.RO == r.RR
    else:
        assert r.TP + r.FP + r.duplicates == r.RR
    assert r.MH <= r.duplicates and r.MH <= r.TP
    ref = _reference(pred, truth, occ, outside)
    for k, v in ref.items():
        got = getattr(r, k)
        assert (math.isnan(got) and math.isnan(v)) if isinstance(v, float) and math.isnan(v) \
            else got == pytest.approx(v), k
    c = evaluate_classification(pred, truth, r)
    assert c.confusion.sum() == len(truth)
    assert c.confusion[:, -1].sum() == r.FN


def test_grid_scene_is_consistent_and_counts_add_up():
    from cryo_companion.papers.shrec2020.worked_example import grid_scene
    occ, truth, pred = grid_scene(64, 30, 200, seed=1)
    assert occ.shape == (64, 64, 64) and int(occ.max()) == 30
    check_truth(truth, occ, min_centre_fraction=1.0)  # every centre in its own cube
    r = evaluate_localisation(pred, truth, occ)
    assert r.TP + r.FN == 30 and r.TP + r.FP + r.duplicates + r.RO == 200
