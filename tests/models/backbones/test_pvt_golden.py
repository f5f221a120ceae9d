"""PyramidVisionTransformer (v1, v2) against MMDetection 3.3: small instances' feature maps and
full-size RetinaNet PVT-T / PVTv2-B0 layouts."""

from __future__ import annotations

import pytest

from tests.models.zoo_goldens import (
    assert_outputs_close,
    check_full_layout,
    golden_meta,
    run_golden,
)


@pytest.mark.parametrize("name", ["pvt", "pvtv2"])
def test_small_pvt_matches_mmdetection(name: str, one_thread: None) -> None:
    assert_outputs_close(*run_golden(name))


@pytest.mark.parametrize(
    ("fixture", "name"), [("pvt", "retinanet_pvt_t"), ("pvtv2", "retinanet_pvtv2_b0")]
)
def test_full_size_layout(fixture: str, name: str) -> None:
    check_full_layout(golden_meta(fixture)["layouts"][name])
