"""Typos in ``train_cfg``/``test_cfg`` fail when the model is built, naming the path and key.

Before, every head read the keys it knew and ignored the rest, so ``test_cfg.rcnn.max_per_im``
ran with v2's default of 100 detections and ``train_cfg.rpn.allowed_bordr`` with 0.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from detforge.config import Config
from detforge.errors import ConfigTypeError, UnexpectedKeyError
from detforge.models import build_detector
from detforge.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _model(name: str) -> dict[str, Any]:
    return copy.deepcopy(Config.fromfile(CONFIGS / name).model.to_dict())


@pytest.mark.parametrize(
    ("config", "section", "key", "where", "suggestion"),
    [
        ("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py", ("test_cfg", "rcnn"), "max_per_im",
         "model.roi_head: test_cfg of StandardRoIHead", "max_per_img"),
        ("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py", ("train_cfg", "rpn"), "allowed_bordr",
         "model.rpn_head: train_cfg of RPNHead", "allowed_border"),
        ("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py", ("train_cfg",), "rpn_propsal",
         "model: train_cfg of FasterRCNN", "rpn_proposal"),
        ("retinanet/retinanet_r50_fpn_1x_coco.py", ("test_cfg",), "nms_pr",
         "model.bbox_head: test_cfg of RetinaHead", "nms_pre"),
        ("atss/atss_r50_fpn_1x_coco.py", ("train_cfg",), "pos_weigth",
         "model.bbox_head: train_cfg of ATSSHead", "pos_weight"),
    ],
)  # fmt: skip
def test_a_typo_in_train_or_test_cfg_is_an_error(
    config: str, section: tuple[str, ...], key: str, where: str, suggestion: str
) -> None:
    model = _model(config)
    target = model
    for name in section:
        target = target[name]
    target[key] = 1
    with pytest.raises(UnexpectedKeyError) as info:
        build_detector(model)
    message = str(info.value)
    assert message.startswith(f"{where}: unexpected key {key!r}")
    assert f"did you mean {suggestion!r}" in message


def test_cascade_stage_train_cfg_is_checked() -> None:
    model = _model("cascade_rcnn/cascade_rcnn_r50_fpn_1x_coco.py")
    model["train_cfg"]["rcnn"][2]["mask_sise"] = 28
    with pytest.raises(UnexpectedKeyError, match=r"CascadeRoIHead.*'mask_sise'.*'mask_size'"):
        build_detector(model)


def test_proposal_cfg_given_at_call_time_is_checked() -> None:
    head = MODELS.build(_model("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py")["rpn_head"])
    with pytest.raises(UnexpectedKeyError, match=r"'max_per_image'.*'max_per_img'"):
        head._test_cfg(dict(nms_pre=10, max_per_image=5))


def test_a_settings_section_must_be_a_dict() -> None:
    model = _model("retinanet/retinanet_r50_fpn_1x_coco.py")
    model["test_cfg"] = "abc"
    with pytest.raises(ConfigTypeError, match=r"model\.test_cfg: expected a dict"):
        build_detector(model)
