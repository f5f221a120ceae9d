"""The validation-loss pipeline derived from the val and training pipelines (no model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.datasets.builder import build_dataset
from detforge.datasets.wrappers import RepeatDataset
from detforge.engine.hooks.val_loss import build_val_loss_loader, has_annotations
from detforge.errors import ConfigError
from tests.tiny_demo import make_synthetic_coco

NORM = dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], to_rgb=False)
TRAIN = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", img_scale=(40, 40), keep_ratio=True),
    dict(type="RandomFlip", flip_ratio=1.0),  # always flips: must not leak into the val view
    dict(type="Normalize", **NORM),
    dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
]
TEST = [
    dict(type="LoadImageFromFile"),
    dict(
        type="MultiScaleFlipAug",
        img_scale=(32, 32),
        flip=True,
        transforms=[
            dict(type="Resize", keep_ratio=True),
            dict(type="RandomFlip"),
            dict(type="Normalize", **NORM),
            dict(type="Pad", size_divisor=32),
            dict(type="ImageToTensor", keys=["img"]),
            dict(type="Collect", keys=["img"]),
        ],
    ),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: Any) -> dict[str, Path]:
    return make_synthetic_coco(tmp_path_factory.mktemp("vl"), num_train=2, num_val=2, size=64)


def _dataset(data: dict[str, Path], split: str, pipeline: list[Any], test_mode: bool) -> Any:
    return build_dataset(
        dict(type="CocoDataset", classes=("rectangle", "ellipse"), ann_file=str(data[split]),
             img_prefix=str(data["images"]) + "/", pipeline=pipeline, test_mode=test_mode)
    )  # fmt: skip


class _Loader:
    def __init__(self, dataset: Any) -> None:
        self.dataset, self.batch_size, self.num_workers = dataset, 2, 0


def test_loss_batches_are_the_test_view_with_ground_truth(data: dict[str, Path]) -> None:
    val = _dataset(data, "val", TEST, test_mode=True)
    train = RepeatDataset(_dataset(data, "train", TRAIN, test_mode=False), times=2)
    loader = build_val_loss_loader(_Loader(val), train)
    (batch,) = list(loader)
    assert set(batch) == {"img", "img_metas", "gt_bboxes", "gt_labels"}
    assert tuple(batch["img"].shape) == (2, 3, 32, 32)  # 64 px -> test scale 32, padded to 32
    for i, meta in enumerate(batch["img_metas"]):
        assert meta["flip"] is False and meta["img_shape"][:2] == (32, 32)
        ann = val.get_ann_info(i)
        # boxes at half size, not flipped (the training RandomFlip(1.0) is not used)
        np.testing.assert_allclose(batch["gt_bboxes"][i].numpy(), ann["bboxes"] * 0.5)
        assert torch.equal(batch["gt_labels"][i], torch.as_tensor(ann["labels"]))


def test_no_annotations_is_a_clear_error(data: dict[str, Path]) -> None:
    val = _dataset(data, "val", TEST, test_mode=True)
    for info in val.data_infos:
        val._ann_by_id[info["id"]] = dict(
            val._ann_by_id[info["id"]], bboxes=np.zeros((0, 4), np.float32)
        )
    assert not has_annotations(val)
    with pytest.raises(ConfigError, match="no box annotations"):
        build_val_loss_loader(_Loader(val), None)
