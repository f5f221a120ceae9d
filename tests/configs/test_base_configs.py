"""The shipped ``configs/`` tree: loads, is already in the 2.28 dialect, has v2.28's defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detforge.config import Config, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL = sorted(CONFIGS.rglob("*.py"))
TOP = [p for p in ALL if "_base_" not in p.parts]
DATASET_FOLDERS = ("bccd", "cityscapes", "pascal_voc")
#: v2 folders whose configs start with other words than the folder's first
V2_FIRST_WORDS = {"foveabox": {"fovea"}, "free_anchor": {"retinanet"}, "ghm": {"retinanet"},
                  "guided_anchoring": {"ga"}, "groie": {"faster", "grid", "mask"}}  # fmt: skip
# {model}_[setting]_{backbone}_{neck}_[norm]_[misc]_[gpu x batch]_{schedule}_{dataset}
# (v2's norm settings may join parts with '+': RepPoints' ``gn-neck+head``)
NAME = re.compile(r"^[a-z0-9]+(_[a-z0-9\-+]+)*_(\d+x|\d+e)_(coco|voc\w*|cityscapes|\w+)$")
# v2.28's own names that break its convention, kept as they are so v2 users find them
V2_EXCEPTIONS = {
    "ssd/ssd300_coco.py",
    "ssd/ssdlite_mobilenetv2_scratch_600e_coco.py",
    "yolo/yolov3_d53_320_273e_coco.py",
    "yolo/yolov3_d53_mstrain-608_273e_coco.py",
    "yolo/yolov3_mobilenetv2_320_300e_coco.py",
    "yolo/yolov3_mobilenetv2_mstrain-416_300e_coco.py",
}


def rel(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


def test_tree_is_complete() -> None:
    names = {rel(p) for p in ALL}
    for required in (
        "_base_/default_runtime.py",
        "_base_/schedules/schedule_1x.py",
        "_base_/schedules/schedule_2x.py",
        "_base_/schedules/schedule_20e.py",
        "_base_/datasets/coco_detection.py",
        "_base_/datasets/coco_instance.py",
        "_base_/datasets/voc0712.py",
        "_base_/models/faster_rcnn_r50_fpn.py",
        "_base_/models/retinanet_r50_fpn.py",
        "_base_/models/mask_rcnn_r50_fpn.py",
        "_base_/models/cascade_rcnn_r50_fpn.py",
        "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
        "retinanet/retinanet_r50_fpn_1x_coco.py",
        "mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py",
    ):
        assert required in names


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_loads_needs_no_rewrite_and_round_trips(path: Path) -> None:
    loaded = load_config(path, environ={})
    assert loaded.rewrites == []
    cfg = loaded.cfg
    assert Config.fromstring(cfg.pretty_text, ".py").to_dict() == cfg.to_dict()


@pytest.mark.parametrize("path", TOP, ids=rel)
def test_top_level_names_follow_the_v2_convention(path: Path) -> None:
    if rel(path) in V2_EXCEPTIONS:
        return
    assert NAME.match(path.stem), path.stem
    if path.parent.name in DATASET_FOLDERS:
        # v2's dataset folders (pascal_voc/, cityscapes/) hold any family, named for the data
        assert path.stem.split("_")[-1].startswith(path.parent.name.split("_")[-1]), path.stem
        return
    # v2 keeps variants beside their family: configs/cascade_rcnn/cascade_mask_rcnn_...
    firsts = V2_FIRST_WORDS.get(path.parent.name, {path.parent.name.split("_")[0]})
    assert path.stem.split("_")[0] in firsts


def test_default_runtime() -> None:
    cfg = Config.fromfile(CONFIGS / "_base_/default_runtime.py")
    assert cfg.to_dict() == {
        "checkpoint_config": {"interval": 1},
        "log_config": {"interval": 50, "hooks": [{"type": "TextLoggerHook"}]},
        "custom_hooks": [{"type": "NumClassCheckHook"}],
        "dist_params": {"backend": "nccl"},
        "log_level": "INFO",
        "load_from": None,
        "resume_from": None,
        "workflow": [("train", 1)],
        "opencv_num_threads": 0,
        "mp_start_method": "fork",
        "auto_scale_lr": {"enable": False, "base_batch_size": 16},
    }


@pytest.mark.parametrize(
    ("name", "steps", "epochs"),
    [("schedule_1x", [8, 11], 12), ("schedule_2x", [16, 22], 24), ("schedule_20e", [16, 19], 20)],
)
def test_schedules(name: str, steps: list[int], epochs: int) -> None:
    cfg = Config.fromfile(CONFIGS / f"_base_/schedules/{name}.py")
    assert cfg.optimizer == {"type": "SGD", "lr": 0.02, "momentum": 0.9, "weight_decay": 0.0001}
    assert cfg.optimizer_config == {"grad_clip": None}
    assert cfg.lr_config == {
        "policy": "step",
        "warmup": "linear",
        "warmup_iters": 500,
        "warmup_ratio": 0.001,
        "step": steps,
    }
    assert cfg.runner == {"type": "EpochBasedRunner", "max_epochs": epochs}


def test_coco_detection_dataset() -> None:
    cfg = Config.fromfile(CONFIGS / "_base_/datasets/coco_detection.py")
    assert cfg.img_norm_cfg == {
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
        "to_rgb": True,
    }
    assert [t.type for t in cfg.train_pipeline] == [
        "LoadImageFromFile",
        "LoadAnnotations",
        "Resize",
        "RandomFlip",
        "Normalize",
        "Pad",
        "DefaultFormatBundle",
        "Collect",
    ]
    assert cfg.train_pipeline[2].img_scale == (1333, 800)
    assert cfg.train_pipeline[3].flip_ratio == 0.5
    assert cfg.test_pipeline[1].type == "MultiScaleFlipAug"
    assert cfg.data.samples_per_gpu == 2 and cfg.data.workers_per_gpu == 2
    assert cfg.data.train.ann_file == "data/coco/annotations/instances_train2017.json"
    assert cfg.data.test.img_prefix == "data/coco/val2017/"
    assert cfg.evaluation == {"interval": 1, "metric": "bbox"}


def test_faster_rcnn_model_defaults() -> None:
    model = Config.fromfile(CONFIGS / "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py").model
    assert model.backbone.init_cfg == {
        "type": "Pretrained",
        "checkpoint": "torchvision://resnet50",
    }
    assert model.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert model.roi_head.bbox_head.bbox_coder.target_stds == [0.1, 0.1, 0.2, 0.2]
    assert model.train_cfg.rpn.assigner.pos_iou_thr == 0.7
    assert model.train_cfg.rcnn.sampler.num == 512
    assert model.train_cfg.rcnn.sampler.pos_fraction == 0.25
    assert model.train_cfg.rpn_proposal == {
        "nms_pre": 2000,
        "max_per_img": 1000,
        "nms": {"type": "nms", "iou_threshold": 0.7},
        "min_bbox_size": 0,
    }
    assert model.test_cfg.rcnn == {
        "score_thr": 0.05,
        "nms": {"type": "nms", "iou_threshold": 0.5},
        "max_per_img": 100,
    }


def test_retinanet_overrides_lr_and_uses_focal_loss() -> None:
    cfg = Config.fromfile(CONFIGS / "retinanet/retinanet_r50_fpn_1x_coco.py")
    assert cfg.optimizer.lr == 0.01
    assert cfg.model.bbox_head.loss_cls.type == "FocalLoss"
    assert cfg.model.neck.add_extra_convs == "on_input"
    assert cfg.model.neck.start_level == 1


def test_mask_rcnn_has_mask_head_and_segm_eval() -> None:
    cfg = Config.fromfile(CONFIGS / "mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py")
    assert cfg.model.roi_head.mask_head.type == "FCNMaskHead"
    assert cfg.model.train_cfg.rcnn.mask_size == 28
    assert cfg.evaluation.metric == ["bbox", "segm"]
    assert cfg.train_pipeline[1] == {
        "type": "LoadAnnotations",
        "with_bbox": True,
        "with_mask": True,
    }


def test_cascade_has_three_stages() -> None:
    model = Config.fromfile(CONFIGS / "_base_/models/cascade_rcnn_r50_fpn.py").model
    assert model.roi_head.num_stages == 3
    assert model.roi_head.stage_loss_weights == [1, 0.5, 0.25]
    assert [s.assigner.pos_iou_thr for s in model.train_cfg.rcnn] == [0.5, 0.6, 0.7]


def test_voc_is_repeated_over_2007_and_2012() -> None:
    cfg = Config.fromfile(CONFIGS / "_base_/datasets/voc0712.py")
    assert cfg.data.train.type == "RepeatDataset"
    assert cfg.data.train.times == 3
    assert len(cfg.data.train.dataset.ann_file) == 2
    assert cfg.evaluation == {"interval": 1, "metric": "mAP"}
