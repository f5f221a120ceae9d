"""MultiScaleFlipAug, alone and inside the v2 COCO test pipeline read from its config."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.datasets.transforms.compose import Compose
from detforge.datasets.transforms.test_time_aug import MultiScaleFlipAug

ROOT = Path(__file__).resolve().parents[3]
COCO_CFG = ROOT / "configs" / "_base_" / "datasets" / "coco_detection.py"
NORM = dict(type="Normalize", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])


def _results(mmdet_test_data: Path) -> dict[str, Any]:
    return dict(
        img_prefix=str(mmdet_test_data),
        img_info=dict(filename="color.jpg", height=288, width=512),
        bbox_fields=[],
        mask_fields=[],
        seg_fields=[],
    )


def test_coco_test_pipeline_yields_lists(mmdet_test_data: Path) -> None:
    cfg = Config.fromfile(str(COCO_CFG))
    data = Compose(cfg.test_pipeline)(_results(mmdet_test_data))
    assert data is not None
    assert set(data) == {"img_metas", "img"}
    assert isinstance(data["img"], list) and len(data["img"]) == 1
    img = data["img"][0]
    assert isinstance(img, torch.Tensor) and img.dtype == torch.float32
    assert img.shape == (3, 768, 1344)
    meta = data["img_metas"][0]
    assert meta["img_shape"] == (750, 1333, 3) and meta["ori_shape"] == (288, 512, 3)
    assert meta["flip"] is False and meta["flip_direction"] is None
    assert meta["ori_filename"] == "color.jpg"


def test_multi_scale_flip(mmdet_test_data: Path) -> None:
    aug = MultiScaleFlipAug(
        transforms=[
            dict(type="Resize", keep_ratio=True),
            dict(type="RandomFlip"),
            NORM,
            dict(type="Pad", size_divisor=32),
            dict(type="ImageToTensor", keys=["img"]),
            dict(type="Collect", keys=["img"]),
        ],
        img_scale=[(1333, 800), (666, 400)],
        flip=True,
        flip_direction=["horizontal", "vertical"],
    )
    loaded = Compose([dict(type="LoadImageFromFile")])(_results(mmdet_test_data))
    assert loaded is not None
    data = aug(loaded)
    metas = data["img_metas"]
    assert len(data["img"]) == len(metas) == 6
    assert [m["flip"] for m in metas] == [False, True, True] * 2
    assert [m["flip_direction"] for m in metas] == [None, "horizontal", "vertical"] * 2
    assert [m["img_shape"][:2] for m in metas] == [(750, 1333)] * 3 + [(375, 666)] * 3
    # the input dict is left alone (each run works on a copy)
    assert "flip" not in loaded and "scale" not in loaded
    # flipped runs hold the mirrored image inside the unpadded area
    for base in (0, 3):
        h, w = metas[base]["img_shape"][:2]
        plain = data["img"][base][:, :h, :w]
        torch.testing.assert_close(data["img"][base + 1][:, :h, :w], plain.flip(-1))
        torch.testing.assert_close(data["img"][base + 2][:, :h, :w], plain.flip(-2))


def test_scale_factor_mode(mmdet_test_data: Path) -> None:
    aug = MultiScaleFlipAug(
        transforms=[
            dict(type="Resize", keep_ratio=True),
            dict(type="Collect", keys=["img"], meta_keys=("scale_factor", "img_shape")),
        ],
        scale_factor=[0.5, 1.0],
    )
    loaded = Compose([dict(type="LoadImageFromFile")])(_results(mmdet_test_data))
    assert loaded is not None
    data = aug(loaded)
    assert [m["img_shape"] for m in data["img_metas"]] == [(144, 256, 3), (288, 512, 3)]
    assert isinstance(data["img"][0], np.ndarray)


def test_arguments_checked() -> None:
    with pytest.raises(AssertionError, match="only one"):
        MultiScaleFlipAug(transforms=[], img_scale=(10, 10), scale_factor=1.0)
    with pytest.raises(AssertionError, match="only one"):
        MultiScaleFlipAug(transforms=[])
    with pytest.raises(AssertionError):
        MultiScaleFlipAug(transforms=[], img_scale=[[10, 10]])  # type: ignore[list-item]


def test_warnings() -> None:
    with pytest.warns(UserWarning, match="flip_direction has no effect"):
        MultiScaleFlipAug(transforms=[], img_scale=(10, 10), flip_direction="vertical")
    with pytest.warns(UserWarning, match="RandomFlip is not in transforms"):
        MultiScaleFlipAug(transforms=[dict(type="Resize")], img_scale=(10, 10), flip=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultiScaleFlipAug(transforms=[dict(type="RandomFlip")], img_scale=(10, 10), flip=True)


def test_dropped_sample_is_an_error() -> None:
    aug = MultiScaleFlipAug(transforms=[lambda r: None], img_scale=(10, 10))
    with pytest.raises(ValueError, match="dropped"):
        aug({})


def test_repr() -> None:
    aug = MultiScaleFlipAug(transforms=[dict(type="RandomFlip")], img_scale=(1333, 800), flip=True)
    assert repr(aug) == (
        "MultiScaleFlipAug(transforms=Compose(\n    RandomFlip(flip_ratio=None)\n), "
        "img_scale=[(1333, 800)], flip=True, flip_direction=['horizontal'])"
    )
