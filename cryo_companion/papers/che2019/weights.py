"""The committed weights of every Table I arm and ablation: small files, read back in float32.

What a GPU window brings back is a few archives of at most 16 MiB each, and the repository keeps
every arm's weights, so a trained run is **exported**: its weights rewritten small
(:func:`compact_weights`) into ``results/weights/`` and its training record (configuration,
validation history, timing, device, the weights' SHA-256) into ``results/training/``, with
provenance (:func:`export_run`). :func:`train_and_export` trains runs with
:func:`~cryo_companion.papers.che2019.train.train_many` and exports each group as soon as it has
trained, so a window that ends midway keeps the groups it finished; a run already exported with
the same configuration is not trained again.

The format (our decision). The state dict is stored in **float16** (IEEE half precision), every
other field of :func:`cryo_companion.models.dsrf3d.save_weights` unchanged, plus
``"state_dtype": "float16"``: 2.1 MB for the 1,065,864 parameters of Table I's network instead of
4.3 MB. :func:`cryo_companion.models.dsrf3d.load_weights` reads such a file unchanged: loading a
state dict copies it into the float32 parameters, so the network is float32 again. float16 and
not bfloat16: both halve the file; float16 keeps 11 significant bits against bfloat16's 8, and
the weights of these networks lie far inside float16's range (largest magnitude below 1, so
nothing overflows; values below 6e-8 become 0). On the six committed 5,000-iteration runs, the
class probabilities on both smoke test sets moved by at most 4e-4 with float16 (2e-3 to 4e-3
with bfloat16) and no predicted class changed (``tests/test_che2019_weights.py`` checks the
classes on a test set).

File names: ``table1_{arm}_seed{seed}.pt`` (an arm of :data:`~cryo_companion.papers.che2019.
train.ARMS`) and ``ablation_{name}_seed{seed}.pt`` (the ablations'
:func:`~cryo_companion.papers.che2019.ablation.weights_by_ablation` pattern); the records have the
same stem (``results/training/table1_randomized_seed0.json``).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from cryo_companion._io import atomic_path
from cryo_companion.models.dsrf3d import WEIGHTS_FORMAT
from cryo_companion.papers.che2019.train import (
    ABLATION_ARM_PREFIX,
    TrainConfig,
    TrainResult,
    train_many,
)
from cryo_companion.runs.sources import file_sha256

__all__ = ["COMMITTED_DTYPE", "DTYPES", "as_exported", "compact_weights", "export_run", "exported",
           "load_record", "record_name", "records_dir", "train_and_export", "weights_dir",
           "weights_name"]

#: The dtype of the committed state dicts (see the module docstring).
COMMITTED_DTYPE = "float16"
#: Dtypes :func:`compact_weights` writes.
DTYPES: dict[str, torch.dtype] = {"float16": torch.float16, "bfloat16": torch.bfloat16,
                                  "float32": torch.float32}


def compact_weights(src: str | os.PathLike, dest: str | os.PathLike, *,
                    dtype: str = COMMITTED_DTYPE) -> Path:
    """Rewrite a weights file of ``save_weights`` with its state dict in ``dtype``, atomically.

    Parameters
    ----------
    src : str or os.PathLike
        A weights file of :func:`cryo_companion.models.dsrf3d.save_weights` (float32 or already
        compact).
    dest : str or os.PathLike
        The file to write (may be ``src``).
    dtype : str
        A key of :data:`DTYPES` (default float16).

    Returns
    -------
    pathlib.Path
        ``dest``: the same payload, floating-point tensors of the state dict in ``dtype``
        (integer tensors unchanged), ``"state_dtype"`` added.

    Raises
    ------
    ValueError
        For an unknown dtype, a file that is not such a weights file, or a weight that is not
        finite or does not fit ``dtype``'s range.
    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    try:
        payload = torch.load(Path(src), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own message advises weights_only=False: not for us
        raise ValueError(f"{src}: not a cryo_companion weights file ({type(exc).__name__})"
                         ) from exc
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{src}: not a weights file of format {WEIGHTS_FORMAT!r}")
    dt = DTYPES[dtype]
    biggest = torch.finfo(dt).max
    state = {}
    for k, v in payload["state_dict"].items():
        if v.is_floating_point():
            v32 = v.float()
            if not bool(torch.isfinite(v32).all()) or float(v32.abs().max()) > biggest:
                raise ValueError(f"{src}: {k} is not finite or exceeds the {dtype} range "
                                 f"(|w| <= {biggest:g})")
            v = v32.to(dt)
        state[k] = v.contiguous()
    out = {**payload, "state_dict": state, "state_dtype": dtype}
    with atomic_path(dest, suffix=".pt") as tmp:
        torch.save(out, tmp)
    return Path(dest)


def weights_name(arm: str, seed: int) -> str:
    """File name of a run's committed weights.

    Parameters
    ----------
    arm : str
        A Table I arm or ``"ablation:NAME"``.
    seed : int
        The run's seed.

    Returns
    -------
    str
        ``table1_{arm}_seed{seed}.pt`` or ``ablation_{name}_seed{seed}.pt``.
    """
    return f"{record_name(arm, seed)}.pt"


def record_name(arm: str, seed: int) -> str:
    """Stem of a run's committed weights and training record.

    Parameters
    ----------
    arm : str
        A Table I arm or ``"ablation:NAME"``.
    seed : int
        The run's seed.

    Returns
    -------
    str
        ``table1_{arm}_seed{seed}`` or ``ablation_{name}_seed{seed}``.
    """
    if arm.startswith(ABLATION_ARM_PREFIX):
        return f"ablation_{arm[len(ABLATION_ARM_PREFIX):]}_seed{seed}"
    return f"table1_{arm}_seed{seed}"


def weights_dir(scale: str = "paper") -> Path:
    """Folder of the exported weights: ``results/weights`` (paper), ``results/smoke/weights``.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    pathlib.Path
        Under :func:`cryo_companion.runs.results.results_dir`.
    """
    from cryo_companion.runs.results import results_dir

    return results_dir(scale) / "weights"


def records_dir(scale: str = "paper") -> Path:
    """Folder of the training records: ``results/training`` (paper), ``results/smoke/training``.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    pathlib.Path
        Under :func:`cryo_companion.runs.results.results_dir`.
    """
    from cryo_companion.runs.results import results_dir

    return results_dir(scale) / "training"


def load_record(arm: str, seed: int, scale: str = "paper") -> dict[str, Any] | None:
    """Read the training record of one exported run.

    Parameters
    ----------
    arm : str
        A Table I arm or ``"ablation:NAME"``.
    seed : int
        The run's seed.
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    dict or None
        ``{"name", "data", "provenance"}`` (``data``: ``config``, ``weights``,
        ``weights_sha256``, ``state_dtype``, ``history``, ``timing``, ...), None if not exported.
    """
    path = records_dir(scale) / f"{record_name(arm, seed)}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def exported(cfg: TrainConfig, scale: str = "paper") -> dict[str, Any] | None:
    """Return the record of a run exported with exactly this configuration, weights intact.

    Parameters
    ----------
    cfg : TrainConfig
        The run.
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    dict or None
        The record (:func:`load_record`) if its configuration is ``cfg`` and the weights file
        beside it has the recorded SHA-256; else None (the run must be trained).
    """
    rec = load_record(cfg.arm, cfg.seed, scale)
    if rec is None or not cfg.same_run(rec["data"].get("config")):
        return None
    w = weights_dir(scale) / rec["data"]["weights"]
    if not w.is_file() or file_sha256(w) != rec["data"]["weights_sha256"]:
        return None
    return rec


def as_exported(cfg: TrainConfig, precisions: Sequence[str] = ("bf16", "tf32"),
                scale: str = "paper") -> TrainConfig:
    """Return the settings of an export of this run in another of ``precisions``, if any.

    ``--precision checked`` resolves to bf16 or tf32 by the recorded precision check of the
    device model at hand; a run exported by an earlier window in the other one of the two is
    the same run, already trained, and is not trained again.

    Parameters
    ----------
    cfg : TrainConfig
        The run, with its resolved precision.
    precisions : sequence of str
        The precisions that count as the same run.
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    TrainConfig
        ``cfg`` if it is exported as it is, or not in any of ``precisions``; else ``cfg`` with
        the precision of its export.
    """
    from dataclasses import replace

    if cfg.precision not in precisions or exported(cfg, scale) is not None:
        return cfg
    for p in precisions:
        other = replace(cfg, precision=p)
        if p != cfg.precision and exported(other, scale) is not None:
            return other
    return cfg


def export_run(result: TrainResult, *, scale: str = "paper", started: float | None = None,
               dtype: str = COMMITTED_DTYPE) -> dict[str, Any]:
    """Write a finished run's compact weights and its training record, with provenance.

    Parameters
    ----------
    result : TrainResult
        A finished run (:func:`~cryo_companion.papers.che2019.train.train_many`).
    scale : str
        ``"paper"``: ``results/weights`` and ``results/training`` (committed); ``"smoke"``:
        under ``results/smoke``.
    started : float or None
        ``time.time()`` when its training call began (the provenance's wall time); default now.
    dtype : str
        Dtype of the stored state dict (:data:`COMMITTED_DTYPE`).

    Returns
    -------
    dict
        The record as written (``results/training/NAME.json``).
    """
    from cryo_companion.runs.results import save_result
    from cryo_companion.runs.runtime import Run

    s = result.summary
    cfg = TrainConfig.from_dict(s["config"])
    dest = compact_weights(result.weights, weights_dir(scale) / weights_name(cfg.arm, cfg.seed),
                           dtype=dtype)
    data = {"arm": cfg.arm, "seed": cfg.seed, "config": cfg.to_dict(), "weights": dest.name,
            "weights_sha256": file_sha256(dest), "state_dtype": dtype,
            "float32_weights_sha256": file_sha256(result.weights),
            "device": s["device"], "n_parameters": s["n_parameters"], "history": s["history"],
            "timing": s["timing"]}
    device = torch.device("cuda" if str(s["device"]).startswith("cuda") else "cpu")
    run = Run(scale=scale, device=device, seed=cfg.seed,
              chapter=f"training/{record_name(cfg.arm, cfg.seed)}",
              started=time.time() if started is None else started)
    path = save_result(run, data, seeds=[cfg.seed])
    return json.loads(path.read_text())


def train_and_export(configs: Sequence[TrainConfig], root: str | os.PathLike,
                     device: str = "cuda", *, scale: str = "paper",
                     dtype: str = COMMITTED_DTYPE, retrain: bool = False,
                     on_export: Callable[[dict[str, Any]], None] | None = None,
                     **train_kwargs: Any) -> list[dict[str, Any]]:
    """Train the runs not yet exported and export each group as soon as it has trained.

    Parameters
    ----------
    configs : sequence of TrainConfig
        The runs.
    root : str or os.PathLike
        Folder of the run folders (checkpoints; not committed).
    device : str
        Training device (as :func:`~cryo_companion.papers.che2019.train.train_many`).
    scale : str
        Where the exports go (:func:`export_run`).
    dtype : str
        Dtype of the stored state dicts.
    retrain : bool
        Train and export every run even if it is exported already (a smoke-scale chapter, whose
        numbers must come from the code as it is; ``root`` should then hold no finished run).
    on_export : callable or None
        Called with each record as it is written.
    **train_kwargs
        Passed to :func:`~cryo_companion.papers.che2019.train.train_many` (``strategy``,
        ``progress``, ``launcher``, ...).

    Returns
    -------
    list of dict
        The record of every run, in the order of ``configs`` (those exported earlier with the
        same configuration are read, not trained again). Under ``torchrun`` each process
        exports the runs it trained; the list is complete on process 0 (another process's
        holds the records it can read).
    """
    started = time.time()
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for c in configs:
        rec = None if retrain else exported(c, scale)
        if rec is not None:
            records[(c.arm, c.seed)] = rec

    def save(results: list[TrainResult]) -> None:
        for r in results:
            cfg = TrainConfig.from_dict(r.summary["config"])
            if (cfg.arm, cfg.seed) in records:
                continue
            # under torchrun: exported by the process that trained it
            rec = None if retrain else exported(cfg, scale)
            if rec is None:
                rec = export_run(r, scale=scale, started=started, dtype=dtype)
                if on_export is not None:
                    on_export(rec)
            records[(cfg.arm, cfg.seed)] = rec

    todo = [c for c in configs if (c.arm, c.seed) not in records]
    if todo:
        from cryo_companion.learn.distributed import rank_info

        results = train_many(todo, root, device, on_group=save, **train_kwargs)
        if rank_info().rank != 0:
            return [records[k] for c in configs if (k := (c.arm, c.seed)) in records]
        # runs finished in an earlier session on this machine come back without a group call
        save(results)
    return [records[(c.arm, c.seed)] for c in configs]
