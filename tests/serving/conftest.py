"""Fixtures for the service tests: a tiny trained detector and a live server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from detforge.cli.main import main
from tests.tiny_demo import demo_config_text, make_synthetic_coco

pytest.importorskip("fastapi", reason="the serve extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")

# The tiny detector is barely trained, so every candidate is kept (score_thr=0) and the
# tests check plumbing, not accuracy: at most 10 detections per image.
CFG_OPTIONS = {"model.test_cfg.score_thr": 0.0, "model.test_cfg.max_per_img": 10}


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``dict(config, checkpoint, images, model)`` of a RetinaNet trained 1 epoch on 8 images."""
    from detforge.apis.inference import init_detector

    root = tmp_path_factory.mktemp("serve_model")
    paths = make_synthetic_coco(root / "data", num_train=8, num_val=4, size=96, seed=0)
    config = root / "tiny_retina.py"
    config.write_text(demo_config_text(paths["root"], max_epochs=1, samples_per_gpu=4, img_size=96))
    code = main(["train", str(config), "--work-dir", str(root / "work"), "--seed", "0",
                 "--device", "cpu", "--no-validate"])  # fmt: skip
    assert code == 0
    checkpoint = root / "work" / "epoch_1.pth"
    model = init_detector(config, checkpoint, device="cpu", cfg_options=CFG_OPTIONS)
    images = sorted(paths["images"].glob("val_*.png"))
    return dict(config=config, checkpoint=checkpoint, images=images, model=model)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free 127.0.0.1 port; yields the base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory, tiny_detector: dict[str, Any]) -> Path:
    """A folder for ``GET /main`` with one image, a sub-folder, and a symlink leading out."""
    root = tmp_path_factory.mktemp("image_root")
    first = tiny_detector["images"][0]
    (root / "sub").mkdir()
    (root / "sub" / first.name).write_bytes(first.read_bytes())
    (root / "inside_link.png").symlink_to(root / "sub" / first.name)
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    outside.write_bytes(first.read_bytes())
    (root / "escape.png").symlink_to(outside)
    (root / "escape_dir").symlink_to(outside.parent, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def server(tiny_detector: dict[str, Any], image_root: Path) -> Iterator[dict[str, Any]]:
    """The real model behind a live server: ``dict(url, app, model, images, image_root)``."""
    from detforge.serving.app import create_app

    app = create_app(
        tiny_detector["model"], score_thr=0.0, max_batch=8, max_upload_mb=20,
        image_root=image_root, config_name="tiny_retina.py",
    )  # fmt: skip
    with running(app) as url:
        yield dict(url=url, app=app, image_root=image_root, **tiny_detector)


@pytest.fixture(scope="session")
def gn_detector() -> Any:
    """A tiny ATSS whose head normalises with GroupNorm: random weights (seed 0), 2 classes,
    every candidate kept (score_thr=0), test scale 128 with padding to a multiple of 32."""
    import torch

    from detforge.apis.inference import init_detector
    from detforge.config import Config

    norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
    pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="MultiScaleFlipAug", img_scale=(128, 128), flip=False, transforms=[
            dict(type="Resize", keep_ratio=True), dict(type="RandomFlip"),
            dict(type="Normalize", **norm), dict(type="Pad", size_divisor=32),
            dict(type="ImageToTensor", keys=["img"]), dict(type="Collect", keys=["img"])]),
    ]  # fmt: skip
    model = dict(
        type="ATSS",
        backbone=dict(type="ResNet", depth=18, base_channels=16, out_indices=(1, 2, 3),
                      norm_cfg=dict(type="BN"), norm_eval=True, init_cfg=None),
        neck=dict(type="FPN", in_channels=[32, 64, 128], out_channels=32, start_level=0,
                  add_extra_convs="on_output", num_outs=5),
        bbox_head=dict(
            type="ATSSHead", num_classes=2, in_channels=32, stacked_convs=2, feat_channels=32,
            norm_cfg=dict(type="GN", num_groups=8, requires_grad=True),
            anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=8,
                                  scales_per_octave=1, strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25),
            loss_bbox=dict(type="GIoULoss", loss_weight=2.0),
            loss_centerness=dict(type="CrossEntropyLoss", use_sigmoid=True)),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type="nms", iou_threshold=0.6), max_per_img=10),
    )  # fmt: skip
    test = dict(type="CocoDataset", classes=("a", "b"), pipeline=pipeline)
    torch.manual_seed(0)
    return init_detector(Config(dict(model=model, data=dict(test=test))), None, device="cpu")
