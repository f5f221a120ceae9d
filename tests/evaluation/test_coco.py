"""Tests for detforge.evaluation.coco: result files and COCOeval with v2 keys and rounding."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detforge.evaluation.coco import (
    COCO_METRIC_ITEMS,
    MetricKeyError,
    det2json,
    evaluate_coco,
    fast_eval_recall,
    proposal2json,
    results2json,
    run_cocoeval,
    segm2json,
)

DET_KEYS = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
AR_KEYS = ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]
# pycocotools' mask.decode (annToMask) warns under numpy 2; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
TINY_COCO = Path("tiny_coco") / "small_coco" / "instances_train2017_small.json"


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))

    def text(self) -> str:
        return "\n".join(msg for _, msg in self.messages)


@pytest.fixture
def log_sink() -> tuple[logging.Logger, _ListHandler]:
    logger = logging.getLogger("detforge_tests.coco")
    logger.handlers.clear()
    handler = _ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def _quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _poly(x: float, y: float, w: float, h: float) -> list[list[float]]:
    """A pentagon inside the box (so masks differ from boxes)."""
    return [[x, y, x + w, y, x + w, y + h * 0.6, x + w / 2, y + h, x, y + h * 0.6]]


@pytest.fixture
def small_coco(tmp_path: Path) -> tuple[COCO, Path]:
    """4 images, categories 1 'cat' and 3 'dog', polygons, one crowd annotation."""
    boxes = {  # image id -> [(cat id, x, y, w, h, iscrowd)]
        1: [(1, 5, 5, 30, 20, 0), (3, 40, 30, 50, 40, 0)],
        2: [(3, 10, 10, 20, 25, 0), (1, 50, 50, 12, 10, 0), (1, 0, 60, 30, 30, 1)],
        3: [(1, 20.5, 15.5, 60.25, 50.75, 0)],
        4: [],
    }
    images, anns = [], []
    for img_id, objs in boxes.items():
        images.append({"id": img_id, "file_name": f"{img_id}.jpg", "width": 100, "height": 96})
        for cat, x, y, w, h, crowd in objs:
            anns.append({
                "id": len(anns) + 1, "image_id": img_id, "category_id": cat,
                "bbox": [x, y, w, h], "area": w * h * 0.8, "iscrowd": crowd,
                "segmentation": _poly(x, y, w, h),
            })  # fmt: skip
    data = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
    }
    path = tmp_path / "small.json"
    path.write_text(json.dumps(data))
    return _quiet_coco(path), path


def _gt_det_results(coco: COCO, cat_ids: list[int], masks: str | None = None) -> list[Any]:
    """Ground truth as detections (score 1), per image and class; optional masks."""
    results: list[Any] = []
    for img_id in coco.getImgIds():
        boxes: list[list[list[float]]] = [[] for _ in cat_ids]
        segms: list[list[Any]] = [[] for _ in cat_ids]
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=False)):
            x, y, w, h = ann["bbox"]
            label = cat_ids.index(ann["category_id"])
            boxes[label].append([x, y, x + w, y + h, 1.0])
            if masks == "bitmap":
                segms[label].append(coco.annToMask(ann))
            elif masks == "rle":
                segms[label].append(coco.annToRLE(ann))
        det = [np.array(b, dtype=np.float32).reshape(-1, 5) for b in boxes]
        results.append(det if masks is None else (det, segms))
    return results


# --------------------------------------------------------------------------- result files


def test_json_conversions() -> None:
    box = np.array([[1.5, 2.0, 11.5, 6.0, 0.25]], dtype=np.float32)
    assert det2json([[np.zeros((0, 5)), box]], [np.int64(9)], [1, 3]) == [
        {"image_id": 9, "bbox": [1.5, 2.0, 10.0, 4.0], "score": 0.25, "category_id": 3}
    ]
    assert proposal2json([box], [4])[0]["category_id"] == 1
    mask = np.zeros((8, 12), dtype=bool)
    mask[2:5, 3:9] = True
    rle_in = {"size": [8, 12], "counts": b"abc"}
    bbox_json, segm_json = segm2json(
        [([box, box], ([[mask], [rle_in]], [[0.7], [0.6]]))], [4], [1, 3]
    )
    assert [e["category_id"] for e in bbox_json] == [1, 3]
    assert [e["score"] for e in segm_json] == [pytest.approx(0.7), pytest.approx(0.6)]
    assert segm_json[0]["bbox"] == [1.5, 2.0, 10.0, 4.0]  # v2 keeps the box on mask entries
    assert isinstance(segm_json[0]["segmentation"]["counts"], str)
    assert segm_json[1]["segmentation"]["counts"] == "abc"
    assert rle_in["counts"] == b"abc"  # the caller's mask is left alone
    with pytest.raises(ValueError, match="1 boxes but 2 masks"):
        segm2json([([box], [[mask, mask]])], [4], [1])
    with pytest.raises(ValueError, match="2 images but 1 img_ids"):
        det2json([[box], [box]], [1], [1])
    with pytest.raises(ValueError, match="only 1 cat_ids"):
        det2json([[box, box]], [1], [1])


def test_results2json_writes_loadable_files(small_coco: tuple[COCO, Path], tmp_path: Path) -> None:
    coco, _ = small_coco
    cat_ids, img_ids = coco.getCatIds(), coco.getImgIds()
    files = results2json(_gt_det_results(coco, cat_ids), img_ids, cat_ids, tmp_path / "out" / "r")
    assert files == {
        "bbox": f"{tmp_path}/out/r.bbox.json",
        "proposal": f"{tmp_path}/out/r.bbox.json",
    }
    entries = json.loads(Path(files["bbox"]).read_text())
    assert len(entries) == 5 and {e["category_id"] for e in entries} == {1, 3}
    assert len(coco.loadRes(files["bbox"]).getAnnIds()) == 5

    segm = _gt_det_results(coco, cat_ids, masks="bitmap")
    files = results2json(segm, img_ids, cat_ids, tmp_path / "s")
    assert sorted(files) == ["bbox", "proposal", "segm"]
    masks = json.loads(Path(files["segm"]).read_text())
    assert len(masks) == 5 and all(isinstance(m["segmentation"]["counts"], str) for m in masks)
    assert len(coco.loadRes(files["segm"]).getAnnIds()) == 5

    proposals = [np.array([[0, 0, 10, 10, 0.5]], dtype=np.float32) for _ in img_ids]
    files = results2json(proposals, img_ids, cat_ids, tmp_path / "p")
    assert files == {"proposal": f"{tmp_path}/p.proposal.json"}
    assert len(json.loads(Path(files["proposal"]).read_text())) == 4
    assert not list(tmp_path.glob("**/*.tmp"))
    with pytest.raises(TypeError, match="results\\[0\\]"):
        results2json([{"a": 1}], [1], cat_ids, tmp_path / "x")


# --------------------------------------------------------------------------- perfect results


def test_perfect_bbox_and_segm(
    small_coco: tuple[COCO, Path], tmp_path: Path, log_sink: tuple[logging.Logger, _ListHandler]
) -> None:
    coco, path = small_coco
    logger, handler = log_sink
    cat_ids, img_ids = coco.getCatIds(), coco.getImgIds()
    for kind in ("bitmap", "rle"):
        results = _gt_det_results(coco, cat_ids, masks=kind)
        files = results2json(results, img_ids, cat_ids, tmp_path / kind)
        out = evaluate_coco(path, files, metrics=["bbox", "segm"], logger=logger)
        assert list(out) == [f"bbox_{k}" for k in DET_KEYS] + ["bbox_mAP_copypaste"] + [
            f"segm_{k}" for k in DET_KEYS
        ] + ["segm_mAP_copypaste"]
        assert out["bbox_mAP"] == out["bbox_mAP_50"] == out["bbox_mAP_75"] == 1.0
        assert out["segm_mAP"] == out["segm_mAP_50"] == out["segm_mAP_75"] == 1.0
        assert out["bbox_mAP_copypaste"].split()[:3] == ["1.0000"] * 3
    assert "Evaluating bbox..." in handler.text()
    assert any(
        m.startswith("Evaluating segm... done in ") and m.endswith("s") for _, m in handler.messages
    )
    assert "Average Precision  (AP) @[ IoU=0.50:0.95" in handler.text()  # summarize() logged


def test_classwise_table(
    small_coco: tuple[COCO, Path], log_sink: tuple[logging.Logger, _ListHandler]
) -> None:
    coco, _ = small_coco
    logger, handler = log_sink
    cat_ids = coco.getCatIds()
    results = _gt_det_results(coco, cat_ids)
    # drop the dog of image 1: dog recall 1/2, AP = 51 / 101 of COCO's recall points
    results[0][1] = np.zeros((0, 5), dtype=np.float32)
    preds = det2json(results, coco.getImgIds(), cat_ids)
    out = evaluate_coco(coco, {"bbox": preds}, classwise=True, logger=logger)
    assert set(out) == {f"bbox_{k}" for k in DET_KEYS} | {"bbox_mAP_copypaste"}
    table = next(m for _, m in handler.messages if "category" in m).strip().splitlines()
    assert table[1] == "| category | AP    | category | AP    |"
    assert table[3] == "| cat      | 1.000 | dog      | 0.505 |"
    assert out["bbox_mAP"] == round((1 + 51 / 101) / 2, 4)


# --------------------------------------------------------------------------- real data vs COCOeval


def _perturbed_results(coco: COCO, cat_ids: list[int], seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    results = []
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        per_class: list[list[list[float]]] = [[] for _ in cat_ids]
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            if rng.random() < 0.15:
                continue  # missed
            x, y, w, h = ann["bbox"]
            x, y = x + rng.normal(0, 0.08) * w, y + rng.normal(0, 0.08) * h
            w, h = w * np.exp(rng.normal(0, 0.1)), h * np.exp(rng.normal(0, 0.1))
            label = cat_ids.index(ann["category_id"])
            if rng.random() < 0.1:
                label = int(rng.integers(len(cat_ids)))  # wrong class
            per_class[label].append([x, y, x + w, y + h, rng.uniform(0.3, 1.0)])
        for _ in range(6):  # false positives over several classes
            x, y = rng.uniform(0, info["width"] - 40), rng.uniform(0, info["height"] - 40)
            s = rng.uniform(8, 120)
            label = int(rng.integers(min(len(cat_ids), 12)))
            per_class[label].append([x, y, x + s, y + s * 0.8, rng.uniform(0.0, 0.6)])
        results.append([np.array(b, dtype=np.float32).reshape(-1, 5) for b in per_class])
    return results


def _direct_cocoeval(
    coco: COCO, preds: list[dict[str, Any]], iou_type: str, use_cats: bool = True
) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco.loadRes(copy.deepcopy(preds))
        ev = COCOeval(coco, dt, iou_type)
        ev.params.imgIds = coco.getImgIds()
        ev.params.catIds = coco.getCatIds()
        ev.params.maxDets = [100, 300, 1000]
        ev.params.iouThrs = np.linspace(0.5, 0.95, 10)
        ev.params.useCats = int(use_cats)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def test_tiny_coco_matches_pycocotools(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / TINY_COCO
    if not path.is_file():
        pytest.skip(f"{path} not found")
    coco = _quiet_coco(path)
    cat_ids, img_ids = coco.getCatIds(), coco.getImgIds()
    assert len(cat_ids) == 80 and len(img_ids) == 16
    results = _perturbed_results(coco, cat_ids, seed=0)
    files = results2json(results, img_ids, cat_ids, tmp_path / "tiny")
    preds = json.loads(Path(files["bbox"]).read_text())
    expected = _direct_cocoeval(coco, preds, "bbox")
    assert 0.05 < expected[0] < 0.95  # a non-trivial score

    out = evaluate_coco(coco, files, metrics=["bbox", "proposal"], cat_ids=cat_ids, logger="silent")
    for key, idx in COCO_METRIC_ITEMS.items():
        if idx < 6:
            assert out[f"bbox_{key}"] == float(f"{expected[idx]:.4f}"), key
    assert out["bbox_mAP_copypaste"] == " ".join(f"{v:.4f}" for v in expected[:6])
    raw = run_cocoeval(coco, preds, "bbox", cat_ids=cat_ids, img_ids=img_ids, logger="silent")
    np.testing.assert_array_equal(raw.stats, expected)  # all 12, unrounded

    expected_ar = _direct_cocoeval(coco, preds, "bbox", use_cats=False)
    assert [out[k] for k in AR_KEYS] == [float(f"{expected_ar[6 + i]:.4f}") for i in range(6)]


def test_tiny_coco_segm_matches_pycocotools(shared_data: Path) -> None:
    path = shared_data / TINY_COCO
    if not path.is_file():
        pytest.skip(f"{path} not found")
    coco = _quiet_coco(path)
    rng = np.random.default_rng(1)
    preds = []
    for ann in coco.loadAnns(coco.getAnnIds(iscrowd=False)):
        mask = np.roll(coco.annToMask(ann), tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
        x, y, w, h = ann["bbox"]
        preds.append({
            "image_id": ann["image_id"], "category_id": ann["category_id"],
            "bbox": [x, y, w, h], "score": float(rng.uniform(0.2, 1)),
            "segmentation": segm2json([([np.array([[x, y, x + w, y + h, 1]])], [[mask]])],
                                      [0], [0])[1][0]["segmentation"],
        })  # fmt: skip
    without_box = [{k: v for k, v in p.items() if k != "bbox"} for p in preds]
    expected = _direct_cocoeval(coco, without_box, "segm")
    out = evaluate_coco(coco, {"segm": preds}, metrics="segm", logger="silent")
    assert [out[f"segm_{k}"] for k in DET_KEYS] == [float(f"{v:.4f}") for v in expected[:6]]
    assert "bbox" in preds[0]  # the caller's list is not modified


def test_json_boxes_are_float64_differences_of_the_float32_corners() -> None:
    # v2 writes bbox.tolist() arithmetic: Python (float64) differences of float32 corners.
    box = np.array([[0.1, 0.7, 1000.3, 3.3, 0.5]], dtype=np.float32)
    x1, y1, x2, y2 = (float(v) for v in box[0, :4])
    want = [x1, y1, x2 - x1, y2 - y1]
    assert float(box[0, 2] - box[0, 0]) != want[2]  # float32 arithmetic would differ
    assert det2json([[box]], [1], [1])[0]["bbox"] == want
    assert proposal2json([box], [1])[0]["bbox"] == want
    assert segm2json([([box], [[np.ones((2, 2), bool)]])], [1], [1])[0][0]["bbox"] == want
    assert det2json([[np.array([[1, 2, 4, 8, 1]])]], [1], [1])[0]["bbox"] == [1, 2, 3, 6]


def test_fast_eval_recall_gt_boxes_are_v2_float32_of_float64_sums(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import detforge.evaluation.coco as coco_mod

    anns = [dict(bbox=[0.1, 0.2, 1000.3, 0.7]), dict(bbox=[1, 2, 3, 4], iscrowd=1)]

    class FakeCoco:
        def getAnnIds(self, imgIds: object) -> list[int]:
            return [0, 1] if imgIds == 1 else []

        def loadAnns(self, ids: list[int]) -> list[dict[str, object]]:
            return [anns[i] for i in ids]

    seen: list[np.ndarray] = []

    def fake_eval_recalls(gts: list[np.ndarray], *args: object, **kwargs: object) -> np.ndarray:
        seen.extend(gts)
        return np.zeros((1, 1))

    monkeypatch.setattr(coco_mod, "eval_recalls", fake_eval_recalls)
    props = [np.zeros((0, 5), np.float32)] * 2
    fast_eval_recall(props, FakeCoco(), [1, 2], proposal_nums=(1,))  # type: ignore[arg-type]
    x, y, w, h = anns[0]["bbox"]  # type: ignore[misc]
    want = np.array([[x, y, x + w, y + h]], dtype=np.float32)  # Python sums, then float32
    assert np.float32(x) + np.float32(w) != want[0, 2]  # float32 sums would differ
    assert seen[0].dtype == np.float32 and np.array_equal(seen[0], want)
    assert seen[1].shape == (0, 4) and seen[1].dtype == np.float32


def test_segm2json_needs_mask_results() -> None:
    box = np.array([[0, 0, 2, 2, 0.5]], np.float32)
    with pytest.raises(TypeError, match="image 0 must be a \\(det, segm\\) tuple"):
        segm2json([[box]], [1], [1])
    with pytest.raises(TypeError, match="got 3 items"):
        segm2json([([box], [[]], None)], [1], [1])


# --------------------------------------------------------------------------- proposals / errors


def test_proposal_metrics(small_coco: tuple[COCO, Path]) -> None:
    coco, _ = small_coco
    img_ids = coco.getImgIds()
    proposals = []
    for img_id in img_ids:
        boxes = [
            [
                a["bbox"][0],
                a["bbox"][1],
                a["bbox"][0] + a["bbox"][2],
                a["bbox"][1] + a["bbox"][3],
                1,
            ]
            for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=False))
        ]
        boxes.append([0, 0, 3, 3, 0.1])
        proposals.append(np.array(boxes, dtype=np.float32))
    preds = proposal2json(proposals, img_ids)
    given = {"proposal": preds, "proposal_fast": proposals}
    out = evaluate_coco(coco, given, metrics=["proposal", "proposal_fast"], logger="silent")
    # proposal_fast writes AR@100/300/1000 again (same keys as v2), after the COCOeval ones
    assert list(out) == AR_KEYS and out["AR@100"] == 1.0
    ar = fast_eval_recall(proposals, coco, img_ids, proposal_nums=(1, 100))
    assert ar.shape == (2,) and ar[1] == 1.0 and ar[0] < 1.0
    only = evaluate_coco(
        coco, {"proposal": preds}, metrics="proposal", metric_items="AR@100", logger="silent"
    )
    assert list(only) == ["AR@100"]
    with pytest.raises(TypeError, match="proposal_fast needs one proposal ndarray"):
        fast_eval_recall([[p] for p in proposals], coco, img_ids)  # type: ignore[list-item]


def test_metric_items_and_errors(
    small_coco: tuple[COCO, Path], log_sink: tuple[logging.Logger, _ListHandler]
) -> None:
    coco, _ = small_coco
    logger, handler = log_sink
    preds = det2json(_gt_det_results(coco, coco.getCatIds()), coco.getImgIds(), coco.getCatIds())
    out = evaluate_coco(coco, {"bbox": preds}, metric_items=["mAP_50", "AR@100"], logger="silent")
    assert list(out) == ["bbox_mAP_50", "bbox_AR@100", "bbox_mAP_copypaste"]
    assert out["bbox_mAP_50"] == 1.0
    with pytest.raises(
        MetricKeyError, match="metric item 'mAP_90' is not supported; allowed: mAP, mAP_50"
    ):
        evaluate_coco(coco, {"bbox": preds}, metric_items="mAP_90", logger="silent")
    with pytest.raises(
        MetricKeyError, match="metric 'keypoints' is not supported; allowed: bbox, segm"
    ):
        evaluate_coco(coco, {"bbox": preds}, metrics="keypoints", logger="silent")
    with pytest.raises(KeyError, match="segm is not in results; given: bbox"):
        evaluate_coco(coco, {"bbox": preds}, metrics="segm", logger="silent")
    with pytest.raises(ValueError, match="not in the COCO ground truth"):
        evaluate_coco(coco, {"bbox": [dict(preds[0], image_id=999)]}, logger="silent")
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        evaluate_coco("nope.json", {"bbox": preds})
    # empty results: logged as an error, that metric is skipped, the next one still runs
    out = evaluate_coco(coco, {"bbox": [], "proposal_fast": [np.zeros((0, 5))] * 4},
                        metrics=["bbox", "proposal_fast"], logger=logger)  # fmt: skip
    assert list(out) == ["AR@100", "AR@300", "AR@1000"] and out["AR@100"] == 0.0
    assert (logging.ERROR, "The testing results of the whole dataset is empty.") in handler.messages
