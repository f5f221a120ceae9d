"""The shared drawer on a real photo: where it draws, what it leaves alone, readable text."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detforge.structures.masks import encode_mask_results
from detforge.visualization import (
    color_for,
    draw_det_bboxes,
    draw_result,
    imshow_det_bboxes,
    text_style,
)

BOXES = np.array([[100, 120, 260, 300, 0.9], [300, 150, 420, 260, 0.6], [20, 20, 60, 60, 0.1]])
LABELS = np.array([0, 2, 1])


@pytest.fixture(scope="module")
def demo(shared_data: Path) -> Path:
    path = shared_data / "mmdet_testdata" / "demo" / "demo.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_png_of_demo_differs_at_boxes_and_nowhere_far_away(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "demo_drawn.png"
    drawn = imshow_det_bboxes(
        str(demo), BOXES, LABELS, class_names=["person", "bicycle", "car"], score_thr=0.3,
        bbox_color="coco", out_file=out,
    )  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    original = cv2.imread(str(demo))
    assert written.shape == original.shape == (427, 640, 3)
    np.testing.assert_array_equal(written, drawn)  # PNG is lossless
    changed = (written != original).any(axis=2)
    # box edges are drawn in the COCO colours (RGB palette → BGR pixels)
    assert tuple(written[200, 100]) == color_for("coco", 0) == (60, 20, 220)
    assert tuple(written[200, 420]) == (142, 0, 0)
    assert changed[120:301, 100].all() and changed[300, 100:261].all()
    # the label sits on a filled background above the box
    assert changed[105:118, 102:140].mean() > 0.9
    # the 0.1 box is below score_thr; far from the boxes nothing changes
    assert not changed[20:61, 20:61].any()
    assert not changed[330:, :].any() and not changed[:, 450:].any()
    assert not changed[140:290, 110:250].any()  # inside the first box, away from its edges


def test_masks_are_tinted_and_outlined(demo: Path) -> None:
    img = cv2.imread(str(demo))
    masks = np.zeros((2, 427, 640), bool)
    masks[0, 150:250, 130:230] = True
    masks[1, 180:240, 320:400] = True
    drawn = draw_det_bboxes(img, BOXES[:2], LABELS[:2], segms=masks, mask_color=(0, 0, 255))
    inside = drawn[200, 180].astype(int)
    expected = (img[200, 180] * 0.5 + np.array([255, 0, 0]) * 0.5).astype(int)  # BGR of blue
    np.testing.assert_array_equal(inside, expected)
    assert (drawn[330:, :] == img[330:, :]).all()
    with pytest.raises(ValueError, match=r"\[2, 427, 640\]"):
        draw_det_bboxes(img, BOXES[:2], LABELS[:2], segms=masks[:, :100])


@pytest.mark.parametrize(
    ("size", "min_h", "max_h"), [((150, 200), 12, 20), ((3000, 4000), 90, 140)]
)
def test_text_scales_with_the_image(size: tuple[int, int], min_h: int, max_h: int) -> None:
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    box = np.array([[w * 0.3, h * 0.5, w * 0.6, h * 0.9, 0.87]])
    drawn = draw_det_bboxes(img, box, np.array([0]), class_names=["person"], bbox_color="black")
    line, _, weight = text_style(h, w)
    x1, y1 = int(w * 0.3), int(h * 0.5)
    above = drawn[: y1 - line, x1 + line : x1 + 4 * line + 20]
    label_rows = (above != 255).any(axis=(1, 2))  # the filled label background
    assert min_h <= label_rows.sum() <= max_h
    assert (line, weight) == ((1, 1) if h < 500 else (14, 6))


def test_label_stays_inside_the_image_and_text_colour_mode() -> None:
    img = np.zeros((100, 120, 3), np.uint8)
    box = np.array([[80, 0, 119, 40, 0.5]])
    drawn = draw_det_bboxes(img, box, np.array([0]), class_names=["a long class name"])
    assert drawn[0:8, 0:30].any()  # pushed left and inside the box at the top edge
    white = draw_det_bboxes(img + 128, box, np.array([0]), bbox_color="red", text_color="white")
    assert (white == 0).all(axis=2).any()  # with a text colour, labels sit on black (v2)
    assert (white >= 200).all(axis=2).any()  # anti-aliased white text (OpenCV 4 peaks at 249)


def test_draw_result_with_rle_and_tensor_masks_and_bad_input() -> None:
    torch = pytest.importorskip("torch")
    img = np.zeros((100, 120, 3), np.uint8)
    mask = np.zeros((100, 120), bool)
    mask[40:80, 20:80] = True
    bbox = [np.array([[20, 40, 80, 80, 0.9]], np.float32), np.zeros((0, 5), np.float32)]
    by_rle = draw_result(img, (bbox, encode_mask_results([[mask], []])), ["a", "b"], palette="voc")
    by_tensor = draw_result(img, (bbox, [[torch.from_numpy(mask)], []]), ["a", "b"], palette="voc")
    np.testing.assert_array_equal(by_rle, by_tensor)
    assert tuple(by_rle[60, 50]) == (114, 0, 53)  # half of VOC colour 0 (106, 0, 228) as BGR
    assert (draw_result(img, bbox, score_thr=0.95) == 0).all()
    with pytest.raises(ValueError, match=r"\[N, 4\|5\]"):
        draw_det_bboxes(img, np.zeros((2, 3)), np.zeros(2))


def test_show_without_gui_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_gui(*_: object) -> None:
        raise cv2.error("The function is not implemented")

    monkeypatch.setattr(cv2, "imshow", no_gui)
    img = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(RuntimeError, match=r"no GUI support.*write the result to a file"):
        imshow_det_bboxes(img, np.array([[2, 2, 10, 10]]), np.array([0]), show=True)
