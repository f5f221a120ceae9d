"""Training targets and test-time corner pairing of CornerNet and CentripetalNet (v2 numerics).

Targets (:func:`corner_targets`): every ground truth's corners, scaled to the feature map by
``feat / pad_shape``, are truncated to cells (clamped to the map); a gaussian of radius
``int(gaussian_radius((ceil(h), ceil(w)), 0.3))`` goes into the top-left and bottom-right
heatmaps of its class; the corner cells get the fractional offsets, and optionally the
embedding match (the two cells), the guiding shift (corner cell to the exact centre) and the
centripetal shift (``log`` of the exact corner-to-centre distances).

Pairing (:func:`decode_corners`): the ``k`` best local-maximum corners of each kind are paired
all-to-all; a pair scores the mean of its corner scores, or -1 when the classes differ, the box
is empty, or the corners do not belong together: embeddings further apart than
``distance_threshold`` (CornerNet), or a centripetally shifted corner outside the central
region of the box or the shifted box over ``distance_threshold`` times that region's area
(CentripetalNet). The ``num_dets`` best pairs are returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import ceil, log
from typing import Any

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.gaussian_target import (
    gather_feat,
    gaussian_radius,
    gen_gaussian_target,
    get_local_maximum,
    get_topk_from_heatmap,
    transpose_and_gather_feat,
)

__all__ = ["corner_targets", "decode_corners"]


def corner_targets(
    gt_bboxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    num_classes: int,
    feat_shape: Sequence[int],
    img_shape: Sequence[int],
    with_corner_emb: bool = False,
    with_guiding_shift: bool = False,
    with_centripetal_shift: bool = False,
) -> dict[str, Any]:
    """Corner targets of a batch (see the module docstring), keyed as v2's ``get_targets``.

    Args:
        gt_bboxes: Per image ``Tensor[n, 4]`` boxes in input pixels.
        gt_labels: Per image ``Tensor[n]`` class indices.
        num_classes: Heatmap channels.
        feat_shape: ``(B, C, H, W)`` of the heatmap prediction.
        img_shape: ``(h, w, ...)`` the boxes refer to (v2: the first image's pad shape).
        with_corner_emb: Add ``corner_embedding`` (per image, per box its two cells).
        with_guiding_shift: Add ``topleft/bottomright_guiding_shift``.
        with_centripetal_shift: Add ``topleft/bottomright_centripetal_shift``.

    Example:
        >>> t = corner_targets([torch.tensor([[4., 8., 20., 24.]])], [torch.tensor([0])], 1,
        ...                    (1, 1, 8, 8), (32, 32), with_corner_emb=True)
        >>> t['corner_embedding'], t['topleft_offset'][0, :, 2, 1].tolist()
        ([[[[2, 1], [6, 5]]]], [0.0, 0.0])
    """
    batch_size, _, height, width = feat_shape
    img_h, img_w = img_shape[:2]
    width_ratio = float(width / img_w)
    height_ratio = float(height / img_h)
    ref = gt_bboxes[-1]

    def zeros(channels: int) -> torch.Tensor:
        return ref.new_zeros([batch_size, channels, height, width])

    tl_heat, br_heat = zeros(num_classes), zeros(num_classes)
    tl_off, br_off = zeros(2), zeros(2)
    tl_guide, br_guide = zeros(2), zeros(2)
    tl_cent, br_cent = zeros(2), zeros(2)
    match = []
    for b in range(batch_size):
        corner_match = []
        for box_id in range(len(gt_labels[b])):
            left, top, right, bottom = gt_bboxes[b][box_id]
            label = gt_labels[b][box_id]
            center_x = (left + right) / 2.0
            center_y = (top + bottom) / 2.0
            s_left, s_right = left * width_ratio, right * width_ratio
            s_top, s_bottom = top * height_ratio, bottom * height_ratio
            s_cx, s_cy = center_x * width_ratio, center_y * height_ratio
            left_idx = int(min(s_left, width - 1))
            right_idx = int(min(s_right, width - 1))
            top_idx = int(min(s_top, height - 1))
            bottom_idx = int(min(s_bottom, height - 1))
            box_w, box_h = ceil(s_right - s_left), ceil(s_bottom - s_top)
            radius = max(0, int(gaussian_radius((box_h, box_w), min_overlap=0.3)))
            gen_gaussian_target(tl_heat[b, label], [left_idx, top_idx], radius)
            gen_gaussian_target(br_heat[b, label], [right_idx, bottom_idx], radius)
            tl_off[b, 0, top_idx, left_idx] = s_left - left_idx
            tl_off[b, 1, top_idx, left_idx] = s_top - top_idx
            br_off[b, 0, bottom_idx, right_idx] = s_right - right_idx
            br_off[b, 1, bottom_idx, right_idx] = s_bottom - bottom_idx
            corner_match.append([[top_idx, left_idx], [bottom_idx, right_idx]])
            if with_guiding_shift:
                tl_guide[b, 0, top_idx, left_idx] = s_cx - left_idx
                tl_guide[b, 1, top_idx, left_idx] = s_cy - top_idx
                br_guide[b, 0, bottom_idx, right_idx] = right_idx - s_cx
                br_guide[b, 1, bottom_idx, right_idx] = bottom_idx - s_cy
            if with_centripetal_shift:
                tl_cent[b, 0, top_idx, left_idx] = log(s_cx - s_left)
                tl_cent[b, 1, top_idx, left_idx] = log(s_cy - s_top)
                br_cent[b, 0, bottom_idx, right_idx] = log(s_right - s_cx)
                br_cent[b, 1, bottom_idx, right_idx] = log(s_bottom - s_cy)
        match.append(corner_match)
    targets: dict[str, Any] = dict(
        topleft_heatmap=tl_heat,
        topleft_offset=tl_off,
        bottomright_heatmap=br_heat,
        bottomright_offset=br_off,
    )
    if with_corner_emb:
        targets.update(corner_embedding=match)
    if with_guiding_shift:
        targets.update(topleft_guiding_shift=tl_guide, bottomright_guiding_shift=br_guide)
    if with_centripetal_shift:
        targets.update(topleft_centripetal_shift=tl_cent, bottomright_centripetal_shift=br_cent)
    return targets


def _centripetal_rejects(
    bboxes: torch.Tensor,
    ct_bboxes: torch.Tensor,
    area_bboxes: torch.Tensor,
    distance_threshold: float,
) -> torch.Tensor:
    """Pairs to reject (``Tensor[B, k, k]`` bool) whose centripetally shifted corners
    ``ct_bboxes`` leave the central region of their box (``mu`` = 1/2.4 of its size, 1/2.1
    above 3500 px²), or whose shifted box is over ``distance_threshold`` times that region."""
    mu = torch.ones_like(area_bboxes) / 2.4
    mu[area_bboxes > 3500] = 1 / 2.1  # large boxes get a smaller central region
    center_x = (bboxes[..., 0] + bboxes[..., 2]) / 2
    center_y = (bboxes[..., 1] + bboxes[..., 3]) / 2
    x1 = center_x - mu * (bboxes[..., 2] - bboxes[..., 0]) / 2
    y1 = center_y - mu * (bboxes[..., 3] - bboxes[..., 1]) / 2
    x2 = center_x + mu * (bboxes[..., 2] - bboxes[..., 0]) / 2
    y2 = center_y + mu * (bboxes[..., 3] - bboxes[..., 1]) / 2
    area_central = ((x2 - x1) * (y2 - y1)).abs()
    area_ct = (
        (ct_bboxes[..., 2] - ct_bboxes[..., 0]) * (ct_bboxes[..., 3] - ct_bboxes[..., 1])
    ).abs()
    return (
        (area_ct / area_central > distance_threshold)
        | (ct_bboxes[..., 0] <= x1)
        | (ct_bboxes[..., 0] >= x2)
        | (ct_bboxes[..., 1] <= y1)
        | (ct_bboxes[..., 1] >= y2)
        | (ct_bboxes[..., 2] <= x1)
        | (ct_bboxes[..., 2] >= x2)
        | (ct_bboxes[..., 3] <= y1)
        | (ct_bboxes[..., 3] >= y2)
    )


def decode_corners(
    tl_heat: torch.Tensor,
    br_heat: torch.Tensor,
    tl_off: torch.Tensor,
    br_off: torch.Tensor,
    img_meta: Mapping[str, Any],
    tl_emb: torch.Tensor | None = None,
    br_emb: torch.Tensor | None = None,
    tl_centripetal_shift: torch.Tensor | None = None,
    br_centripetal_shift: torch.Tensor | None = None,
    k: int = 100,
    kernel: int = 3,
    distance_threshold: float = 0.5,
    num_dets: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paired corners as boxes (see the module docstring).

    Args:
        tl_heat: ``[B, C, H, W]`` sigmoid top-left heatmap (``br_heat`` likewise).
        tl_off: ``[B, 2, H, W]`` top-left offsets (``br_off`` likewise).
        img_meta: ``pad_shape`` (the feature map's extent in pixels) and optionally
            ``border`` ``(top, bottom, left, right)`` of a centre crop, subtracted.
        tl_emb: ``[B, C_emb, H, W]`` embeddings (CornerNet; ``br_emb`` likewise).
        tl_centripetal_shift: ``[B, 2, H, W]`` log shifts (CentripetalNet; ``br_*`` likewise).
        k: Corners of each kind.
        kernel: Max-pool size of the local-maximum test.
        distance_threshold: Largest embedding distance of a pair.
        num_dets: Pairs returned.

    Returns:
        ``(bboxes [B, num_dets, 4], scores [B, num_dets, 1], labels [B, num_dets, 1])``,
        rejected pairs scored -1; labels are float (v2).

    Raises:
        ValueError: neither or both of embeddings and centripetal shifts are given.
    """
    with_embedding = tl_emb is not None and br_emb is not None
    with_shift = tl_centripetal_shift is not None and br_centripetal_shift is not None
    if with_embedding == with_shift:
        raise InvalidArgumentError("decode_corners needs either embeddings or centripetal shifts")
    batch, _, height, width = tl_heat.size()
    inp_h, inp_w = img_meta["pad_shape"][:2]
    x_scale, y_scale = inp_w / width, inp_h / height

    tl_scores, tl_inds, tl_clses, tl_ys, tl_xs = get_topk_from_heatmap(
        get_local_maximum(tl_heat, kernel=kernel), k=k
    )
    br_scores, br_inds, br_clses, br_ys, br_xs = get_topk_from_heatmap(
        get_local_maximum(br_heat, kernel=kernel), k=k
    )
    # top-left corners along dim 1, bottom-right ones along dim 2
    tl_off_k = transpose_and_gather_feat(tl_off, tl_inds).view(batch, k, 1, 2)
    br_off_k = transpose_and_gather_feat(br_off, br_inds).view(batch, 1, k, 2)
    tl_x = tl_xs.view(batch, k, 1).repeat(1, 1, k) + tl_off_k[..., 0]
    tl_y = tl_ys.view(batch, k, 1).repeat(1, 1, k) + tl_off_k[..., 1]
    br_x = br_xs.view(batch, 1, k).repeat(1, k, 1) + br_off_k[..., 0]
    br_y = br_ys.view(batch, 1, k).repeat(1, k, 1) + br_off_k[..., 1]
    if with_shift:
        assert tl_centripetal_shift is not None and br_centripetal_shift is not None
        tl_shift = transpose_and_gather_feat(tl_centripetal_shift, tl_inds)
        br_shift = transpose_and_gather_feat(br_centripetal_shift, br_inds)
        tl_shift = tl_shift.view(batch, k, 1, 2).exp()
        br_shift = br_shift.view(batch, 1, k, 2).exp()
        ct = [
            tl_x + tl_shift[..., 0],
            tl_y + tl_shift[..., 1],
            br_x - br_shift[..., 0],
            br_y - br_shift[..., 1],
        ]
    x_off, y_off = 0.0, 0.0  # no crop
    if "border" in img_meta:
        x_off, y_off = img_meta["border"][2], img_meta["border"][0]
    corners = [tl_x * x_scale, tl_y * y_scale, br_x * x_scale, br_y * y_scale]
    corners = [c - off for c, off in zip(corners, (x_off, y_off, x_off, y_off), strict=True)]
    tl_x, tl_y, br_x, br_y = (torch.where(c > 0.0, c, torch.zeros_like(c)) for c in corners)
    bboxes = torch.stack((tl_x, tl_y, br_x, br_y), dim=3)
    area_bboxes = ((br_x - tl_x) * (br_y - tl_y)).abs()
    if with_shift:
        scales = (x_scale, y_scale, x_scale, y_scale)
        offs = (x_off, y_off, x_off, y_off)
        ct = [c * s - off for c, s, off in zip(ct, scales, offs, strict=True)]
        ct = [c * c.gt(0.0).type_as(c) for c in ct]
        pair_rejects = _centripetal_rejects(
            bboxes, torch.stack(ct, dim=3), area_bboxes, distance_threshold
        )
    else:
        assert tl_emb is not None and br_emb is not None
        tl_e = transpose_and_gather_feat(tl_emb, tl_inds).view(batch, k, 1)
        br_e = transpose_and_gather_feat(br_emb, br_inds).view(batch, 1, k)
        pair_rejects = torch.abs(tl_e - br_e) > distance_threshold
    scores = (tl_scores.view(batch, k, 1).repeat(1, 1, k) + br_scores.view(batch, 1, k)) / 2
    tl_clses = tl_clses.view(batch, k, 1).repeat(1, 1, k)
    reject = (
        (tl_clses != br_clses.view(batch, 1, k)) | (br_x <= tl_x) | (br_y <= tl_y) | pair_rejects
    )
    scores = torch.where(reject, -torch.ones_like(scores), scores)
    scores, inds = torch.topk(scores.view(batch, -1), num_dets)
    bboxes = gather_feat(bboxes.view(batch, -1, 4), inds)
    clses = gather_feat(tl_clses.contiguous().view(batch, -1, 1), inds).float()
    return bboxes, scores.unsqueeze(2), clses
