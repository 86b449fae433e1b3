"""Every chapter notebook: paired with its .ipynb (which stores the outputs of a clean smoke run,
compared by strict nbval in CI), opens with a papermill parameters cell."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from cryo_companion.runs.clean import find_problems
from cryo_companion.runs.notebook_outputs import execute_source
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


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_stored_outputs_are_those_of_a_clean_smoke_run(py: Path) -> None:
    """``make notebook-outputs`` stores every code cell's outputs, cleaned, without images."""
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), (
        f"{py.stem}.ipynb holds no stored outputs: run `make notebook-outputs`")
    assert find_problems(nb) == []
    stored = [m for c in code for o in c.outputs for m in o.get("data", {})]
    assert not [m for m in stored if m.startswith("image/")], "images are not stored"
    assert "injected-parameters" not in str(nb), "the stored run is the defaults' (smoke) run"


NB_SOURCE = '''# %%
import time
t0 = time.perf_counter()
value = sum(i * 0.1 for i in range(10))

# %%
print(f"value {value:.4f}, computed in {time.perf_counter() - t0 + 1.23:.2f} s at {hex(id(t0))}")
'''


def _run_nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(ROOT / "notebooks" / "nbval_sanitize.cfg"),
         "-p", "no:cacheprovider", "-q", "--rootdir", str(path.parent)],
        capture_output=True, text=True, cwd=path.parent, timeout=300, check=False)


@pytest.mark.slow
def test_strict_nbval_fails_on_a_changed_number_and_not_on_a_timing(tmp_path: Path) -> None:
    """The CI mode: a stored number that differs fails; timings and addresses are masked."""
    src = tmp_path / "nb.py"
    src.write_text(NB_SOURCE)
    nb = execute_source(src, root=tmp_path)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    out = nb.cells[1].outputs[0]
    assert out.text.startswith("value 4.5000, computed in ")
    assert _run_nbval(path).returncode == 0   # a fresh run: new timing, new address, same value
    out.text = out.text.replace("value 4.5000", "value 4.6000")
    nbformat.write(nb, path)
    proc = _run_nbval(path)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "4.6000" in proc.stdout or "mismatch" in proc.stdout.lower()
