"""Draw boxes, labels, scores and masks on an image (BGR ``uint8``, as the pipeline loads it).

Text and line widths scale with the image, so labels stay readable on a 300 px thumbnail and
on a 4000 px photo alike. Colours are ``(B, G, R)`` tuples, a name (``'green'``), a list with one
colour per class, or ``None`` for a fixed pseudo-random colour per class.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from detforge.utils.image import imread, imwrite

__all__ = ["color_for", "draw_det_bboxes", "imshow_det_bboxes"]

_NAMED = {
    "green": (0, 255, 0),
    "red": (0, 0, 255),
    "blue": (255, 0, 0),
    "yellow": (0, 255, 255),
    "cyan": (255, 255, 0),
    "magenta": (255, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
Color = tuple[int, int, int]


def color_for(spec: Any, label: int) -> Color:
    """The BGR colour of class ``label`` under ``spec`` (see the module docstring).

    Example:
        >>> color_for('red', 3), color_for([(1, 2, 3), (4, 5, 6)], 1)
        ((0, 0, 255), (4, 5, 6))
    """
    if spec is None:
        rng = np.random.RandomState(label * 7919 + 17)
        return tuple(int(c) for c in rng.randint(40, 256, size=3))  # type: ignore[return-value]
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(f"unknown colour {spec!r}; use one of {sorted(_NAMED)} or (B, G, R)")
        return _NAMED[spec]
    if isinstance(spec, Sequence) and len(spec) and isinstance(spec[0], Sequence | np.ndarray):
        return tuple(int(c) for c in spec[label % len(spec)])  # type: ignore[return-value]
    if isinstance(spec, Sequence) and len(spec) == 3:
        return tuple(int(c) for c in spec)  # type: ignore[return-value]
    raise ValueError(f"cannot read a colour from {spec!r}")


def draw_det_bboxes(
    img: np.ndarray,
    bboxes: np.ndarray,
    labels: np.ndarray,
    segms: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    score_thr: float = 0.0,
    bbox_color: Any = None,
    text_color: Any = None,
    mask_color: Any = None,
    thickness: int | None = None,
    font_scale: float | None = None,
) -> np.ndarray:
    """Return a copy of ``img`` with detections drawn.

    Args:
        img: ``ndarray[H, W, 3]`` BGR.
        bboxes: ``ndarray[N, 4]`` or ``[N, 5]`` (with scores).
        labels: ``ndarray[N]`` class indices.
        segms: ``ndarray[N, H, W]`` bool masks, or ``None``.
        class_names: Names for the label text (else ``class i``).
        score_thr: Detections scoring ``<= score_thr`` are not drawn (needs scores).
        bbox_color: Box colour spec. text_color: Label colour spec (default: the box's).
        mask_color: Mask colour spec (default: the box's).
        thickness: Line width (default: scaled to the image).
        font_scale: OpenCV font scale (default: scaled to the image).

    Example:
        >>> img, boxes = np.zeros((60, 80, 3), np.uint8), np.array([[10, 10, 50, 40, 0.9]])
        >>> out = draw_det_bboxes(img, boxes, np.array([0]), class_names=['cat'])
        >>> out.shape, bool(out.any())
        ((60, 80, 3), True)
    """
    img = np.ascontiguousarray(img.copy() if img.dtype == np.uint8 else img.astype(np.uint8))
    if bboxes.ndim != 2 or bboxes.shape[1] not in (4, 5) or len(bboxes) != len(labels):
        raise ValueError(
            f"bboxes must be [N, 4|5] matching labels; got {bboxes.shape}, {labels.shape}"
        )
    keep = np.ones(len(bboxes), dtype=bool)
    if score_thr > 0 and bboxes.shape[1] == 5:
        keep = bboxes[:, 4] > score_thr
    height, width = img.shape[:2]
    base = max(height, width)
    line = thickness or max(1, round(base / 400))
    scale = font_scale or max(0.35, base / 1400)
    if segms is not None:
        for i in np.flatnonzero(keep):
            tint = np.array(
                color_for(mask_color if mask_color is not None else bbox_color, int(labels[i]))
            )
            region = segms[i].astype(bool)
            img[region] = (0.5 * img[region] + 0.5 * tint).astype(np.uint8)
    for i in np.flatnonzero(keep):
        label = int(labels[i])
        color = color_for(bbox_color, label)
        x1, y1, x2, y2 = (round(float(v)) for v in bboxes[i, :4])
        cv2.rectangle(img, (x1, y1), (x2, y2), color, line)
        text = (
            class_names[label]
            if class_names is not None and label < len(class_names)
            else f"class {label}"
        )
        if bboxes.shape[1] == 5:
            text += f"|{bboxes[i, 4]:.02f}"
        (tw, th), baseline = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, line // 2)
        )
        top = max(y1 - th - baseline, 0)
        cv2.rectangle(img, (x1, top), (x1 + tw, top + th + baseline), color, -1)
        fg = color_for(text_color, label) if text_color is not None else _contrast(color)
        cv2.putText(
            img,
            text,
            (x1, top + th),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            fg,
            max(1, line // 2),
            cv2.LINE_AA,
        )
    return img


def _contrast(color: Color) -> Color:
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def imshow_det_bboxes(
    img: str | os.PathLike[str] | np.ndarray,
    bboxes: np.ndarray,
    labels: np.ndarray,
    segms: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    score_thr: float = 0.0,
    bbox_color: Any = None,
    text_color: Any = None,
    mask_color: Any = None,
    thickness: int | None = None,
    font_size: float | None = None,
    win_name: str = "",
    show: bool = False,
    wait_time: int = 0,
    out_file: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """v2's ``imshow_det_bboxes``: draw, then show in a window and/or write ``out_file``.

    ``font_size`` is v2's point size (13 by default there); it maps to an OpenCV font scale.
    Returns the drawn image.
    """
    image = imread(img) if not isinstance(img, np.ndarray) else img
    scale = None if font_size is None else font_size / 30
    drawn = draw_det_bboxes(
        image, bboxes, labels, segms, class_names, score_thr, bbox_color, text_color,
        mask_color, thickness, scale,
    )  # fmt: skip
    if show:
        cv2.imshow(win_name or "detections", drawn)
        cv2.waitKey(wait_time)
    if out_file is not None:
        imwrite(drawn, str(out_file))
    return drawn
