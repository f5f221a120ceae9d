"""``FSAFHead``: the anchor-free branch of Feature Selective Anchor-Free modules (Zhu et al.
2019), MMDetection v2.28 numerics.

The layers are :class:`RetinaHead`'s with one prior (a square "anchor" standing for the feature
cell) per location; the box branch ends in a ReLU and predicts TBLR distances
(``TBLRBBoxCoder``). Training: :class:`CenterRegionAssigner` gives each ground truth the cells of
its centre region on *every* level, with per-(cell, class) weights that ignore the shadow region.
The element-wise losses (the config's ``reduction='none'`` focal and IoU losses, boxes clamped to
at least 1e-4 before decoding) are summed per ground truth and level; each ground truth keeps
only the level where the mean of its cells' losses is lowest (a level without its cells counts
as 1e6): elsewhere its cells' box loss and the score loss of their class are zeroed and they stop
being positives. Both losses are summed per level and divided by the number of positives left
(by the negatives when there is none). ``num_pos`` (per image) and ``pos_recall`` (top-1
accuracy of the positives' scores in percent, above ``score_threshold``) are logged too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.retina_head import RetinaHead
from detforge.models.losses.accuracy import accuracy
from detforge.models.utils import anchor_inside_flags, multi_apply
from detforge.registry import MODELS
from detforge.structures import ImgMeta

__all__ = ["FSAFHead", "best_level_per_gt", "level_losses_per_gt"]

_NO_CELL_LOSS = 1e6  # the loss of a ground truth on a level without any of its cells


def level_losses_per_gt(
    loss_cls: torch.Tensor, loss_bbox: torch.Tensor, gt_inds: torch.Tensor, num_gts: int
) -> torch.Tensor:
    """``Tensor[num_gts]``: per ground truth the mean over its cells of the summed class and box
    losses on one level (``1e6`` without cells).

    Args:
        loss_cls: ``Tensor[N, C]`` (or ``[N]``) element-wise score loss of the level's cells.
        loss_bbox: ``Tensor[N]`` (or ``[N, 4]``) box loss.
        gt_inds: ``Tensor[N]`` the batch-wide ground-truth index of each cell, -1 for none.
        num_gts: Ground truths in the batch.

    Example:
        >>> level_losses_per_gt(torch.ones(3, 2), torch.tensor([1., 2., 3.]),
        ...                     torch.tensor([0, 0, -1]), 2)
        tensor([3.5000e+00, 1.0000e+06])
    """
    loss = (loss_cls.sum(-1) if loss_cls.dim() == 2 else loss_cls) + (
        loss_bbox.sum(-1) if loss_bbox.dim() == 2 else loss_bbox
    )
    out = loss.new_full((num_gts,), _NO_CELL_LOSS)
    for gt in range(num_gts):
        match = gt_inds == gt
        if match.any():
            out[gt] = loss[match].mean()
    return out


def best_level_per_gt(level_losses: Sequence[torch.Tensor], num_gts: int) -> torch.Tensor:
    """``Tensor[num_gts]``: the level of each ground truth's lowest loss."""
    stacked = torch.stack(list(level_losses), dim=0)
    if stacked.numel() == 0:
        return stacked.new_empty((num_gts,), dtype=torch.long)
    return stacked.min(dim=0).indices


@MODELS.register_module()
class FSAFHead(RetinaHead):
    """FSAF's anchor-free head (see the module docstring).

    Takes :class:`RetinaHead`'s arguments (default ``init_cfg``: Normal(std=0.01) for every
    ``Conv2d``, the 0.01 prior as the score bias and 0.25 as the box bias, so that the first
    boxes are not empty) plus:

    Args:
        score_threshold: Scores at or below it count as misses in ``pos_recall``.
    """

    #: label weights per (cell, class): the assigner's shadowed pairs are ignored
    per_class_label_weights = True

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        score_threshold: float | None = None,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        if init_cfg is None:
            init_cfg = dict(
                type="Normal",
                layer="Conv2d",
                std=0.01,
                override=[
                    dict(type="Normal", name="retina_cls", std=0.01, bias_prob=0.01),
                    dict(type="Normal", name="retina_reg", std=0.01, bias=0.25),
                ],
            )
        super().__init__(
            num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg, **kwargs
        )
        self.score_threshold = score_threshold

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cls_score, bbox_pred = super().forward_single(x)
        return cls_score, self.relu(bbox_pred)  # TBLR distances are not negative

    def _gt_inds_per_level(
        self,
        cls_scores: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> list[torch.Tensor]:
        """Per level ``Tensor[B * n_l]``: the batch-wide index of each cell's ground truth (-1
        for none), the cells in the targets' order (image, then position)."""
        if self.train_cfg is None:
            raise InvalidArgumentError("FSAFHead needs a train_cfg for its targets")
        featmap_sizes = self._featmap_sizes(cls_scores)
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, img_metas, device=cls_scores[0].device
        )
        num_level = [a.size(0) for a in anchor_list[0]]
        per_image, offset = [], 0
        for anchors, flags, sampling, gts, meta in zip(
            anchor_list, valid_flag_list, sampling_results, gt_bboxes, img_metas, strict=True
        ):
            flat = torch.cat(list(anchors))
            inside = anchor_inside_flags(
                flat,
                torch.cat(list(flags)),
                meta["img_shape"][:2],
                self.train_cfg["allowed_border"],
            )
            inds = flat.new_full((flat.size(0),), -1, dtype=torch.long)
            inside_idx = inside.nonzero().view(-1)
            inds[inside_idx[sampling.pos_inds]] = sampling.pos_assigned_gt_inds + offset
            offset += len(gts)
            per_image.append(torch.split(inds, num_level))
        return [torch.cat(level) for level in zip(*per_image, strict=True)]

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """``loss_cls`` and ``loss_bbox`` per level, ``num_pos`` and ``pos_recall`` (see the
        module docstring).

        Raises:
            ValueError: ``gt_labels`` is missing.
        """
        if gt_labels is None:
            raise InvalidArgumentError("FSAFHead needs gt_labels")
        bbox_preds = [p.clamp(min=1e-4) for p in bbox_preds]
        t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
        num_total_samples = t.num_total_pos + (t.num_total_neg if self.sampling else 0)
        losses_cls, losses_bbox = multi_apply(
            self.loss_single,
            cls_scores,
            bbox_preds,
            t.anchors,
            t.labels,
            t.label_weights,
            t.bbox_targets,
            t.bbox_weights,
            num_total_samples=num_total_samples,
        )
        gt_inds = self._gt_inds_per_level(cls_scores, t.sampling_results, gt_bboxes, img_metas)
        labels = [level.flatten() for level in t.labels]
        num_gts = sum(len(g) for g in gt_labels)
        with torch.no_grad():
            best = best_level_per_gt(
                [
                    level_losses_per_gt(c, b, g, num_gts)
                    for c, b, g in zip(losses_cls, losses_bbox, gt_inds, strict=True)
                ],
                num_gts,
            )
        sums_cls, sums_bbox, pos_flags = [], [], []
        for level, (loss_cls, loss_bbox, inds, level_labels) in enumerate(
            zip(losses_cls, losses_bbox, gt_inds, labels, strict=True)
        ):
            cls_weight = torch.ones_like(loss_cls)
            box_weight = torch.ones_like(loss_bbox)
            pos = inds >= 0
            dropped = pos.nonzero().view(-1)
            dropped = dropped[best[inds[pos]] != level]
            pos[dropped] = False
            box_weight[dropped] = 0
            cls_weight[dropped, level_labels[dropped]] = 0
            sums_cls.append((loss_cls * cls_weight).sum())
            sums_bbox.append((loss_bbox * box_weight).sum())
            pos_flags.append(pos)
        num_pos = torch.cat(pos_flags).sum().float()
        avg_factor = num_pos if num_pos > 0 else num_pos + float(t.num_total_neg)
        return dict(
            loss_cls=[x / avg_factor for x in sums_cls],
            loss_bbox=[x / avg_factor for x in sums_bbox],
            num_pos=num_pos / len(gt_bboxes),
            pos_recall=self.calculate_pos_recall(cls_scores, labels, pos_flags),
        )

    def calculate_pos_recall(
        self,
        cls_scores: Sequence[torch.Tensor],
        labels_list: Sequence[torch.Tensor],
        pos_inds: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """Top-1 accuracy (percent) of the positives' scores, misses at or below
        ``score_threshold``."""
        with torch.no_grad():
            scores = torch.cat(
                [
                    s.permute(0, 2, 3, 1).reshape(-1, self.num_classes)[pos]
                    for s, pos in zip(cls_scores, pos_inds, strict=True)
                ]
            )
            labels = torch.cat(
                [lab.reshape(-1)[pos] for lab, pos in zip(labels_list, pos_inds, strict=True)]
            )
            scores = scores.sigmoid() if self.use_sigmoid_cls else scores.softmax(dim=1)
            return accuracy(scores, labels, thresh=self.score_threshold)
