"""DIIHead and EmbeddingRPNHead: targets in query order, initialisation, refused settings."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.dense_heads import EmbeddingRPNHead
from detforge.models.roi_heads import DIIHead
from detforge.models.task_modules import AssignResult, PseudoSampler

_DYN = dict(type="DynamicConv", in_channels=8, feat_channels=4, out_channels=8)


def _head(**kwargs: object) -> DIIHead:
    cfg: dict = dict(
        num_classes=3,
        in_channels=8,
        feedforward_channels=16,
        num_heads=2,
        dynamic_conv_cfg=_DYN,
        loss_cls=dict(type="FocalLoss", use_sigmoid=True),
    )
    cfg.update(kwargs)
    return DIIHead(**cfg)


def test_targets_follow_the_query_order() -> None:
    # queries 1 and 3 matched to truths 2 and 1 (1-based), queries 0 and 2 background
    assign = AssignResult(
        2, torch.tensor([0, 2, 0, 1]), torch.zeros(4), labels=torch.tensor([-1, 0, -1, 2])
    )
    proposals = torch.arange(16.0).view(4, 4)
    gts = torch.tensor([[1.0, 1.0, 5.0, 5.0], [2.0, 2.0, 9.0, 9.0]])
    sampling = PseudoSampler().sample(assign, proposals, gts)
    labels, label_weights, targets, weights = _head().get_targets(
        [sampling, sampling], [gts] * 2, [torch.tensor([2, 0])] * 2, dict(pos_weight=2.0)
    )
    assert labels.tolist() == [3, 0, 3, 2] * 2
    assert label_weights.tolist() == [1.0, 2.0, 1.0, 2.0] * 2
    assert targets[:4].tolist() == [[0.0] * 4, gts[1].tolist(), [0.0] * 4, gts[0].tolist()]
    assert weights[:4, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_init_weights_and_class_channels() -> None:
    torch.manual_seed(0)
    head = _head()
    head.init_weights()
    prior = -math.log((1 - 0.01) / 0.01)
    assert torch.allclose(head.fc_cls.bias, torch.full((3,), prior))
    assert head.fc_cls.out_features == 3
    softmax = _head(loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False))
    assert softmax.fc_cls.out_features == 4 and not hasattr(softmax, "avg_pool")


def test_refused_settings_name_the_culprit() -> None:
    with pytest.raises(ValueError, match="reg_class_agnostic must be True"):
        _head(reg_class_agnostic=False)
    with pytest.raises(ValueError, match="init_cfg must be None"):
        _head(init_cfg=dict(type="Xavier"))
    with pytest.raises(ValueError, match=r"no train_cfg settings \(set model.train_cfg.rpn=None"):
        EmbeddingRPNHead(train_cfg=dict(nms_pre=10))


def test_embedding_proposals_scale_with_each_image() -> None:
    head = EmbeddingRPNHead(num_proposals=2, proposal_feature_channel=4)
    head.init_weights()
    with torch.no_grad():
        head.init_proposal_bboxes.weight[1] = torch.tensor([0.25, 0.5, 0.5, 0.2])
    metas = [dict(img_shape=(100, 200, 3)), dict(img_shape=(50, 40, 3))]
    boxes, feats, whwh = head.forward_train([torch.zeros(2, 4, 8, 8)], metas)
    expected = torch.tensor([[0.0, 0.0, 200.0, 100.0], [0.0, 40.0, 100.0, 60.0]])
    torch.testing.assert_close(boxes[0], expected)
    assert boxes[1, 1].tolist() == pytest.approx([0.0, 20.0, 20.0, 30.0])
    assert whwh.view(2, 4).tolist() == [[200.0, 100.0, 200.0, 100.0], [40.0, 50.0, 40.0, 50.0]]
    assert torch.equal(feats[0], feats[1])
