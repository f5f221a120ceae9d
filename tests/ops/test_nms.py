"""NMS ops: mmcv's literal cases, slow reference implementations and MMCV's real batched data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.errors import ConfigTypeError, ConfigValueError, UnexpectedKeyError, UnknownTypeError
from detforge.ops import batched_nms, multiclass_nms, nms, soft_nms
from detforge.ops.nms import check_nms_cfg

BOXES = [[6.0, 3.0, 8.0, 7.0], [3.0, 6.0, 9.0, 11.0], [3.0, 7.0, 10.0, 12.0], [1.0, 4.0, 13.0, 7.0]]
SCORES = [0.6, 0.9, 0.7, 0.2]


def _random_boxes(num: int, seed: int, size: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, size, (num, 2))
    wh = rng.uniform(5, size / 3, (num, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    return boxes, rng.uniform(0, 1, num).astype(np.float32)


def _slow_nms(boxes: np.ndarray, scores: np.ndarray, thr: float, offset: int) -> list[int]:
    """mmcv's greedy CPU kernel, one pair at a time."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    suppressed = set()
    keep = []
    for a, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[a + 1 :]:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]) + offset)
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]) + offset)
            area_i = (boxes[i, 2] - boxes[i, 0] + offset) * (boxes[i, 3] - boxes[i, 1] + offset)
            area_j = (boxes[j, 2] - boxes[j, 0] + offset) * (boxes[j, 3] - boxes[j, 1] + offset)
            if w * h / (area_i + area_j - w * h) > thr:
                suppressed.add(j)
    return keep


def _slow_soft_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    thr: float,
    sigma: float,
    min_score: float,
    method: str,
    offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """A literal float32 transcription of mmcv's soft-NMS CPU loop (swap-with-last removal)."""
    f32 = np.float32
    rows = [[f32(v) for v in box] for box in boxes]
    sc = [f32(s) for s in scores]
    areas = [(r[2] - r[0] + f32(offset)) * (r[3] - r[1] + f32(offset)) for r in rows]
    inds = list(range(len(sc)))
    dets = []
    n = len(sc)
    i = 0
    while i < n:
        best = i
        for pos in range(i + 1, n):
            if sc[best] < sc[pos]:
                best = pos
        for seq in (rows, sc, areas, inds):
            seq[i], seq[best] = seq[best], seq[i]
        dets.append([*rows[i], sc[i]])
        pos = i + 1
        while pos < n:
            w = max(f32(0), min(rows[i][2], rows[pos][2]) - max(rows[i][0], rows[pos][0]) + offset)
            h = max(f32(0), min(rows[i][3], rows[pos][3]) - max(rows[i][1], rows[pos][1]) + offset)
            inter = f32(w * h)
            ovr = f32(inter / f32(areas[i] + areas[pos] - inter))
            weight = f32(1)
            if method == "naive" and ovr >= f32(thr):
                weight = f32(0)
            elif method == "linear" and ovr >= f32(thr):
                weight = f32(1) - ovr
            elif method == "gaussian":
                weight = np.exp(-(ovr * ovr) / f32(sigma))
            sc[pos] = f32(sc[pos] * weight)
            if sc[pos] < f32(min_score):
                for seq in (rows, sc, areas, inds):
                    seq[pos] = seq[n - 1]
                n -= 1
                pos -= 1
            pos += 1
        i += 1
    return np.array(dets, dtype=np.float32).reshape(-1, 5), np.array(inds[:n])


# ----------------------------------------------------------------------------- nms


def test_nms_mmcv_case() -> None:
    dets, keep = nms(torch.tensor(BOXES), torch.tensor(SCORES), iou_threshold=0.3, offset=0)
    assert keep.tolist() == [1, 0, 3]
    expected = [[3, 6, 9, 11, 0.9], [6, 3, 8, 7, 0.6], [1, 4, 13, 7, 0.2]]
    torch.testing.assert_close(dets, torch.tensor(expected))


def test_nms_numpy_in_numpy_out() -> None:
    dets, keep = nms(np.array(BOXES, np.float32), np.array(SCORES, np.float32), 0.3)
    assert isinstance(dets, np.ndarray) and isinstance(keep, np.ndarray)
    assert keep.tolist() == [1, 0, 3]
    assert dets.shape == (3, 5)


@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_slow_reference(offset: int, thr: float) -> None:
    boxes, scores = _random_boxes(200, seed=int(thr * 10) + offset)
    _, keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr, offset=offset)
    assert keep.tolist() == _slow_nms(boxes, scores, thr, offset)


def test_nms_offset_one_changes_result() -> None:
    # Two 2x2 boxes sharing one column: IoU 1/3 without offset, 2/4 ... with +1 sizes: 6/12.
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.4, offset=0)[1].tolist() == [0, 1]
    assert nms(boxes, scores, 0.4, offset=1)[1].tolist() == [0]


def test_nms_score_threshold_and_max_num() -> None:
    boxes, scores = torch.tensor(BOXES), torch.tensor(SCORES)
    _, keep = nms(boxes, scores, 0.3, score_threshold=0.5)
    assert keep.tolist() == [1, 0]  # index 3 (0.2) is dropped before NMS
    _, keep = nms(boxes, scores, 0.3, max_num=2)
    assert keep.tolist() == [1, 0]
    _, keep = nms(boxes, scores, 0.99, score_threshold=0.65)
    assert keep.tolist() == [1, 2]  # indices refer to the unfiltered input


def test_nms_empty_and_bad_input() -> None:
    dets, keep = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert dets.shape == (0, 5) and keep.numel() == 0
    with pytest.raises(ValueError, match="boxes must be"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores must be"):
        nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="offset"):
        nms(torch.zeros(3, 4), torch.zeros(3), 0.5, offset=2)


def test_nms_dets_carry_gradients() -> None:
    boxes = torch.tensor(BOXES, requires_grad=True)
    scores = torch.tensor(SCORES, requires_grad=True)
    dets, _ = nms(boxes, scores, 0.3)
    dets.sum().backward()
    assert boxes.grad is not None and boxes.grad.sum().item() == 12.0
    assert scores.grad is not None and scores.grad.tolist() == [1.0, 1.0, 0.0, 1.0]


# ----------------------------------------------------------------------------- soft_nms


@pytest.mark.parametrize(
    ("method", "expected_scores", "expected_inds"),
    [
        ("linear", [0.9, 0.6, 0.29024392, 0.2], [1, 0, 2, 3]),
        ("gaussian", [0.9, 0.59630775, 0.35275510, 0.18650459], [1, 0, 2, 3]),
        ("naive", [0.9, 0.6, 0.2], [1, 0, 3]),
    ],
)
def test_soft_nms_mmcv_cases(
    method: str, expected_scores: list[float], expected_inds: list[int]
) -> None:
    dets, inds = soft_nms(
        torch.tensor(BOXES),
        torch.tensor(SCORES),
        iou_threshold=0.3,
        sigma=0.5,
        min_score=0.01,
        method=method,
    )
    assert inds.tolist() == expected_inds
    torch.testing.assert_close(dets[:, 4], torch.tensor(expected_scores))
    torch.testing.assert_close(dets[:, :4], torch.tensor(BOXES)[inds])


@pytest.mark.parametrize("method", ["naive", "linear", "gaussian"])
@pytest.mark.parametrize("offset", [0, 1])
def test_soft_nms_matches_slow_reference(method: str, offset: int) -> None:
    boxes, scores = _random_boxes(60, seed=3 + offset, size=50.0)
    dets, inds = soft_nms(boxes, scores, 0.3, 0.5, 0.05, method, offset)
    ref_dets, ref_inds = _slow_soft_nms(boxes, scores, 0.3, 0.5, 0.05, method, offset)
    assert 0 < len(inds) < 60 if method != "gaussian" else len(inds) > 0
    np.testing.assert_array_equal(inds, ref_inds)
    np.testing.assert_allclose(dets, ref_dets, rtol=1e-6, atol=1e-7)


def test_soft_nms_empty_and_bad_method() -> None:
    dets, inds = soft_nms(torch.zeros(0, 4), torch.zeros(0))
    assert dets.shape == (0, 5) and inds.shape == (0,) and inds.dtype == torch.int64
    with pytest.raises(ValueError, match="method"):
        soft_nms(torch.tensor(BOXES), torch.tensor(SCORES), method="cubic")


# ----------------------------------------------------------------------------- batched_nms


@pytest.fixture(scope="module")
def batched_data(shared_data: Path) -> dict[str, torch.Tensor]:
    path = shared_data / "mmcv_nms" / "tests" / "data" / "batched_nms_data.pkl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with open(path, "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    return {k: torch.from_numpy(v) for k, v in raw.items()}


def test_batched_nms_real_data(batched_data: dict[str, torch.Tensor]) -> None:
    args = (batched_data["boxes"], batched_data["scores"], batched_data["idxs"])
    cfg = dict(type="nms", iou_threshold=0.7)
    dets, keep = batched_nms(*args, cfg)
    assert keep.tolist() == batched_data["keep"].tolist()
    seq_dets, seq_keep = batched_nms(*args, {**cfg, "split_thr": 100})
    assert torch.equal(keep, seq_keep)
    assert torch.equal(dets, seq_dets)
    # mmcv's own check: score_threshold=0.5 and max_num=100 keep the first 100 indices.
    capped = dict(type="nms", iou_threshold=0.7, score_threshold=0.5, max_num=100)
    dets, keep = batched_nms(*args, capped)
    assert keep.tolist() == batched_data["keep"][:100].tolist()
    seq_dets, seq_keep = batched_nms(*args, {**capped, "split_thr": 100})
    assert torch.equal(keep, seq_keep) and torch.equal(dets, seq_dets)


def test_batched_soft_nms_split_equals_joint(batched_data: dict[str, torch.Tensor]) -> None:
    args = (batched_data["boxes"], batched_data["scores"], batched_data["idxs"])
    dets, keep = batched_nms(*args, dict(type="soft_nms", iou_threshold=0.7))
    seq_dets, seq_keep = batched_nms(*args, dict(type="soft_nms", iou_threshold=0.7, split_thr=100))
    assert torch.equal(keep, seq_keep)
    assert torch.equal(dets, seq_dets)
    assert (dets[1:, 4] <= dets[:-1, 4]).all()


def test_batched_nms_without_cfg_sorts(batched_data: dict[str, torch.Tensor]) -> None:
    dets, keep = batched_nms(
        batched_data["boxes"], batched_data["scores"], batched_data["idxs"], None
    )
    assert len(keep) == len(batched_data["boxes"])
    assert ((dets[1:, -1] - dets[:-1, -1]) < 0).all()


def test_batched_nms_classes_do_not_suppress_each_other() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.5, 0.9, 0.7])
    idxs = torch.tensor([0, 1, 0])
    dets, keep = batched_nms(boxes, scores, idxs, dict(iou_threshold=0.5))
    assert keep.tolist() == [1, 2]
    assert dets[:, 4].tolist() == pytest.approx([0.9, 0.7])
    _, keep = batched_nms(boxes, scores, idxs, dict(iou_threshold=0.5), class_agnostic=True)
    assert keep.tolist() == [1]
    _, keep = batched_nms(boxes, scores, idxs, dict(iou_threshold=0.5, class_agnostic=True))
    assert keep.tolist() == [1]
    _, keep = batched_nms(boxes, scores, idxs, dict(iou_threshold=0.5, split_thr=1))
    assert keep.tolist() == [1, 2]


def test_batched_nms_max_num_in_split_path_applies_after_merging() -> None:
    boxes, scores = _random_boxes(50, seed=7)
    idxs = torch.arange(50) % 3
    cfg = dict(type="nms", iou_threshold=0.5, max_num=5)
    dets, keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), idxs, cfg)
    seq_dets, seq_keep = batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), idxs, {**cfg, "split_thr": 1}
    )
    assert len(keep) == 5
    assert torch.equal(keep, seq_keep)
    assert torch.equal(dets, seq_dets)


def test_batched_nms_empty_and_errors() -> None:
    dets, keep = batched_nms(
        torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), dict(iou_threshold=0.5)
    )
    assert dets.shape == (0, 5) and keep.shape == (0,)
    with pytest.raises(UnknownTypeError, match=r"not supported.*did you mean 'nms'"):
        batched_nms(torch.zeros(1, 4), torch.zeros(1), torch.zeros(1), dict(type="nmx"))
    with pytest.raises(UnexpectedKeyError, match="unexpected key 'iou_thresh'"):
        batched_nms(torch.zeros(1, 4), torch.zeros(1), torch.zeros(1), dict(iou_thresh=0.5))
    with pytest.warns(DeprecationWarning, match="iou_thr"):
        _, keep = batched_nms(
            torch.tensor(BOXES), torch.tensor(SCORES), torch.zeros(4), dict(iou_thr=0.3)
        )
    assert keep.tolist() == [1, 0, 3]


# ----------------------------------------------------------------------------- multiclass_nms


def _two_class_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    bboxes = torch.tensor(BOXES)
    scores = torch.tensor([[0.6, 0.1, 0.3], [0.9, 0.05, 0.05], [0.7, 0.8, 0.0], [0.2, 0.4, 0.4]])
    return bboxes, scores


def test_multiclass_nms_shapes_and_order() -> None:
    bboxes, scores = _two_class_inputs()
    dets, labels, inds = multiclass_nms(
        bboxes, scores, 0.15, dict(type="nms", iou_threshold=0.3), return_inds=True
    )
    # class 0: keep 1 (0.9), 0 (0.6), 3 (0.2); class 1: keep 2 (0.8), 3 (0.4); 0.1, 0.05 dropped
    assert dets[:, 4].tolist() == pytest.approx([0.9, 0.8, 0.6, 0.4, 0.2])
    assert labels.tolist() == [0, 1, 0, 1, 0]
    assert inds.tolist() == [2, 5, 0, 7, 6]  # flattened (box * num_classes + class)
    torch.testing.assert_close(dets[:, :4], bboxes[inds // 2])
    dets, labels = multiclass_nms(bboxes, scores, 0.15, dict(iou_threshold=0.3), max_num=2)
    assert labels.tolist() == [0, 1] and dets.shape == (2, 5)


def test_multiclass_nms_score_factors_apply_after_threshold() -> None:
    bboxes, scores = _two_class_inputs()
    factors = torch.tensor([1.0, 0.1, 1.0, 1.0])
    dets, labels = multiclass_nms(
        bboxes, scores, 0.15, dict(iou_threshold=0.3), score_factors=factors
    )
    # Box 1 passes the threshold with 0.9, then scores 0.09: box 2 (0.7) now wins class 0
    # and suppresses it, instead of being suppressed by it.
    assert dets[:, 4].tolist() == pytest.approx([0.8, 0.7, 0.6, 0.4, 0.2])
    assert labels.tolist() == [1, 0, 0, 1, 0]


def test_multiclass_nms_per_class_boxes_and_empty() -> None:
    bboxes, scores = _two_class_inputs()
    per_class = torch.cat([bboxes, bboxes + 100], dim=1)  # class 1 boxes elsewhere
    dets, labels = multiclass_nms(per_class, scores, 0.15, dict(iou_threshold=0.3))
    assert (dets[labels == 1, :4] >= 100).all() and (dets[labels == 0, :4] < 100).all()
    dets, labels, inds = multiclass_nms(
        bboxes, scores, 0.95, dict(iou_threshold=0.3), return_inds=True
    )
    assert dets.shape == (0, 5) and labels.shape == (0,) and inds.shape == (0,)


def test_check_nms_cfg_names_the_path_and_the_closest_key() -> None:
    with pytest.raises(UnexpectedKeyError) as info:
        check_nms_cfg(dict(type="nms", iou_threshol=0.3), "model.test_cfg.rcnn.nms")
    assert str(info.value).startswith(
        "model.test_cfg.rcnn.nms: unexpected key 'iou_threshol' for nms; "
        "did you mean 'iou_threshold'"
    )
    with pytest.raises(UnexpectedKeyError, match="'sigm' for soft_nms; did you mean 'sigma'"):
        check_nms_cfg(dict(type="soft_nms", sigm=0.5), "test_cfg.nms")
    with pytest.raises(UnknownTypeError, match=r"^test_cfg\.nms: type='soft-nms' .*'soft_nms'"):
        check_nms_cfg(dict(type="soft-nms", iou_threshold=0.5), "test_cfg.nms")
    with pytest.raises(ConfigTypeError, match=r"^t\.nms\.iou_threshold: expected a number"):
        check_nms_cfg(dict(iou_threshold="0.5"), "t.nms")
    with pytest.raises(ConfigTypeError, match=r"^t\.nms\.max_num: expected an integer"):
        check_nms_cfg(dict(iou_threshold=0.5, max_num=1.5), "t.nms")
    with pytest.raises(ConfigValueError, match=r"^t\.nms\.method: expected one of"):
        check_nms_cfg(dict(type="soft_nms", method="linar"), "t.nms")
    with pytest.raises(ConfigTypeError, match=r"^t\.nms: expected dict"):
        check_nms_cfg("nms", "t.nms")


def test_check_nms_cfg_accepts_every_v2_spelling() -> None:
    for cfg in (
        None,
        dict(type="nms", iou_threshold=0.5),
        dict(iou_thr=0.5),  # before mmdet 2.3, still read (with a warning) by batched_nms
        dict(type="nms", iou_threshold=0.7, class_agnostic=True, split_thr=100, max_num=10),
        dict(type="nms", iou_threshold=0.5, offset=1, score_threshold=0.05),
        dict(type="soft_nms", iou_threshold=0.3, sigma=0.5, min_score=1e-3, method="gaussian"),
        dict(type="soft_nms", iou_threshold=0.3, max_num=100),
    ):
        check_nms_cfg(cfg, "x.nms")
