"""Execute the book's chapters with papermill, in the table of contents' order (``make paper``).

For every chapter ``chapters/NAME`` of ``_toc.yml`` the source notebook ``notebooks/NAME.ipynb``
is executed with papermill at the requested scale into a temporary file, which replaces
``book/chapters/NAME.ipynb`` only if the run succeeded: a failed chapter leaves the committed
executed notebook (and its result JSON, written by the notebook itself at its end) untouched.

Resuming: an executed notebook records, in its metadata, what it was made from: the scale and
extra parameters, the SHA-256 of its source ``.py``, the SHA-256 of the package's sources
(:func:`cryo_companion.runs.sources.package_sha256`: every module and data file of
``cryo_companion/``, not the tests) and the git commit with its dirty flag. A chapter whose
executed notebook matches the scale, the parameters and both hashes is skipped, so a run that
stopped half-way resumes where it stopped and a chapter is re-executed after any change to the
code it may run; ``--force`` re-executes everything. The commit says where to look for what
changed (:func:`staleness` lists the package files changed since it, where git can tell).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryo_companion._io import atomic_path
from cryo_companion._progress import show_progress
from cryo_companion.runs.clean import clean_notebook
from cryo_companion.runs.results import repo_root
from cryo_companion.runs.runtime import DEVICES, SCALES
from cryo_companion.runs.sources import changed_since, git_state, package_sha256

__all__ = ["Chapter", "chapters", "execute_chapter", "is_current", "main", "parse_params",
           "run_pipeline", "staleness"]

META_KEY = "cryo_companion"
#: Extra papermill parameters of one chapter (JSON-like values).
Params = dict[str, Any]


@dataclass(frozen=True)
class Chapter:
    """One chapter: its name, paired source notebook and executed output.

    Attributes
    ----------
    name : str
        The chapter's name (``chapters/NAME`` in ``_toc.yml``).
    source_py : Path
        ``notebooks/NAME.py``, the source of truth.
    source_ipynb : Path
        ``notebooks/NAME.ipynb``, its pair.
    output : Path
        ``book/chapters/NAME.ipynb``, the executed notebook.
    root : Path
        The repository root.
    """

    name: str
    source_py: Path
    source_ipynb: Path
    output: Path
    root: Path

    def source_sha256(self) -> str:
        """Hash the jupytext ``.py`` source (the chapter's source of truth).

        Returns
        -------
        str
            The SHA-256 in hexadecimal.
        """
        return hashlib.sha256(self.source_py.read_bytes()).hexdigest()

    def recorded(self) -> dict[str, Any] | None:
        """Return the ``cryo_companion`` metadata of the executed notebook.

        Returns
        -------
        dict or None
            What the notebook was made from (:func:`execute_chapter`), or None when it is
            missing or unreadable.
        """
        if not self.output.exists():
            return None
        try:
            meta = json.loads(self.output.read_text())["metadata"].get(META_KEY)
        except (ValueError, KeyError):
            return None
        return meta if isinstance(meta, dict) else None

    def needs_gpu(self) -> bool:
        """Tell whether the chapter refuses ``scale="paper"`` without a GPU.

        Read from the chapter's own declaration, the ``paper_needs_gpu=`` argument of its
        :func:`cryo_companion.runs.runtime.setup` call.

        Returns
        -------
        bool
            The declared value; True when absent, as ``setup``'s default.
        """
        for node in ast.walk(ast.parse(self.source_py.read_text(), filename=str(self.source_py))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup"
                    or isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "setup"):
                for kw in node.keywords:
                    if kw.arg == "paper_needs_gpu" and isinstance(kw.value, ast.Constant):
                        return bool(kw.value.value)
        return True


def _toc_files(toc: Path) -> list[str]:
    """Return the file entries of a Jupyter Book ``_toc.yml`` in order (no yaml dependency)."""
    files = []
    for line in toc.read_text().splitlines():
        s = line.strip()
        if s.startswith("- file:") or s.startswith("file:"):
            files.append(s.split("file:", 1)[1].strip())
    return files


def chapters(root: Path | None = None) -> list[Chapter]:
    """List the notebook chapters of ``_toc.yml`` in order.

    Parameters
    ----------
    root : Path or None
        The repository root (default: this checkout's).

    Returns
    -------
    list of Chapter
        The ``chapters/NAME`` entries, each with its ``notebooks/NAME.py``.

    Raises
    ------
    FileNotFoundError
        If an entry has no ``notebooks/NAME.py``.
    """
    root = root or repo_root()
    out = []
    for entry in _toc_files(root / "_toc.yml"):
        if not entry.startswith("chapters/"):
            continue
        name = entry.split("/", 1)[1]
        py = root / "notebooks" / f"{name}.py"
        if not py.exists():
            raise FileNotFoundError(f"_toc.yml lists {entry} but {py} does not exist")
        out.append(Chapter(name, py, py.with_suffix(".ipynb"),
                           root / "book" / "chapters" / f"{name}.ipynb", root))
    return out


def staleness(ch: Chapter, scale: str, params: Params | None = None,
              package: str | None = None) -> str | None:
    """Say why the executed notebook is not current, or None when it is.

    Parameters
    ----------
    ch : Chapter
        The chapter.
    scale : str
        The scale it should have been made at (``"smoke"`` or ``"paper"``).
    params : dict or None
        The extra papermill parameters it should have been made with.
    package : str or None
        The package hash to compare with (default: computed from ``ch.root``).

    Returns
    -------
    str or None
        None if the notebook was made at ``scale`` with ``params`` from the current ``.py`` and
        package sources; else a short reason ("package sources changed (3 files since abc1234)").
    """
    meta = ch.recorded()
    if meta is None:
        return "not executed" if not ch.output.exists() else "no readable record"
    if meta.get("scale") != scale:
        return f"made at scale={meta.get('scale')}"
    if meta.get("params", {}) != (params or {}):
        return f"made with parameters {meta.get('params', {})}, not {params or {}}"
    if meta.get("source_sha256") != ch.source_sha256():
        return f"notebooks/{ch.name}.py changed"
    recorded = meta.get("package_sha256")
    if recorded is None:
        return "made before the package hash was recorded"
    if recorded != (package or package_sha256(ch.root)):
        commit = str(meta.get("commit") or "")
        files = changed_since(commit, ch.root) if commit else None
        if files:
            return f"package sources changed ({len(files)} files since {commit[:7]})"
        return "package sources changed" + (f" (made at {commit[:7]})" if commit else "")
    return None


def is_current(ch: Chapter, scale: str, params: Params | None = None,
               package: str | None = None) -> bool:
    """Tell whether the executed notebook is current (see :func:`staleness`).

    Parameters
    ----------
    ch : Chapter
        The chapter.
    scale : str
        The scale it should have been made at.
    params : dict or None
        The extra papermill parameters it should have been made with.
    package : str or None
        The package hash to compare with (default: computed).

    Returns
    -------
    bool
        True when :func:`staleness` finds no reason.
    """
    return staleness(ch, scale, params, package) is None


def execute_chapter(ch: Chapter, scale: str, device: str, seed: int = 0,
                    timeout_s: int | None = None, params: Params | None = None) -> float:
    """Execute one chapter with papermill.

    The source ``.ipynb`` is first synchronised from the ``.py`` (jupytext), then executed into
    a temporary file, cleaned (:func:`cryo_companion.runs.clean.clean_notebook`: no progress
    frames, warnings or machine paths) and renamed onto ``book/chapters/NAME.ipynb`` only on
    success.

    Parameters
    ----------
    ch : Chapter
        The chapter.
    scale : str
        ``"smoke"`` or ``"paper"`` (the notebook's ``scale`` parameter).
    device : str
        The notebook's ``device`` parameter.
    seed : int
        The notebook's ``seed`` parameter.
    timeout_s : int or None
        Longest time a cell may run (None: no limit).
    params : dict or None
        Extra papermill parameters.

    Returns
    -------
    float
        The wall time in seconds.

    Raises
    ------
    papermill.PapermillExecutionError
        If a cell fails (the executed notebook is then left as it was).
    """
    import jupytext
    import nbformat
    import papermill

    nb = jupytext.read(ch.source_py)
    made_from = {"source_sha256": ch.source_sha256(), "package_sha256": package_sha256(ch.root)}
    commit, dirty = git_state(ch.root)
    t0 = time.time()
    with atomic_path(ch.output, suffix=".ipynb") as tmp:
        src = tmp.with_name(tmp.name + ".in.ipynb")
        try:
            nbformat.write(nb, src)
            papermill.execute_notebook(
                str(src), str(tmp),
                parameters={"scale": scale, "device": device, "seed": seed, **(params or {})},
                kernel_name="python3", cwd=str(ch.source_py.parent),
                progress_bar=show_progress(), execution_timeout=timeout_s)
        finally:
            src.unlink(missing_ok=True)
        wall = time.time() - t0
        out = nbformat.read(tmp, as_version=4)
        clean_notebook(out, root=ch.root)
        out.metadata[META_KEY] = {"scale": scale, "device": device, "seed": seed, **made_from,
                                  "commit": commit, "dirty": dirty,
                                  "params": params or {},
                                  "wall_time_s": round(wall, 1)}
        nbformat.write(out, tmp)
    return wall


def run_pipeline(scale: str = "paper", device: str = "cuda", *, only: Sequence[str] = (),
                 force: bool = False, seed: int = 0, root: Path | None = None,
                 params: dict[str, Params] | None = None) -> dict[str, float | str]:
    """Execute the chapters in order, skipping the current ones.

    A failing chapter is reported and the pipeline stops (later chapters may depend on it).

    Parameters
    ----------
    scale : str
        ``"smoke"`` or ``"paper"``.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    only : sequence of str
        Chapter names to run (default: all).
    force : bool
        Re-execute current chapters too.
    seed : int
        The chapters' ``seed`` parameter.
    root : Path or None
        The repository root (default: this checkout's).
    params : dict or None
        Extra papermill parameters per chapter (``{"table1": {"iterations": 5000}}``); they are
        recorded in the executed notebook and shown by the chapter.

    Returns
    -------
    dict
        ``{name: wall seconds | "skipped" | "failed"}``.

    Raises
    ------
    ValueError
        For an unknown scale, device or chapter name.
    FileNotFoundError
        If a chapter of ``_toc.yml`` has no source.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid values: {', '.join(SCALES)}")
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; valid values: {', '.join(DEVICES)}")
    chs = chapters(root)
    known = {c.name for c in chs}
    unknown = set(only) - known
    if unknown:
        raise ValueError(f"unknown chapter(s) {sorted(unknown)}; chapters: {sorted(known)}")
    report: dict[str, float | str] = {}
    for ch in chs:
        if only and ch.name not in only:
            continue
        extra = (params or {}).get(ch.name, {})
        why = "--force" if force else staleness(ch, scale, extra)
        if why is None:
            print(f"[pipeline] {ch.name}: up to date at scale={scale}, skipped", flush=True)
            report[ch.name] = "skipped"
            continue
        print(f"[pipeline] {ch.name}: executing at scale={scale} on {device} ({why})", flush=True)
        try:
            wall = execute_chapter(ch, scale, device, seed, params=extra)
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell
            print(f"[pipeline] {ch.name}: FAILED ({type(exc).__name__}: {exc})", file=sys.stderr)
            report[ch.name] = "failed"
            break
        print(f"[pipeline] {ch.name}: done in {wall:.1f} s", flush=True)
        report[ch.name] = round(wall, 1)
    return report


def parse_params(items: Sequence[str]) -> dict[str, Params]:
    """Parse ``CHAPTER.NAME=VALUE`` items into ``{chapter: {name: value}}``.

    Parameters
    ----------
    items : sequence of str
        The ``--param`` arguments; each value is parsed as JSON where it can be (``5000`` is an
        int, ``"true"`` a bool), else kept as a string.

    Returns
    -------
    dict
        Extra papermill parameters per chapter.

    Raises
    ------
    ValueError
        If an item is not of the form ``CHAPTER.NAME=VALUE``.
    """
    params: dict[str, Params] = {}
    for item in items:
        key, sep, value = item.partition("=")
        chapter, dot, name = key.partition(".")
        if not (sep and dot and chapter and name):
            raise ValueError(f"--param {item!r} is not CHAPTER.NAME=VALUE (e.g. "
                             "table1.iterations=5000)")
        try:
            params.setdefault(chapter, {})[name] = json.loads(value)
        except ValueError:
            params.setdefault(chapter, {})[name] = value
    return params


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m cryo_companion.runs.pipeline [--scale S] [--device D] [--only NAME ...]``.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when a chapter failed, 2 for bad arguments.
    """
    p = argparse.ArgumentParser(prog="python -m cryo_companion.runs.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="paper", choices=SCALES)
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", default=[], help="chapter names to run (default: all)")
    p.add_argument("--force", action="store_true", help="re-execute up-to-date chapters too")
    p.add_argument("--param", action="append", default=[], metavar="CHAPTER.NAME=VALUE",
                   help="extra papermill parameter of one chapter (value parsed as JSON), e.g. "
                        "table1.iterations=5000")
    args = p.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        params = parse_params(args.param)
        report = run_pipeline(args.scale, args.device, only=args.only, force=args.force,
                              seed=args.seed, params=params)
    except (ValueError, FileNotFoundError) as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 1 if "failed" in report.values() else 0


if __name__ == "__main__":
    sys.exit(main())
