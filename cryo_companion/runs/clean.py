r"""Clean an executed notebook for the book: no progress frames, stderr noise or machine paths.

A chapter executed by papermill can carry what a terminal would have overwritten or a reader
does not need: progress-bar frames (``\r``-separated ``tqdm`` updates), Python warnings on
standard error (which print the path of the library that raised them), and absolute paths of the
machine it ran on (``saved /home/me/repo/results/x.json``, papermill's temporary file names). The
package's own bars already stay off notebooks (:mod:`cryo_companion._progress`) and the chapters
print repository-relative paths (:func:`display_path`); this module is the second line, applied
to every executed notebook after papermill (and to older executed chapters, from the command
line):

* :func:`clean_notebook` removes progress frames and warning blocks from stream outputs, merges
  neighbouring stream outputs of the same stream, drops the empty ones, rewrites absolute paths
  in text outputs and in papermill's metadata, and hides the default ``parameters`` cell when
  papermill injected its own (the injected one shows what the chapter ran with);
* :func:`find_problems` lists what a clean chapter must not contain (the book's test runs it
  over ``book/chapters/``).

Nothing else changes: numbers, figures, HTML and Markdown outputs are kept as they are.

Command line::

    python -m cryo_companion.runs.clean book/chapters/NAME.ipynb ...      # clean in place
    python -m cryo_companion.runs.clean --check book/chapters/*.ipynb     # list problems, exit 1
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import nbformat

from cryo_companion._io import repo_root, write_text

__all__ = [
    "MAX_STREAM_OUTPUTS",
    "CleanReport",
    "clean_file",
    "clean_notebook",
    "clean_text",
    "display_path",
    "find_absolute_paths",
    "find_problems",
    "is_progress_frame",
    "main",
    "scrub_paths",
    "strip_progress",
    "strip_warnings",
]

#: A notebook in nbformat 4 form: an ``nbformat.NotebookNode`` or the same JSON as dicts.
Notebook: TypeAlias = "MutableMapping[str, Any]"

#: More stream outputs than this in one chapter means it prints where it should display.
MAX_STREAM_OUTPUTS = 10

# A tqdm frame: "desc:  40%|####      | 2/5 [00:01<00:02,  1.2it/s]" or, without a total,
# "runs finished: 3it [00:04,  1.5s/it]".
_PROGRESS = re.compile(
    r"\d+%\|"                                      # percentage and the bar's left edge
    r"|\|\s*[\d.]+[kMG]?/[\d.]+[kMG]?\s*\["          # "| n/total [" after the bar
    r"|\d+(?:\.\d+)?[kMG]?it \[\d+:\d+"               # "12it [00:03" (no total)
    r"|\[\d+:\d+(?::\d+)?(?:<[\d:?]+)?,\s*(?:[\d.?]+\s*(?:it|s)/(?:s|it)|\?it/s)")
# Cursor movement and line erasing (nested tqdm bars move the cursor up with ESC [ A).
_CURSOR = re.compile(r"\x1b\[\d*[ABCDEFGHJK]")
# "path/to/file.py:21: SomeWarning: message" and the source line Python prints under it.
_WARNING = re.compile(r"^\S.*:\d+: [A-Z]\w*(?:Warning|Deprecation)\b.*\n(?:[ \t]+\S.*\n?)?",
                      re.MULTILINE)
# An absolute POSIX path of at least two components, not part of a URL, a fraction or a word.
_ABS_PATH = re.compile(r"(?<![\w.:/~+\-])/(?:[\w.+\-@]+/)+[\w.+\-@]*")
# Text outputs whose paths are rewritten and checked (HTML and images are left alone: their
# base64 payloads contain slashes).
_TEXT_MIMES = ("text/plain", "text/markdown")


@dataclass
class CleanReport:
    """What :func:`clean_notebook` changed.

    Attributes
    ----------
    progress_frames : int
        Progress-bar frames removed from stream outputs.
    warnings : int
        Warning blocks removed from standard error.
    paths : int
        Absolute paths rewritten.
    streams_merged : int
        Stream outputs merged into their neighbour or dropped once empty.
    parameters_hidden : bool
        The default ``parameters`` cell was tagged ``remove-cell``.
    removed_warnings : list of str
        The first line of every warning removed (for the runner's log).
    """

    progress_frames: int = 0
    warnings: int = 0
    paths: int = 0
    streams_merged: int = 0
    parameters_hidden: bool = False
    removed_warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when anything was changed."""
        return bool(self.progress_frames or self.warnings or self.paths or self.streams_merged
                    or self.parameters_hidden)


def is_progress_frame(text: str) -> bool:
    r"""Tell whether ``text`` (one line or frame) is a progress-bar frame.

    Parameters
    ----------
    text : str
        One line of a stream output, or one ``\r``-separated frame of it.

    Returns
    -------
    bool
        True for ``tqdm``'s frames (``"tomograms:  40%|####  | 2/5 [00:01<00:02, 1.2it/s]"``,
        ``"runs finished: 3it [00:04, 1.5s/it]"``), False for ordinary text.
    """
    return bool(_PROGRESS.search(text))


def strip_progress(text: str) -> tuple[str, int]:
    """Remove progress-bar frames from a stream's text, as a terminal would and more.

    Cursor-movement codes are removed; every line is split at carriage returns into frames; the
    frames that are progress bars are dropped, and of the rest only the last one stays (what a
    terminal shows). A line left empty by this disappears with its newline, and a text left with
    nothing but white space becomes empty.

    Parameters
    ----------
    text : str
        The text of one stream output.

    Returns
    -------
    tuple of (str, int)
        The cleaned text and the number of progress frames removed.
    """
    out: list[str] = []
    removed = 0
    for line in text.splitlines(keepends=True):
        raw = line.rstrip("\n")
        end = line[len(raw):]
        body = _CURSOR.sub("", raw)
        frames = body.split("\r")
        kept = [f for f in frames if not is_progress_frame(f)]
        removed += len(frames) - len(kept)
        if len(kept) < len(frames) or body != raw:  # a line of terminal control: keep its text
            kept = [f for f in kept if f.strip()]
        if kept:
            out.append(kept[-1] + end)
    cleaned = "".join(out)
    return (cleaned if cleaned.strip() else ""), removed


def strip_warnings(text: str) -> tuple[str, list[str]]:
    """Remove Python warning blocks (``file:line: XWarning: message`` + source line).

    Parameters
    ----------
    text : str
        The text of a standard-error stream output.

    Returns
    -------
    tuple of (str, list of str)
        The text without warning blocks, and the first line of each block removed.
    """
    found = [m.group(0).splitlines()[0] for m in _WARNING.finditer(text)]
    return _WARNING.sub("", text), found


def _top_level_names(root: Path) -> set[str]:
    try:
        return {p.name for p in root.iterdir() if not p.name.startswith(".")}
    except OSError:
        return set()


def _shorten(path: str, root: str, tops: set[str]) -> str:
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) + 1:] or "."
    parts = path.strip("/").split("/")
    # a repository path from another machine: keep it from its top-level folder on
    for i, part in enumerate(parts[:-1]):
        if part in tops and i > 0:
            return "/".join(parts[i:])
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    return parts[-1] if parts[-1] else parts[-2]


def scrub_paths(text: str, root: str | os.PathLike | None = None) -> tuple[str, int]:
    """Rewrite absolute paths in ``text``: repository-relative where possible, else the name.

    Parameters
    ----------
    text : str
        Any text output.
    root : str or path-like, optional
        The repository root (default: this checkout's). Paths under it become relative; paths of
        another checkout are recognised by a top-level folder of this one (``results/``,
        ``book/``, ...) and kept from there; library paths keep their part below
        ``site-packages``; any other absolute path is reduced to its last component.

    Returns
    -------
    tuple of (str, int)
        The text and the number of paths rewritten.
    """
    base = Path(root) if root is not None else repo_root()
    tops = _top_level_names(base)
    base_s = str(base).rstrip("/")
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return _shorten(m.group(0), base_s, tops)

    return _ABS_PATH.sub(repl, text), count


def find_absolute_paths(text: str) -> list[str]:
    """Find the absolute paths in ``text`` (see :func:`scrub_paths` for what counts as one).

    Parameters
    ----------
    text : str
        Any text output.

    Returns
    -------
    list of str
        The paths, in order of appearance.
    """
    return _ABS_PATH.findall(text)


def display_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """Show a path as a chapter does: relative to the repository root, never absolute.

    Parameters
    ----------
    path : str or path-like
        A file the chapter wrote or read (``save_result``'s return value, ...).
    root : str or path-like, optional
        The repository root (default: this checkout's).

    Returns
    -------
    str
        ``results/table1.json`` for a file in the repository; for a file elsewhere (a results
        folder moved by ``CRYO_COMPANION_RESULTS``) its name.
    """
    p = Path(path).resolve()
    base = Path(root).resolve() if root is not None else repo_root().resolve()
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return p.name


def clean_text(text: str, *, stderr: bool = False,
               root: str | os.PathLike | None = None) -> tuple[str, CleanReport]:
    """Clean one stream's text: progress frames, warning blocks (``stderr``), paths.

    Parameters
    ----------
    text : str
        The text of a stream output.
    stderr : bool
        Also remove warning blocks (standard error only).
    root : str or path-like, optional
        The repository root for :func:`scrub_paths`.

    Returns
    -------
    tuple of (str, CleanReport)
        The cleaned text and what was removed.
    """
    report = CleanReport()
    text, report.progress_frames = strip_progress(text)
    if stderr:
        text, found = strip_warnings(text)
        report.warnings = len(found)
        report.removed_warnings = found
    text, report.paths = scrub_paths(text, root)
    return text, report


def _add(total: CleanReport, part: CleanReport) -> None:
    total.progress_frames += part.progress_frames
    total.warnings += part.warnings
    total.paths += part.paths
    total.removed_warnings += part.removed_warnings


def _clean_outputs(outputs: list[Any], root: str | os.PathLike | None,
                   report: CleanReport) -> list[Any]:
    cleaned: list[Any] = []
    for out in outputs:
        if out.get("output_type") == "stream":
            text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
            text, part = clean_text(text, stderr=out.get("name") == "stderr", root=root)
            _add(report, part)
            prev = cleaned[-1] if cleaned else None
            if not text:
                report.streams_merged += 1
                continue
            if prev is not None and prev.get("output_type") == "stream" \
                    and prev.get("name") == out.get("name"):
                prev["text"] += text
                report.streams_merged += 1
                continue
            out["text"] = text
        else:
            for mime in _TEXT_MIMES:
                value = out.get("data", {}).get(mime)
                if value is not None:
                    s = value if isinstance(value, str) else "".join(value)
                    s, n = scrub_paths(s, root)
                    report.paths += n
                    out["data"][mime] = s
        cleaned.append(out)
    return cleaned


def _hide_default_parameters(nb: Notebook) -> bool:
    """Tag the default ``parameters`` cell ``remove-cell`` where papermill injected others."""
    cells = nb.get("cells", [])
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    if not any("injected-parameters" in t for t in tags):
        return False
    changed = False
    for cell, t in zip(cells, tags):
        if "parameters" in t and "remove-cell" not in t:
            cell.setdefault("metadata", {})["tags"] = [*t, "remove-cell"]
            changed = True
    return changed


def clean_notebook(nb: Notebook, *, root: str | os.PathLike | None = None) -> CleanReport:
    """Clean an executed notebook in place (see the module's docstring for what changes).

    Parameters
    ----------
    nb : Notebook
        The executed notebook (format 4, an ``nbformat.NotebookNode``), changed in place.
    root : str or path-like, optional
        The repository root used to rewrite paths (default: this checkout's).

    Returns
    -------
    CleanReport
        What was removed or rewritten.
    """
    report = CleanReport()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and cell.get("outputs"):
            cell["outputs"] = _clean_outputs(cell["outputs"], root, report)
    pm = nb.get("metadata", {}).get("papermill", {})
    for key in ("input_path", "output_path"):
        if isinstance(pm.get(key), str):
            pm[key], n = scrub_paths(pm[key], root)
            report.paths += n
    report.parameters_hidden = _hide_default_parameters(nb)
    return report


def _stream_text(out: Mapping[str, Any]) -> str:
    """Return a stream output's text as one string."""
    return out["text"] if isinstance(out["text"], str) else "".join(out["text"])


def _text_outputs(nb: Mapping[str, Any]) -> Iterable[tuple[int, str, str]]:
    """Yield ``(cell index, kind, text)`` of every text output (streams and text MIME types)."""
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "stream":
                yield i, str(out.get("name")), _stream_text(out)
            for mime in _TEXT_MIMES:
                value = out.get("data", {}).get(mime)
                if value is not None:
                    yield i, mime, value if isinstance(value, str) else "".join(value)


def find_problems(nb: Mapping[str, Any], *, max_streams: int = MAX_STREAM_OUTPUTS) -> list[str]:
    """List what must not be on a book page, one line per problem (empty list: clean).

    Parameters
    ----------
    nb : mapping
        An executed notebook (format 4, an ``nbformat.NotebookNode``).
    max_streams : int
        Most stream outputs allowed in the notebook.

    Returns
    -------
    list of str
        Progress frames, warnings on standard error, error outputs, absolute paths in text
        outputs, and too many stream outputs, each naming its cell.
    """
    problems: list[str] = []
    n_streams = 0
    frames_in: dict[tuple[int, str], int] = {}
    first_bar: dict[tuple[int, str], str] = {}
    for i, kind, text in _text_outputs(nb):
        if kind in ("stdout", "stderr"):
            n_streams += 1
            frames = [f for line in text.splitlines() for f in line.split("\r")]
            bars = [f for f in frames if is_progress_frame(f)]
            if bars:
                frames_in[(i, kind)] = frames_in.get((i, kind), 0) + len(bars)
                first_bar.setdefault((i, kind), bars[0].strip()[:60])
            warning = _WARNING.search(text) if kind == "stderr" else None
            if warning:
                problems.append(f"cell {i}: a warning on stderr: "
                                f"{warning.group(0).splitlines()[0][:100]!r}")
        paths = find_absolute_paths(text)
        if paths:
            problems.append(f"cell {i}: absolute path(s) in {kind}: {paths[:3]}")
    problems += [f"cell {i}: {n} progress frame(s) on {kind}, e.g. {first_bar[(i, kind)]!r}"
                 for (i, kind), n in frames_in.items()]
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                problems.append(f"cell {i}: an error output ({out.get('ename')})")
    if n_streams > max_streams:
        problems.append(f"{n_streams} stream outputs (at most {max_streams}): the chapter "
                        "prints where it should display")
    return problems


def clean_file(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> CleanReport:
    """Clean the executed notebook at ``path`` in place (written atomically, only if changed).

    Parameters
    ----------
    path : str or path-like
        An executed ``.ipynb``.
    root : str or path-like, optional
        The repository root used to rewrite paths (default: this checkout's).

    Returns
    -------
    CleanReport
        What was removed or rewritten.
    """
    nb = nbformat.read(path, as_version=4)
    report = clean_notebook(nb, root=root)
    if report.changed:
        mode = os.stat(path).st_mode & 0o777
        text = nbformat.writes(nb)
        write_text(path, text if text.endswith("\n") else text + "\n")
        os.chmod(path, mode)  # the file keeps its permissions
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m cryo_companion.runs.clean [--check] NOTEBOOK ...``.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 1 with ``--check`` when a notebook has problems; 2 on bad input.
    """
    p = argparse.ArgumentParser(prog="python -m cryo_companion.runs.clean",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="+", type=Path, help="executed .ipynb files")
    p.add_argument("--check", action="store_true",
                   help="change nothing; list the problems and exit 1 if there are any")
    args = p.parse_args(argv)
    missing = [str(n) for n in args.notebooks if not n.is_file()]
    if missing:
        print(f"clean: error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    bad = 0
    for path in args.notebooks:
        if args.check:
            problems = find_problems(nbformat.read(path, as_version=4))
            bad += bool(problems)
            for line in problems:
                print(f"{path}: {line}")
            continue
        r = clean_file(path)
        print(f"{path}: {r.progress_frames} progress frames, {r.warnings} warnings, "
              f"{r.paths} paths, {r.streams_merged} stream outputs merged"
              + (", default parameters hidden" if r.parameters_hidden else ""))
        for w in r.removed_warnings:
            print(f"  removed: {w}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
