"""Safe commands (cli/main.py + cryo_companion._io): nothing deleted or replaced that a command did
not create, existing outputs refused unless --force, output places checked before any work,
one-line errors with exit 2, Ctrl-C exits 130 with one line, modes follow the umask."""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import deny_writes_below

from cryo_companion.cli.main import EXIT_INTERRUPTED, build_parser, main
from cryo_companion.dataset import SubtomogramSet
from cryo_companion.mrc import write_mrc

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _one_line_error(capsys, rc: int, *needles: str, code: int = 2) -> str:
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _no_work(monkeypatch, command: str) -> None:
    """Make the command's work fail loudly: a refused output must be refused before it."""
    mod = importlib.import_module(f"cryo_companion.cli.{command.replace('-', '_')}")

    def work(args):
        raise AssertionError(f"{command} started work")
    monkeypatch.setattr(mod, "main", work)
    # the parser holds the module, so the patched main is what runs


def _argv(command: str, out: Path, tmp_path: Path) -> list[str]:
    """A valid command line of each writing command with its output at ``out``."""
    inp = tmp_path / "in.mrc"
    if not inp.exists():
        write_mrc(inp, np.zeros((8, 8, 8), np.float32), 10.0)
    return {
        "density": ["density", "1s3x", "--voxel-size", "10", "--box", "16", "-o", str(out)],
        "simulate": ["simulate", "--structure", "1s3x", "-o", str(out)],
        "predict": ["predict", str(tmp_path / "w.pt"), str(inp), "--out-masks", str(out)],
        "segment": ["segment", str(tmp_path / "w.pt"), str(inp), "--out-masks", str(out)],
        "shrec-eval": ["shrec-eval", "--pred", "p.txt", "--truth-list", "t.txt", "--occupancy",
                       str(inp), "--json", str(out)],
        "testset": ["testset", "--out", str(out), "--scale", "smoke"],
        "tomogram": ["tomogram", "--out", str(out)],
        "train": ["train", "--arm", "baseline", "--out", str(out)],
    }[command]


FILE_COMMANDS = ("density", "simulate", "predict", "segment", "shrec-eval")
FOLDER_COMMANDS = ("testset", "tomogram", "train")
WRITERS = FILE_COMMANDS + FOLDER_COMMANDS


@pytest.mark.parametrize("command", WRITERS)
def test_read_only_place_is_refused_before_work(tmp_path, monkeypatch, capsys, command):
    ro = tmp_path / "ro"
    ro.mkdir()
    _no_work(monkeypatch, command)
    deny_writes_below(monkeypatch, ro)
    out = ro / ("out.mrc" if command in FILE_COMMANDS else "run")
    try:
        rc = main(_argv(command, out, tmp_path))
    finally:
        ro.chmod(0o755)
    _one_line_error(capsys, rc, "not writable")
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_existing_output_file_is_refused_without_force(tmp_path, monkeypatch, capsys, command):
    out = tmp_path / "out.mrc" if command != "shrec-eval" else tmp_path / "out.json"
    out.write_text("someone's file")
    _no_work(monkeypatch, command)
    _one_line_error(capsys, main(_argv(command, out, tmp_path)), "exists", "--force")
    assert out.read_text() == "someone's file"
    with pytest.raises(AssertionError, match="started work"):    # --force lets the work start
        main(_argv(command, out, tmp_path) + ["--force"])


def test_simulate_refuses_its_existing_json_too(tmp_path, monkeypatch, capsys):
    (tmp_path / "out.json").write_text("{}")
    _no_work(monkeypatch, "simulate")
    _one_line_error(capsys, main(_argv("simulate", tmp_path / "out.mrc", tmp_path)),
                    "out.json exists")


@pytest.mark.parametrize("command", WRITERS)
def test_output_that_is_a_folder_or_under_a_file(tmp_path, monkeypatch, capsys, command):
    _no_work(monkeypatch, command)
    afile = tmp_path / "afile.mrc"
    afile.write_text("keep")
    if command in FILE_COMMANDS:
        _one_line_error(capsys, main(_argv(command, tmp_path, tmp_path) + ["--force"]),
                        "is a folder")
        target = afile / "x.mrc"
    else:
        target = afile
    _one_line_error(capsys, main(_argv(command, target, tmp_path) + ["--force"]),
                    "afile.mrc is a file")
    assert afile.read_text() == "keep"


def _fake_set(n: int) -> SubtomogramSet:
    rng = np.random.default_rng(n)
    masks = rng.random((n, 8, 8, 8)) > 0.5
    return SubtomogramSet(rng.standard_normal((n, 8, 8, 8)), np.arange(n) % 2, masks,
                          ["ribosome", "TRiC"], 13.68,
                          {"snr": {"median": 0.1}, "test_domain_hash": "0123456789abcdef",
                           "contrast": "dark"})


@pytest.fixture
def fake_testset(monkeypatch):
    """``testset`` without the simulation: a small set of ``sizes.pop(0)`` subtomograms."""
    from cryo_companion.papers.che2019 import test_domain

    sizes = [4, 2]
    monkeypatch.setattr(test_domain, "make_testset",
                        lambda scale, device, seed: _fake_set(sizes.pop(0)))
    return sizes


def test_testset_never_deletes_what_it_did_not_write(tmp_path, capsys, fake_testset):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("unrelated")
    for extra in ([], ["--force"]):
        _one_line_error(capsys, main(["testset", "--out", str(dest), *extra]), "notes.txt"
                        if extra else "not empty")
    assert _tree(dest) == {"notes.txt": b"unrelated"}
    afile = tmp_path / "afile.mrc"
    afile.write_bytes(b"data")
    _one_line_error(capsys, main(["testset", "--out", str(afile)]), "is a file")
    assert afile.read_bytes() == b"data" and afile.is_file()


def test_testset_into_the_working_folder_then_force(tmp_path, monkeypatch, capsys, umask,
                                                   fake_testset):
    umask(0o027)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["testset", "--out", "."]) == 0
    first = sorted(os.listdir(here))
    assert len(first) == 2 + 2 * 4 and "labels.csv" in first
    assert all(stat.S_IMODE((here / n).stat().st_mode) == 0o640 for n in first)
    import mrcfile

    with mrcfile.open(here / next(n for n in first if n.endswith("_mask.mrc"))) as m:
        assert int(m.header.mode) == 0                          # masks in an integer mode
    assert sorted(os.listdir(tmp_path)) == ["here"]               # nothing left beside it
    capsys.readouterr()
    _one_line_error(capsys, main(["testset", "--out", "."]), "not empty", "--force")
    assert main(["testset", "--out", ".", "--force"]) == 0        # the earlier set, replaced
    now = sorted(os.listdir(here))
    assert len(now) == 2 + 2 * 2 and set(now) < set(first)        # its extra files removed
    from cryo_companion.dataset import load_subtomograms

    assert len(load_subtomograms(here)) == 2


def test_testset_folder_follows_the_umask(tmp_path, umask, fake_testset):
    umask(0o022)
    assert main(["testset", "--out", str(tmp_path / "a" / "set")]) == 0
    for d in (tmp_path / "a", tmp_path / "a" / "set"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "a" / "set").iterdir()} == {0o644}


@pytest.fixture
def fake_train(monkeypatch):
    """``train`` without training: records its calls; ``interrupt`` makes it stop like Ctrl-C
    after writing a checkpoint."""
    from cryo_companion.papers.che2019 import train as train_mod

    calls: list[dict] = []
    state = {"interrupt": False}

    def train(cfg, out, device, *, resume, progress):
        calls.append({"resume": resume, "out": Path(out)})
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "checkpoint.pt").write_bytes(b"ckpt")
        if state["interrupt"]:
            raise KeyboardInterrupt
        raise SystemExit(0)       # the real one writes weights and a summary; not needed here

    monkeypatch.setattr(train_mod, "train", train)
    return calls, state


def test_train_into_a_run_needs_resume_or_force(tmp_path, capsys, fake_train):
    calls, _ = fake_train
    run = tmp_path / "run"
    run.mkdir()
    (run / "weights.pt").write_bytes(b"finished run")
    base = ["train", "--arm", "baseline", "--out", str(run), "--device", "cpu"]
    _one_line_error(capsys, main(base), "holds a run", "--resume", "--force")
    assert (run / "weights.pt").read_bytes() == b"finished run" and not calls
    for extra in (["--resume"], ["--force"]):
        with pytest.raises(SystemExit):
            main(base + extra)
    assert [c["resume"] for c in calls] == [True, False]


def test_train_ctrl_c_says_how_to_resume(tmp_path, capsys, fake_train):
    _, state = fake_train
    state["interrupt"] = True
    run = tmp_path / "my run"
    rc = main(["train", "--arm", "randomized", "--seed", "3", "--out", str(run), "--device",
               "cpu"])
    err = _one_line_error(capsys, rc, "interrupted", code=EXIT_INTERRUPTED)
    assert ("cryo-companion train --arm randomized --seed 3 --out " in err
            and "'" + str(run) + "'" in err and err.rstrip().endswith("--resume"))


def test_ctrl_c_anywhere_is_one_line_and_130(tmp_path, monkeypatch, capsys):
    from cryo_companion.structures import density

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(density, "load_density", interrupted)
    out = tmp_path / "d.mrc"
    rc = main(["density", "1s3x", "--voxel-size", "10", "--box", "16", "-o", str(out)])
    _one_line_error(capsys, rc, "cryo-companion density: interrupted", code=130)
    assert list(tmp_path.iterdir()) == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_real_sigint_on_a_long_run(tmp_path):
    """A real Ctrl-C (SIGINT) in the middle of a simulation: 130, one line, no file.

    The child gets SIGINT's default disposition back: a shell without job control starts
    background commands (``make test &``) with SIGINT ignored, and Python then keeps it ignored.
    """
    blob = write_mrc(tmp_path / "blob.mrc", np.pad(np.ones((4, 4, 4), np.float32), 6), 13.68)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRYO_COMPANION_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryo_companion.cli.main", "simulate", "--structure", str(blob),
         "--box", "16", "--n", "1000000", "-o", str(tmp_path / "s.mrc")],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        preexec_fn=_default_sigint)  # noqa: PLW1509
    deadline = time.monotonic() + 120
    assert proc.stderr is not None
    first = ""
    while time.monotonic() < deadline and "simulate:" not in first:
        first += proc.stderr.read(1)        # the progress bar appears once the work runs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = (first + err).replace("\r", "\n")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("cryo-companion simulate: interrupted; no "
                                            "half-written file was left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.mrc"]


def test_file_system_error_during_work_is_one_line(tmp_path, monkeypatch, capsys):
    from cryo_companion import mrc

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(mrc, "write_mrc", full)
    out = tmp_path / "d.mrc"
    rc = main(["density", "1s3x", "--voxel-size", "10", "--box", "24", "-o", str(out)])
    _one_line_error(capsys, rc, f"{out}: No space left on device")


def test_an_input_is_never_an_output(tmp_path, capsys):
    src = write_mrc(tmp_path / "sub.mrc", np.ones((8, 8, 8), np.float32), 13.68)
    before = src.read_bytes()
    link = tmp_path / "alias.mrc"
    link.symlink_to(src)
    for out in (src, link, tmp_path / "." / "sub.mrc"):
        rc = main(["predict", str(tmp_path / "w.pt"), str(src), "--out-masks", str(out),
                   "--force"])
        _one_line_error(capsys, rc, "is also an input")
        rc = main(["density", str(src), "--voxel-size", "10", "--box", "8", "-o", str(out),
                   "--force"])
        _one_line_error(capsys, rc, "is also an input")
    assert src.read_bytes() == before


def test_tomogram_bad_numbers_and_existing_file(tmp_path, capsys):
    for bad in (["--voxel-size", "0"], ["--voxel-size", "nan"], ["--shape", "4", "32", "32"],
                ["--particles", "-1"], ["--dose", "0"], ["--oversample", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["tomogram", "--out", str(tmp_path / "t"), *bad])
        _one_line_error(capsys, int(exc.value.code), bad[0], "--help")
    afile = tmp_path / "EXISTING"
    afile.write_text("x")
    _one_line_error(capsys, main(["tomogram", "--out", str(afile)]), "is a file")
    assert list(tmp_path.iterdir()) == [afile]


def test_usage_errors_are_one_line(capsys):
    for argv in (["tomogram"], ["nonsense"], ["predict", "only-one"], ["simulate", "--n", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        _one_line_error(capsys, int(exc.value.code), "error:")


def _actions(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {n}", a) for n, a in _actions(sub))
        else:
            yield "", action


def test_every_option_has_help_and_shows_its_default(capsys):
    parser = build_parser()
    for where, a in _actions(parser):
        if a.dest in ("help", "version"):
            continue
        assert a.help, f"{where}: {a.option_strings or a.dest} has no help"
    for cmd in ("density", "predict", "segment", "shrec-eval", "simulate", "testset", "tomogram",
                "train"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "issue #" not in text.lower()
        opts = text[text.index("\noptions:"):]
        sub = next(s for s in parser._subparsers._group_actions[0].choices.values()
                   if s.prog.endswith(" " + cmd))
        for a in sub._actions:
            if (a.option_strings and not a.required and a.default is not None
                    and a.default is not False and a.default is not argparse.SUPPRESS):
                flag = a.option_strings[-1]
                start = opts.index("  " + flag)
                nxt = opts.find("\n  -", start + 1)
                entry = opts[start:nxt if nxt > 0 else None]
                assert "default" in entry, f"{cmd} {flag}: default not shown in {entry!r}"
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "CRYO_COMPANION_STRUCTURES" in top and "CRYO_COMPANION_CACHE" in top


def test_tomogram_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["tomogram", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for piece in ("(default: 100 256 256)", "(default: 10.0)", "(default: 2)",
                  "(default: 300)", "(default: 1)", "(default: 0)", "(default: -60.0 60.0)",
                  "(default: -3.0)", "(default: 100.0)", "(default: auto)"):
        assert piece in text, piece


def test_ctrl_c_while_starting_is_one_line(monkeypatch, capsys):
    import cryo_companion.cli.main as cli_main

    def slow_imports():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_main, "build_parser", slow_imports)
    _one_line_error(capsys, main(["simulate"]), "interrupted while starting", code=130)
