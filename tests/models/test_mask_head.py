"""FCNMaskHead, mask targets and mask pasting; Mask R-CNN's RoI head on edge cases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detforge.config import Config
from detforge.models import build_detector
from detforge.models.roi_heads import FCNMaskHead
from detforge.models.roi_heads.mask_heads import (
    GPU_MEM_LIMIT,
    _num_chunks,
    _paste_chunk,
    mask_target,
    merge_aug_masks,
    paste_masks,
)
from detforge.structures.masks import BitmapMasks, PolygonMasks

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TEST_CFG = dict(mask_thr_binary=0.5)


# ----------------------------------------------------------------------------- the head
@pytest.mark.parametrize(
    ("upsample", "out_size", "keys"),
    [
        (dict(type="deconv", scale_factor=2), 28, {"upsample.weight", "upsample.bias"}),
        (dict(type="nearest", scale_factor=2), 28, set()),
        (dict(type="bilinear", scale_factor=4), 56, set()),
        (dict(type=None), 14, set()),
    ],
)
def test_forward_shapes_and_state_dict(upsample: Any, out_size: int, keys: set[str]) -> None:
    head = FCNMaskHead(
        num_convs=2, in_channels=8, conv_out_channels=6, num_classes=3, upsample_cfg=upsample
    )
    out = head(torch.rand(4, 8, 14, 14))
    assert out.shape == (4, 3, out_size, out_size)
    expected = {f"convs.{i}.conv.{p}" for i in range(2) for p in ("weight", "bias")}
    expected |= {"conv_logits.weight", "conv_logits.bias"} | keys
    assert set(head.state_dict()) == expected


def test_class_agnostic_norm_and_no_convs() -> None:
    head = FCNMaskHead(
        num_convs=1,
        in_channels=8,
        conv_out_channels=8,
        class_agnostic=True,
        norm_cfg=dict(type="GN", num_groups=2),
    )
    assert head(torch.rand(2, 8, 14, 14)).shape == (2, 1, 28, 28)
    assert "convs.0.gn.weight" in head.state_dict()
    assert "convs.0.conv.bias" not in head.state_dict()  # ConvModule drops the bias before a norm
    bare = FCNMaskHead(num_convs=0, in_channels=5, conv_out_channels=7, num_classes=2)
    assert bare.upsample is not None and bare.upsample.in_channels == 5
    assert bare(torch.rand(1, 5, 14, 14)).shape == (1, 2, 28, 28)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(upsample_cfg=dict(type="carafe", scale_factor=2, up_kernal=5)), "up_kernal"),
        (dict(upsample_cfg=dict(type="pixel_shuffle", scale_factor=2)), "pixel_shuffle"),
        (dict(upsample_cfg=dict(type="deconv")), "scale_factor"),
        (dict(upsample_cfg=dict(type="deconv", scale_factor=2, mode="x")), "mode"),
        (dict(init_cfg=dict(type="Normal")), "init_cfg"),
    ],
)
def test_bad_arguments_are_named(kwargs: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FCNMaskHead(**kwargs)


def test_carafe_upsampling_has_v2_keys_and_initialises_itself() -> None:
    head = FCNMaskHead(
        num_convs=1,
        in_channels=4,
        conv_out_channels=6,
        num_classes=3,
        upsample_cfg=dict(type="carafe", scale_factor=2, up_kernel=3, compressed_channels=2),
    )
    keys = [k for k in head.state_dict() if k.startswith("upsample.")]
    assert keys == [
        "upsample.channel_compressor.weight",
        "upsample.channel_compressor.bias",
        "upsample.content_encoder.weight",
        "upsample.content_encoder.bias",
    ]
    assert head.upsample_cfg["up_kernel"] == 3 and head.conv_logits.in_channels == 6
    assert head(torch.rand(2, 4, 14, 14)).shape == (2, 3, 28, 28)
    torch.nn.init.constant_(head.upsample.content_encoder.weight, 1.0)
    head.init_weights()
    assert head.upsample.content_encoder.weight.std() < 0.01  # CARAFE's Normal(std=0.001)


def test_init_weights() -> None:
    head = FCNMaskHead(num_convs=1, in_channels=4, conv_out_channels=4, num_classes=2)
    for module in (head.upsample, head.conv_logits):
        torch.nn.init.constant_(module.bias, 3.0)
    head.init_weights()
    assert head.conv_logits.bias.abs().max() == 0 and head.upsample.bias.abs().max() == 0
    assert head.convs[0].conv.bias.abs().max() == 0
    assert head.conv_logits.weight.std() > 0


# ----------------------------------------------------------------------------- targets + loss
def test_mask_target_crops_the_assigned_mask_and_clips_boxes() -> None:
    masks = np.zeros((2, 20, 30), np.uint8)
    masks[0, :10] = 1  # top half
    masks[1, :, 15:] = 1  # right half
    gt = BitmapMasks(masks, 20, 30)
    boxes = torch.tensor([[-8.0, -8.0, 8.0, 8.0], [16.0, 2.0, 28.0, 18.0], [0.0, 12.0, 10.0, 20.0]])
    inds = torch.tensor([0, 1, 0])
    targets = mask_target([boxes], [inds], [gt], dict(mask_size=4))
    assert targets.shape == (3, 4, 4) and targets.dtype == torch.float32
    # box 0 is clipped to [0, 0, 8, 8] (inside the on region): all ones; unclipped, RoIAlign
    # would sample the zero border
    assert targets[0].min() == 1
    assert targets[1].min() == 1  # inside the right half of mask 1
    assert targets[2].max() == 0  # bottom of mask 0
    polys = PolygonMasks([[np.array([0, 0, 30, 0, 30, 10, 0, 10], float)]] * 2, 20, 30)
    from_polys = mask_target([boxes[:1]], [inds[:1]], [polys], dict(mask_size=4))
    assert from_polys.min() == 1


def test_soft_mask_targets_and_empty_images() -> None:
    masks = np.zeros((1, 8, 8), np.uint8)
    masks[0, :, :3] = 1
    gt = BitmapMasks(masks, 8, 8)
    box = torch.tensor([[0.0, 0.0, 8.0, 8.0]])
    soft = mask_target([box], [torch.tensor([0])], [gt], dict(mask_size=2, soft_mask_target=True))
    hard = mask_target([box], [torch.tensor([0])], [gt], dict(mask_size=2))
    # bin (0, 0) samples x = 0.5 (value 1) and x = 2.5 (between columns 2 and 3: 0.5)
    assert soft[0, :, 0].tolist() == [0.75, 0.75] and soft[0, :, 1].max() == 0
    assert hard[0].tolist() == [[1.0, 0.0], [1.0, 0.0]]
    no_inds = torch.zeros(0, dtype=torch.long)
    empty = mask_target(
        [torch.zeros(0, 4), box], [no_inds, torch.tensor([0])], [gt, gt], dict(mask_size=2)
    )
    assert empty.shape == (1, 2, 2)
    with pytest.raises(TypeError, match="gt_masks"):
        mask_target([box], [torch.tensor([0])], [[masks]], dict(mask_size=2))


def test_loss_picks_each_roi_class_and_is_zero_without_rois() -> None:
    head = FCNMaskHead(num_convs=0, in_channels=2, num_classes=3)
    pred = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = (torch.rand(2, 4, 4) > 0.5).float()
    labels = torch.tensor([2, 0])
    loss = head.loss(pred, target, labels)["loss_mask"]
    want = F.binary_cross_entropy_with_logits(pred[[0, 1], [2, 0]], target)
    torch.testing.assert_close(loss.sum(), want)
    empty = head.loss(pred[:0], target[:0], labels[:0])["loss_mask"]
    assert float(empty.detach()) == 0 and empty.requires_grad
    agnostic = FCNMaskHead(num_convs=0, in_channels=2, class_agnostic=True)
    loss1 = agnostic.loss(pred[:, :1], target, labels)["loss_mask"]
    torch.testing.assert_close(loss1.sum(), F.binary_cross_entropy_with_logits(pred[:, 0], target))


# ----------------------------------------------------------------------------- pasting
def _slow_paste(prob: np.ndarray, box: np.ndarray, img_h: int, img_w: int) -> np.ndarray:
    """Bilinear sample of ``prob [h, w]`` (zero outside) at each pixel centre of the box."""
    h, w = prob.shape
    out = np.zeros((img_h, img_w))
    x0, y0, x1, y1 = box
    for y in range(img_h):
        for x in range(img_w):
            u = (x + 0.5 - x0) / (x1 - x0) * w - 0.5
            v = (y + 0.5 - y0) / (y1 - y0) * h - 0.5
            iu, iv = math.floor(u), math.floor(v)
            for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                yy, xx = iv + dy, iu + dx
                if 0 <= yy < h and 0 <= xx < w:
                    weight = (1 - abs(u - xx)) * (1 - abs(v - yy))
                    out[y, x] += weight * prob[yy, xx]
    return out


def test_paste_matches_slow_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(2, 1, 5, 7, generator=gen)
    boxes = torch.tensor([[2.3, 1.7, 14.6, 9.1], [-3.0, 4.0, 6.5, 16.2]])
    pasted, region = _paste_chunk(probs, boxes, 15, 18, skip_empty=False)
    assert region == ()
    for i in range(2):
        want = _slow_paste(probs[i, 0].numpy(), boxes[i].numpy(), 15, 18)
        np.testing.assert_allclose(pasted[i].numpy(), want, atol=1e-5)


def test_chunked_paste_equals_unchunked() -> None:
    gen = torch.Generator().manual_seed(1)
    probs = torch.rand(7, 1, 28, 28, generator=gen) * 0.99
    xy = torch.rand(7, 2, generator=gen) * 40
    boxes = torch.cat([xy, xy + 5 + torch.rand(7, 2, generator=gen) * 30], dim=1)
    for threshold in (0.5, -1.0):
        whole = paste_masks(probs, boxes, 50, 60, threshold, skip_empty=False, num_chunks=1)
        chunked = paste_masks(probs, boxes, 50, 60, threshold, skip_empty=False, num_chunks=3)
        assert torch.equal(whole, chunked)
        assert whole.dtype == (torch.bool if threshold >= 0 else torch.uint8)
    # per-instance pasting on the region around each box (the CPU default): same binary masks
    default = paste_masks(probs, boxes, 50, 60, 0.5)
    assert torch.equal(default, paste_masks(probs, boxes, 50, 60, 0.5, skip_empty=False))
    assert default.any()


def test_chunk_count_keeps_chunks_under_the_memory_limit() -> None:
    assert _num_chunks(100, 800, 1333, on_cpu=True, mem_limit=GPU_MEM_LIMIT) == 100
    assert _num_chunks(100, 800, 1333, on_cpu=False, mem_limit=GPU_MEM_LIMIT) == 1
    limit = 100 * 1024**2
    chunks = _num_chunks(100, 800, 1333, on_cpu=False, mem_limit=limit)
    assert chunks == math.ceil(100 * 800 * 1333 * 4 / limit)
    assert math.ceil(100 / chunks) * 800 * 1333 * 4 <= limit * 1.05
    assert _num_chunks(0, 800, 1333, on_cpu=False, mem_limit=limit) == 0
    with pytest.raises(MemoryError, match="mem_limit"):
        _num_chunks(3, 800, 1333, on_cpu=False, mem_limit=1000)


def test_hundred_instances_on_a_full_size_image() -> None:
    gen = torch.Generator().manual_seed(2)
    xy = torch.rand(100, 2, generator=gen) * torch.tensor([1200.0, 700.0])
    boxes = torch.cat([xy, xy + 10 + torch.rand(100, 2, generator=gen) * 120], dim=1)
    pasted = paste_masks(torch.ones(100, 1, 28, 28), boxes, 800, 1333)
    assert pasted.shape == (100, 800, 1333) and pasted.dtype == torch.bool
    x0, y0, x1, y1 = boxes[0].tolist()
    assert pasted[0, int(y0 + y1) // 2, int(x0 + x1) // 2]
    assert not pasted[0, :, : max(int(x0) - 1, 0)].any()


def test_get_seg_masks_shapes_classes_and_rescale() -> None:
    head = FCNMaskHead(num_convs=0, in_channels=2, num_classes=3)
    logits = torch.full((3, 3, 28, 28), 5.0)
    boxes = torch.tensor([[10.0, 10.0, 40.0, 30.0, 0.9], [0, 0, 20, 20, 0.8], [5, 5, 9, 9, 0.7]])
    labels = torch.tensor([2, 0, 2])
    scale = np.array([0.5, 0.4, 0.5, 0.4], np.float32)
    segms = head.get_seg_masks(logits, boxes, labels, TEST_CFG, (100, 120, 3), scale, True)
    assert [len(s) for s in segms] == [1, 0, 2]
    assert all(m.shape == (100, 120) and m.dtype == bool for s in segms for m in s)
    # rescale: the box [10, 10, 40, 30] becomes [20, 25, 80, 75] in the original image
    assert segms[2][0][50, 50] and segms[2][0][:, 81:].sum() == 0 and segms[2][0][:24].sum() == 0
    small = head.get_seg_masks(logits, boxes, labels, TEST_CFG, (100, 120, 3), scale, False)
    assert small[2][0].shape == (40, 60)  # round(100 * 0.4), round(120 * 0.5)
    soft = head.get_seg_masks(
        logits, boxes, labels, dict(mask_thr_binary=-1), (100, 120), 1.0, True
    )
    assert soft[0][0].dtype == np.uint8 and soft[0][0].max() == int(
        torch.sigmoid(torch.tensor(5.0)) * 255
    )
    none = head.get_seg_masks(logits[:0], boxes[:0], labels[:0], TEST_CFG, (10, 10), 1.0, True)
    assert none == [[], [], []]
    with pytest.raises(ValueError, match="masks for"):
        head.get_seg_masks(logits, boxes[:2], labels, TEST_CFG, (10, 10), 1.0, True)


def test_merge_aug_masks_undoes_flips() -> None:
    mask = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 4)
    metas = [[dict(flip=False)], [dict(flip=True, flip_direction="horizontal")]]
    merged = merge_aug_masks([mask, mask[..., ::-1]], metas)
    np.testing.assert_array_equal(merged, mask)
    diag = [[dict(flip=True, flip_direction="diagonal")]]
    np.testing.assert_array_equal(merge_aug_masks([mask[..., ::-1, ::-1]], diag), mask)


# ----------------------------------------------------------------------------- RoI head
def _tiny_mask_rcnn(share_extractor: bool = False) -> Any:
    cfg = Config.fromfile(CONFIGS / "_base_" / "models" / "mask_rcnn_r50_fpn.py").model
    cfg.backbone.update(depth=18, base_channels=16, init_cfg=None)
    cfg.neck.update(in_channels=[16, 32, 64, 128], out_channels=32)
    cfg.rpn_head.update(in_channels=32, feat_channels=32)
    roi = cfg.roi_head
    roi.bbox_roi_extractor.out_channels = 32
    roi.bbox_head.update(in_channels=32, fc_out_channels=64)
    roi.mask_roi_extractor.out_channels = 32
    roi.mask_head.update(in_channels=32, conv_out_channels=32)
    if share_extractor:
        roi.mask_roi_extractor = None
        cfg.train_cfg.rcnn.mask_size = 14  # the shared 7x7 features give 14x14 masks
    torch.manual_seed(0)
    return build_detector(cfg)


def _batch(num_gts: int) -> tuple[Any, ...]:
    img = torch.randn(1, 3, 64, 96)
    meta = dict(img_shape=(64, 96, 3), ori_shape=(128, 192, 3), pad_shape=(64, 96, 3),
                scale_factor=np.array([0.5] * 4, np.float32), flip=False,
                batch_input_shape=(64, 96))  # fmt: skip
    boxes = torch.tensor([[10.0, 8.0, 50.0, 40.0], [40.0, 20.0, 90.0, 60.0]])[:num_gts]
    masks = np.zeros((num_gts, 64, 96), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        masks[i, y0:y1, x0:x1] = 1
    labels = torch.tensor([3, 7])[:num_gts]
    return img, [meta], [boxes], [labels], [BitmapMasks(masks, 64, 96)]


@pytest.mark.parametrize("share_extractor", [False, True])
def test_training_with_and_without_gt(share_extractor: bool) -> None:
    model = _tiny_mask_rcnn(share_extractor)
    model.train()
    img, metas, boxes, labels, masks = _batch(2)
    losses = model.forward_train(img, metas, boxes, labels, None, masks)
    assert losses["loss_mask"].item() > 0 and torch.isfinite(losses["loss_mask"]).all()
    img, metas, boxes, labels, masks = _batch(0)
    losses = model.forward_train(img, metas, boxes, labels, None, masks)
    assert float(losses["loss_mask"].detach().sum()) == 0  # no positive RoI: zero, like v2
    sum(v.sum() for k, v in losses.items() if k == "loss_mask").backward()
    with pytest.raises(ValueError, match="gt_masks"):
        model.forward_train(img, metas, boxes, labels, None, None)


def test_simple_test_results_form_and_shapes() -> None:
    model = _tiny_mask_rcnn()
    model.roi_head.test_cfg = dict(model.roi_head.test_cfg, score_thr=0.0, max_per_img=5)
    model.eval()
    img, metas, *_ = _batch(0)
    with torch.no_grad():
        for rescale, shape in ((True, (128, 192)), (False, (64, 96))):
            ((bbox_result, segm_result),) = model.simple_test(img, metas, rescale=rescale)
            assert len(bbox_result) == len(segm_result) == 80
            assert [len(b) for b in bbox_result] == [len(s) for s in segm_result]
            assert sum(len(s) for s in segm_result) == 5
            assert all(m.shape == shape and m.dtype == bool for s in segm_result for m in s)
        outs = model.forward_dummy(img)
        assert outs[-1][-1].shape == (100, 80, 28, 28)


def test_no_detections_give_empty_mask_lists() -> None:
    model = _tiny_mask_rcnn()
    model.roi_head.test_cfg = dict(model.roi_head.test_cfg, score_thr=1.1)
    model.eval()
    img, metas, *_ = _batch(0)
    with torch.no_grad():
        ((bbox_result, segm_result),) = model.simple_test(img, metas, rescale=True)
    assert segm_result == [[] for _ in range(80)] and all(len(b) == 0 for b in bbox_result)


def test_mask_roi_extractor_without_mask_head_is_an_error() -> None:
    cfg = Config.fromfile(CONFIGS / "_base_" / "models" / "mask_rcnn_r50_fpn.py").model
    cfg.roi_head.mask_head = None
    with pytest.raises(ValueError, match="mask_roi_extractor"):
        build_detector(cfg)
