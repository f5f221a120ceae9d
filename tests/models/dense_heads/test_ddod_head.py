"""DDODHead: the level factors come from positive counts kept over calls (v2: one counter set
for the classification and the regression assignment)."""

from __future__ import annotations

import pytest
import torch

from detforge.models.dense_heads import DDODHead


def _head() -> DDODHead:
    return DDODHead(
        num_classes=3,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        use_dcn=False,
        norm_cfg=dict(type="GN", num_groups=4),
        anchor_generator=dict(
            type="AnchorGenerator",
            ratios=[1.0],
            octave_base_scale=8,
            scales_per_octave=1,
            strides=[8, 16],
        ),
    )


def test_reweight_factors_accumulate_over_calls() -> None:
    head = _head()
    # level 0: 3 positives (labels < 3), level 1: 1
    first = head.calc_reweight_factor([torch.tensor([[0, 1, 2, 3]]), torch.tensor([[3, 0]])])
    assert first == pytest.approx([1.0, 2.0])
    # one more call with 4 positives on level 1 only: counts 3 and 5
    second = head.calc_reweight_factor([torch.tensor([[3, 3]]), torch.tensor([[0, 1, 2, 0]])])
    assert second == pytest.approx([2.0, 1.0])
    assert head.cls_num_pos_samples_per_level == [3.0, 5.0]


def test_forward_shapes_and_iou_branch_name() -> None:
    head = _head()
    cls, reg, iou = head([torch.zeros(1, 8, 4, 4), torch.zeros(1, 8, 2, 2)])
    assert [tuple(t.shape) for t in (cls[0], reg[0], iou[1])] == [
        (1, 3, 4, 4),
        (1, 4, 4, 4),
        (1, 1, 2, 2),
    ]
    assert "atss_iou.weight" in head.state_dict()
