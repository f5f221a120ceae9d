"""``ImgMeta``: the per-image meta dict that travels next to a batch as ``img_metas``.

``Collect`` gathers these keys (its ``meta_keys``, v2's default tuple) from the pipeline's
results dict; the detector adds ``batch_input_shape``. See the data contract in
:mod:`detforge.structures` for the meaning of the shapes and the scale factor.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["ImgMeta"]


class ImgMeta(TypedDict, total=False):
    """One image's meta data (every key optional: a pipeline may collect fewer).

    Example:
        >>> meta: ImgMeta = {'img_shape': (800, 1199, 3), 'flip': False}
        >>> meta['img_shape'][:2]
        (800, 1199)
    """

    filename: str | None
    ori_filename: str | None
    ori_shape: tuple[int, ...]
    #: ``(h, w, c)`` after ``Resize`` (the frame the boxes are in before padding)
    img_shape: tuple[int, ...]
    #: ``(h, w, c)`` after ``Pad``
    pad_shape: tuple[int, ...]
    #: ``float32 [4]`` ``(w, h, w, h)``: resized size over original size
    scale_factor: Any
    flip: bool
    flip_direction: str | None
    img_norm_cfg: dict[str, Any]
    #: ``(h, w)`` of the padded batch tensor, set by the detector's ``forward``
    batch_input_shape: tuple[int, int]
