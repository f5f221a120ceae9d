"""Tests of ``Albu`` (``datasets.transforms.albu``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from detforge.datasets.transforms.albu import Albu
from tests.datasets.transforms._helpers import check_masks_match_boxes, one_box


def test_albu_without_albumentations_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "albumentations", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install albumentations"):
        Albu(transforms=[dict(type="Blur")])


def test_albu_with_albumentations() -> None:
    pytest.importorskip("albumentations")
    t = Albu(
        transforms=[dict(type="HorizontalFlip", p=1.0)],
        bbox_params=dict(
            type="BboxParams",
            format="pascal_voc",
            label_fields=["gt_labels"],
            filter_lost_elements=True,
        ),
        keymap={"img": "image", "gt_masks": "masks", "gt_bboxes": "bboxes"},
    )
    r = one_box()
    for key in ("gt_semantic_seg",):
        r.pop(key)
    r["seg_fields"] = []
    out = t(r)
    assert out is not None
    assert out["gt_bboxes"].tolist() == [[20.0, 10.0, 30.0, 20.0]]
    assert out["gt_labels"].dtype == np.int64
    check_masks_match_boxes(out, tol=0)
    assert repr(t) == "Albu(transforms=[{'type': 'HorizontalFlip', 'p': 1.0}])"
