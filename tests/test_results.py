"""Results carry provenance; smoke runs never write into the committed results/ folder."""
from __future__ import annotations

import json

import pytest

from cryo_companion.book.results_table import claim_rows, format_value
from cryo_companion.papers.claims import CLAIMS, lookup
from cryo_companion.runs.results import load_result, results_dir, save_result
from cryo_companion.runs.runtime import setup


def test_save_result_has_provenance(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path))
    run = setup("smoke", "cpu", 1, chapter="demo")
    path = save_result(run, {"acc": 0.5}, seeds=[1, 2])
    assert path == tmp_path / "smoke" / "demo.json"
    rec = json.loads(path.read_text())
    prov = rec["provenance"]
    for key in ("commit", "device", "scale", "seeds", "wall_time_s", "versions"):
        assert key in prov
    assert prov["scale"] == "smoke" and prov["seeds"] == [1, 2]
    assert prov["device"].startswith("CPU")
    assert load_result("demo", "smoke")["data"] == {"acc": 0.5}
    assert load_result("demo", "paper") is None
    assert results_dir("paper") == tmp_path


def test_nan_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path))
    run = setup("smoke", "cpu", 1, chapter="demo")
    with pytest.raises(ValueError):
        save_result(run, {"acc": float("nan")})
    assert not (tmp_path / "smoke" / "demo.json").exists()


def test_lookup_and_format() -> None:
    data = {"dr": {"accuracy": {"mean": 0.81234, "std": 0.0123, "n": 3}}}
    assert format_value(lookup(data, "dr.accuracy")) == "0.812 ± 0.012 (n=3)"
    assert lookup(data, "dr.missing") is None
    assert "not yet reproduced" in format_value(None)


def test_landing_table_never_shows_the_paper_value_as_ours() -> None:
    rows = claim_rows(results={})
    assert len(rows) == len(CLAIMS)
    assert all("not yet reproduced" in r[5] for r in rows)
    c = CLAIMS[0]
    data: dict = {}
    cur = data
    parts = c.key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur.update({"mean": 0.5, "std": 0.1, "n": 3})
    res = {c.result: {"data": data, "provenance": {"device": "GPU X", "scale": "paper",
                                                    "commit": "abcdef123456"}}}
    row = claim_rows(results=res)[0]
    assert row[5] == "0.500 ± 0.100 (n=3)" and "GPU X" in row[6] and "abcdef1" in row[6]


def test_dirty_means_changed_sources_not_written_results(tmp_path, monkeypatch) -> None:
    """A result written earlier in the session (results/, book/chapters/) leaves the tree clean;
    an edited source file makes it dirty."""
    import shutil
    import subprocess

    import cryo_companion.runs.results as results

    if shutil.which("git") is None:
        pytest.skip("needs git")
    def git(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    for rel in ("results/a.json", "book/chapters/c.ipynb", "pkg/mod.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("0\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-qm", "x")
    monkeypatch.setattr(results, "repo_root", lambda: tmp_path)
    monkeypatch.delenv("CRYO_COMPANION_COMMIT", raising=False)
    run = setup("smoke", "cpu", 0, chapter="demo")
    assert results.provenance(run)["dirty"] is False
    (tmp_path / "results/a.json").write_text("1\n")
    (tmp_path / "book/chapters/c.ipynb").write_text("1\n")
    assert results.provenance(run)["dirty"] is False
    (tmp_path / "pkg/mod.py").write_text("1\n")
    assert results.provenance(run)["dirty"] is True
