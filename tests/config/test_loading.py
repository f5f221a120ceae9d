"""Loading as every command does: file → CFG_OPTIONS → --cfg-options, then normalising."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.config import load_config
from detforge.config.safe_eval import UnsafeExpressionError

DATA = Path(__file__).resolve().parents[1] / "data" / "config"
USER_CONFIG = DATA / "user_faster_rcnn.py"

# The CFG_OPTIONS value users set for MMDetection (issue text), verbatim.
CFG_OPTIONS = (
    '{"optimizer.lr":0.005, "lr_config":dict(_delete_=True,policy="step",warmup="linear",'
    "warmup_iters=500,warmup_ratio=0.001,step=[8,11]), "
    '"model.neck.in_channels":[256,512,1024,2048],'
    ' "train_cfg.rpn_proposal":dict(nms_across_levels=False,nms_pre=2000,nms_post=1000,'
    'max_num=1000,min_bbox_size=0), "model":dict(pretrained="torchvision://resnet50",'
    'backbone=dict(type="ResNet",depth=50,out_indices=(0,1,2,3),frozen_stages=1))}'
)


def test_user_config_with_cfg_options_env_and_cli() -> None:
    loaded = load_config(
        USER_CONFIG,
        cfg_options={"model.roi_head.bbox_head.num_classes": 2},
        environ={"CFG_OPTIONS": CFG_OPTIONS},
    )
    raw, cfg = loaded.raw, loaded.cfg
    # raw: exactly what MMCV's merge gives, old spellings included
    assert raw.train_cfg.rpn_proposal.max_num == 1000
    assert raw.model.pretrained == "torchvision://resnet50"
    # normalised
    assert "train_cfg" not in cfg and "test_cfg" not in cfg
    assert cfg.model.train_cfg.rpn_proposal == {
        "nms_pre": 2000,
        "max_per_img": 1000,
        "nms": {"type": "nms", "iou_threshold": 0.7},
        "min_bbox_size": 0,
    }
    assert cfg.model.train_cfg.rpn.sampler.num == 256  # the rest of model.train_cfg is kept
    assert "pretrained" not in cfg.model
    assert cfg.model.backbone.init_cfg.checkpoint == "torchvision://resnet50"
    assert cfg.model.backbone.norm_eval is True  # merged into the base backbone, not replacing
    assert cfg.model.backbone.out_indices == (0, 1, 2, 3)
    assert cfg.model.roi_head.bbox_head.num_classes == 2
    assert cfg.model.neck.in_channels == [256, 512, 1024, 2048]
    assert cfg.optimizer == {"type": "SGD", "lr": 0.005, "momentum": 0.9, "weight_decay": 0.0001}
    # CFG_OPTIONS' lr_config (with _delete_) replaces the file's CosineAnnealing wholesale
    assert cfg.lr_config == {
        "policy": "step",
        "warmup": "linear",
        "warmup_iters": 500,
        "warmup_ratio": 0.001,
        "step": [8, 11],
    }
    assert cfg.data.train.ann_file == "data/my_dataset/annotations/train.json"
    assert cfg.data.train.img_prefix == "data/coco/train2017/"
    assert loaded.rewrites


def test_user_config_alone_uses_its_own_lr_config() -> None:
    cfg = load_config(USER_CONFIG, environ={}).cfg
    assert cfg.lr_config == {
        "policy": "CosineAnnealing",
        "warmup": "linear",
        "warmup_iters": 200,
        "warmup_ratio": 0.001,
        "min_lr_ratio": 0.01,
    }


def test_order_is_file_then_environment_then_command_line() -> None:
    env = {"CFG_OPTIONS": '{"optimizer.lr": 0.005, "optimizer.momentum": 0.8}'}
    cfg = load_config(USER_CONFIG, cfg_options={"optimizer.lr": 0.001}, environ=env).cfg
    assert cfg.optimizer.lr == 0.001
    assert cfg.optimizer.momentum == 0.8


def test_malicious_cfg_options_runs_nothing(tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    env = {"CFG_OPTIONS": f"{{'a': __import__('os').system('touch {canary}')}}"}
    with pytest.raises(UnsafeExpressionError, match="__import__"):
        load_config(USER_CONFIG, environ=env)
    assert not canary.exists()


def test_data_root_override_applies_before_options() -> None:
    env = {"DETFORGE_DATASETS": "/mnt/coco/"}
    cfg = load_config(USER_CONFIG, environ=env).cfg
    assert cfg.data_root == "/mnt/coco/"
    assert cfg.data.val.ann_file == "/mnt/coco/annotations/instances_val2017.json"
    # the user's own ann_file does not contain the old root, so it stays
    assert cfg.data.train.ann_file == "data/my_dataset/annotations/train.json"


def test_total_epochs_override_wins_over_the_files_runner_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """v2.6 users set ``CFG_OPTIONS='{"total_epochs": 24}'`` on a 12-epoch runner config."""
    with caplog.at_level("WARNING", logger="detforge"):
        cfg = load_config(USER_CONFIG, environ={"CFG_OPTIONS": '{"total_epochs": 24}'}).cfg
    assert cfg.runner.max_epochs == 24 and "total_epochs" not in cfg
    lines = [r.getMessage() for r in caplog.records if "total_epochs" in r.getMessage()]
    assert lines == [
        "config: CFG_OPTIONS total_epochs=24 overrides runner.max_epochs=12 (the old spelling; "
        "write runner.max_epochs=24)"
    ]
    cfg = load_config(USER_CONFIG, cfg_options={"total_epochs": 6}, environ={}).cfg
    assert cfg.runner.max_epochs == 6
