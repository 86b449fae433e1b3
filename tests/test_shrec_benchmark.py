"""Benchmark mode (``outside="script"``): the official SHREC 2020 evaluation script's rules.

The expected numbers below are worked out by hand from the script's rules: the occupancy mask
(200 slices) is dilated, then zero-padded by 156 slices on each side (a 512-slice volume), the
truth moves to z + 156, a submission with any rounded z < 156 or > 356 is moved by +156 as a
whole, and each detection is clamped into the 512 slices (RO if clamped) and looked up there.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import distance

from cryo_companion.papers.shrec2020.metrics import (
    BENCHMARK_SCRIPT,
    CLASS_ORDER,
    dilate_occupancy,
    evaluate,
    evaluate_localisation,
    script_occupancy,
    script_z_shift,
)
from cryo_companion.papers.shrec2020.particles import particle_list

# Mask frame (z, y, x) = (200, 8, 8): three boxes, one touching z = 0, one touching z = 199.
SHAPE = (200, 8, 8)
TRUTH = particle_list(["1bxn", "4d8q", "1s3x"], [[3, 3, 1], [3, 3, 198], [5, 5, 100]])
OCC = np.zeros(SHAPE, dtype=np.int32)
OCC[0:3, 2:5, 2:5] = 1
OCC[197:200, 2:5, 2:5] = 2
OCC[99:102, 5:7, 5:7] = 3


def bench(dets, classes=None, **kw):
    classes = classes or ["1bxn"] * len(dets)
    return evaluate_localisation(particle_list(classes, dets), TRUTH, OCC, **BENCHMARK_SCRIPT,
                                 **kw)


def test_benchmark_settings():
    assert BENCHMARK_SCRIPT == {"outside": "script", "dilate": True}


def test_mask_frame_submission_with_detections_in_the_padding():
    dets = [[3, 3, 1],       # a: -> z 157, particle 1
            [3, 3, -1],      # b: -> 155, padding (dilated before padding: 0): FP, not RO
            [3, 3, 200],     # c: -> 356, padding: FP
            [3, 3, -200],    # d: -> -44, clamped to 0: RO and FP
            [3, 3, 400],     # e: -> 556, clamped to 511: RO and FP
            [-2, 3, 198],    # f: x clamped to 0, (0, 3, 354) is background: RO and FP
            [5, 5, 100],     # g: particle 3
            [3, 3, 198.5]]   # h: rounds to 198 (half to even): particle 2
    r = bench(dets)
    assert r.z_shift == 156
    assert (r.RR, r.TP, r.FP, r.FN, r.MH, r.RO, r.duplicates) == (8, 3, 5, 0, 0, 3, 0)
    assert tuple(r.outcome) == ("TP", "FP", "FP", "FP", "FP", "FP", "TP", "TP")
    assert r.AD == 0.0 and r.precision == pytest.approx(3 / 8) and r.recall == 1.0
    # the default rules differ on b, c, d, e, f: outside the 200 slices, so only RO
    d = evaluate_localisation(particle_list(["1bxn"] * 8, dets), TRUTH, OCC)
    assert (d.TP, d.FP, d.RO) == (3, 0, 5)
    # and clamping into the mask's own slices hits the face particles with b, c, d, e
    c = evaluate_localisation(particle_list(["1bxn"] * 8, dets), TRUTH, OCC, outside="clip",
                              dilate=True)
    assert (c.TP, c.FP, c.RO, c.MH, c.duplicates) == (3, 1, 5, 2, 4)


def test_script_frame_submission_is_not_shifted():
    r = bench([[3, 3, 157], [5, 5, 256], [3, 3, 354]])
    assert r.z_shift == 0 and (r.TP, r.FP, r.RO) == (3, 0, 0) and r.AD == 0.0
    # z = 356 is not above 356: no shift, and slice 356 is padding
    r = bench([[3, 3, 157], [5, 5, 256], [3, 3, 354], [3, 3, 356]])
    assert r.z_shift == 0 and (r.TP, r.FP, r.RO) == (3, 1, 0)


def test_one_detection_above_356_shifts_the_whole_submission():
    r = bench([[3, 3, 157], [5, 5, 256], [3, 3, 354], [3, 3, 357]])
    # -> 313 (mask slice 157: background), 412 and 510 (padding), 513 (clamped to 511: RO)
    assert r.z_shift == 156
    assert (r.TP, r.FP, r.RO, r.FN) == (0, 4, 1, 3)
    assert math.isnan(r.AD) and r.f1 == 0.0


def test_one_detection_below_156_shifts_the_whole_submission():
    # a script-frame submission with one detection in the lower padding
    r = bench([[3, 3, 157], [5, 5, 256], [3, 3, 155]])
    # -> 313 (background), 412 (padding), 311 (background)
    assert r.z_shift == 156 and (r.TP, r.FP, r.RO) == (0, 3, 0)


def test_dilation_happens_before_the_padding():
    occ = script_occupancy(OCC)
    assert occ.shape == SHAPE
    dil = dilate_occupancy(occ)
    assert dil[3, 3, 3] == 1 and dil[196, 3, 3] == 2      # dilation grows the particles in z
    padded = np.pad(dil, ((156, 156), (0, 0), (0, 0)))
    assert padded[155, 3, 3] == 0 and padded[356, 3, 3] == 0  # ... but not into the padding
    # a face-touching particle: mask z = -1 and 200 are misses, z = 3 and 196 are dilated hits
    r = bench([[3, 3, -1], [3, 3, 200], [3, 3, 3], [3, 3, 196]])
    assert tuple(r.outcome) == ("FP", "FP", "TP", "TP")
    # without dilation, mask z = 3 is background
    r = evaluate_localisation(particle_list(["1bxn"] * 2, [[3, 3, 3], [3, 3, 2]]), TRUTH, OCC,
                              outside="script", dilate=False)
    assert tuple(r.outcome) == ("FP", "TP")


def test_an_already_padded_map_gives_the_same_numbers():
    padded = np.pad(OCC, ((156, 156), (0, 0), (0, 0)))
    dets = particle_list(["1bxn"] * 3, [[3, 3, -1], [3, 3, 200], [3, 3, 3]])
    a = evaluate_localisation(dets, TRUTH, OCC, **BENCHMARK_SCRIPT)
    b = evaluate_localisation(dets, TRUTH, padded, **BENCHMARK_SCRIPT)
    assert tuple(a.outcome) == tuple(b.outcome) == ("FP", "FP", "TP")
    bad = padded.copy()
    bad[10, 0, 0] = 1
    with pytest.raises(ValueError, match="pads the mask's 200 slices by 156 itself"):
        evaluate_localisation(dets, TRUTH, bad, **BENCHMARK_SCRIPT)


def test_truth_must_be_whole_numbers_in_benchmark_mode():
    truth = particle_list(["1bxn", "4d8q", "1s3x"], [[3, 3, 1.5], [3, 3, 198], [5, 5, 100]])
    with pytest.raises(ValueError, match="int"):
        evaluate_localisation(truth, truth, OCC, **BENCHMARK_SCRIPT)


def test_auto_shift_rule():
    assert script_z_shift(np.array([156, 356])) == 0
    assert script_z_shift(np.array([155, 300])) == 156
    assert script_z_shift(np.array([200, 357])) == 156
    assert script_z_shift(np.array([], dtype=int)) == 0


def test_evaluate_records_the_frame_and_scores_the_classes():
    pred = particle_list(["1bxn", "1bxn", "1s3x"], [[3, 3, 1], [3, 3, 198], [3, 3, 250]])
    ev = evaluate(pred, TRUTH, OCC, class_mask=np.array([0, 9, 12, 1])[OCC], **BENCHMARK_SCRIPT)
    f = ev.settings["script_frame"]
    assert f["z_offset"] == 156 and f["volume_slices"] == 512
    assert f["mask_slices_in_volume"] == [156, 355] and f["predictions_z_shift"] == 156
    c = ev.classification
    assert c.f1["1bxn"] == pytest.approx(2 / 3)      # TP 1, FP 1 (the 4d8q called 1bxn)
    assert c.f1["4d8q"] == 0.0 and c.f1["1s3x"] == 0.0  # 1s3x: not found (its detection in padding)
    assert ev.localisation.FP == 1


def test_dilation_equals_skimage_default():
    from skimage.morphology import dilation

    rng = np.random.default_rng(0)
    occ = rng.integers(0, 5, (6, 7, 8)) * (rng.random((6, 7, 8)) < 0.2)
    assert np.array_equal(dilate_occupancy(occ), dilation(occ))


# --- the script's loop, one detection at a time, written from its rules -----------------------

def _script(pred_rows, truth_rows, mask):
    """Reference: the evaluation script's steps on (class, x, y, z) rows; returns its numbers."""
    from skimage.morphology import dilation

    gt = [("0", 0, 0, 0)] + [(c, int(x), int(y), int(z) + 156) for c, x, y, z in truth_rows]
    occ = np.pad(dilation(mask), ((156, 156), (0, 0), (0, 0)))
    pp = [(c, round(float(x)), round(float(y)), round(float(z)))  # int(round(float(v)))
          for c, x, y, z in pred_rows]
    if pp and (min(p[3] for p in pp) < 156 or max(p[3] for p in pp) > 356):
        pp = [(c, x, y, z + 156) for c, x, y, z in pp]
    found: list[list] = [[] for _ in gt]
    clipped = 0
    hi = np.array(occ.shape[::-1]) - 1
    for c, *co in pp:
        px, py, pz = np.clip(co, (0, 0, 0), hi)
        if [px, py, pz] != co:
            clipped += 1
        gid = int(occ[pz, py, px])
        found[gid].append((c, distance.euclidean((px, py, pz), gt[gid][1:])))
    hits = [len(f) for f in found[1:]]
    tp = sum(h >= 1 for h in hits)
    out = {"RR": len(pp), "TP": tp, "FP": len(found[0]), "FN": sum(h == 0 for h in hits),
           "MH": sum(h > 1 for h in hits), "RO": clipped,
           "AD": sum(f[0][1] for f in found[1:] if f) / tp if tp else math.nan}
    true_cls = [g[0] for g in gt[1:]]
    pred_cls = [f[0][0] if f else "0" for f in found[1:]]
    f1 = {}
    for k in CLASS_ORDER:
        t = sum(a == k and b == k for a, b in zip(true_cls, pred_cls))
        fp = sum(a != k and b == k for a, b in zip(true_cls, pred_cls))
        fn = sum(a == k and b != k for a, b in zip(true_cls, pred_cls))
        f1[k] = 2 * t / (2 * t + fp + fn) if 2 * t + fp + fn else math.nan
    return out, f1


@st.composite
def scenes(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y, x = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    n = draw(st.integers(1, 8))
    mask = np.zeros((200, y, x), dtype=np.int32)
    centres = []
    for i in range(n):
        c = (int(rng.integers(0, x)), int(rng.integers(0, y)),
             int(rng.choice([0, 199, *rng.integers(0, 200, 3)])))
        mask[max(0, c[2] - 1):c[2] + 2, c[1], c[0]] = i + 1
        centres.append(c)
    for i, c in enumerate(centres):          # each centre in its own region (later ones win)
        mask[c[2], c[1], c[0]] = i + 1
    truth = [(str(rng.choice(CLASS_ORDER)), *c) for c in centres]
    m = draw(st.integers(0, 20))
    frame = draw(st.sampled_from(["mask", "script"]))
    off = 0 if frame == "mask" else 156
    pred = [(str(rng.choice(CLASS_ORDER)), float(rng.uniform(-3, x + 3)),
             float(rng.uniform(-3, y + 3)), float(rng.uniform(-170, 370) + off)) for _ in range(m)]
    # half-integers too, where the rounding rule matters
    pred += [(c, round(a) + 0.5, round(b), round(z) + 0.5) for c, a, b, z in pred[:3]]
    return pred, truth, mask


@settings(max_examples=60, deadline=None)
@given(scenes())
def test_property_benchmark_mode_equals_the_script(scene):
    pred_rows, truth_rows, mask = scene
    ref, ref_f1 = _script(pred_rows, truth_rows, mask)
    pred = particle_list([r[0] for r in pred_rows], np.array([r[1:] for r in pred_rows],
                                                             dtype=float).reshape(-1, 3))
    truth = particle_list([r[0] for r in truth_rows], [r[1:] for r in truth_rows])
    ev = evaluate(pred, truth, mask, **BENCHMARK_SCRIPT)
    r = ev.localisation
    for k, v in ref.items():
        got = getattr(r, k)
        if isinstance(v, float) and math.isnan(v):
            assert math.isnan(got), k
        else:
            assert got == pytest.approx(v), k
    for k, v in ref_f1.items():
        got = ev.classification.f1[k]
        assert (math.isnan(got) and math.isnan(v)) or got == pytest.approx(v), k
