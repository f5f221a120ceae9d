"""Deformable RoI pooling: mmcv's kernel outputs and gradients (tests/data/goldens/
deform_roi_pool, mmcv's CUDA source compiled for the CPU by tools/goldens/deform_roi_pool.py),
the ``*Pack`` layers with mmcv's keys, RoIAlign equivalence without offsets, and edge cases."""

from __future__ import annotations

import pytest
import torch
import torchvision

from detforge.ops import DeformRoIPoolPack, ModulatedDeformRoIPoolPack, deform_roi_pool
from tests.models.v2_goldens import assert_close, load

NAME = "deform_roi_pool"


def test_kernel_matches_mmcv() -> None:
    inputs, expected = load(NAME, "input.pt"), load(NAME, "expected.pt")
    out = deform_roi_pool(inputs["feats"], inputs["rois"], inputs["offset"], 7, 0.25, 2, 0.2)
    assert_close(out, expected["kernel"], "kernel")


def test_gradients_match_mmcv_inside_the_map() -> None:
    inputs, expected = load(NAME, "input.pt"), load(NAME, "expected.pt")
    feats = inputs["feats"].clone().requires_grad_()
    offset = expected["inner_offset"].clone().requires_grad_()
    out = deform_roi_pool(feats, expected["inner_rois"], offset, 7, 0.25, 0, 0.1)
    out.backward(expected["grad_out"])
    assert feats.grad is not None and offset.grad is not None
    assert_close(feats.grad, expected["grad_input"], "grad_input")
    assert_close(offset.grad, expected["grad_offset"], "grad_offset")


@pytest.mark.parametrize(
    ("key", "cls"), [("dpool", DeformRoIPoolPack), ("mdpool", ModulatedDeformRoIPoolPack)]
)
def test_pack_layers_match_mmcv(key: str, cls: type[DeformRoIPoolPack]) -> None:
    inputs, expected = load(NAME, "input.pt"), load(NAME, "expected.pt")
    layer = cls(7, output_channels=8, deform_fc_channels=16, spatial_scale=0.25)
    layer.load_state_dict(load(NAME, "weights.pt")[key], strict=True)
    with torch.no_grad():
        out = layer(inputs["feats"], inputs["rois"])
        plain = deform_roi_pool(inputs["feats"], inputs["rois"], None, 7, 0.25)
        offset = layer._offsets(plain)
    assert_close(offset, expected[f"{key}_offset"], f"{key} offsets")
    assert_close(out, expected[key], key)


def test_without_offsets_it_is_aligned_roi_align() -> None:
    torch.manual_seed(0)
    feats = torch.randn(2, 3, 13, 17)
    xy = torch.rand(30, 2) * 70 - 10
    rois = torch.cat([torch.randint(0, 2, (30, 1)).float(), xy, xy + torch.rand(30, 2) * 40], 1)
    for ratio in (0, 2):
        want = torchvision.ops.roi_align(feats, rois, 7, 0.25, ratio, aligned=True)
        torch.testing.assert_close(deform_roi_pool(feats, rois, None, 7, 0.25, ratio), want)


def test_edge_cases() -> None:
    feats = torch.rand(1, 2, 8, 8, requires_grad=True)
    empty = deform_roi_pool(feats, torch.zeros(0, 5), None, (2, 3))
    assert empty.shape == (0, 2, 2, 3)
    empty.sum().backward()  # stays in the graph
    flipped = torch.tensor([[0.0, 10.0, 10.0, 2.0, 2.0]])  # x2 < x1: no samples, zeros (mmcv)
    assert deform_roi_pool(feats, flipped, None, 2).abs().sum() == 0
    with pytest.raises(ValueError, match=r"rois must be \[K, 5\]"):
        deform_roi_pool(feats, torch.zeros(3, 4), None, 2)
    with pytest.raises(ValueError, match=r"offset must be \[1, 2, 2, 2\]"):
        deform_roi_pool(feats, flipped, torch.zeros(1, 2, 3, 3), 2)
    with pytest.raises(ValueError, match="output_channels=4"):
        DeformRoIPoolPack(2, output_channels=4, deform_fc_channels=4)(feats, flipped)


def test_pack_keys_and_initial_behaviour() -> None:
    layer = ModulatedDeformRoIPoolPack(7, output_channels=4, deform_fc_channels=8)
    assert [k for k in layer.state_dict()] == [
        "offset_fc.0.weight",
        "offset_fc.0.bias",
        "offset_fc.2.weight",
        "offset_fc.2.bias",
        "offset_fc.4.weight",
        "offset_fc.4.bias",
        "mask_fc.0.weight",
        "mask_fc.0.bias",
        "mask_fc.2.weight",
        "mask_fc.2.bias",
    ]
    feats, rois = torch.rand(1, 4, 16, 16), torch.tensor([[0.0, 2.0, 3.0, 12.0, 14.0]])
    with torch.no_grad():
        plain = deform_roi_pool(feats, rois, None, 7)
        torch.testing.assert_close(DeformRoIPoolPack(7, 4, 8)(feats, rois), plain)
        torch.testing.assert_close(layer(feats, rois), plain * 0.5)
