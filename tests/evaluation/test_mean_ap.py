"""Tests for detforge.evaluation.mean_ap, bbox_overlaps_np and the table formatter."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from detforge.evaluation import mean_ap as mean_ap_mod
from detforge.evaluation.mean_ap import (
    average_precision,
    eval_map,
    get_cls_results,
    print_map_summary,
    tpfp_default,
    tpfp_imagenet,
    tpfp_openimages,
)
from detforge.evaluation.overlaps import bbox_overlaps_np
from detforge.evaluation.table import format_table, print_log

# mmdet-v2.md §8.3 item 7 (4 columns: the last one doubles as the score)
DETS = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [32, 32, 38, 42]])
GTS = np.array([[0, 0, 10, 20], [0, 10, 10, 19], [10, 10, 20, 20]])
IGNORE = np.array([[5, 5, 10, 20], [6, 10, 10, 19]])


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def log_sink() -> tuple[logging.Logger, _ListHandler]:
    logger = logging.getLogger("detforge_tests.mean_ap")
    logger.handlers.clear()
    handler = _ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


# --------------------------------------------------------------------------- bbox_overlaps_np


def _slow_overlaps(b1: np.ndarray, b2: np.ndarray, mode: str, legacy: bool) -> np.ndarray:
    """Element by element with float32 scalars, the definition written out."""
    one = np.float32(1 if legacy else 0)
    out = np.zeros((len(b1), len(b2)), dtype=np.float32)
    for i, a in enumerate(b1.astype(np.float32)):
        for j, b in enumerate(b2.astype(np.float32)):
            iw = max(min(a[2], b[2]) - max(a[0], b[0]) + one, np.float32(0))
            ih = max(min(a[3], b[3]) - max(a[1], b[1]) + one, np.float32(0))
            inter = iw * ih
            area_a = (a[2] - a[0] + one) * (a[3] - a[1] + one)
            area_b = (b[2] - b[0] + one) * (b[3] - b[1] + one)
            denom = area_a + area_b - inter if mode == "iou" else area_a
            out[i, j] = inter / max(denom, np.float32(1e-6))
    return out


@pytest.mark.parametrize("mode", ["iou", "iof"])
@pytest.mark.parametrize("legacy", [False, True])
def test_bbox_overlaps_np_matches_slow_reference(mode: str, legacy: bool) -> None:
    rng = np.random.default_rng(3)
    for n, m in [(5, 7), (9, 2), (1, 1)]:
        xy1 = rng.uniform(0, 50, (n, 2))
        xy2 = rng.uniform(0, 50, (m, 2))
        b1 = np.hstack([xy1, xy1 + rng.uniform(0, 30, (n, 2))])
        b2 = np.hstack([xy2, xy2 + rng.uniform(0, 30, (m, 2))])
        got = bbox_overlaps_np(b1, b2, mode=mode, use_legacy_coordinate=legacy)
        assert got.dtype == np.float32 and got.shape == (n, m)
        np.testing.assert_allclose(got, _slow_overlaps(b1, b2, mode, legacy), rtol=1e-6)


def test_bbox_overlaps_np_literals_and_shapes() -> None:
    ious = bbox_overlaps_np(DETS, GTS)
    np.testing.assert_allclose(ious[0], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(ious[1], [0.0, 0.0, 1.0])
    assert ious[2].max() == 0
    # legacy: 11 x 11 inside 11 x 21
    assert bbox_overlaps_np(DETS[:1], GTS[:1], use_legacy_coordinate=True)[0, 0] == pytest.approx(
        121 / 231
    )
    # iof is asymmetric: over the area of the first argument
    assert bbox_overlaps_np(DETS[:1], GTS[:1], mode="iof")[0, 0] == pytest.approx(1.0)
    assert bbox_overlaps_np(GTS[:1], DETS[:1], mode="iof")[0, 0] == pytest.approx(0.5)
    assert bbox_overlaps_np(np.zeros((0, 4)), GTS).shape == (0, 3)
    assert bbox_overlaps_np(GTS, np.zeros((0, 4))).shape == (3, 0)
    with pytest.raises(ValueError, match="giou"):
        bbox_overlaps_np(GTS, GTS, mode="giou")
    with pytest.raises(ValueError, match="bboxes2"):
        bbox_overlaps_np(GTS, np.ones((2, 3)))


# --------------------------------------------------------------------------- average_precision


def test_average_precision_area_vs_11points_by_hand() -> None:
    recalls = np.array([0.5, 0.5, 1.0])
    precisions = np.array([1.0, 0.5, 2 / 3])
    # area: recall 0 -> 0.5 at envelope precision 1, 0.5 -> 1 at 2/3
    assert float(average_precision(recalls, precisions, "area")) == pytest.approx(
        0.5 + 0.5 * 2 / 3, abs=1e-6
    )
    # 11 points: thresholds 0..0.5 (6 of them) reach precision 1, 0.6..1.0 (5) reach 2/3
    assert float(average_precision(recalls, precisions, "11points")) == pytest.approx(
        (6 + 5 * 2 / 3) / 11, abs=1e-6
    )
    both = average_precision(np.vstack([recalls, recalls]), np.vstack([precisions, precisions]))
    assert both.shape == (2,) and both.dtype == np.float32
    with pytest.raises(ValueError, match="mode"):
        average_precision(recalls, precisions, "101points")
    with pytest.raises(ValueError, match="same"):
        average_precision(recalls, precisions[:2])


# --------------------------------------------------------------------------- tp / fp


@pytest.mark.parametrize("fn", [tpfp_default, tpfp_imagenet])
@pytest.mark.parametrize("legacy", [False, True])
def test_tpfp_literals(fn: object, legacy: bool) -> None:
    tp, fp = fn(DETS, GTS, gt_bboxes_ignore=IGNORE, use_legacy_coordinate=legacy)  # type: ignore[operator]
    assert tp.shape == fp.shape == (1, 3)
    np.testing.assert_array_equal(tp, [[1, 1, 0]])
    np.testing.assert_array_equal(fp, [[0, 0, 1]])


def test_tpfp_default_duplicates_ignored_and_empty_gt() -> None:
    dets = np.array([[0, 0, 10, 10, 0.9], [0, 0, 10, 10, 0.95], [50, 50, 60, 60, 0.5]])
    gts = np.array([[0, 0, 10, 10]])
    ignore = np.array([[50, 50, 60, 60]])
    tp, fp = tpfp_default(dets, gts, ignore)
    # the higher-scored duplicate takes the gt; the box on the ignored gt is neither
    np.testing.assert_array_equal(tp, [[0, 1, 0]])
    np.testing.assert_array_equal(fp, [[1, 0, 0]])
    tp, fp = tpfp_default(dets, np.zeros((0, 4)), None)
    assert tp.sum() == 0 and fp.sum() == 3
    tp, fp = tpfp_default(dets, np.zeros((0, 4)), None, area_ranges=[(0, 50), (50, 1e5)])
    np.testing.assert_array_equal(fp, [[0, 0, 0], [1, 1, 1]])


def test_tpfp_legacy_coordinates_and_imagenet_shift() -> None:
    det, gt = np.array([[0, 0, 9, 9, 1.0]]), np.array([[0, 0, 9, 19]])
    # 81 / 171 < 0.5 without the +1; 100 / 200 = 0.5 with it
    assert tpfp_default(det, gt)[0].tolist() == [[0.0]]
    assert tpfp_default(det, gt, use_legacy_coordinate=True)[0].tolist() == [[1.0]]
    # tpfp_imagenet compares against the gt moved by -1 (as v2): IoU 0.6 instead of 0.498
    det, gt = np.array([[0, 0, 20, 20, 1.0]]), np.array([[6, 1, 26, 21]])
    assert tpfp_default(det, gt)[0].tolist() == [[0.0]]
    assert tpfp_imagenet(det, gt)[0].tolist() == [[1.0]]


def test_tpfp_area_ranges() -> None:
    dets = np.array([[0, 0, 4, 4, 0.9], [20, 20, 40, 40, 0.8], [100, 100, 103, 103, 0.7]])
    gts = np.array([[0, 0, 4, 4], [20, 20, 40, 40]])
    tp, fp = tpfp_default(dets, gts, None, area_ranges=[(0, 32), (32, 1e10)])
    # small range: the large gt is out of range (its detection is neither), the stray 3x3 is FP
    np.testing.assert_array_equal(tp, [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(fp, [[0, 0, 1], [0, 0, 0]])


def test_tpfp_imagenet_small_object_threshold_and_fallback() -> None:
    # 4x4 gt: threshold min(0.5, 16 / 196) ~ 0.08, so a poor overlap still matches
    tp, fp = tpfp_imagenet(np.array([[1, 1, 8, 8, 0.9]]), np.array([[1, 1, 5, 5]]))
    assert tp.tolist() == [[1.0]] and fp.tolist() == [[0.0]]
    # second detection falls back to the other (free) gt, unlike tpfp_default
    dets = np.array([[0, 0, 20, 20, 0.9], [0, 0, 20, 20, 0.8]])
    gts = np.array([[1, 1, 21, 21], [1, 1, 19, 21]])
    assert tpfp_imagenet(dets, gts)[0].tolist() == [[1.0, 1.0]]
    assert tpfp_default(dets, gts)[0].tolist() == [[1.0, 0.0]]


def test_tpfp_openimages_group_of() -> None:
    dets = np.array(
        [[10, 10, 15, 15, 1.0], [15, 15, 30, 30, 0.98], [10, 10, 25, 25, 0.98],
         [28, 28, 35, 35, 0.97], [30, 30, 51, 51, 0.96], [100, 110, 120, 130, 0.15]]
    )  # fmt: skip
    gts = np.array([[10.0, 10.0, 30.0, 30.0], [30.0, 30.0, 50.0, 50.0]])
    no_ignore = np.zeros((0, 4))
    tp, fp, out = tpfp_openimages(
        dets, gts, no_ignore, gt_bboxes_group_of=np.array([True, False]), ioa_thr=0.5
    )
    np.testing.assert_array_equal(tp, [[0, 1, 0, 1]])
    np.testing.assert_array_equal(fp, [[1, 0, 1, 0]])
    np.testing.assert_array_equal(
        out,
        [[28, 28, 35, 35, 0.97], [30, 30, 51, 51, 0.96], [100, 110, 120, 130, 0.15],
         [10, 10, 15, 15, 1.0]],
    )  # fmt: skip
    tp, fp, out = tpfp_openimages(
        dets, gts, no_ignore, gt_bboxes_group_of=np.array([True, False]), use_group_of=False
    )
    assert tp.shape == fp.shape == (1, 6) and out.shape == (6, 5)
    tp, fp, out = tpfp_openimages(dets, gts, no_ignore, gt_bboxes_group_of=np.array([True, True]))
    assert tp.shape == (1, 3) and out.shape == (3, 5)
    _, fp, _ = tpfp_openimages(dets, np.zeros((0, 4)), no_ignore, np.empty(0, dtype=bool))
    assert fp.tolist() == [[1.0] * 6]
    with pytest.raises(ValueError, match="flags"):
        tpfp_openimages(dets, gts, no_ignore, gt_bboxes_group_of=np.array([True, False, True]))


# --------------------------------------------------------------------------- eval_map


def _literal_case(num_imgs: int) -> tuple[list[list[np.ndarray]], list[dict[str, np.ndarray]]]:
    ann = {
        "bboxes": GTS,
        "labels": np.array([0, 1, 1]),
        "bboxes_ignore": IGNORE,
        "labels_ignore": np.array([0, 1]),
    }
    return [[DETS, DETS] for _ in range(num_imgs)], [ann for _ in range(num_imgs)]


@pytest.mark.parametrize("num_imgs", [1, 2])
@pytest.mark.parametrize("legacy", [False, True])
def test_eval_map_literal(num_imgs: int, legacy: bool) -> None:
    dets, anns = _literal_case(num_imgs)
    mean_ap, results = eval_map(dets, anns, use_legacy_coordinate=legacy, logger="silent")
    assert 0.291 < mean_ap < 0.293
    assert [r["num_gts"] for r in results] == [num_imgs, 2 * num_imgs]
    assert [r["num_dets"] for r in results] == [3 * num_imgs, 3 * num_imgs]
    assert float(results[0]["ap"]) == pytest.approx(1 / 3, abs=1e-6)
    assert float(results[1]["ap"]) == pytest.approx(1 / 4, abs=1e-6)


def test_eval_map_voc07_uses_11_points() -> None:
    dets = [[np.array([[0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.8], [20, 20, 30, 30, 0.7]])]]
    anns = [{"bboxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "labels": np.array([0, 0])}]
    area, res = eval_map(dets, anns, logger="silent")
    points, _ = eval_map(dets, anns, dataset="voc07", logger="silent")
    r, p = res[0]["recall"], res[0]["precision"]
    assert area == pytest.approx(float(average_precision(r, p, "area")))
    assert points == pytest.approx(float(average_precision(r, p, "11points")))
    assert area == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-6)
    assert points == pytest.approx((6 + 5 * 2 / 3) / 11, abs=1e-6)


def test_eval_map_scale_ranges_and_empty_class() -> None:
    dets = [[np.array([[0, 0, 4, 4, 0.9], [20, 20, 60, 60, 0.8]]), np.zeros((0, 5))]]
    anns = [{"bboxes": np.array([[0, 0, 4, 4], [20, 20, 60, 60]]), "labels": np.array([0, 0])}]
    mean_ap, results = eval_map(dets, anns, scale_ranges=[(0, 32), (32, 1e5)], logger="silent")
    assert mean_ap == [1.0, 1.0]
    assert results[0]["num_gts"].tolist() == [1, 1]
    assert results[1]["num_gts"].tolist() == [0, 0]
    # a class without gts does not count toward the mean
    mean_ap, results = eval_map(dets, anns, logger="silent")
    assert mean_ap == 1.0 and results[1]["ap"] == 0


def test_eval_map_group_of() -> None:
    dets = np.array([[10, 10, 15, 15, 1.0], [30, 30, 51, 51, 0.96], [100, 110, 120, 130, 0.15]])
    ann = {
        "bboxes": np.array([[10.0, 10.0, 30.0, 30.0], [30.0, 30.0, 50.0, 50.0]]),
        "labels": np.array([0, 0]),
        "gt_is_group_ofs": np.array([True, False]),
    }
    mean_ap, results = eval_map([[dets]], [ann], use_group_of=True, logger="silent")
    # merged: the group-of gt keeps score 1.0 (TP), 0.96 TP, 0.15 FP -> AP 1
    assert results[0]["num_dets"] == 3
    assert mean_ap == pytest.approx(1.0)
    # without group-of flags the 1.0 detection is a plain FP (IoU 0.0625)
    mean_ap_plain, _ = eval_map([[dets]], [ann], logger="silent")
    assert mean_ap_plain < 0.5


def test_eval_map_pool_gives_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    num_imgs = mean_ap_mod._POOL_MIN_IMAGES + 10
    dets, anns = [], []
    for _ in range(num_imgs):
        gts = rng.uniform(0, 50, (3, 2))
        gts = np.hstack([gts, gts + rng.uniform(5, 20, (3, 2))])
        noisy = gts + rng.normal(0, 2, gts.shape)
        scores = rng.uniform(0, 1, (3, 1))
        dets.append([np.hstack([noisy, scores]), np.hstack([noisy[:1] + 30, scores[:1]])])
        anns.append({"bboxes": gts, "labels": np.array([0, 1, 0])})
    pools = []
    real_pool = mean_ap_mod.Pool

    def counting_pool(n: int) -> object:
        pools.append(n)
        return real_pool(n)

    monkeypatch.setattr(mean_ap_mod, "Pool", counting_pool)
    seq_map, seq_res = eval_map(dets, anns, nproc=1, logger="silent")
    assert pools == []
    par_map, par_res = eval_map(dets, anns, nproc=2, logger="silent")
    assert pools == [2]
    assert par_map == seq_map
    for a, b in zip(seq_res, par_res, strict=True):
        np.testing.assert_array_equal(a["precision"], b["precision"])
        np.testing.assert_array_equal(a["recall"], b["recall"])
    # a lambda cannot go to a pool: the work stays in-process and still works
    lam_map, _ = eval_map(dets, anns, nproc=2, tpfp_fn=lambda *a: tpfp_default(*a), logger="silent")
    assert lam_map == seq_map and pools == [2]


def test_eval_map_bad_input() -> None:
    dets, anns = _literal_case(2)
    with pytest.raises(ValueError, match="2 images but annotations has 1"):
        eval_map(dets, anns[:1], logger="silent")
    with pytest.raises(ValueError, match="tpfp_fn"):
        eval_map(dets, anns, tpfp_fn="tpfp_default", logger="silent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"det_results\[1\] has 1 classes"):
        eval_map([dets[0], dets[1][:1]], anns, logger="silent")


def test_get_cls_results_without_ignore() -> None:
    ann = {"bboxes": GTS, "labels": np.array([0, 1, 1])}
    cls_dets, gts, ignore = get_cls_results([[DETS, DETS[:1]]], [ann], 1)
    assert cls_dets[0].shape == (1, 4) and gts[0].tolist() == GTS[1:].tolist()
    assert ignore[0].shape == (0, 4)


# --------------------------------------------------------------------------- summaries


def test_print_map_summary_table(log_sink: tuple[logging.Logger, _ListHandler]) -> None:
    logger, handler = log_sink
    dets, anns = _literal_case(1)
    mean_ap, results = eval_map(dets, anns, dataset=["person", "car"], logger=logger)
    assert "evaluated in" in handler.messages[-1]  # the time it took comes last
    text = next(m for m in reversed(handler.messages) if "class" in m)
    lines = text.strip().splitlines()
    assert lines[1].split("|")[1:-1] == [" class  ", " gts ", " dets ", " recall ", " ap    "]
    assert "| person | 1   | 3    | 1.000  | 0.333 |" in lines
    assert "| car    | 2   | 3    | 0.500  | 0.250 |" in lines
    assert "| mAP    |     |      |        | 0.292 |" in lines
    assert lines[-3].startswith("+") and lines[-1].startswith("+")  # rule above the mAP row
    count = len(handler.messages)
    returned = print_map_summary(mean_ap, results, dataset="voc", logger="silent")
    assert "aeroplane" in returned and "bicycle" in returned
    assert len(handler.messages) == count  # 'silent' logged nothing


def test_format_table_and_print_log(log_sink: tuple[logging.Logger, _ListHandler]) -> None:
    table = format_table([["a", "bb"], [1, None], ["long cell"]])
    assert table.splitlines() == [
        "+-----------+----+",
        "| a         | bb |",
        "+-----------+----+",
        "| 1         |    |",
        "| long cell |    |",
        "+-----------+----+",
    ]
    with pytest.raises(ValueError, match="header"):
        format_table([])
    logger, handler = log_sink
    print_log("hello", logger=logger)
    print_log("dropped", logger="silent")
    assert handler.messages == ["hello"]
    with pytest.raises(TypeError, match="logger"):
        print_log("x", logger=3)  # type: ignore[arg-type]
