"""The budgeted runner: every pending paper-scale job that fits a GPU window, then its archive.

``cryo-companion paper --budget-s 540 --out DIR`` plans the jobs of :mod:`.jobs` in priority
order (done ones are skipped: a chapter whose executed notebook is current, a command whose
record passed with the current fingerprint), estimates each from recorded figures, and runs
those that fit, one process each in the repository root:

- a job whose estimate does not fit in the time left (the budget less a margin kept for
  stopping and packing) is not started; later, cheaper jobs may still be;
- a job that overruns is stopped at the margin (it and every process it started, papermill's
  kernel included), so the packing still happens; its record says so and keeps it from being
  started again on an estimate shorter than the time it already took;
- after every job its record is written to ``results/jobs/NAME.json`` and the archive in ``DIR``
  is rewritten (:func:`cryo_companion.runs.archive.pack`): if the window is cut off, the archive
  of the jobs finished so far is there.
"""
from __future__ import annotations

import datetime as _dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryo_companion._io import write_json
from cryo_companion.runs.archive import (
    ARCHIVE_NAME,
    LIMIT_BYTES,
    Item,
    changed_items,
    pack,
    part_path,
)
from cryo_companion.runs.archive import snapshot as output_snapshot
from cryo_companion.runs.jobs import Estimate, Job, estimate, fingerprint, is_done, record_path
from cryo_companion.runs.sources import git_state, package_sha256

__all__ = ["Step", "format_plan", "make_plan", "run_window", "with_params"]

#: Seconds between asking a stopped job to end (SIGTERM) and killing it (SIGKILL).
STOP_GRACE_S = 5.0
WORK_DIR = Path("build") / "paper_window"


@dataclass
class Step:
    """One job in a window: the plan, then what happened.

    Attributes
    ----------
    job : Job
        The job.
    pending : str or None
        Why it is pending (None: done, skipped).
    estimate : Estimate or None
        Its estimated cost.
    status : str
        ``"done"`` (skipped), ``"planned"``, ``"over budget"`` (planned but its estimate does not
        fit), ``"needs a GPU"``, ``"blocked"``, then ``"ok"``, ``"failed"``, ``"stopped"``
        (overran) or ``"not started"``.
    reason : str
        Detail of the status.
    wall_s : float or None
        Wall time of its run, in seconds.
    log : Path or None
        Its log file.
    """

    job: Job
    pending: str | None
    estimate: Estimate | None
    status: str = "planned"
    reason: str = ""
    wall_s: float | None = None
    log: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the step as the manifest lists it."""
        return {"name": self.job.name, "kind": "chapter" if self.job.chapter else "command",
                "needs_gpu": self.job.needs_gpu, "status": self.status, "reason": self.reason,
                "pending_because": self.pending,
                "wall_s": None if self.wall_s is None else round(self.wall_s, 1),
                "estimate_s": None if self.estimate is None else round(self.estimate.seconds, 1),
                "estimate_source": None if self.estimate is None else self.estimate.source,
                "log": f"logs/{self.log.name}" if self.log else None}


def with_params(jobs: Sequence[Job], params: dict[str, dict]) -> list[Job]:
    """Override chapter jobs' papermill parameters (``{"table1": {"iterations": 5000}}``).

    Parameters
    ----------
    jobs : sequence of Job
        The jobs.
    params : dict
        Extra parameters per chapter name.

    Returns
    -------
    list of Job
        The jobs, chapter jobs with their parameters updated.

    Raises
    ------
    ValueError
        If a chapter named in ``params`` has no job.
    """
    chapters = {j.chapter for j in jobs if j.chapter}
    unknown = set(params) - chapters
    if unknown:
        raise ValueError(f"--param for unknown chapter(s) {sorted(unknown)}; chapters: "
                         f"{', '.join(sorted(c for c in chapters if c))}")
    return [replace(j, params={**j.params, **params[j.chapter]}) if j.chapter in params else j
            for j in jobs]


def make_plan(jobs: Sequence[Job], root: Path, budget_s: float, margin_s: float, device: str,
              package: str, gpu_jobs_only: bool = False) -> list[Step]:
    """Plan a window: which jobs are done, pending, and which fit the budget in order.

    Parameters
    ----------
    jobs : sequence of Job
        In running order (:func:`cryo_companion.runs.jobs.all_jobs`).
    root : Path
        Repository root.
    budget_s : float
        Seconds the window may take, from its start.
    margin_s : float
        Seconds kept at the end for stopping an overrunning job and packing.
    device : str
        ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` (jobs that need a GPU are not run on the CPU).
    package : str
        The tree's package hash.
    gpu_jobs_only : bool
        Leave out the jobs that need no GPU (run those on any machine instead).

    Returns
    -------
    list of Step
        One per job, status ``done``, ``needs a GPU``, ``blocked``, ``planned`` (fits when the
        planned jobs before it take their estimates) or ``over budget``.
    """
    left = budget_s - margin_s
    steps: list[Step] = []
    runs: set[str] = set()
    done: set[str] = set()
    for job in jobs:
        why = is_done(job, root, package)
        step = Step(job, why, estimate(job, root))
        steps.append(step)
        waiting = [d for d in job.after if d not in done and d not in runs]
        if why is None:
            step.status = "done"
            done.add(job.name)
        elif job.needs_gpu and not device.startswith("cuda"):
            step.status, step.reason = "needs a GPU", f"device is {device}"
        elif gpu_jobs_only and not job.needs_gpu:
            step.status, step.reason = "not started", "needs no GPU (--gpu-jobs-only)"
        elif waiting:
            step.status, step.reason = "blocked", f"after {', '.join(waiting)}"
        elif step.estimate is None:
            step.status, step.reason = "over budget", "no estimate (declare one in its jobs.py)"
        elif step.estimate.seconds > left:
            step.status = "over budget"
            step.reason = f"estimate {step.estimate.seconds:.0f} s > {max(left, 0):.0f} s left"
        else:
            left -= step.estimate.seconds
            runs.add(job.name)
    return steps


def format_plan(steps: Sequence[Step], budget_s: float, margin_s: float) -> str:
    """Format the plan or outcome as text: one line per job, the estimate's source below it.

    Parameters
    ----------
    steps : sequence of Step
        From :func:`make_plan` (or after :func:`run_window`).
    budget_s : float
        The window's budget in seconds.
    margin_s : float
        The margin in seconds.

    Returns
    -------
    str
        The table.
    """
    lines = [(f"paper-scale jobs (budget {budget_s:.0f} s, of which {margin_s:.0f} s kept for "
              "stopping and packing):"),
             f"  {'#':>2}  {'job':<22} {'gpu':<3}  {'estimate':>8}  {'status':<12} why / detail"]
    for i, s in enumerate(steps, 1):
        est = "-" if s.estimate is None else f"{s.estimate.seconds:.0f} s"
        detail = s.reason or s.pending or ""
        if s.wall_s is not None:
            detail = f"{s.wall_s:.1f} s" + (f"; {s.reason}" if s.reason else "")
        lines.append(f"  {i:>2}  {s.job.name:<22} {'yes' if s.job.needs_gpu else 'no':<3}  "
                     f"{est:>8}  {s.status:<12} {detail}")
        if s.estimate is not None and s.status != "done":
            lines.append(f"  {'':>2}  {'':<22} estimate from {s.estimate.source}")
    planned = sum(s.estimate.seconds for s in steps if s.status == "planned" and s.estimate)
    lines.append(f"planned: {sum(s.status == 'planned' for s in steps)} jobs, {planned:.0f} s "
                 f"estimated of {budget_s - margin_s:.0f} s")
    return "\n".join(lines)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; papermill's kernel is in its own session)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _signal(pids: Sequence[int], sig: int) -> None:
    """Signal each process, and the job's process group (it leads its own session)."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(pids[0], sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a job and every process it started: SIGTERM, then SIGKILL after a grace period."""
    pids = [proc.pid, *_descendants(proc.pid)]
    _signal(pids, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    _signal([proc.pid, *_descendants(proc.pid), *pids], signal.SIGKILL)
    proc.wait()


def _run(step: Step, root: Path, device: str, timeout_s: float, log: Path) -> None:
    """Run one job in the root with its output in ``log``; set its status and wall time."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CRYO_COMPANION_PROGRESS": "0"}
    argv = step.job.command(sys.executable, device)
    t0 = time.monotonic()
    with open(log, "wb") as f:
        proc = subprocess.Popen(argv, cwd=root, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            step.status, step.reason = "stopped", f"over the {timeout_s:.0f} s left; stopped"
        else:
            step.status = "ok" if rc == 0 else "failed"
            step.reason = "" if rc == 0 else f"exit code {rc}"
    step.wall_s = time.monotonic() - t0
    step.log = log


def _tail(path: Path, n: int = 6) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if ln.strip()][-n:]


def _record(step: Step, root: Path, window: dict[str, Any], package: str) -> None:
    """Write the job's record, ``results/jobs/NAME.json`` (what :func:`is_done` reads)."""
    job = step.job
    write_json(record_path(root, job.name), {
        "name": job.name, "status": step.status, "reason": step.reason,
        "wall_s": None if step.wall_s is None else round(step.wall_s, 1),
        "estimate_s": None if step.estimate is None else round(step.estimate.seconds, 1),
        "estimate_source": None if step.estimate is None else step.estimate.source,
        "fingerprint": fingerprint(job, root, package), "params": dict(job.params),
        "argv": job.command("{python}", "{device}"),
        "summary": (_tail(step.log, 1) or [""])[0] if step.log else "",
        **{k: window[k] for k in ("commit", "dirty", "package_sha256", "device", "device_name",
                                  "window_id")},
        "finished_utc": _now()})


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _device_name(device: str) -> str:
    import torch

    from cryo_companion.runs.results import device_name

    if device.startswith("cuda") and not torch.cuda.is_available():
        return "no CUDA device"
    return device_name(torch.device(device))


def _window(root: Path, device: str, budget_s: float, margin_s: float) -> dict[str, Any]:
    commit, dirty = git_state(root)
    return {"window_id": _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
            "commit": commit, "dirty": dirty, "package_sha256": package_sha256(root),
            "device": device, "device_name": _device_name(device), "budget_s": budget_s,
            "margin_s": margin_s, "python": sys.version.split()[0], "started_utc": _now()}


def _save(root: Path, dest: Path, steps: Sequence[Step], window: dict[str, Any],
          before: dict[str, str], limit_bytes: int, t0: float) -> dict[str, Any]:
    items = changed_items(root, before)
    items += [Item(f"logs/{s.log.name}", s.log, "log") for s in steps if s.log]
    return pack(items, {**window, "elapsed_s": round(time.monotonic() - t0, 1),
                        "jobs": [s.to_dict() for s in steps]}, dest, limit_bytes)


def _gate(step: Step, steps: Sequence[Step], left_s: float) -> str | None:
    """Why a planned job is not started now (None: start it)."""
    ended = {s.job.name: s.status for s in steps}
    waiting = [d for d in step.job.after if ended.get(d) not in ("done", "ok")]
    if waiting:
        step.status = "blocked"
        return f"after {', '.join(waiting)} ({', '.join(ended.get(d, '?') for d in waiting)})"
    if step.estimate is None or step.estimate.seconds > left_s:
        step.status = "not started"
        est = "no estimate" if step.estimate is None else f"estimate {step.estimate.seconds:.0f} s"
        return f"{est} > {max(left_s, 0):.0f} s left"
    return None


def run_window(jobs: Sequence[Job], root: Path, out_dir: Path | None, *, budget_s: float,
               margin_s: float = 30.0, device: str = "cuda", limit_bytes: int = LIMIT_BYTES,
               dry_run: bool = False, gpu_jobs_only: bool = False,
               echo: bool = True) -> tuple[list[Step], dict[str, Any] | None]:
    """Run the pending jobs that fit the budget and pack what comes back into ``out_dir``.

    Parameters
    ----------
    jobs : sequence of Job
        In running order (:func:`cryo_companion.runs.jobs.all_jobs`).
    root : Path
        Repository root (jobs run there; outputs are read from there).
    out_dir : Path or None
        Folder of the archive ``paper-window.tar.gz`` (may be None for a dry run).
    budget_s : float
        Seconds the whole window may take, from this call.
    margin_s : float
        Seconds kept for stopping an overrunning job and packing.
    device : str
        ``"cuda"``, ``"cuda:N"`` or ``"cpu"``.
    limit_bytes : int
        Largest allowed archive size.
    dry_run : bool
        Print the plan and return without running anything.
    gpu_jobs_only : bool
        Leave out the jobs that need no GPU.
    echo : bool
        Print the plan, progress and outcome on standard output.

    Returns
    -------
    tuple of (list of Step, dict or None)
        The steps with their outcome, and the manifest as packed (None for a dry run).

    Raises
    ------
    ValueError
        If the budget or margin is not positive and smaller than the budget, or no output folder
        is given for a real run.
    RuntimeError
        If a CUDA device is asked for and there is none (before anything runs).
    """
    if not budget_s > 0 or not 0 <= margin_s < budget_s:
        raise ValueError(f"need budget_s > 0 and 0 <= margin_s < budget_s, got budget_s="
                         f"{budget_s}, margin_s={margin_s}")
    if not dry_run and out_dir is None:
        raise ValueError("an output folder is needed (--out DIR) unless --dry-run")
    t0 = time.monotonic()
    say = print if echo else (lambda *a, **k: None)
    package = package_sha256(root)
    steps = make_plan(jobs, root, budget_s, margin_s, device, package, gpu_jobs_only)
    say(format_plan(steps, budget_s, margin_s), flush=True)
    if dry_run:
        return steps, None
    assert out_dir is not None
    window = _window(root, device, budget_s, margin_s)
    if window["device_name"] == "no CUDA device":
        raise RuntimeError(f"device {device!r} asked for but no CUDA GPU is available here; "
                           "--device cpu runs the jobs that need none")
    work = root / WORK_DIR / window["window_id"]
    work.mkdir(parents=True, exist_ok=True)
    dest = out_dir / ARCHIVE_NAME
    before = output_snapshot(root)
    _save(root, dest, steps, window, before, limit_bytes, t0)
    deadline = t0 + budget_s - margin_s
    for i, step in enumerate(steps, 1):
        if step.status not in ("planned", "over budget", "blocked"):
            continue
        left = deadline - time.monotonic()
        why = _gate(step, steps, left)
        if why is not None:
            step.reason = why
            say(f"[paper] {i} {step.job.name}: {step.status} ({why})", flush=True)
            continue
        est_s = step.estimate.seconds if step.estimate else 0.0
        say(f"[paper] {i} {step.job.name}: running (estimate {est_s:.0f} s, {left:.0f} s left)",
            flush=True)
        _run(step, root, device, left, work / f"{step.job.name}.log")
        say(f"[paper] {i} {step.job.name}: {step.status} in {step.wall_s:.1f} s"
            + (f" ({step.reason})" if step.reason else ""), flush=True)
        if step.status != "ok" and step.log:
            for line in _tail(step.log):
                say(f"    | {line}", flush=True)
        _record(step, root, window, package)
        _save(root, dest, steps, window, before, limit_bytes, t0)
    manifest = _save(root, dest, steps, window, before, limit_bytes, t0)
    say(format_plan(steps, budget_s, margin_s), flush=True)
    parts = [part_path(dest, k) for k in range(1, int(manifest.get("parts", 1)) + 1)]
    size = sum(p.stat().st_size for p in parts)
    say(f"archive {dest}: {size / 2**20:.2f} MiB, {len(manifest['files'])} files"
        + (f" in {len(parts)} parts ({', '.join(p.name for p in parts)})" if len(parts) > 1
           else "")
        + "".join(f"\n  left out {x['path']} ({x['size'] / 2**20:.1f} MiB): {x['reason']}"
                  for x in manifest["left_out"]), flush=True)
    return steps, manifest
