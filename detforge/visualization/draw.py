"""Draw boxes, labels, scores and masks on an image (BGR ``uint8``, as the pipeline loads it).

This is the one drawer behind ``model.show_result``, ``detforge test --show-dir``,
``detforge infer``, the demos and the service. Colours follow v2's palette semantics
(:mod:`detforge.visualization.palettes`): a palette name (``'coco'``, ``'voc'``, ``'citys'``,
``'random'``), a colour name, one ``(R, G, B)`` tuple, or a list of them per class; ``None`` is
v2's fixed random palette. Line width and text size scale with the image, and every label sits
on a filled background, so labels stay readable on a 300 px thumbnail and on a 4000 px photo.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from detforge.utils.image import imread, imwrite
from detforge.visualization.palettes import get_palette

__all__ = [
    "color_for",
    "draw_det_bboxes",
    "draw_result",
    "imshow",
    "imshow_det_bboxes",
    "text_style",
]

Color = tuple[int, int, int]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MASK_ALPHA = 0.5


def _bgr_palette(spec: Any, num_classes: int) -> list[Color]:
    return [(b, g, r) for r, g, b in get_palette(spec, max(int(num_classes), 1))]


def color_for(spec: Any, label: int) -> Color:
    """The **BGR** colour (ready for OpenCV) of class ``label`` under palette ``spec``.

    Example:
        >>> color_for('red', 3), color_for([(1, 2, 3), (4, 5, 6)], 1), color_for('coco', 0)
        ((0, 0, 255), (6, 5, 4), (60, 20, 220))
    """
    return _bgr_palette(spec, label + 1)[label]


def text_style(height: int, width: int) -> tuple[int, float, int]:
    """``(line width, OpenCV font scale, text thickness)`` for an image of this size.

    Everything grows with ``sqrt(height * width)``: a 640×427 image gets 2 px lines and
    13 px text, a 4000×3000 photo 14 px lines and 87 px text; text is never under 9 px.

    Example:
        >>> text_style(427, 640)
        (2, 0.59, 1)
    """
    base = float(np.sqrt(max(height, 1) * max(width, 1)))
    line = max(1, round(base / 250))
    scale = round(max(0.4, base * 0.025 / 22), 2)
    return line, scale, max(1, round(scale * 1.6))


def _contrast(color: Color) -> Color:
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def _check(bboxes: np.ndarray, labels: np.ndarray, segms: Any, shape: tuple[int, ...]) -> None:
    if bboxes.ndim != 2 or bboxes.shape[1] not in (4, 5) or len(bboxes) != len(labels):
        raise ValueError(
            f"bboxes must be [N, 4|5] matching labels [N]; got {bboxes.shape}, {labels.shape}"
        )
    if (
        segms is not None
        and len(segms)
        and (len(segms) != len(bboxes) or tuple(segms.shape[1:3]) != tuple(shape[:2]))
    ):
        raise ValueError(
            f"segms must be [N, H, W] = [{len(bboxes)}, {shape[0]}, {shape[1]}], "
            f"got {tuple(segms.shape)}"
        )


def _draw_label(
    img: np.ndarray,
    text: str,
    box: tuple[int, int, int, int],
    background: Color,
    foreground: Color,
    scale: float,
    weight: int,
) -> None:
    """Text on a filled rectangle above the box (inside it when the box touches the top)."""
    height, width = img.shape[:2]
    (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, weight)
    pad = max(1, weight)
    box_h = th + baseline + 2 * pad
    x1, y1 = box[0], box[1]
    top = y1 - box_h if y1 - box_h >= 0 else max(y1, 0)
    top = min(top, max(height - box_h, 0))
    left = min(max(x1, 0), max(width - tw - 2 * pad, 0))
    cv2.rectangle(img, (left, top), (left + tw + 2 * pad, top + box_h), background, -1)
    origin = (left + pad, top + pad + th)
    cv2.putText(img, text, origin, _FONT, scale, foreground, weight, cv2.LINE_AA)


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
    """Return a copy of ``img`` with detections drawn (masks, then boxes, then labels).

    Args:
        img: ``ndarray[H, W, 3]`` BGR (a grayscale ``[H, W]`` image is drawn on in colour).
        bboxes: ``ndarray[N, 4]`` or ``[N, 5]`` (with scores).
        labels: ``ndarray[N]`` class indices.
        segms: ``ndarray[N, H, W]`` bool masks, or ``None``.
        class_names: Names for the label text (else ``class i``).
        score_thr: Detections scoring ``<= score_thr`` are not drawn (needs scores).
        bbox_color: Palette spec for boxes and label backgrounds (``None``: v2's random one).
        text_color: Palette spec for the text; when given, labels sit on black (as v2);
            by default the text is black or white, whichever reads better on the box colour.
        mask_color: Palette spec for masks (``None``: v2's random palette).
        thickness: Line width (default: scaled to the image, see :func:`text_style`).
        font_scale: OpenCV font scale (default: scaled to the image).

    Example:
        >>> img, boxes = np.zeros((60, 80, 3), np.uint8), np.array([[10, 10, 50, 40, 0.9]])
        >>> out = draw_det_bboxes(img, boxes, np.array([0]), class_names=['cat'])
        >>> out.shape, bool(out[10:40, 10].any()), bool(out[55, 75].any())
        ((60, 80, 3), True, False)
    """
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    img = np.ascontiguousarray(img.copy() if img.dtype == np.uint8 else img.astype(np.uint8))
    bboxes = np.asarray(bboxes)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if segms is not None:
        segms = np.asarray(segms)
    _check(bboxes, labels, segms, img.shape)
    keep = np.ones(len(bboxes), dtype=bool)
    if score_thr > 0 and bboxes.shape[1] == 5:
        keep = bboxes[:, 4] > score_thr
    order = np.flatnonzero(keep)
    if bboxes.shape[1] == 5:  # low scores first, so the best labels end up on top
        order = order[np.argsort(bboxes[order, 4], kind="stable")]
    if len(order) == 0:
        return img
    num = int(labels[order].max()) + 1  # v2: colours for the labels drawn
    box_palette = _bgr_palette(bbox_color, num)
    text_palette = None if text_color is None else _bgr_palette(text_color, num)
    mask_palette = _bgr_palette(mask_color, num)
    auto_line, auto_scale, auto_weight = text_style(*img.shape[:2])
    line = thickness or auto_line
    scale = font_scale or auto_scale
    weight = max(1, round(scale * 1.6)) if font_scale else auto_weight
    if segms is not None and len(segms):
        for i in order:
            region = segms[i].astype(bool)
            tint = np.array(mask_palette[labels[i]], dtype=np.float32)
            img[region] = (img[region] * (1 - _MASK_ALPHA) + tint * _MASK_ALPHA).astype(np.uint8)
            contours, _ = cv2.findContours(
                region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            cv2.drawContours(img, contours, -1, mask_palette[labels[i]], max(1, line // 2))
    corners = []
    for i in order:
        x1, y1, x2, y2 = (round(float(v)) for v in bboxes[i, :4])
        cv2.rectangle(img, (x1, y1), (x2, y2), box_palette[labels[i]], line)
        corners.append((x1, y1, x2, y2))
    for i, box in zip(order, corners, strict=True):
        label = int(labels[i])
        name = (
            class_names[label]
            if class_names is not None and 0 <= label < len(class_names)
            else f"class {label}"
        )
        text = f"{name}|{bboxes[i, 4]:.02f}" if bboxes.shape[1] == 5 else name
        background = box_palette[label] if text_palette is None else (0, 0, 0)
        foreground = _contrast(background) if text_palette is None else text_palette[label]
        _draw_label(img, text, box, background, foreground, scale, weight)
    return img


def imshow(img: np.ndarray, win_name: str = "", wait_time: int = 0) -> int:
    """Show ``img`` in an OpenCV window and wait ``wait_time`` ms (0: for a key); returns the key.

    Raises:
        RuntimeError: OpenCV was built without GUI support (``opencv-python-headless``) or no
            display is available; the message says what to do instead.

    Example:
        >>> imshow(np.zeros((8, 8, 3), np.uint8), 'x', 1)  # doctest: +SKIP
        -1
    """
    try:
        cv2.imshow(win_name or "detections", img)
        return int(cv2.waitKey(wait_time))
    except cv2.error as exc:
        raise RuntimeError(
            "cannot open a window to show the image: this OpenCV has no GUI support or there "
            "is no display (install opencv-python instead of opencv-python-headless, or write "
            f"the result to a file instead); OpenCV said: {str(exc).strip()}"
        ) from exc


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

    ``font_size`` is roughly the text height in pixels (v2's point size, 13 in
    ``show_result``); by default text scales with the image. ``out_file``'s folder is created;
    its extension picks the format (``.png``, ``.jpg``...). Returns the drawn image.

    Example:
        >>> img = np.zeros((40, 40, 3), np.uint8)
        >>> imshow_det_bboxes(img, np.array([[5, 5, 30, 30]]), np.array([0])).shape
        (40, 40, 3)
    """
    image = imread(img) if not isinstance(img, np.ndarray) else img
    scale = None if font_size is None else font_size / 22
    drawn = draw_det_bboxes(
        image,
        bboxes,
        labels,
        segms,
        class_names,
        score_thr,
        bbox_color,
        text_color,
        mask_color,
        thickness,
        scale,
    )
    if show:
        imshow(drawn, win_name, wait_time)
    if out_file is not None:
        imwrite(drawn, os.fspath(out_file))
    return drawn


def draw_result(
    img: str | os.PathLike[str] | np.ndarray,
    result: Any,
    class_names: Sequence[str] | None = None,
    score_thr: float = 0.3,
    palette: Any = None,
    out_file: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Draw one image's v2 result (``bbox_results`` or ``(bbox_results, segm_results)``).

    Args:
        img: Image path or BGR array.
        result: The v2 result (masks may be bool arrays, tensors or RLE dicts).
        class_names: Label names (``model.CLASSES``).
        score_thr: Detections scoring at most this are not drawn.
        palette: Palette spec for boxes and masks.
        out_file: Also write the drawing here.
        **kwargs: More :func:`draw_det_bboxes` options (``text_color``, ``thickness``...).

    Returns:
        The drawn BGR image.

    Example:
        >>> result = [np.array([[10, 10, 50, 40, 0.9]], np.float32)]
        >>> draw_result(np.zeros((60, 80, 3), np.uint8), result, ['cat']).shape
        (60, 80, 3)
    """
    from detforge.structures.det_result import DetResult

    dets = DetResult.from_v2(result)
    bboxes = np.concatenate([dets.boxes, dets.scores[:, None]], axis=1)
    kwargs.setdefault("bbox_color", palette)
    kwargs.setdefault("mask_color", palette)
    segms = dets.masks if dets.masks is not None and len(dets.masks) else None
    return imshow_det_bboxes(
        img,
        bboxes,
        dets.labels,
        segms,
        class_names=class_names,
        score_thr=score_thr,
        out_file=out_file,
        **kwargs,
    )
