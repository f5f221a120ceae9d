"""The benchmark corruptions: identity at severity 0, deterministic, hand-checkable ones exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detforge.utils.image import imread
from detforge.utils.image.corruptions import CORRUPTION_GROUPS, CORRUPTIONS, corrupt


@pytest.fixture(scope="module")
def demo(shared_data: Path) -> np.ndarray:
    img = imread(shared_data / "mmdet_testdata" / "demo" / "demo.jpg")
    return np.ascontiguousarray(img[::2, ::2])  # 214x320: keeps the test fast


def test_groups() -> None:
    assert len(CORRUPTION_GROUPS["benchmark"]) == 15 and len(CORRUPTIONS) == 19
    assert sum(len(CORRUPTION_GROUPS[g]) for g in ("noise", "blur", "weather", "digital")) == 15


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_corruption(name: str, demo: np.ndarray) -> None:
    assert corrupt(demo, name, 0) is demo
    mild, strong = corrupt(demo, name, 1), corrupt(demo, name, 5)
    assert mild.shape == demo.shape and mild.dtype == np.uint8
    np.testing.assert_array_equal(corrupt(demo, name, 5), strong)  # deterministic
    change = np.abs(strong.astype(int) - demo).mean()
    assert change > 2.0, f"{name} at severity 5 barely changes the image ({change:.2f})"
    assert change >= np.abs(mild.astype(int) - demo).mean() * 0.8  # stronger, or about as strong


def test_seed_changes_random_corruptions_only(demo: np.ndarray) -> None:
    a = corrupt(demo, "gaussian_noise", 2, seed=1)
    assert not np.array_equal(a, corrupt(demo, "gaussian_noise", 2, seed=2))
    np.testing.assert_array_equal(a, corrupt(demo, "gaussian_noise", 2, seed=1))
    np.testing.assert_array_equal(
        corrupt(demo, "contrast", 2, seed=1), corrupt(demo, "contrast", 2)
    )


def test_contrast_and_brightness_by_hand() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2], img[2:] = 100, 200  # channel means 150
    out = corrupt(img, "contrast", 1)  # (x - 150) * 0.4 + 150
    assert out[0, 0].tolist() == [130] * 3 and out[3, 3].tolist() == [170] * 3
    grey = np.full((2, 2, 3), 128, np.uint8)  # grey: V = 128/255, +0.2 at severity 2
    assert corrupt(grey, "brightness", 2)[0, 0].tolist() == [179] * 3
    # pixelate keeps a constant image; jpeg nearly so
    assert np.array_equal(corrupt(grey, "pixelate", 5), grey)


def test_grey_and_bad_input() -> None:
    grey = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(64, 48)
    out = corrupt(grey, "motion_blur", 3)
    assert out.shape == grey.shape and not np.array_equal(out, grey)
    with pytest.raises(KeyError, match="'fogg'"):
        corrupt(grey, "fogg", 1)
    with pytest.raises(ValueError, match=r"0\.\.5"):
        corrupt(grey, "fog", 6)
