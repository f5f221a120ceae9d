"""Deformable DETR's box-refinement and two-stage variants at tiny widths (v2 semantics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.config import Config
from detforge.models import build_head

V2_MODELS = Path(__file__).resolve().parents[2] / "data" / "v2_models"


def _head(**flags: Any) -> Any:
    cfg = Config.fromfile(V2_MODELS / "deformable_detr.py").model
    head_cfg = dict(cfg["bbox_head"], train_cfg=cfg["train_cfg"], test_cfg=cfg["test_cfg"])
    head_cfg["transformer"]["two_stage_num_proposals"] = 20
    head = build_head({**head_cfg, **flags})
    head.init_weights()
    return head


def _inputs() -> tuple[list[torch.Tensor], list[dict[str, Any]], list[torch.Tensor], list[Any]]:
    torch.manual_seed(0)
    feats = [torch.randn(2, 32, s, s) for s in (8, 4, 2, 1)]
    metas = [
        dict(batch_input_shape=(64, 64), img_shape=(64, 48, 3), scale_factor=[1.0] * 4),
        dict(batch_input_shape=(64, 64), img_shape=(40, 64, 3), scale_factor=[2.0] * 4),
    ]
    gt_bboxes = [torch.tensor([[4.0, 4.0, 30.0, 40.0]]), torch.tensor([[0.0, 0.0, 60.0, 30.0]])]
    return feats, metas, gt_bboxes, [torch.tensor([3]), torch.tensor([7])]


@pytest.mark.parametrize(("refine", "two_stage"), [(False, False), (True, False), (True, True)])
def test_variants_train_and_test(refine: bool, two_stage: bool) -> None:
    head = _head(with_box_refine=refine, as_two_stage=two_stage)
    num_branches = 2 + int(two_stage)
    assert len(head.cls_branches) == len(head.reg_branches) == num_branches
    shared = head.cls_branches[0] is head.cls_branches[1]
    assert shared is not refine
    assert hasattr(head, "query_embedding") is not two_stage
    keys = set(head.state_dict())
    assert ("transformer.enc_output.weight" in keys) is two_stage
    assert ("transformer.reference_points.weight" in keys) is not two_stage
    feats, metas, gt_bboxes, gt_labels = _inputs()
    losses = head.forward_train(feats, metas, gt_bboxes, gt_labels)
    names = ["loss_cls", "loss_bbox", "loss_iou", "d0.loss_cls", "d0.loss_bbox", "d0.loss_iou"]
    if two_stage:
        names = ["enc_loss_cls", "enc_loss_bbox", "enc_loss_iou", *names]
    assert list(losses) == names
    sum(losses.values()).backward()
    assert all(head.reg_branches[i][0].weight.grad is not None for i in range(num_branches))
    head.eval()
    with torch.no_grad():
        results = head.simple_test(feats, metas, rescale=True)
    for (dets, labels), meta in zip(results, metas, strict=True):
        assert dets.shape == (100, 5) and labels.shape == (100,)
        scores = dets[:, 4]
        assert torch.all(scores[:-1] >= scores[1:])
        h, w = meta["img_shape"][:2]
        scale = meta["scale_factor"][0]
        assert (
            float(dets[:, [0, 2]].max()) <= w / scale and float(dets[:, [1, 3]].max()) <= h / scale
        )


def test_ignored_boxes_are_refused() -> None:
    head = _head()
    feats, metas, gt_bboxes, gt_labels = _inputs()
    with pytest.raises(ValueError, match="gt_bboxes_ignore"):
        head.forward_train(feats, metas, gt_bboxes, gt_labels, [torch.ones(1, 4), torch.ones(0, 4)])
