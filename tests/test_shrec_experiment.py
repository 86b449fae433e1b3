"""The SHREC 2020 methods' experiment on tiny models: a network's piece, assembly, reuse."""
from __future__ import annotations

import pytest

from cryo_companion.papers.shrec2020 import experiment as ex
from cryo_companion.papers.shrec2020 import methods_results as mr
from cryo_companion.papers.shrec2020.dataset import DATASET_SEED
from cryo_companion.papers.shrec2020.pipelines import load_detector
from tests.shrec_tiny import write_tiny_models
from tests.test_shrec_train import TINY

INFERENCE = {"deepfinder": {"tile": 16, "crop": 2, "bin_factor": 2, "bandwidth_vox": 2.0},
             "yopo": {"tile": 48, "threshold": 0.5, "min_distance_vox": 6.0},
             "umc": {"tile": 16, "crop": 2, "min_size": 2, "min_separation_vox": 3.0}}


@pytest.fixture(scope="module")
def tiny_plan(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    mp = pytest.MonkeyPatch()
    mp.setenv("CRYO_COMPANION_DATA", str(root))
    p = ex.plan("smoke", data_subdir="tiny", train_models=(0,), seeds=(0, 1),
                train={m: s.replace(iters=2, points=2) for m, s in TINY.items()},
                inference=INFERENCE, curve_crop_yx=32, figure_z=16)
    # current for the plan (recipe and seed in meta.json): ensure_data makes nothing
    write_tiny_models(root / "tiny", (0, 9),
                      {"recipe": p.recipe.to_dict(), "dataset_seed": DATASET_SEED})
    yield p
    mp.undo()


def test_plans_refuse_training_on_the_test_model() -> None:
    with pytest.raises(ValueError, match="test model"):
        ex.plan("smoke", train_models=(0, 9))
    with pytest.raises(ValueError, match="unknown scale"):
        ex.plan("huge")
    p = ex.plan("paper")
    assert p.train_models == (0,) and p.test_model == 9 and len(p.seeds) >= 2
    assert all(s.budget_s for s in p.train.values())
    # a piece's fingerprint changes with what it depends on only
    assert p.fingerprint("yopo") != ex.plan("paper", seeds=(0, 1, 2)).fingerprint("yopo")
    assert p.fingerprint("tm") == ex.plan("paper", seeds=(0, 1, 2)).fingerprint("tm")


@pytest.mark.parametrize("method", ["deepfinder", "umc"])
def test_a_network_piece_trains_scores_and_records(method, tiny_plan, tmp_path) -> None:
    data = {"models": [0, 9], "made": [], "note": "tiny test models"}
    pc = ex.run_network(tiny_plan, method, "cpu", tmp_path, data=data)
    assert pc["method"] == method and pc["data"] == data
    assert set(pc["evaluations"]) == {"default", "benchmark_script"}
    assert all(len(v) == 2 for v in pc["evaluations"].values())          # one per seed
    assert [c["iteration"] for c in pc["curve"]] == [1, 2]
    assert all(len(c["scores"]) == 2 and "default_f1" in c["scores"][0] for c in pc["curve"])
    assert pc["curve_view"].endswith("central 32 x 32")
    assert pc["training"]["runs_per_step"] == 2 and len(pc["detections"]) == 2
    assert "labels" in pc["slices"]["maps"]
    if method == "deepfinder":
        assert set(pc["postprocess"]["min_size"]) == {"1", "6", "12"}
    name, net, info = load_detector(pc["detector_files"][1])
    assert name == method and info["meta"]["seed"] == 1
    out = mr.assemble(tiny_plan, {method: pc})
    m = out["methods"][method]
    assert m["row"] == ex.METHOD_KEYS[method] and "tm_t" in out["missing"]
    assert m["timing"]["runs_per_step"] == 2 and len(m["evaluations"]) == 2
    assert m["summary"]["headline"]["localisation_f1"]["n"] == 2     # over the two seeds
    assert set(out["tables"]) == {"table3", "table4", "table6", "table7"}
    assert isinstance(out["findings"], list) and ex.METHOD_KEYS[method] in out["f1_vs_weight"]
    _check_figures_and_rows(method, pc, out)


def _check_figures_and_rows(method, pc, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cryo_companion.book import shrec_methods_plots as sp

    fig = sp.plot_method_outputs({method: pc, "tm": None})
    assert fig is not None and len(fig.axes) == 3                # tomogram, truth, output
    fig2 = sp.plot_training_curves(out["methods"])
    assert fig2 is not None and len(fig2.axes) == 2
    assert sp.plot_confusions(out["methods"]) is not None
    assert sp.plot_f1_vs_weight(out["f1_vs_weight"]) is not None
    assert sp.plot_method_outputs({}) is None and sp.plot_training_curves({}) is None
    plt.close("all")
    text = sp.table_markdown(out["tables"]["table3"], first="submission")
    assert f"{ex.METHOD_KEYS[method]} (this companion)" in text and " ± " in text
    assert sp.summary_cells({"a": {"x": {"mean": 0.5, "std": None, "n": 1}, "y": None}}) == {
        "a": {"x": "0.500", "y": None}}
    timing = mr.timing_rows(out)[ex.METHOD_KEYS[method]]
    assert timing["runs per step"] == 2 and timing["iterations"] == "2, 2"
    assert mr.plan_rows(ex.plan("paper"))["training models"] == {"value": "0"}
    assert set(mr.finding_rows(out)) == {f["key"] for f in out["findings"]}


def test_a_saved_piece_is_reused_until_the_plan_changes(tiny_plan, tmp_path, monkeypatch) -> None:
    from cryo_companion.runs.runtime import setup

    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path / "results"))
    run = setup("smoke", "cpu", 0, chapter="shrec_methods", paper_needs_gpu=False)
    first = ex.piece(tiny_plan, "yopo", run, work=tmp_path / "work")
    assert first["data"]["made"] == []                                 # the tiny models
    assert (tmp_path / "results" / "smoke" / "shrec_methods" / "yopo.json").is_file()
    again = ex.piece(tiny_plan, "yopo", run, work=tmp_path / "work")
    assert again["provenance"] == first["provenance"]                 # not trained again
    got = ex.collect(tiny_plan, run, make=False)
    assert got["yopo"] is not None and got["umc"] is None and got["tm"] is None
    changed = ex.plan("smoke", **{**{f: getattr(tiny_plan, f) for f in ("data_subdir",
                      "train_models", "train", "inference", "curve_crop_yx", "figure_z")},
                      "seeds": (0, 2)})
    assert ex.load_piece(changed, "yopo") is None
