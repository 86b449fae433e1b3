"""Chapter parameters: bad values fail at once and name the valid ones."""
from __future__ import annotations

import pytest
import torch

from cryo_companion.runs.runtime import resolve_device, setup


def test_unknown_scale_names_valid_values() -> None:
    with pytest.raises(ValueError, match="smoke, paper"):
        setup("huge", "cpu", 0, chapter="x")


def test_unknown_device_names_valid_values() -> None:
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        setup("smoke", "tpu", 0, chapter="x")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_paper_scale_without_gpu_is_refused() -> None:
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        setup("paper", "auto", 0, chapter="table1")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_cheap_chapter_may_run_paper_scale_on_cpu() -> None:
    run = setup("paper", "cpu", 3, chapter="structures", paper_needs_gpu=False)
    assert run.paper and run.device.type == "cpu" and run.pick(1, 2) == 2


def test_seeding_is_reproducible() -> None:
    setup("smoke", "cpu", 7, chapter="x")
    a = torch.rand(3)
    setup("smoke", "cpu", 7, chapter="x")
    assert torch.equal(a, torch.rand(3))
