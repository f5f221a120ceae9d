"""Data structures, and the data contract every part of detforge relies on.

This docstring is the one written statement of the contract; other modules link here instead
of restating it. It matches MMDetection v2 wherever data crosses detforge's boundary.

Images
    Loaded as ``uint8`` arrays ``[H, W, 3]`` in OpenCV's BGR order (``[H, W]`` only with
    ``color_type='unchanged'`` / ``'grayscale'``), and stay so through every geometric and
    photometric transform. ``Normalize`` is the first step that changes that: it returns
    float32, swaps BGR to RGB when ``to_rgb`` is set, and computes ``(img - mean) / std``.
    ``DefaultFormatBundle`` turns the image into a float32 ``Tensor[3, H, W]``; the collate
    pads a batch at the bottom and right with 0 (``gt_semantic_seg`` with 255) and stacks it.
    Sizes written as ``size``/``scale`` are ``(w, h)``; ``*_shape`` values are ``(h, w[, c])``.

Boxes
    ``float32`` ``[N, 4]``: absolute pixel ``x1, y1, x2, y2`` in the frame of the image they
    travel with (after ``Resize`` the resized image, after ``Pad`` the same coordinates on the
    larger canvas). Width is ``x2 - x1`` and height ``y2 - y1``, without v1's ``+ 1``; only
    VOC-style evaluation keeps the legacy ``+ 1`` behind ``use_legacy_coordinate``. A
    horizontal flip maps ``x1' = w - x2``. An empty set of boxes is ``[0, 4]``, never
    ``[0]``. Boxes with a score are ``[N, 5]`` (``..., score``); RoIs are ``[K, 5]`` with the
    image index first (:func:`bbox2roi`).

Labels
    ``int64`` ``[N]`` in ``[0, num_classes)``, where ``num_classes`` counts foreground classes
    only. Softmax classifiers use ``num_classes`` as the background index inside the head; no
    code outside a head ever sees it.

Masks
    ``gt_masks`` is a :class:`BitmapMasks` (``uint8`` ``[N, H, W]``) or :class:`PolygonMasks`
    (per instance a list of flat ``[x0, y0, x1, y1, ...]`` float arrays) object, with one
    instance per row of ``gt_bboxes``. They remain those objects through formatting and
    collation (a per-image list in the batch); heads call ``crop_and_resize`` or
    ``to_tensor``. Semantic maps (``gt_semantic_seg``) are ``uint8`` ``[H, W]`` with 255 as
    "ignore".

The results dict
    A sample travels through the pipeline as MMDetection v2's ``results`` dict, with exactly
    its key names: ``img_info, ann_info, img_prefix, seg_prefix, proposal_file, filename,
    ori_filename, img, img_shape, ori_shape, pad_shape, scale, scale_idx, scale_factor,
    keep_ratio, flip, flip_direction, img_norm_cfg, gt_bboxes, gt_labels, gt_bboxes_ignore,
    gt_labels_ignore, gt_masks, gt_semantic_seg, proposals, img_fields, bbox_fields,
    mask_fields, seg_fields``. ``scale_factor`` is ``float32`` ``[4]`` ``(w, h, w, h)``;
    ``img_shape``, ``ori_shape`` and ``pad_shape`` are ``(h, w, c)`` tuples. Transforms touch
    every key listed in ``img_fields``/``bbox_fields``/``mask_fields``/``seg_fields``, so a
    new box-like key is transformed by adding it to ``bbox_fields``. There is no mmcv
    ``DataContainer``: ``DefaultFormatBundle`` produces plain tensors, and ``Collect(keys,
    meta_keys)`` keeps the listed keys plus ``img_metas``, a plain dict of the meta keys. The
    detector's ``forward_train(img, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore=None,
    gt_masks=None, ...)`` receives the same names; no key is renamed between loader and loss.
    The keys of one ``img_metas`` entry are typed by :class:`ImgMeta`.

Detection results (the v2 format)
    Per image, a list over classes of ``float32`` ``ndarray[n, 5]`` rows ``x1, y1, x2, y2,
    score`` in the original image's pixels. Instance segmentation returns a tuple
    ``(bbox_results, segm_results)`` where ``segm_results[c]`` holds one mask per row of
    ``bbox_results[c]``: a bool ``ndarray[H, W]`` or, once encoded for storage
    (:func:`encode_mask_results`), a pycocotools RLE dict (:func:`rle_encode` /
    :func:`rle_decode`). A test run's ``results.pkl`` is the list of these per-image results
    in dataset order; ``show_result`` and ``dataset.evaluate`` read exactly this.
    :func:`split_v2_result` tells the box part of a result from its mask part, and
    :func:`split_mask_scores` the masks from the mask scores of the mask-scoring form.

DetResult
    :class:`DetResult` is the typed view for API users: ``boxes`` ``float32 [N, 4]``,
    ``scores`` ``float32 [N]``, ``labels`` ``int64 [N]`` and ``masks`` (bool ``[N, H, W]`` or
    None). ``DetResult.from_v2(result)`` and ``result.to_v2(num_classes)`` convert both ways
    without loss (detections are ordered class by class), and ``above(score_thr)`` /
    ``sorted()`` filter and order them.
"""

from detforge.structures.bbox import (
    bbox2distance,
    bbox2result,
    bbox2roi,
    bbox_clip,
    bbox_cxcywh_to_xyxy,
    bbox_flip,
    bbox_mapping,
    bbox_mapping_back,
    bbox_overlaps,
    bbox_rescale,
    bbox_xywh_to_xyxy,
    bbox_xyxy_to_cxcywh,
    bbox_xyxy_to_xywh,
    distance2bbox,
    roi2bbox,
)
from detforge.structures.det_result import DetResult, split_v2_result
from detforge.structures.img_meta import ImgMeta
from detforge.structures.masks import (
    BaseInstanceMasks,
    BitmapMasks,
    InstanceMasks,
    PolygonMasks,
    encode_mask_results,
    mask2bbox,
    mask2ndarray,
    polygon_to_bitmap,
    rle_decode,
    rle_encode,
    split_mask_scores,
)

__all__ = [
    "BaseInstanceMasks",
    "BitmapMasks",
    "DetResult",
    "ImgMeta",
    "InstanceMasks",
    "PolygonMasks",
    "bbox2distance",
    "bbox2result",
    "bbox2roi",
    "bbox_clip",
    "bbox_cxcywh_to_xyxy",
    "bbox_flip",
    "bbox_mapping",
    "bbox_mapping_back",
    "bbox_overlaps",
    "bbox_rescale",
    "bbox_xywh_to_xyxy",
    "bbox_xyxy_to_cxcywh",
    "bbox_xyxy_to_xywh",
    "distance2bbox",
    "encode_mask_results",
    "mask2bbox",
    "mask2ndarray",
    "polygon_to_bitmap",
    "rle_decode",
    "rle_encode",
    "roi2bbox",
    "split_mask_scores",
    "split_v2_result",
]
