"""The image size an annotation declares versus the size of the decoded file.

COCO's ``width``/``height`` and VOC's ``<size>`` state the frame the boxes were drawn in. When
the file on disk has another size (a re-exported thumbnail, a wrong file), the boxes silently
point elsewhere: a 1x1 image declared 640x480 keeps boxes up to 640 and every one of them
collapses onto the image corner after ``Resize``. :class:`LoadImageFromFile` compares the two
with :func:`size_mismatch` and applies its ``size_mismatch`` policy; ``'rescale'`` uses
:func:`rescale_annotations`.

A pure width/height swap explained by the file's EXIF orientation (5 to 8) that the decoder
applied is not a mismatch: the converters record either frame, and the loader has already
turned the pixels upright as MMDetection v2 does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from detforge.utils.image import exif_orientation

__all__ = ["SIZE_MISMATCH_POLICIES", "rescale_annotations", "rescale_loaded_gt", "size_mismatch"]

#: What :class:`LoadImageFromFile` does when the decoded size differs from the declared one.
SIZE_MISMATCH_POLICIES = ("rescale", "drop", "error")

#: Decoder flags under which OpenCV applies the EXIF orientation.
_ORIENTING_FLAGS = ("color", "grayscale")


def size_mismatch(
    img_info: Mapping[str, Any], shape: tuple[int, ...], filename: str, color_type: str
) -> tuple[int, int] | None:
    """The declared ``(height, width)`` when it differs from the decoded ``shape``, else None.

    ``img_info`` without ``height``/``width`` declares nothing (None).

    Example:
        >>> size_mismatch({'height': 480, 'width': 640}, (1, 1, 3), 'a.jpg', 'color')
        (480, 640)
        >>> size_mismatch({'height': 480, 'width': 640}, (480, 640, 3), 'a.jpg', 'color')
    """
    try:
        declared = (int(img_info["height"]), int(img_info["width"]))
    except (KeyError, TypeError, ValueError):
        return None
    real = (int(shape[0]), int(shape[1]))
    if declared == real:
        return None
    if (
        declared == real[::-1]
        and color_type in _ORIENTING_FLAGS
        and exif_orientation(filename) in (5, 6, 7, 8)
    ):
        return None
    return declared


def rescale_annotations(
    ann_info: Mapping[str, Any], declared: tuple[int, int], real: tuple[int, int]
) -> dict[str, Any]:
    """``ann_info`` with boxes and masks moved from the ``declared`` to the ``real`` frame.

    Frames are ``(height, width)``. ``bboxes`` and ``bboxes_ignore`` are scaled per axis;
    polygon masks scale their points, RLE masks are decoded, resized (nearest) and encoded
    again. Other keys are kept; the input is not modified.

    Example:
        >>> ann = {'bboxes': np.array([[64, 48, 640, 480]], np.float32), 'labels': [0],
        ...        'masks': [[[0, 0, 640, 0, 640, 480]]]}
        >>> out = rescale_annotations(ann, (480, 640), (240, 320))
        >>> out['bboxes'].tolist(), out['masks']
        ([[32.0, 24.0, 320.0, 240.0]], [[[0.0, 0.0, 320.0, 0.0, 320.0, 240.0]]])
    """
    out = dict(ann_info)
    for key in ("bboxes", "bboxes_ignore"):
        if ann_info.get(key) is not None:
            out[key] = _rescale_boxes(ann_info[key], declared, real)
    if ann_info.get("masks") is not None:
        out["masks"] = [_rescale_mask(m, declared, real) for m in ann_info["masks"]]
    return out


def rescale_loaded_gt(
    results: dict[str, Any], declared: tuple[int, int], real: tuple[int, int]
) -> None:
    """Scale the ``gt_*`` boxes and masks a pipeline loaded before the image, in place."""
    for key in results.get("bbox_fields", []):
        if key != "proposals" and key in results:
            results[key] = _rescale_boxes(results[key], declared, real)
    for key in results.get("mask_fields", []):
        if key in results:
            results[key] = results[key].resize(real)


def _rescale_boxes(boxes: Any, declared: tuple[int, int], real: tuple[int, int]) -> np.ndarray:
    scale_y, scale_x = real[0] / declared[0], real[1] / declared[1]
    factors = np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * factors


def _rescale_mask(mask: Any, declared: tuple[int, int], real: tuple[int, int]) -> Any:
    if isinstance(mask, list):
        scale = (real[1] / declared[1], real[0] / declared[0])
        return [[float(v) * scale[i % 2] for i, v in enumerate(poly)] for poly in mask]
    if isinstance(mask, Mapping) and "counts" in mask:
        from pycocotools import mask as mask_utils

        rle = dict(mask)
        if isinstance(rle["counts"], list):
            rle = mask_utils.frPyObjects(rle, *declared)
        bitmap = mask_utils.decode(rle)
        resized = cv2.resize(bitmap, (real[1], real[0]), interpolation=cv2.INTER_NEAREST)
        encoded = mask_utils.encode(np.asfortranarray(resized))
        return {"size": [real[0], real[1]], "counts": encoded["counts"].decode("ascii")}
    return mask
