"""The package hash: contents and relative paths, nothing else; the commit override."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from cryo_companion.runs.sources import git_state, package_files, package_sha256


def _package(root: Path) -> Path:
    pkg = root / "cryo_companion"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "m.py").write_text("X = 1\n")
    (pkg / "a" / "data.json").write_text("{}\n")
    return pkg


def test_hash_is_of_relative_paths_and_contents(tmp_path: Path) -> None:
    pkg = _package(tmp_path / "one")
    h = package_sha256(tmp_path / "one")
    # a copy elsewhere (another machine, a copied tree without .git) hashes the same
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    assert package_sha256(tmp_path / "two") == h
    # the hand-worked value: sha256 over "relpath\0sha256(content)\n" lines, sorted by path
    lines = "".join(f"{rel}\0{hashlib.sha256(body).hexdigest()}\n" for rel, body in [
        ("cryo_companion/__init__.py", b""), ("cryo_companion/a/data.json", b"{}\n"),
        ("cryo_companion/a/m.py", b"X = 1\n")])
    assert h == hashlib.sha256(lines.encode()).hexdigest()
    # a renamed file changes it, even with the same contents
    (pkg / "a" / "m.py").rename(pkg / "a" / "n.py")
    assert package_sha256(tmp_path / "one") != h
    assert [p.name for p in package_files(tmp_path / "one")] == ["__init__.py", "data.json",
                                                                 "n.py"]


def test_missing_package_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no package folder"):
        package_sha256(tmp_path)


def test_the_real_package_hash_covers_its_data_files() -> None:
    names = {p.name for p in package_files()}
    assert "test_domain.json" in names and "sources.py" in names
    assert not any(n.endswith(".pyc") for n in names)


def test_commit_override_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRYO_COMPANION_COMMIT", raising=False)
    assert git_state(tmp_path) == (None, None)  # not a repository: git cannot tell
    monkeypatch.setenv("CRYO_COMPANION_COMMIT", "0123abc")
    assert git_state(tmp_path) == ("0123abc", None)
