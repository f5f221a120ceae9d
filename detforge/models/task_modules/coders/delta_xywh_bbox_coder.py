"""``DeltaXYWHBBoxCoder``: R-CNN box deltas ``(dx, dy, dw, dh)``; MMDetection v2 numerics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from detforge.errors import InvalidArgumentError
from detforge.registry import TASK_UTILS
from detforge.structures.bbox import clip_to_max_shapes

__all__ = ["DeltaXYWHBBoxCoder", "bbox2delta", "delta2bbox"]

MaxShape = Sequence[int] | Sequence[Sequence[int]] | torch.Tensor


def bbox2delta(
    proposals: torch.Tensor,
    gt: torch.Tensor,
    means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> torch.Tensor:
    """Deltas that move ``proposals`` onto ``gt``, normalised by ``means`` and ``stds``.

    ``dx = (gx - px) / pw``, ``dy = (gy - py) / ph``, ``dw = log(gw / pw)``,
    ``dh = log(gh / ph)`` (centres and sizes, no +1), then ``(d - means) / stds``.

    Args:
        proposals: ``Tensor[..., 4]``.
        gt: ``Tensor[..., 4]`` of the same shape.
        means: Mean subtracted from each delta.
        stds: Standard deviation dividing each delta.

    Returns:
        float32 ``Tensor[..., 4]``.

    Example:
        >>> bbox2delta(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[5., 0., 15., 20.]]))
        tensor([[0.5000, 0.5000, 0.0000, 0.6931]])
    """
    if proposals.size() != gt.size():
        raise InvalidArgumentError(
            f"bbox2delta: proposals {tuple(proposals.shape)} and gt {tuple(gt.shape)} differ"
        )
    proposals = proposals.float()
    gt = gt.float()
    px = (proposals[..., 0] + proposals[..., 2]) * 0.5
    py = (proposals[..., 1] + proposals[..., 3]) * 0.5
    pw = proposals[..., 2] - proposals[..., 0]
    ph = proposals[..., 3] - proposals[..., 1]
    gx = (gt[..., 0] + gt[..., 2]) * 0.5
    gy = (gt[..., 1] + gt[..., 3]) * 0.5
    gw = gt[..., 2] - gt[..., 0]
    gh = gt[..., 3] - gt[..., 1]
    deltas = torch.stack(
        [(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1
    )
    return deltas.sub_(deltas.new_tensor(means).unsqueeze(0)).div_(
        deltas.new_tensor(stds).unsqueeze(0)
    )


def delta2bbox(
    rois: torch.Tensor,
    deltas: torch.Tensor,
    means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    max_shape: Sequence[int] | torch.Tensor | None = None,
    wh_ratio_clip: float = 16 / 1000,
    clip_border: bool = True,
    add_ctr_clamp: bool = False,
    ctr_clamp: float = 32,
) -> torch.Tensor:
    """Apply deltas ``Tensor[N, 4 * C]`` to boxes ``Tensor[N, 4]`` (inverse of :func:`bbox2delta`).

    ``dw``/``dh`` are clamped to ``±|log(wh_ratio_clip)|`` (with ``add_ctr_clamp``: only from
    above, and the centre shift ``pw * dx`` to ``±ctr_clamp`` pixels, as in YOLOF).

    Args:
        rois: ``Tensor[N, 4]`` boxes the deltas are relative to.
        deltas: ``Tensor[N, 4 * C]`` (one box per class when ``C > 1``).
        means: Denormalising means.
        stds: Denormalising standard deviations.
        max_shape: ``(h, w[, c])``; boxes are clipped to it when ``clip_border``.
        wh_ratio_clip: Limit of the size change per axis.
        clip_border: Clip to ``max_shape``.
        add_ctr_clamp: Clamp the centre shift (YOLOF).
        ctr_clamp: The centre-shift bound in pixels.

    Returns:
        ``Tensor[N, 4 * C]``.

    Example:
        >>> rois = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.], [0., 0., 1., 1.],
        ...                      [5., 5., 5., 5.]])
        >>> deltas = torch.tensor([[0., 0., 0., 0.], [1., 1., 1., 1.], [0., 0., 2., -1.],
        ...                        [0.7, -1.9, -0.5, 0.3]])
        >>> delta2bbox(rois, deltas, max_shape=(32, 32, 3))
        tensor([[0.0000, 0.0000, 1.0000, 1.0000],
                [0.1409, 0.1409, 2.8591, 2.8591],
                [0.0000, 0.3161, 4.1945, 0.6839],
                [5.0000, 5.0000, 5.0000, 5.0000]])
    """
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    if num_bboxes == 0:
        return deltas
    deltas = deltas.reshape(-1, 4)
    denorm = deltas * deltas.new_tensor(stds).view(1, -1) + deltas.new_tensor(means).view(1, -1)
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    rois_ = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_[:, :2] + rois_[:, 2:]) * 0.5
    pwh = rois_[:, 2:] - rois_[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = float(np.abs(np.log(wh_ratio_clip)))
    if add_ctr_clamp:
        dxy_wh = torch.clamp(dxy_wh, max=ctr_clamp, min=-ctr_clamp)
        dwh = torch.clamp(dwh, max=max_ratio)
    else:
        dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if clip_border and max_shape is not None:
        max_h, max_w = float(max_shape[0]), float(max_shape[1])
        bboxes = torch.stack(
            [
                bboxes[:, 0].clamp(min=0, max=max_w),
                bboxes[:, 1].clamp(min=0, max=max_h),
                bboxes[:, 2].clamp(min=0, max=max_w),
                bboxes[:, 3].clamp(min=0, max=max_h),
            ],
            dim=-1,
        )
    return bboxes.reshape(num_bboxes, -1)


def _single_max_shape(max_shape: MaxShape | None) -> Sequence[int] | torch.Tensor | None:
    """``max_shape`` for one image; per-image shapes are an error for unbatched input."""
    if max_shape is None:
        return None
    nested = (
        max_shape.ndim > 1
        if isinstance(max_shape, torch.Tensor)
        else len(max_shape) > 0 and isinstance(max_shape[0], Sequence | torch.Tensor)
    )
    if nested:
        raise InvalidArgumentError(
            "DeltaXYWHBBoxCoder.decode: per-image max_shape needs batched [B, N, 4] input, "
            f"got max_shape={max_shape!r} for [N, 4] boxes"
        )
    return max_shape  # type: ignore[return-value]


def _batched_delta2bbox(
    rois: torch.Tensor,
    deltas: torch.Tensor,
    means: Sequence[float],
    stds: Sequence[float],
    max_shape: MaxShape | None,
    wh_ratio_clip: float,
    clip_border: bool,
    add_ctr_clamp: bool,
    ctr_clamp: float,
) -> torch.Tensor:
    """:func:`delta2bbox` over a batch: ``rois [B, N, 4]``, ``deltas [B, N, 4 * C]``.

    ``max_shape`` is one ``(h, w)`` for all images or one per image (``[B, 2+]``).
    """
    repeats = deltas.size(-1) // 4
    means_t = deltas.new_tensor(means).view(1, -1).repeat(1, repeats)
    stds_t = deltas.new_tensor(stds).view(1, -1).repeat(1, repeats)
    denorm = deltas * stds_t + means_t
    dx, dy = denorm[..., 0::4], denorm[..., 1::4]
    dw, dh = denorm[..., 2::4], denorm[..., 3::4]
    x1, y1, x2, y2 = rois[..., 0], rois[..., 1], rois[..., 2], rois[..., 3]
    px = ((x1 + x2) * 0.5).unsqueeze(-1).expand_as(dx)
    py = ((y1 + y2) * 0.5).unsqueeze(-1).expand_as(dy)
    pw = (x2 - x1).unsqueeze(-1).expand_as(dw)
    ph = (y2 - y1).unsqueeze(-1).expand_as(dh)
    dx_width, dy_height = pw * dx, ph * dy
    max_ratio = float(np.abs(np.log(wh_ratio_clip)))
    if add_ctr_clamp:
        dx_width = torch.clamp(dx_width, max=ctr_clamp, min=-ctr_clamp)
        dy_height = torch.clamp(dy_height, max=ctr_clamp, min=-ctr_clamp)
        dw = torch.clamp(dw, max=max_ratio)
        dh = torch.clamp(dh, max=max_ratio)
    else:
        dw = dw.clamp(min=-max_ratio, max=max_ratio)
        dh = dh.clamp(min=-max_ratio, max=max_ratio)
    gw, gh = pw * dw.exp(), ph * dh.exp()
    gx, gy = px + dx_width, py + dy_height
    bboxes = torch.stack([gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5], dim=-1).view(
        deltas.size()
    )
    if clip_border and max_shape is not None:
        bboxes = clip_to_max_shapes(bboxes, max_shape, where="DeltaXYWHBBoxCoder.decode")
    return bboxes


@TASK_UTILS.register_module()
class DeltaXYWHBBoxCoder:
    """Encode boxes as normalised R-CNN deltas and decode them back (MMDetection v2).

    Args:
        target_means: Means of the deltas (subtracted by ``encode``).
        target_stds: Standard deviations of the deltas (divide in ``encode``).
        clip_border: Clip decoded boxes to ``max_shape``.
        add_ctr_clamp: Clamp the decoded centre shift to ``ctr_clamp`` pixels (YOLOF).
        ctr_clamp: The centre-shift bound in pixels.

    Example:
        >>> coder = DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2))
        >>> anchors = torch.tensor([[0., 0., 10., 10.]])
        >>> gt = torch.tensor([[1., 2., 12., 9.]])
        >>> torch.allclose(coder.decode(anchors, coder.encode(anchors, gt)), gt)
        True
    """

    def __init__(
        self,
        target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
        target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
        clip_border: bool = True,
        add_ctr_clamp: bool = False,
        ctr_clamp: float = 32,
    ) -> None:
        self.means = target_means
        self.stds = target_stds
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp

    def encode(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """Deltas ``Tensor[N, 4]`` that transform ``bboxes`` ``[N, 4]`` into ``gt_bboxes``."""
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 or gt_bboxes.size(-1) != 4:
            raise InvalidArgumentError(
                f"DeltaXYWHBBoxCoder.encode: bboxes {tuple(bboxes.shape)} and gt_bboxes "
                f"{tuple(gt_bboxes.shape)} must both be [N, 4]"
            )
        return bbox2delta(bboxes, gt_bboxes, self.means, self.stds)

    def decode(
        self,
        bboxes: torch.Tensor,
        pred_bboxes: torch.Tensor,
        max_shape: MaxShape | None = None,
        wh_ratio_clip: float = 16 / 1000,
    ) -> torch.Tensor:
        """Apply ``pred_bboxes`` to ``bboxes``.

        Args:
            bboxes: ``Tensor[N, 4]``, or ``Tensor[B, N, 4]`` for a batch.
            pred_bboxes: ``Tensor[N, 4 * C]`` or ``Tensor[B, N, 4 * C]``.
            max_shape: ``(h, w[, c])`` to clip to; for a batch one shape for all images or a
                sequence of per-image shapes.
            wh_ratio_clip: Limit of the size change per axis.

        Returns:
            Boxes shaped like ``pred_bboxes``.
        """
        if pred_bboxes.size(0) != bboxes.size(0) or (
            pred_bboxes.ndim == 3 and pred_bboxes.size(1) != bboxes.size(1)
        ):
            raise InvalidArgumentError(
                f"DeltaXYWHBBoxCoder.decode: bboxes {tuple(bboxes.shape)} do not match "
                f"pred_bboxes {tuple(pred_bboxes.shape)}"
            )
        if pred_bboxes.ndim == 2:
            return delta2bbox(
                bboxes,
                pred_bboxes,
                self.means,
                self.stds,
                _single_max_shape(max_shape),
                wh_ratio_clip,
                self.clip_border,
                self.add_ctr_clamp,
                self.ctr_clamp,
            )
        if pred_bboxes.ndim == 3:
            warnings.warn(
                "DeltaXYWHBBoxCoder.decode: batched [B, N, 4] decoding is deprecated in "
                "MMDetection v2; decode each image with [N, 4] inputs instead",
                DeprecationWarning,
                stacklevel=2,
            )
        return _batched_delta2bbox(
            bboxes,
            pred_bboxes,
            self.means,
            self.stds,
            max_shape,
            wh_ratio_clip,
            self.clip_border,
            self.add_ctr_clamp,
            self.ctr_clamp,
        )
