"""The paper-scale runner on the CPU with fake jobs: job list and order, estimates, the budget
stop, skipping done jobs, packing (size limit, manifest) and unpacking (round trip, refusal)."""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from cryo_companion.cli.main import main as cli
from cryo_companion.runs.archive import ARCHIVE_NAME, Item, pack, read_manifest, unpack
from cryo_companion.runs.jobs import (
    AUTO_PRIORITY,
    Estimate,
    all_jobs,
    chapter_job,
    command_job,
    estimate,
    is_done,
    order_jobs,
)
from cryo_companion.runs.runner import make_plan, run_window, with_params
from cryo_companion.runs.sources import package_sha256

PY = "{python}"


def _repo(root: Path, chapters: dict[str, str] | None = None) -> Path:
    """A fake repository: a package, a table of contents, chapters, outputs."""
    (root / "cryo_companion").mkdir(parents=True)
    (root / "cryo_companion" / "m.py").write_text("X = 1\n")
    (root / "notebooks").mkdir()
    (root / "book" / "chapters").mkdir(parents=True)
    (root / "results" / "weights").mkdir(parents=True)
    toc = ["format: jb-book", "root: intro", "chapters:"]
    for name, body in (chapters or {}).items():
        (root / "notebooks" / f"{name}.py").write_text(body + "\n")
        toc.append(f"  - file: chapters/{name}")
    (root / "_toc.yml").write_text("\n".join(toc) + "\n")
    return root


def _py(code: str) -> tuple[str, ...]:
    return (PY, "-c", code)


def _writes(rel: str, text: str = "{}") -> tuple[str, ...]:
    return _py(f"import pathlib; p = pathlib.Path({rel!r}); p.parent.mkdir(parents=True, "
               f"exist_ok=True); p.write_text({text!r})")


def _job(name: str, argv: tuple[str, ...], guess_s: float = 1.0, **kw: object) -> object:
    return command_job(name, argv, guess_s=guess_s, guess_source="test", needs_gpu=False,
                       **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the job list and its order

def test_order_is_priority_with_dependencies_first() -> None:
    a = _job("a", _py("pass"), priority=30)
    b = _job("b", _py("pass"), priority=10, after=("c",))
    c = _job("c", _py("pass"), priority=20)
    d = _job("d", _py("pass"), priority=20)
    assert [j.name for j in order_jobs([a, b, c, d])] == ["c", "b", "d", "a"]
    with pytest.raises(ValueError, match="unknown job"):
        order_jobs([_job("x", _py("pass"), priority=1, after=("nope",))])
    with pytest.raises(ValueError, match="circular"):
        order_jobs([_job("x", _py("pass"), priority=1, after=("y",)),
                    _job("y", _py("pass"), priority=1, after=("x",))])
    with pytest.raises(ValueError, match="job name"):
        command_job("Bad Name", ("true",), priority=1)


def test_every_chapter_is_a_job_and_declarations_refine_them(tmp_path: Path) -> None:
    root = _repo(tmp_path, {
        "intro_cpu": 'run = setup(scale, device, seed, chapter="x", paper_needs_gpu=False)',
        "big": 'run = setup(scale, device, seed, chapter="big")'})
    check = _job("check", _py("pass"), priority=5)
    jobs = all_jobs(root, [check, chapter_job("big", priority=50, params={"iterations": 7})])
    assert [(j.name, j.priority, j.needs_gpu) for j in jobs] == [
        ("check", 5, False), ("big", 50, True), ("intro_cpu", AUTO_PRIORITY, False)]
    assert jobs[1].command("py", "cuda") == [
        "py", "-m", "cryo_companion.runs.pipeline", "--scale", "paper", "--device", "cuda",
        "--only", "big", "--param", "big.iterations=7"]
    with pytest.raises(ValueError, match="does not list"):
        all_jobs(root, [chapter_job("missing", priority=1)])
    with pytest.raises(ValueError, match="two jobs"):
        all_jobs(root, [check, check])
    assert with_params(jobs, {"big": {"iterations": 9}})[1].params == {"iterations": 9}
    with pytest.raises(ValueError, match="unknown chapter"):
        with_params(jobs, {"nope": {}})


def test_the_real_registry() -> None:
    """The project's own jobs: the simulator's checks first, every chapter, an estimate each."""
    from cryo_companion._io import repo_root
    from cryo_companion.runs.pipeline import chapters

    root = repo_root()
    jobs = all_jobs(root)
    names = [j.name for j in jobs]
    assert names[:2] == ["simulator-cuda-tests", "bench-simulate-cuda"]
    assert {c.name for c in chapters(root)} <= set(names)
    assert names.index("test_domain") < names.index("table1")
    for j in jobs:
        est = estimate(j, root)
        assert est is not None and est.seconds > 0 and est.source, j.name


# ---------------------------------------------------------------- estimates and done jobs

def test_estimates_say_where_they_come_from(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"ch": "x = 1"})
    nb = {"cells": [], "metadata": {"cryo_companion": {"scale": "paper", "wall_time_s": 42.0,
                                                       "device": "cuda", "params": {}}}}
    (root / "book" / "chapters" / "ch.ipynb").write_text(json.dumps(nb))
    ch = all_jobs(root, [])[0]
    assert estimate(ch, root) == Estimate(
        42.0, "book/chapters/ch.ipynb wall_time_s (scale=paper, cuda)")
    job = _job("j", _py("pass"), priority=1, guess_s=5.0)
    assert estimate(job, root) == Estimate(5.0, "declared guess: test")
    assert estimate(command_job("n", ("true",), priority=1), root) is None
    custom = _job("c", _py("pass"), priority=1, estimator=lambda r, p: Estimate(3.0, "mine"))
    assert estimate(custom, root) == Estimate(3.0, "mine")
    # its own last run beats everything; a stopped run is a lower bound
    rec = root / "results" / "jobs" / "j.json"
    rec.parent.mkdir()
    rec.write_text(json.dumps({"status": "ok", "wall_s": 8.0, "device_name": "GPU X",
                               "commit": "abcdef0123"}))
    assert estimate(job, root).seconds == 8.0  # type: ignore[union-attr]
    assert "results/jobs/j.json" in estimate(job, root).source  # type: ignore[union-attr]
    rec.write_text(json.dumps({"status": "stopped", "wall_s": 300.0}))
    assert estimate(job, root).seconds == 300.0  # type: ignore[union-attr]
    assert "lower bound" in estimate(job, root).source  # type: ignore[union-attr]


def test_plan_packs_the_budget_in_priority_order(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    jobs = [_job("a", _py("pass"), priority=1, guess_s=50),
            _job("big", _py("pass"), priority=2, guess_s=500),
            _job("b", _py("pass"), priority=3, guess_s=40, after=("big",)),
            _job("c", _py("pass"), priority=4, guess_s=30),
            command_job("gpu", ("true",), priority=5, guess_s=1)]
    steps = make_plan(jobs, root, budget_s=110, margin_s=20, device="cpu",
                      package=package_sha256(root))
    assert [(s.job.name, s.status) for s in steps] == [
        ("a", "planned"), ("big", "over budget"), ("b", "blocked"), ("c", "planned"),
        ("gpu", "needs a GPU")]
    assert steps[1].reason == "estimate 500 s > 40 s left"


# ---------------------------------------------------------------- running a window

def _window(root: Path, out: Path, jobs: list, budget_s: float = 60.0, **kw: object):
    return run_window(jobs, root, out, budget_s=budget_s, margin_s=kw.pop("margin_s", 2.0),
                      device="cpu", echo=False, **kw)  # type: ignore[arg-type]


def test_runs_records_packs_and_skips_done_jobs(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    (root / "results" / "old.json").write_text("{}")
    jobs = [_job("first", _writes("results/first.json", '{"x": 1}'), priority=1),
            _job("huge", _py("pass"), priority=2, guess_s=1e6),
            _job("weights", _writes("results/weights/w.pt", "w" * 1000), priority=3),
            _job("fails", _py("import sys; print('boom'); sys.exit(3)"), priority=4),
            _job("after_fail", _py("pass"), priority=5, after=("fails",))]
    steps, manifest = _window(root, tmp_path / "out", jobs)
    assert [(s.job.name, s.status) for s in steps] == [
        ("first", "ok"), ("huge", "not started"), ("weights", "ok"), ("fails", "failed"),
        ("after_fail", "blocked")]
    assert steps[3].reason == "exit code 3"
    assert manifest is not None
    files = {f["path"]: f for f in manifest["files"]}
    # new outputs and records come back, the untouched result does not; logs too
    assert {"results/first.json", "results/weights/w.pt", "results/jobs/first.json",
            "results/jobs/fails.json", "logs/fails.log"} <= set(files)
    assert "results/old.json" not in files and files["results/first.json"]["base_sha256"] is None
    assert [j["status"] for j in manifest["jobs"]] == [s.status for s in steps]
    read, contents = read_manifest(tmp_path / "out" / ARCHIVE_NAME)
    assert read["jobs"] == manifest["jobs"] and b"boom" in contents["logs/fails.log"]
    rec = json.loads((root / "results" / "jobs" / "first.json").read_text())
    assert rec["status"] == "ok" and rec["wall_s"] >= 0 and rec["package_sha256"]
    # a second window: the passed job is done and skipped, the failed one runs again
    steps2, _ = _window(root, tmp_path / "out2", jobs)
    assert [s.status for s in steps2][:1] == ["done"] and steps2[3].status == "failed"
    # a change to the package makes it pending again
    (root / "cryo_companion" / "m.py").write_text("X = 2\n")
    assert is_done(jobs[0], root, package_sha256(root)) == (
        "package, command or inputs changed since its last run")


def test_an_overrunning_job_is_stopped_with_its_children(tmp_path: Path) -> None:
    """A job (with a grandchild in its own session, as papermill's kernel) that overruns is
    stopped at the margin; the packing still happens and later jobs are not started."""
    root = _repo(tmp_path / "repo")
    pidfile = tmp_path / "grandchild.pid"
    spawn = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', "
             "'import time; time.sleep(120)'], start_new_session=True); "
             f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(120)")
    jobs = [_job("sleeper", _py(spawn), priority=1, guess_s=0.5),
            _job("next", _writes("results/next.json"), priority=2, guess_s=0.5)]
    t0 = time.monotonic()
    steps, manifest = _window(root, tmp_path / "out", jobs, budget_s=6.0, margin_s=2.0)
    elapsed = time.monotonic() - t0
    assert [s.status for s in steps] == ["stopped", "not started"]
    assert 2.0 < steps[0].wall_s < 4.0 + 5.5  # type: ignore[operator]
    assert elapsed < 6.0 + 5.0  # the stop's grace period is the only overrun allowed
    grandchild = Path(f"/proc/{int(pidfile.read_text())}/stat")
    time.sleep(0.2)
    assert not grandchild.exists() or grandchild.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert manifest is not None and (tmp_path / "out" / ARCHIVE_NAME).exists()
    rec = json.loads((root / "results" / "jobs" / "sleeper.json").read_text())
    assert rec["status"] == "stopped"
    # next time its estimate is at least what it already took
    assert estimate(jobs[0], root).seconds >= round(steps[0].wall_s, 1)  # type: ignore[union-attr,arg-type]


def test_bad_budget_and_cuda_without_a_gpu(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    with pytest.raises(ValueError, match="margin_s"):
        run_window([], root, tmp_path / "o", budget_s=10, margin_s=10, echo=False)
    with pytest.raises(ValueError, match="--out"):
        run_window([], root, None, budget_s=10, margin_s=1, echo=False)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            run_window([], root, tmp_path / "o", budget_s=10, margin_s=1, device="cuda",
                       echo=False)


# ---------------------------------------------------------------- packing

def _random_file(path: Path, n: int, seed: int) -> Path:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).bytes(n))  # incompressible
    return path


def test_pack_keeps_under_the_limit_dropping_logs_first(tmp_path: Path) -> None:
    res = tmp_path / "results" / "r.json"
    res.parent.mkdir()
    res.write_text(json.dumps({"x": list(range(1000))}))
    items = [Item("results/r.json", res, "result"),
             Item("book/chapters/c.ipynb", _random_file(tmp_path / "c", 300_000, 1), "notebook"),
             Item("results/weights/w.pt", _random_file(tmp_path / "w", 400_000, 2), "weights"),
             Item("logs/j.log", _random_file(tmp_path / "l", 200_000, 3), "log")]
    dest = tmp_path / "a.tar.gz"
    man = pack(items, {"jobs": []}, dest, limit_bytes=2**20)  # all fit
    assert {f["path"] for f in man["files"]} == {i.name for i in items} and not man["left_out"]
    man = pack(items, {"jobs": []}, dest, limit_bytes=900_000)  # the log must go
    assert [x["path"] for x in man["left_out"]] == ["logs/j.log"]
    assert dest.stat().st_size <= 900_000
    man = pack(items, {"jobs": []}, dest, limit_bytes=500_000)  # then the weights
    assert [x["path"] for x in man["left_out"]] == ["results/weights/w.pt", "logs/j.log"]
    assert "exceed" in man["left_out"][0]["reason"] and dest.stat().st_size <= 500_000
    read, contents = read_manifest(dest)
    assert set(contents) == {"results/r.json", "book/chapters/c.ipynb"}
    assert read["left_out"] == man["left_out"]
    with pytest.raises(ValueError, match="results alone"):
        pack(items, {"jobs": []}, dest, limit_bytes=66_000)


# ---------------------------------------------------------------- unpacking

def _made_window(tmp_path: Path) -> tuple[Path, Path]:
    """A repository at its 'commit' (kept as a copy) and the archive of one window run in it."""
    base = _repo(tmp_path / "base", {"ch": "x = 1"})
    (base / "results" / "table.json").write_text('{"v": 0}')
    (base / "book" / "chapters" / "ch.ipynb").write_text('{"old": true}')
    window = tmp_path / "window"
    shutil.copytree(base, window)
    jobs = [_job("update", _writes("results/table.json", '{"v": 1}'), priority=1),
            _job("chapter", _writes("book/chapters/ch.ipynb", '{"new": true}'), priority=2),
            _job("new", _writes("results/new.json"), priority=3)]
    _window(window, tmp_path / "out", jobs)
    return base, tmp_path / "out" / ARCHIVE_NAME


def test_unpack_round_trip(tmp_path: Path) -> None:
    base, archive = _made_window(tmp_path)
    repo = tmp_path / "repo"
    shutil.copytree(base, repo)
    _, wrote = unpack(archive, repo)
    actions = dict(wrote)
    assert actions["results/table.json"] == "updated" and actions["results/new.json"] == "new"
    assert actions["book/chapters/ch.ipynb"] == "updated"
    assert (repo / "results" / "table.json").read_text() == '{"v": 1}'
    logs = [p for p in actions if p.startswith("build/paper_logs/")]
    assert len(logs) == 3 and all((repo / p).is_file() for p in logs)
    for rel in ("results/table.json", "results/new.json", "book/chapters/ch.ipynb"):
        assert (repo / rel).read_bytes() == (tmp_path / "window" / rel).read_bytes()
    # again: nothing to do
    _, again = unpack(archive, repo)
    assert {a for _, a in again} == {"unchanged"}


def test_unpack_refuses_files_changed_since_the_window(tmp_path: Path) -> None:
    base, archive = _made_window(tmp_path)
    repo = tmp_path / "repo"
    shutil.copytree(base, repo)
    (repo / "results" / "table.json").write_text('{"v": "edited here"}')
    with pytest.raises(ValueError, match="results/table.json"):
        unpack(archive, repo)
    assert not (repo / "results" / "new.json").exists()  # nothing written
    assert cli(["unpack", str(archive), "--root", str(repo)]) == 2
    assert cli(["unpack", str(archive), "--root", str(repo), "--force"]) == 0
    assert (repo / "results" / "table.json").read_text() == '{"v": 1}'


def test_unpack_checks_the_archive(tmp_path: Path) -> None:
    _, archive = _made_window(tmp_path)
    manifest, contents = read_manifest(archive)

    def rebuild(name: str, members: dict[str, bytes], man: dict) -> Path:
        import io

        dest = tmp_path / name
        with tarfile.open(dest, "w:gz") as tar:
            for n, data in [("manifest.json", json.dumps(man).encode()), *members.items()]:
                info = tarfile.TarInfo(n)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return dest

    bad_hash = dict(contents, **{"results/new.json": b"tampered"})
    with pytest.raises(ValueError, match="SHA-256"):
        read_manifest(rebuild("hash.tar.gz", bad_hash, manifest))
    with pytest.raises(ValueError, match="not a listed output file"):
        read_manifest(rebuild("extra.tar.gz", dict(contents, **{"setup.py": b"x"}), manifest))
    outside = {**manifest, "files": [*manifest["files"], {"path": "../evil", "sha256": "0"}]}
    with pytest.raises(ValueError, match="not a listed output file"):
        read_manifest(rebuild("evil.tar.gz", dict(contents, **{"../evil": b"x"}), outside))
    with pytest.raises(ValueError, match="missing"):
        read_manifest(rebuild("missing.tar.gz", {}, manifest))
    with pytest.raises(ValueError, match="format"):
        read_manifest(rebuild("format.tar.gz", contents, {**manifest, "format": "other"}))
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a readable"):
        read_manifest(tmp_path / "junk.tar.gz")


# ---------------------------------------------------------------- the command line

def test_paper_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["paper", "--dry-run", "--device", "cpu", "--only", "simulator-cuda-tests",
                "structures"]) == 0
    out = capsys.readouterr().out
    assert "simulator-cuda-tests" in out and "needs a GPU" in out and "estimate from" in out
    assert "table1" not in out
    assert cli(["paper", "--device", "cpu"]) == 2  # no --out
    assert "--out" in capsys.readouterr().err
    (tmp_path / ARCHIVE_NAME).write_text("x")
    assert cli(["paper", "--out", str(tmp_path), "--device", "cpu"]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli(["paper", "--dry-run", "--only", "nope"]) == 2
    assert cli(["paper", "--dry-run", "--param", "table1.iterations"]) == 2


# ---------------------------------------------------------------- what a window carries

def _mirror(root: Path) -> Path:
    for rel in ("pdb/1abc.pdb.gz", "maps_10A/1abc.mrc.gz", "maps_10A/mb_2xyz.mrc.gz",
                "pdb/9zzz.pdb.gz", "README.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    return root


def test_structures_of_the_pending_jobs_are_staged(tmp_path: Path) -> None:
    from cryo_companion.runs.staging import stage_structures, structure_files

    src = _mirror(tmp_path / "mirror")
    a = _job("a", _py("pass"), priority=1, structures=("1ABC",))
    b = _job("b", _py("pass"), priority=2, structures=("mb_2xyz",))
    none = _job("none", _py("pass"), priority=3, structures=())
    files, why = structure_files([a, b, none], src)
    # both the atoms and the map of an entry travel, so a lookup finds what it finds here
    assert [f.relative_to(src).as_posix() for f in files] == [
        "README.md", "pdb/1abc.pdb.gz", "maps_10A/1abc.mrc.gz", "maps_10A/mb_2xyz.mrc.gz"]
    assert why == "2 entries declared by a, b"
    undeclared = _job("any", _py("pass"), priority=4)
    files_all, why_all = structure_files([a, undeclared], src)
    assert len(files_all) == 5 and "whole mirror: any" in why_all
    with pytest.raises(ValueError, match="'7nop'"):
        structure_files([_job("c", _py("pass"), priority=1, structures=("7nop",))], src)
    dest = tmp_path / "carry"
    assert stage_structures(files, src, dest) == sum(f.stat().st_size for f in files)
    assert (dest / "maps_10A" / "mb_2xyz.mrc.gz").read_text() == "maps_10A/mb_2xyz.mrc.gz"
    with pytest.raises(ValueError, match="--force"):
        stage_structures(files, src, dest)
    stage_structures(files, src, dest, force=True)


def test_the_gpu_chapters_declare_what_they_read() -> None:
    """Table I and the test domain read the class set, the crowders and the membrane proteins;
    each declared entry is in the mirror (structure_files raises otherwise)."""
    from cryo_companion.papers.che2019.jobs import STRUCTURES
    from cryo_companion.papers.che2019.test_domain import TEST_DOMAIN_CONFIG
    from cryo_companion.runs.staging import structure_files
    from cryo_companion.structures.membrane import MEMBRANE_PROTEINS

    assert {"4v7r", "4v94", "4cr2", *TEST_DOMAIN_CONFIG["crowders"], *MEMBRANE_PROTEINS} <= set(
        STRUCTURES)
    gpu = [j for j in all_jobs() if j.needs_gpu]
    files, why = structure_files(gpu, Path(os.environ["CRYO_COMPANION_STRUCTURES"]))
    assert "test_domain, table1" in why and "shrec_data" in why and len(files) > len(STRUCTURES)
