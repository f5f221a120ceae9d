"""``YOLOFHead``: the YOLOF head (Chen et al. 2021), MMDetection v2.28 numerics.

One feature level (the DilatedEncoder's output). A classification subnet (``num_cls_convs``
ConvModules) feeds ``cls_score``; a regression subnet (``num_reg_convs``) feeds ``bbox_pred``
and an implicit objectness ``object_pred``. The returned class logits are normalised by the
objectness: ``c + o - log(1 + exp(c) + exp(o))`` (exponentials clamped at 1e8), so that their
sigmoid is ``sigmoid(c) * sigmoid(o)`` approximately.

Training: per image, the anchors inside the image are matched by :class:`UniformAssigner`
against the decoded predictions; classification targets come from the assignment (focal loss
over positives and negatives), the box loss (GIoU on decoded boxes, ``reg_decoded_bbox``) is
taken over the assigner's matches, weighted by whether each match is kept. Both are averaged
over the positive count (at least 1 per image, mean over the ranks). Post-processing is
:class:`BaseDenseHead`'s sigmoid path.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.base_dense_head import conv_tower
from detforge.models.dense_heads.yolo_head import normal_convs_unit_norms
from detforge.models.layers.weight_init import bias_init_with_prob
from detforge.models.utils import anchor_inside_flags, multi_apply, unmap
from detforge.registry import MODELS, Cfg, plain_cfg
from detforge.structures import ImgMeta

__all__ = ["YOLOFHead", "objectness_normalised_logits"]

INF = 1e8
_BN: Cfg = MappingProxyType(dict(type="BN", requires_grad=True))


def objectness_normalised_logits(cls_score: torch.Tensor, objectness: torch.Tensor) -> torch.Tensor:
    """``c + o - log(1 + exp(c) + exp(o))`` with the exponentials clamped at 1e8 (v2).

    Args:
        cls_score: ``[N, A, C, H, W]`` class logits.
        objectness: ``[N, A, 1, H, W]`` objectness logits.

    Example:
        >>> objectness_normalised_logits(torch.tensor([0.]), torch.tensor([0.]))
        tensor([-1.0986])
    """
    return (
        cls_score
        + objectness
        - torch.log(
            1.0 + torch.clamp(cls_score.exp(), max=INF) + torch.clamp(objectness.exp(), max=INF)
        )
    )


@MODELS.register_module()
class YOLOFHead(AnchorHead):
    """YOLOF's head (module docstring).

    Takes :class:`AnchorHead`'s arguments through ``**kwargs`` plus:

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of the input and of every subnet conv.
        num_cls_convs: ConvModules of the classification subnet.
        num_reg_convs: ConvModules of the regression subnet.
        norm_cfg: Norm layer of the subnets.

    ``init_cfg`` is unused: :meth:`init_weights` is v2's (Normal(0.01) convs, unit norms, the
    0.01 prior in the ``cls_score`` bias).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        num_cls_convs: int = 2,
        num_reg_convs: int = 4,
        norm_cfg: Cfg | None = _BN,
        **kwargs: Any,
    ) -> None:
        self.num_cls_convs = num_cls_convs
        self.num_reg_convs = num_reg_convs
        self.norm_cfg = plain_cfg(norm_cfg)
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)

    def _init_layers(self) -> None:
        c = self.in_channels
        self.cls_subnet = conv_tower(c, c, self.num_cls_convs, norm_cfg=self.norm_cfg)
        self.bbox_subnet = conv_tower(c, c, self.num_reg_convs, norm_cfg=self.norm_cfg)
        self.cls_score = nn.Conv2d(c, self.num_base_priors * self.num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(c, self.num_base_priors * 4, 3, padding=1)
        self.object_pred = nn.Conv2d(c, self.num_base_priors, 3, padding=1)

    def init_weights(self) -> None:
        """v2's: Normal(0, 0.01) convs with zero bias, unit norm weights, then the 0.01 prior
        in the ``cls_score`` bias."""
        normal_convs_unit_norms(self)
        assert self.cls_score.bias is not None
        nn.init.constant_(self.cls_score.bias, bias_init_with_prob(0.01))

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(normalised cls_score [N, A*C, H, W], bbox_pred [N, A*4, H, W])``."""
        cls_score = self.cls_score(self.cls_subnet(x))
        n, _, h, w = cls_score.shape
        reg_feat = self.bbox_subnet(x)
        objectness = self.object_pred(reg_feat).view(n, -1, 1, h, w)
        scores = objectness_normalised_logits(
            cls_score.view(n, -1, self.num_classes, h, w), objectness
        )
        return scores.view(n, -1, h, w), self.bbox_pred(reg_feat)

    def loss(  # type: ignore[override]  # one tensor per loss: a single level (v2)
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls`` and ``loss_bbox`` of the single level (see the module docstring).

        Raises:
            ValueError: more than one level.
            RuntimeError: an image has no anchor inside it.
        """
        if len(cls_scores) != 1 or self.prior_generator.num_levels != 1:
            raise InvalidArgumentError(
                f"YOLOFHead: one feature level expected, got {len(cls_scores)}"
            )
        anchor_list, valid_list = self.get_anchors(
            self._featmap_sizes(cls_scores), img_metas, device=cls_scores[0].device
        )
        num = len(img_metas)
        none: list[torch.Tensor | None] = [None] * num
        ignores = list(gt_bboxes_ignore) if gt_bboxes_ignore else none
        labels_in = list(gt_labels) if gt_labels else none
        preds = bbox_preds[0].permute(0, 2, 3, 1).reshape(num, -1, 4)
        labels, label_weights, num_pos, box_weights, pred_boxes, target_boxes = multi_apply(
            self._targets_single,
            list(preds.unbind(0)),
            [anchors[0] for anchors in anchor_list],
            [flags[0] for flags in valid_list],
            gt_bboxes,
            ignores,
            labels_in,
            img_metas,
        )
        avg_factor = self._num_pos_avg(sum(num_pos), cls_scores[0].device)
        cls_score = cls_scores[0].permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
        loss_cls = self.loss_cls(
            cls_score,
            torch.stack(labels).reshape(-1),
            torch.stack(label_weights).reshape(-1),
            avg_factor=avg_factor,
        )
        pred_boxes_all = torch.cat(pred_boxes)
        if pred_boxes_all.shape[0] == 0:
            loss_bbox = pred_boxes_all.sum() * 0
        else:
            loss_bbox = self.loss_bbox(
                pred_boxes_all,
                torch.cat(target_boxes),
                torch.cat(box_weights).float(),
                avg_factor=avg_factor,
            )
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)

    def _targets_single(
        self,
        bbox_pred: torch.Tensor,
        flat_anchors: torch.Tensor,
        valid_flags: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None,
        gt_labels: torch.Tensor | None,
        img_meta: ImgMeta,
    ) -> tuple[Any, ...]:
        """One image's labels and label weights over all anchors, its positive count (at least
        1), and the match weights, predicted and target boxes of the box loss."""
        assert self.train_cfg is not None
        inside = anchor_inside_flags(
            flat_anchors, valid_flags, img_meta["img_shape"][:2], self.train_cfg["allowed_border"]
        )
        if not inside.any():
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        anchors = flat_anchors[inside]
        decoded = self.bbox_coder.decode(anchors, bbox_pred[inside])
        result = self.assigner.assign(
            decoded, anchors, gt_bboxes, gt_bboxes_ignore, None if self.sampling else gt_labels
        )
        sampling = self.sampler.sample(result, anchors, gt_bboxes)
        labels = anchors.new_full((len(anchors),), self.num_classes, dtype=torch.long)
        weights = anchors.new_zeros(len(anchors), dtype=torch.float)
        pos, neg = sampling.pos_inds, sampling.neg_inds
        if len(pos) > 0:
            labels[pos] = 0 if gt_labels is None else gt_labels[sampling.pos_assigned_gt_inds]
            pos_weight = self.train_cfg["pos_weight"]
            weights[pos] = 1.0 if pos_weight <= 0 else pos_weight
        if len(neg) > 0:
            weights[neg] = 1.0
        total = len(flat_anchors)
        return (
            unmap(labels, total, inside, fill=self.num_classes),
            unmap(weights, total, inside),
            max(len(pos), 1),
            result.get_extra_property("pos_idx"),
            result.get_extra_property("pos_predicted_boxes"),
            result.get_extra_property("target_boxes"),
        )
