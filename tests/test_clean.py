"""The executed-notebook cleaner: progress frames, warnings and machine paths go, numbers stay."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from cryo_companion.runs import clean

ROOT = Path(__file__).resolve().parent.parent

BAR = "\rtomograms:   0%|          | 0/8 [00:00<?, ?it/s]\rtomograms:  12%|█▎        | 1/8 " \
      "[00:12<01:30, 12.9s/it]"
WARNING = ("/opt/env/lib/python3.12/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not "
           "found. Please update jupyter and ipywidgets. See "
           "https://ipywidgets.readthedocs.io/en/stable/user_install.html\n"
           "  from .autonotebook import tqdm as notebook_tqdm\n")


def _stream(text: str, name: str = "stdout"):
    return new_output("stream", name=name, text=text)


def _nb(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells))


@pytest.mark.parametrize("frame", [
    "tomograms:   0%|          | 0/8 [00:00<?, ?it/s]",
    "packing:  40%|████      | 1509/3755 [00:04<00:07, 309.36it/s]",
    "tomograms: 100%|██████████| 8/8 [01:45<00:00, 12.80s/it]",
    "runs finished: 0it [00:00, ?it/s]",
    "runs finished: 3it [00:04,  1.50s/it]",
])
def test_tqdm_frames_are_recognised(frame: str) -> None:
    assert clean.is_progress_frame(frame)


@pytest.mark.parametrize("text", [
    "1051 subtomograms {'ribosome': 80} from 8 tomogram(s); 112 s so far",
    "scale=paper, device=cpu, seed=0",
    "Dz  -6.0 µm: first CTF zero at 0.2915 1/nm (3.43 nm)",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "accuracy 0.443, pixel accuracy 0.894 (100 % of 8/8 runs)",
])
def test_ordinary_text_is_not_a_frame(text: str) -> None:
    assert not clean.is_progress_frame(text)


def test_strip_progress_keeps_the_text_around_the_bar() -> None:
    text, n = clean.strip_progress("start\n" + BAR + "\n\x1b[A\nresult 0.5\n")
    assert text == "start\nresult 0.5\n"
    assert n == 2
    # a line of carriage-return updates that are not bars keeps its last state, as a terminal
    assert clean.strip_progress("a\rb\n")[0] == "b\n"
    # nothing but bars and white space: nothing left
    assert clean.strip_progress(BAR + "\n\n") == ("", 2)


def test_strip_warnings_removes_the_block_and_reports_it() -> None:
    text, found = clean.strip_warnings("before\n" + WARNING + "after\n")
    assert text == "before\nafter\n"
    assert len(found) == 1 and "TqdmWarning" in found[0]


def test_scrub_paths_makes_repository_paths_relative(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    here = f"saved {tmp_path}/results/table1.json"
    assert clean.scrub_paths(here, tmp_path) == ("saved results/table1.json", 1)
    # another machine's checkout: recognised by this checkout's top-level folder
    other = "saved /work/main/results/table1.json and /opt/x/site-packages/tqdm/auto.py"
    assert clean.scrub_paths(other, tmp_path) == (
        "saved results/table1.json and tqdm/auto.py", 2)
    # URLs, units and fractions are not paths
    kept = "see https://example.org/a/b.html: 1/nm, Da/Å³, and/or 3/4"
    assert clean.scrub_paths(kept, tmp_path) == (kept, 0)
    assert clean.find_absolute_paths(kept) == []
    assert clean.find_absolute_paths("cache /tmp/x/y.npz") == ["/tmp/x/y.npz"]


def test_display_path_is_never_absolute(tmp_path: Path) -> None:
    assert clean.display_path(ROOT / "results" / "x.json") == "results/x.json"
    assert clean.display_path(tmp_path / "elsewhere" / "x.json", root=ROOT) == "x.json"


def _dirty_notebook(root: Path) -> nbformat.NotebookNode:
    params = new_code_cell('scale = "smoke"', metadata={"tags": ["parameters"]})
    injected = new_code_cell('scale = "paper"', metadata={"tags": ["injected-parameters"]})
    work = new_code_cell("run()", outputs=[
        _stream(WARNING, "stderr"),
        _stream("before\n"),
        *[_stream(f"\rpacking: {p:3d}%|#   | {p}/100 [00:0{p // 50}<00:01, 99.0it/s]", "stderr")
          for p in range(0, 100, 10)],
        _stream("\n", "stderr"),
        _stream("after 0.123456\n"),
        new_output("display_data", data={"text/plain": "<Figure size 640x480 with 1 Axes>",
                                         "image/png": "iVBORw0KGgo/AAAA+/BBBB"}),
        _stream(f"saved {root}/results/x.json\n"),
    ])
    md = new_code_cell("show()", outputs=[new_output(
        "display_data", data={"text/markdown": f"Saved `{root}/results/x.json`."})])
    nb = _nb(params, injected, work, md)
    nb.metadata["papermill"] = {"input_path": f"{root}/book/chapters/.x.in.ipynb",
                                "output_path": f"{root}/book/chapters/.x.ipynb"}
    return nb


def test_clean_notebook_removes_noise_and_keeps_the_rest() -> None:
    nb = _dirty_notebook(ROOT)
    assert clean.find_problems(nb), "the dirty notebook must show problems before cleaning"
    report = clean.clean_notebook(nb, root=ROOT)
    assert report.progress_frames == 10 and report.warnings == 1
    assert report.paths == 4 and report.parameters_hidden
    outs = nb.cells[2].outputs
    # stdout "before" and "after" are separated by the figure's neighbours only through the
    # removed stderr outputs, so they merge into one; the figure and the last line stay
    assert [o.output_type for o in outs] == ["stream", "display_data", "stream"]
    assert outs[0].text == "before\nafter 0.123456\n"
    assert outs[1].data["image/png"] == "iVBORw0KGgo/AAAA+/BBBB"   # images untouched
    assert outs[2].text == "saved results/x.json\n"
    assert nb.cells[3].outputs[0].data["text/markdown"] == "Saved `results/x.json`."
    assert nb.metadata.papermill["output_path"] == "book/chapters/.x.ipynb"
    assert "remove-cell" in nb.cells[0].metadata.tags
    assert "remove-cell" not in nb.cells[1].metadata.tags
    assert clean.find_problems(nb) == []
    # cleaning twice changes nothing more
    assert not clean.clean_notebook(nb, root=ROOT).changed


def test_find_problems_names_each_kind() -> None:
    nb = _nb(new_code_cell("x", outputs=[_stream(BAR, "stderr")]),
             new_code_cell("y", outputs=[_stream(WARNING, "stderr")]),
             new_code_cell("z", outputs=[_stream("saved /home/me/r/results/a.json\n")]),
             new_code_cell("e", outputs=[new_output("error", ename="ValueError", evalue="v",
                                                    traceback=[])]))
    found = "\n".join(clean.find_problems(nb))
    for needle in ("cell 0: 2 progress frame", "cell 1: a warning", "cell 2: absolute path",
                   "cell 3: an error output"):
        assert needle in found
    many = _nb(*[new_code_cell(str(i), outputs=[_stream(f"{i}\n")]) for i in range(11)])
    assert any("11 stream outputs" in p for p in clean.find_problems(many))
    assert clean.find_problems(many, max_streams=11) == []


def test_clean_file_writes_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "x.ipynb"
    nbformat.write(_dirty_notebook(ROOT), path)
    assert clean.clean_file(path, root=ROOT).changed
    assert clean.find_problems(nbformat.read(path, as_version=4)) == []
    before = path.stat().st_mtime_ns
    assert not clean.clean_file(path, root=ROOT).changed
    assert path.stat().st_mtime_ns == before


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.ipynb"
    nbformat.write(_dirty_notebook(ROOT), path)
    assert clean.main(["--check", str(path)]) == 1
    assert "progress frame" in capsys.readouterr().out
    assert clean.main([str(path)]) == 0
    assert "10 progress frames, 1 warnings" in capsys.readouterr().out
    assert clean.main(["--check", str(path)]) == 0
    assert clean.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err


def test_clean_file_keeps_the_permissions(tmp_path: Path) -> None:
    path = tmp_path / "x.ipynb"
    nbformat.write(_dirty_notebook(ROOT), path)
    path.chmod(0o644)
    clean.clean_file(path, root=ROOT)
    assert path.stat().st_mode & 0o777 == 0o644
