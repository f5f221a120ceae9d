"""``detforge serve``: flags, refusals, and a real server process answering on 127.0.0.1."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from detforge.cli.main import main
from tests.tiny_demo import demo_config_text

httpx = pytest.importorskip("httpx", reason="the dev extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A tiny RetinaNet config and a checkpoint of its initial weights, with class names."""
    from detforge.apis.inference import init_detector
    from detforge.engine.checkpoint_save import save_checkpoint

    root = tmp_path_factory.mktemp("serve_cli")
    config = root / "tiny_retina.py"
    config.write_text(demo_config_text(root, img_size=64))
    model = init_detector(config, None, device="cpu")
    checkpoint = root / "init.pth"
    save_checkpoint(model, checkpoint, meta=dict(CLASSES=("rectangle", "ellipse")))
    images = root / "images"
    images.mkdir()
    img = np.full((48, 64, 3), 30, np.uint8)
    cv2.rectangle(img, (10, 10), (40, 30), (200, 180, 90), -1)
    cv2.imwrite(str(images / "one.png"), img)
    return dict(config=config, checkpoint=checkpoint, images=images)


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--score-thr", "--device", "--max-batch", "--max-upload-mb",
                 "--image-root", "/predict", "/main?image=NAME",
                 "--max-megapixels-in-flight", "7 bytes per budget pixel"):  # fmt: skip
        assert flag in " ".join(out.split())


def test_bad_flags_and_missing_files(untrained, tmp_path, capsys):
    config, checkpoint = str(untrained["config"]), str(untrained["checkpoint"])
    with pytest.raises(SystemExit, match=r"--score-thr must be in \[0, 1\], got 2.0"):
        main(["serve", config, checkpoint, "--score-thr", "2"])
    with pytest.raises(SystemExit, match="--max-batch must be >= 1, got 0"):
        main(["serve", config, checkpoint, "--max-batch", "0"])
    with pytest.raises(SystemExit, match=r"--max-megapixels-in-flight \(10\) must be at least"):
        main(["serve", config, checkpoint, "--max-megapixels-in-flight", "10"])
    with pytest.raises(SystemExit, match=r"--image-root .*nowhere is not a directory"):
        main(["serve", config, checkpoint, "--image-root", str(tmp_path / "nowhere")])
    assert main(["serve", config, str(tmp_path / "missing.pth")]) == 1
    assert "checkpoint file not found" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_process_answers(untrained):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "detforge", "serve", str(untrained["config"]),
               str(untrained["checkpoint"]), "--port", str(port), "--device", "cpu",
               "--max-batch", "2", "--score-thr", "0", "--image-root", str(untrained["images"]),
               "--log-level", "warning", "--max-megapixels-in-flight", "100"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "detforge serve did not come up"
            time.sleep(0.25)
        meta = httpx.get(f"{url}/metadata").json()
        assert meta["classes"] == ["rectangle", "ellipse"] and meta["max_batch"] == 2
        assert meta["config"] == "tiny_retina.py" and meta["score_thr"] == 0.0
        assert meta["pixels_in_flight"]["limit"] == 100_000_000
        data = (untrained["images"] / "one.png").read_bytes()
        body = httpx.post(f"{url}/predict", files={"file": ("one.png", data)}, timeout=30).json()
        assert (body["width"], body["height"]) == (64, 48)
        main_body = httpx.get(f"{url}/main", params={"image": "one.png"}, timeout=30).json()
        assert main_body["status"] == 0 and main_body["data"] == body["detections"]
        assert httpx.get(f"{url}/main", params={"image": "/etc/passwd"}).status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a graceful shutdown, exit status 0
        try:
            out = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0] + "\n(killed: no exit 30 s after Ctrl-C)"
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert "detforge serve: tiny_retina.py (2 classes) on cpu" in out
