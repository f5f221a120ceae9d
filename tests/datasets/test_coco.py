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
    assert ds.issues.count("boxes narrower or lower than 1 pixel") == 1
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


def write_coco(path: Path, **changes) -> Path:
    """``write_dummy_coco``'s data with top-level sections replaced (None deletes one)."""
    write_dummy_coco(path)
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data, allow_nan=True))
    return path


def test_duplicate_image_ids_are_an_error_naming_the_ids(tmp_path: Path) -> None:
    images = [
        dict(id=i, file_name=f"{n}.jpg", width=100, height=80) for n, i in enumerate((1, 2, 2))
    ]
    ann = write_coco(tmp_path / "dup.json", images=images)
    # before: the third image silently took the second's boxes
    with pytest.raises(DatasetError, match=r"dup\.json: duplicate image ids 2 ") as info:
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"))
    assert "images[1] and images[2] have id 2" in str(info.value)


@pytest.mark.parametrize(
    ("bbox", "reason"),
    [
        ([10, 10, 0, 20], "boxes with zero or negative size"),
        ([10, 10, float("nan"), 20], "boxes with non-finite coordinates"),
        ([10, 10, float("inf"), 20], "boxes with non-finite coordinates"),
        ([200, 200, 5, 5], "boxes outside the image"),
    ],
)
def test_dropped_boxes_are_reported_by_their_real_reason(
    tmp_path: Path, bbox: list[float], reason: str
) -> None:
    anns = [
        dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 20, 20], area=400, iscrowd=0),
        dict(id=2, image_id=1, category_id=1, bbox=bbox, area=100, iscrowd=0),
    ]
    ann = write_coco(tmp_path / "box.json", annotations=anns)
    ds = CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"))
    # before: a zero-width or NaN box was counted as 'boxes outside the image'
    assert ds.issues.kinds == {reason: ["1.jpg"]}
    assert len(ds.get_ann_info(0)["bboxes"]) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            dict(images=[dict(id=1, file_name="1.jpg", height=80)]),
            r"images\[0\] \(id 1\): no 'width'",
        ),
        (
            dict(images=[dict(id=1, file_name=5, width=9, height=9)]),
            r"images\[0\].*'file_name' must",
        ),
        (dict(categories=[dict(id=1)]), r"categories\[0\] \(id 1\): no 'name'"),
        (
            dict(annotations=[dict(id=7, image_id=1, category_id=1, bbox=[1, 2, 3])]),
            r"annotations\[0\] \(id 7\): 'bbox' must be \[x, y, w, h\], four numbers, "
            r"got \[1, 2, 3\]",
        ),
        (
            dict(annotations=[dict(id=7, image_id=1, category_id=1, bbox=None)]),
            r"annotations\[0\] \(id 7\): 'bbox' must be",
        ),
        (
            dict(
                annotations=[dict(id=7, image_id=1, category_id=1, bbox=[1, 2, 3, 4], area="big")]
            ),
            r"annotations\[0\] \(id 7\): 'area' must be a number, got \"big\"",
        ),
        (dict(annotations=None, images=[]), r"'images' is empty"),
        (dict(annotations="x"), r"'annotations' must be a list"),
    ],
)
def test_broken_entries_are_errors_naming_the_file_and_entry(
    tmp_path: Path, changes: dict, message: str
) -> None:
    ann = write_coco(tmp_path / "broken.json", **changes)
    # before: KeyError/TypeError from pycocotools or the loader, naming neither
    with pytest.raises(DatasetError, match=r"broken\.json: " + message):
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"))


def test_top_level_list_and_deep_nesting_name_the_file(tmp_path: Path) -> None:
    ann = tmp_path / "list.json"
    ann.write_text("[]")
    with pytest.raises(DatasetError, match=r"list\.json: a COCO annotation file is a JSON object"):
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat",))
    ann.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DatasetError, match=r"list\.json: not a valid JSON file: nested too deeply"):
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat",))


def test_missing_iscrowd_and_area_are_filled_counted_and_evaluate(tmp_path: Path) -> None:
    anns = [
        dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 20, 20]),
        dict(id=2, image_id=2, category_id=2, bbox=[5, 5, 30, 10], area=300, iscrowd=0),
    ]
    ann = write_coco(tmp_path / "lean.json", annotations=anns)
    ds = CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"), test_mode=True)
    assert ds.issues.count("annotations without 'iscrowd' (taken as 0)") == 1
    assert ds.issues.count("annotations without 'area' (taken as the box's w * h)") == 1
    assert "fixed 1 annotations without 'iscrowd'" in (ds.issues.summary() or "")
    # before: pycocotools' evaluation raised KeyError: 'iscrowd'
    assert ds.evaluate(perfect_results(ds, with_masks=False))["bbox_mAP"] == 1.0
    with pytest.raises(DatasetError, match=r"iscrowd.*strict"):
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"), strict=True)


def test_no_annotations_is_an_error_in_training(tmp_path: Path) -> None:
    ann = write_coco(tmp_path / "empty.json", annotations=[])
    # before: an empty dataset, and 'need at least one array to concatenate' in the sampler
    with pytest.raises(DatasetError, match=r"empty\.json\): no training images"):
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"))
    assert len(CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat",), test_mode=True)) == 3


def test_category_named_twice_is_an_error(tmp_path: Path) -> None:
    cats = [dict(id=1, name="cat"), dict(id=2, name="dog"), dict(id=3, name="cat")]
    ann = write_coco(tmp_path / "cats.json", categories=cats)
    with pytest.raises(DatasetError, match=r"categories \['cat'\] are named more than once"):
        CocoDataset(ann_file=str(ann), pipeline=[], classes=("cat", "dog"))
