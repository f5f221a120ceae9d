"""``fuse_conv_bn``: BN folded into the preceding conv, detections unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detforge.models.layers import ConvModule, DeformConv2dPack
from detforge.models.layers.fuse import fuse_conv_bn, fuse_conv_bn_pair
from tests.models.golden import dets_from_v2, fixture_metas, load_fixture


def _randomise_bn(model: nn.Module, seed: int = 0) -> int:
    """Give every BN non-trivial running statistics and affine parameters; return how many."""
    gen = torch.Generator().manual_seed(seed)
    count = 0
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.6 + 0.7)
            m.weight.data.mul_(torch.rand(n, generator=gen) * 0.4 + 0.8)
            m.bias.data.add_(torch.randn(n, generator=gen) * 0.05)
            count += 1
    return count


def _same_detections(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    """Row-by-row equal after sorting by score (atol 1e-4); returns the number of detections."""
    boxes_a, scores_a, labels_a = dets_from_v2(a)
    boxes_b, scores_b, labels_b = dets_from_v2(b)
    assert len(boxes_a) == len(boxes_b)
    np.testing.assert_allclose(scores_a, scores_b, atol=1e-4, rtol=0)
    np.testing.assert_allclose(boxes_a, boxes_b, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(labels_a, labels_b)
    return len(boxes_a)


@pytest.mark.parametrize("family", ["retinanet", "faster_rcnn"])
def test_fused_detector_gives_the_same_detections(family: str) -> None:
    model, inputs, _ = load_fixture(family)
    num_bn = _randomise_bn(model)
    model.eval()
    img, metas = inputs["img"][:1], fixture_metas(inputs)[:1]  # one image keeps it quick
    with torch.no_grad():
        before = model.simple_test(img, metas, rescale=True)
    fuse_conv_bn(model)
    assert not [m for m in model.modules() if isinstance(m, _BatchNorm)]  # every BN fused
    assert sum(isinstance(m, nn.Identity) for m in model.backbone.modules()) >= num_bn
    assert "backbone.bn1" not in dict(model.named_modules()) or isinstance(
        model.backbone.bn1, nn.Identity
    )
    with torch.no_grad():
        after = model.simple_test(img, metas, rescale=True)
    found = sum(_same_detections(a, b) for a, b in zip(before, after, strict=True))
    assert found > 0


def test_resnet_stem_block_and_downsample_pairs_are_fused() -> None:
    model, _, _ = load_fixture("retinanet")
    backbone = model.backbone.eval()
    _randomise_bn(backbone, seed=1)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = backbone(x)
        fuse_conv_bn(backbone)
        got = backbone(x)
    assert isinstance(backbone.bn1, nn.Identity)  # named conv1/bn1 stem
    assert isinstance(backbone.layer2[0].bn2, nn.Identity)  # named pair inside a block
    assert isinstance(backbone.layer2[0].downsample[1], nn.Identity)  # Sequential neighbours
    for w, g in zip(want, got, strict=True):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)


def test_pair_fusion_matches_bn_of_conv_with_and_without_bias() -> None:
    torch.manual_seed(0)
    for bias in (True, False):
        conv, bn = nn.Conv2d(4, 6, 3, groups=2, bias=bias), nn.BatchNorm2d(6)
        _randomise_bn(bn)
        bn.eval()
        x = torch.randn(2, 4, 9, 9)
        with torch.no_grad():
            want = bn(conv(x))
            got = fuse_conv_bn_pair(conv, bn)(x)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot fuse"):
        fuse_conv_bn_pair(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(5))


def test_pairs_that_are_not_adjacent_are_left_alone() -> None:
    pre_norm = ConvModule(
        4, 4, 3, padding=1, norm_cfg=dict(type="BN"), order=("norm", "conv", "act")
    )
    post_norm = ConvModule(4, 4, 3, padding=1, norm_cfg=dict(type="BN"))
    act_between = ConvModule(
        4, 4, 3, padding=1, norm_cfg=dict(type="BN"), order=("conv", "act", "norm")
    )
    no_act = ConvModule(
        4, 4, 3, padding=1, norm_cfg=dict(type="BN"), act_cfg=None, order=("conv", "act", "norm")
    )
    dcn = nn.Sequential(DeformConv2dPack(4, 4, 3, padding=1), nn.BatchNorm2d(4))
    gap = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4))
    model = nn.Sequential(pre_norm, post_norm, act_between, no_act, dcn, gap).eval()
    _randomise_bn(model)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        want = model(x)
        fuse_conv_bn(model)
        got = model(x)
    assert isinstance(pre_norm.bn, nn.BatchNorm2d)  # BN runs before the conv
    assert isinstance(post_norm.bn, nn.Identity) and post_norm.norm is post_norm.bn
    assert isinstance(act_between.bn, nn.BatchNorm2d)  # the ReLU runs between conv and BN
    assert isinstance(no_act.bn, nn.Identity)  # ('conv', 'act', 'norm') without an activation
    assert isinstance(dcn[1], nn.BatchNorm2d)  # deformable convs are not fused
    assert isinstance(gap[2], nn.BatchNorm2d)  # a ReLU sits between
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
