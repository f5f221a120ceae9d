"""``CenterNetHead``: Objects as Points (Zhou et al. 2019), MMDetection v2.28 numerics.

One stride-4 feature map; three branches (3x3 conv, ReLU, 1x1 conv) predict a per-class centre
heatmap (sigmoid applied in :meth:`CenterNetHead.forward`), the box size ``(w, h)`` and the
sub-pixel offset of the centre, all in feature-map units.

Targets (:func:`centernet_targets`): each ground truth's centre, scaled to the feature map by
``feat / pad_shape`` (the first image's pad shape, as v2), is truncated to its cell; a gaussian
of radius ``int(gaussian_radius((h, w), 0.3))`` is drawn into its class's heatmap and the cell
gets the size and the fractional offset (later boxes overwrite earlier ones on the same cell).
The heatmap loss is averaged over the number of cells equal to 1 (at least 1), the L1 size and
offset losses over twice that number, on the target cells only.

Test (:meth:`CenterNetHead.decode_heatmap`): local maxima of a ``local_maximum_kernel`` max-pool,
the ``topk`` best (class, cell) pairs over the whole map, boxes centred at cell + offset with the
predicted size, scaled by ``batch_input_shape / feature size``; the crop ``border`` of
``RandomCenterCropPad`` is subtracted and ``rescale`` divides by ``scale_factor``. There is no
score threshold and, unless asked for, no NMS: every image gets ``topk`` detections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.dense_heads.gaussian_target import (
    gaussian_radius,
    gen_gaussian_target,
    get_local_maximum,
    get_topk_from_heatmap,
    transpose_and_gather_feat,
)
from detforge.models.layers import apply_init_cfg, bias_init_with_prob, normal_init
from detforge.ops import batched_nms
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = ["CenterNetHead", "centernet_targets"]


def centernet_targets(
    gt_bboxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    num_classes: int,
    feat_shape: Sequence[int],
    img_shape: Sequence[int],
) -> tuple[dict[str, torch.Tensor], Any]:
    """CenterNet's training targets of a batch (see the module docstring).

    Args:
        gt_bboxes: Per image ``Tensor[n, 4]`` boxes ``(x1, y1, x2, y2)`` in input pixels.
        gt_labels: Per image ``Tensor[n]`` class indices.
        num_classes: Heatmap channels.
        feat_shape: ``(B, C, H, W)`` of the heatmap prediction.
        img_shape: ``(h, w, ...)`` of the input the boxes refer to (v2: the pad shape).

    Returns:
        ``(targets, avg_factor)``: ``center_heatmap_target [B, num_classes, H, W]``,
        ``wh_target``, ``offset_target`` and ``wh_offset_target_weight`` (``[B, 2, H, W]``);
        ``avg_factor`` is the number of heatmap cells equal to 1 (at least 1).

    Example:
        >>> targets, avg = centernet_targets([torch.tensor([[4., 4., 12., 12.]])],
        ...                                  [torch.tensor([1])], 2, (1, 2, 4, 4), (16, 16))
        >>> targets['wh_target'][0, :, 2, 2].tolist(), avg
        ([2.0, 2.0], 1)
    """
    img_h, img_w = img_shape[:2]
    bs, _, feat_h, feat_w = feat_shape
    width_ratio = float(feat_w / img_w)
    height_ratio = float(feat_h / img_h)
    ref = gt_bboxes[-1]
    heatmap = ref.new_zeros([bs, num_classes, feat_h, feat_w])
    wh_target = ref.new_zeros([bs, 2, feat_h, feat_w])
    offset_target = ref.new_zeros([bs, 2, feat_h, feat_w])
    weight = ref.new_zeros([bs, 2, feat_h, feat_w])
    for batch_id in range(bs):
        gt_bbox = gt_bboxes[batch_id]
        gt_label = gt_labels[batch_id]
        center_x = (gt_bbox[:, [0]] + gt_bbox[:, [2]]) * width_ratio / 2
        center_y = (gt_bbox[:, [1]] + gt_bbox[:, [3]]) * height_ratio / 2
        for j, ct in enumerate(torch.cat((center_x, center_y), dim=1)):
            ctx_int, cty_int = (int(v) for v in ct.int())
            ctx, cty = ct
            box_h = (gt_bbox[j][3] - gt_bbox[j][1]) * height_ratio
            box_w = (gt_bbox[j][2] - gt_bbox[j][0]) * width_ratio
            radius = max(0, int(gaussian_radius([box_h, box_w], min_overlap=0.3)))
            gen_gaussian_target(heatmap[batch_id, gt_label[j]], [ctx_int, cty_int], radius)
            wh_target[batch_id, 0, cty_int, ctx_int] = box_w
            wh_target[batch_id, 1, cty_int, ctx_int] = box_h
            offset_target[batch_id, 0, cty_int, ctx_int] = ctx - ctx_int
            offset_target[batch_id, 1, cty_int, ctx_int] = cty - cty_int
            weight[batch_id, :, cty_int, ctx_int] = 1
    avg_factor = max(1, heatmap.eq(1).sum())
    targets = dict(
        center_heatmap_target=heatmap,
        wh_target=wh_target,
        offset_target=offset_target,
        wh_offset_target_weight=weight,
    )
    return targets, avg_factor


def _branch(in_channel: int, feat_channel: int, out_channel: int) -> nn.Sequential:
    """3x3 conv, ReLU, 1x1 conv (state_dict keys ``0.*`` and ``2.*``, as v2)."""
    return nn.Sequential(
        nn.Conv2d(in_channel, feat_channel, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(feat_channel, out_channel, kernel_size=1),
    )


@MODELS.register_module()
class CenterNetHead(BaseDenseHead):
    """CenterNet's heatmap / size / offset head (see the module docstring).

    Args:
        in_channel: Channels of the input map (v2's singular name).
        feat_channel: Channels of each branch's hidden conv.
        num_classes: Foreground classes (heatmap channels).
        loss_center_heatmap: Heatmap loss (:class:`GaussianFocalLoss`).
        loss_wh: Size loss (L1, weight 0.1).
        loss_offset: Offset loss (L1).
        train_cfg: Unused by CenterNet (v2 accepts ``None``).
        test_cfg: ``topk``, ``local_maximum_kernel``, ``max_per_img``; ``nms`` for
            ``with_nms=True``; ``nms_cfg`` turns NMS on in the detector's flip test.
        init_cfg: ``None`` for v2's own init (heatmap bias ``-log(9)``, size and offset convs
            ``N(0, 0.001²)``, PyTorch's default elsewhere); a config given here replaces it.

    Example:
        >>> head = CenterNetHead(in_channel=4, feat_channel=4, num_classes=3,
        ...                      test_cfg=dict(topk=5, local_maximum_kernel=3, max_per_img=5))
        >>> [tuple(t[0].shape) for t in head([torch.rand(1, 4, 8, 8)])]
        [(1, 3, 8, 8), (1, 2, 8, 8), (1, 2, 8, 8)]
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = frozenset()
    TEST_CFG_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"topk", "local_maximum_kernel", "max_per_img", "nms", "nms_cfg"}
    )

    def __init__(
        self,
        *,
        in_channel: int,
        feat_channel: int,
        num_classes: int,
        loss_center_heatmap: Cfg | nn.Module = MappingProxyType(
            dict(type="GaussianFocalLoss", loss_weight=1.0)
        ),
        loss_wh: Cfg | nn.Module = MappingProxyType(dict(type="L1Loss", loss_weight=0.1)),
        loss_offset: Cfg | nn.Module = MappingProxyType(dict(type="L1Loss", loss_weight=1.0)),
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channel,
            feat_channels=feat_channel,
            loss_cls=None,
            loss_bbox=None,
            bbox_coder=None,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
        )
        self.heatmap_head = _branch(in_channel, feat_channel, num_classes)
        self.wh_head = _branch(in_channel, feat_channel, 2)
        self.offset_head = _branch(in_channel, feat_channel, 2)
        self.loss_center_heatmap: Any = build_module(loss_center_heatmap, MODELS)
        self.loss_wh: Any = build_module(loss_wh, MODELS)
        self.loss_offset: Any = build_module(loss_offset, MODELS)

    def init_weights(self) -> None:
        """v2's init (see the class docstring), or ``init_cfg`` when one is given."""
        if self.init_cfg is not None:
            apply_init_cfg(self, self.init_cfg)
            return
        score_conv: Any = self.heatmap_head[-1]
        with torch.no_grad():
            score_conv.bias.fill_(bias_init_with_prob(0.1))
        for branch in (self.wh_head, self.offset_head):
            for m in branch.modules():
                if isinstance(m, nn.Conv2d):
                    normal_init(m, std=0.001)

    def forward(
        self, feats: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per level: sigmoid heatmaps ``[B, C, H, W]``, sizes and offsets ``[B, 2, H, W]``."""
        heatmaps, whs, offsets = [], [], []
        for feat in feats:
            heatmaps.append(self.heatmap_head(feat).sigmoid())
            whs.append(self.wh_head(feat))
            offsets.append(self.offset_head(feat))
        return heatmaps, whs, offsets

    def _single_level(self, *preds: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if any(len(p) != 1 for p in preds):
            raise InvalidArgumentError(
                f"{type(self).__name__} works on one feature map, got "
                f"{[len(p) for p in preds]} levels"
            )
        return tuple(p[0] for p in preds)

    def loss(
        self,
        center_heatmap_preds: Sequence[torch.Tensor],
        wh_preds: Sequence[torch.Tensor],
        offset_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_center_heatmap``, ``loss_wh`` and ``loss_offset`` (ignored boxes unused)."""
        heatmap, wh, offset = self._single_level(center_heatmap_preds, wh_preds, offset_preds)
        targets, avg_factor = centernet_targets(
            gt_bboxes, gt_labels, self.num_classes, heatmap.shape, img_metas[0]["pad_shape"]
        )
        weight = targets["wh_offset_target_weight"]
        return dict(
            loss_center_heatmap=self.loss_center_heatmap(
                heatmap, targets["center_heatmap_target"], avg_factor=avg_factor
            ),
            # two channels per target cell: twice the heatmap's normaliser
            loss_wh=self.loss_wh(wh, targets["wh_target"], weight, avg_factor=avg_factor * 2),
            loss_offset=self.loss_offset(
                offset, targets["offset_target"], weight, avg_factor=avg_factor * 2
            ),
        )

    def get_bboxes(  # type: ignore[override]
        self,
        center_heatmap_preds: Sequence[torch.Tensor],
        wh_preds: Sequence[torch.Tensor],
        offset_preds: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        rescale: bool = True,
        with_nms: bool = False,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image ``(det_bboxes [topk, 5], det_labels [topk])`` (v2's defaults:
        ``rescale=True``, no NMS)."""
        heatmap, wh, offset = self._single_level(center_heatmap_preds, wh_preds, offset_preds)
        cfg = self._test_cfg(None)
        results = []
        for img_id, meta in enumerate(img_metas):
            bboxes, labels = self.decode_heatmap(
                heatmap[img_id : img_id + 1],
                wh[img_id : img_id + 1],
                offset[img_id : img_id + 1],
                meta["batch_input_shape"],
                k=cfg["topk"],
                kernel=cfg["local_maximum_kernel"],
            )
            bboxes, labels = bboxes.view(-1, 5), labels.view(-1)
            # a meta without ``border`` (no RandomCenterCropPad) has nothing to undo
            border = bboxes.new_tensor(meta.get("border", (0, 0, 0, 0)))[[2, 0, 2, 0]]
            bboxes[:, :4] -= border
            if rescale:
                bboxes[:, :4] /= bboxes.new_tensor(meta["scale_factor"])
            if with_nms:
                bboxes, labels = self.bboxes_nms(bboxes, labels, cfg["nms"], cfg["max_per_img"])
            results.append((bboxes, labels))
        return results

    @staticmethod
    def bboxes_nms(
        bboxes: torch.Tensor, labels: torch.Tensor, nms_cfg: Mapping[str, Any], max_num: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class-wise NMS of ``(bboxes [n, 5], labels)``, at most ``max_num`` (> 0) kept."""
        if labels.numel() == 0:
            return bboxes, labels
        dets, keep = batched_nms(bboxes[:, :4], bboxes[:, -1].contiguous(), labels, nms_cfg)
        if max_num > 0:
            return dets[:max_num], labels[keep][:max_num]
        return dets, labels[keep]

    @staticmethod
    def decode_heatmap(
        center_heatmap_pred: torch.Tensor,
        wh_pred: torch.Tensor,
        offset_pred: torch.Tensor,
        img_shape: Sequence[int],
        k: int = 100,
        kernel: int = 3,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes ``[B, k, 5]`` (x1, y1, x2, y2, score) and labels ``[B, k]`` from the maps.

        Args:
            center_heatmap_pred: ``[B, C, H, W]`` sigmoid heatmap.
            wh_pred: ``[B, 2, H, W]`` sizes in feature cells.
            offset_pred: ``[B, 2, H, W]`` centre offsets in feature cells.
            img_shape: ``(h, w)`` of the network input (the feature map's extent in pixels).
            k: Detections per image.
            kernel: Max-pool size of the local-maximum test.
        """
        height, width = center_heatmap_pred.shape[2:]
        inp_h, inp_w = img_shape[:2]
        heat = get_local_maximum(center_heatmap_pred, kernel=kernel)
        scores, index, labels, ys, xs = get_topk_from_heatmap(heat, k=k)
        wh = transpose_and_gather_feat(wh_pred, index)
        offset = transpose_and_gather_feat(offset_pred, index)
        xs = xs + offset[..., 0]
        ys = ys + offset[..., 1]
        x_scale, y_scale = inp_w / width, inp_h / height
        bboxes = torch.stack(
            [
                (xs - wh[..., 0] / 2) * x_scale,
                (ys - wh[..., 1] / 2) * y_scale,
                (xs + wh[..., 0] / 2) * x_scale,
                (ys + wh[..., 1] / 2) * y_scale,
            ],
            dim=2,
        )
        return torch.cat((bboxes, scores[..., None]), dim=-1), labels
