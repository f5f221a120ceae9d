"""YOLOFHead: the objectness-normalised scores and a batch without ground truth (the numbers
against MMDetection are in tests/models/test_golden_yolof.py)."""

from __future__ import annotations

import torch

from detforge.models.dense_heads import YOLOFHead
from detforge.models.dense_heads.yolof_head import objectness_normalised_logits

TRAIN_CFG = dict(
    assigner=dict(type="UniformAssigner", pos_ignore_thr=0.15, neg_ignore_thr=0.7),
    allowed_border=-1,
    pos_weight=-1,
)


def test_normalised_score_is_about_the_product_of_the_sigmoids() -> None:
    c, o = torch.tensor([-3.0, 0.0, 4.0]), torch.tensor([2.0, -1.0, 0.5])
    got = objectness_normalised_logits(c, o).sigmoid()
    # exactly e^(c+o) / (1 + e^c + e^o + e^(c+o)) = sigmoid(c) * sigmoid(o)
    torch.testing.assert_close(got, c.sigmoid() * o.sigmoid())


def test_images_without_ground_truth_give_a_zero_box_loss() -> None:
    torch.manual_seed(0)
    head = YOLOFHead(
        num_classes=3,
        in_channels=8,
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], scales=[1, 2], strides=[32]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder"),
        reg_decoded_bbox=True,
        loss_cls=dict(type="FocalLoss", use_sigmoid=True),
        loss_bbox=dict(type="GIoULoss"),
        train_cfg=TRAIN_CFG,
    )
    head.init_weights()
    scores, boxes = head([torch.randn(2, 8, 4, 4)])
    metas = [dict(img_shape=(128, 128, 3), pad_shape=(128, 128, 3))] * 2
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    losses = head.loss(scores, boxes, empty, [torch.zeros(0, dtype=torch.long)] * 2, metas)
    assert float(losses["loss_bbox"].detach()) == 0
    assert float(losses["loss_cls"].detach()) > 0  # every anchor is a negative
    losses["loss_cls"].backward()
    assert head.cls_score.weight.grad is not None
