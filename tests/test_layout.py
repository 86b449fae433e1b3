"""The layout's rule, checked on the imports of every module (including imports inside functions).

Generic machinery (physics, simulators, models, learning, metrics, detection, data on disk) never
imports the papers, the run plumbing, the book, the benchmarks or the command line; the papers
never import the book, the benchmarks or the command line; nothing in the library imports
``book``, ``bench`` or ``cli`` (they are front ends).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "cryo_companion"
FRONT_ENDS = ("book", "bench", "cli")
#: Subpackages / modules of the generic machinery.
GENERIC = ("structures", "simulate", "models", "learn", "detect", "segment", "optics", "rotation",
           "snr", "filters", "metrics", "clustering", "dataset", "mrc", "tables", "devices",
           "spectra", "_io", "_rng", "_progress")


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py"))


def _top(path: Path) -> str:
    """First component of the module path under the package (``simulate``, ``optics``, ...)."""
    rel = path.relative_to(PKG).with_suffix("")
    return rel.parts[0]


def _imported(path: Path) -> set[str]:
    """Top-level subpackages/modules of ``cryo_companion`` that ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names]
                                     if node.module == "cryo_companion" else [])
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; use absolute cryo_companion imports")
        for n in names:
            parts = n.split(".")
            if parts[0] == "cryo_companion" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_every_module_is_checked() -> None:
    tops = {_top(p) for p in _modules()} - {"__init__"}
    known = set(GENERIC) | set(FRONT_ENDS) | {"papers", "runs"}
    assert tops <= known, f"modules outside the layout's groups: {sorted(tops - known)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_follow_the_layout(path: Path) -> None:
    top, imported = _top(path), _imported(path)
    if top in GENERIC:
        bad = imported & {"papers", "runs", *FRONT_ENDS}
        assert not bad, f"generic module imports {sorted(bad)}"
    elif top in ("papers", "runs"):
        bad = imported & set(FRONT_ENDS)
        assert not bad, f"{top} module imports front ends {sorted(bad)}"


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import torch\n\ndef f():\n    from cryo_companion.papers.che2019 import presets\n"
                 "    from cryo_companion import book\n    import cryo_companion.runs.results\n")
    assert _imported(f) == {"papers", "book", "runs"}
