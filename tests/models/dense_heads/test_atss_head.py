"""``ATSSHead``: targets, loss normalisation, options and the empty-ground-truth property."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from detforge.models.dense_heads import ATSSHead
from detforge.models.dense_heads.atss_head import atss_centerness_target
from detforge.registry import MODELS, build_module

TRAIN_CFG = dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1,
                 debug=False)  # fmt: skip
TEST_CFG = dict(
    nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.6),
    max_per_img=100,
)  # fmt: skip


def _head(**kwargs: Any) -> ATSSHead:
    cfg: dict[str, Any] = dict(
        type="ATSSHead", num_classes=3, in_channels=8, feat_channels=8, stacked_convs=2,
        norm_cfg=dict(type="GN", num_groups=4, requires_grad=True),
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=8,
                              scales_per_octave=1, strides=[8, 16]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type="GIoULoss", loss_weight=2.0),
        train_cfg=TRAIN_CFG, test_cfg=TEST_CFG,
    )  # fmt: skip
    cfg.update(kwargs)
    head = build_module(cfg, MODELS)
    head.init_weights()
    return head


def _metas(n: int = 2) -> list[dict[str, Any]]:
    shape = (64, 64, 3)
    return [
        dict(img_shape=shape, pad_shape=shape, ori_shape=shape, batch_input_shape=(64, 64),
             scale_factor=[1.0, 1.0, 1.0, 1.0])
        for _ in range(n)
    ]  # fmt: skip


def _feats(n: int = 2) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(n, 8, 8, 8, generator=gen), torch.randn(n, 8, 4, 4, generator=gen)]


GTS = [torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.0, 20.0, 60.0, 62.0]]),
       torch.tensor([[2.0, 4.0, 60.0, 62.0]])]  # fmt: skip
LABELS = [torch.tensor([1, 2]), torch.tensor([0])]


def test_layers_and_state_dict_names() -> None:
    head = _head()
    keys = set(head.state_dict())
    for name in ("atss_cls.weight", "atss_reg.weight", "atss_centerness.weight", "scales.1.scale",
                 "cls_convs.1.gn.weight", "reg_convs.0.conv.weight"):  # fmt: skip
        assert name in keys, name
    torch.testing.assert_close(head.atss_cls.bias, torch.full((3,), -4.59511985013459))
    assert head.num_anchors == 1
    assert _head(norm_cfg=None).cls_convs[0].norm_name is None
    assert _head(pred_kernel_size=1).atss_reg.kernel_size == (1, 1)


def test_never_samples() -> None:
    cfg = dict(TRAIN_CFG, sampler=dict(type="RandomSampler", num=4, pos_fraction=0.5))
    head = _head(train_cfg=cfg, loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True))
    assert head.sampling is False
    assert type(head.sampler).__name__ == "PseudoSampler"


def test_centerness_target_literal() -> None:
    anchors = torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 6.0, 6.0]])
    gts = torch.tensor([[0.0, 0.0, 8.0, 4.0], [0.0, 0.0, 8.0, 8.0]])
    # centres (2, 2) and (4, 4): sqrt(2/6 * 2/2) and 1
    expected = torch.tensor([(1 / 3) ** 0.5, 1.0])
    torch.testing.assert_close(atss_centerness_target(anchors, gts), expected)
    with pytest.raises(ValueError, match="NaN"):
        atss_centerness_target(torch.tensor([[0.0, 0.0, 0.0, 0.0]]), torch.zeros(1, 4))


def test_targets_give_positives_with_gt_boxes() -> None:
    head = _head()
    anchors, flags = head.get_anchors([(8, 8), (4, 4)], _metas())
    out = head.get_targets(anchors, flags, GTS, _metas(), gt_labels_list=LABELS)
    assert out is not None
    labels, _, targets, _weights, num_pos, num_neg = out
    assert [lab.shape for lab in labels] == [(2, 64), (2, 16)]
    flat_labels = torch.cat([lab.reshape(2, -1) for lab in labels], 1)
    flat_targets = torch.cat([t.reshape(2, -1, 4) for t in targets], 1)
    pos = flat_labels < 3
    assert num_pos == sum(max(int(p.sum()), 1) for p in pos)
    assert num_neg == sum(max(int((~p).sum()), 1) for p in pos)
    assert set(flat_labels[0][pos[0]].tolist()) <= {1, 2} and pos[1].any()
    # positives regress the decoded ground-truth box itself (reg_decoded_bbox=True)
    for row in flat_targets[0][pos[0]]:
        assert any(torch.equal(row, gt) for gt in GTS[0])


def test_bbox_loss_is_normalised_by_centerness_sum() -> None:
    head = _head()
    head.train()
    outs = head(_feats())
    losses = head.loss(*outs, GTS, LABELS, _metas())
    assert all(len(v) == 2 for v in losses.values())
    unnormalised = head.loss_single
    captured: list[torch.Tensor] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = unnormalised(*args, **kwargs)
        captured.append(result)
        return result

    head.loss_single = spy  # type: ignore[method-assign]
    again = head.loss(*outs, GTS, LABELS, _metas())
    denom = max(float(sum(c[3] for c in captured)), 1.0)
    for level, loss in enumerate(again["loss_bbox"]):
        assert float(loss.detach()) == pytest.approx(float(captured[level][1].detach()) / denom)


def test_empty_ground_truth_gives_zero_box_losses() -> None:
    head = _head()
    head.train()
    outs = head(_feats())
    empty = [torch.zeros(0, 4)] * 2
    losses = head.loss(*outs, empty, [torch.zeros(0, dtype=torch.long)] * 2, _metas())
    assert sum(float(v.detach()) for v in losses["loss_cls"]) > 0
    assert all(float(v.detach()) == 0 for v in losses["loss_bbox"])
    assert all(float(v.detach()) == 0 for v in losses["loss_centerness"])
    sum(sum(v) for v in losses.values()).backward()
    full = head.loss(*head(_feats()), GTS, LABELS, _metas())
    assert float(full["loss_bbox"][0].detach()) > 0
    assert float(full["loss_centerness"][0].detach()) > 0


def test_simple_test_and_forward_train() -> None:
    head = _head()
    head.eval()
    with torch.no_grad():
        results = head.simple_test(_feats(), _metas(), rescale=True)
    assert len(results) == 2
    for dets, labels in results:
        assert dets.shape[1] == 5 and len(dets) == len(labels) <= 100
    head.train()
    losses = head.forward_train(_feats(), _metas(), GTS, LABELS)
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_centerness"}
