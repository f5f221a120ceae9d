"""YOLO anchor fitting: k-means recovers planted box sizes, DE gets as close, scaling is v2's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.anchor_optimizer import (
    avg_iou_cost,
    collect_box_sizes,
    differential_evolution_anchors,
    kmeans_anchors,
    num_anchors_per_level,
    save_anchors,
    wh_iou,
)

CLUSTERS = np.array([[12.0, 20.0], [60.0, 40.0], [150.0, 220.0]])


def planted_whs(per_cluster: int = 60, jitter: float = 0.05, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = [c * rng.uniform(1 - jitter, 1 + jitter, (per_cluster, 2)) for c in CLUSTERS]
    return np.concatenate(parts)


def test_wh_iou_and_cost_by_hand() -> None:
    ious = wh_iou(np.array([[10.0, 10.0], [20.0, 5.0]]), np.array([[10.0, 10.0], [10.0, 5.0]]))
    np.testing.assert_allclose(ious, [[1.0, 0.5], [50 / 150, 0.5]])
    assert avg_iou_cost(np.array([10.0, 10.0]), np.array([[10.0, 10.0], [5.0, 5.0]])) == (
        pytest.approx(1 - (1 + 0.25) / 2)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_recovers_three_cluster_sizes(seed: int) -> None:
    anchors, mean_iou = kmeans_anchors(planted_whs(), 3, iters=100, seed=seed)
    np.testing.assert_allclose(anchors, CLUSTERS, rtol=0.03)
    assert mean_iou > 0.9


def test_differential_evolution_finds_the_clusters() -> None:
    whs = planted_whs(per_cluster=30)
    anchors, mean_iou = differential_evolution_anchors(whs, 3, (608, 608), iters=60, seed=0)
    kmeans_iou = kmeans_anchors(whs, 3, seed=0)[1]
    assert mean_iou >= kmeans_iou - 0.01
    np.testing.assert_allclose(anchors, CLUSTERS, rtol=0.1)
    assert list(anchors[:, 0] * anchors[:, 1]) == sorted(anchors[:, 0] * anchors[:, 1])


class _Boxes:
    def __init__(self) -> None:
        self.data_infos = [dict(width=1280, height=640), dict(width=300, height=600)]
        self.anns = [np.array([[0, 0, 100, 50], [10, 10, 30, 70]], np.float32),
                     np.array([[5, 5, 65, 305]], np.float32)]  # fmt: skip

    def __len__(self) -> int:
        return 2

    def get_ann_info(self, idx: int) -> dict:
        return dict(bboxes=self.anns[idx])


def test_box_sizes_scaled_by_longer_side() -> None:
    whs, shapes = collect_box_sizes(_Boxes(), (640, 320))
    # image 1: longer side 1280 -> w/2, h/4; image 2: longer side 600 -> w*640/600, h*320/600
    np.testing.assert_allclose(whs, [[50, 12.5], [10, 15], [64, 160]])
    np.testing.assert_array_equal(shapes[:, 0], [1280, 1280, 300])


def test_levels_and_saved_json(tmp_path: Path) -> None:
    yolo = dict(type="YOLOAnchorGenerator", strides=[32, 16],
                base_sizes=[[(116, 90), (156, 198)], [(30, 61)]])  # fmt: skip
    assert num_anchors_per_level(yolo) == [2, 1]
    with pytest.raises(ValueError, match="YOLOAnchorGenerator"):
        num_anchors_per_level(dict(type="AnchorGenerator", strides=[8]))
    path = save_anchors(np.array([[10.4, 12.6], [30.5, 61.2], [116.0, 90.0]]), tmp_path, [2, 1])
    assert json.loads(path.read_text()) == [[10, 13], [30, 61], [116, 90]]
    with pytest.raises(ValueError, match="3 anchors"):
        save_anchors(np.zeros((3, 2)), tmp_path, [1, 1])
