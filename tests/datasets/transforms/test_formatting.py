"""Formatting transforms and the full v2 COCO training pipeline read from its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.datasets.transforms.compose import Compose
from detforge.datasets.transforms.formatting import (
    Collect,
    DefaultFormatBundle,
    ImageToTensor,
    MissingResultKeyError,
    ToDataContainer,
    ToTensor,
    Transpose,
    WrapFieldsToLists,
    to_tensor,
)

ROOT = Path(__file__).resolve().parents[3]
COCO_CFG = ROOT / "configs" / "_base_" / "datasets" / "coco_detection.py"
V2_META_KEYS = (
    "filename",
    "ori_filename",
    "ori_shape",
    "img_shape",
    "pad_shape",
    "scale_factor",
    "flip",
    "flip_direction",
    "img_norm_cfg",
)


def test_to_tensor_kinds() -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = to_tensor(arr)
    assert tensor.shape == (2, 3) and tensor.dtype == torch.float32
    arr[0, 0] = 9  # shares memory, like torch.from_numpy
    assert tensor[0, 0] == 9
    same = torch.zeros(2)
    assert to_tensor(same) is same
    assert to_tensor([1, 2]).tolist() == [1, 2]
    assert to_tensor(3).dtype == torch.int64 and to_tensor(3).tolist() == [3]
    assert to_tensor(0.5).dtype == torch.float32
    with pytest.raises(TypeError, match="str"):
        to_tensor("abc")
    with pytest.raises(TypeError, match="dict"):
        to_tensor({"a": 1})


def test_to_tensor_and_transpose_transforms() -> None:
    out = ToTensor(keys=["a"])({"a": np.ones((2, 2)), "b": [1]})
    assert isinstance(out["a"], torch.Tensor) and out["b"] == [1]
    out = Transpose(keys=["a"], order=(2, 0, 1))({"a": np.zeros((4, 5, 3))})
    assert out["a"].shape == (3, 4, 5)
    out = Transpose(keys=["a"], order=(1, 0))({"a": torch.zeros(2, 3)})
    assert out["a"].shape == (3, 2)
    with pytest.raises(MissingResultKeyError, match="'a'"):
        ToTensor(keys=["a"])({})
    assert repr(ToTensor(keys=["a"])) == "ToTensor(keys=['a'])"
    assert repr(Transpose(keys=["a"], order=[1, 0])) == "Transpose(keys=['a'], order=[1, 0])"


def test_image_to_tensor() -> None:
    img = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    out = ImageToTensor(keys=["img"])({"img": img})
    assert out["img"].shape == (3, 4, 5) and out["img"].dtype == torch.uint8
    np.testing.assert_array_equal(out["img"].numpy(), img.transpose(2, 0, 1))
    gray = ImageToTensor(keys=["img"])({"img": np.zeros((4, 5), np.float32)})
    assert gray["img"].shape == (1, 4, 5)
    assert repr(ImageToTensor(keys=["img"])) == "ImageToTensor(keys=['img'])"


def test_default_format_bundle() -> None:
    masks_obj = object()
    img = np.random.default_rng(1).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    results: dict[str, Any] = dict(
        img=img,
        gt_bboxes=np.array([[0, 0, 2, 2]], np.float32),
        gt_bboxes_ignore=np.zeros((0, 4), np.float32),
        gt_labels=np.array([3], np.int64),
        proposals=np.ones((2, 4), np.float32),
        gt_masks=masks_obj,
        gt_semantic_seg=np.full((6, 8), 4, np.uint8),
    )
    out = DefaultFormatBundle()(results)
    assert out["img"].shape == (3, 6, 8) and out["img"].dtype == torch.float32
    assert out["img"].is_contiguous()
    np.testing.assert_array_equal(out["img"].numpy(), img.transpose(2, 0, 1).astype(np.float32))
    assert out["gt_bboxes"].dtype == torch.float32 and out["gt_bboxes"].shape == (1, 4)
    assert out["gt_bboxes_ignore"].shape == (0, 4)
    assert out["gt_labels"].dtype == torch.int64
    assert isinstance(out["proposals"], torch.Tensor)
    assert out["gt_masks"] is masks_obj
    assert out["gt_semantic_seg"].shape == (1, 6, 8)
    # defaults for Collect's meta keys
    assert out["pad_shape"] == (6, 8, 3) and out["scale_factor"] == 1.0
    assert out["img_norm_cfg"]["to_rgb"] is False
    assert out["img_norm_cfg"]["std"].tolist() == [1.0, 1.0, 1.0]


def test_default_format_bundle_keeps_existing_meta_and_dtype() -> None:
    factor = np.ones(4, np.float32) * 2
    out = DefaultFormatBundle(img_to_float=False)(
        {"img": np.zeros((4, 4), np.uint8), "scale_factor": factor, "pad_shape": (8, 8)}
    )
    assert out["img"].dtype == torch.uint8 and out["img"].shape == (1, 4, 4)
    assert out["scale_factor"] is factor and out["pad_shape"] == (8, 8)
    assert out["img_norm_cfg"]["mean"].shape == (1,)
    assert repr(DefaultFormatBundle()) == "DefaultFormatBundle(img_to_float=True)"


def test_collect() -> None:
    results: dict[str, Any] = {key: f"<{key}>" for key in V2_META_KEYS}
    results.update(img=1, gt_bboxes=2, gt_labels=3, extra=4)
    out = Collect(keys=["img", "gt_bboxes", "gt_labels"])(results)
    assert list(out) == ["img_metas", "img", "gt_bboxes", "gt_labels"]
    assert type(out["img_metas"]) is dict
    assert out["img_metas"] == {key: f"<{key}>" for key in V2_META_KEYS}
    custom = Collect(keys=["img"], meta_keys=("filename",))(results)
    assert custom == {"img_metas": {"filename": "<filename>"}, "img": 1}


def test_collect_missing_keys_are_named() -> None:
    with pytest.raises(KeyError, match=r"gt_masks.*with_mask=True"):
        Collect(keys=["gt_masks"], meta_keys=())({"img": 1})
    with pytest.raises(MissingResultKeyError, match=r"'flip'.*RandomFlip"):
        Collect(keys=["img"])({key: 0 for key in V2_META_KEYS if key != "flip"} | {"img": 1})


def test_collect_repr() -> None:
    assert repr(Collect(keys=["img"])) == (
        "Collect(keys=['img'], meta_keys=('filename', 'ori_filename', 'ori_shape', "
        "'img_shape', 'pad_shape', 'scale_factor', 'flip', 'flip_direction', 'img_norm_cfg'))"
    )


def test_wrap_fields_to_lists_and_to_data_container() -> None:
    out = WrapFieldsToLists()({"img": 1, "img_metas": {"a": 1}})
    assert out == {"img": [1], "img_metas": [{"a": 1}]}
    assert repr(WrapFieldsToLists()) == "WrapFieldsToLists()"
    dc = ToDataContainer()(
        {"img": np.zeros((2, 2)), "gt_bboxes": np.zeros((1, 4)), "gt_labels": np.zeros(1)}
    )
    assert all(isinstance(v, torch.Tensor) for v in dc.values())


def _coco_results(mmdet_test_data: Path) -> dict[str, Any]:
    return dict(
        img_prefix=str(mmdet_test_data),
        img_info=dict(filename="color.jpg", height=288, width=512),
        ann_info=dict(
            bboxes=np.array([[10, 20, 100, 200], [300.5, 10, 512, 288]], np.float32),
            labels=np.array([1, 7], np.int64),
            bboxes_ignore=np.zeros((0, 4), np.float32),
        ),
        bbox_fields=[],
        mask_fields=[],
        seg_fields=[],
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_train_pipeline_from_config(mmdet_test_data: Path, seed: int) -> None:
    cfg = Config.fromfile(str(COCO_CFG))
    pipeline = Compose(cfg.train_pipeline)
    np.random.seed(seed)
    data = pipeline(_coco_results(mmdet_test_data))
    assert data is not None
    assert set(data) == {"img_metas", "img", "gt_bboxes", "gt_labels"}
    img = data["img"]
    assert isinstance(img, torch.Tensor) and img.dtype == torch.float32
    assert img.ndim == 3 and img.shape[0] == 3
    assert img.shape[1] % 32 == 0 and img.shape[2] % 32 == 0
    meta = data["img_metas"]
    assert set(meta) == set(V2_META_KEYS)
    assert meta["img_shape"] == (750, 1333, 3) and meta["pad_shape"] == (768, 1344, 3)
    assert tuple(img.shape[1:]) == meta["pad_shape"][:2]
    boxes = data["gt_bboxes"]
    assert boxes.dtype == torch.float32 and boxes.shape == (2, 4)
    assert (boxes >= 0).all() and (boxes[:, 0::2] <= 1333).all() and (boxes[:, 1::2] <= 750).all()
    assert data["gt_labels"].tolist() == [1, 7]
    # undo flip and scale: the annotation comes back
    back = boxes.numpy().copy()
    if meta["flip"]:
        back[:, [0, 2]] = 1333 - back[:, [2, 0]]
    np.testing.assert_allclose(
        back / meta["scale_factor"], _coco_results(mmdet_test_data)["ann_info"]["bboxes"], atol=1e-3
    )
