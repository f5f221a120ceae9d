"""Libra R-CNN's samplers (Pang et al., CVPR 2019) and ``CombinedSampler``, as in v2.

- :class:`CombinedSampler` takes its positives from one sampler and its negatives from another
  (both built with its ``num``, ``pos_fraction``, ``neg_pos_ub`` and ``add_gt_as_proposals``).
- :class:`InstanceBalancedPosSampler`: with more positives than wanted, each ground truth
  contributes at most ``round(num_expected / num_gts) + 1`` random positives; a shortfall is
  filled with random other positives and a surplus cut at random. (v2 builds the "other
  positives" as a set of 0-d tensors, which never equal each other, so already taken ones can
  come back in an order that depends on memory addresses; here they are the positives not
  taken yet, by value.)
- :class:`IoUBalancedNegSampler`: with more negatives than wanted, the negatives with IoU
  ``>= floor_thr`` are sampled evenly over ``num_bins`` IoU intervals between ``floor_thr``
  and the largest IoU (``1 - floor_fraction`` of them), the ones below ``floor_thr`` at random
  for the rest, and a shortfall is filled at random. ``floor_thr=-1`` samples every negative
  by IoU on the first call and then, as v2 (which sets ``floor_thr`` to 0 there), treats the
  IoU-0 negatives as the floor set on later calls.

The random draws are :meth:`RandomSampler.random_choice` (``torch.randperm``) over index lists
in v2's order (Python sets of ints, as v2 builds them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.samplers.base_sampler import BaseSampler
from detforge.models.task_modules.samplers.random_sampler import RandomSampler
from detforge.registry import TASK_UTILS, Cfg, build_module

__all__ = ["CombinedSampler", "InstanceBalancedPosSampler", "IoUBalancedNegSampler"]


def _nonzero(mask: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(mask, as_tuple=False).flatten()


@TASK_UTILS.register_module()
class CombinedSampler(BaseSampler):
    """Positives from ``pos_sampler``, negatives from ``neg_sampler`` (configs without the
    shared arguments, which this sampler passes on).

    Args:
        pos_sampler: Sampler config (e.g. ``InstanceBalancedPosSampler``).
        neg_sampler: Sampler config (e.g. ``IoUBalancedNegSampler``).
        num: Total number of samples.
        pos_fraction: Largest fraction of positives.
        neg_pos_ub: At most this many negatives per positive (no bound when negative).
        add_gt_as_proposals: Prepend the ground truths as extra positive proposals.
    """

    def __init__(
        self,
        pos_sampler: Cfg,
        neg_sampler: Cfg,
        num: int,
        pos_fraction: float,
        neg_pos_ub: float = -1,
        add_gt_as_proposals: bool = True,
    ) -> None:
        super().__init__(num, pos_fraction, neg_pos_ub, add_gt_as_proposals)
        shared = dict(
            num=num,
            pos_fraction=pos_fraction,
            neg_pos_ub=neg_pos_ub,
            add_gt_as_proposals=add_gt_as_proposals,
        )
        self.pos_sampler: Any = build_module(pos_sampler, TASK_UTILS, shared)
        self.neg_sampler: Any = build_module(neg_sampler, TASK_UTILS, shared)

    def _sample_pos(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        inds: torch.Tensor = self.pos_sampler._sample_pos(
            assign_result, num_expected, bboxes, feats
        )
        return inds

    def _sample_neg(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        inds: torch.Tensor = self.neg_sampler._sample_neg(
            assign_result, num_expected, bboxes, feats
        )
        return inds


@TASK_UTILS.register_module()
class InstanceBalancedPosSampler(RandomSampler):
    """Positives spread evenly over the ground truths (module docstring); the arguments of
    :class:`RandomSampler`."""

    def _sample_pos(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        gt_inds = assign_result.gt_inds
        pos_inds = _nonzero(gt_inds > 0)
        if pos_inds.numel() <= num_expected:
            return pos_inds
        unique_gt_inds = gt_inds[pos_inds].unique()
        num_per_gt = int(round(num_expected / float(len(unique_gt_inds))) + 1)
        parts = []
        for i in unique_gt_inds:
            inds = _nonzero(gt_inds == i.item())
            if len(inds) > num_per_gt:
                inds = torch.as_tensor(self.random_choice(inds, num_per_gt))
            parts.append(inds)
        sampled = torch.cat(parts)
        if len(sampled) < num_expected:
            num_extra = num_expected - len(sampled)
            extra = np.array(list(set(pos_inds.tolist()) - set(sampled.tolist())), dtype=np.int64)
            if len(extra) > num_extra:
                extra = np.asarray(self.random_choice(extra, num_extra))
            sampled = torch.cat([sampled, torch.from_numpy(extra).to(gt_inds.device).long()])
        elif len(sampled) > num_expected:
            sampled = torch.as_tensor(self.random_choice(sampled, num_expected))
        return sampled


@TASK_UTILS.register_module()
class IoUBalancedNegSampler(RandomSampler):
    """Negatives spread evenly over IoU intervals (module docstring).

    Args:
        num: Total number of samples.
        pos_fraction: Largest fraction of positives.
        floor_thr: Negatives below this IoU are sampled at random (-1: none are).
        floor_fraction: Fraction of the negatives taken from below ``floor_thr``.
        num_bins: IoU intervals (1: the IoU-sampled ones are drawn at random too).
        **kwargs: ``neg_pos_ub``, ``add_gt_as_proposals``.

    Raises:
        ValueError: ``floor_thr``, ``floor_fraction`` or ``num_bins`` is out of range.
    """

    def __init__(
        self,
        num: int,
        pos_fraction: float,
        floor_thr: float = -1,
        floor_fraction: float = 0,
        num_bins: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(num, pos_fraction, **kwargs)
        if not (floor_thr >= 0 or floor_thr == -1):
            raise ValueError(
                f"IoUBalancedNegSampler: floor_thr must be >= 0 or -1, got {floor_thr}"
            )
        if not 0 <= floor_fraction <= 1:
            raise ValueError(
                f"IoUBalancedNegSampler: floor_fraction must be in [0, 1], got {floor_fraction}"
            )
        if num_bins < 1:
            raise ValueError(f"IoUBalancedNegSampler: num_bins must be >= 1, got {num_bins}")
        self.floor_thr = floor_thr
        self.floor_fraction = floor_fraction
        self.num_bins = num_bins

    def _choice(self, gallery: Sequence[int] | np.ndarray, num: int) -> np.ndarray:
        return np.asarray(self.random_choice(np.asarray(list(gallery), dtype=np.int64), num))

    def sample_via_interval(
        self, max_overlaps: np.ndarray, full_set: set[int], num_expected: int
    ) -> np.ndarray:
        """Up to ``num_expected / num_bins`` random indices of ``full_set`` per IoU interval
        of ``[floor_thr, max IoU)``, then random others of ``full_set`` up to
        ``num_expected``."""
        max_iou = max_overlaps.max()
        interval = (max_iou - self.floor_thr) / self.num_bins
        per_bin = int(num_expected / self.num_bins)
        parts = []
        for i in range(self.num_bins):
            start = self.floor_thr + i * interval
            end = self.floor_thr + (i + 1) * interval
            in_bin = set(np.where((max_overlaps >= start) & (max_overlaps < end))[0].tolist())
            inds = list(in_bin & full_set)
            if len(inds) > per_bin:
                parts.append(self._choice(inds, per_bin))
            else:
                parts.append(np.array(inds, dtype=np.int64))
        sampled = np.concatenate(parts)
        if len(sampled) < num_expected:
            num_extra = num_expected - len(sampled)
            extra = np.array(list(full_set - set(sampled.tolist())), dtype=np.int64)
            if len(extra) > num_extra:
                extra = self._choice(extra, num_extra)
            sampled = np.concatenate([sampled, extra])
        return sampled

    def _sample_neg(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        neg_inds = _nonzero(assign_result.gt_inds == 0)
        if len(neg_inds) <= num_expected:
            return neg_inds
        max_overlaps = assign_result.max_overlaps.cpu().numpy()
        neg_set = set(neg_inds.cpu().tolist())
        if self.floor_thr > 0:
            floor_set = set(
                np.where((max_overlaps >= 0) & (max_overlaps < self.floor_thr))[0].tolist()
            )
            iou_set = set(np.where(max_overlaps >= self.floor_thr)[0].tolist())
        elif self.floor_thr == 0:
            floor_set = set(np.where(max_overlaps == 0)[0].tolist())
            iou_set = set(np.where(max_overlaps > self.floor_thr)[0].tolist())
        else:
            floor_set = set()
            iou_set = set(np.where(max_overlaps > self.floor_thr)[0].tolist())
            self.floor_thr = 0  # v2: the intervals start at 0, and later calls see 0
        floor_neg = list(floor_set & neg_set)
        iou_neg = list(iou_set & neg_set)
        num_iou = int(num_expected * (1 - self.floor_fraction))
        if len(iou_neg) > num_iou:
            if self.num_bins >= 2:
                iou_sampled = self.sample_via_interval(max_overlaps, set(iou_neg), num_iou)
            else:
                iou_sampled = self._choice(iou_neg, num_iou)
        else:
            iou_sampled = np.array(iou_neg, dtype=np.int64)
        num_floor = num_expected - len(iou_sampled)
        if len(floor_neg) > num_floor:
            floor_sampled = self._choice(floor_neg, num_floor)
        else:
            floor_sampled = np.array(floor_neg, dtype=np.int64)
        sampled = np.concatenate((floor_sampled, iou_sampled))
        if len(sampled) < num_expected:
            num_extra = num_expected - len(sampled)
            extra = np.array(list(neg_set - set(sampled.tolist())), dtype=np.int64)
            if len(extra) > num_extra:
                extra = self._choice(extra, num_extra)
            sampled = np.concatenate((sampled, extra))
        return torch.from_numpy(sampled).long().to(assign_result.gt_inds.device)
