"""v2.28.2's ``configs/objects365/retinanet_r50_fpn_syncbn_1350k_obj365v1.py`` inherits the
Faster R-CNN model but sets ``model.bbox_head`` (a RetinaNet key). v2 itself cannot build it:
``TwoStageDetector``/``FasterRCNN.__init__`` take no ``bbox_head`` and no ``**kwargs``, so
mmcv's ``build_from_cfg`` raises ``TypeError: FasterRCNN: __init__() got an unexpected keyword
argument 'bbox_head'``. detforge refuses it the same way, with an error that names the config
path, the key and the detector (and suggests ``roi_head``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.config import load_config
from detforge.errors import UnexpectedKeyError
from detforge.models import build_detector

BASE = (
    Path(__file__).resolve().parents[2] / "configs" / "_base_" / "models" / "faster_rcnn_r50_fpn.py"
)


def test_faster_rcnn_with_a_bbox_head_is_refused_as_in_v2(tmp_path: Path) -> None:
    config = tmp_path / "retinanet_r50_fpn_syncbn_1350k_obj365v1.py"
    config.write_text(
        f"_base_ = [{str(BASE)!r}]\n"
        "norm_cfg = dict(type='SyncBN', requires_grad=True)\n"
        "model = dict(backbone=dict(norm_cfg=norm_cfg), bbox_head=dict(num_classes=365))\n"
    )
    model = load_config(config, environ={}).cfg.model
    assert model["type"] == "FasterRCNN" and model["bbox_head"] == {"num_classes": 365}
    with pytest.raises(
        UnexpectedKeyError, match=r"model: unexpected key 'bbox_head' for FasterRCNN"
    ):
        build_detector(model)
