"""TIMMBackbone (``mmcls.TIMMBackbone``) against MMPretrain's under MMDetection 3.3: a small timm
resnet18 pyramid's feature maps and the full-size RetinaNet tv_resnet50 layout. Needs timm (the
fixture's version, see its layout.json); skipped without it."""

from __future__ import annotations

import pytest

from tests.models.zoo_goldens import (
    assert_outputs_close,
    check_full_layout,
    golden_meta,
    run_golden,
)

pytest.importorskip("timm")


def test_small_timm_backbone_matches_mmpretrain(one_thread: None) -> None:
    assert_outputs_close(*run_golden("timm_backbone"))


def test_full_size_layout() -> None:
    check_full_layout(golden_meta("timm_backbone")["layouts"]["retinanet_timm_tv_resnet50"])
