"""Config mistakes in real model configs fail with the config path and the closest name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.errors import (
    ConfigKeyError,
    ConfigTypeError,
    ConfigValueError,
    UnexpectedKeyError,
    UnknownTypeError,
)
from detforge.models import build_detector

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_misspelled_neck_type_names_fpn() -> None:
    cfg = load_config(
        CONFIGS / "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
        cfg_options={"model.neck.type": "FPNN"},
        environ={},
    ).cfg
    with pytest.raises(UnknownTypeError) as info:
        build_detector(cfg.model)
    message = str(info.value)
    assert message.startswith("model.neck:") and "'FPN'" in message


def test_misspelled_head_keyword_names_num_classes_and_the_path() -> None:
    cfg = load_config(
        CONFIGS / "retinanet/retinanet_r50_fpn_1x_coco.py",
        cfg_options={"model.bbox_head.num_clases": 3},
        environ={},
    ).cfg
    with pytest.raises(UnexpectedKeyError) as info:
        build_detector(cfg.model)
    message = str(info.value)
    assert message.startswith("model.bbox_head:")
    assert "'num_clases'" in message and "did you mean 'num_classes'" in message


def test_nested_anchor_generator_path() -> None:
    cfg = load_config(
        CONFIGS / "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
        cfg_options={"model.rpn_head.anchor_generator.scale": [8]},
        environ={},
    ).cfg
    with pytest.raises(UnexpectedKeyError) as info:
        build_detector(cfg.model)
    message = str(info.value)
    assert message.startswith("model.rpn_head.anchor_generator:")
    assert "did you mean 'scales'" in message


ALL_CONFIGS = sorted(
    p for p in CONFIGS.rglob("*.py") if "_base_" not in p.parts or "models" in p.parts
)


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_model_config_passes_the_build_checks(path: Path) -> None:
    """The nms, init_cfg and train/test_cfg checks accept every v2.28 config we ship."""
    cfg = load_config(path, environ={}).cfg
    with torch.device("meta"):  # no weights: only the build and its checks run
        build_detector(cfg.model)


def _build(config: str, **options: Any) -> None:
    cfg = load_config(CONFIGS / config, cfg_options=options, environ={}).cfg
    with torch.device("meta"):
        build_detector(cfg.model)


def test_nms_typo_is_an_error_naming_the_config_path() -> None:
    """Before, the typo was kept and only NMS at test time (if ever) complained."""
    with pytest.raises(UnexpectedKeyError) as info:
        _build(
            "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
            **{"model.test_cfg.rcnn.nms.iou_threshol": 0.3},
        )
    assert str(info.value).startswith(
        "model.test_cfg.rcnn.nms: unexpected key 'iou_threshol' for nms; "
        "did you mean 'iou_threshold'"
    )
    with pytest.raises(
        UnexpectedKeyError, match=r"^model\.train_cfg\.rpn_proposal\.nms: .*'iou_thresh'"
    ):
        _build(
            "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
            **{"model.train_cfg.rpn_proposal.nms.iou_thresh": 0.7},
        )


@pytest.mark.parametrize(
    ("init_cfg", "kind", "message"),
    [
        (dict(type="Normal", layer="Conv2D", std=0.01), ConfigKeyError,
         "model.bbox_head.init_cfg.layer: no module class is named 'Conv2D', so this initialiser "
         "would initialise nothing; did you mean 'Conv2d'"),
        (dict(type="Normal", layer="Conv2d", std=0.01,
              override=dict(type="Normal", name="retina_cls", std=0.01, bias_prb=0.01)),
         UnexpectedKeyError,
         "model.bbox_head.init_cfg.override: unexpected key 'bias_prb' for Normal; "
         "did you mean 'bias_prob'"),
        ([dict(type="Kaiming", layer="Conv2d", distribution="normall")], ConfigValueError,
         "model.bbox_head.init_cfg.0: KaimingInit: distribution must be one of 'normal', "
         "'uniform'"),
        (dict(type="Normall", layer="Conv2d"), UnknownTypeError,
         "model.bbox_head.init_cfg: type='Normall' is not in the initializers registry; "
         "did you mean 'Normal'"),
        (dict(type="Normal", layer="Conv2d", override=dict(type="Normal", std=0.01)),
         ConfigKeyError, "model.bbox_head.init_cfg.override: needs 'name'"),
    ],
)  # fmt: skip
def test_init_cfg_mistakes_fail_at_build_with_the_config_path(
    init_cfg: Any, kind: type[Exception], message: str
) -> None:
    with pytest.raises(kind) as info:
        _build("retinanet/retinanet_r50_fpn_1x_coco.py", **{"model.bbox_head.init_cfg": init_cfg})
    assert str(info.value).startswith(message)


def test_a_pretrained_typo_names_the_backbone_init_cfg() -> None:
    with pytest.raises(
        UnexpectedKeyError,
        match=r"^model\.backbone\.init_cfg: unexpected key 'checkpoin'.*'checkpoint'",
    ):
        _build(
            "retinanet/retinanet_r50_fpn_1x_coco.py",
            **{"model.backbone.init_cfg.checkpoin": "x.pth"},
        )


def test_a_test_cfg_that_is_no_dict_names_model_test_cfg() -> None:
    """mmcv's DictAction reads ``model.test_cfg=abc`` as the string 'abc', a legal value; it is
    the build that refuses it, naming the key."""
    with pytest.raises(
        ConfigTypeError, match=r"^model\.test_cfg: expected a dict \(or None\), got 'abc'"
    ):
        _build("retinanet/retinanet_r50_fpn_1x_coco.py", **{"model.test_cfg": "abc"})


@pytest.mark.parametrize(
    ("options", "kind", "message"),
    [
        ({"model.neck.in_channels": 256}, ConfigTypeError,
         "model.neck (FPN): TypeError: FPN: in_channels must be a list of ints, got 256"),
        ({"model.backbone.style": "pytorc"}, ConfigValueError,
         "model.backbone (ResNet): ValueError: ResNet: style must be 'pytorch' or 'caffe'"),
        ({"model.bbox_head.stacked_convs": "four"}, ConfigTypeError,
         "model.bbox_head (RetinaHead): TypeError: "),
    ],
)  # fmt: skip
def test_errors_inside_components_name_the_component(
    options: dict[str, Any], kind: type[Exception], message: str
) -> None:
    with pytest.raises(kind) as info:
        _build("retinanet/retinanet_r50_fpn_1x_coco.py", **options)
    assert str(info.value).startswith(message)
    assert info.value.__cause__ is not None  # the original error, with its traceback


def test_a_type_less_checkpoint_init_cfg_is_checked_as_pretrained() -> None:
    # v2's PVT and Swin configs write init_cfg=dict(checkpoint=...) with no type
    from detforge.models.layers.init_check import check_init_cfg

    check_init_cfg(dict(checkpoint="pvt_tiny.pth"), "model.backbone.init_cfg")
    with pytest.raises(UnexpectedKeyError, match=r"^model\.backbone\.init_cfg: .*'prefx'"):
        check_init_cfg(dict(checkpoint="pvt_tiny.pth", prefx="a."), "model.backbone.init_cfg")
