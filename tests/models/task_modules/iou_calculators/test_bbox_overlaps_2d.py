"""BboxOverlaps2D: score columns, modes, fp16 mode and empty inputs."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.iou_calculators import BboxOverlaps2D, cast_tensor_type
from detforge.registry import TASK_UTILS, build_module

B1 = torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 20.0, 20.0], [32.0, 32.0, 38.0, 42.0]])
B2 = torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 10.0, 10.0, 19.0], [10.0, 10.0, 20.0, 20.0]])


def test_modes_and_score_column() -> None:
    calc = build_module(dict(type="BboxOverlaps2D"), TASK_UTILS)
    ious = calc(B1, B2)
    assert ious.shape == (3, 3)
    torch.testing.assert_close(ious[0], torch.tensor([0.5, 0.0, 0.0]))
    assert ious[1, 2] == 1.0
    with_scores = calc(torch.cat([B1, torch.ones(3, 1)], 1), torch.cat([B2, torch.ones(3, 1)], 1))
    assert torch.equal(with_scores, ious)
    giou = calc(B1, B2, mode="giou", is_aligned=True)
    assert [round(v, 4) for v in giou.tolist()] == [0.5, -0.05, -0.8214]
    iof = calc(B2, B1, mode="iof")
    assert iof[0, 0] == 0.5  # intersection 100 over B2[0]'s area 200


def test_fp16_mode_returns_float32_on_cpu() -> None:
    calc = BboxOverlaps2D(scale=512.0, dtype="fp16")
    ious = calc(B1 * 40, B2 * 40)
    assert ious.dtype == torch.float32
    torch.testing.assert_close(ious, BboxOverlaps2D()(B1 * 40, B2 * 40), atol=2e-3, rtol=0)
    assert cast_tensor_type(B1, 2.0, "fp16").dtype == torch.float16
    assert cast_tensor_type(B1, 2.0, None) is B1


def test_empty_inputs_and_errors() -> None:
    calc = BboxOverlaps2D()
    assert calc(torch.zeros(0, 4), B2).shape == (0, 3)
    assert calc(B1, torch.zeros(0, 4)).shape == (3, 0)
    assert calc(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 0)
    assert calc(torch.zeros(2, 0, 4), torch.zeros(2, 5, 4)).shape == (2, 0, 5)
    with pytest.raises(ValueError, match="bboxes1"):
        calc(torch.zeros(2, 3), B2)
    with pytest.raises(ValueError, match="dtype"):
        BboxOverlaps2D(dtype="fp8")
