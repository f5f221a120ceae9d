import errno
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from detforge.serving.security import (
    ServingError,
    decode_image,
    read_image_header,
    resolve_under_root,
)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "img.png").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "out_link").symlink_to(tmp_path / "secret.txt")
    (root / "out_dir").symlink_to(tmp_path, target_is_directory=True)
    (root / "in_link").symlink_to(root / "a" / "b" / "img.png")
    return root


@pytest.mark.parametrize(
    "name, status",
    [("../secret.txt", 403), ("a/../../secret.txt", 403), ("a/b/../img.png", 403),
     ("/etc/passwd", 403), ("C:\\Windows\\win.ini", 403), ("..\\secret.txt", 403),
     ("out_link", 403), ("out_dir/secret.txt", 403), ("~/x", 403), ("", 400),
     ("a/\x00.png", 400), ("a/b/missing.png", 404), ("a/b", 404)],
)  # fmt: skip
def test_resolve_refuses(tree, name, status):
    with pytest.raises(ServingError) as info:
        resolve_under_root(tree, name)
    assert info.value.status == status


def test_resolve_accepts_inside_paths(tree):
    real = (tree / "a" / "b" / "img.png").resolve()
    assert resolve_under_root(tree, "a/b/img.png") == real
    assert resolve_under_root(tree, "./a/b/img.png") == real
    assert resolve_under_root(tree, "in_link") == real
    # a root that is itself reached through a symlink works too
    link_root = tree.parent / "root_link"
    link_root.symlink_to(tree, target_is_directory=True)
    assert resolve_under_root(link_root, "a/b/img.png") == real


def test_header_and_decode_formats(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[5:15, 10:20] = (10, 200, 30)
    for ext in (".png", ".jpg", ".bmp"):
        data = cv2.imencode(ext, img)[1].tobytes()
        assert read_image_header(data)[:2] == (30, 20)
        decoded = decode_image(data)
        assert decoded.img.shape == (20, 30, 3) and decoded.img.dtype == np.uint8
        assert np.abs(decoded.img[10, 15].astype(int) - (10, 200, 30)).max() < 12
    # GIF: OpenCV cannot read it, Pillow does; grey PNG becomes 3 channels
    Image.fromarray(img[:, :, ::-1]).save(tmp_path / "a.gif")
    decoded = decode_image((tmp_path / "a.gif").read_bytes())
    assert decoded.format == "GIF" and decoded.img.shape == (20, 30, 3)
    grey = cv2.imencode(".png", img[:, :, 1])[1].tobytes()
    assert decode_image(grey).img.shape == (20, 30, 3)


def test_refuses_bombs_and_non_images():
    data = cv2.imencode(".png", np.zeros((100, 100), np.uint8))[1].tobytes()
    with pytest.raises(ServingError, match="100x100 = 10000 pixels") as info:
        decode_image(data, max_pixels=9999)
    assert info.value.status == 413
    assert decode_image(data, max_pixels=10000).width == 100
    for bad, status in [(b"", 400), (b"hello", 415), (os.urandom(1000), 415),
                        (data[:40], 415)]:  # fmt: skip
        with pytest.raises(ServingError) as info:
            decode_image(bad)
        assert info.value.status == status, bad[:20]


@pytest.mark.parametrize("width, height", [(1, 60000), (60000, 1), (2, 5000), (5000, 2), (1, 101)])
def test_refuses_images_too_narrow_to_detect_in(width, height):
    data = cv2.imencode(".png", np.zeros((height, width), np.uint8))[1].tobytes()
    with pytest.raises(ServingError, match=f"image {width}x{height} is too narrow") as info:
        read_image_header(data)
    assert info.value.status == 422
    assert read_image_header(data, max_aspect_ratio=60000)[:2] == (width, height)


def test_accepts_aspect_ratios_up_to_the_limit():
    data = cv2.imencode(".png", np.zeros((100, 1), np.uint8))[1].tobytes()
    assert decode_image(data).img.shape == (100, 1, 3)


def test_messages_show_no_object_reprs_or_server_paths(tree):
    for bad in (b"hello", os.urandom(1000), b"GIF89a" + b"\x00" * 20):
        with pytest.raises(ServingError) as info:
            decode_image(bad)
        assert info.value.status == 415
        assert " at 0x" not in info.value.message and "BytesIO" not in info.value.message
    for name in ("a" * 256, "a/" + "b" * 300 + ".png", "a/" * 2100):
        with pytest.raises(ServingError, match="the path is too long") as info:
            resolve_under_root(tree, name)
        assert info.value.status == 400
        assert str(tree) not in info.value.message and len(info.value.message) < 200
    # 255 bytes is a legal name: an ordinary 404
    with pytest.raises(ServingError, match="no such file") as info:
        resolve_under_root(tree, "a" * 255)
    assert info.value.status == 404


def test_os_errors_are_403_without_the_path(tree, monkeypatch):
    def failing_is_file(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(Path, "is_file", failing_is_file)
    with pytest.raises(ServingError, match="cannot be opened") as info:
        resolve_under_root(tree, "a/b/img.png")
    assert info.value.status == 403 and str(tree) not in info.value.message


def test_decoded_size_must_match_the_header(monkeypatch):
    data = cv2.imencode(".png", np.zeros((10, 10, 3), np.uint8))[1].tobytes()
    # a file that a second decoder reads as larger than Pillow's header says is refused
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flags: np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ServingError, match="decoded to 20x20 pixels, more than its header's 10x10"):
        decode_image(data)
