"""cryo-companion: simulate, train, predict and score cryo-ET subtomograms and tomograms.

Every command checks its inputs and output places before any work, never replaces an existing
output unless given --force (then atomically), never deletes what it did not write, and
reports an expected failure as one line on standard error with exit status 2 (Ctrl-C: 130).
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import NoReturn

import cryo_companion.cli as _cli_pkg

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]

#: Exit status of bad input, a refused output place, or a usage error.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

_SKIP = {"main"}

_EPILOG = """\
environment:
  CRYO_COMPANION_STRUCTURES  offline folder of structures (pdb/ID.pdb.gz, maps_10A/ID.mrc.gz),
                             searched before the cache and a download from the PDB
  CRYO_COMPANION_CACHE       cache of downloaded structures and computed volumes
                             (default ~/.cache/cryo_companion)
  CRYO_COMPANION_OFFLINE     set to any value: never download from the PDB
  CRYO_COMPANION_PDB_URL     base URL of PDB downloads (default RCSB)
  CRYO_COMPANION_PROGRESS    1: always draw progress bars, 0: never (default: on a terminal)
  see the README for the others (results, data, threads)

'cryo-companion COMMAND --help' shows a command's options and their defaults."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with status 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} "
                              f"(see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help ends with its default where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False
                or default is argparse.SUPPRESS or not action.option_strings or action.required):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _command_modules() -> Iterator[tuple[str, ModuleType]]:
    for info in sorted(pkgutil.iter_modules(_cli_pkg.__path__), key=lambda i: i.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"cryo_companion.cli.{info.name}")
        if hasattr(mod, "add_args") and hasattr(mod, "main"):
            yield getattr(mod, "COMMAND", info.name.replace("_", "-")), mod


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser (all subcommands).

    Returns
    -------
    argparse.ArgumentParser
        Commands that write files (their module defines ``outputs(args)``) get ``--force``.
    """
    from cryo_companion import __version__

    parser = _Parser(prog="cryo-companion", description=__doc__, epilog=_EPILOG,
                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, mod in _command_modules():
        doc = (mod.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=_Formatter)
        mod.add_args(p)
        if hasattr(mod, "outputs"):
            p.add_argument("--force", action="store_true",
                           help="replace existing outputs (each atomically); files this command "
                                "did not write are never touched")
        p.set_defaults(_module=mod)
    return parser


def _error(command: str, exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        msg: object = exc.args[0]
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        msg = f"{exc.filename}: {exc.strerror}"
    else:
        msg = exc
    return f"cryo-companion {command}: error: {_one_line(msg)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 2 for bad input, a refused output place or a file system error (one line
        ``cryo-companion COMMAND: error: ...`` on stderr, no traceback); 130 after Ctrl-C (one
        line, saying how to resume where the command can); 1 when the output pipe closed.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()  # imports every command (torch among them): Ctrl-C may come
    except KeyboardInterrupt:
        print("cryo-companion: interrupted while starting; nothing was done", file=sys.stderr)
        return EXIT_INTERRUPTED
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given (for resume hints)
    mod = args._module
    try:
        plan = mod.outputs(args) if hasattr(mod, "outputs") else None
        if plan is not None:
            plan.check(force=bool(getattr(args, "force", False)))  # before any work
        rc = mod.main(args)
    except KeyboardInterrupt:
        hint = mod.interrupted(args) if hasattr(mod, "interrupted") else None
        tail = f"; {hint}" if hint else "; no half-written file was left"
        from cryo_companion._progress import show_progress

        start = "\n" if show_progress() else ""  # past a progress bar drawn on stderr
        print(f"{start}cryo-companion {args.command}: interrupted{tail}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of stdout went away (`... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (ValueError, FileNotFoundError, KeyError, RuntimeError, OSError) as exc:
        print(_error(args.command, exc), file=sys.stderr)
        return EXIT_USAGE
    return int(rc or 0)


def entry() -> None:
    """Run :func:`main` as a program: its status is the process's exit status.

    After Ctrl-C the process ends at once with status 130 (streams flushed, no interpreter
    teardown): a worker thread interrupted inside a native operation can otherwise abort the
    teardown (``terminate called without an active exception``, status −6) after the one line
    was printed. Every output was already completed or removed while the interrupt unwound.
    """
    rc = main()
    if rc == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    entry()
