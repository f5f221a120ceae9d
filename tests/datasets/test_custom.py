"""CustomDataset middle format, classes overrides, wrappers and v2 evaluation keys."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from detforge.datasets import (
    ClassBalancedDataset,
    ConcatDataset,
    CustomDataset,
    DatasetError,
    RepeatDataset,
    build_dataset,
)
from detforge.datasets.issues import UNREADABLE_IMAGES, UnreadableImage
from detforge.utils.image import ImageLoadError
from detforge.utils.safe_pickle import UnsafePickleError
from tests.conftest import write_code_pickle


def write_pkl(path: Path, extra_bad: bool = False) -> None:
    entries = [
        dict(
            filename="a.jpg",
            width=100,
            height=50,
            ann=dict(
                bboxes=np.array([[10, 10, 30, 30], [40, 5, 60, 45]], np.float32),
                labels=np.array([0, 1]),
            ),
        ),
        dict(
            filename="b.jpg",
            width=40,
            height=80,
            ann=dict(bboxes=np.array([[1, 1, 20, 30]], np.float32), labels=np.array([1])),
        ),
        dict(filename="tiny.jpg", width=20, height=20, ann=dict(bboxes=[], labels=[])),
    ]
    if extra_bad:
        entries[1]["ann"]["bboxes"] = np.array([[1, 1, 20, 30], [5, 5, 5, 9]], np.float32)
        entries[1]["ann"]["labels"] = np.array([1, 7])
    path.write_bytes(pickle.dumps(entries))


def perfect(ds: CustomDataset) -> list:
    out = []
    for i in range(len(ds)):
        ann = ds.get_ann_info(i)
        res = [np.zeros((0, 5), np.float32) for _ in ds.CLASSES]
        for box, label in zip(ann["bboxes"], ann["labels"], strict=True):
            res[label] = np.vstack([res[label], [*box, 1.0]]).astype(np.float32)
        out.append(res)
    return out


@pytest.fixture()
def pkl(tmp_path: Path) -> Path:
    path = tmp_path / "ann.pkl"
    write_pkl(path)
    return path


def test_middle_format_and_min_size_filter(pkl: Path) -> None:
    ds = CustomDataset(ann_file=str(pkl), pipeline=[], classes=("a", "b"))
    assert len(ds) == 2  # tiny.jpg (20 px) dropped in training mode
    assert ds.flag.tolist() == [1, 0]
    assert (
        len(CustomDataset(ann_file=str(pkl), pipeline=[], classes=("a", "b"), test_mode=True)) == 3
    )
    assert ds.get_cat_ids(0) == [0, 1]
    assert ds.get_cat2imgs() == {0: [0], 1: [0, 1]}
    assert "1 [b]: 2" in repr(ds)


@pytest.mark.parametrize("classes", [("a", "b"), ["a", "b"], "file"])
def test_classes_from_tuple_list_or_file(pkl: Path, tmp_path: Path, classes) -> None:
    if classes == "file":
        (tmp_path / "classes.txt").write_text("a\nb\n\n")
        classes = str(tmp_path / "classes.txt")
    ds = CustomDataset(ann_file=str(pkl), pipeline=[], classes=classes)
    # v2 keeps the type given: a tuple stays a tuple, a list (or a file's lines) is a list
    expected = ("a", "b") if isinstance(classes, tuple) else ["a", "b"]
    assert expected == ds.CLASSES
    with pytest.raises(ValueError, match="Unsupported type"):
        CustomDataset.get_classes(3)  # type: ignore[arg-type]


def test_bad_boxes_and_labels_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    write_pkl(path, extra_bad=True)
    ds = CustomDataset(ann_file=str(path), pipeline=[], classes=("a", "b"))
    assert ds.issues.count() == 1  # the zero-width box (its label 7 is never reached)
    assert len(ds.get_ann_info(1)["bboxes"]) == 1
    with pytest.raises(DatasetError, match=r"b\.jpg"):
        CustomDataset(ann_file=str(path), pipeline=[], classes=("a", "b"), strict=True)


def test_missing_annotation_file_says_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="DETFORGE_DATASETS"):
        CustomDataset(ann_file="nope.pkl", pipeline=[], data_root=str(tmp_path))


def test_evaluate_map_and_concat_keys(pkl: Path) -> None:
    ds = CustomDataset(ann_file=str(pkl), pipeline=[], classes=("a", "b"), test_mode=True)
    assert ds.evaluate(perfect(ds))["mAP"] == pytest.approx(1.0)
    both = ConcatDataset([ds, ds])
    metrics = both.evaluate(perfect(ds) * 2)
    assert metrics["0_mAP"] == pytest.approx(1.0) and metrics["1_mAP"] == pytest.approx(1.0)
    whole = ConcatDataset([ds, ds], separate_eval=False)
    assert whole.evaluate(perfect(ds) * 2)["mAP"] == pytest.approx(1.0)


def test_repeat_and_class_balanced(pkl: Path) -> None:
    ds = CustomDataset(ann_file=str(pkl), pipeline=[], classes=("a", "b"))
    rep = build_dataset(dict(type="RepeatDataset", times=3, dataset=dict(
        type="CustomDataset", ann_file=str(pkl), pipeline=[], classes=("a", "b"))))  # fmt: skip
    assert isinstance(rep, RepeatDataset) and len(rep) == 6
    assert rep.flag.tolist() == [1, 0] * 3
    # class a is in 1 of 2 images (f=0.5), b in both (f=1); thr 1.0 -> a repeats sqrt(2) -> 2x
    cbd = ClassBalancedDataset(ds, oversample_thr=1.0)
    assert cbd.repeat_indices == [0, 0, 1]
    assert cbd.flag.tolist() == [1, 1, 0]
    # v2's wrappers answer get_ann_info (and get_cat_ids) for the image behind an index
    assert rep.get_ann_info(3)["labels"].tolist() == [1] == rep.get_cat_ids(3)
    assert cbd.get_ann_info(1)["labels"].tolist() == [0, 1] == cbd.get_cat_ids(1)
    assert cbd.get_ann_info(2)["labels"].tolist() == [1]


def test_pipeline_returning_none_gives_up_naming_images(pkl: Path) -> None:
    ds = CustomDataset(
        ann_file=str(pkl), pipeline=[lambda r: None], classes=("a", "b"), max_refetch=3
    )
    with pytest.raises(DatasetError, match=r"a\.jpg|b\.jpg"):
        ds[0]


def test_non_finite_boxes_are_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "nan.pkl"
    write_pkl(path)
    entries = pickle.loads(path.read_bytes())
    entries[0]["ann"]["bboxes"][1, 2] = np.nan
    path.write_bytes(pickle.dumps(entries))
    ds = CustomDataset(ann_file=str(path), pipeline=[], classes=("a", "b"))
    # before: counted as 'boxes with zero or negative size'
    assert ds.issues.kinds == {"boxes with non-finite coordinates": ["a.jpg"]}


def test_no_training_image_left_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "small.pkl"
    path.write_bytes(pickle.dumps([dict(filename="t.jpg", width=20, height=20)]))
    with pytest.raises(DatasetError, match=r"small\.pkl\): no training images: of the 1 images"):
        CustomDataset(ann_file=str(path), pipeline=[], classes=("a",))
    assert len(CustomDataset(ann_file=str(path), pipeline=[], classes=("a",), test_mode=True)) == 1


@pytest.fixture()
def one_unreadable(tmp_path: Path) -> dict:
    """Three 64x48 images listed in a middle-format file; b.png is corrupt."""
    info = dict(width=64, height=48, ann=dict(bboxes=np.array([[1, 1, 20, 20]], np.float32),
                                              labels=np.array([0])))  # fmt: skip
    entries = [dict(filename=name, **info) for name in ("a.png", "b.png", "c.png")]
    (tmp_path / "ann.pkl").write_bytes(pickle.dumps(entries))
    for name in ("a.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.full((48, 64, 3), 90, np.uint8))
    (tmp_path / "b.png").write_bytes(b"not a png")
    return dict(ann_file=str(tmp_path / "ann.pkl"), img_prefix=str(tmp_path), classes=("a",),
                pipeline=[dict(type="LoadImageFromFile")])  # fmt: skip


def test_train_skips_an_unreadable_image_once_counted(
    one_unreadable: dict, caplog: pytest.LogCaptureFixture
) -> None:
    ds = CustomDataset(**one_unreadable)
    with caplog.at_level(logging.WARNING, logger="detforge"):
        drawn = [ds[1]["img_info"]["filename"] for _ in range(3)]
    assert set(drawn) <= {"a.png", "c.png"}  # another image of the same aspect group
    assert ds.issues.kinds == {UNREADABLE_IMAGES: ["b.png"]}
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 1 and "b.png" in warnings[0]


def test_test_mode_returns_a_marker_and_strict_raises(one_unreadable: dict) -> None:
    marker = CustomDataset(**one_unreadable, test_mode=True)[1]
    assert isinstance(marker, UnreadableImage) and marker.filename == "b.png"
    assert marker.reason.endswith("b.png") and "could not decode" in marker.reason
    for test_mode in (False, True):
        strict = CustomDataset(**one_unreadable, test_mode=test_mode, strict=True)
        with pytest.raises(ImageLoadError, match=r"b\.png"):
            strict[1]


def test_annotation_and_proposal_pickles_that_carry_code_are_refused(
    pkl: Path, tmp_path: Path
) -> None:
    evil, marker = tmp_path / "evil.pkl", tmp_path / "ran"
    write_code_pickle(evil, marker)
    with pytest.raises(UnsafePickleError, match=r"middle-format annotations .*evil\.pkl holds"):
        CustomDataset(ann_file=str(evil), pipeline=[], classes=("a", "b"))
    with pytest.raises(UnsafePickleError, match=r"proposal file .*evil\.pkl holds"):
        CustomDataset(ann_file=str(pkl), pipeline=[], classes=("a", "b"), proposal_file=str(evil))
    assert not marker.exists()
