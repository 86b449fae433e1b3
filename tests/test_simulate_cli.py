"""`cryo-companion simulate` and `cryo-companion bench simulate`, run in-process."""
from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest
import torch

from cryo_companion.cli.main import main
from cryo_companion.mrc import write_mrc
from cryo_companion.papers.che2019.presets import get_preset


@pytest.fixture()
def blob(tmp_path):
    z, y, x = np.mgrid[:16, :16, :16] - 7.5
    v = (np.exp(-((x - 2) ** 2 + y**2 + z**2) / 6) + np.exp(-((x + 2) ** 2 + (y - 2) ** 2) / 3
                                                            - z**2 / 3)).astype(np.float32)
    return write_mrc(tmp_path / "blob.mrc", v, 13.68)


def _run(blob, out, *extra):
    return main(["simulate", "--structure", str(blob), "--n", "3", "--box", "16", "-o", str(out),
                 *extra])


def test_writes_stack_and_params_and_is_reproducible(blob, tmp_path):
    assert _run(blob, tmp_path / "a.mrc", "--seed", "4", "--randomize") == 0
    assert _run(blob, tmp_path / "b.mrc", "--seed", "4", "--randomize") == 0
    a = mrcfile.read(tmp_path / "a.mrc")
    assert a.shape == (3, 16, 16, 16)
    assert np.array_equal(a, mrcfile.read(tmp_path / "b.mrc"))
    meta = json.loads((tmp_path / "a.json").read_text())
    assert len(meta["subtomograms"]) == 3 and meta["preset"]["name"] == "randomized"
    snrs = [r["snr"] for r in meta["subtomograms"]]
    assert all(0.03 <= s <= 10 for s in snrs) and len(set(snrs)) == 3


def test_snr_inf_gives_clean_and_finite_adds_noise(blob, tmp_path):
    args = ("--seed", "2", "--wedge", "20", "--defocus", "-4", "--cs", "2")
    assert _run(blob, tmp_path / "c.mrc", "--snr", "inf", *args) == 0
    assert _run(blob, tmp_path / "n.mrc", "--snr", "0.5", *args) == 0
    clean = mrcfile.read(tmp_path / "c.mrc").astype(np.float64)
    noisy = mrcfile.read(tmp_path / "n.mrc").astype(np.float64)
    noise = noisy - clean
    snr = clean.reshape(3, -1).var(1) / noise.reshape(3, -1).var(1)
    np.testing.assert_allclose(snr, 0.5, rtol=1e-3)
    meta = json.loads((tmp_path / "c.json").read_text())
    assert meta["subtomograms"][0]["snr"] == "inf"
    assert meta["subtomograms"][0]["wedge_deg"] == 20.0


@pytest.mark.parametrize("bad", [["--snr", "0"], ["--snr", "-1"], ["--wedge", "90"],
                                 ["--cs", "-1"], ["--n", "0"]])
def test_bad_input_is_a_one_line_error(blob, tmp_path, capsys, bad):
    assert _run(blob, tmp_path / "x.mrc", *bad) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x.mrc").exists()


def test_bench_prints_summary_line(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "simulate", "--device", "cpu", "--batch-sizes", "2", "--box", "16",
                 "--min-time", "0.01", "--rounds", "2", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("cpu best subtomograms/s: ") for line in lines)
    data = json.loads(out.read_text())
    cpu = data["data"]["cpu"]
    assert cpu["best_subtomograms_per_s"] > 0 and "provenance" in data
    # the reference was timed in both rounds, back to back with the simulator
    assert cpu["rounds"] == 2 and len(cpu["per_round"]) == 2
    assert all(r["reference"]["2"] > 0 for r in cpu["per_round"])
    assert cpu["speedup_range"][0] <= cpu["speedup_vs_numpy_reference"] <= cpu["speedup_range"][1]
    # the stage profile at the best batch size, every stage of the pipeline named
    from cryo_companion.simulate.subtomogram import TIMED_STAGES

    stages = cpu["stages_ms_per_subtomogram"]
    assert list(stages) == list(TIMED_STAGES) and all(v >= 0 for v in stages.values())
    assert any(line.startswith("cpu stages at batch 2 ") for line in lines)


def test_stage_profile_accounts_for_the_whole_call():
    """The stages add up to the time of the calls (the profile's warm-up call is extra), and the
    work goes where the pipeline does it."""
    import time

    from cryo_companion.bench.simulate import stage_profile, synthetic_templates
    from cryo_companion.simulate.subtomogram import Simulator

    sim = Simulator(synthetic_templates(16), torch.arange(4), 13.68)
    gen = torch.Generator().manual_seed(0)
    sim.sample(8, get_preset("randomized"), gen)
    t0 = time.perf_counter()
    prof = stage_profile(sim, 8, "randomized", gen, reps=3)
    wall = time.perf_counter() - t0
    timed = sum(prof.values()) * 3 * 8 / 1e3
    assert 0.4 * wall < timed <= wall
    assert prof["forward FFT"] > 0 and prof["inverse FFTs"] > 0 and prof["rotation and mask"] > 0


def test_bench_summary_takes_medians_over_rounds_and_ratios_within_a_round():
    from cryo_companion.bench.simulate import summarise

    rounds = [{"rates": {32: 500.0, 64: 450.0}, "reference": {32: 50.0, 64: 50.0}},
              {"rates": {32: 900.0, 64: 1200.0}, "reference": {32: 90.0, 64: 100.0}},
              {"rates": {32: 660.0, 64: 700.0}, "reference": {32: 66.0, 64: 60.0}}]
    s = summarise(rounds)
    assert s["subtomograms_per_s"] == {"32": 660.0, "64": 700.0}
    assert s["best_batch"] == 64 and s["best_subtomograms_per_s"] == 700.0
    assert s["numpy_reference_subtomograms_per_s"] == 60.0
    # each ratio uses the reference interleaved with that batch: 9.0, 12.0, 11.67 -> 11.67
    assert s["speedup_vs_numpy_reference"] == 11.67
    assert s["speedup_range"] == [9.0, 12.0]
    assert "speedup_vs_numpy_reference" not in summarise([{"rates": {8: 1.0}, "reference": {}}])


def test_json_records_the_contrast_and_box_advice_speaks_in_options(blob, tmp_path, capsys):
    assert _run(blob, tmp_path / "s.mrc") == 0
    assert json.loads((tmp_path / "s.json").read_text())["contrast"] == "bright"
    big = np.zeros((24, 24, 24), np.float32)
    big[2:22, 2:22, 2:22] = 1.0
    write_mrc(tmp_path / "big.mrc", big, 13.68)
    assert main(["simulate", "--structure", str(tmp_path / "big.mrc"), "--box", "16", "-o",
                 str(tmp_path / "b.mrc")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--box" in err and "grow_box" not in err
