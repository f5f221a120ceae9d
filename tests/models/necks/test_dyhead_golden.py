"""DyHead against MMDetection 3.3 (mmcv's deformable conv): a small two-block neck on three
uneven levels, and the full-size ATSS R-50 neck=[FPN, DyHead] layout."""

from __future__ import annotations

from tests.models.zoo_goldens import (
    assert_outputs_close,
    check_full_layout,
    golden_meta,
    run_golden,
)


def test_small_dyhead_matches_mmdetection(one_thread: None) -> None:
    assert_outputs_close(*run_golden("dyhead"))


def test_full_size_layout() -> None:
    check_full_layout(golden_meta("dyhead")["layouts"]["atss_r50_fpn_dyhead"])
