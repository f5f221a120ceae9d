"""SwinTransformer against MMDetection 3.3: a small instance's feature maps (odd token maps,
shifted windows, resized position embedding) and full-size Swin-T detectors' layouts."""

from __future__ import annotations

import pytest

from tests.models.zoo_goldens import (
    assert_outputs_close,
    check_full_layout,
    golden_meta,
    run_golden,
)


def test_small_swin_matches_mmdetection(one_thread: None) -> None:
    assert_outputs_close(*run_golden("swin"))


@pytest.mark.parametrize("name", ["mask_rcnn_swin_t", "retinanet_swin_t"])
def test_full_size_layout(name: str) -> None:
    check_full_layout(golden_meta("swin")["layouts"][name])
