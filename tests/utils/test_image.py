"""Tests for detforge.utils.image: mmcv 1.x numbers, file loading errors, colour formulas."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from detforge.utils import image as im
from detforge.utils.image import ImageLoadError


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def img(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("scale", [(1333, 800), (800, 1333)])
def test_imrescale_coco_scale_on_640x427(scale: tuple[int, int]) -> None:
    image = np.zeros((427, 640, 3), np.uint8)
    out, factor = im.imrescale(image, scale, return_scale=True)
    assert factor == pytest.approx(800 / 427)
    assert out.shape == (800, 1199, 3)
    # portrait images are bounded the same way (orientation-agnostic)
    assert im.imrescale(image.transpose(1, 0, 2), scale).shape == (1199, 800, 3)


def test_rescale_size_numbers() -> None:
    assert im.rescale_size((640, 427), 0.5) == (320, 214)  # int(213.5 + 0.5)
    assert im.rescale_size((640, 427), 2) == (1280, 854)
    assert im.rescale_size((100, 50), (30, 200), return_scale=True) == ((60, 30), 0.6)
    with pytest.raises(ValueError, match="positive"):
        im.rescale_size((10, 10), -1.0)
    with pytest.raises(TypeError, match="scale"):
        im.rescale_size((10, 10), "big")  # type: ignore[arg-type]


def test_imresize_and_scales(img: np.ndarray) -> None:
    out, w_scale, h_scale = im.imresize(img, (74, 46), return_scale=True)
    assert out.shape == (46, 74, 3)
    assert (w_scale, h_scale) == (2.0, 2.0)
    nearest = im.imresize(img, (74, 46), interpolation="nearest")
    assert np.array_equal(nearest[::2, ::2], img)
    with pytest.raises(ValueError, match="interpolation"):
        im.imresize(img, (4, 4), interpolation="cubic-ish")


@pytest.mark.parametrize("name", ["nearest", "bilinear", "bicubic", "area", "lanczos"])
def test_interpolation_codes_match_opencv(img: np.ndarray, name: str) -> None:
    code = {
        "nearest": cv2.INTER_NEAREST,
        "bilinear": cv2.INTER_LINEAR,
        "bicubic": cv2.INTER_CUBIC,
        "area": cv2.INTER_AREA,
        "lanczos": cv2.INTER_LANCZOS4,
    }[name]
    expected = cv2.resize(img, (15, 9), interpolation=code)
    assert np.array_equal(im.imresize(img, (15, 9), interpolation=name), expected)


# ----------------------------------------------------------------------------- reading


def test_imread_color_and_gray(mmdet_test_data: Path) -> None:
    color = im.imread(mmdet_test_data / "color.jpg")
    assert color.shape == (288, 512, 3) and color.dtype == np.uint8
    gray = im.imread(str(mmdet_test_data / "gray.jpg"))
    assert gray.shape == (288, 512, 3) and gray.dtype == np.uint8
    assert im.imread(mmdet_test_data / "gray.jpg", "unchanged").shape == (288, 512)
    assert im.imread(mmdet_test_data / "gray.jpg", "grayscale").shape == (288, 512)
    rgb = im.imread(mmdet_test_data / "color.jpg", channel_order="rgb")
    assert np.array_equal(rgb, color[..., ::-1])
    # same pixels as OpenCV's own reader
    assert np.array_equal(color, cv2.imread(str(mmdet_test_data / "color.jpg")))


def test_imread_non_ascii_path(mmdet_test_data: Path, tmp_path: Path) -> None:
    target = tmp_path / "图像 ü.jpg"
    target.write_bytes((mmdet_test_data / "color.jpg").read_bytes())
    assert im.imread(target).shape == (288, 512, 3)


def test_imread_truncated_jpeg_names_file(mmdet_test_data: Path, tmp_path: Path) -> None:
    data = (mmdet_test_data / "color.jpg").read_bytes()
    target = tmp_path / "truncated.jpg"
    target.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageLoadError, match="truncated") as info:
        im.imread(target)
    assert str(target) in str(info.value)
    assert isinstance(info.value, OSError)
    # trailing zero padding after the end marker is still a complete image
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(data + b"\x00" * 16)
    assert im.imread(padded).shape == (288, 512, 3)


def test_imread_missing_empty_corrupt(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageLoadError, match="not found") as info:
        im.imread(missing)
    assert str(missing) in str(info.value)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.jpg"):
        im.imread(empty)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(ImageLoadError, match=r"corrupt\.png"):
        im.imread(corrupt)
    with pytest.raises(TypeError, match="imread"):
        im.imread(12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="flag"):
        im.imfrombytes(b"\x89PNG", flag="colour")


def test_imwrite_imread_round_trip(img: np.ndarray, tmp_path: Path) -> None:
    target = tmp_path / "sub dir" / "ünïcode.png"
    assert im.imwrite(img, target) is True
    assert np.array_equal(im.imread(target), img)
    assert np.array_equal(im.imfrombytes(target.read_bytes()), img)
    assert im.imread(img) is img


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "diagonal"])
def test_imflip_twice_is_identity(img: np.ndarray, direction: str) -> None:
    once = im.imflip(img, direction)
    assert not np.array_equal(once, img)
    assert np.array_equal(im.imflip(once, direction), img)


def test_imflip_values(img: np.ndarray) -> None:
    assert np.array_equal(im.imflip(img, "horizontal"), img[:, ::-1])
    assert np.array_equal(im.imflip(img, "vertical"), img[::-1])
    assert np.array_equal(im.imflip(img, "diagonal"), img[::-1, ::-1])
    with pytest.raises(ValueError, match="direction"):
        im.imflip(img, "sideways")


def test_impad_bottom_right(img: np.ndarray) -> None:
    out = im.impad(img, shape=(30, 40), pad_val=(1, 2, 3))
    assert out.shape == (30, 40, 3)
    assert np.array_equal(out[:23, :37], img)
    assert (out[23:, :] == [1, 2, 3]).all() and (out[:, 37:] == [1, 2, 3]).all()
    # a target smaller than the image leaves that side alone
    assert im.impad(img, shape=(10, 40)).shape == (23, 40, 3)


def test_impad_padding_forms(img: np.ndarray) -> None:
    assert im.impad(img, padding=2).shape == (27, 41, 3)
    assert im.impad(img, padding=(1, 2)).shape == (27, 39, 3)
    out = im.impad(img, padding=(1, 2, 3, 4), pad_val=7)
    assert out.shape == (29, 41, 3)
    assert np.array_equal(out[2:25, 1:38], img) and out[0, 0, 0] == 7
    edge = im.impad(img, padding=(0, 0, 1, 0), padding_mode="edge")
    assert np.array_equal(edge[:, -1], img[:, -1])
    with pytest.raises(ValueError, match="exactly one"):
        im.impad(img, shape=(30, 40), padding=1)
    with pytest.raises(ValueError, match="pad_val"):
        im.impad(img, shape=(30, 40), pad_val=(1, 2))


def test_impad_to_multiple(img: np.ndarray) -> None:
    out = im.impad_to_multiple(img, 32, pad_val=5)
    assert out.shape == (32, 64, 3)
    assert out[-1, -1, 0] == 5
    assert im.impad_to_multiple(np.zeros((64, 32)), 32).shape == (64, 32)


def test_imrotate(img: np.ndarray) -> None:
    assert np.array_equal(im.imrotate(img, 0), img)
    # 180 degrees about the pixel-grid centre is the diagonal flip
    assert np.array_equal(im.imrotate(img, 180, interpolation="nearest"), img[::-1, ::-1])
    assert im.imrotate(img, 90, auto_bound=True).shape == (37, 23, 3)
    # 90 degrees clockwise on a square image equals numpy's rot90 with k=-1
    square = img[:21, :21]
    assert np.array_equal(im.imrotate(square, 90, interpolation="nearest"), np.rot90(square, -1))
    with pytest.raises(ValueError, match="auto_bound"):
        im.imrotate(img, 10, center=(1.0, 1.0), auto_bound=True)


def test_imtranslate_and_imshear(img: np.ndarray) -> None:
    shifted = im.imtranslate(img, 3, "horizontal", border_value=(9, 8, 7), interpolation="nearest")
    assert np.array_equal(shifted[:, 3:], img[:, :-3])
    assert (shifted[:, :3] == [9, 8, 7]).all()
    down = im.imtranslate(img, -2, "vertical", interpolation="nearest")
    assert np.array_equal(down[:-2], img[2:]) and (down[-2:] == 0).all()
    assert np.array_equal(im.imshear(img, 0.0), img)
    sheared = im.imshear(img, 1.0, "horizontal", interpolation="nearest")
    assert np.array_equal(sheared[5, 5:], img[5, :-5])  # x' = x + y
    with pytest.raises(ValueError, match="border_value"):
        im.imshear(img, 0.1, border_value=(1, 2))


def test_imcrop(img: np.ndarray) -> None:
    patch = im.imcrop(img, np.array([2, 3, 10, 7]))
    assert np.array_equal(patch, img[3:8, 2:11])
    patches = im.imcrop(img, np.array([[0, 0, 4, 4], [30, 20, 50, 40]]))
    assert [p.shape for p in patches] == [(5, 5, 3), (3, 7, 3)]
    padded = im.imcrop(img, np.array([30, 20, 50, 40]), pad_fill=255)
    assert padded.shape == (21, 21, 3)
    assert np.array_equal(padded[:3, :7], img[20:, 30:]) and (padded[3:] == 255).all()


# ----------------------------------------------------------------------------- colour


def test_imnormalize_matches_formula(img: np.ndarray) -> None:
    mean = np.array([123.675, 116.28, 103.53])
    std = np.array([58.395, 57.12, 57.375])
    out = im.imnormalize(img, mean, std, to_rgb=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (img[..., ::-1] - mean) / std, rtol=1e-5, atol=1e-5)
    plain = im.imnormalize(img, mean, std, to_rgb=False)
    np.testing.assert_allclose(plain, (img - mean) / std, rtol=1e-5, atol=1e-5)
    back = im.imdenormalize(out, mean, std, to_bgr=True)
    np.testing.assert_allclose(back, img, atol=1e-3)
    assert img.dtype == np.uint8  # input untouched


def test_color_conversions(img: np.ndarray) -> None:
    assert np.array_equal(im.bgr2rgb(img), img[..., ::-1])
    assert np.array_equal(im.rgb2bgr(im.bgr2rgb(img)), img)
    gray = im.bgr2gray(img)
    assert gray.shape == (23, 37) and im.bgr2gray(img, keepdim=True).shape == (23, 37, 1)
    assert np.array_equal(im.gray2bgr(gray), np.repeat(gray[..., None], 3, axis=2))
    hsv = im.bgr2hsv(img)
    assert np.abs(im.hsv2bgr(hsv).astype(int) - img).max() <= 8


def _gray_mmcv(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


@pytest.mark.parametrize("factor", [0.0, 0.3, 1.0, 1.7])
def test_adjust_brightness_contrast(img: np.ndarray, factor: float) -> None:
    bright = im.adjust_brightness(img, factor)
    expected = np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)
    assert bright.dtype == np.uint8
    assert np.abs(bright.astype(int) - expected).max() <= 1
    mean = round(float(_gray_mmcv(img).sum()) / img[..., 0].size)
    contrast = im.adjust_contrast(img, factor)
    ref = np.clip(img.astype(np.float32) * factor + mean * (1 - factor), 0, 255).astype(np.uint8)
    assert np.abs(contrast.astype(int) - ref).max() <= 1
    if factor == 1.0:
        assert np.array_equal(bright, img) and np.array_equal(contrast, img)


def test_adjust_color(img: np.ndarray) -> None:
    gray = _gray_mmcv(img)[..., None].astype(np.float64)
    out = im.adjust_color(img, 0.4)
    ref = np.clip(np.round(img * 0.4 + gray * 0.6), 0, 255)
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert np.array_equal(im.adjust_color(img, 1.0), img)
    saturated = im.adjust_color(img, 2.0, 0.0, 10)
    assert saturated.dtype == np.uint8 and saturated.max() == 255


def test_imequalize_matches_pillow(img: np.ndarray, rng: np.random.Generator) -> None:
    skewed = (rng.beta(2, 5, (40, 50, 3)) * 200).astype(np.uint8)
    expected = np.asarray(ImageOps.equalize(Image.fromarray(skewed)))
    assert np.array_equal(im.imequalize(skewed), expected)
    flat = np.full((4, 4, 3), 77, np.uint8)
    assert np.array_equal(im.imequalize(flat), flat)


def test_impad_reflect_modes_follow_numpy_names() -> None:
    row = np.array([[1, 2, 3, 4]], np.uint8)
    reflect = im.impad(row, padding=(2, 0, 2, 0), padding_mode="reflect")
    assert reflect[0].tolist() == [3, 2, 1, 2, 3, 4, 3, 2]
    symmetric = im.impad(row, padding=(2, 0, 2, 0), padding_mode="symmetric")
    assert symmetric[0].tolist() == [2, 1, 1, 2, 3, 4, 4, 3]
    with pytest.raises(ValueError, match="padding_mode"):
        im.impad(row, padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match="border_mode"):
        im.imrotate(row, 5, border_mode="edge")
