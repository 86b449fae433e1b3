"""Progress bars show on a terminal only, and the environment variable overrides."""
from __future__ import annotations

import io

from cryo_companion._progress import progress, show_progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_follow_the_terminal_and_the_override(monkeypatch) -> None:
    monkeypatch.delenv("CRYO_COMPANION_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not show_progress(True)                      # a log file, a notebook: no bar
    monkeypatch.setattr("sys.stderr", _Tty())
    assert show_progress(True) and show_progress(None)
    assert not show_progress(False)                     # the caller's "no" always wins
    monkeypatch.setenv("CRYO_COMPANION_PROGRESS", "0")
    assert not show_progress(True)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv("CRYO_COMPANION_PROGRESS", "1")
    assert show_progress(True) and not show_progress(False)


def test_a_disabled_bar_writes_nothing_and_passes_items_through(monkeypatch) -> None:
    err = io.StringIO()
    monkeypatch.delenv("CRYO_COMPANION_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress(range(5), desc="x", file=err)) == [0, 1, 2, 3, 4]
    assert err.getvalue() == ""
    monkeypatch.setenv("CRYO_COMPANION_PROGRESS", "1")
    assert list(progress(range(3), desc="shown", file=err, mininterval=0)) == [0, 1, 2]
    assert "shown" in err.getvalue()
