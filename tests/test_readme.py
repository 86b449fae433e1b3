"""The README and CONTRIBUTING tell the truth: make targets that exist, every environment variable
the package reads, every subcommand."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "CONTRIBUTING.md")


def _targets_with_recipes() -> set[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    out = set()
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", line)
        if m and not m.group(1).startswith("."):
            has_prereq = bool(line.split(":", 1)[1].split("#")[0].strip())
            has_recipe = i + 1 < len(lines) and lines[i + 1].startswith("\t")
            if has_prereq or has_recipe:
                out.add(m.group(1))
    return out


def test_documented_make_targets_exist():
    targets = _targets_with_recipes()
    for doc in DOCS:
        named = set(re.findall(r"`make ([a-z][a-z0-9_-]*)", (ROOT / doc).read_text()))
        assert named, doc
        assert named <= targets, f"{doc} names make targets that do nothing: {named - targets}"


def test_every_environment_variable_is_documented():
    read = set()
    for path in (ROOT / "cryo_companion").rglob("*.py"):
        read |= set(re.findall(r"os\.environ(?:\.get)?[\[(]\"(CRYO_COMPANION_[A-Z_]+)\"",
                               path.read_text()))
    assert {"CRYO_COMPANION_STRUCTURES", "CRYO_COMPANION_CACHE"} <= read
    readme = (ROOT / "README.md").read_text()
    missing = sorted(v for v in read if f"`{v}`" not in readme)
    assert not missing, f"README does not document {missing}"


def test_every_subcommand_is_in_the_readme():
    from cryo_companion.cli.main import _command_modules

    readme = (ROOT / "README.md").read_text()
    for name, _ in _command_modules():
        assert f"`{name}" in readme, name
