"""Entry point of ``cryo-companion``: discovers the subcommand modules of ``cryo_companion.cli``."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

import cryo_companion.cli as _cli_pkg

__all__ = ["main", "build_parser"]

_SKIP = {"main"}


def _command_modules():
    for info in sorted(pkgutil.iter_modules(_cli_pkg.__path__), key=lambda i: i.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"cryo_companion.cli.{info.name}")
        if hasattr(mod, "add_args") and hasattr(mod, "main"):
            yield getattr(mod, "COMMAND", info.name.replace("_", "-")), mod


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands)."""
    from cryo_companion import __version__

    parser = argparse.ArgumentParser(prog="cryo-companion", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, mod in _command_modules():
        doc = (mod.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_args(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input or usage, 1 other failure).

    Errors of bad input (``ValueError``, ``FileNotFoundError`` and the package's own input
    errors) are printed as one line, ``cryo-companion COMMAND: error: ...``, with no traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args._main(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"cryo-companion {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
