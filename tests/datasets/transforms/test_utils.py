"""Tests of the helpers shared by the transforms (``datasets.transforms._utils``)."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.datasets.transforms._utils import TransformArgumentError, check_arg, select_instances
from detforge.structures.masks import PolygonMasks
from tests.datasets.transforms._helpers import Results


def test_check_arg_error_is_value_and_assertion_error() -> None:
    with pytest.raises(TransformArgumentError, match="culprit"):
        check_arg(False, "culprit")
    assert issubclass(TransformArgumentError, ValueError)
    assert issubclass(TransformArgumentError, AssertionError)


def test_select_instances_keeps_labels_and_polygon_masks_aligned() -> None:
    polys = PolygonMasks([[np.array([0, 0, 2, 0, 2, 2.0])]] * 3, 4, 4)
    r: Results = {"gt_labels_ignore": np.array([7, 8, 9]), "gt_masks_ignore": polys}
    select_instances(r, "gt_bboxes_ignore", np.array([False, True, True]))
    assert r["gt_labels_ignore"].tolist() == [8, 9] and len(r["gt_masks_ignore"]) == 2
