"""``VideoReader``: frames of a video file by index, as ``mmcv.VideoReader`` gives them.

Example:
    >>> import tempfile, os, numpy as np, cv2
    >>> path = os.path.join(tempfile.mkdtemp(), 'v.avi')
    >>> out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 5, (32, 24))
    >>> for i in range(3):
    ...     out.write(np.full((24, 32, 3), 80 * i, np.uint8))
    >>> out.release()
    >>> video = VideoReader(path)
    >>> len(video), video.fps, video.resolution, video[2].shape
    (3, 5.0, (32, 24), (24, 32, 3))
    >>> [round(float(frame.mean()) / 80) for frame in video]
    [0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from detforge.utils.image import ImageLoadError

__all__ = ["VideoReader"]


class VideoReader:
    """Read a video's frames (``uint8 HWC BGR``) by index, in order, or by iteration.

    Args:
        filename: The video file.

    Raises:
        ImageLoadError: the file does not exist or OpenCV cannot open it.
    """

    def __init__(self, filename: str | Path) -> None:
        self.filename = str(filename)
        if not Path(self.filename).is_file():
            raise ImageLoadError(f"VideoReader: {self.filename}: no such file")
        self._capture = cv2.VideoCapture(self.filename)
        if not self._capture.isOpened():
            raise ImageLoadError(f"VideoReader: {self.filename}: OpenCV cannot open it")
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.frame_cnt = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._position = 0  # index of the next frame read() returns

    @property
    def resolution(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.width, self.height

    @property
    def position(self) -> int:
        """Index of the next frame :meth:`read` returns."""
        return self._position

    def read(self) -> np.ndarray | None:
        """The next frame, or ``None`` at the end."""
        ok, frame = self._capture.read()
        if not ok:
            return None
        self._position += 1
        return frame

    def get_frame(self, index: int) -> np.ndarray | None:
        """Frame ``index`` (0-based), or ``None`` when it cannot be decoded.

        Raises:
            IndexError: ``index`` is outside ``[0, frame_cnt)`` (as mmcv).
        """
        if not 0 <= index < self.frame_cnt:
            raise IndexError(
                f"VideoReader: {self.filename}: frame {index} is outside [0, {self.frame_cnt})"
            )
        if index != self._position:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._position = index
        return self.read()

    def __len__(self) -> int:
        return self.frame_cnt

    def __getitem__(self, index: int) -> np.ndarray | None:
        return self.get_frame(index + self.frame_cnt if index < 0 else index)

    def __iter__(self) -> Iterator[np.ndarray]:
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._position = 0
        while (frame := self.read()) is not None:
            yield frame

    def __del__(self) -> None:
        capture = getattr(self, "_capture", None)
        if capture is not None:
            capture.release()
