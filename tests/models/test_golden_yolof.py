"""Golden parity with MMDetection: a tiny YOLOF (tests/data/goldens/yolof, made by
tools/goldens/yolof.py with MMDetection 3.3; README there).

ResNet-18 C5 at base width 8, DilatedEncoder 64 -> 32 and the standard YOLOFHead, seeded random
weights, on the two images of the shared yolov3 fixture: the encoder output, the detections row
by row with and without rescale (v2 settings), both losses and every gradient norm. The
full-size standard config gives MMDetection's state_dict layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from tests.models.component_golden import GOLDENS, read_json
from tests.models.golden import (
    FIXTURES,
    assert_full_layout,
    assert_losses_and_grads,
    check_dets_rows,
    fixture_metas,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _load() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    inputs_path = FIXTURES / "yolov3" / "inputs.pt"
    if not inputs_path.is_file():
        pytest.skip(f"inputs {inputs_path} not found")
    root = GOLDENS / "yolof"
    model = build_detector(Config.fromfile(root / "model.py").model)
    state = torch.load(root / "weights.pth", weights_only=True)  # float16: exact in float32
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    inputs = torch.load(inputs_path, weights_only=False)
    return model, inputs, torch.load(root / "expected.pt", weights_only=True)


def test_encoder_output(one_thread: Any) -> None:
    model, inputs, expected = _load()
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert len(feats) == 1 and feats[0].shape == (2, 32, 7, 10)
    torch.testing.assert_close(feats[0], expected["neck"][0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(rescale: bool, one_thread: Any) -> None:
    model, inputs, expected = _load()
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        results = model.bbox_head.simple_test(
            model.extract_feat(inputs["img"]), fixture_metas(inputs), rescale=rescale
        )
    check_dets_rows(results, expected[key], 100)


def test_losses_and_gradients(one_thread: Any) -> None:
    model, inputs, expected = _load()
    model.train()
    losses = model.forward_train(
        inputs["img"],
        fixture_metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    assert set(losses) == {"loss_cls", "loss_bbox"}
    assert_losses_and_grads(model, losses, expected, grad_abs=1e-6)


def test_full_size_layout() -> None:
    """yolof_r50_c5_8x8_1x_coco: MMDetection 3.3's 446 entries, keys and shapes in order."""
    layout = read_json(GOLDENS / "dilated_encoder" / "layout_yolof_r50_c5.json")
    assert_full_layout(CONFIGS / "yolof/yolof_r50_c5_8x8_1x_coco.py", layout)
