"""``cryo-companion bench template-matching`` runs at a tiny size and projects twelve classes."""
from __future__ import annotations

from cryo_companion.cli.main import main


def test_bench_template_matching_prints_the_projection(capsys) -> None:
    assert main(["bench", "template-matching", "--device", "cpu", "--shape", "29", "30", "31",
                 "--rotations", "2", "--batch-size", "1", "2", "--max-rotations", "100"]) == 0
    out = capsys.readouterr().out
    assert "ms per rotation" in out and "twelve classes:" in out
    assert out.count("rotations,") == 12 and "   100 rotations" in out
    assert main(["bench", "template-matching", "--device", "cpu", "--shape", "20", "30", "31"]) \
        == 2
