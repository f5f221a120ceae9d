"""The C4 ``ResLayer`` shared head and StandardRoIHead's shared-head path (v2's
``with_shared_head``): keys, shapes, norm_eval, init, and where the head runs."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.roi_heads import ResLayer, StandardRoIHead
from detforge.structures import BitmapMasks
from detforge.structures.bbox import bbox2roi
from tests.models.v2_goldens import as_float32, assert_close, load

_EXTRACTOR = dict(
    type="SingleRoIExtractor",
    roi_layer=dict(type="RoIAlign", output_size=14, sampling_ratio=0),
    out_channels=64,
    featmap_strides=[8],
)


def _c4_head(with_mask: bool = False) -> StandardRoIHead:
    extra: dict[str, Any] = {}
    if with_mask:
        extra = dict(
            mask_roi_extractor=None,
            mask_head=dict(
                type="FCNMaskHead",
                num_convs=0,
                in_channels=128,
                conv_out_channels=16,
                num_classes=3,
            ),
        )
    return StandardRoIHead(
        shared_head=dict(
            type="ResLayer",
            depth=18,
            stage=1,
            style="caffe",
            norm_cfg=dict(type="BN", requires_grad=False),
        ),
        bbox_roi_extractor=_EXTRACTOR,
        bbox_head=dict(
            type="BBoxHead", with_avg_pool=True, roi_feat_size=7, in_channels=128, num_classes=3
        ),
        train_cfg=dict(
            assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),
            sampler=dict(type="RandomSampler", num=16, pos_fraction=0.25),
            pos_weight=-1,
            mask_size=14,
        ),
        test_cfg=dict(
            score_thr=0.0,
            nms=dict(type="nms", iou_threshold=0.5),
            max_per_img=10,
            mask_thr_binary=0.5,
        ),
        **extra,
    )


def test_res_layer_is_the_resnet_stage() -> None:
    head = ResLayer(depth=50, stage=3, style="caffe", norm_cfg=dict(type="BN", requires_grad=False))
    keys = list(head.state_dict())
    assert keys[0] == "layer4.0.conv1.weight" and "layer4.2.bn3.running_var" in keys
    assert head.layer4[0].conv1.stride == (2, 2)  # caffe style: stride on the 1x1
    assert all(not p.requires_grad for n, p in head.named_parameters() if ".bn" in n)
    with torch.no_grad():
        assert head.eval()(torch.rand(2, 1024, 14, 14)).shape == (2, 2048, 7, 7)
    head.train()
    assert not head.layer4[0].bn1.training  # norm_eval
    assert ResLayer(depth=50, norm_eval=False).train().layer4[0].bn1.training


def test_res_layer_init_and_errors() -> None:
    head = ResLayer(depth=18, stage=1)
    assert head.init_cfg[0] == {"type": "Kaiming", "layer": "Conv2d"}
    head.layer2[0].bn2.weight.data.fill_(3.0)
    head.init_weights()
    assert torch.all(head.layer2[0].bn2.weight == 1)  # no zero_init_residual in a shared head
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert ResLayer(depth=18, stage=1, pretrained="x.pth").init_cfg == {
            "type": "Pretrained",
            "checkpoint": "x.pth",
        }
    with pytest.raises(ConfigKeyError, match="depth 42"):
        ResLayer(depth=42)
    with pytest.raises(ValueError, match="stage"):
        ResLayer(depth=18, stage=0)


def test_standard_roi_head_runs_the_shared_head_for_boxes_and_masks() -> None:
    torch.manual_seed(0)
    head = _c4_head(with_mask=True).eval()
    x = [torch.randn(1, 64, 12, 12)]
    rois = bbox2roi([torch.tensor([[4.0, 4.0, 60.0, 50.0], [10.0, 20.0, 90.0, 80.0]])])
    with torch.no_grad():
        out = head._bbox_forward(x, rois)
        pooled = head.bbox_roi_extractor(x, rois)
        want = head.bbox_head(head.shared_head(pooled))
        mask = head._mask_forward(x, rois)
    assert out["bbox_feats"].shape == (2, 128, 7, 7)
    torch.testing.assert_close(out["cls_score"], want[0])
    assert mask["mask_feats"].shape == (2, 128, 7, 7)
    assert mask["mask_pred"].shape == (2, 3, 14, 14)
    meta = dict(img_shape=(96, 96, 3), ori_shape=(96, 96, 3), scale_factor=np.ones(4, np.float32))
    with torch.no_grad():
        bbox_results, segm_results = head.simple_test(x, [rois[:, 1:]], [meta])[0]
    assert len(bbox_results) == 3 and len(segm_results) == 3


def test_training_masks_reuse_the_shared_head_box_features() -> None:
    torch.manual_seed(0)
    head = _c4_head(with_mask=True).train()
    calls: list[int] = []
    head.shared_head.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    x = [torch.randn(1, 64, 12, 12)]
    gt = torch.tensor([[8.0, 8.0, 60.0, 70.0]])
    proposals = torch.cat([gt + torch.randn(6, 4), torch.tensor([[50.0, 50.0, 90.0, 90.0]])])
    masks = BitmapMasks(np.ones((1, 96, 96), np.uint8), 96, 96)
    losses = head.forward_train(x, [{}], [proposals], [gt], [torch.tensor([2])], gt_masks=[masks])
    assert set(losses) >= {"loss_cls", "loss_bbox", "loss_mask"}
    assert len(calls) == 1  # once for the sampled RoIs; the mask head took their positives
    assert isinstance(head.shared_head, nn.Module)


def test_c4_roi_outputs_match_mmdetection() -> None:
    """tests/data/goldens/shared_head (tools/goldens/shared_head.py): MMDetection 3.3's
    StandardRoIHead with a ResLayer shared head, same weights, same features and RoIs."""
    head = StandardRoIHead(
        **{k: v for k, v in load("shared_head", "head.json").items() if k != "type"}
    )
    head.load_state_dict(as_float32(load("shared_head", "weights.pt")), strict=True)
    inputs, expected = load("shared_head", "input.pt"), load("shared_head", "expected.pt")
    head.eval()
    with torch.no_grad():
        bbox = head._bbox_forward(inputs["feats"], inputs["rois"])
        mask = head._mask_forward(inputs["feats"], inputs["rois"])
    for key in ("cls_score", "bbox_pred", "bbox_feats"):
        assert_close(bbox[key], expected[key], key)
    assert_close(mask["mask_pred"], expected["mask_preds"], "mask_pred")
