"""PAA's probabilistic anchor assignment and score voting (Kim & Lee 2020), MMDetection v2.28
numerics, as pure functions used by :class:`~detforge.models.dense_heads.PAAHead`.

Assignment (training). A first max-IoU assignment (IoU > 0.1) gives each ground truth its
candidate anchors. Each candidate's score is its focal classification loss (summed over the
classes) plus its box loss, both unnormalised. Per ground truth, the ``topk`` lowest-scoring
candidates of every level are pooled, sorted by loss, and a two-component 1-D Gaussian mixture is
fitted to their losses with scikit-learn (``GaussianMixture(2, weights_init=[0.5, 0.5],
means_init=[min, max], precisions_init=1, covariance_type)``, float32 as the losses are;
scikit-learn's EM is what v2 used, so the same losses give the same split). The candidates
that the low-loss component claims, in loss order up to the one the mixture scores most likely,
stay positive; the others become background (label ``num_classes``, box weight 0, classification
weight unchanged). A ground truth with fewer than two candidates keeps none.

Score voting (test). Each box kept by NMS is replaced by the average of every candidate box of
its class that scores above ``score_thr`` and overlaps it (IoU > 0.01), weighted by
``exp(-(1 - IoU)^2 / 0.025) * score``; its score stays. The output is grouped by class.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from detforge.errors import MissingDependencyError
from detforge.structures.bbox import bbox_overlaps

__all__ = ["COVARIANCE_TYPES", "gmm_separation", "levels_to_images", "paa_reassign", "score_voting"]

#: the ``covariance_type`` values of :class:`sklearn.mixture.GaussianMixture`
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: v2's variance of the voting kernel ``exp(-(1 - IoU)^2 / sigma)``
_VOTING_SIGMA = 0.025


def levels_to_images(mlvl_tensor: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per-level maps ``[B, C, H_l, W_l]`` → per image ``[sum_l H_l*W_l, C]`` (level order).

    Example:
        >>> maps = [torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 2, 2)]
        >>> [tuple(t.shape) for t in levels_to_images(maps)]
        [(20, 3), (20, 3)]
    """
    batch = mlvl_tensor[0].size(0)
    channels = mlvl_tensor[0].size(1)
    flat = [t.permute(0, 2, 3, 1).reshape(batch, -1, channels) for t in mlvl_tensor]
    return list(torch.cat(flat, 1).unbind(0))


def _sklearn_mixture() -> Any:
    try:
        return importlib.import_module("sklearn.mixture")
    except ImportError:
        raise MissingDependencyError(
            "PAAHead's anchor assignment fits a Gaussian mixture with scikit-learn, which is not "
            "installed: pip install scikit-learn (or pip install 'detforge[paa]')"
        ) from None


def _precisions_init(covariance_type: str) -> np.ndarray:
    """Unit precisions in the shape ``GaussianMixture`` wants for ``covariance_type``."""
    full = np.array([1.0, 1.0]).reshape(2, 1, 1)
    shapes = {"full": full, "diag": full.reshape(2, 1), "spherical": full.reshape(2)}
    return shapes.get(covariance_type, np.array([[1.0]]))  # tied


def gmm_separation(
    losses: torch.Tensor, candidates: torch.Tensor, covariance_type: str = "diag"
) -> torch.Tensor:
    """The positives among one ground truth's candidates (see the module docstring).

    Args:
        losses: ``Tensor[n]`` (n >= 2) the candidates' losses, sorted ascending.
        candidates: ``Tensor[n]`` the candidates' anchor indices in the same order.
        covariance_type: ``GaussianMixture``'s covariance type.

    Returns:
        ``Tensor[k]`` the positive anchor indices (a prefix of the low-loss component's
        candidates in loss order; empty when that component claims none).

    Raises:
        MissingDependencyError: scikit-learn is not installed.
    """
    mixture = _sklearn_mixture()
    values = losses.view(-1, 1).cpu().numpy()
    gmm = mixture.GaussianMixture(
        2,
        weights_init=np.array([0.5, 0.5]),
        means_init=np.array([values.min(), values.max()]).reshape(2, 1),
        precisions_init=_precisions_init(covariance_type),
        covariance_type=covariance_type,
    )
    gmm.fit(values)
    component = torch.from_numpy(gmm.predict(values)).to(candidates.device)
    scores = torch.from_numpy(gmm.score_samples(values)).to(candidates.device)
    # v2's scheme (c) of the paper's Fig. 3: the low-loss component's candidates up to the one
    # with the highest likelihood; nothing is ignored
    foreground = component == 0
    if not foreground.any():
        return candidates.new_zeros(0)
    last = int(scores[foreground].argmax())
    return candidates[foreground][: last + 1]


def paa_reassign(
    pos_losses: torch.Tensor,
    pos_inds: torch.Tensor,
    pos_gt_inds: torch.Tensor,
    num_level_anchors: Sequence[int],
    topk: int,
    covariance_type: str = "diag",
) -> torch.Tensor:
    """The anchors that stay positive after PAA's re-assignment of one image.

    Args:
        pos_losses: ``Tensor[P]`` each first-stage positive's classification + box loss.
        pos_inds: ``Tensor[P]`` their anchor indices (ascending, over all levels).
        pos_gt_inds: ``Tensor[P]`` their ground-truth indices.
        num_level_anchors: Anchors per level (to find each candidate's level).
        topk: Lowest-loss candidates per level and ground truth that enter the mixture.
        covariance_type: ``GaussianMixture``'s covariance type.

    Returns:
        ``Tensor[Q]`` int64 anchor indices, a subset of ``pos_inds``.

    Example:
        >>> paa_reassign(torch.tensor([0.5]), torch.tensor([3]), torch.tensor([0]), [8], 9)
        tensor([], dtype=torch.int64)
    """
    kept = [pos_inds.new_zeros(0)]
    if len(pos_inds) == 0:
        return kept[0]
    bounds = np.cumsum([0, *num_level_anchors])
    level_masks = [
        (pos_inds >= int(bounds[i])) & (pos_inds < int(bounds[i + 1]))
        for i in range(len(num_level_anchors))
    ]
    for gt in range(int(pos_gt_inds.max()) + 1):
        gt_mask = pos_gt_inds == gt
        cand_inds, cand_losses = [], []
        for level_mask in level_masks:
            mask = level_mask & gt_mask
            value, order = pos_losses[mask].topk(min(int(mask.sum()), topk), largest=False)
            cand_inds.append(pos_inds[mask][order])
            cand_losses.append(value)
        candidates = torch.cat(cand_inds)
        if len(candidates) < 2:  # a mixture of two needs two samples
            continue
        losses, order = torch.cat(cand_losses).sort()
        kept.append(gmm_separation(losses, candidates[order], covariance_type))
    return torch.cat(kept)


def score_voting(
    det_bboxes: torch.Tensor,
    det_labels: torch.Tensor,
    mlvl_bboxes: torch.Tensor,
    mlvl_nms_scores: torch.Tensor,
    score_thr: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score voting over the NMS survivors (see the module docstring).

    Args:
        det_bboxes: ``Tensor[k, 5]`` NMS output (``x1, y1, x2, y2, score``).
        det_labels: ``Tensor[k]`` their classes.
        mlvl_bboxes: ``Tensor[n, 4]`` every candidate box before NMS.
        mlvl_nms_scores: ``Tensor[n, C + 1]`` their per-class scores (background column last).
        score_thr: Candidates scoring at most this do not vote.

    Returns:
        ``(boxes [k, 5], labels [k])`` grouped by class (ascending), each class in NMS order.

    Example:
        >>> dets = torch.tensor([[0., 0., 10., 10., 0.9]])
        >>> boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 12.]])
        >>> scores = torch.tensor([[0.9, 0.0], [0.9, 0.0]])
        >>> voted, labels = score_voting(dets, torch.tensor([0]), boxes, scores, 0.05)
        >>> [round(v, 3) for v in voted[0].tolist()], labels.tolist()
        ([0.0, 0.0, 10.0, 10.495, 0.9], [0])
    """
    candidate_mask = mlvl_nms_scores > score_thr
    nonzero = candidate_mask.nonzero(as_tuple=False)
    candidate_labels = nonzero[:, 1]
    candidate_bboxes = mlvl_bboxes[nonzero[:, 0]]
    candidate_scores = mlvl_nms_scores[candidate_mask]
    voted_boxes, voted_labels = [], []
    for cls in range(mlvl_nms_scores.size(1)):
        cls_mask = candidate_labels == cls
        if not cls_mask.any():
            continue
        cls_scores = candidate_scores[cls_mask]
        cls_bboxes = candidate_bboxes[cls_mask]
        cls_dets = det_bboxes[det_labels == cls].view(-1, det_bboxes.size(-1))
        ious = bbox_overlaps(cls_dets[:, :4], cls_bboxes)
        for det, det_ious in zip(cls_dets, ious, strict=True):
            overlap = det_ious > 0.01
            weights = torch.exp(-((1 - det_ious[overlap]) ** 2) / _VOTING_SIGMA)
            weights = (weights * cls_scores[overlap])[:, None]
            box = torch.sum(weights * cls_bboxes[overlap], dim=0) / torch.sum(weights, dim=0)
            voted_boxes.append(torch.cat((box, det[-1:])))
            voted_labels.append(cls)
    return torch.stack(voted_boxes), det_labels.new_tensor(voted_labels)
