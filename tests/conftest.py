"""Shared test fixtures: where the real data in ``../shared/data`` lives."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$DETFORGE_SHARED_DATA`` or ``../shared/data`` next to the repository."""
    return Path(os.environ.get("DETFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; tests using it skip with a reason when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set DETFORGE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def mmdet_test_data(shared_data: Path) -> Path:
    """MMDetection's own ``tests/data`` folder (color.jpg, gray.jpg, VOC devkits, ...)."""
    return shared_data / "mmdet_testdata" / "tests" / "data"


class _RunsCommand:
    """Pickles as a call of ``os.system``: plain ``pickle.load`` runs the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def write_code_pickle(path: Path, marker: Path) -> None:
    """A pickle that starts like v2 results but creates ``marker`` when plain pickle loads it."""
    payload = [[np.zeros((0, 5), np.float32)], _RunsCommand(f"touch {marker}")]
    path.write_bytes(pickle.dumps(payload, protocol=2))
