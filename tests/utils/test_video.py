"""``VideoReader``: mmcv's frames by index, length, fps and iteration."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detforge.utils import VideoReader
from detforge.utils.image import ImageLoadError


@pytest.fixture()
def video(tmp_path: Path) -> Path:
    path = tmp_path / "v.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30))
    for i in range(6):
        out.write(np.full((30, 40, 3), 40 * i, np.uint8))
    out.release()
    return path


def _level(frame: np.ndarray | None) -> int:
    assert frame is not None
    return round(float(frame.mean()) / 40)


def test_frames_by_index_in_order_and_by_iteration(video: Path) -> None:
    reader = VideoReader(video)
    assert (len(reader), reader.fps, reader.resolution) == (6, 10.0, (40, 30))
    assert [_level(reader[i]) for i in (4, 1, -1, 2, 3)] == [4, 1, 5, 2, 3]
    assert reader.position == 4
    assert _level(reader.read()) == 4
    assert [_level(f) for f in reader] == [0, 1, 2, 3, 4, 5]
    assert reader.read() is None
    with pytest.raises(IndexError, match=r"frame 6 is outside \[0, 6\)"):
        reader.get_frame(6)


def test_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"nope\.mp4: no such file"):
        VideoReader(tmp_path / "nope.mp4")
