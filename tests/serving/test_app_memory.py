"""The service's pixel budget under concurrent large uploads: 503 beyond it, and the peak
memory it promises (README and ``detforge serve --help``)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from detforge.serving import app as app_module

from .conftest import running
from .test_app import _png
from .test_budget import _until


def create_app_for(detector, **kwargs):
    """``create_app`` on the tiny detector, keeping every candidate; a short pixel wait."""
    kwargs.setdefault("pixel_wait_s", 0.3)
    return app_module.create_app(detector["model"], score_thr=0.0, **kwargs)


def test_concurrent_large_uploads_wait_or_get_503_within_the_budget(tiny_detector, monkeypatch):
    """12 uploads of 3 megapixels at once against a budget of 2 such images: while the model
    holds the first two, the other ten wait their 0.3 s and get 503 with Retry-After."""
    gate = threading.Event()
    real_inference = app_module.inference_detector

    def gated_inference(model, imgs):
        gate.wait(120)
        return real_inference(model, imgs)

    monkeypatch.setattr(app_module, "inference_detector", gated_inference)
    data = _png(2000, 1500)
    limit = 2 * 2000 * 1500
    app = create_app_for(tiny_detector, max_pixels=limit, max_pixels_in_flight=limit)
    budget = app.state.pixel_budget
    responses: list[httpx.Response] = []

    def client() -> None:
        responses.append(httpx.post(f"{url}/predict", content=data, timeout=120))

    with running(app) as url:
        threads = [threading.Thread(target=client) for _ in range(12)]
        for thread in threads:
            thread.start()
        _until(lambda: len(responses) == 10, "ten requests to be refused")
        assert budget.in_use == limit  # two images held, in the gated model
        gate.set()
        for thread in threads:
            thread.join(120)
        meta = httpx.get(f"{url}/metadata").json()
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 2 + [503] * 10
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
            assert "busy: no room for a 2000x1500 image" in response.json()["error"]
        else:
            assert (response.json()["width"], response.json()["height"]) == (2000, 1500)
    stats = budget.stats()
    assert stats["high_water"] == limit  # never more than the limit
    assert stats["in_use"] == 0 and stats["timeouts"] == 10 and stats["granted"] == 2
    assert meta["pixels_in_flight"]["limit"] == limit


def test_images_over_the_whole_budget_are_refused_up_front(tiny_detector):
    app = create_app_for(tiny_detector, max_pixels=2000 * 1500, max_pixels_in_flight=4_000_000)
    with running(app) as url:
        response = httpx.post(
            f"{url}/predict", params={"format": "image"}, content=_png(2000, 1500)
        )
        assert response.status_code == 413
        assert "6000000 pixels in flight, the limit is 4000000" in response.json()["error"]
        response = httpx.post(f"{url}/predict", content=_png(2000, 1500), timeout=60)
        assert response.status_code == 200, response.text
    with pytest.raises(ValueError, match="must be at least max_pixels"):
        create_app_for(tiny_detector, max_pixels=10, max_pixels_in_flight=9)


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_stays_under_the_documented_bound(tiny_detector):
    """8 concurrent 16-megapixel uploads against a budget of one such image: this process's
    peak RSS grows by at most 7 bytes per budget pixel (README, ``detforge serve --help``) plus
    a margin; without a budget it grew by about 100 MB per upload (800 MB here). Images this
    large are allocated outside the malloc heap, so each one shows in the RSS."""
    limit = 4000 * 4000
    app = create_app_for(
        tiny_detector, max_pixels=limit, max_pixels_in_flight=limit, pixel_wait_s=300
    )
    data = _png(4000, 4000)
    codes: list[int] = []
    with running(app) as url:
        assert httpx.post(f"{url}/predict", content=_png(64, 64)).status_code == 200
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
        except OSError as exc:
            pytest.skip(f"cannot reset the peak RSS: {exc}")
        baseline = _status_mb("VmRSS")
        if _status_mb("VmHWM") > baseline + 50:
            pytest.skip("this kernel does not reset the peak RSS")

        def client() -> None:
            codes.append(httpx.post(f"{url}/predict", content=data, timeout=300).status_code)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        growth = _status_mb("VmHWM") - baseline
    assert codes == [200] * 8
    assert app.state.pixel_budget.high_water == limit
    assert growth < 7 * limit / 2**20 + 100, f"peak RSS grew by {growth:.0f} MB"
