"""The shipped BCCD config learns: overfitting 8 real BCCD training images reaches AP50 ≥ 0.6.

The model, optimizer, norm layers and anchors are the shipped config's; only the size of the
run changes (8 images at 160x120, 24 epochs of 4 iterations, a shorter warmup), so this guards
the config itself and the whole training stack (pipeline, assigners, samplers, losses, AdamW,
LR schedule, runner, test-time post-processing and VOC evaluation). One CPU thread keeps it
deterministic (and fast on a shared CPU): seeds 0, 1 and 2 gave 0.78, 0.77 and 0.75.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.engine.testing import single_gpu_test
from detforge.apis.train import set_random_seed, train_detector
from detforge.config import load_config
from detforge.datasets.builder import build_dataloader, build_dataset
from detforge.models.builder import build_detector

CONFIG = (
    Path(__file__).resolve().parents[2]
    / "configs"
    / "bccd"
    / "faster_rcnn_r18_fpn_gn-all_scratch_320_20e_bccd.py"
)
NUM_IMAGES = 8
SCALE = (160, 120)
THRESHOLD = 0.6


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _set_scale(pipeline: list[Any], scale: tuple[int, int]) -> None:
    """Set ``img_scale`` of the ``Resize`` (train) or ``MultiScaleFlipAug`` (test) step."""
    steps = [s for s in pipeline if s["type"] in ("Resize", "MultiScaleFlipAug")]
    assert len(steps) == 1, f"expected one Resize/MultiScaleFlipAug step, got {pipeline}"
    steps[0]["img_scale"] = scale


def test_shipped_config_is_from_scratch_and_reads_bccd(shared_data: Path) -> None:
    bccd = shared_data / "bccd"
    cfg = load_config(CONFIG, environ={"DETFORGE_DATASETS": f"{bccd}/"}).cfg
    assert cfg.model.backbone.depth == 18
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.roi_head.bbox_head.num_classes == 3
    assert cfg.data.train.classes == ("RBC", "WBC", "Platelets")
    assert cfg.data.train.ann_file == f"{bccd}/BCCD/ImageSets/Main/train.txt"
    assert cfg.data.test.ann_file == f"{bccd}/BCCD/ImageSets/Main/test.txt"
    assert cfg.evaluation.metric == "mAP"
    # without the variable the root is the repository-relative default
    default = load_config(CONFIG, environ={}).cfg
    assert default.data.val.img_prefix == "data/bccd/BCCD/"


def test_overfits_eight_bccd_images(
    shared_data: Path, tmp_path: Path, one_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    bccd = shared_data / "bccd"
    train_ids = (bccd / "BCCD" / "ImageSets" / "Main" / "train.txt").read_text().split()
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(train_ids[:NUM_IMAGES]) + "\n")
    options = {
        "data.train.ann_file": str(ids_file),
        "data.test.ann_file": str(ids_file),
        "data.workers_per_gpu": 0,
        "runner.max_epochs": 24,
        "lr_config.warmup_iters": 20,
        "lr_config.step": [18, 22],
        "checkpoint_config": None,
        "log_config.interval": 1000,
        "work_dir": str(tmp_path / "work"),
        "device": "cpu",
        "seed": 0,
    }
    cfg = load_config(CONFIG, cfg_options=options, environ={"DETFORGE_DATASETS": f"{bccd}/"}).cfg
    _set_scale(cfg.data.train.pipeline, SCALE)
    _set_scale(cfg.data.test.pipeline, SCALE)

    set_random_seed(0, deterministic=True)
    model = build_detector(cfg.model)
    model.init_weights()
    dataset = build_dataset(cfg.data.train)
    assert len(dataset) == NUM_IMAGES
    model.CLASSES = dataset.CLASSES
    start = time.perf_counter()
    train_detector(model, [dataset], cfg, validate=False)
    train_s = time.perf_counter() - start

    test_cfg = dict(cfg.data.test, test_mode=True)
    test_set = build_dataset(test_cfg)
    loader = build_dataloader(
        test_set, samples_per_gpu=1, workers_per_gpu=0, dist=False, shuffle=False
    )
    results = single_gpu_test(model, loader)
    metric = test_set.evaluate(results, metric="mAP")
    with capsys.disabled():
        print(f"\nBCCD overfit: train-set mAP@0.5 {metric['mAP']:.3f} (train {train_s:.0f} s)")
    assert metric["mAP"] >= THRESHOLD, metric
