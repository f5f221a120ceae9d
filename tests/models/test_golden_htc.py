"""Golden parity with MMDetection: the Hybrid Task Cascade fixture (fixtures/mmdet/htc, HTC
without its semantic branch; the semantic branch is in test_golden_zoo3.py).

Neck features, proposals, detections with and without rescale, the masks of the rescaled
detections (MMDetection 3.3 pastes the last stage's mask prediction where v2 averages the three
stages'; see tests/data/goldens/htc/README.md), the per-stage losses (interleaved mask
training, mask information flow) and every gradient norm; the full-size layout of
htc-without-semantic R-50; and properties of the RoI head (empty ground truth, missing inputs
named, no proposals, configuration errors).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config, load_config
from detforge.models import build_detector
from detforge.models.detectors import HybridTaskCascade, parse_losses
from detforge.models.roi_heads import HTCMaskHead, HybridTaskCascadeRoIHead
from detforge.models.roi_heads.base_roi_head import scale_factor_tensor
from detforge.structures.bbox import bbox2roi
from detforge.structures.masks import BitmapMasks
from tests.models.golden import FIXTURES, fixture_metas, load_fixture, match_dets
from tests.models.zoo3_goldens import CONFIGS, assert_masks_match, rows_with_masks

STAGE_NAMES = ["loss_cls", "acc", "loss_bbox", "loss_mask"]


@pytest.fixture(scope="module")
def golden() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    model, inputs, expected = load_fixture("htc")
    model.eval()
    return model, inputs, expected


@pytest.fixture(scope="module")
def golden_results(golden: Any) -> dict[bool, list[Any]]:
    model, inputs, _ = golden
    with torch.no_grad():
        return {
            r: model.simple_test(inputs["img"], fixture_metas(inputs), rescale=r)
            for r in (False, True)
        }


def _gt_masks(inputs: dict[str, Any]) -> list[BitmapMasks]:
    return [BitmapMasks(m, m.shape[1], m.shape[2]) for m in inputs["gt_masks"]]


def _forward_train(model: Any, inputs: dict[str, Any], empty: bool = False) -> dict[str, Any]:
    n = len(inputs["gt_bboxes"])
    boxes, labels, masks = list(inputs["gt_bboxes"]), list(inputs["gt_labels"]), _gt_masks(inputs)
    if empty:
        boxes = [torch.zeros(0, 4)] * n
        labels = [torch.zeros(0, dtype=torch.long)] * n
        masks = [
            BitmapMasks(np.zeros((0, *m.masks.shape[1:]), np.uint8), *m.masks.shape[1:])
            for m in masks
        ]
    losses: dict[str, Any] = model.forward_train(
        inputs["img"],
        fixture_metas(inputs),
        boxes,
        labels,
        list(inputs["gt_bboxes_ignore"]),
        masks,
    )
    return losses


def test_model_layout(golden: Any) -> None:
    model, _, _ = golden
    assert isinstance(model, HybridTaskCascade) and not model.with_semantic
    head = model.roi_head
    assert isinstance(head, HybridTaskCascadeRoIHead) and head.interleaved and head.mask_info_flow
    assert [isinstance(h, HTCMaskHead) for h in head.mask_head] == [True] * 3
    assert [h.with_conv_res for h in head.mask_head] == [False, True, True]
    keys = set(model.state_dict())
    assert "roi_head.mask_head.1.conv_res.conv.weight" in keys
    assert not any(k.startswith("roi_head.mask_head.0.conv_res") for k in keys)


def test_neck_features(golden: Any) -> None:
    model, inputs, expected = golden
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rescale", [False, True])
def test_detections(golden: Any, golden_results: Any, rescale: bool) -> None:
    _, _, expected = golden
    key = "dets_rescaled" if rescale else "dets"
    for (bbox_result, segm_result), want in zip(
        golden_results[rescale], expected[key], strict=True
    ):
        assert len(bbox_result) == len(segm_result) == 80
        match_dets(bbox_result, want)


def _stage_masks(
    model: Any, inputs: dict[str, Any], results: list[Any], stages: list[int]
) -> list[list[tuple[np.ndarray, int, np.ndarray]]]:
    """Per image, ``rows_with_masks`` of the rescaled ``results`` with the masks pasted again
    from the mean of the sigmoid mask predictions of ``stages`` only (same RoIs as the test
    path: the boxes in the network-input frame)."""
    head = model.roi_head
    metas = fixture_metas(inputs)
    out = []
    with torch.no_grad():
        x = model.extract_feat(inputs["img"])
        for i, (bbox_result, segm_result) in enumerate(results):
            rows = rows_with_masks(bbox_result, segm_result)
            factor = scale_factor_tensor(metas[i]["scale_factor"], torch.zeros(1))
            boxes = torch.from_numpy(np.stack([r[0][:4] for r in rows])) * factor
            labels = torch.tensor([r[1] for r in rows])
            logits = head._stage_mask_logits([f[i : i + 1] for f in x], bbox2roi([boxes]))
            probs = np.mean([logits[s].sigmoid().numpy() for s in stages], axis=0)
            segms = head._paste_head.get_seg_masks(
                probs, boxes, labels, head.test_cfg, metas[i]["ori_shape"], factor, True
            )
            masks = iter([m for label in sorted(set(labels.tolist())) for m in segms[label]])
            order = np.argsort(labels.numpy(), kind="stable")
            pasted: list[np.ndarray] = [np.zeros(0)] * len(rows)
            for k in order:
                pasted[k] = next(masks)
            out.append([(r[0], r[1], m) for r, m in zip(rows, pasted, strict=True)])
    return out


def test_last_stage_masks_match_mmdetection_3_3(golden: Any, golden_results: Any) -> None:
    """MMDetection 3.3.0's ``HybridTaskCascadeRoIHead._mask_forward(training=False)`` appends
    to ``aug_masks`` after its stage loop, so its masks come from the last stage's mask head
    alone (v2.28 averages the three stages' probabilities, as detforge does). Pasted from the
    last stage only, our masks equal the fixture's: RoIs, RoI features, the chained mask
    heads and the pasting match MMDetection."""
    model, inputs, expected = golden
    last = _stage_masks(model, inputs, golden_results[True], [2])
    for i, rows in enumerate(last):
        assert_masks_match(rows, expected["dets_rescaled"][i], expected["masks"][i], 0.99)
        assert rows[0][2].shape == tuple(inputs["img_metas"][i]["ori_shape"][:2])


def test_masks_of_rescaled_detections_average_the_stages(golden: Any, golden_results: Any) -> None:
    """v2.28 semantics: the test masks are pasted from the mean of the three stages' sigmoid
    mask predictions, not from the last stage's (MMDetection 3.3's fixture masks)."""
    model, inputs, _ = golden
    mean = _stage_masks(model, inputs, golden_results[True], [0, 1, 2])
    last = _stage_masks(model, inputs, golden_results[True], [2])
    for i, (bbox_result, segm_result) in enumerate(golden_results[True]):
        rows = rows_with_masks(bbox_result, segm_result)
        for got, want in zip(rows, mean[i], strict=True):
            assert got[2].dtype == bool
            np.testing.assert_array_equal(got[2], want[2])
        differ = sum(not np.array_equal(a[2], b[2]) for a, b in zip(rows, last[i], strict=True))
        assert differ > len(rows) // 2  # the stage mean is not the last stage's mask


def test_losses_and_gradients(one_thread: Any) -> None:
    model, inputs, expected = load_fixture("htc")
    model.train()
    losses = _forward_train(model, inputs)
    names = ["loss_rpn_cls", "loss_rpn_bbox"] + [f"s{i}.{n}" for i in range(3) for n in STAGE_NAMES]
    assert list(losses) == names
    loss, log_vars = parse_losses(losses)
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for name, values in expected["losses_per_level"].items():
        got = [float(v.detach()) for v in losses[name]]
        assert got == pytest.approx(values, rel=1e-5, abs=1e-6), name
    loss.backward()
    params = dict(model.named_parameters())
    assert {n for n, p in params.items() if p.grad is not None} == set(expected["grads_all"])
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-4, abs=1e-8), name


def test_full_size_layout() -> None:
    path = FIXTURES / "layouts" / "htc_r50.json"
    if not path.is_file():
        pytest.skip(f"layout {path} not found")
    layout = json.loads(path.read_text())
    cfg = load_config(CONFIGS / "htc" / "htc_without_semantic_r50_fpn_1x_coco.py", environ={}).cfg
    model = build_detector(cfg.model)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == layout["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == layout["num_params"]


# -------------------------------------------------------------------------------- properties
def test_empty_ground_truth(golden: Any) -> None:
    model, inputs, _ = golden
    model.train()
    try:
        with torch.no_grad():
            losses = _forward_train(model, inputs, empty=True)
    finally:
        model.eval()
    for i in range(3):
        assert float(losses[f"s{i}.loss_cls"]) > 0
        assert float(losses[f"s{i}.loss_bbox"]) == 0
        assert float(losses[f"s{i}.loss_mask"]) == 0


def test_no_proposals_gives_empty_results(golden: Any) -> None:
    model, inputs, _ = golden
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        results = model.roi_head.simple_test(feats, [torch.zeros(0, 5)] * 2, fixture_metas(inputs))
    for bbox_result, segm_result in results:
        assert all(a.shape == (0, 5) for a in bbox_result)
        assert all(m == [] for m in segm_result)


def test_not_interleaved_trains_masks_on_the_box_branch_rois(golden: Any) -> None:
    """Without interleaving, stage i's mask head learns on the RoIs its box head saw: the
    mask losses change, the box losses do not."""
    model, inputs, _ = golden
    model.train()
    try:
        with torch.no_grad():
            torch.manual_seed(0)
            interleaved = _forward_train(model, inputs)
            model.roi_head.interleaved = False
            torch.manual_seed(0)
            plain = _forward_train(model, inputs)
    finally:
        model.roi_head.interleaved = True
        model.eval()
    for i in range(3):
        for name in ("loss_cls", "loss_bbox"):
            assert float(plain[f"s{i}.{name}"]) == float(interleaved[f"s{i}.{name}"])
        assert float(plain[f"s{i}.loss_mask"]) != float(interleaved[f"s{i}.loss_mask"])


def _tiny_cfg(**roi_overrides: Any) -> dict[str, Any]:
    root = FIXTURES / "htc"
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    cfg: dict[str, Any] = copy.deepcopy(Config.fromfile(root / "model.py").model.to_dict())
    cfg["roi_head"].update(roi_overrides)
    return cfg


def test_semantic_head_needs_gt_semantic_seg() -> None:
    cfg = _tiny_cfg(
        semantic_roi_extractor=dict(
            type="SingleRoIExtractor",
            roi_layer=dict(type="RoIAlign", output_size=14, sampling_ratio=0),
            out_channels=32,
            featmap_strides=[8],
        ),
        semantic_head=dict(
            type="FusedSemanticHead",
            num_ins=5,
            fusion_level=1,
            num_convs=1,
            in_channels=32,
            conv_out_channels=32,
            num_classes=183,
        ),
    )
    model = build_detector(cfg)
    assert model.with_semantic
    img = torch.randn(1, 3, 64, 64)
    meta = dict(
        img_shape=(64, 64, 3),
        ori_shape=(64, 64, 3),
        pad_shape=(64, 64, 3),
        scale_factor=np.ones(4, np.float32),
        flip=False,
    )
    gt = ([torch.tensor([[4.0, 4.0, 40.0, 40.0]])], [torch.tensor([1])])
    masks = np.zeros((1, 64, 64), np.uint8)
    masks[0, 4:40, 4:40] = 1
    with pytest.raises(ValueError, match="gt_semantic_seg"):
        model.forward_train(img, [meta], *gt, None, [BitmapMasks(masks, 64, 64)])
    seg = torch.full((1, 1, 8, 8), 255, dtype=torch.uint8)
    seg[:, :, :5, :5] = 1
    losses = model.forward_train(
        img, [meta], *gt, None, [BitmapMasks(masks, 64, 64)], gt_semantic_seg=seg
    )
    assert list(losses)[2] == "loss_semantic_seg" and float(losses["loss_semantic_seg"]) > 0
    with pytest.raises(ValueError, match="does not match the prediction"):
        model.forward_train(
            img, [meta], *gt, None, [BitmapMasks(masks, 64, 64)], gt_semantic_seg=seg[..., :4]
        )


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            dict(semantic_head=dict(type="FusedSemanticHead", num_ins=5, fusion_level=1)),
            "given together",
        ),
        (dict(semantic_fusion=("bbox", "segm")), "semantic_fusion"),
        (
            dict(mask_head=dict(type="FCNMaskHead", in_channels=32, conv_out_channels=32)),
            "mask_info_flow needs HTCMaskHeads",
        ),
    ],
)
def test_bad_configs_are_named(overrides: dict[str, Any], match: str) -> None:
    cfg = _tiny_cfg(**overrides)
    with pytest.raises(Exception, match=match):
        build_detector(cfg)
