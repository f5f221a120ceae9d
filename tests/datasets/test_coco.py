"""CocoDataset: real tiny_coco (polygons, a crowd), filters, class checks and v2 metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detforge.datasets import CocoDataset, DatasetError, build_dataset
from detforge.structures.masks import PolygonMasks


@pytest.fixture(scope="module")
def tiny(shared_data: Path) -> Path:
    return shared_data / "tiny_coco" / "small_coco"


def tiny_dataset(root: Path, **kwargs) -> CocoDataset:
    args = dict(
        ann_file=str(root / "instances_train2017_small.json"),
        img_prefix=str(root / "train_2017_small"),
        pipeline=[],
    )
    args.update(kwargs)
    return CocoDataset(**args)


def perfect_results(ds: CocoDataset, with_masks: bool) -> list:
    from pycocotools import mask as mask_utils

    results = []
    for i in range(len(ds)):
        ann = ds.get_ann_info(i)
        info = ds.data_infos[i]
        boxes = [[] for _ in ds.CLASSES]
        masks = [[] for _ in ds.CLASSES]
        for box, label, seg in zip(ann["bboxes"], ann["labels"], ann["masks"], strict=True):
            boxes[label].append([*box, 1.0])
            if with_masks:
                h, w = info["height"], info["width"]
                rles = mask_utils.frPyObjects(seg, h, w) if isinstance(seg, list) else seg
                rle = mask_utils.merge(rles) if isinstance(rles, list) else rles
                masks[label].append(mask_utils.decode(rle).astype(bool))
        bbox_result = [np.array(b, dtype=np.float32).reshape(-1, 5) for b in boxes]
        results.append((bbox_result, masks) if with_masks else bbox_result)
    return results


def test_tiny_coco_loads_with_crowd_as_ignore(tiny: Path) -> None:
    ds = tiny_dataset(tiny)
    assert len(ds) == 16
    total = sum(len(ds.get_ann_info(i)["bboxes"]) for i in range(len(ds)))
    ignored = sum(len(ds.get_ann_info(i)["bboxes_ignore"]) for i in range(len(ds)))
    assert ignored == 1
    assert total + ignored + ds.issues.count() == 197
    ann = ds.get_ann_info(0)
    assert ann["bboxes"].dtype == np.float32 and ann["labels"].dtype == np.int64
    assert ann["seg_map"].endswith(".png")


def test_tiny_coco_pipeline_loads_masks(tiny: Path) -> None:
    ds = tiny_dataset(
        tiny,
        pipeline=[
            dict(type="LoadImageFromFile"),
            dict(type="LoadAnnotations", with_bbox=True, with_mask=True, poly2mask=False),
        ],
    )
    sample = ds[0]
    assert isinstance(sample["gt_masks"], PolygonMasks)
    assert len(sample["gt_masks"]) == len(sample["gt_bboxes"])
    assert sample["img"].shape[:2] == (sample["gt_masks"].height, sample["gt_masks"].width)


def test_perfect_results_give_map_one_for_bbox_and_segm(tiny: Path) -> None:
    ds = tiny_dataset(tiny, test_mode=True)
    metrics = ds.evaluate(perfect_results(ds, with_masks=True), metric=["bbox", "segm"])
    assert metrics["bbox_mAP"] == 1.0
    assert metrics["bbox_mAP_50"] == 1.0
    assert metrics["segm_mAP"] == 1.0
    assert metrics["bbox_mAP_copypaste"].startswith("1.0000 1.0000 1.0000")


def test_unknown_class_lists_the_json_categories(tiny: Path) -> None:
    with pytest.raises(DatasetError, match="persn") as info:
        tiny_dataset(tiny, classes=("persn", "car"))
    assert "'person'" in str(info.value)


def test_class_subset_and_filter_empty_gt(tiny: Path) -> None:
    ds = tiny_dataset(tiny, classes=("person",))
    assert 0 < len(ds) < 16
    for i in range(len(ds)):
        assert len(ds.get_ann_info(i)["labels"]) > 0
        assert set(ds.get_ann_info(i)["labels"].tolist()) == {0}
    test_ds = tiny_dataset(tiny, classes=("person",), test_mode=True)
    assert len(test_ds) == 16


def write_dummy_coco(path: Path, bad: bool = False) -> None:
    images = [dict(id=i, file_name=f"{i}.jpg", width=100, height=80) for i in (1, 2, 3)]
    anns = [
        dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 20, 20], area=400, iscrowd=0),
        dict(id=2, image_id=2, category_id=2, bbox=[5, 5, 30, 10], area=300, iscrowd=0),
        dict(id=3, image_id=3, category_id=1, bbox=[50, 40, 10, 10], area=100, iscrowd=0),
    ]
    if bad:
        anns += [
            dict(id=4, image_id=1, category_id=1, bbox=[200, 200, 5, 5], area=25, iscrowd=0),
            dict(id=5, image_id=2, category_id=2, bbox=[1, 1, 0.5, 9], area=4.5, iscrowd=0),
            dict(id=6, image_id=99, category_id=1, bbox=[1, 1, 5, 5], area=25, iscrowd=0),
        ]
    cats = [dict(id=1, name="cat"), dict(id=2, name="dog")]
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))


def test_bad_annotations_are_counted_or_raise(tmp_path: Path) -> None:
    ann = tmp_path / "bad.json"
    write_dummy_coco(ann, bad=True)
    ds = CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"))
    assert ds.issues.count("boxes outside the image") == 1
    assert ds.issues.count("boxes with zero or negative size") == 1
    assert ds.issues.count("annotations for missing images") == 1
    assert len(ds) == 3
    with pytest.raises(DatasetError, match="strict"):
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"), strict=True)


def test_concat_from_list_ann_file_evaluates_separately(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        write_dummy_coco(tmp_path / name)
    ds = build_dataset(
        dict(
            type="CocoDataset",
            ann_file=[str(tmp_path / "a.json"), str(tmp_path / "b.json")],
            classes=("cat", "dog"),
            pipeline=[],
            test_mode=True,
        )
    )
    assert len(ds) == 6
    one = ds.datasets[0]
    results = perfect_results(one, with_masks=False) * 2
    metrics = ds.evaluate(results, metric="bbox")
    assert metrics["0_bbox_mAP"] == 1.0 and metrics["1_bbox_mAP"] == 1.0
