"""A client's answer does not depend on the other requests in flight (GroupNorm head)."""

from __future__ import annotations

import threading

import cv2
import httpx
import numpy as np

from detforge.apis.inference import inference_detector
from detforge.serving.app import create_app

from .conftest import running

# pairwise different sizes: at the model's scale of 128 they pad to different shapes, so a
# batch of them would pad each to the largest and GroupNorm would count the padding
SIZES = [(96, 96), (64, 120), (128, 50), (100, 90), (72, 110), (120, 64)]


def _images() -> list[bytes]:
    rng = np.random.default_rng(0)
    return [
        cv2.imencode(".png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))[1].tobytes()
        for h, w in SIZES
    ]


def test_mixed_sizes_in_one_batch_would_change_answers(gn_detector):
    # the premise: inference_detector on a list pads to the largest (v2's behaviour, kept)
    imgs = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in _images()]
    together = inference_detector(gn_detector, imgs)
    alone = [inference_detector(gn_detector, img) for img in imgs]

    def same(x: list[np.ndarray], y: list[np.ndarray]) -> bool:
        pairs = zip(x, y, strict=True)
        return all(a.shape == b.shape and np.allclose(a, b, atol=1e-3) for a, b in pairs)

    assert not all(same(x, y) for x, y in zip(together, alone, strict=True))


def test_concurrent_requests_of_different_sizes_get_the_single_request_answers(gn_detector):
    payloads = _images()
    # a long batching window: without keys, concurrent requests would share forwards
    app = create_app(gn_detector, score_thr=0.0, max_batch=8, max_wait_ms=50)
    with running(app) as url:
        alone = []
        for data in payloads:
            response = httpx.post(f"{url}/predict", content=data, timeout=60)
            assert response.status_code == 200, response.text
            alone.append(response.json()["detections"])
        assert all(len(d) == 10 for d in alone)
        before = httpx.get(f"{url}/metadata").json()["stats"]
        answers: dict[tuple[int, int], list] = {}
        failures: list[str] = []

        def client(round_: int, index: int, start: threading.Barrier) -> None:
            start.wait(30)
            response = httpx.post(f"{url}/predict", content=payloads[index], timeout=60)
            if response.status_code != 200:
                failures.append(response.text)
            else:
                answers[round_, index] = response.json()["detections"]

        for round_ in range(4):  # each round: every size once, all at the same time
            start = threading.Barrier(len(payloads))
            threads = [
                threading.Thread(target=client, args=(round_, i, start))
                for i in range(len(payloads))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        stats = httpx.get(f"{url}/metadata").json()["stats"]
    assert failures == []
    assert len(answers) == 4 * len(payloads)
    mismatched = [key for key, got in answers.items() if got != alone[key[1]]]
    assert mismatched == []  # exactly equal: the same boxes, scores and order
    assert stats["images"] - before["images"] == 4 * len(payloads)
    assert stats["max_batch_seen"] == 1  # no two sizes ever shared a forward
