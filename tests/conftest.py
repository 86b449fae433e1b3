"""Shared test configuration: structures come from ../shared/structures unless set otherwise."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STRUCTURES = ROOT.parent / "shared" / "structures"
os.environ.setdefault("CRYO_COMPANION_STRUCTURES", str(DEFAULT_STRUCTURES))
# Tests never write into the committed results/ folder.
os.environ.setdefault("CRYO_COMPANION_RESULTS", str(ROOT / "build" / "test-results"))
# ... nor into the user's cache of structures and computed volumes.
os.environ.setdefault("CRYO_COMPANION_CACHE", str(ROOT / "build" / "test-cache"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Every test that takes ``device`` runs on each available device."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def structures_dir() -> Path:
    """The offline structures folder (skips nothing: a missing folder is an error)."""
    path = Path(os.environ["CRYO_COMPANION_STRUCTURES"])
    assert path.is_dir(), f"CRYO_COMPANION_STRUCTURES={path} is not a folder"
    return path
