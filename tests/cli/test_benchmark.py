"""``detforge benchmark`` (v2 lines, ``--fuse-conv-bn``, repeats) and ``test --fuse-conv-bn``."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from detforge.cli.main import main
from detforge.config import load_config
from detforge.engine.checkpoint_save import save_checkpoint
from detforge.models import build_detector
from tests.conftest import shared_data_dir
from tests.models.golden import dets_from_v2
from tests.tiny_demo import demo_config_text, make_synthetic_coco

FIXTURES = shared_data_dir().parent / "fixtures" / "mmdet"


def _randomise_bn(model: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.05)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 0.4 + 0.8)


def test_benchmark_prints_v2_lines_for_each_repeat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_synthetic_coco(tmp_path / "data", num_train=1, num_val=8, size=64)
    config = tmp_path / "tiny.py"
    config.write_text(demo_config_text(data["root"], img_size=64))
    model = build_detector(load_config(config).cfg.model)
    _randomise_bn(model)
    save_checkpoint(model, tmp_path / "tiny.pth")
    argv = ["benchmark", str(config), str(tmp_path / "tiny.pth"), "--max-iter", "8",
            "--log-interval", "2", "--repeat-num", "2", "--fuse-conv-bn",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    number = r"\d+\.\d"
    done = re.compile(rf"Done image \[(\d+) *\/ 8\], fps: {number} img / s, "
                      rf"times per image: {number} ms / img")  # fmt: skip
    # warm-up images 1-5 are not reported: images 6 and 8 are, in each of the two runs
    assert [int(m.group(1)) for m in map(done.fullmatch, lines) if m] == [6, 8, 6, 8]
    overall = [line for line in lines if line.startswith("Overall fps: ")]
    assert len(overall) == 3
    runs = [float(re.search(rf"({number}) img / s", line).group(1)) for line in overall[:2]]
    summary = re.fullmatch(
        rf"Overall fps: \[({number}), ({number})\]\[({number})\] img / s, "
        rf"times per image: \[{number}, {number}\]\[{number}\] ms / img",
        overall[2],
    )
    assert summary is not None
    assert [float(summary.group(1)), float(summary.group(2))] == runs
    assert float(summary.group(3)) == pytest.approx(sum(runs) / 2, abs=0.051)


def _tiny_coco_subset(tmp_path: Path, shared_data: Path, num_images: int) -> Path:
    root = shared_data / "tiny_coco" / "small_coco"
    coco = json.loads((root / "instances_train2017_small.json").read_text())
    coco["images"] = coco["images"][:num_images]
    ids = {img["id"] for img in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    path = tmp_path / "subset.json"
    path.write_text(json.dumps(coco))
    return path


def test_detforge_test_with_fused_bn_gives_the_same_detections(
    tmp_path: Path, shared_data: Path
) -> None:
    fixture = FIXTURES / "retinanet"
    if not fixture.is_dir():
        pytest.skip(f"fixture {fixture} not found")
    ann = _tiny_coco_subset(tmp_path, shared_data, 2)
    images = shared_data / "tiny_coco" / "small_coco" / "train_2017_small"
    config = tmp_path / "retinanet_tiny_coco.py"
    config.write_text(
        (fixture / "model.py").read_text()
        + f"""
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(320, 320), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'),
        dict(type='Normalize', **img_norm_cfg), dict(type='Pad', size_divisor=32),
        dict(type='ImageToTensor', keys=['img']), dict(type='Collect', keys=['img'])]),
]
data = dict(samples_per_gpu=1, workers_per_gpu=0, test=dict(
    type='CocoDataset', ann_file={str(ann)!r}, img_prefix={str(images)!r} + '/',
    pipeline=test_pipeline))
"""
    )
    model = build_detector(load_config(config).cfg.model)
    state = torch.load(fixture / "weights.pth", weights_only=True)["state_dict"]
    model.load_state_dict(state, strict=True)
    _randomise_bn(model)  # the fixture's running stats are the initial 0 / 1
    save_checkpoint(model, tmp_path / "retina.pth")
    outputs = {}
    for name, extra in (("plain", []), ("fused", ["--fuse-conv-bn"])):
        out = tmp_path / f"{name}.pkl"
        argv = ["test", str(config), str(tmp_path / "retina.pth"), "--out", str(out),
                "--device", "cpu", *extra]  # fmt: skip
        assert main(argv) == 0
        outputs[name] = pickle.loads(out.read_bytes())
    total = 0
    for plain, fused in zip(outputs["plain"], outputs["fused"], strict=True):
        boxes_a, scores_a, labels_a = dets_from_v2(plain)
        boxes_b, scores_b, labels_b = dets_from_v2(fused)
        assert len(boxes_a) == len(boxes_b)
        np.testing.assert_allclose(scores_b, scores_a, atol=1e-4, rtol=0)
        np.testing.assert_allclose(boxes_b, boxes_a, atol=1e-4, rtol=0)
        np.testing.assert_array_equal(labels_b, labels_a)
        total += len(boxes_a)
    assert total > 0
