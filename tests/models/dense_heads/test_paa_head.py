"""PAA's assignment and voting functions, and the head's refusals (the numbers against
MMDetection are in tests/models/test_golden_paa_tood.py)."""

from __future__ import annotations

import sys

import pytest
import torch

from detforge.errors import DetforgeError, MissingDependencyError
from detforge.models.dense_heads import PAAHead
from detforge.models.dense_heads.paa_assign import (
    gmm_separation,
    levels_to_images,
    paa_reassign,
    score_voting,
)

_ANCHORS = dict(
    type="AnchorGenerator", ratios=[1.0], octave_base_scale=8, scales_per_octave=1, strides=[8]
)


def _head(**kwargs: object) -> PAAHead:
    return PAAHead(
        num_classes=2,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        norm_cfg=dict(type="GN", num_groups=4),
        anchor_generator=_ANCHORS,
        **kwargs,  # type: ignore[arg-type]
    )


def test_levels_to_images_keeps_level_then_row_major_order() -> None:
    level0 = torch.arange(2 * 1 * 2 * 2, dtype=torch.float).view(2, 1, 2, 2)
    level1 = torch.tensor([[[[100.0]]], [[[200.0]]]])
    images = levels_to_images([level0, level1])
    assert images[0].view(-1).tolist() == [0, 1, 2, 3, 100]
    assert images[1].view(-1).tolist() == [4, 5, 6, 7, 200]


def test_gmm_separation_keeps_the_low_loss_cluster() -> None:
    pytest.importorskip("sklearn")
    losses = torch.tensor([0.10, 0.12, 0.13, 2.0, 2.1, 2.2])
    candidates = torch.tensor([7, 3, 9, 1, 4, 8])
    # the low component claims the first three; v2 keeps them up to the most likely one (0.12,
    # nearest the component's mean 0.1167), so 0.13 is dropped too
    assert gmm_separation(losses, candidates).tolist() == [7, 3]


def test_paa_reassign_fits_each_ground_truth_over_its_per_level_topk() -> None:
    pytest.importorskip("sklearn")
    # gt 0: three candidates on level 0 and three on level 1, topk=2 per level keeps the two
    # cheapest of each (losses 0.1, 0.11 | 0.09, 2.0); gt 1 has a single candidate: a mixture
    # needs two, so it keeps none. The low component {0.09, 0.1, 0.11} keeps up to its most
    # likely member 0.1: anchors 12 and 0
    pos_inds = torch.tensor([0, 1, 2, 10, 11, 12, 5])
    pos_gt_inds = torch.tensor([0, 0, 0, 0, 0, 0, 1])
    losses = torch.tensor([0.1, 0.11, 3.0, 2.0, 2.1, 0.09, 0.5])
    kept = paa_reassign(losses, pos_inds, pos_gt_inds, [8, 8], topk=2)
    assert kept.tolist() == [12, 0]


def test_missing_scikit_learn_is_a_project_error_naming_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.mixture", None)
    with pytest.raises(MissingDependencyError, match="pip install scikit-learn") as info:
        gmm_separation(torch.tensor([0.1, 2.0]), torch.tensor([0, 1]))
    assert isinstance(info.value, DetforgeError) and isinstance(info.value, ImportError)
    assert "PAAHead" in str(info.value)


def test_score_voting_averages_overlapping_candidates_of_the_same_class() -> None:
    dets = torch.tensor([[0.0, 0.0, 10.0, 10.0, 0.8], [50.0, 50.0, 60.0, 60.0, 0.7]])
    labels = torch.tensor([1, 0])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 12.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    # box 1 votes for class 1 only; class 0's candidate far away does not vote
    scores = torch.tensor([[0.0, 0.8, 0.0], [0.5, 0.6, 0.0], [0.7, 0.0, 0.0]])
    voted, voted_labels = score_voting(dets, labels, boxes, scores, 0.05)
    assert voted_labels.tolist() == [0, 1]  # grouped by class
    torch.testing.assert_close(voted[0], dets[1])
    iou = 8.0 * 10.0 / (12.0 * 10.0)
    w = torch.exp(torch.tensor(-((1 - iou) ** 2) / 0.025)) * 0.6
    x1 = float((0.8 * 0.0 + w * 2.0) / (0.8 + w))
    assert voted[1, 0].item() == pytest.approx(x1, rel=1e-6)
    assert voted[1, 4].item() == pytest.approx(0.8)


def test_head_refuses_unknown_covariance_and_nms_free_post_processing() -> None:
    with pytest.raises(ValueError, match="covariance_type='ful' is not one of"):
        _head(covariance_type="ful")
    head = _head(test_cfg=dict(nms_pre=10, score_thr=0.05, nms=dict(iou_threshold=0.6),
                               max_per_img=5))  # fmt: skip
    outs = head([torch.zeros(1, 8, 4, 4)])
    meta = dict(img_shape=(32, 32, 3), scale_factor=[1.0, 1.0, 1.0, 1.0], pad_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="only with_nms=True"):
        head.get_bboxes(*outs, img_metas=[meta], with_nms=False)
    dets, det_labels = head.get_bboxes(*outs, img_metas=[meta])[0]
    assert dets.shape[1] == 5 and len(dets) == len(det_labels) <= 5
