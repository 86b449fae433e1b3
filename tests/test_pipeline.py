"""The papermill pipeline: toc order, atomic outputs, resume, failures leave outputs untouched."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cryo_companion.runs.pipeline import META_KEY, chapters, is_current, run_pipeline, staleness
from cryo_companion.runs.sources import package_sha256

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
    """A small fake repository: chapters, a table of contents and a two-file package."""
    (root / "notebooks").mkdir(parents=True)
    (root / "book" / "chapters").mkdir(parents=True)
    (root / "cryo_companion" / "sub").mkdir(parents=True)
    (root / "cryo_companion" / "__init__.py").write_text("")
    (root / "cryo_companion" / "sub" / "physics.py").write_text("SPEED_OF_LIGHT = 299792458\n")
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


def _executed(root: Path, name: str, **meta: object) -> None:
    """Write an executed notebook whose record says it was made from the tree as it is now."""
    ch = next(c for c in chapters(root) if c.name == name)
    record = {"scale": "paper", "params": {}, "source_sha256": ch.source_sha256(),
              "package_sha256": package_sha256(root), "commit": None, "dirty": None, **meta}
    ch.output.write_text(json.dumps({"cells": [], "metadata": {META_KEY: record},
                                     "nbformat": 4, "nbformat_minor": 5}))


def test_package_change_makes_a_chapter_stale(tmp_path: Path) -> None:
    _book(tmp_path, {"a": "x = 1", "b": "x = 2"})
    _executed(tmp_path, "a")
    _executed(tmp_path, "b")
    a, b = chapters(tmp_path)
    assert is_current(a, "paper") and is_current(b, "paper")
    assert staleness(a, "smoke") == "made at scale=paper"
    assert "parameters" in (staleness(a, "paper", {"iterations": 5}) or "")
    # a change to a package module (not to the chapter) makes every chapter stale
    (tmp_path / "cryo_companion" / "sub" / "physics.py").write_text("SPEED_OF_LIGHT = 3e8\n")
    assert staleness(a, "paper") == staleness(b, "paper") == "package sources changed"
    # so does a new package data file; byte-code and hidden temporaries do not count
    (tmp_path / "cryo_companion" / "sub" / "physics.py").write_text("SPEED_OF_LIGHT = 299792458\n")
    assert is_current(a, "paper")
    sub = tmp_path / "cryo_companion" / "sub"
    (sub / "__pycache__").mkdir()
    (sub / "__pycache__" / "physics.cpython-312.pyc").write_bytes(b"x")
    (sub / ".physics.py.swp").write_bytes(b"x")
    assert is_current(a, "paper")
    (tmp_path / "cryo_companion" / "sub" / "table.json").write_text("{}")
    assert not is_current(a, "paper")
    # tests and other chapters' sources are not what a chapter is made from
    (tmp_path / "cryo_companion" / "sub" / "table.json").unlink()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_physics.py").write_text("def test(): pass\n")
    (tmp_path / "notebooks" / "b.py").write_text("# changed\n")
    assert is_current(a, "paper") and staleness(b, "paper") == "notebooks/b.py changed"


def test_a_record_without_the_package_hash_is_stale(tmp_path: Path) -> None:
    _book(tmp_path, {"a": "x = 1"})
    _executed(tmp_path, "a", package_sha256=None)
    assert staleness(chapters(tmp_path)[0], "paper") == "made before the package hash was recorded"
    (tmp_path / "book" / "chapters" / "a.ipynb").write_text("not json")
    assert staleness(chapters(tmp_path)[0], "paper") == "no readable record"
    (tmp_path / "book" / "chapters" / "a.ipynb").unlink()
    assert staleness(chapters(tmp_path)[0], "paper") == "not executed"


def test_the_changed_files_are_named_where_git_can_tell(tmp_path: Path) -> None:
    _book(tmp_path, {"a": "x = 1"})
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fake"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    _executed(tmp_path, "a", commit=commit, dirty=False)
    (tmp_path / "cryo_companion" / "sub" / "physics.py").write_text("SPEED_OF_LIGHT = 3e8\n")
    assert staleness(chapters(tmp_path)[0], "paper") == (
        f"package sources changed (1 files since {commit[:7]})")


def test_needs_gpu_is_read_from_the_chapters_setup_call(tmp_path: Path) -> None:
    call = 'run = setup(scale, device, seed, chapter="x"{})'
    _book(tmp_path, {"cpu": call.format(", paper_needs_gpu=False"),
                     "gpu": call.format(", paper_needs_gpu=True"), "default": call.format("")})
    assert [c.needs_gpu() for c in chapters(tmp_path)] == [False, True, True]


@pytest.mark.slow
def test_run_resume_and_failure(tmp_path: Path) -> None:
    _book(tmp_path, {"ok": "print(scale, seed)", "bad": "print('first')"})
    report = run_pipeline("smoke", "cpu", root=tmp_path)
    assert set(report) == {"ok", "bad"} and all(isinstance(v, float) for v in report.values())
    out = tmp_path / "book" / "chapters" / "ok.ipynb"
    nb = json.loads(out.read_text())
    assert nb["metadata"]["cryo_companion"]["scale"] == "smoke"
    assert "smoke 0" in json.dumps(nb["cells"])  # papermill injected the parameters
    assert len(nb["metadata"]["cryo_companion"]["package_sha256"]) == 64
    # resume: nothing to redo
    assert run_pipeline("smoke", "cpu", root=tmp_path) == {"ok": "skipped", "bad": "skipped"}
    # a changed package module re-executes the chapters (what `make paper` runs)
    (tmp_path / "cryo_companion" / "sub" / "physics.py").write_text("SPEED_OF_LIGHT = 3e8\n")
    report = run_pipeline("smoke", "cpu", root=tmp_path, only=["ok"])
    assert isinstance(report["ok"], float)
    assert run_pipeline("smoke", "cpu", root=tmp_path, only=["ok"]) == {"ok": "skipped"}
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
