"""``FCOSHead`` and ``AnchorFreeHead``: targets vs a slow reference, options, properties."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
import torch

from detforge.models.dense_heads import AnchorFreeHead, FCOSHead
from detforge.models.layers import ModulatedDeformConv2dPack
from detforge.registry import MODELS, build_module

TEST_CFG = dict(
    nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5),
    max_per_img=100,
)  # fmt: skip
GN = dict(type="GN", num_groups=4, requires_grad=True)


def _head(**kwargs: Any) -> FCOSHead:
    cfg: dict[str, Any] = dict(
        type="FCOSHead", num_classes=3, in_channels=8, feat_channels=8, stacked_convs=2,
        strides=[8, 16], regress_ranges=((-1, 24), (24, 1e8)), norm_cfg=GN, test_cfg=TEST_CFG,
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


def _reference_targets(
    head: FCOSHead, points: torch.Tensor, strides: torch.Tensor, gts: torch.Tensor,
    labels: torch.Tensor, ranges: torch.Tensor,
) -> tuple[list[int], list[list[float]]]:  # fmt: skip
    """Point by point: the smallest box that contains it (or its centre region) in range."""
    out_labels, out_targets = [], []
    for p, (x, y) in enumerate(points.tolist()):
        best, best_area = -1, float("inf")
        for g, (x1, y1, x2, y2) in enumerate(gts.tolist()):
            dist = [x - x1, y - y1, x2 - x, y2 - y]
            if head.center_sampling:
                r = float(strides[p]) * head.center_sample_radius
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                region = [max(cx - r, x1), max(cy - r, y1), min(cx + r, x2), min(cy + r, y2)]
                inside = min(x - region[0], y - region[1], region[2] - x, region[3] - y) > 0
            else:
                inside = min(dist) > 0
            lo, hi = ranges[p].tolist()
            area = (x2 - x1) * (y2 - y1)
            if inside and lo <= max(dist) <= hi and area < best_area:
                best, best_area = g, area
        out_labels.append(head.num_classes if best < 0 else int(labels[best]))
        x1, y1, x2, y2 = gts[max(best, 0)].tolist()
        out_targets.append([x - x1, y - y1, x2 - x, y2 - y] if best >= 0 else None)
    return out_labels, out_targets


@pytest.mark.parametrize("center_sampling", [False, True])
def test_targets_match_slow_reference(center_sampling: bool) -> None:
    head = _head(center_sampling=center_sampling)
    gts = torch.tensor([[4.0, 6.0, 40.0, 30.0], [10.0, 10.0, 20.0, 22.0], [0.0, 0.0, 63.0, 60.0]])
    labels = torch.tensor([2, 0, 1])
    points = head.prior_generator.grid_priors([(8, 8), (4, 4)])
    got_labels, got_targets = head.get_targets(points, [gts], [labels])
    flat_points = torch.cat(points)
    strides = torch.cat([torch.full((64,), 8.0), torch.full((16,), 16.0)])
    ranges = torch.cat([torch.tensor([[-1.0, 24.0]]).expand(64, 2),
                        torch.tensor([[24.0, 1e8]]).expand(16, 2)])  # fmt: skip
    exp_labels, exp_targets = _reference_targets(head, flat_points, strides, gts, labels, ranges)
    assert torch.cat(got_labels).tolist() == exp_labels
    flat_targets = torch.cat(got_targets)
    for i, target in enumerate(exp_targets):
        if target is not None:
            assert flat_targets[i].tolist() == pytest.approx(target)
    assert sum(lab < 3 for lab in exp_labels) > 5


def test_norm_on_bbox_divides_targets_and_scales_test_output() -> None:
    head = _head(norm_on_bbox=True)
    gts = torch.tensor([[4.0, 6.0, 40.0, 30.0]])
    points = head.prior_generator.grid_priors([(8, 8), (4, 4)])
    plain = _head().get_targets(points, [gts], [torch.tensor([1])])[1]
    normed = head.get_targets(points, [gts], [torch.tensor([1])])[1]
    torch.testing.assert_close(normed[0] * 8, plain[0])
    torch.testing.assert_close(normed[1] * 16, plain[1])
    feats = _feats(1)
    head.train()
    train_pred = head(feats)[1]
    head.eval()
    test_pred = head(feats)[1]
    assert all((p >= 0).all() for p in train_pred)
    torch.testing.assert_close(test_pred[0], train_pred[0] * 8)
    torch.testing.assert_close(test_pred[1], train_pred[1] * 16)


def test_centerness_branch_choice() -> None:
    for on_reg, tower in ((True, "reg_convs"), (False, "cls_convs")):
        head = _head(centerness_on_reg=on_reg)
        head(_feats(1))[2][0].sum().backward()
        grads = {n: p.grad for n, p in head.named_parameters() if p.grad is not None}
        assert any(n.startswith(tower) for n in grads)
        other = "cls_convs" if tower == "reg_convs" else "reg_convs"
        assert not any(n.startswith(other) for n in grads)


def test_dcn_on_last_conv_and_conv_bias() -> None:
    head = _head(dcn_on_last_conv=True)
    assert isinstance(head.cls_convs[-1].conv, ModulatedDeformConv2dPack)
    assert isinstance(head.reg_convs[-1].conv, ModulatedDeformConv2dPack)
    assert not isinstance(head.cls_convs[0].conv, ModulatedDeformConv2dPack)
    assert head.cls_convs[0].conv.bias is None  # 'auto' with GN
    assert _head(norm_cfg=None).cls_convs[0].conv.bias is not None
    assert _head(conv_bias=True).cls_convs[0].conv.bias is not None
    with pytest.raises(ValueError, match="conv_bias"):
        _head(conv_bias="yes")
    with pytest.raises(ValueError, match="regress_ranges"):
        _head(regress_ranges=((-1, 1e8),))


def test_init_weights_bias_prior_and_scales() -> None:
    head = _head()
    torch.testing.assert_close(head.conv_cls.bias, torch.full((3,), -4.59511985013459))
    assert [float(s.scale.detach()) for s in head.scales] == [1.0, 1.0]
    assert "scales.0.scale" in head.state_dict()


def test_empty_ground_truth_gives_zero_box_losses() -> None:
    head = _head()
    head.train()
    outs = head(_feats())
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    no_labels = [torch.zeros(0, dtype=torch.long)] * 2
    losses = head.loss(*outs, empty, no_labels, _metas())
    assert float(losses["loss_cls"].detach()) > 0
    assert float(losses["loss_bbox"].detach()) == 0
    assert float(losses["loss_centerness"].detach()) == 0
    sum(losses.values()).backward()
    # with boxes the regression losses are positive
    gts = [torch.tensor([[4.0, 6.0, 40.0, 30.0]]), torch.tensor([[10.0, 10.0, 50.0, 60.0]])]
    losses = head.loss(*head(_feats()), gts, [torch.tensor([1]), torch.tensor([2])], _metas())
    assert float(losses["loss_bbox"].detach()) > 0 and float(losses["loss_centerness"].detach()) > 0


def test_get_bboxes_keeps_zero_size_boxes_and_multiplies_centerness() -> None:
    """A point in another image's padding decodes to a box clipped flat (v2 keeps it)."""
    head = _head(strides=[8], regress_ranges=((-1, 1e8),))
    cls = torch.full((1, 3, 4, 4), -10.0)
    cls[0, 1, 3, 0] = 5.0  # the point (4, 28), below an image 16 px high
    reg = torch.ones(1, 4, 4, 4)
    ctr = torch.zeros(1, 1, 4, 4)
    meta = dict(img_shape=(16, 32, 3), scale_factor=[1.0, 1.0, 1.0, 1.0])
    ((dets, labels),) = head.get_bboxes([cls], [reg], [ctr], img_metas=[meta])
    assert labels.tolist() == [1]
    assert dets[0, :4].tolist() == [3.0, 16.0, 5.0, 16.0]
    assert float(dets[0, 4]) == pytest.approx(torch.sigmoid(torch.tensor(5.0)).item() * 0.5)


def test_simple_test_rescale_and_forward_train() -> None:
    head = _head()
    head.eval()
    metas = _metas()
    metas[1]["scale_factor"] = [0.5, 0.5, 0.5, 0.5]
    with torch.no_grad():
        plain = head.simple_test(_feats(), metas)
        rescaled = head.simple_test(_feats(), metas, rescale=True)
    torch.testing.assert_close(rescaled[1][0][:, :4], plain[1][0][:, :4] * 2)
    head.train()
    gts = [torch.tensor([[4.0, 6.0, 40.0, 30.0]])] * 2
    losses, dets = head.forward_train(
        _feats(), _metas(), gts, [torch.tensor([1])] * 2, proposal_cfg=TEST_CFG
    )
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_centerness"} and len(dets) == 2


def test_old_predictor_names_are_renamed_on_load() -> None:
    head = _head()
    state = OrderedDict(
        (k.replace("conv_cls", "fcos_cls").replace("conv_centerness", "fcos_centerness"), v)
        for k, v in head.state_dict().items()
    )
    fresh = _head()
    fresh.load_state_dict(state, strict=True)
    torch.testing.assert_close(fresh.conv_cls.weight, head.conv_cls.weight)


class _PointHead(AnchorFreeHead):
    def loss(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    def get_targets(self, *args: Any, **kwargs: Any) -> Any:
        return None


def test_anchor_free_base_head() -> None:
    with pytest.raises(TypeError, match="abstract"):  # v2: loss and get_targets are abstract
        AnchorFreeHead(num_classes=4, in_channels=8)  # type: ignore[abstract]
    head = _PointHead(num_classes=4, in_channels=8, feat_channels=8, stacked_convs=1, strides=[8])
    scores, boxes = head(_feats(1)[:1])
    assert scores[0].shape == (1, 4, 8, 8) and boxes[0].shape == (1, 4, 8, 8)
    assert head.num_base_priors == 1
    ((y, x),) = head.get_points([(2, 3)], torch.float32, "cpu", flatten=True)
    assert y.tolist() == [0, 0, 0, 1, 1, 1] and x.tolist() == [0, 1, 2, 0, 1, 2]
