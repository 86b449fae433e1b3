"""Pieces shared by the subcommands: argument types and messages that speak in options.

Parsing only; the work is the package's.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable

__all__ = ["cli_box_advice", "finite_float", "input_contrast", "int_at_least", "positive_float"]

_PY_ADVICE = re.compile(r"[;,]?\s*(pass|use) a larger box or grow_box=True\.?\s*$")


def cli_box_advice(exc: BaseException, advice: str) -> str:
    """Rewrite a "box too small" error with the command line's advice.

    Parameters
    ----------
    exc : BaseException
        The package's ``BoxTooSmallError`` (its advice names Python arguments).
    advice : str
        What to do on the command line (e.g. ``"pass a larger --box, or --grow-box"``).

    Returns
    -------
    str
        The message without the Python advice, ending in ``advice``.
    """
    return f"{_PY_ADVICE.sub('', str(exc)).rstrip('; ')}; {advice}"


def finite_float(text: str) -> float:
    """Parse a finite number (an argparse type).

    Parameters
    ----------
    text : str
        The command-line value.

    Returns
    -------
    float
        The number.

    Raises
    ------
    argparse.ArgumentTypeError
        ``text`` is not a number, or is infinite or NaN.
    """
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def positive_float(text: str) -> float:
    """Parse a finite number > 0 (an argparse type).

    Parameters
    ----------
    text : str
        The command-line value.

    Returns
    -------
    float
        The number.

    Raises
    ------
    argparse.ArgumentTypeError
        ``text`` is not a finite number, or is not > 0.
    """
    v = finite_float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def int_at_least(lo: int) -> Callable[[str], int]:
    """Return an argparse type that parses an integer >= ``lo``.

    Parameters
    ----------
    lo : int
        The smallest value accepted.

    Returns
    -------
    Callable[[str], int]
        The parser (named ``integer >= lo`` in argparse's messages); it raises
        ``argparse.ArgumentTypeError`` for a value that is not an integer or is below ``lo``.
    """
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {lo}")
        return v
    parse.__name__ = f"integer >= {lo}"
    return parse


def input_contrast(choice: str, path: str, command: str) -> str:
    """Return how mass appears in an input: ``choice``, or the contrast recorded beside it.

    With ``choice`` ``"auto"`` the contrast recorded beside the input
    (:func:`cryo_companion.dataset.recorded_contrast`) is used, else mass is assumed dark (raw
    reconstructions) and a warning says so; an explicit choice that contradicts a record is
    kept, with a warning.

    Parameters
    ----------
    choice : str
        ``"auto"``, ``"dark"`` or ``"bright"`` (the ``--contrast`` option).
    path : str
        The input MRC file.
    command : str
        The subcommand, named in the warnings.

    Returns
    -------
    str
        ``"dark"`` or ``"bright"``.
    """
    from cryo_companion.dataset import recorded_contrast

    def warn(message: str) -> None:
        print(f"cryo-companion {command}: warning: {message}", file=sys.stderr)

    if choice != "auto":
        try:
            recorded, side = recorded_contrast(path)
        except ValueError:
            recorded, side = None, None
        if recorded is not None and recorded != choice:
            warn(f"--contrast {choice} overrides the contrast {recorded!r} recorded in {side}")
        return choice
    recorded, side = recorded_contrast(path)
    if recorded is None:
        warn(f"no contrast recorded beside {path} (no NAME.json or meta.json saying "
             "\"contrast\"); assuming mass is dark (raw reconstructions): pass --contrast "
             "bright if it is bright, e.g. inverted or simulated")
        return "dark"
    return recorded
