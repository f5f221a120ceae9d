"""A list of necks (``neck=[FPN, DyHead]``) runs in sequence with keys ``neck.0``, ``neck.1``."""

from __future__ import annotations

import pytest
import torch

from detforge.models import build_detector
from detforge.models.detectors.base import NeckSequence, build_neck

_FPN = dict(
    type="FPN",
    in_channels=[16, 32, 64, 128],
    out_channels=16,
    start_level=1,
    add_extra_convs="on_output",
    num_outs=3,
)


def _atss(neck: object) -> dict[str, object]:
    return dict(
        type="ATSS",
        backbone=dict(type="ResNet", depth=18, base_channels=16, init_cfg=None),
        neck=neck,
        bbox_head=dict(
            type="ATSSHead",
            num_classes=3,
            in_channels=16,
            stacked_convs=0,
            feat_channels=16,
            anchor_generator=dict(
                type="AnchorGenerator",
                ratios=[1.0],
                octave_base_scale=8,
                scales_per_octave=1,
                strides=[8, 16, 32],
            ),
        ),
        test_cfg=dict(
            nms_pre=100,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type="nms", iou_threshold=0.6),
            max_per_img=10,
        ),
    )


def test_neck_list_builds_a_sequence_with_v2_keys() -> None:
    model = build_detector(
        _atss([_FPN, dict(type="DyHead", in_channels=16, out_channels=16, num_blocks=1)])
    )
    assert isinstance(model.neck, NeckSequence)
    keys = [k for k in model.state_dict() if k.startswith("neck.")]
    assert keys[0] == "neck.0.lateral_convs.0.conv.weight"
    assert "neck.1.dyhead_blocks.0.spatial_conv_mid.conv.weight" in keys
    model.eval()
    img = torch.rand(1, 3, 64, 64)
    feats = model.extract_feat(img)
    expected = model.neck[1](model.neck[0](model.backbone(img)))
    assert all(torch.equal(a, b) for a, b in zip(feats, expected, strict=True))


def test_init_weights_reaches_each_neck() -> None:
    model = build_detector(_atss([_FPN, _FPN | dict(in_channels=[16] * 3, start_level=0)]))
    for param in model.neck.parameters():
        torch.nn.init.constant_(param, 7.0)
    model.init_weights()
    assert model.neck[0].lateral_convs[0].conv.bias.abs().sum() == 0  # FPN's Xavier init ran
    assert model.neck[1].fpn_convs[0].conv.bias.abs().sum() == 0


def test_errors_name_the_list_entry() -> None:
    with pytest.raises(TypeError, match=r"neck\.1: unexpected key 'num_block'"):
        build_detector(
            _atss([_FPN, dict(type="DyHead", in_channels=16, out_channels=16, num_block=1)])
        )
    with pytest.raises(TypeError, match="empty list"):
        build_neck([])
