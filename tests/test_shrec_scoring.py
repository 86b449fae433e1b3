"""Scoring on the test model (whole or a central crop), compact records, template matching's cap."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.detect.detections import Detections
from cryo_companion.papers.shrec2020 import scoring
from cryo_companion.papers.shrec2020.tm import measured_ms_per_rotation, rotation_cap
from tests.shrec_tiny import PARTICLES, write_tiny_models


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("tiny_scoring"), (9,))[0]


def _truth_det(parts) -> Detections:
    zyx = np.array([p[1:4] for p in parts], dtype=np.float64)
    return Detections.make(zyx, np.array([p[0] for p in parts]), np.ones(len(parts)))


def test_the_truth_scores_one_in_both_modes(folder) -> None:
    view = scoring.test_view(folder)
    evs = scoring.score(_truth_det(PARTICLES), view)
    assert set(evs) == {"default", "benchmark_script"}
    assert evs["default"].localisation.f1 == pytest.approx(1.0)
    rec = scoring.evaluation_record(evs["default"])
    assert "outcome" not in rec["localisation"]
    with pytest.raises(ValueError, match="unknown modes"):
        scoring.score(_truth_det(PARTICLES), view, modes=("strict",))


def test_a_crop_keeps_its_particles_and_ignores_the_others(folder) -> None:
    view = scoring.test_view(folder, crop_yx=24)          # y, x in [12, 36)
    inside = [p for p in PARTICLES if 12 <= p[2] < 36 and 12 <= p[3] < 36]
    assert len(view.truth.classes) == len(inside) == 3     # class 6 at y = 36 is cut off
    assert view.ignore is not None and view.ignore[16, 22, 0] and not view.ignore[10, 0, 0]
    assert view.offset_zyx == (0, 12, 12) and view.tomogram.shape == (32, 24, 24)
    # a detection on a particle cut by the crop is neither hit nor false positive
    shifted = [(lab, z, y - 12, x - 12, h) for lab, z, y, x, h in inside]
    cut = Detections.make(np.array([[16.0, 22.0, 0.0]]), np.array([6]), np.ones(1))
    ev = scoring.score(_truth_det(shifted), view, modes=("default",))["default"]
    both = Detections.make(np.concatenate([_truth_det(shifted).zyx, cut.zyx]),
                           np.array([*[p[0] for p in inside], 6]), np.ones(4))
    ev2 = scoring.score(both, view, modes=("default",))["default"]
    assert ev.localisation.f1 == ev2.localisation.f1 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="crop_yx"):
        scoring.test_view(folder, crop_yx=100)


def test_records_round_trip() -> None:
    det = Detections.make(np.array([[1.0, 2.5, 3.25]]), np.array([4]), np.array([0.5]),
                          np.array([7]))
    back = scoring.detections_from_record(scoring.detections_record(det))
    np.testing.assert_allclose(back.zyx, det.zyx)
    assert back.label.tolist() == [4] and back.size.tolist() == [7]
    a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    np.testing.assert_allclose(scoring.unpack_slice(scoring.pack_slice(a)), a, atol=1e-3)
    lab = np.array([[0, 12], [3, 1]], dtype=np.int16)
    assert np.array_equal(scoring.unpack_slice(scoring.pack_slice(lab)), lab)


def test_rotation_cap_by_hand() -> None:
    rot = {"a": 100, "b": 10, "c": 1000}
    assert rotation_cap(10.0, 1.0, rot) is None              # 1,110 ms fit in 10 s
    # 0.5 s at 1 ms: 500 rotations; cap c: min(100, c) + 10 + min(1000, c) <= 500 -> c = 390
    assert rotation_cap(0.5, 1.0, rot) == 390
    assert rotation_cap(0.15, 1.0, rot) == 70                # 70 + 10 + 70 = 150
    assert rotation_cap(0.001, 1.0, rot) == 1
    with pytest.raises(ValueError, match="> 0"):
        rotation_cap(0.0, 1.0, rot)


def test_measured_time_per_rotation_only_on_its_volume() -> None:
    rec = {"data": {"cuda": {"shape": [200, 512, 512], "device_name": "H200", "commit": "abc",
                             "best": {"batch_size": 8, "ms_per_rotation": 3.5}}}}
    ms, batch, source = measured_ms_per_rotation(rec, "cuda", (200, 512, 512))
    assert (ms, batch) == (3.5, 8) and "H200" in source
    assert measured_ms_per_rotation(rec, "cuda", (100, 64, 64)) is None
    assert measured_ms_per_rotation(rec, "cpu") is None and measured_ms_per_rotation(None) is None
