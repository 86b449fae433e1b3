r"""Sphinx extension: MathJax served with the site, so that maths renders from disk, offline.

Sphinx loads MathJax from a CDN by default; a page opened from ``book/_build/html`` without a
network then shows raw ``\(40^3\)``. This extension copies the MathJax 3 distribution shipped by
the ``sphinx-mathjax-offline`` package (PyPI; it installs as the folder
``sphinx-mathjax-offline/static/mathjax``) into the build's ``_static/mathjax`` and points
``mathjax_path`` at ``mathjax/tex-chtml.js`` there. ``_config.yml`` loads it::

    sphinx:
      extra_extensions: [cryo_companion.book.offline_mathjax]
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.config import Config

__all__ = ["MATHJAX_PACKAGE", "MATHJAX_SCRIPT", "mathjax_source", "setup"]

#: The PyPI package that ships MathJax (its import name has hyphens, as its folder does).
MATHJAX_PACKAGE = "sphinx-mathjax-offline"
#: MathJax's combined TeX-input, CommonHTML-output component, relative to ``_static``.
MATHJAX_SCRIPT = "mathjax/tex-chtml.js"


def mathjax_source() -> Path:
    """Find the MathJax folder of the installed ``sphinx-mathjax-offline`` package.

    Returns
    -------
    pathlib.Path
        The folder holding ``tex-chtml.js`` and its fonts.

    Raises
    ------
    RuntimeError
        When the package is not installed (naming the ``pip install`` that fixes it).
    """
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    folder = (Path(spec.origin).parent / "static" / "mathjax"
              if spec is not None and spec.origin else None)
    if folder is None or not (folder / "tex-chtml.js").is_file():
        raise RuntimeError(
            f"MathJax for the offline site comes from the {MATHJAX_PACKAGE!r} package, which "
            f"is not installed: `pip install {MATHJAX_PACKAGE}` (part of the book extra, "
            "`pip install -e '.[book]'`)")
    return folder


def _point_at_local_copy(app: Sphinx, config: Config) -> None:
    mathjax_source()  # fail at the start of the build, not after it
    config.mathjax_path = MATHJAX_SCRIPT


def _copy(app: Sphinx, exc: BaseException | None) -> None:
    if exc is not None or app.builder.format != "html":
        return
    from sphinx.util.fileutil import copy_asset

    copy_asset(str(mathjax_source()), str(Path(app.outdir) / "_static" / "mathjax"))


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the extension with Sphinx.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The Sphinx application.

    Returns
    -------
    dict
        The extension's metadata (parallel-safe).
    """
    app.connect("config-inited", _point_at_local_copy)
    app.connect("build-finished", _copy)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
