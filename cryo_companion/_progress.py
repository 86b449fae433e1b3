"""Progress bars that show on a terminal and stay out of notebooks, logs and the book.

Every long loop of the package goes through :func:`progress`: a plain ``tqdm`` bar (never
``tqdm.auto``, whose notebook widget leaves empty boxes and a ``TqdmWarning`` in executed
chapters) that is shown only when standard error is a terminal. ``CRYO_COMPANION_PROGRESS=1``
forces bars on, ``=0`` off.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

__all__ = ["progress", "show_progress"]

T = TypeVar("T")


def show_progress(requested: bool | None = True) -> bool:
    """Whether a progress bar is drawn.

    Parameters
    ----------
    requested : bool or None
        The caller's wish (``False``: never; ``True`` or ``None``: when attached to a terminal).

    Returns
    -------
    bool
        True when a bar is drawn: requested, and standard error is a terminal (or
        ``CRYO_COMPANION_PROGRESS=1``); ``CRYO_COMPANION_PROGRESS=0`` turns every bar off.
    """
    env = os.environ.get("CRYO_COMPANION_PROGRESS")
    if requested is False or env == "0":
        return False
    if env == "1":
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(iterable: Iterable[T] | None = None, *, show: bool | None = True,
             **kwargs: Any) -> tqdm:
    """Make a ``tqdm`` bar over ``iterable``, disabled off a terminal (see :func:`show_progress`).

    Parameters
    ----------
    iterable : iterable or None
        What to iterate over (None: a manual bar, advanced with ``update``).
    show : bool or None
        False never draws the bar; True or None draws it on a terminal.
    **kwargs
        Passed to ``tqdm`` (``total``, ``desc``, ``initial``, ``mininterval``, ...).

    Returns
    -------
    tqdm
        The bar (a pass-through iterator when disabled).
    """
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=not show_progress(show), **kwargs)
