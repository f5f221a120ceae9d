"""``YOLOXHead``: decoding, targets, the L1 switch, empty ground truth and config checks."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from detforge.errors import ConfigError
from detforge.models.dense_heads import YOLOXHead
from detforge.models.dense_heads.yolox_head import yolox_decode, yolox_l1_target
from detforge.registry import MODELS, build_module

TRAIN_CFG = dict(assigner=dict(type="SimOTAAssigner", center_radius=2.5))
TEST_CFG = dict(score_thr=0.01, nms=dict(type="nms", iou_threshold=0.65))


def _head(**kwargs: Any) -> YOLOXHead:
    cfg: dict[str, Any] = dict(
        type="YOLOXHead", num_classes=3, in_channels=8, feat_channels=8, strides=[8, 16],
        train_cfg=TRAIN_CFG, test_cfg=TEST_CFG,
    )  # fmt: skip
    cfg.update(kwargs)
    head = build_module(cfg, MODELS)
    head.init_weights()
    return head


def _feats() -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]


def _f(value: torch.Tensor) -> float:
    return float(value.detach())


def _metas() -> list[dict[str, Any]]:
    meta = dict(img_shape=(64, 64, 3), pad_shape=(64, 64, 3), scale_factor=[2.0, 2.0, 2.0, 2.0])
    return [dict(meta), dict(meta)]


def test_l1_target_inverts_decode() -> None:
    priors = torch.tensor([[0.0, 8.0, 8.0, 8.0], [16.0, 16.0, 16.0, 16.0]])
    preds = torch.tensor([[0.3, -0.2, 0.5, 1.0], [-1.0, 2.0, -0.5, 0.0]])
    torch.testing.assert_close(yolox_l1_target(yolox_decode(priors, preds), priors), preds)


def test_init_biases_and_layout() -> None:
    head = _head()
    assert float(head.multi_level_conv_cls[1].bias.detach()[0]) == pytest.approx(-4.59512, abs=1e-5)
    assert float(head.multi_level_conv_obj[0].bias.detach()[0]) == pytest.approx(-4.59512, abs=1e-5)
    keys = list(head.state_dict())
    assert "multi_level_cls_convs.0.1.bn.running_mean" in keys
    assert "multi_level_conv_reg.1.weight" in keys
    dw = _head(use_depthwise=True).state_dict()
    assert "multi_level_reg_convs.0.0.depthwise_conv.conv.weight" in dw


def test_losses_l1_switch_and_empty_ground_truth() -> None:
    head = _head()
    outs = head(_feats())
    gts = [torch.tensor([[4.0, 4.0, 40.0, 30.0]]), torch.tensor([[10.0, 20.0, 60.0, 60.0]])]
    labels = [torch.tensor([0]), torch.tensor([2])]
    losses = head.loss(*outs, gts, labels, _metas())
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_obj"}
    head.use_l1 = True
    with_l1 = head.loss(*outs, gts, labels, _metas())
    assert _f(with_l1["loss_l1"]) > 0
    for name in losses:
        assert _f(with_l1[name]) == pytest.approx(_f(losses[name]))
    empty = head.loss(*outs, [g[:0] for g in gts], [lab[:0] for lab in labels], _metas())
    assert _f(empty["loss_cls"]) == _f(empty["loss_bbox"]) == _f(empty["loss_l1"]) == 0
    assert _f(empty["loss_obj"]) > 0  # every prior is a negative for objectness
    empty["loss_obj"].backward()


def test_rescale_divides_before_nms_and_without_nms() -> None:
    head = _head(test_cfg=dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.65)))
    head.eval()
    with torch.no_grad():
        outs = head(_feats())
        plain = head.get_bboxes(*outs, img_metas=_metas())
        scaled = head.get_bboxes(*outs, img_metas=_metas(), rescale=True)
        raw = head.get_bboxes(*outs, img_metas=_metas(), with_nms=False)
    torch.testing.assert_close(scaled[0][0][:, :4] * 2, plain[0][0][:, :4])
    assert len(raw[0][0]) == 80  # every prior passes score_thr 0: no nms_pre, no cap


def test_flip_aug_test_pools_both_views_without_a_cap() -> None:
    head = _head(test_cfg=dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=1.0)))
    head.eval()
    feats = [f[:1] for f in _feats()]
    metas = [dict(_metas()[0], flip=flip, flip_direction="horizontal") for flip in (False, True)]
    with torch.no_grad():
        ((dets, labels),) = head.aug_test(
            [feats, [f.flip(-1) for f in feats]], [[m] for m in metas]
        )
        ((plain, _),) = head.simple_test(feats, metas[:1])
    assert len(dets) == len(labels) == 2 * len(plain) == 160  # IoU 1.0: NMS keeps every box


def test_test_cfg_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_per_img"):
        _head(test_cfg=dict(TEST_CFG, max_per_img=100))
