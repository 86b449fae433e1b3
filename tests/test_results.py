"""Results carry provenance; smoke runs never write into the committed results/ folder."""
from __future__ import annotations

import json

import pytest

from cryo_companion.book.results_table import format_value, lookup
from cryo_companion.results import load_result, results_dir, save_result
from cryo_companion.runtime import setup


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
    data = {"dr": {"accuracy": {"mean": 0.81234, "std": 0.0123, "n": 3}}, "xs": [1, 2]}
    assert format_value(lookup(data, "dr.accuracy")) == "0.812 ± 0.012 (n=3)"
    assert lookup(data, "xs.1") == 2
    assert lookup(data, "dr.missing") is None
    assert "not yet reproduced" in format_value(None)
