"""Drawing detections: the one drawer used by ``show_result``, demos and ``--show-dir``."""

from detforge.visualization.draw import color_for, draw_det_bboxes, imshow_det_bboxes

__all__ = ["color_for", "draw_det_bboxes", "imshow_det_bboxes"]
