"""Per-run records of a paper's trainings: ``results/FOLDER/NAME.json``, one per finished run.

A paper's experiment saves each run's record as soon as the run ends (so a GPU window that
stops midway loses nothing) and skips a run whose record is *current*: made with the same run
description, the same settings and the same package sources (:func:`current_record`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryo_companion.runs.results import load_result, results_dir
from cryo_companion.runs.sources import package_sha256

__all__ = ["current_record", "load_records"]


def load_records(folder: str, scale: str = "paper") -> dict[str, dict[str, Any]]:
    """Read every run record of ``scale`` in ``results/FOLDER/*.json``; unreadable ones skipped.

    Parameters
    ----------
    folder : str
        The records' folder under the scale's results folder (e.g. ``"ssn3d_runs"``).
    scale : str
        ``"paper"`` or ``"smoke"`` (``results/smoke/FOLDER``).

    Returns
    -------
    dict
        ``name -> {"data": ..., "provenance": ...}``, sorted by name.
    """
    out = {}
    for p in sorted((results_dir(scale) / folder).glob("*.json")):
        try:
            out[p.stem] = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    return out


def current_record(folder: str, name: str, run: Mapping[str, Any], settings: Mapping[str, Any],
                   scale: str, package: str | None = None) -> dict[str, Any] | None:
    """Return run ``name``'s record if it was made with this run, settings and package sources.

    Parameters
    ----------
    folder : str
        The records' folder (:func:`load_records`).
    name : str
        The run's name (its record is ``FOLDER/NAME.json``).
    run : mapping
        The run's description as recorded (``data["run"]``).
    settings : mapping
        Its settings as recorded (``data["settings"]``).
    scale : str
        ``"paper"`` or ``"smoke"``.
    package : str or None
        The package hash to match (None: this tree's, :func:`~.sources.package_sha256`).

    Returns
    -------
    dict or None
        The record, or None where it is missing or was made otherwise.
    """
    rec = load_result(f"{folder}/{name}", scale)
    if not rec:
        return None
    d, prov = rec.get("data") or {}, rec.get("provenance") or {}
    if d.get("run") != dict(run) or d.get("settings") != dict(settings):
        return None
    if prov.get("package_sha256") != (package or package_sha256()):
        return None
    return rec
