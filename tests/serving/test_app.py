"""The service over real HTTP (uvicorn on 127.0.0.1), with the tiny trained detector."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from detforge.apis.inference import inference_detector
from detforge.structures.det_result import json_float
from detforge.visualization import draw_result


def _png(width: int, height: int) -> bytes:
    """A valid 1-bit grey PNG of ``width x height`` black pixels (tiny: it compresses well)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    rows = row * 1000
    idat = b"".join(packer.compress(rows) for _ in range(height // 1000))
    idat += packer.compress(row * (height % 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _expected(model: Any, img: np.ndarray) -> np.ndarray:
    """``[n, 6]`` (x1, y1, x2, y2, score, label) of ``inference_detector``, best first."""
    result = inference_detector(model, img)
    rows = [np.hstack([b, np.full((len(b), 1), i)]) for i, b in enumerate(result)]
    rows_all = np.concatenate(rows)
    return rows_all[np.argsort(-rows_all[:, 4], kind="stable")]


def _as_rows(detections: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[*d["bbox"], d["score"], d["label"]] for d in detections]).reshape(-1, 6)


def _healthy(url: str) -> None:
    response = httpx.get(f"{url}/health", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_predict_equals_inference_detector(server):
    url, model = server["url"], server["model"]
    for path in server["images"][:2]:
        img = cv2.imread(str(path))
        expected = _expected(model, img)
        assert len(expected) == 10  # max_per_img
        # multipart upload
        with open(path, "rb") as f:
            response = httpx.post(f"{url}/predict", files={"file": (path.name, f, "image/png")})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["width"], body["height"]) == (96, 96) and body["time_ms"] > 0
        got = _as_rows(body["detections"])
        np.testing.assert_allclose(got, expected, atol=1e-4)
        # boxes and scores are float32's shortest decimals, as detforge infer writes them
        assert all(json_float(v) == v for v in got[:, :5].ravel())
        np.testing.assert_array_equal(got[:, :5].astype(np.float32), expected[:, :5])
        names = ("rectangle", "ellipse")
        assert [d["class"] for d in body["detections"]] == [names[int(i)] for i in got[:, 5]]
        # raw bytes, as curl --data-binary sends them; a threshold keeps the better half
        thr = float(np.median(expected[:, 4]))
        response = httpx.post(
            f"{url}/predict", params={"score_thr": thr}, content=path.read_bytes()
        )
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(
            _as_rows(response.json()["detections"]), expected[expected[:, 4] > thr], atol=1e-4
        )


def test_predict_format_image_draws_boxes(server):
    path = server["images"][0]
    response = httpx.post(
        f"{server['url']}/predict", params={"format": "image"}, content=path.read_bytes()
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    drawn = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    plain = cv2.imread(str(path))
    assert drawn.shape == plain.shape
    # exactly the shared drawer's picture, in detforge infer's default palette (2 classes: coco)
    model = server["model"]
    expected = draw_result(plain, inference_detector(model, plain), model.CLASSES, 0.0,
                           palette="coco")  # fmt: skip
    np.testing.assert_array_equal(drawn, expected)
    best = _expected(model, plain)[0]
    x1, _, x2, y2 = (round(float(v)) for v in best[:4])
    x1, x2 = np.clip([x1, x2], 0, 95)
    y2 = int(np.clip(y2, 0, 95))
    # the bottom edge of the best box is drawn: those pixels changed
    edge = np.abs(drawn[y2, x1 : x2 + 1].astype(int) - plain[y2, x1 : x2 + 1]).sum(axis=1)
    assert (edge > 0).mean() > 0.8


def test_metadata_health_openapi(server):
    url = server["url"]
    meta = httpx.get(f"{url}/metadata").json()
    assert meta["classes"] == ["rectangle", "ellipse"]
    assert meta["config"] == "tiny_retina.py" and meta["device"] == "cpu"
    assert meta["max_batch"] == 8 and meta["score_thr"] == 0.0 and meta["image_root_enabled"]
    _healthy(url)
    schema = httpx.get(f"{url}/openapi.json").json()
    assert {"/predict", "/main", "/health", "/metadata"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and 'id="detections"' in page.text
    assert httpx.get(f"{url}/static/app.js").status_code == 200


def test_concurrent_clients_are_batched(server):
    url, model = server["url"], server["model"]
    payloads = [p.read_bytes() for p in server["images"]]
    expected = [_expected(model, cv2.imread(str(p))) for p in server["images"]]
    before = httpx.get(f"{url}/metadata").json()["stats"]
    failures: list[str] = []
    mismatches: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for request in range(10):
                which = (index + request) % len(payloads)
                try:
                    response = http.post("/predict", content=payloads[which])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                got = _as_rows(response.json()["detections"])
                # batched forwards may differ from a single one in the last float bits only
                if got.shape != expected[which].shape or not np.allclose(
                    got[:1], expected[which][:1], atol=1e-3
                ):
                    mismatches.append(f"client {index} request {request}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == [] and mismatches == []
    stats = httpx.get(f"{url}/metadata").json()["stats"]
    assert stats["images"] - before["images"] == 200
    batches = stats["batches"] - before["batches"]
    assert batches < 200, "no request was batched with another"
    assert stats["max_batch_seen"] > 1 and stats["max_batch_seen"] <= 8


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "sub/../../etc/passwd", "/etc/passwd", "escape.png",
             "escape_dir/secret.png", "~root/.bashrc"],
)  # fmt: skip
def test_main_refuses_paths_outside_the_root(server, name):
    response = httpx.get(f"{server['url']}/main", params={"image": name})
    assert response.status_code == 403, response.text
    assert response.json()["error"] and response.json()["status"] == 1


def test_main_serves_files_under_the_root(server):
    url = server["url"]
    expected = _expected(server["model"], cv2.imread(str(server["images"][0])))
    for name in ("sub/" + server["images"][0].name, "inside_link.png"):
        response = httpx.get(f"{url}/main", params={"image": name})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == 0 and body["image"] == name
        np.testing.assert_allclose(_as_rows(body["data"]), expected, atol=1e-4)
        assert body["data"] == body["detections"]
    response = httpx.get(f"{url}/main", params={"image": "missing.png"})
    assert response.status_code == 404 and "no such file" in response.json()["error"]


def test_main_is_disabled_without_image_root(tiny_detector):
    from detforge.serving.app import create_app

    from .conftest import running

    app = create_app(tiny_detector["model"])
    with running(app) as url:
        response = httpx.get(f"{url}/main", params={"image": "a.png"})
        assert response.status_code == 404
        assert "--image-root" in response.json()["error"]
        assert httpx.get(f"{url}/metadata").json()["image_root_enabled"] is False


def test_refusals_leave_the_server_answering(server):
    url = server["url"]
    big = os.urandom(30 * 2**20)
    response = httpx.post(
        f"{url}/predict", files={"file": ("big.jpg", big, "image/jpeg")}, timeout=60
    )
    assert response.status_code == 413 and "too large" in response.json()["error"]

    def chunks():  # no Content-Length: counted while it streams
        for _ in range(30):
            yield big[: 2**20]

    response = httpx.post(f"{url}/predict", content=chunks(), timeout=60)
    assert response.status_code == 413 and "too large" in response.json()["error"]

    bomb = _png(20000, 20000)
    assert len(bomb) < 2**20
    response = httpx.post(f"{url}/predict", files={"file": ("bomb.png", bomb, "image/png")})
    assert response.status_code == 413 and "400000000 pixels" in response.json()["error"]
    bomb = _png(9000, 9000)  # 81 Mpx: under Pillow's own limit, over the service's 64 Mpx
    response = httpx.post(f"{url}/predict", content=bomb)
    assert response.status_code == 413 and "9000x9000" in response.json()["error"]

    for content in (b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50):
        response = httpx.post(f"{url}/predict", content=content)
        assert response.status_code == 415, response.text
        assert "not a readable image" in response.json()["error"]
    response = httpx.post(f"{url}/predict", content=b"")
    assert response.status_code == 400 and "empty body" in response.json()["error"]
    response = httpx.post(f"{url}/predict", files={"other": (None, "text")})
    assert response.status_code == 400 and "field 'file'" in response.json()["error"]
    response = httpx.post(f"{url}/predict", params={"score_thr": 2}, content=b"x")
    assert response.status_code == 422 and "score_thr" in response.json()["error"]
    response = httpx.get(f"{url}/nowhere")
    assert response.status_code == 404 and "error" in response.json()

    _healthy(url)
    response = httpx.post(f"{url}/predict", content=server["images"][1].read_bytes())
    assert response.status_code == 200 and len(response.json()["detections"]) == 10
    assert httpx.get(f"{url}/metadata").json()["stats"]["refused"] >= 8


def test_compat_v2_main_takes_absolute_paths_inside_the_root_and_answers_v2_rows(
    tiny_detector, image_root
):
    """Seed 000's client: ``/main?image=<absolute path>``, rows ``[x1, y1, x2, y2, label,
    score]``; an absolute path outside the root (or escaping by a link) is still 403."""
    from detforge.serving.app import create_app

    from .conftest import running

    app = create_app(tiny_detector["model"], score_thr=0.0, image_root=image_root,
                     compat_v2=True)  # fmt: skip
    first = tiny_detector["images"][0]
    expected = _expected(tiny_detector["model"], cv2.imread(str(first)))
    with running(app) as url:
        name = str(image_root / "sub" / first.name)
        body = httpx.get(f"{url}/main", params={"image": name}).json()
        assert body["status"] == 0 and body["image"] == name
        rows = np.array(body["data"]).reshape(-1, 6)
        np.testing.assert_allclose(rows[:, [0, 1, 2, 3, 5, 4]], expected, atol=1e-4)
        assert len(body["detections"]) == len(rows)
        for outside in ("/etc/passwd", str(image_root / "escape.png")):
            response = httpx.get(f"{url}/main", params={"image": outside})
            assert response.status_code == 403, response.text
