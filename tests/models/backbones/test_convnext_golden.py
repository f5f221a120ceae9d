"""ConvNeXt (``mmcls.ConvNeXt``) against MMPretrain's (mmcls's successor) under MMDetection 3.3:
a small instance's feature maps and the full-size Mask R-CNN ConvNeXt-T layout."""

from __future__ import annotations

from tests.models.zoo_goldens import (
    assert_outputs_close,
    check_full_layout,
    golden_meta,
    run_golden,
)


def test_small_convnext_matches_mmpretrain(one_thread: None) -> None:
    assert_outputs_close(*run_golden("convnext"))


def test_full_size_layout() -> None:
    check_full_layout(golden_meta("convnext")["layouts"]["mask_rcnn_convnext_t"])
