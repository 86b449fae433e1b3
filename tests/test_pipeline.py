"""The papermill pipeline: toc order, atomic outputs, resume, failures leave outputs untouched."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryo_companion.runs.pipeline import chapters, is_current, run_pipeline

NB = '''# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # {title}

# %% tags=["parameters"]
scale = "smoke"
device = "auto"
seed = 0

# %%
{body}
'''


def _book(root: Path, bodies: dict[str, str]) -> None:
    (root / "notebooks").mkdir(parents=True)
    (root / "book" / "chapters").mkdir(parents=True)
    toc = ["format: jb-book", "root: intro", "chapters:"]
    for name, body in bodies.items():
        (root / "notebooks" / f"{name}.py").write_text(NB.format(title=name, body=body))
        toc.append(f"  - file: chapters/{name}")
    (root / "_toc.yml").write_text("\n".join(toc) + "\n")


def test_chapters_follow_toc_order(tmp_path: Path) -> None:
    _book(tmp_path, {"b": "x = 1", "a": "x = 2"})
    assert [c.name for c in chapters(tmp_path)] == ["b", "a"]


def test_missing_notebook_is_an_error(tmp_path: Path) -> None:
    _book(tmp_path, {"a": "x = 1"})
    (tmp_path / "notebooks" / "a.py").unlink()
    with pytest.raises(FileNotFoundError, match="notebooks/a.py"):
        chapters(tmp_path)


def test_bad_scale_and_device(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smoke, paper"):
        run_pipeline("medium", "cpu", root=tmp_path)
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        run_pipeline("smoke", "gpu", root=tmp_path)


@pytest.mark.slow
def test_run_resume_and_failure(tmp_path: Path) -> None:
    _book(tmp_path, {"ok": "print(scale, seed)", "bad": "print('first')"})
    report = run_pipeline("smoke", "cpu", root=tmp_path)
    assert set(report) == {"ok", "bad"} and all(isinstance(v, float) for v in report.values())
    out = tmp_path / "book" / "chapters" / "ok.ipynb"
    nb = json.loads(out.read_text())
    assert nb["metadata"]["cryo_companion"]["scale"] == "smoke"
    assert "smoke 0" in json.dumps(nb["cells"])  # papermill injected the parameters
    # resume: nothing to redo
    assert run_pipeline("smoke", "cpu", root=tmp_path) == {"ok": "skipped", "bad": "skipped"}
    # a failing chapter leaves its previous executed notebook untouched
    bad_out = tmp_path / "book" / "chapters" / "bad.ipynb"
    before = bad_out.read_bytes()
    (tmp_path / "notebooks" / "bad.py").write_text(
        NB.format(title="bad", body="raise RuntimeError('boom')"))
    report = run_pipeline("smoke", "cpu", root=tmp_path)
    assert report == {"ok": "skipped", "bad": "failed"}
    assert bad_out.read_bytes() == before
    assert not is_current(chapters(tmp_path)[1], "smoke")
    assert not list((tmp_path / "book" / "chapters").glob(".*"))  # no temporary left behind
