import cv2
import numpy as np

from detforge.serving.results import draw_result, result_to_arrays, result_to_detections


def _result():
    return [
        np.array([[10, 10, 40, 30, 0.9], [0, 0, 5, 5, 0.1]], np.float32),
        np.zeros((0, 5), np.float32),
        np.array([[20, 5, 60, 50, 0.5]], np.float32),
    ]


def test_detections_sorted_and_thresholded():
    dets = result_to_detections(_result(), ["a", "b", "c"], score_thr=0.1)
    assert [(d["class"], d["label"]) for d in dets] == [("a", 0), ("c", 2)]
    assert dets[0]["bbox"] == [10.0, 10.0, 40.0, 30.0]
    assert abs(dets[1]["score"] - 0.5) < 1e-6
    assert len(result_to_detections(_result(), ["a"], score_thr=0.0)) == 3
    assert result_to_detections(_result(), ["a"])[1]["class"] == "class 2"
    assert result_to_detections([np.zeros((0, 5))], ["a"]) == []


def test_mask_results_keep_their_masks():
    masks = [[np.ones((60, 80), bool), np.zeros((60, 80), bool)], [], [np.eye(60, 80, dtype=bool)]]
    _, labels, segms = result_to_arrays((_result(), masks), score_thr=0.3)
    assert labels.tolist() == [0, 2] and segms.shape == (2, 60, 80)
    assert segms[0].all() and segms[1].sum() == 60


def test_draw_result_png():
    img = np.zeros((60, 80, 3), np.uint8)
    png = draw_result(img, _result(), ["a", "b", "c"], score_thr=0.3)
    drawn = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == (60, 80, 3)
    assert drawn[30, 10:41].any() and not drawn[55:, :8].any()
