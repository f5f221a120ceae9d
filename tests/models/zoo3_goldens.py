"""Loading the Model zoo III goldens (tests/data/goldens/{htc,scnet,ms_rcnn,point_rend},
made by tools/goldens/*.py with MMDetection 3.3; see tests/data/goldens/zoo3_README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from detforge.structures.masks import BitmapMasks, rle_decode

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: torch.manual_seed before the training losses (PointRend samples random points)
LOSS_SEED = 0


def zoo3_inputs() -> dict[str, Any]:
    """The batch every zoo III golden uses: ``img`` as float32, ``gt_masks`` as
    ``BitmapMasks`` (stored as float16 and packed bits)."""
    raw = torch.load(GOLDENS / "zoo3_inputs.pt", weights_only=False)
    inputs = dict(raw, img=raw["img"].float())
    masks = []
    for packed in raw["gt_masks"]:
        n, h, w = packed["shape"]
        bits = np.unpackbits(packed["bits"])[: n * h * w].reshape(n, h, w)
        masks.append(BitmapMasks(bits.astype(np.uint8), h, w))
    inputs["gt_masks"] = masks
    inputs["img_metas"] = [dict(meta) for meta in raw["img_metas"]]
    return inputs


def load_zoo3(family: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``(model, inputs, expected)`` of ``tests/data/goldens/<family>`` (weights loaded
    strictly, eval mode)."""
    root = GOLDENS / family
    if not root.is_dir():
        pytest.skip(f"golden {root} not found")
    model = build_detector(Config.fromfile(root / "model.py").model)
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model.eval()
    expected = torch.load(root / "expected.pt", weights_only=True)
    return model, zoo3_inputs(), expected


def forward_train(model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """The golden batch's training losses (``gt_semantic_seg`` when the model has a semantic
    branch), after ``torch.manual_seed(LOSS_SEED)``."""
    extra = {}
    if getattr(model, "with_semantic", False):
        extra["gt_semantic_seg"] = inputs["gt_semantic_seg"]
    torch.manual_seed(LOSS_SEED)
    losses: dict[str, Any] = model.forward_train(
        inputs["img"],
        [dict(m) for m in inputs["img_metas"]],
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
        inputs["gt_masks"],
        **extra,
    )
    return losses


def rows_with_masks(
    bbox_result: list[np.ndarray], segm_result: list[list[np.ndarray]]
) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """``(box_and_score, label, mask)`` of one image's v2 result, by descending score."""
    rows = [
        (box, label, mask)
        for label, (boxes, masks) in enumerate(zip(bbox_result, segm_result, strict=True))
        for box, mask in zip(boxes, masks, strict=True)
    ]
    order = np.argsort(-np.array([r[0][4] for r in rows]), kind="stable")
    return [rows[i] for i in order]


def assert_masks_match(
    rows: list[tuple[np.ndarray, int, np.ndarray]],
    expected: dict[str, torch.Tensor],
    rles: list[dict[str, Any]],
    min_iou: float,
) -> None:
    """Each expected detection's mask (RLE) against the mask of its partner among ``rows``:
    the same label, the box within 1e-3 and the closest score (ties in score may order the
    detections differently); mask IoU >= ``min_iou``."""
    assert len(rows) == len(rles) == len(expected["labels"])
    boxes = np.stack([r[0] for r in rows])
    labels = np.array([r[1] for r in rows])
    for i, rle in enumerate(rles):
        want_box = expected["bboxes"][i].numpy()
        close = (labels == int(expected["labels"][i])) & (
            np.abs(boxes[:, :4] - want_box).max(axis=1) < 1e-3
        )
        assert close.any(), f"expected detection {i} has no partner"
        candidates = np.flatnonzero(close)
        j = candidates[np.argmin(np.abs(boxes[candidates, 4] - float(expected["scores"][i])))]
        got, want = rows[j][2], rle_decode(rle)
        assert got.dtype == bool and got.shape == want.shape, i
        union = np.logical_or(got, want).sum()
        iou = np.logical_and(got, want).sum() / union if union else 1.0  # both empty: equal
        assert iou >= min_iou, (i, iou)
