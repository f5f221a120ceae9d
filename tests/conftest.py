"""Shared test fixtures: where the real data in ``../shared/data`` lives."""

from __future__ import annotations

import os
from pathlib import Path

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
