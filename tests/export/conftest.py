"""Tiny detectors for the export tests: real configs of the repository with ResNet-18 at 16
base channels, FPN at 32 channels, one anchor per location, three classes and a 400x300 test
scale, so that export, ONNX Runtime and PyTorch each take well under a second.

The weights are PyTorch's default initialisation under ``torch.manual_seed(0)`` (not the
heads' ``init_weights``, whose focal-loss prior puts every score at 0.01): their scores spread
over roughly 0.3-0.7, so the thresholds below keep some tens of detections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

_PIPELINE = """
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(400, 300), flip=False,
         transforms=[dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'),
                     dict(type='Normalize', **img_norm_cfg), dict(type='Pad', size_divisor=32),
                     dict(type='ImageToTensor', keys=['img']), dict(type='Collect', keys=['img'])])]
data = dict(test=dict(pipeline=test_pipeline))
"""
_BACKBONE = (
    "backbone=dict(depth=18, base_channels=16, init_cfg=None, frozen_stages=-1),\n"
    "    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),"
)
_TWO_STAGE_HEADS = """
    rpn_head=dict(in_channels=32, feat_channels=32, anchor_generator=dict(ratios=[1.0])),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=32),
                  bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=3){mask}),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100),
                  rcnn=dict(score_thr=0.2, max_per_img=50)))
"""
_MASK = """,
                  mask_roi_extractor=dict(out_channels=32),
                  mask_head=dict(num_convs=1, in_channels=32, conv_out_channels=32,
                                 num_classes=3)"""


def _dense(base: str, score_thr: float, head: str = "") -> str:
    return f"""_base_ = '{CONFIGS / base}'
model = dict({_BACKBONE}
    bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32, stacked_convs=1{head}),
    test_cfg=dict(score_thr={score_thr}, nms_pre=200, max_per_img=50))
{_PIPELINE}"""


def _two_stage(base: str, mask: bool) -> str:
    heads = _TWO_STAGE_HEADS.replace("{mask}", _MASK if mask else "")
    return f"_base_ = '{CONFIGS / base}'\nmodel = dict({_BACKBONE}{heads}{_PIPELINE}"


TINY_CONFIGS = {
    "retinanet": _dense(
        "retinanet/retinanet_r50_fpn_1x_coco.py",
        0.55,
        ", anchor_generator=dict(scales_per_octave=1, ratios=[1.0])",
    ),
    "faster_rcnn": _two_stage("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py", mask=False),
    "mask_rcnn": _two_stage("mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py", mask=True),
    "gfl": _dense("gfl/gfl_r50_fpn_1x_coco.py", 0.3, ", reg_max=4"),
    "vfnet": _dense("vfnet/vfnet_r50_fpn_1x_coco.py", 0.3),
}


@pytest.fixture(scope="session")
def demo_jpg(shared_data: Path) -> Path:
    """MMDetection's demo photo (640x427)."""
    path = shared_data / "mmdet_testdata" / "demo" / "demo.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def color_jpg(mmdet_test_data: Path) -> Path:
    """A second real image of another aspect ratio (512x288)."""
    return mmdet_test_data / "color.jpg"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny configs and their seeded checkpoints (``NAME.py``, ``NAME.pth``)."""
    return tmp_path_factory.mktemp("tiny_detectors")


_MODELS: dict[str, Any] = {}


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path) -> Any:
    """``tiny_model(name)``: the detector in eval mode (built once per session); its config
    and checkpoint are written to ``tiny_dir``."""
    import torch

    from detforge.apis.inference import init_detector

    def build(name: str) -> Any:
        if name not in _MODELS:
            config = tiny_dir / f"{name}.py"
            config.write_text(TINY_CONFIGS[name])
            torch.manual_seed(0)
            model = init_detector(str(config), None, device="cpu")
            model.CLASSES = ("a", "b", "c")
            torch.save(
                dict(state_dict=model.state_dict(), meta=dict(CLASSES=model.CLASSES)),
                tiny_dir / f"{name}.pth",
            )
            _MODELS[name] = model.eval()
        return _MODELS[name]

    return build
