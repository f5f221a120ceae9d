"""The web page in real headless Chromium (Debian's ``chromium`` + ``chromium-driver``).

``make test`` installs both when it can (``make browser``: root and apt); elsewhere this test
skips and says why. Set ``DETFORGE_SERVE_SCREENSHOT=path.png`` to keep the page's screenshot.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from .test_app import _expected

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1000", "--force-device-scale-factor=1",
)  # fmt: skip
PALETTE = ((230, 25, 75), (60, 180, 75))  # RGB of labels 0 and 1 in static/app.js


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"headless Chromium is not installed ({', '.join(missing)} missing): "
            "run `make browser` as root (apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _palette_pixels(rgb: np.ndarray) -> int:
    return sum(int((np.abs(rgb.astype(int) - c).max(axis=2) <= 12).sum()) for c in PALETTE)


def test_page_uploads_and_draws(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path = server["images"][2]
    plain = cv2.imread(str(path))
    expected = _expected(server["model"], plain)
    wait = WebDriverWait(browser, 30)
    browser.get(server["url"] + "/")
    wait.until(lambda d: "tiny_retina.py" in d.find_element(By.ID, "model-info").text)
    browser.find_element(By.ID, "file").send_keys(str(path))
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))

    def listed() -> list[tuple[int, float, str]]:
        items = browser.find_elements(By.CSS_SELECTOR, "#detections li.detection")
        return [
            (int(i.get_attribute("data-label")), float(i.get_attribute("data-score")),
             i.find_element(By.CLASS_NAME, "name").text)
            for i in items
        ]  # fmt: skip

    names = ("rectangle", "ellipse")
    rows = listed()  # the server's default threshold (0.0) shows every candidate
    assert [r[0] for r in rows] == [int(v) for v in expected[:, 5]]
    np.testing.assert_allclose([r[1] for r in rows], expected[:, 4], atol=1e-5)
    assert [r[2] for r in rows] == [f"{names[int(e[5])]} {e[4]:.3f}" for e in expected]
    assert "96×96" in browser.find_element(By.ID, "status").text

    # the slider filters on the client: keep the better half
    thr = float(expected[4, 4] + expected[5, 4]) / 2
    browser.execute_script(
        "const s = document.getElementById('score'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));",
        thr,
    )
    kept = expected[expected[:, 4] > thr]
    assert 0 < len(kept) < len(expected)
    assert [r[0] for r in listed()] == [int(v) for v in kept[:, 5]]
    assert browser.find_element(By.ID, "count").text == f"{len(kept)} of {len(expected)}"

    canvas = browser.find_element(By.ID, "canvas")
    shot = cv2.imdecode(np.frombuffer(canvas.screenshot_as_png, np.uint8), cv2.IMREAD_COLOR)
    assert shot.shape[:2] == (512, 512)  # 96 px shown at 512 px
    plain_big = cv2.resize(plain, (512, 512), interpolation=cv2.INTER_LINEAR)
    shot_rgb, plain_rgb = shot[:, :, ::-1], plain_big[:, :, ::-1]
    # boxes and labels in the class colours appear where the plain image has none
    assert _palette_pixels(shot_rgb) > 2000 + 2 * _palette_pixels(plain_rgb)
    # the best box's left edge is drawn in its class colour
    x1, y1, _, y2 = (v * 512 / 96 for v in kept[0, :4])
    column = shot_rgb[int(y1) + 30 : int(y2) - 2, int(np.clip(x1, 0, 511) - 2) : int(x1) + 3]
    colour = PALETTE[int(kept[0, 5])]
    assert (np.abs(column.astype(int) - colour).max(axis=2) <= 12).any(axis=1).mean() > 0.8

    page = tmp_path / "page.png"
    assert browser.save_screenshot(str(page))
    if os.environ.get("DETFORGE_SERVE_SCREENSHOT"):
        shutil.copyfile(page, os.environ["DETFORGE_SERVE_SCREENSHOT"])
