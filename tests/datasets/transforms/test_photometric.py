"""Normalize, PhotoMetricDistortion and YOLOXHSVRandomAug."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detforge.datasets.transforms.loading import LoadImageFromFile
from detforge.datasets.transforms.photometric import (
    Normalize,
    PhotoMetricDistortion,
    YOLOXHSVRandomAug,
)

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def _color(mmdet_test_data: Path) -> dict[str, Any]:
    return LoadImageFromFile()(
        dict(img_prefix=str(mmdet_test_data), img_info={"filename": "color.jpg"})
    )


def test_normalize_to_rgb(mmdet_test_data: Path) -> None:
    results = _color(mmdet_test_data)
    img = results["img"].copy()
    out = Normalize(mean=MEAN, std=STD, to_rgb=True)(results)
    expected = (img[..., ::-1].astype(np.float32) - np.array(MEAN, np.float32)) / np.array(
        STD, np.float32
    )
    assert out["img"].dtype == np.float32
    np.testing.assert_allclose(out["img"], expected, rtol=1e-5, atol=1e-5)
    cfg = out["img_norm_cfg"]
    assert cfg["to_rgb"] is True and cfg["mean"].dtype == np.float32
    np.testing.assert_allclose(cfg["mean"], MEAN)


def test_normalize_keep_bgr() -> None:
    img = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    out = Normalize(mean=[1, 2, 3], std=[2, 4, 8], to_rgb=False)({"img": img})
    np.testing.assert_allclose(
        out["img"],
        (img - np.array([1, 2, 3], np.float32)) / np.array([2, 4, 8], np.float32),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="std"):
        Normalize(mean=[0, 0, 0], std=[1, 0, 1])


def test_normalize_repr() -> None:
    assert repr(Normalize(mean=[1, 2, 3], std=[4, 5, 6], to_rgb=False)) == (
        "Normalize(mean=[1. 2. 3.], std=[4. 5. 6.], to_rgb=False)"
    )


def _reference_distortion(img: np.ndarray) -> np.ndarray:
    """The v2 sequence of draws and operations, written out step by step."""
    img = img.astype(np.float32)
    if np.random.randint(2):
        img = img + np.random.uniform(-32, 32)
    mode = np.random.randint(2)
    if mode == 1 and np.random.randint(2):
        img = img * np.random.uniform(0.5, 1.5)
    img = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_BGR2HSV)
    if np.random.randint(2):
        img[..., 1] = img[..., 1] * np.random.uniform(0.5, 1.5)
    if np.random.randint(2):
        img[..., 0] = img[..., 0] + np.random.uniform(-18, 18)
        img[..., 0] = np.where(img[..., 0] > 360, img[..., 0] - 360, img[..., 0])
        img[..., 0] = np.where(img[..., 0] < 0, img[..., 0] + 360, img[..., 0])
    img = cv2.cvtColor(img, cv2.COLOR_HSV2BGR)
    if mode == 0 and np.random.randint(2):
        img = img * np.random.uniform(0.5, 1.5)
    if np.random.randint(2):
        img = img[..., np.random.permutation(3)]
    return img


@pytest.mark.parametrize("seed", range(8))
def test_photometric_distortion_matches_reference(seed: int) -> None:
    img = np.random.default_rng(seed).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    np.random.seed(seed)
    expected = _reference_distortion(img)
    np.random.seed(seed)
    out = PhotoMetricDistortion()({"img": img.copy()})
    assert out["img"].dtype == np.float32
    np.testing.assert_allclose(out["img"], expected, rtol=1e-5, atol=1e-3)
    # the same number of draws was consumed: the next draw agrees as well
    next_draw = float(np.random.rand())
    assert next_draw == _next_after(seed, img)


def _next_after(seed: int, img: np.ndarray) -> float:
    np.random.seed(seed)
    _reference_distortion(img)
    return float(np.random.rand())


def test_photometric_distortion_all_steps_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every coin says yes (contrast first, mode 1); values worked out by hand."""
    monkeypatch.setattr(np.random, "randint", lambda *a, **k: 1)
    draws = iter([10.0, 1.5, 0.5, 20.0])  # brightness, contrast, saturation, hue
    monkeypatch.setattr(np.random, "uniform", lambda *a, **k: next(draws))
    monkeypatch.setattr(np.random, "permutation", lambda n: np.array([2, 1, 0]))
    img = np.full((1, 1, 3), (100, 50, 20), np.uint8)  # BGR
    out = PhotoMetricDistortion()({"img": img})["img"]
    # (v + 10) * 1.5 = B 165, G 90, R 45; HSV: H = 240 - 60 * (90 - 45) / 120 = 217.5,
    # S = 1 - 45 / 165, V = 165; S halves, H + 20 = 237.5 -> back to BGR, then reversed
    s = (1 - 45 / 165) * 0.5
    v = 165.0
    low = v * (1 - s)
    # hue 237.5 lies in the blue-dominant sector [180, 240): B = v, R = low, G rises with h
    g = low + (v - low) * (240 - 237.5) / 60
    expected_bgr = np.array([v, g, low], np.float32)
    np.testing.assert_allclose(out.ravel(), expected_bgr[::-1], rtol=1e-4)


def test_photometric_distortion_single_img_field() -> None:
    with pytest.raises(AssertionError, match="single img_fields"):
        PhotoMetricDistortion()({"img": np.zeros((2, 2, 3)), "img_fields": ["img", "img2"]})


def test_photometric_distortion_repr() -> None:
    assert repr(PhotoMetricDistortion()) == (
        "PhotoMetricDistortion(\nbrightness_delta=32,\ncontrast_range=(0.5, 1.5),\n"
        "saturation_range=(0.5, 1.5),\nhue_delta=18)"
    )


def test_yolox_hsv_seeded_and_pure(mmdet_test_data: Path) -> None:
    img = _color(mmdet_test_data)["img"]
    before = img.copy()
    np.random.seed(5)
    first = YOLOXHSVRandomAug()({"img": img})["img"]
    np.testing.assert_array_equal(img, before)  # the input is not modified
    np.random.seed(5)
    second = YOLOXHSVRandomAug()({"img": img.copy()})["img"]
    assert first.dtype == np.uint8 and first.shape == img.shape
    np.testing.assert_array_equal(first, second)


def test_yolox_hsv_gains(monkeypatch: pytest.MonkeyPatch) -> None:
    img = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.int16)
    monkeypatch.setattr(np.random, "uniform", lambda *a, **k: np.array([1.0, -1.0, 0.5]))
    monkeypatch.setattr(np.random, "randint", lambda *a, **k: np.array([1, 1, 0]))
    out = YOLOXHSVRandomAug(hue_delta=5, saturation_delta=30, value_delta=30)({"img": img})
    hsv[..., 0] = (hsv[..., 0] + 5) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] - 30, 0, 255)
    expected = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    np.testing.assert_array_equal(out["img"], expected)


def test_yolox_hsv_repr() -> None:
    assert repr(YOLOXHSVRandomAug()) == (
        "YOLOXHSVRandomAug(hue_delta=5, saturation_delta=30, value_delta=30)"
    )
