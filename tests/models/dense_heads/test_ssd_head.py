"""SSDHead: hard negative mining and the v2 settings it reads (the numbers against
MMDetection are in tests/models/test_golden_ssd.py)."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import ConfigError
from detforge.models.dense_heads import SSDHead
from detforge.models.dense_heads.ssd_head import hard_negative_ce
from detforge.models.task_modules.samplers import PseudoSampler

TRAIN_CFG = dict(
    assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.0),
    sampler=dict(type="RandomSampler", num=8, pos_fraction=0.5),
    smoothl1_beta=1.0,
    allowed_border=-1,
    pos_weight=-1,
    neg_pos_ratio=3,
    debug=False,
)


def test_hard_negatives_are_capped_by_the_negatives_there_are() -> None:
    ce = torch.tensor([1.0, 5.0, 2.0, 4.0, 3.0])
    labels = torch.tensor([0, 2, 2, 2, 1])  # 2 positives (1 + 3), 3 negatives (5, 2, 4)
    assert float(hard_negative_ce(ce, labels, 2, 1)) == 1 + 3 + 5 + 4
    assert float(hard_negative_ce(ce, labels, 2, 3)) == 1 + 3 + 5 + 4 + 2
    assert float(hard_negative_ce(ce, torch.full((5,), 2), 2, 3)) == 0


def test_never_samples_and_scores_with_softmax() -> None:
    head = SSDHead(num_classes=3, in_channels=(8, 8, 8, 8, 8, 8), train_cfg=TRAIN_CFG)
    assert isinstance(head.sampler, PseudoSampler) and not head.sampling
    assert head.cls_out_channels == 4 and not head.use_sigmoid_cls
    assert head.loss_bbox.beta == 1.0
    feats = [torch.randn(1, 8, s, s) for s in (38, 19, 10, 5, 3, 1)]
    scores, boxes = head(feats)
    assert [s.shape[1] for s in scores] == [16, 24, 24, 24, 16, 16]
    assert [b.shape[1] for b in boxes] == [16, 24, 24, 24, 16, 16]


def test_unknown_train_cfg_key_and_level_mismatch_are_errors() -> None:
    with pytest.raises(ConfigError, match="neg_pos_ratios"):
        SSDHead(num_classes=3, train_cfg={**TRAIN_CFG, "neg_pos_ratios": 3})
    with pytest.raises(ValueError, match="2 in_channels for 6 anchor levels"):
        SSDHead(num_classes=3, in_channels=(8, 8))
