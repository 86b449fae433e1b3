"""Regenerate the stored smoke-scale outputs of ``notebooks/*.ipynb`` (``make notebook-outputs``).

CI runs strict nbval (``pytest --nbval``) on the paired notebooks: every cell is executed at smoke
scale and its outputs are compared with the outputs stored in ``notebooks/NAME.ipynb``, after the
masks of ``notebooks/nbval_sanitize.cfg`` (timings, paths, memory addresses, the last digit of
decimals; images are not compared). A changed smoke-scale number therefore fails CI until
someone regenerates the stored outputs with this command and looks at the difference
(``git diff notebooks/``).

For each chapter the jupytext source ``notebooks/NAME.py`` is read (the source of truth),
executed top to bottom in ``notebooks/`` with the default parameters (smoke scale), cleaned
(:func:`cryo_companion.runs.clean.clean_notebook`), slimmed (:func:`slim_outputs`: images and
base64 payloads, which nbval does not compare, are not stored) and written atomically to
``notebooks/NAME.ipynb``, still paired with its ``.py``. A chapter that fails leaves its stored
notebook untouched.

Command line::

    python -m cryo_companion.runs.notebook_outputs [NAME ...]     # default: every chapter
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cryo_companion._io import repo_root, write_text
from cryo_companion.runs.clean import Notebook, clean_notebook

__all__ = ["BASE64_PLACEHOLDER", "execute_source", "main", "regenerate", "slim_outputs"]

#: What a base64 payload of 200 characters or more reads in a stored output (the sanitize file
#: masks the fresh outputs' payloads with the same token).
BASE64_PLACEHOLDER = "<base64>"
_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
#: Output types nbval never compares (its default), so they are not stored either.
_IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")


def execute_source(source_py: str | os.PathLike, *, timeout_s: int = 1800,
                   root: str | os.PathLike | None = None) -> Notebook:
    """Execute a jupytext chapter source with its default parameters; return the notebook.

    Parameters
    ----------
    source_py : str or path-like
        ``notebooks/NAME.py``.
    timeout_s : int
        Longest time one cell may run, in seconds.
    root : str or path-like, optional
        The repository root, for cleaning paths (default: this checkout's).

    Returns
    -------
    nbformat.NotebookNode
        The executed, cleaned notebook (no timing metadata).
    """
    import jupytext
    from nbclient import NotebookClient

    source_py = Path(source_py)
    nb = jupytext.read(source_py)
    env = os.environ.copy()
    os.environ.setdefault("CRYO_COMPANION_PROGRESS", "0")
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(source_py.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env)
    clean_notebook(nb, root=root)
    return nb


def slim_outputs(nb: Notebook) -> int:
    """Drop images and base64 payloads from a notebook's outputs, in place.

    nbval does not compare images, and the sanitize file masks base64 payloads (the static
    explorer's frames), so neither needs storing: the stored notebooks stay small and their
    diffs readable. The executed chapters of the book keep theirs.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook.

    Returns
    -------
    int
        The number of images and payloads removed.
    """
    removed = 0
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data", {})
            for mime in _IMAGE_MIMES:
                if mime in data:
                    del data[mime]
                    removed += 1
            html = data.get("text/html")
            if html is not None:
                s = html if isinstance(html, str) else "".join(html)
                s, n = _BASE64.subn(BASE64_PLACEHOLDER, s)
                data["text/html"] = s
                removed += n
    return removed


def regenerate(name: str, *, root: str | os.PathLike | None = None,
               timeout_s: int = 1800) -> float:
    """Re-execute chapter ``name`` at smoke scale and store its outputs in its ``.ipynb``.

    Parameters
    ----------
    name : str
        The chapter (``notebooks/NAME.py``).
    root : str or path-like, optional
        The repository root (default: this checkout's).
    timeout_s : int
        Longest time one cell may run, in seconds.

    Returns
    -------
    float
        Wall time of the execution in seconds.

    Raises
    ------
    FileNotFoundError
        When ``notebooks/NAME.py`` does not exist.
    """
    import nbformat

    base = Path(root) if root is not None else repo_root()
    src = base / "notebooks" / f"{name}.py"
    if not src.is_file():
        raise FileNotFoundError(f"no chapter source {src}")
    t0 = time.perf_counter()
    nb = execute_source(src, timeout_s=timeout_s, root=base)
    slim_outputs(nb)
    text = nbformat.writes(nb)
    dest = src.with_suffix(".ipynb")
    mode = os.stat(dest).st_mode & 0o777 if dest.exists() else 0o644
    write_text(dest, text if text.endswith("\n") else text + "\n")
    os.chmod(dest, mode)  # the stored notebook keeps its permissions
    # the pair stays in step: the .py is not older than its .ipynb
    os.utime(src)
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m cryo_companion.runs.notebook_outputs [NAME ...]``.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every chapter ran, 1 when one failed, 2 on an unknown chapter.
    """
    p = argparse.ArgumentParser(prog="python -m cryo_companion.runs.notebook_outputs",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="chapters to regenerate (default: all)")
    args = p.parse_args(argv)
    known = sorted(s.stem for s in (repo_root() / "notebooks").glob("*.py")
                   if s.name != "conftest.py")
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        print(f"notebook_outputs: error: unknown chapter(s) {', '.join(unknown)}; chapters: "
              f"{', '.join(known)}", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if os.environ.get("CRYO_COMPANION_RESULTS"):
        print("notebook_outputs: warning: CRYO_COMPANION_RESULTS is set; the chapters read the "
              "committed results/ in CI, so the stored outputs may not match", file=sys.stderr)

    failed = 0
    for name in args.names or known:
        try:
            wall = regenerate(name)
        except (CellExecutionError, CellTimeoutError, DeadKernelError, OSError,
                RuntimeError) as exc:  # a failing chapter: report it and go on with the others
            print(f"{name}: FAILED ({type(exc).__name__}: {str(exc)[-500:]})", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: stored outputs regenerated in {wall:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
