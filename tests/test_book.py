"""The site builds from the committed executed notebooks, with the results table on its front page."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cryo_companion.runs.pipeline import chapters

ROOT = Path(__file__).resolve().parent.parent


def test_config_and_toc_have_one_source() -> None:
    for name in ("_config.yml", "_toc.yml"):
        link = ROOT / "book" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), (
            f"book/{name} must be a link to the top-level {name}")


def test_executed_chapters_are_committed_and_not_reexecuted() -> None:
    for ch in chapters(ROOT):
        assert ch.output.exists(), f"{ch.output} missing: run `make paper` (or the pipeline)"
        nb = json.loads(ch.output.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c.get("outputs") is not None for c in code)
        assert "cryo_companion" in nb["metadata"], f"{ch.output} was not made by the pipeline"


@pytest.mark.slow
def test_book_builds(tmp_path: Path) -> None:
    src = tmp_path / "book"
    shutil.copytree(ROOT / "book", src, symlinks=False,
                    ignore=shutil.ignore_patterns("_build"))
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(src), "-W", "--keep-going"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = src / "_build" / "html"
    index = (html / "intro.html").read_text()   # index.html redirects to the root page
    assert "This companion" in index and "results-table" in index
    for ch in chapters(ROOT):
        assert (html / "chapters" / f"{ch.name}.html").exists()
