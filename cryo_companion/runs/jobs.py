"""Paper-scale jobs: what a GPU window runs, in which order, at what estimated cost, and when done.

A job is a command run in the repository root (a chapter executed by the papermill pipeline at
``scale="paper"``, a test file on CUDA, a benchmark). Where jobs come from:

- every chapter of ``_toc.yml`` is a job by itself, named as the chapter: it needs a GPU if its
  :func:`~cryo_companion.runs.runtime.setup` call says ``paper_needs_gpu=True`` (the default),
  comes after the declared jobs in the table of contents' order, and is estimated from its
  executed notebook's recorded ``wall_time_s``;
- a paper declares its jobs, or refines its chapters' (priority, parameters, an estimator that
  knows what the chapter trains), in ``cryo_companion/papers/<paper>/jobs.py``, a module with a
  list ``JOBS`` of :func:`chapter_job` and :func:`command_job` (discovered, nothing to register);
- the generic machinery's pending GPU checks are declared in :mod:`cryo_companion.runs.checks`.

A chapter job is done when its executed notebook is current at paper scale
(:func:`cryo_companion.runs.pipeline.staleness`); any other job when its record in
``results/jobs/NAME.json`` (written by the runner, committed with the window's outputs) says it
passed with the same fingerprint: the package sources, its command and its input files. So a job
committed from an earlier window is skipped, and re-runs after a change to the code it runs.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryo_companion.runs.pipeline import Chapter, chapters
from cryo_companion.runs.sources import files_sha256

__all__ = ["AUTO_PRIORITY", "Estimate", "Estimator", "Job", "JobRecord", "all_jobs",
           "chapter_job", "command_job", "declared_jobs", "estimate", "fingerprint",
           "is_done", "load_record", "notebook_estimate", "order_jobs", "record_path"]

#: Priority of the first undeclared chapter (the next ones follow in table-of-contents order).
AUTO_PRIORITY = 1000
#: Where the runner records every job it ran, relative to the repository root.
RECORDS = Path("results") / "jobs"
#: Modules that declare jobs besides the papers' ``jobs`` modules.
CHECK_MODULES = ("cryo_companion.runs.checks",)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Estimate:
    """An estimated cost and where the figure comes from.

    Attributes
    ----------
    seconds : float
        Estimated wall time of the job, in seconds.
    source : str
        Where the figure comes from (a recorded file and what it measured, or a declared guess).
    """

    seconds: float
    source: str


#: An estimator: ``(root, params) -> Estimate`` or None when it has no recorded figure.
Estimator = Callable[[Path, Mapping[str, Any]], "Estimate | None"]


@dataclass(frozen=True)
class Job:
    """One paper-scale job (build it with :func:`chapter_job` or :func:`command_job`).

    Attributes
    ----------
    name : str
        Unique name (lower case, digits, ``-``, ``_``); a chapter job is named as its chapter.
    priority : int
        Lower runs first (dependencies in ``after`` always run before).
    chapter : str or None
        The chapter a chapter job executes; None for a command job.
    argv : tuple of str
        A command job's command line, run in the repository root; ``{python}`` is replaced by
        the running interpreter and ``{device}`` by the runner's device.
    params : dict
        A chapter job's extra papermill parameters (``{"iterations": 5000}``).
    needs_gpu : bool or None
        True if the job is only run on a CUDA device; None for a chapter job until
        :func:`all_jobs` reads it from the chapter's ``setup(paper_needs_gpu=...)``.
    after : tuple of str
        Jobs that must be done (or pass in the same window) before this one starts.
    inputs : tuple of str
        Files (relative to the root) whose contents count in a command job's fingerprint,
        besides the package sources.
    structures : tuple of str or None
        Entries of the offline structures mirror it reads (``"4v94"``, ``"mb_5gjv"``); None:
        not declared, it may read any (a window then carries the whole mirror).
    estimator : Estimator or None
        The job's own estimate from recorded figures (tried after its own last run).
    guess_s : float or None
        A declared estimate for a job with no recorded figure, with ``guess_source`` saying why.
    guess_source : str
        What the guess rests on.
    description : str
        One line for the plan.
    """

    name: str
    priority: int
    chapter: str | None = None
    argv: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    needs_gpu: bool | None = True
    after: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    structures: tuple[str, ...] | None = None
    estimator: Estimator | None = None
    guess_s: float | None = None
    guess_source: str = ""
    description: str = ""

    def command(self, python: str, device: str) -> list[str]:
        """Return the command line with ``{python}`` and ``{device}`` filled in.

        Parameters
        ----------
        python : str
            The interpreter to run (``sys.executable``).
        device : str
            The runner's device (``"cuda"``, ``"cuda:1"``, ``"cpu"``).

        Returns
        -------
        list of str
            The argument vector.
        """
        if self.chapter is not None:
            argv = ["{python}", "-m", "cryo_companion.runs.pipeline", "--scale", "paper",
                    "--device", "{device}", "--only", self.chapter]
            for key, value in self.params.items():
                argv += ["--param", f"{self.chapter}.{key}={json.dumps(value)}"]
        else:
            argv = list(self.argv)
        return [a.replace("{python}", python).replace("{device}", device) for a in argv]


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"job name {name!r}: use lower-case letters, digits, '-' and '_'")


def chapter_job(chapter: str, *, priority: int, params: Mapping[str, Any] | None = None,
                after: Sequence[str] = (), estimator: Estimator | None = None,
                guess_s: float | None = None, guess_source: str = "",
                description: str = "", needs_gpu: bool | None = None,
                structures: Sequence[str] | None = None) -> Job:
    """Declare (or refine) the paper-scale job of one chapter.

    Parameters
    ----------
    chapter : str
        The chapter's name (``chapters/NAME`` in ``_toc.yml``, ``notebooks/NAME.py``).
    priority : int
        Lower runs first.
    params : dict or None
        Extra papermill parameters of the paper-scale run.
    after : sequence of str
        Jobs that must be done first.
    estimator : Estimator or None
        An estimate from recorded figures (default: the executed notebook's ``wall_time_s``).
    guess_s : float or None
        A declared estimate used when nothing is recorded.
    guess_source : str
        What the guess rests on.
    description : str
        One line for the plan.
    needs_gpu : bool or None
        Whether it needs a GPU; None (the default): as the chapter's
        ``setup(paper_needs_gpu=...)`` says, read by :func:`all_jobs`.
    structures : sequence of str or None
        Entries of the structures mirror it reads; None: not declared (any).

    Returns
    -------
    Job
        The job.
    """
    _check_name(chapter)
    return Job(name=chapter, priority=priority, chapter=chapter, params=dict(params or {}),
               needs_gpu=needs_gpu, after=tuple(after), estimator=estimator, guess_s=guess_s,
               guess_source=guess_source, description=description or f"chapter {chapter}",
               structures=None if structures is None else tuple(structures))


def command_job(name: str, argv: Sequence[str], *, priority: int, needs_gpu: bool = True,
                after: Sequence[str] = (), inputs: Sequence[str] = (),
                structures: Sequence[str] | None = None, estimator: Estimator | None = None,
                guess_s: float | None = None, guess_source: str = "",
                description: str = "") -> Job:
    """Declare a job that runs a command (tests on CUDA, a benchmark, a training run).

    Parameters
    ----------
    name : str
        Unique name (lower case, digits, ``-``, ``_``).
    argv : sequence of str
        The command line, run in the repository root (``{python}``, ``{device}`` are filled in).
    priority : int
        Lower runs first.
    needs_gpu : bool
        True if it only runs on a CUDA device.
    after : sequence of str
        Jobs that must be done first.
    inputs : sequence of str
        Files (relative to the root) whose contents count in its fingerprint (its test files).
    structures : sequence of str or None
        Entries of the structures mirror it reads (``()``: none); None: not declared (any).
    estimator : Estimator or None
        An estimate from recorded figures.
    guess_s : float or None
        A declared estimate used when nothing is recorded.
    guess_source : str
        What the guess rests on.
    description : str
        One line for the plan.

    Returns
    -------
    Job
        The job.

    Raises
    ------
    ValueError
        If the name or the command line is invalid.
    """
    _check_name(name)
    if not argv:
        raise ValueError(f"job {name!r}: empty command line")
    return Job(name=name, priority=priority, argv=tuple(argv), needs_gpu=needs_gpu,
               after=tuple(after), inputs=tuple(inputs), estimator=estimator, guess_s=guess_s,
               guess_source=guess_source, description=description or " ".join(argv),
               structures=None if structures is None else tuple(structures))


def _chapter(name: str, root: Path | None) -> Chapter | None:
    return next((c for c in chapters(root) if c.name == name), None)


def declared_jobs() -> list[Job]:
    """Collect the ``JOBS`` lists of :data:`CHECK_MODULES` and of every ``papers/<paper>/jobs.py``.

    Returns
    -------
    list of Job
        In discovery order (checks first, then the papers in alphabetical order).
    """
    from cryo_companion import papers

    modules = list(CHECK_MODULES)
    for info in sorted(pkgutil.iter_modules(papers.__path__), key=lambda i: i.name):
        name = f"cryo_companion.papers.{info.name}.jobs"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            modules.append(name)
    out: list[Job] = []
    for name in modules:
        out.extend(importlib.import_module(name).JOBS)
    return out


def all_jobs(root: Path | None = None, declared: Iterable[Job] | None = None) -> list[Job]:
    """List every paper-scale job in running order: the declared ones and one per chapter.

    Parameters
    ----------
    root : Path or None
        Repository root; default: this repository.
    declared : iterable of Job or None
        The declared jobs; default: :func:`declared_jobs`.

    Returns
    -------
    list of Job
        Ordered by :func:`order_jobs`.

    Raises
    ------
    ValueError
        If two jobs share a name, a chapter job names a chapter missing from ``_toc.yml``, or a
        dependency is unknown or circular.
    """
    decl = list(declared_jobs() if declared is None else declared)
    toc = {c.name: c for c in chapters(root)}
    by_name: dict[str, Job] = {}
    for job in decl:
        if job.name in by_name:
            raise ValueError(f"two jobs are named {job.name!r}")
        if job.chapter is not None:
            if job.chapter not in toc:
                raise ValueError(f"job {job.name!r} executes chapter {job.chapter!r}, which "
                                 f"_toc.yml does not list (chapters: {', '.join(toc)})")
            if job.needs_gpu is None:
                job = replace(job, needs_gpu=toc[job.chapter].needs_gpu())
        by_name[job.name] = job
    for i, ch in enumerate(toc.values()):
        if ch.name not in by_name:
            by_name[ch.name] = chapter_job(ch.name, priority=AUTO_PRIORITY + i,
                                           needs_gpu=ch.needs_gpu())
    return order_jobs(by_name.values())


def order_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Sort jobs by priority (then name), each after the jobs it depends on.

    Parameters
    ----------
    jobs : iterable of Job
        Jobs with unique names.

    Returns
    -------
    list of Job
        At each step the lowest-priority job whose dependencies are all placed.

    Raises
    ------
    ValueError
        If a dependency is unknown or the dependencies form a cycle.
    """
    pending = {j.name: j for j in jobs}
    for j in pending.values():
        unknown = set(j.after) - set(pending)
        if unknown:
            raise ValueError(f"job {j.name!r} comes after unknown job(s) {sorted(unknown)}")
    placed: list[Job] = []
    done: set[str] = set()
    while pending:
        ready = [j for j in pending.values() if set(j.after) <= done]
        if not ready:
            raise ValueError(f"circular dependencies among jobs {sorted(pending)}")
        nxt = min(ready, key=lambda j: (j.priority, j.name))
        placed.append(nxt)
        done.add(nxt.name)
        del pending[nxt.name]
    return placed


def record_path(root: Path, name: str) -> Path:
    """Return the path of job ``name``'s record.

    Parameters
    ----------
    root : Path
        The repository root.
    name : str
        The job's name.

    Returns
    -------
    Path
        ``ROOT/results/jobs/NAME.json``.
    """
    return root / RECORDS / f"{name}.json"


#: A job's record as the runner writes it (``status``, ``wall_s``, ``fingerprint``, ``device``...).
JobRecord = dict[str, Any]


def load_record(root: Path, name: str) -> JobRecord | None:
    """Return job ``name``'s last record.

    Parameters
    ----------
    root : Path
        The repository root.
    name : str
        The job's name.

    Returns
    -------
    JobRecord or None
        The record, or None when the job never ran (or its record cannot be read).
    """
    path = record_path(root, name)
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def fingerprint(job: Job, root: Path, package: str) -> str:
    """Hash what a job's result depends on: the package sources, its command, its inputs.

    Parameters
    ----------
    job : Job
        The job.
    root : Path
        Repository root.
    package : str
        :func:`cryo_companion.runs.sources.package_sha256` of the tree.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    inputs = files_sha256([root / p for p in job.inputs], root)
    text = json.dumps({"package": package, "argv": job.command("{python}", "{device}"),
                       "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def is_done(job: Job, root: Path, package: str) -> str | None:
    """Return None when the job is done, else why it is pending.

    Parameters
    ----------
    job : Job
        The job.
    root : Path
        Repository root.
    package : str
        The package hash of the tree.

    Returns
    -------
    str or None
        None if done: a chapter whose executed notebook is current at paper scale, a command
        whose record passed with the current fingerprint; else the reason it is pending.
    """
    from cryo_companion.runs.pipeline import staleness

    if job.chapter is not None:
        ch = _chapter(job.chapter, root)
        if ch is None:
            return f"chapter {job.chapter!r} is not in _toc.yml"
        return staleness(ch, "paper", dict(job.params), package)
    rec = load_record(root, job.name)
    if rec is None:
        return "never ran"
    if rec.get("status") != "ok":
        return f"last run {rec.get('status')}"
    if rec.get("fingerprint") != fingerprint(job, root, package):
        return "package, command or inputs changed since its last run"
    return None


def _from_record(job: Job, root: Path) -> Estimate | None:
    rec = load_record(root, job.name)
    if rec is None or rec.get("status") != "ok" or not rec.get("wall_s"):
        return None
    if job.chapter is not None and rec.get("params", {}) != dict(job.params):
        return None
    return Estimate(float(rec["wall_s"]), f"{RECORDS.as_posix()}/{job.name}.json: its last "
                    f"run, on {rec.get('device_name', '?')} at {str(rec.get('commit'))[:7]}")


def notebook_estimate(root: Path, chapter: str, *, scale: str | None = None
                      ) -> Estimate | None:
    """Estimate a chapter from its executed notebook's recorded ``wall_time_s``.

    Parameters
    ----------
    root : Path
        Repository root.
    chapter : str
        The chapter's name: its executed notebook is ``book/chapters/NAME.ipynb`` (missing or
        unreadable: no estimate).
    scale : str or None
        Accept only a run made at this scale (e.g. ``"paper"``: never a smoke run's wall time);
        None: any.

    Returns
    -------
    Estimate or None
        None where the notebook is missing, has no recorded wall time or was made at another
        scale.
    """
    py = root / "notebooks" / f"{chapter}.py"
    meta = Chapter(chapter, py, py.with_suffix(".ipynb"),
                   root / "book" / "chapters" / f"{chapter}.ipynb", root).recorded()
    if not meta or not meta.get("wall_time_s"):
        return None
    if scale is not None and meta.get("scale") != scale:
        return None
    made = f"scale={meta.get('scale')}, {meta.get('device')}"
    if meta.get("params"):
        made += f", parameters {meta['params']}"
    return Estimate(float(meta["wall_time_s"]),
                    f"book/chapters/{chapter}.ipynb wall_time_s ({made})")


def _from_notebook(job: Job, root: Path) -> Estimate | None:
    return notebook_estimate(root, job.chapter) if job.chapter else None


def estimate(job: Job, root: Path) -> Estimate | None:
    """Estimate a job's wall time from recorded figures, saying where the figure comes from.

    Parameters
    ----------
    job : Job
        The job.
    root : Path
        Repository root.

    Returns
    -------
    Estimate or None
        The first that exists of: the job's own last passing run (its record), the job's
        estimator, its executed notebook's ``wall_time_s`` (chapters), its declared guess;
        at least the time a last run took before it was stopped for overrunning (so a job that
        cannot finish in a window is not started again in the next). None when there is none
        (the runner does not start such a job).
    """
    found = _from_record(job, root)
    if found is None and job.estimator is not None:
        found = job.estimator(root, dict(job.params))
    if found is None and job.chapter is not None:
        found = _from_notebook(job, root)
    if found is None and job.guess_s is not None:
        found = Estimate(float(job.guess_s), f"declared guess: {job.guess_source or 'no reason'}")
    rec = load_record(root, job.name)
    if rec is not None and rec.get("status") == "stopped" and rec.get("wall_s"):
        ran = float(rec["wall_s"])
        if found is None or found.seconds < ran:
            found = Estimate(ran, f"{RECORDS.as_posix()}/{job.name}.json: stopped after {ran:.0f} "
                                  "s in its last window without finishing (a lower bound)")
    return found
