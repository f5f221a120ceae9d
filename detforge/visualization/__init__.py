"""Drawing detections: the one drawer used by ``show_result``, demos, ``--show-dir`` and the
service, with MMDetection v2's palettes."""

from detforge.visualization.draw import (
    color_for,
    draw_det_bboxes,
    draw_result,
    imshow,
    imshow_det_bboxes,
    text_style,
)
from detforge.visualization.palettes import (
    CITYSCAPES_PALETTE,
    COCO_PALETTE,
    PALETTE_NAMES,
    VOC_PALETTE,
    default_palette,
    get_palette,
    palette_val,
)

__all__ = [
    "CITYSCAPES_PALETTE",
    "COCO_PALETTE",
    "PALETTE_NAMES",
    "VOC_PALETTE",
    "color_for",
    "default_palette",
    "draw_det_bboxes",
    "draw_result",
    "get_palette",
    "imshow",
    "imshow_det_bboxes",
    "palette_val",
    "text_style",
]
