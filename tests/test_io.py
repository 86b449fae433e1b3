"""Safe output (cryo_companion._io): atomic files with the umask's mode, checks of output
places before work, and folder outputs that never touch what they did not write."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_helpers import deny_writes_below

from cryo_companion._io import (
    OutputError,
    OutputPlan,
    atomic_path,
    check_distinct,
    check_output_file,
    check_output_folder,
    file_mode,
    output_folder,
    write_text,
)


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("mask,want_file,want_dir", [(0o022, 0o644, 0o755),
                                                     (0o027, 0o640, 0o750),
                                                     (0o077, 0o600, 0o700)])
def test_files_and_folders_follow_the_umask(tmp_path, umask, mask, want_file, want_dir):
    umask(mask)
    assert file_mode() == want_file
    f = write_text(tmp_path / "new" / "a.txt", "x\n")   # tempfile makes 0600; fixed on rename
    assert _mode(f) == want_file and _mode(f.parent) == want_dir
    with output_folder(tmp_path / "out" / "set") as stage:
        write_text(stage / "b.txt", "y\n")
    assert _mode(tmp_path / "out" / "set" / "b.txt") == want_file
    assert _mode(tmp_path / "out" / "set") == want_dir and _mode(tmp_path / "out") == want_dir


def test_atomic_path_leaves_nothing_on_failure_or_ctrl_c(tmp_path):
    dest = tmp_path / "a.txt"
    dest.write_text("old")
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise exc
    assert dest.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_output_file_checks(tmp_path):
    existing = tmp_path / "x.mrc"
    existing.write_text("mine")
    with pytest.raises(OutputError, match="exists; pass --force"):
        check_output_file(existing)
    assert check_output_file(existing, force=True) == existing
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match="x.mrc is a file, not a folder"):
        check_output_file(existing / "deeper" / "y.mrc")
    assert check_output_file(tmp_path / "new" / "deeper" / "y.mrc").name == "y.mrc"
    assert not (tmp_path / "new").exists()          # a check creates nothing
    with pytest.raises(OutputError, match="resume"):
        check_output_file(existing, hint="pass --resume")


def test_read_only_place_is_named(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    deny_writes_below(monkeypatch, ro)
    try:
        with pytest.raises(OutputError, match="ro: folder is not writable"):
            check_output_file(ro / "a.mrc")
        with pytest.raises(OutputError, match=r"ro: folder \(to create .*sub in\) is not writable"):
            check_output_folder(ro / "sub")
    finally:
        ro.chmod(0o755)


def test_probe_catches_what_os_access_misses(tmp_path, monkeypatch):
    """A read-only file system passes os.access for root; the probe file finds it."""
    import tempfile

    def mkstemp(*a, **k):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(OutputError, match="not writable .Read-only file system"):
        check_output_file(tmp_path / "a.mrc")


def test_output_folder_checks(tmp_path):
    f = tmp_path / "afile.mrc"
    f.write_text("keep")
    with pytest.raises(OutputError, match="afile.mrc is a file; give a folder"):
        check_output_folder(f)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="is not empty.*--force"):
        check_output_folder(full)
    with pytest.raises(OutputError, match="an entry that is not an earlier output.*notes.txt"):
        check_output_folder(full, force=True, previous=lambda d: {"labels.csv"})
    assert check_output_folder(full, force=True, previous=lambda d: {"notes.txt"}) == full
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty") == tmp_path / "empty"
    assert f.read_text() == "keep" and (full / "notes.txt").read_text() == "mine"


def test_an_input_is_never_an_output(tmp_path):
    a = tmp_path / "a.mrc"
    a.write_text("input")
    with pytest.raises(OutputError, match="is also an input"):
        check_distinct([a], [tmp_path / "." / "a.mrc"])
    link = tmp_path / "link.mrc"
    link.symlink_to(a)
    with pytest.raises(OutputError, match="is also an input"):
        check_distinct([a], [link])
    hard = tmp_path / "hard.mrc"
    os.link(a, hard)
    with pytest.raises(OutputError, match="is also an input"):
        check_distinct([hard], [a])
    check_distinct([a, None], [tmp_path / "b.mrc", None])
    with pytest.raises(OutputError, match="also an input"):
        OutputPlan(files=[a], inputs=[a]).check(force=True)   # --force does not allow it


def test_output_folder_publishes_only_on_success(tmp_path):
    dest = tmp_path / "a" / "b" / "out"
    for exc in (ValueError("bad"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), output_folder(dest) as stage:
            write_text(stage / "x.txt", "1")
            raise exc
        assert not (tmp_path / "a").exists()     # the folders it created are gone too
    with output_folder(dest) as stage:
        write_text(stage / "x.txt", "1")
        write_text(stage / "y.txt", "2")
    assert sorted(os.listdir(dest)) == ["x.txt", "y.txt"]


def test_output_folder_into_the_working_directory(tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with output_folder(".") as stage:
        write_text(stage / "x.txt", "1")
    assert sorted(os.listdir(here)) == ["x.txt"] and sorted(os.listdir(tmp_path)) == ["here"]
    with pytest.raises(OutputError, match="not empty"), output_folder("."):
        pass
    assert sorted(os.listdir(here)) == ["x.txt"]


def test_force_replaces_an_earlier_output_and_nothing_else(tmp_path):
    dest = tmp_path / "set"

    def previous(d: Path) -> set[str] | None:
        return {n for n in os.listdir(d) if n.endswith(".mrc") or n == "labels.csv"} \
            if (d / "labels.csv").exists() else None

    with output_folder(dest) as stage:
        for n in ("labels.csv", "0.mrc", "1.mrc", "2.mrc"):
            write_text(stage / n, "old")
    with output_folder(dest, force=True, previous=previous) as stage:
        for n in ("labels.csv", "0.mrc"):
            write_text(stage / n, "new")
    assert {n: (dest / n).read_text() for n in os.listdir(dest)} == {"labels.csv": "new",
                                                                      "0.mrc": "new"}
    (dest / "notes.txt").write_text("someone else's")
    with pytest.raises(OutputError, match="notes.txt"), \
            output_folder(dest, force=True, previous=previous):
        raise AssertionError("never reached: refused before the block")
    assert (dest / "notes.txt").read_text() == "someone else's"


def test_plan_checks_everything_before_work(tmp_path):
    out = tmp_path / "o.mrc"
    out.write_text("old")
    plan = OutputPlan(files=[tmp_path / "new.mrc", out], folders=[(tmp_path / "d", None)])
    with pytest.raises(OutputError, match="o.mrc exists"):
        plan.check()
    plan.check(force=True)
    OutputPlan(files=[out], force=True).check(force=False)       # e.g. train --resume
    with pytest.raises(OutputError, match="o.mrc exists"):
        OutputPlan(files=[out], force=False).check(force=True)
