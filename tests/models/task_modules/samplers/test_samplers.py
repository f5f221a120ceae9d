"""RandomSampler, PseudoSampler and SamplingResult."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detforge.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from detforge.models.task_modules.samplers import PseudoSampler, RandomSampler, SamplingResult
from detforge.registry import TASK_UTILS, build_module

GTS = torch.tensor([[0.0, 0.0, 10.0, 9.0], [0.0, 10.0, 10.0, 19.0]])
LABELS = torch.tensor([2, 3])


def _priors(num: int = 40, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * 20
    return torch.cat([xy, xy + torch.rand(num, 2, generator=gen) * 10 + 2], dim=1)


def _assign(priors: torch.Tensor) -> AssignResult:
    return MaxIoUAssigner(0.5, 0.3).assign(priors, GTS, gt_labels=LABELS)


def test_take_everything_sampler_is_deterministic() -> None:
    priors = _priors()
    assign = _assign(priors)
    pos_before = torch.nonzero(assign.gt_inds > 0).squeeze(1)
    neg_before = torch.nonzero(assign.gt_inds == 0).squeeze(1)
    sampler = build_module(
        dict(type="RandomSampler", num=1000000, pos_fraction=0.5, neg_pos_ub=-1), TASK_UTILS
    )
    res = sampler.sample(assign, priors, GTS, LABELS)
    # the two ground truths are prepended and are positives themselves
    assert res.pos_inds.tolist() == [0, 1, *(pos_before + 2).tolist()]
    assert res.neg_inds.tolist() == (neg_before + 2).tolist()
    assert res.pos_is_gt.tolist() == [1, 1] + [0] * len(pos_before)
    torch.testing.assert_close(res.pos_bboxes[:2], GTS)
    assert res.pos_gt_labels is not None
    assert res.pos_gt_labels.tolist()[:2] == [2, 3]
    torch.testing.assert_close(res.pos_gt_bboxes, GTS[res.pos_assigned_gt_inds])
    assert res.bboxes.shape == (len(res.pos_inds) + len(res.neg_inds), 4)


def test_random_sampler_limits_and_seeding() -> None:
    priors = _priors(200, seed=1)
    sampler = RandomSampler(num=16, pos_fraction=0.25, add_gt_as_proposals=False)
    torch.manual_seed(0)
    first = sampler.sample(_assign(priors), priors, GTS, LABELS)
    torch.manual_seed(0)
    second = sampler.sample(_assign(priors), priors, GTS, LABELS)
    assert torch.equal(first.pos_inds, second.pos_inds)
    assert torch.equal(first.neg_inds, second.neg_inds)
    assert len(first.pos_inds) <= 4 and len(first.pos_inds) + len(first.neg_inds) == 16
    gt_inds = _assign(priors).gt_inds
    assert (gt_inds[first.pos_inds] > 0).all() and (gt_inds[first.neg_inds] == 0).all()
    assert len(first.neg_inds.unique()) == len(first.neg_inds)
    assert (first.pos_inds[1:] > first.pos_inds[:-1]).all()  # sorted, like v2's unique()


def test_neg_pos_upper_bound() -> None:
    priors = _priors(200, seed=2)
    sampler = RandomSampler(num=64, pos_fraction=0.5, neg_pos_ub=2, add_gt_as_proposals=False)
    res = sampler.sample(_assign(priors), priors, GTS, LABELS)
    assert len(res.neg_inds) <= 2 * max(1, len(res.pos_inds))


def test_add_gt_needs_labels_and_empty_gt() -> None:
    priors = _priors()
    sampler = RandomSampler(num=8, pos_fraction=0.5)
    with pytest.raises(ValueError, match="gt_labels"):
        sampler.sample(_assign(priors), priors, GTS)
    empty_gt = torch.zeros(0, 4)
    assign = MaxIoUAssigner(0.5, 0.3).assign(priors, empty_gt)
    res = sampler.sample(assign, priors, empty_gt)
    assert len(res.pos_inds) == 0 and len(res.neg_inds) == 8
    assert res.pos_gt_bboxes.shape == (0, 4)


def test_random_choice_keeps_container_kind() -> None:
    sampler = RandomSampler(num=4, pos_fraction=0.5)
    chosen = sampler.random_choice(np.arange(10), 3)
    assert isinstance(chosen, np.ndarray) and len(set(chosen.tolist())) == 3
    chosen_t = sampler.random_choice(torch.arange(10, 20), 5)
    assert isinstance(chosen_t, torch.Tensor) and ((chosen_t >= 10) & (chosen_t < 20)).all()
    with pytest.raises(ValueError, match="cannot draw"):
        sampler.random_choice([1, 2], 3)


def test_pseudo_sampler_takes_all_and_skips_ignored() -> None:
    priors = _priors()
    assign = _assign(priors)
    assign.gt_inds[5] = -1
    res = build_module(dict(type="PseudoSampler"), TASK_UTILS).sample(assign, priors, GTS)
    assert res.pos_inds.tolist() == torch.nonzero(assign.gt_inds > 0).squeeze(1).tolist()
    assert res.neg_inds.tolist() == torch.nonzero(assign.gt_inds == 0).squeeze(1).tolist()
    assert 5 not in res.pos_inds.tolist() + res.neg_inds.tolist()
    assert not res.pos_is_gt.any()
    assert isinstance(res, SamplingResult)


def test_sampling_result_to_and_repr() -> None:
    priors = _priors()
    res = PseudoSampler().sample(_assign(priors), priors, GTS)
    moved = res.to("cpu")
    assert moved is res and "num_gts=2" in repr(res)
    assert res.info["num_gts"] == 2


@pytest.mark.parametrize("seed", range(20))
def test_random_assign_and_sampling_results_as_v2(seed: int) -> None:
    """v2's ``AssignResult.random`` / ``SamplingResult.random`` (test helpers users call)."""
    assign = AssignResult.random(rng=seed)
    assert assign.gt_inds.shape == assign.max_overlaps.shape == (assign.num_preds,)
    assert assign.gt_inds.dtype == torch.int64
    assert bool((assign.gt_inds >= -1).all() and (assign.gt_inds <= assign.num_gts).all())
    assert bool((assign.max_overlaps[assign.gt_inds == 0] == 0).all())
    if assign.labels is not None:
        assert bool((assign.labels[assign.gt_inds <= 0] == -1).all())
    again = AssignResult.random(rng=seed)
    assert torch.equal(again.gt_inds, assign.gt_inds)
    res = SamplingResult.random(rng=seed, num_preds=12, num_gts=3)
    assert len(res.pos_inds) + len(res.neg_inds) <= 12
    assert res.pos_gt_bboxes.shape == (len(res.pos_inds), 4)
    assert bool((res.pos_assigned_gt_inds >= 0).all() and (res.pos_assigned_gt_inds < 3).all())
    assert torch.equal(SamplingResult.random(rng=seed, num_preds=12, num_gts=3).neg_inds,
                       res.neg_inds)  # fmt: skip
