"""Pieces shared by the subcommands: argument types and messages that speak in options.

Parsing only; the work is the package's.
"""
from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

__all__ = ["cli_box_advice", "finite_float", "int_at_least", "positive_float"]

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
    """Parse a finite number (an argparse type)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def positive_float(text: str) -> float:
    """Parse a finite number > 0 (an argparse type)."""
    v = finite_float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def int_at_least(lo: int) -> Callable[[str], int]:
    """Return an argparse type that parses an integer >= ``lo``."""
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
