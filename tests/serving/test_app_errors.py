"""Refusals answer 4xx with a short message; no answer shows a server path, a repr or a trace."""

from __future__ import annotations

import logging
import re

import cv2
import httpx
import numpy as np
import pytest

from detforge.serving import app as app_module

from .conftest import running


def _assert_clean(response: httpx.Response, *secrets: str) -> None:
    text = response.text
    # an object address (" at 0x7f..."), not "5000x2"
    assert re.search(r"\b0x[0-9a-fA-F]", text) is None and "Traceback" not in text, text
    for secret in secrets:
        assert secret not in text, text
    assert len(response.json()["error"]) < 300


@pytest.mark.parametrize("width, height", [(1, 60000), (60000, 1), (2, 5000), (5000, 2)])
def test_extreme_aspect_ratios_are_422(server, width, height):
    data = cv2.imencode(".png", np.zeros((height, width), np.uint8))[1].tobytes()
    response = httpx.post(f"{server['url']}/predict", content=data, timeout=60)
    assert response.status_code == 422, response.text
    assert f"{width}x{height} is too narrow" in response.json()["error"]
    _assert_clean(response, str(server["image_root"]))


@pytest.mark.parametrize("name", ["a" * 256, "sub/" + "b" * 300, "sub/" * 1100 + "x.png"])
def test_main_long_names_are_400_without_the_root(server, name):
    response = httpx.get(f"{server['url']}/main", params={"image": name})
    assert response.status_code == 400, response.text
    assert "the path is too long" in response.json()["error"]
    assert response.json()["status"] == 1
    _assert_clean(response, str(server["image_root"]))


def test_non_images_are_415_without_object_reprs(server):
    for content in (b"hello", b"GIF89a" + b"\x00" * 30, b"\x89PNG\r\n\x1a\n" + b"\x00" * 50):
        response = httpx.post(f"{server['url']}/predict", content=content)
        assert response.status_code == 415, response.text
        _assert_clean(response, str(server["image_root"]))


def test_unexpected_failures_are_500_without_details(tiny_detector, tmp_path, monkeypatch, caplog):
    secret = str(tmp_path / "server" / "side" / "path")

    def failing_inference(model, imgs):
        raise OSError(36, "File name too long", secret)

    image = tiny_detector["images"][0].read_bytes()
    app = app_module.create_app(tiny_detector["model"], image_root=tmp_path)
    (tmp_path / "img.png").write_bytes(image)
    with running(app) as url:
        monkeypatch.setattr(app_module, "inference_detector", failing_inference)
        with caplog.at_level(logging.ERROR, logger="detforge.serving"):
            response = httpx.post(f"{url}/predict", content=image)
        assert response.status_code == 500
        assert response.json()["error"] == "inference failed; the server log has the details"
        _assert_clean(response, secret, str(tmp_path))
        assert secret in caplog.text  # the details are in the server's log

        def failing_detections(*args, **kwargs):
            raise ValueError(f"cannot read {secret}: <object at 0x7f00deadbeef>")

        monkeypatch.setattr(app_module, "inference_detector", lambda m, imgs: [[]] * len(imgs))
        monkeypatch.setattr(app_module, "result_to_detections", failing_detections)
        response = httpx.get(f"{url}/main", params={"image": "img.png"})
        assert response.status_code == 500
        assert response.json() == {
            "error": "internal error; the server log has the details",
            "status": 1,
        }
        _assert_clean(response, secret, str(tmp_path))
