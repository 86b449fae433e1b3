"""The SHREC 2020 methods' GPU jobs: order, commands and estimates."""
from __future__ import annotations

import json

import pytest

from cryo_companion.papers.shrec2020 import jobs as sj


def _job(name: str):
    return next(j for j in sj.JOBS if j.name == name)


def test_the_pieces_run_after_their_checks_and_the_chapter_after_them() -> None:
    names = [f"shrec-methods-{m}" for m in sj.PIECE_JOBS]
    assert all(_job(n).needs_gpu for n in names)
    assert _job("shrec-methods-tm").after == ("bench-template-matching-cuda",)
    assert "--save" in _job("bench-template-matching-cuda").argv
    assert _job("shrec_methods").after == tuple(names)
    argv = _job("shrec-methods-yopo").command("py", "cuda")
    assert argv == ["py", "-m", "cryo_companion.papers.shrec2020.experiment", "yopo",
                    "--device", "cuda"]


def test_estimates_on_a_bare_machine_count_the_models_to_make(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRYO_COMPANION_DATA", str(tmp_path / "data"))
    est = sj.piece_estimate("deepfinder")(tmp_path, {})
    # 90 s budget + 180 s scoring guess + models 0 and 9 at 90 s + 30 s start-up
    assert est.seconds == pytest.approx(90 + 180 + 2 * 90 + 30)
    assert "2 model(s) to make" in est.source
    tm = sj.piece_estimate("tm")(tmp_path, {})
    assert tm.seconds == pytest.approx(120 + 60 + 90 + 30)            # model 9 only
    assert all(sj.piece_estimate(m)(tmp_path, {}).seconds < 540 for m in sj.PIECE_JOBS)


def test_a_saved_piece_gives_the_measured_time(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRYO_COMPANION_DATA", str(tmp_path / "data"))
    d = tmp_path / "results" / "shrec_methods"
    d.mkdir(parents=True)
    piece = {"training": {"train_s": 91.0, "score_s": 20.0}, "inference_s": [5.0, 4.0]}
    (d / "umc.json").write_text(json.dumps({"data": piece}))
    est = sj.piece_estimate("umc")(tmp_path, {})
    assert est.seconds == pytest.approx(91 + 20 + 9 + 2 * 90 + 30)
    assert "measured" in est.source
