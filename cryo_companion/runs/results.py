"""Results with provenance: every number in the book is read from ``results/*.json``.

A result file holds the chapter's numbers under ``"data"`` and a ``"provenance"`` block: git commit
(and whether the tree was dirty), the hash of the package sources
(:func:`cryo_companion.runs.sources.package_sha256`), device name, scale, seeds, wall time, library
versions and the time of the run. Paper-scale runs write to ``results/`` (committed); smoke runs
write to ``results/smoke/`` (ignored), so a CI run never overwrites a committed result.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cryo_companion._io import repo_root, write_json
from cryo_companion.runs.runtime import Run
from cryo_companion.runs.sources import git_state, package_sha256

__all__ = ["results_dir", "provenance", "save_result", "load_result", "load_all"]


def results_dir(scale: str = "paper") -> Path:
    """Return the folder for results of ``scale``.

    Parameters
    ----------
    scale : str
        ``"paper"`` (the root) or another scale (a subfolder of that name, e.g. ``smoke``).

    Returns
    -------
    Path
        ``$CRYO_COMPANION_RESULTS`` or ``results/`` at the repository root, plus ``scale``
        unless it is ``"paper"``.
    """
    root = Path(os.environ.get("CRYO_COMPANION_RESULTS", repo_root() / "results"))
    return root if scale == "paper" else root / scale


def _versions() -> dict[str, str]:
    """Return the versions of Python and the main libraries (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["cryo_companion", "torch", "numpy", "scipy", "mrcfile", "matplotlib"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def device_name(device: torch.device) -> str:
    """Name a torch device for people: the GPU model, or the CPU model and core count.

    Parameters
    ----------
    device : torch.device
        The device.

    Returns
    -------
    str
        E.g. ``"NVIDIA H200"`` or ``"CPU AMD EPYC 7B13 (2 cores)"``.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu} ({os.cpu_count()} cores)"


def provenance(run: Run, seeds: Sequence[int] | None = None, **extra: Any) -> dict[str, Any]:
    """Make the provenance block of a result written by ``run``.

    Parameters
    ----------
    run : Run
        The run.
    seeds : sequence of int or None
        The seeds used (default: the run's seed).
    **extra : Any
        Further JSON-like entries.

    Returns
    -------
    dict
        Commit and dirty flag, package hash, device name, scale, seeds, wall time, versions,
        host, program and the finishing time (UTC), then ``extra``.
    """
    # $CRYO_COMPANION_COMMIT overrides the commit on a machine where the tree is a copy
    # without .git; dirty = tracked sources changed (outputs of earlier runs do not count)
    commit, dirty = git_state(repo_root())
    return {
        "commit": commit,
        "dirty": dirty,
        "package_sha256": package_sha256(),
        "device": device_name(run.device),
        "scale": run.scale,
        "seeds": list(seeds) if seeds is not None else [run.seed],
        "wall_time_s": round(run.wall_time_s, 2),
        "versions": _versions(),
        "host": platform.node(),
        "argv": sys.argv[:1],
        "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def save_result(run: Run, data: dict[str, Any], *, name: str | None = None,
                seeds: Sequence[int] | None = None, **extra: Any) -> Path:
    """Write ``{"data": data, "provenance": ...}`` to ``results_dir(run.scale)/NAME.json``.

    Parameters
    ----------
    run : Run
        The run (its scale chooses the folder).
    data : dict
        The chapter's numbers (JSON-like; NaN is refused, write None).
    name : str or None
        The result's name (default: the chapter's).
    seeds : sequence of int or None
        The seeds used (default: the run's seed).
    **extra : Any
        Further provenance entries.

    Returns
    -------
    Path
        The file written (atomically).

    Raises
    ------
    ValueError
        If ``data`` holds NaN or infinity.
    TypeError
        If ``data`` holds an object JSON cannot represent.
    """
    name = name or run.chapter
    path = results_dir(run.scale) / f"{name}.json"
    write_json(path, {"name": name, "data": data,
                      "provenance": provenance(run, seeds=seeds, **extra)})
    return path


def load_result(name: str, scale: str = "paper") -> dict[str, Any] | None:
    """Read the result ``name`` of ``scale``.

    Parameters
    ----------
    name : str
        The result's name (``results/<name>.json``).
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    dict or None
        The file's content, or None when it has not been produced.
    """
    path = results_dir(scale) / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def load_all(scale: str = "paper") -> dict[str, dict[str, Any]]:
    """Read every result of ``scale``.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    dict of str to dict
        ``{name: content}``, sorted by name.
    """
    d = results_dir(scale)
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}
