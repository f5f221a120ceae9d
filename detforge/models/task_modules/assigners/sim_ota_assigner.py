"""``SimOTAAssigner``: YOLOX's simplified optimal-transport assignment (Ge et al. 2021),
MMDetection v2.28 numerics.

Per image, with priors given as centres and strides ``[N, 4]`` (``cx, cy, stride_w,
stride_h``):

1. A prior is a *candidate* when its centre lies strictly inside some ground-truth box, or
   strictly inside the square of half-side ``center_radius * stride`` around some ground
   truth's centre. Only candidates are ever positive.
2. For candidates × ground truths, the cost is
   ``cls_weight * sum_c BCE(sqrt(score), onehot) + iou_weight * -log(IoU + eps)``, plus ``1e5``
   where the prior is not *both* inside the box and inside its centre square. ``score`` is
   the predicted probability (class × objectness), ``BCE`` torch's (logs clamped at -100), IoU
   between the decoded prediction and the ground truth.
3. Dynamic k: each ground truth takes the ``k`` cheapest candidates, where ``k`` is the integer
   part of the sum of its ``candidate_topk`` largest IoUs (at least 1). A prior taken by
   several ground truths keeps only the cheapest.

Positives get ``gt_inds = k + 1``, the ground truth's label and, as ``max_overlaps``, the IoU of
their prediction with it; every other prior is negative (0) with ``max_overlaps = -1e5``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.registry import TASK_UTILS
from detforge.structures.bbox import bbox_overlaps

__all__ = ["SimOTAAssigner", "dynamic_k_matching", "sim_ota_candidates"]

_INF = 100000.0


def sim_ota_candidates(
    priors: torch.Tensor, gt_bboxes: torch.Tensor, center_radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate priors of step 1 and, for them, which ground truths hold them twice.

    Args:
        priors: ``Tensor[N, 4]`` as ``cx, cy, stride_w, stride_h``.
        gt_bboxes: ``Tensor[K, 4]`` ground truths ``x1, y1, x2, y2``.
        center_radius: Half-side of the centre square, in strides.

    Returns:
        ``(candidates Tensor[N] bool, in_box_and_center Tensor[M, K] bool)`` with ``M`` the
        number of candidates.

    Example:
        >>> priors = torch.tensor([[4., 4., 8., 8.], [12., 4., 8., 8.], [40., 4., 8., 8.]])
        >>> cand, both = sim_ota_candidates(priors, torch.tensor([[0., 0., 8., 8.]]), 2.5)
        >>> cand.tolist(), both.tolist()
        ([True, True, False], [[True], [False]])
    """
    x, y = priors[:, 0:1], priors[:, 1:2]  # [N, 1] against [K]
    in_box = (
        torch.stack(
            [x - gt_bboxes[:, 0], y - gt_bboxes[:, 1], gt_bboxes[:, 2] - x, gt_bboxes[:, 3] - y],
            dim=1,
        )
        .min(dim=1)
        .values
        > 0
    )
    cx = (gt_bboxes[:, 0] + gt_bboxes[:, 2]) / 2.0
    cy = (gt_bboxes[:, 1] + gt_bboxes[:, 3]) / 2.0
    rx = center_radius * priors[:, 2:3]
    ry = center_radius * priors[:, 3:4]
    in_center = (
        torch.stack([x - (cx - rx), y - (cy - ry), (cx + rx) - x, (cy + ry) - y], dim=1)
        .min(dim=1)
        .values
        > 0
    )
    candidates = in_box.any(dim=1) | in_center.any(dim=1)
    return candidates, in_box[candidates] & in_center[candidates]


def dynamic_k_matching(
    cost: torch.Tensor, ious: torch.Tensor, candidate_topk: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step 3: each ground truth takes its ``k`` cheapest candidates, conflicts go to the
    cheapest ground truth.

    Args:
        cost: ``Tensor[M, K]`` candidates × ground truths.
        ious: ``Tensor[M, K]`` IoU of each candidate's prediction with each ground truth.
        candidate_topk: How many of a ground truth's best IoUs sum to its ``k``.

    Returns:
        ``(positive Tensor[M] bool, matched gt Tensor[P] int64, matched IoU Tensor[P])`` for the
        ``P`` positive candidates, in candidate order.

    Example:
        >>> cost = torch.tensor([[1., 5.], [2., 1.], [3., 9.]])
        >>> ious = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.1, 0.0]])
        >>> pos, gt, iou = dynamic_k_matching(cost, ious, 10)
        >>> pos.tolist(), gt.tolist(), iou.tolist()
        ([True, True, False], [0, 1], [0.8999999761581421, 0.699999988079071])
    """
    matching = torch.zeros_like(cost, dtype=torch.uint8)
    topk_ious, _ = torch.topk(ious, min(candidate_topk, ious.size(0)), dim=0)
    dynamic_ks = torch.clamp(topk_ious.sum(0).int(), min=1)
    for gt_idx in range(cost.size(1)):
        _, pos_idx = torch.topk(cost[:, gt_idx], k=int(dynamic_ks[gt_idx]), largest=False)
        matching[:, gt_idx][pos_idx] = 1
    conflicts = matching.sum(1) > 1
    if conflicts.any():
        cheapest = cost[conflicts, :].argmin(dim=1)
        matching[conflicts, :] = 0
        matching[conflicts, cheapest] = 1
    positive = matching.sum(1) > 0
    matched_gt = matching[positive, :].argmax(1)
    matched_ious = (matching * ious).sum(1)[positive]
    return positive, matched_gt, matched_ious


@TASK_UTILS.register_module()
class SimOTAAssigner:
    """Assign priors to ground truths by SimOTA (``mmdet.core.bbox.SimOTAAssigner``, v2.28);
    see the module docstring.

    Args:
        center_radius: Half-side of the centre square around a ground truth, in strides.
        candidate_topk: Best IoUs summed into a ground truth's dynamic ``k``.
        iou_weight: Weight of the ``-log(IoU)`` cost.
        cls_weight: Weight of the classification cost.

    Example:
        >>> assigner = SimOTAAssigner()
        >>> priors = torch.tensor([[4., 4., 8., 8.], [12., 4., 8., 8.], [40., 4., 8., 8.]])
        >>> preds = torch.tensor([[0., 0., 8., 8.], [8., 0., 16., 8.], [36., 0., 44., 8.]])
        >>> scores = torch.tensor([[0.9, 0.1], [0.5, 0.1], [0.1, 0.1]])
        >>> result = assigner.assign(scores, priors, preds, torch.tensor([[0., 0., 8., 8.]]),
        ...                          torch.tensor([0]))
        >>> result.gt_inds.tolist(), result.labels.tolist()
        ([1, 0, 0], [0, -1, -1])
    """

    def __init__(
        self,
        center_radius: float = 2.5,
        candidate_topk: int = 10,
        iou_weight: float = 3.0,
        cls_weight: float = 1.0,
    ) -> None:
        if center_radius <= 0 or candidate_topk <= 0:
            raise ValueError(
                f"SimOTAAssigner: center_radius ({center_radius}) and candidate_topk "
                f"({candidate_topk}) must be positive"
            )
        self.center_radius = center_radius
        self.candidate_topk = candidate_topk
        self.iou_weight = iou_weight
        self.cls_weight = cls_weight

    @torch.no_grad()
    def assign(
        self,
        pred_scores: torch.Tensor,
        priors: torch.Tensor,
        decoded_bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        eps: float = 1e-7,
    ) -> AssignResult:
        """Assign ``gt_bboxes`` ``[K, 4]`` to ``N`` priors.

        Args:
            pred_scores: ``Tensor[N, C]`` probabilities (class × objectness).
            priors: ``Tensor[N, 4]`` as ``cx, cy, stride_w, stride_h``.
            decoded_bboxes: ``Tensor[N, 4]`` predicted boxes.
            gt_bboxes: Ground-truth boxes.
            gt_labels: ``Tensor[K]`` labels in ``[0, C)``.
            gt_bboxes_ignore: Not used (v2 ignores them too).
            eps: Added to the IoU inside the log.

        Returns:
            ``gt_inds`` (0 negative, ``k + 1`` positive for ground truth ``k``), ``labels``
            (-1 for negatives) and ``max_overlaps`` (the IoU of positives, ``-1e5`` elsewhere;
            all zeros when nothing can be assigned).
        """
        num_gt, num_bboxes = gt_bboxes.size(0), decoded_bboxes.size(0)
        gt_inds = decoded_bboxes.new_zeros((num_bboxes,), dtype=torch.long)
        labels = decoded_bboxes.new_full((num_bboxes,), -1, dtype=torch.long)
        candidates, in_box_and_center = sim_ota_candidates(priors, gt_bboxes, self.center_radius)
        num_valid = int(candidates.sum())
        if num_gt == 0 or num_bboxes == 0 or num_valid == 0:
            return AssignResult(num_gt, gt_inds, decoded_bboxes.new_zeros((num_bboxes,)), labels)
        ious = bbox_overlaps(decoded_bboxes[candidates], gt_bboxes)
        iou_cost = -torch.log(ious + eps)
        onehot = F.one_hot(gt_labels.to(torch.int64), pred_scores.shape[-1]).float()
        scores = pred_scores[candidates].unsqueeze(1).repeat(1, num_gt, 1)
        cls_cost = (
            F.binary_cross_entropy(
                scores.to(torch.float32).sqrt_(),
                onehot.unsqueeze(0).repeat(num_valid, 1, 1),
                reduction="none",
            )
            .sum(-1)
            .to(scores.dtype)
        )
        cost = cls_cost * self.cls_weight + iou_cost * self.iou_weight
        cost = cost + (~in_box_and_center) * _INF
        positive, matched_gt, matched_ious = dynamic_k_matching(cost, ious, self.candidate_topk)
        pos_inds = candidates.nonzero().squeeze(1)[positive]
        gt_inds[pos_inds] = matched_gt + 1
        labels[pos_inds] = gt_labels[matched_gt].long()
        max_overlaps = decoded_bboxes.new_full((num_bboxes,), -_INF, dtype=torch.float32)
        max_overlaps[pos_inds] = matched_ious
        return AssignResult(num_gt, gt_inds, max_overlaps, labels=labels)
