"""``cryo-companion shrec-eval``: the worked example end to end, and bad input (exit code 2)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from cryo_companion.cli.main import main
from cryo_companion.mrc import write_mrc
from cryo_companion.papers.shrec2020.particles import write_particle_list
from cryo_companion.papers.shrec2020.worked_example import EXPECTED, worked_example


@pytest.fixture()
def files(tmp_path):
    w = worked_example()
    return {
        "pred": write_particle_list(tmp_path / "pred.txt", w.pred),
        "truth": write_particle_list(tmp_path / "truth.txt", w.truth),
        "occ": write_mrc(tmp_path / "occ.mrc", w.occupancy, 10.0),
        "mask": write_mrc(tmp_path / "mask.mrc", w.class_mask, 10.0),
        "dir": tmp_path,
    }


def run(files, *extra):
    return main(["shrec-eval", "--pred", str(files["pred"]), "--truth-list", str(files["truth"]),
                 "--occupancy", str(files["occ"]), *extra])


def test_prints_rows_and_writes_json(files, capsys):
    out = files["dir"] / "out" / "ev.json"
    assert run(files, "--class-mask", str(files["mask"]), "--json", str(out)) == 0
    text = capsys.readouterr().out
    assert "RR" in text and "F1 Score" in text and "4d8q" in text and "Medium" in text
    assert "0.571" in text  # precision 4/7
    data = json.loads(out.read_text())
    for k in ("RR", "TP", "FP", "FN", "MH", "RO"):
        assert data["table3"][k] == EXPECTED[k]
    assert data["table4"]["1bxn"] == 1.0 and data["table4"]["1s3x"] == 0.0
    assert data["table4"]["3gl1"] is None
    assert data["settings"]["class_mask_labels"]["9"] == "1bxn"
    assert len(data["classification"]["confusion"]) == 12
    assert not list(out.parent.glob(".*"))  # no temporary file left behind


def test_one_based_star_prediction(files, tmp_path):
    w = worked_example()
    star = write_particle_list(tmp_path / "pred.star", w.pred, origin=1)
    files = {**files, "pred": star}
    out = tmp_path / "ev1.json"
    assert run(files, "--pred-origin", "1", "--json", str(out)) == 0
    assert json.loads(out.read_text())["table3"]["TP"] == EXPECTED["TP"]


def test_benchmark_script_mode(files, tmp_path):
    out = tmp_path / "evb.json"
    assert run(files, "--benchmark-script", "--json", str(out)) == 0
    d = json.loads(out.read_text())
    assert d["settings"]["outside"] == "script" and d["settings"]["dilate"] is True
    assert d["settings"]["script_frame"]["z_offset"] == 156


@pytest.mark.parametrize("content,match", [
    ("1bxn 1 2 3\n1bxn 4 5\n", "line 2: expected at least 4 columns"),
    ("1bxn 1 2 x\n", "line 1: non-numeric z coordinate 'x'"),
    ("ribosome 1 2 3\n", "line 1: unknown class 'ribosome'; known classes"),
])
def test_bad_prediction_file_exit_2(files, capsys, content, match):
    files["pred"].write_text(content)
    assert run(files) == 2
    err = capsys.readouterr().err
    assert "shrec-eval: error:" in err
    assert re.search(match, err)


def test_occupancy_shape_disagrees_with_coordinates(files, capsys):
    write_mrc(files["occ"], np.zeros((5, 24, 20), dtype=np.float32), 10.0)  # x too short
    assert run(files) == 2
    err = capsys.readouterr().err
    assert "outside the occupancy map of shape (z, y, x) = (5, 24, 20)" in err


def test_class_mask_shape_mismatch(files, capsys):
    write_mrc(files["mask"], np.zeros((5, 24, 39), dtype=np.float32), 10.0)
    assert run(files, "--class-mask", str(files["mask"])) == 2
    assert "class mask shape (z, y, x) = (5, 24, 39) differs" in capsys.readouterr().err


def test_missing_file(files, capsys):
    files["pred"].unlink()
    assert run(files) == 2
    assert "no such particle list file" in capsys.readouterr().err


def test_json_output_is_never_replaced_without_force(files, capsys):
    out = files["dir"] / "ev.json"
    out.write_text("mine")
    assert run(files, "--json", str(out)) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_text() == "mine"
    assert run(files, "--json", str(out), "--force") == 0
    assert json.loads(out.read_text())["table3"]["TP"] == EXPECTED["TP"]
    assert run(files, "--json", str(files["pred"]), "--force") == 2    # an input
    assert "is also an input" in capsys.readouterr().err


def test_truth_with_classes_outside_table1(tmp_path, capsys):
    """A simulated tomogram's truth list (a membrane, 4v94) is read; its classes get columns."""
    occ = np.zeros((6, 8, 10), np.int16)
    occ[1:3, 1:3, 1:3], occ[3:5, 4:6, 6:8], occ[0:2, 5:7, 0:2] = 1, 2, 3
    (tmp_path / "truth.csv").write_text("id,class,x_vox,y_vox,z_vox\n1,membrane,1,1,1\n"
                                        "2,4v94,6,4,3\n3,1bxn,0,5,0\n")
    (tmp_path / "pred.txt").write_text("membrane 1 1 1\n4V94 7 5 4\n1bxn 9 0 0\n")
    write_mrc(tmp_path / "occ.mrc", occ, 10.0)
    assert main(["shrec-eval", "--pred", str(tmp_path / "pred.txt"), "--truth-list",
                 str(tmp_path / "truth.csv"), "--occupancy", str(tmp_path / "occ.mrc"),
                 "--json", str(tmp_path / "e.json")]) == 0
    d = json.loads((tmp_path / "e.json").read_text())
    assert d["table3"]["TP"] == 2 and d["table3"]["FP"] == 1
    assert d["table4"]["membrane"] == 1.0 and d["table4"]["4v94"] == 1.0
    assert d["table4"]["1bxn"] == 0.0
    assert d["classification"]["classes"][-2:] == ["4v94", "membrane"]
    assert d["classification"]["mean_f1"] == 0.0        # over Table 1's classes only
    assert "membrane" in capsys.readouterr().out
