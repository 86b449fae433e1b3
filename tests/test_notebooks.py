"""Every chapter notebook: paired with its .ipynb, opens with a papermill parameters cell."""
from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

from cryo_companion.runs.pipeline import chapters

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for p in (ROOT / "notebooks").glob("*.py") if p.name != "conftest.py")


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_pair_in_sync(py: Path) -> None:
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{py.name} has no paired {ipynb.name}: run `jupytext --sync {py}`"
    assert _cells(jupytext.read(py)) == _cells(nbformat.read(ipynb, as_version=4)), (
        f"{py.name} and {ipynb.name} differ: run `jupytext --sync {py}`")


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell_first(py: Path) -> None:
    nb = jupytext.read(py)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{py.name} has no code cell"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), (
        f"{py.name}: the first code cell must be tagged 'parameters' for papermill")
    assigned = {t.id: ast.literal_eval(n.value) for n in ast.parse(first.source).body
                if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert assigned.get("scale") == "smoke", f"{py.name}: default scale must be 'smoke'"
    assert assigned.get("device") == "auto", f"{py.name}: default device must be 'auto'"
    assert isinstance(assigned.get("seed"), int), f"{py.name}: needs an integer seed"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{py.name}: needs a python3 kernelspec for papermill")


def test_every_toc_chapter_has_a_notebook() -> None:
    names = [c.name for c in chapters(ROOT)]
    assert names, "no chapters in _toc.yml"
    assert sorted(names) == sorted(p.stem for p in SOURCES), (
        "notebooks/ and the chapters of _toc.yml disagree")
