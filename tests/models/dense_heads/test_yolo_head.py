"""YOLOV3Head: v2's initialisation, the candidates without NMS and argument checks (the numbers
against MMDetection are in tests/models/test_golden_ssd_yolov3.py)."""

from __future__ import annotations

import pytest
import torch

from detforge.models.dense_heads import YOLOV3Head

TEST_CFG = dict(
    conf_thr=0.005, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.45), max_per_img=100
)


def _head() -> YOLOV3Head:
    torch.manual_seed(0)
    return YOLOV3Head(
        num_classes=3, in_channels=[8, 8, 8], out_channels=[8, 8, 8], test_cfg=TEST_CFG
    )


def test_init_weights_sets_the_objectness_and_class_priors() -> None:
    head = _head()
    head.init_weights()
    bias = head.convs_pred[0].bias.detach().view(3, 8)  # 3 anchors x (4 + 1 + 3)
    stride_32_prior = 8 / (608 / 32) ** 2
    assert torch.allclose(bias[:, 4].sigmoid(), torch.full((3,), stride_32_prior))
    assert torch.allclose(bias[:, 5:].sigmoid(), torch.full((3, 3), 0.01))
    assert bias[:, :4].abs().max() == 0
    assert float(head.convs_pred[0].weight.detach().std()) == pytest.approx(0.01, rel=0.3)
    assert bool((head.convs_bridge[0].bn.weight == 1).all())


def test_without_nms_every_thresholded_pair_is_returned() -> None:
    head = _head()
    head.eval()
    feats = [torch.randn(1, 8, s, s) for s in (2, 4, 8)]
    metas = [dict(img_shape=(64, 64, 3), scale_factor=[1.0, 1.0, 1.0, 1.0])]
    with torch.no_grad():
        (maps,) = head(feats)
        boxes, scores, labels = head.get_bboxes(maps, metas, with_nms=False)[0]
        dets, _ = head.get_bboxes(maps, metas)[0]
    num_anchors = 3 * (4 + 16 + 64)
    assert len(boxes) == len(scores) == len(labels) <= num_anchors * 3
    assert len(boxes) > 0 and labels.max() < 3
    assert 0 < len(dets) <= len(boxes)
    # NMS keeps a subset of the same (box, score, label) candidates
    assert set(dets[:, 4].tolist()) <= set(scores.tolist())


def test_per_level_lists_must_agree() -> None:
    with pytest.raises(ValueError, match="2 in_channels, 3 out_channels"):
        YOLOV3Head(num_classes=3, in_channels=[8, 8], out_channels=[8, 8, 8])
