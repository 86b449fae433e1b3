"""Helpers of the file-safety tests (imported by test_io and test_cli_safety)."""
from __future__ import annotations

import os
from pathlib import Path


def deny_writes_below(monkeypatch, root: Path) -> None:
    """Make ``root`` a read-only place: by its mode, and where that does not bind (root user),
    by what ``os.access`` reports, as it does for other users."""
    root.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access

        def access(path, mode, *a, **k):
            if mode & os.W_OK and Path(path).resolve().is_relative_to(root.resolve()):
                return False
            return real(path, mode, *a, **k)
        monkeypatch.setattr(os, "access", access)
