"""Loading transforms against MMDetection v2's own test images and expectations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detforge.datasets.issues import DatasetError
from detforge.datasets.transforms.loading import (
    FilterAnnotations,
    LoadAnnotations,
    LoadImageFromFile,
    LoadImageFromWebcam,
    LoadMultiChannelImageFromFiles,
    LoadProposals,
)
from detforge.registry import TRANSFORMS, build_module
from detforge.utils.image import ImageLoadError


def _masks_module() -> Any:
    return pytest.importorskip("detforge.structures.masks")


def _img_results(prefix: Path | None, name: str) -> dict[str, Any]:
    return dict(img_prefix=None if prefix is None else str(prefix), img_info=dict(filename=name))


def test_load_color_image(mmdet_test_data: Path) -> None:
    results = LoadImageFromFile()(_img_results(mmdet_test_data, "color.jpg"))
    assert results["filename"] == str(mmdet_test_data / "color.jpg")
    assert results["ori_filename"] == "color.jpg"
    assert results["img"].shape == results["img_shape"] == results["ori_shape"] == (288, 512, 3)
    assert results["img"].dtype == np.uint8
    assert results["img_fields"] == ["img"]


def test_load_color_image_float_and_no_prefix(mmdet_test_data: Path) -> None:
    path = str(mmdet_test_data / "color.jpg")
    results = LoadImageFromFile(to_float32=True)(dict(img_prefix=None, img_info={"filename": path}))
    assert results["filename"] == results["ori_filename"] == path
    assert results["img"].dtype == np.float32
    assert results["img"].shape == (288, 512, 3)


def test_load_rgb_channel_order_swaps_channels(mmdet_test_data: Path) -> None:
    bgr = LoadImageFromFile()(_img_results(mmdet_test_data, "color.jpg"))["img"]
    rgb = LoadImageFromFile(channel_order="rgb")(_img_results(mmdet_test_data, "color.jpg"))
    np.testing.assert_array_equal(rgb["img"], bgr[..., ::-1])


def test_load_gray_image(mmdet_test_data: Path) -> None:
    results = LoadImageFromFile()(_img_results(mmdet_test_data, "gray.jpg"))
    assert results["img"].shape == results["ori_shape"] == (288, 512, 3)
    assert results["img"].dtype == np.uint8
    results = LoadImageFromFile(color_type="unchanged")(_img_results(mmdet_test_data, "gray.jpg"))
    assert results["img"].shape == results["img_shape"] == (288, 512)


def test_load_multichannel(mmdet_test_data: Path) -> None:
    results: dict[str, Any] = dict(
        img_prefix=str(mmdet_test_data), img_info={"filename": ["color.jpg"] * 2}
    )
    results = LoadMultiChannelImageFromFiles()(results)
    assert results["filename"] == [str(mmdet_test_data / "color.jpg")] * 2
    assert results["ori_filename"] == ["color.jpg", "color.jpg"]
    assert results["img"].shape == results["img_shape"] == results["pad_shape"] == (288, 512, 3, 2)
    assert results["img"].dtype == np.uint8
    assert results["scale_factor"] == 1.0
    np.testing.assert_array_equal(results["img"][..., 0], results["img"][..., 1])
    assert results["img_norm_cfg"]["mean"].tolist() == [0.0, 0.0, 0.0]
    assert results["img_norm_cfg"]["to_rgb"] is False


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"nope\.jpg"):
        LoadImageFromFile()(_img_results(tmp_path, "nope.jpg"))
    with pytest.raises(OSError, match=r"nope\.png"):
        LoadMultiChannelImageFromFiles()(
            dict(img_prefix=str(tmp_path), img_info={"filename": ["nope.png"]})
        )


def test_missing_img_info_is_clear() -> None:
    with pytest.raises(KeyError, match="img_info"):
        LoadImageFromFile()({"img_prefix": None})


def test_only_disk_backend() -> None:
    LoadImageFromFile(file_client_args=dict(backend="disk"))
    with pytest.raises(ValueError, match="petrel"):
        LoadImageFromFile(file_client_args=dict(backend="petrel"))
    with pytest.raises(ValueError, match="memcached"):
        LoadAnnotations(file_client_args=dict(backend="memcached"))


def test_webcam() -> None:
    img = np.zeros((7, 9, 3), np.uint8)
    results = LoadImageFromWebcam(to_float32=True)({"img": img})
    assert results["img"].dtype == np.float32
    assert results["img_shape"] == results["ori_shape"] == (7, 9, 3)
    assert results["filename"] is None and results["ori_filename"] is None
    with pytest.raises(TypeError, match="ndarray"):
        LoadImageFromWebcam()({"img": "frame.jpg"})


def test_reprs() -> None:
    assert repr(LoadImageFromFile()) == (
        "LoadImageFromFile(to_float32=False, color_type='color', channel_order='bgr', "
        "file_client_args={'backend': 'disk'}, size_mismatch='rescale')"
    )
    assert repr(LoadMultiChannelImageFromFiles()) == (
        "LoadMultiChannelImageFromFiles(to_float32=False, color_type='unchanged', "
        "file_client_args={'backend': 'disk'})"
    )
    assert repr(LoadAnnotations()) == (
        "LoadAnnotations(with_bbox=True, with_label=True, with_mask=False, with_seg=False, "
        "poly2mask=True, file_client_args={'backend': 'disk'})"
    )
    assert repr(LoadProposals(5)) == "LoadProposals(num_max_proposals=5)"
    assert repr(FilterAnnotations()) == (
        "FilterAnnotations(min_gt_bbox_wh=(1.0, 1.0), min_gt_mask_area=1, by_box=True, "
        "by_mask=False, keep_empty=True)"
    )


def test_registered_under_v2_names() -> None:
    for name in (
        "LoadImageFromFile",
        "LoadImageFromWebcam",
        "LoadMultiChannelImageFromFiles",
        "LoadAnnotations",
        "LoadProposals",
        "FilterAnnotations",
    ):
        assert TRANSFORMS.get(name) is not None
    built = build_module(dict(type="LoadAnnotations", with_mask=True), TRANSFORMS)
    assert isinstance(built, LoadAnnotations) and built.with_mask


def _ann_results() -> dict[str, Any]:
    return dict(
        img_info=dict(filename="x.jpg", height=20, width=30),
        ann_info=dict(
            bboxes=np.array([[1, 2, 10, 12], [5, 5, 25, 15]], np.float32),
            labels=np.array([3, 0]),
            bboxes_ignore=np.array([[0, 0, 4, 4]], np.float32),
            masks=[
                [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0, 1.0, 9.0]],
                [[10.0, 2.0, 20.0, 2.0, 20.0, 12.0], [0.0, 0.0, 1.0]],
            ],
            seg_map="seg.png",
        ),
        bbox_fields=[],
        mask_fields=[],
        seg_fields=[],
    )


def test_load_boxes_and_labels() -> None:
    results = _ann_results()
    out = LoadAnnotations()(copy.deepcopy(results))
    assert out["gt_bboxes"].dtype == np.float32
    np.testing.assert_array_equal(out["gt_bboxes"], results["ann_info"]["bboxes"])
    assert out["gt_labels"].dtype == np.int64 and out["gt_labels"].tolist() == [3, 0]
    assert out["gt_bboxes_ignore"].shape == (1, 4)
    assert out["bbox_fields"] == ["gt_bboxes_ignore", "gt_bboxes"]
    # a copy: later in-place edits must not reach the dataset's annotation
    out["gt_bboxes"][:] = 0
    assert out["ann_info"]["bboxes"][0, 2] == 10


def test_load_boxes_denorm_and_bad_shape() -> None:
    results = dict(
        img_shape=(100, 200, 3),
        ann_info=dict(bboxes=np.array([[0.1, 0.2, 0.5, 1.0]], np.float32), labels=np.zeros(1)),
    )
    out = LoadAnnotations(denorm_bbox=True)(results)
    np.testing.assert_allclose(out["gt_bboxes"], [[20, 20, 100, 100]], rtol=1e-6)
    with pytest.raises(ValueError, match="bboxes"):
        LoadAnnotations()(dict(ann_info=dict(bboxes=np.zeros((2, 5)), labels=np.zeros(2))))
    with pytest.raises(KeyError, match="ann_info"):
        LoadAnnotations()({"img_info": {}})


def test_load_bitmap_masks() -> None:
    masks_mod = _masks_module()
    out = LoadAnnotations(with_mask=True)(_ann_results())
    masks = out["gt_masks"]
    assert isinstance(masks, masks_mod.BitmapMasks)
    assert len(masks) == 2 and (masks.height, masks.width) == (20, 30)
    assert out["mask_fields"] == ["gt_masks"]
    # the 8x8 square from the first polygon; the invalid 3-number polygon adds nothing
    area0 = int(masks.masks[0].sum())
    assert 64 <= area0 <= 81
    assert masks.masks[0][5, 5] == 1 and masks.masks[0][15, 15] == 0


def test_load_polygon_masks_drops_invalid_polygons() -> None:
    masks_mod = _masks_module()
    out = LoadAnnotations(with_mask=True, poly2mask=False)(_ann_results())
    masks = out["gt_masks"]
    assert isinstance(masks, masks_mod.PolygonMasks)
    assert len(masks.masks[0]) == 1 and len(masks.masks[1]) == 1


def test_masks_without_polygons_or_missing_masks() -> None:
    _masks_module()
    results = _ann_results()
    # no polygon, or only a 2-point one (pycocotools would read [x1, y1, x2, y2] as a box)
    results["ann_info"]["masks"] = [[], [[1.0, 1.0, 9.0, 9.0]]]
    out = LoadAnnotations(with_mask=True)(results)
    assert out["gt_masks"].masks.shape == (2, 20, 30) and not out["gt_masks"].masks.any()
    results = _ann_results()
    results["ann_info"]["masks"] = [results["ann_info"]["masks"][0], None]
    with pytest.raises(DatasetError, match=r"x\.jpg: instance 1 has no mask"):
        LoadAnnotations(with_mask=True)(results)


def test_load_rle_mask() -> None:
    _masks_module()
    from pycocotools import mask as mask_utils

    bitmap = np.zeros((20, 30), np.uint8)
    bitmap[3:7, 4:9] = 1
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    results = _ann_results()
    results["ann_info"]["masks"] = [rle, {"size": [20, 30], "counts": [0, 600]}]
    out = LoadAnnotations(with_mask=True)(results)
    np.testing.assert_array_equal(out["gt_masks"].masks[0], bitmap)
    assert out["gt_masks"].masks[1].all()


def test_load_semantic_seg_unchanged(tmp_path: Path) -> None:
    seg = np.random.default_rng(0).integers(0, 5, (20, 30)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "seg.png"), seg)
    results = _ann_results()
    results["seg_prefix"] = str(tmp_path)
    out = LoadAnnotations(with_seg=True)(results)
    np.testing.assert_array_equal(out["gt_semantic_seg"], seg)
    assert out["seg_fields"] == ["gt_semantic_seg"]


def test_load_proposals() -> None:
    props = np.arange(30, dtype=np.float32).reshape(6, 5)
    out = LoadProposals(num_max_proposals=4)({"proposals": props, "bbox_fields": []})
    np.testing.assert_array_equal(out["proposals"], props[:4, :4])
    assert out["bbox_fields"] == ["proposals"]
    empty = LoadProposals()({"proposals": np.zeros((0, 4), np.float32)})
    assert empty["proposals"].tolist() == [[0, 0, 0, 0]]
    with pytest.raises(AssertionError, match=r"\(n, 4\)"):
        LoadProposals()({"proposals": np.zeros((3, 6))})


def test_filter_annotations_by_box() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 1, 10], [5, 5, 5.5, 20]], np.float32)
    results = dict(gt_bboxes=boxes, gt_labels=np.array([0, 1, 2]))
    out = FilterAnnotations()(copy.deepcopy(results))
    assert out is not None
    assert out["gt_labels"].tolist() == [0]
    np.testing.assert_array_equal(out["gt_bboxes"], boxes[:1])
    out = FilterAnnotations(min_gt_bbox_wh=(0.0, 0.0))(copy.deepcopy(results))
    assert out is not None and out["gt_labels"].tolist() == [0, 1, 2]


def test_filter_annotations_empty_result() -> None:
    tiny = dict(gt_bboxes=np.array([[0, 0, 0.5, 0.5]], np.float32), gt_labels=np.array([1]))
    assert FilterAnnotations()(copy.deepcopy(tiny)) is None
    kept = FilterAnnotations(keep_empty=False)(copy.deepcopy(tiny))
    assert kept is not None and kept["gt_bboxes"].shape == (0, 4)
    none_there = dict(gt_bboxes=np.zeros((0, 4), np.float32), gt_labels=np.zeros(0, np.int64))
    assert FilterAnnotations()(none_there) is none_there
    with pytest.raises(AssertionError):
        FilterAnnotations(by_box=False, by_mask=False)


def test_filter_annotations_by_mask() -> None:
    masks_mod = _masks_module()
    bitmaps = np.zeros((2, 8, 8), np.uint8)
    bitmaps[0, :3, :3] = 1
    masks = masks_mod.BitmapMasks(bitmaps, 8, 8)
    results = dict(
        gt_bboxes=np.array([[0, 0, 3, 3], [0, 0, 5, 5]], np.float32),
        gt_labels=np.array([4, 5]),
        gt_masks=masks,
    )
    out = FilterAnnotations(by_box=False, by_mask=True, min_gt_mask_area=2)(results)
    assert out is not None
    assert out["gt_labels"].tolist() == [4] and len(out["gt_masks"]) == 1
