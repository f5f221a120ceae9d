"""``ATSSAssigner`` against a slow per-ground-truth reference, plus edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.task_modules.assigners import ATSSAssigner
from detforge.registry import TASK_UTILS, build_module
from detforge.structures.bbox import bbox_overlaps


def _reference(priors: torch.Tensor, levels: list[int], gts: torch.Tensor, topk: int) -> list[int]:
    """ATSS written out loop by loop, in float64 (paper, Algorithm 1)."""
    priors = priors.double()
    gts = gts.double()
    ious = bbox_overlaps(priors, gts)
    centers = (priors[:, :2] + priors[:, 2:]) / 2
    best: list[tuple[float, int]] = [(-math.inf, 0)] * len(priors)
    for g, gt in enumerate(gts):
        gc = (gt[:2] + gt[2:]) / 2
        candidates: list[int] = []
        start = 0
        for n in levels:
            dists = [
                (float(((centers[i] - gc) ** 2).sum().sqrt()), i) for i in range(start, start + n)
            ]
            candidates += [i for _, i in sorted(dists)[: min(topk, n)]]
            start += n
        vals = [float(ious[i, g]) for i in candidates]
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
        for i, v in zip(candidates, vals, strict=True):
            cx, cy = centers[i]
            inside = min(cx - gt[0], cy - gt[1], gt[2] - cx, gt[3] - cy) > 0.01
            if v >= mean + std and inside and v > best[i][0]:
                best[i] = (v, g + 1)
    return [g for _, g in best]


def _random_case(seed: int) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    priors, levels = [], []
    for stride in (8, 16, 32):
        n = 64 // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        c = torch.stack([xs.flatten(), ys.flatten()], 1).float() * stride
        half = stride * 2
        priors.append(torch.cat([c - half, c + half], 1))
        levels.append(n * n)
    xy = torch.rand(5, 2, generator=gen) * 48
    wh = torch.rand(5, 2, generator=gen) * 40 + 6
    return torch.cat(priors), levels, torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("seed", range(6))
def test_matches_slow_reference(seed: int) -> None:
    priors, levels, gts = _random_case(seed)
    assigner = build_module(dict(type="ATSSAssigner", topk=9), TASK_UTILS)
    labels = torch.arange(len(gts)) + 10
    result = assigner.assign(priors, levels, gts, gt_labels=labels)
    expected = _reference(priors, levels, gts, topk=9)
    assert result.gt_inds.tolist() == expected
    assert any(expected)  # the case has positives
    pos = result.gt_inds > 0
    assert (result.labels[pos] == labels[result.gt_inds[pos] - 1]).all()
    assert (result.labels[~pos] == -1).all()
    torch.testing.assert_close(
        result.max_overlaps[pos], bbox_overlaps(priors, gts)[pos, result.gt_inds[pos] - 1]
    )


def test_empty_ground_truth_is_all_negative() -> None:
    priors, levels, _ = _random_case(0)
    result = ATSSAssigner(topk=9).assign(
        priors, levels, torch.zeros(0, 4), gt_labels=torch.zeros(0, dtype=torch.long)
    )
    assert result.num_gts == 0
    assert (result.gt_inds == 0).all() and (result.labels == -1).all()
    assert (result.max_overlaps == 0).all()


def test_no_priors() -> None:
    result = ATSSAssigner(topk=3).assign(torch.zeros(0, 4), [0], torch.tensor([[0.0, 0, 5, 5]]))
    assert result.gt_inds.numel() == 0 and result.labels is None


def test_ignored_priors_get_minus_one_and_are_no_candidates() -> None:
    priors, levels, gts = _random_case(1)
    ignore = torch.tensor([[0.0, 0.0, 64.0, 32.0]])
    result = ATSSAssigner(topk=9, ignore_iof_thr=0.5).assign(priors, levels, gts, ignore)
    iof = bbox_overlaps(priors, ignore, mode="iof")[:, 0]
    ignored = iof > 0.5
    assert ignored.any()
    # ignored priors are pushed out of the candidate sets, so they stay -1
    assert (result.gt_inds[ignored] == -1).all()
    disabled = ATSSAssigner(topk=9).assign(priors, levels, gts, ignore)
    assert (disabled.gt_inds >= 0).all()


def test_cost_based_mode_needs_predictions() -> None:
    priors, levels, gts = _random_case(2)
    labels = torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match="cls_scores, bbox_preds"):
        ATSSAssigner(topk=9, alpha=0.8).assign(priors, levels, gts, gt_labels=labels)
    # alpha=1 with the priors as predictions is plain ATSS
    scores = torch.zeros(len(priors), 3)
    cost = ATSSAssigner(topk=9, alpha=1.0).assign(
        priors, levels, gts, gt_labels=labels, cls_scores=scores, bbox_preds=priors
    )
    plain = ATSSAssigner(topk=9).assign(priors, levels, gts, gt_labels=labels)
    assert cost.gt_inds.tolist() == plain.gt_inds.tolist()


def test_bad_level_counts() -> None:
    with pytest.raises(ValueError, match="do not add up"):
        ATSSAssigner(topk=3).assign(torch.zeros(4, 4), [3], torch.tensor([[0.0, 0, 5, 5]]))
    with pytest.raises(ValueError, match="topk"):
        ATSSAssigner(topk=0)
