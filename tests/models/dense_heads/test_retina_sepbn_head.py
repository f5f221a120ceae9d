"""RetinaSepBNHead: MMDetection's layout and outputs, shared convs with per-level norms."""

from __future__ import annotations

import pytest
import torch

from detforge.models.dense_heads import RetinaSepBNHead
from tests.models.neck_goldens import assert_layout, build, layout, run_golden

ANCHORS = dict(
    type="AnchorGenerator", octave_base_scale=4, scales_per_octave=3,
    ratios=[0.5, 1.0, 2.0], strides=[8, 16],
)  # fmt: skip
FOCAL = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)


def _head(**kwargs: object) -> RetinaSepBNHead:
    args: dict[str, object] = dict(
        num_classes=3, num_ins=2, in_channels=4, feat_channels=4, stacked_convs=2,
        norm_cfg=dict(type="BN"), anchor_generator=ANCHORS, loss_cls=FOCAL,
    )  # fmt: skip
    args.update(kwargs)
    return RetinaSepBNHead(**args)  # type: ignore[arg-type]


def test_full_size_layout_is_mmdetections() -> None:
    expected = layout("nas_fpn", "layout_head.json")
    assert_layout(build(expected["config"]), expected)


def test_matches_mmdetection() -> None:
    assert run_golden("nas_fpn", case="head") < 1e-4


def test_convs_are_shared_and_norms_are_not() -> None:
    head = _head()
    for branch in (head.cls_convs, head.reg_convs):
        for i in range(2):
            assert branch[1][i].conv is branch[0][i].conv
            assert branch[1][i].bn is not branch[0][i].bn
    keys = list(head.state_dict())
    assert "cls_convs.1.0.conv.weight" in keys and "cls_convs.1.0.bn.running_mean" in keys
    params = {id(p) for p in head.parameters()}
    assert len(params) == len(list(head.parameters()))  # each shared tensor counted once
    head.init_weights()
    assert head.retina_cls.bias.mean().item() == pytest.approx(-4.59512, abs=1e-4)


def test_forward_and_loss() -> None:
    head = _head(train_cfg=dict(
        assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0),
        allowed_border=-1, pos_weight=-1,
    ))  # fmt: skip
    feats = [torch.rand(1, 4, 8, 8), torch.rand(1, 4, 4, 4)]
    scores, deltas = head(feats)
    assert [tuple(s.shape) for s in scores] == [(1, 27, 8, 8), (1, 27, 4, 4)]
    meta = dict(img_shape=(64, 64, 3), pad_shape=(64, 64, 3), scale_factor=1.0)
    losses = head.loss(
        scores, deltas, [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], [meta]
    )
    assert sum(loss.sum() for loss in losses["loss_bbox"]).item() == 0  # empty GT: no box loss
    with pytest.raises(ValueError, match="RetinaSepBNHead: got 1 levels, num_ins=2"):
        head(feats[:1])
    with pytest.raises(ValueError, match="RetinaSepBNHead: init_cfg"):
        _head(init_cfg=dict(type="Normal", layer="Conv2d"))
