"""FLOPs (v2/mmcv multiply-accumulates) and parameter counts of ``detforge.analysis.flops``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from detforge.analysis.flops import (
    count_complexity,
    flops_to_string,
    get_model_complexity_info,
    padded_input_shape,
    params_to_string,
)
from detforge.config import load_config
from detforge.models import build_detector
from tests.conftest import shared_data_dir

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
LAYOUTS = shared_data_dir().parent / "fixtures" / "mmdet" / "layouts"


def _layout(name: str) -> dict:
    path = LAYOUTS / name
    if not path.is_file():
        pytest.skip(f"layout {path} not found")
    return json.loads(path.read_text())


def _info(config: str, shape=(3, 1280, 800)):
    cfg = load_config(CONFIGS / config, environ={}).cfg
    return get_model_complexity_info(lambda: build_detector(cfg.model), shape)


def test_retinanet_r50_matches_the_published_239_gflops_and_exact_params() -> None:
    layout = _layout("retinanet_r50.json")
    info = _info("retinanet/retinanet_r50_fpn_1x_coco.py")
    assert info.device == "meta"  # shapes only: no arithmetic, no memory
    assert info.params == layout["num_trainable_params"] == 37_743_348
    assert info.total_params == layout["num_params"]
    assert info.flops == 239_316_500_520  # v2's docs print 239.32 GFLOPs
    assert flops_to_string(info.flops) == "239.32 GFLOPs"
    assert params_to_string(info.params) == "37.74 M"
    # conv MACs dominate; BN, ReLU and max-pool are counted as mmcv did, nothing else
    assert set(info.by_operator) == {
        "aten.convolution",
        "aten._native_batch_norm_legit_no_training",
        "aten.relu_",
        "aten.max_pool2d_with_indices",
    }
    assert sum(info.by_module.values()) == info.flops
    assert list(info.by_module) == ["backbone", "neck", "bbox_head"]


def test_faster_rcnn_r50_params_equal_the_layout_fixture() -> None:
    layout = _layout("faster_rcnn_r50.json")
    info = _info("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py")
    assert info.params == layout["num_trainable_params"]
    assert info.total_params == layout["num_params"]
    # the RoI head runs on 1000 dummy proposals: fc6, fc7 (12544->1024->1024) with ReLUs and
    # the two outputs; as in mmcv, a linear bias adds once per output feature, not per row
    macs = 12544 * 1024 + 1024 * 1024 + 1024 * 81 + 1024 * 320
    fcs = 1000 * macs + (1024 * 2 + 81 + 320) + 1000 * 1024 * 2
    assert info.by_module["roi_head"] == fcs == 14_306_306_449
    assert "torchvision.roi_align" in info.uncounted_ops
    # the functional F.relu of the RPN head (P2-P6) and F.max_pool2d of FPN's P6 count here,
    # not in mmcv: 207,065,140,549 there
    functional = 256 * (320 * 200 + 160 * 100 + 80 * 50 + 40 * 25 + 20 * 13) + 256 * 40 * 25
    assert info.flops == 207_065_140_549 + functional == 207_087_223_109
    assert flops_to_string(info.flops) == "207.09 GFLOPs"


def test_small_model_counts_equal_a_hand_computation() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 16*16 * 8 * 27 MACs + 16*16*8 bias adds
        nn.BatchNorm2d(8),  # 2 per element (affine)
        nn.ReLU(inplace=True),  # 1 per element
        nn.MaxPool2d(2),  # 1 per input element
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),  # 512 * 10 MACs + 10 bias adds
    )
    n = 16 * 16 * 8
    expected = n * 27 + n + 2 * n + n + n + 512 * 10 + 10
    info = count_complexity(model, (3, 16, 16), forward=model)
    assert info.flops == expected
    # a linear layer on 4 rows: 4 * 6 * 5 MACs, its bias once per output feature (mmcv)
    linear = nn.Linear(5, 6)
    assert count_complexity(linear, (4, 5), forward=linear).flops == 4 * 6 * 5 + 6
    assert info.params == info.total_params == 8 * 27 + 8 + 16 + 512 * 10 + 10
    model[0].weight.requires_grad_(False)
    assert count_complexity(model, (3, 16, 16), forward=model).params == 8 + 16 + 5130


def test_data_dependent_forward_falls_back_to_cpu_with_the_same_count() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1, bias=False)

        def forward_dummy(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return y if y.sum().item() < 1e9 else 2 * y  # needs real values

    info = get_model_complexity_info(Branchy, (3, 8, 8))
    assert info.device == "cpu"
    assert info.flops == 64 * 4 * 3


def test_model_without_forward_dummy_is_a_clear_error() -> None:
    class NoDummy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

    with pytest.raises(NotImplementedError, match="NoDummy: it has neither forward_dummy"):
        get_model_complexity_info(NoDummy, (3, 8, 8))
    with pytest.raises(NotImplementedError, match="NoDummy: it has neither forward_dummy"):
        count_complexity(NoDummy(), (3, 8, 8))

    class PlainForward(NoDummy):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    assert get_model_complexity_info(PlainForward, (3, 8, 8)).flops == 64 * 4 * 3 + 64 * 4


def test_shapes_and_strings() -> None:
    assert padded_input_shape([1280, 800]) == (3, 1280, 800)
    assert padded_input_shape([1281, 799]) == (3, 1312, 800)
    assert padded_input_shape([500], -1) == (3, 500, 500)
    with pytest.raises(ValueError, match="H W"):
        padded_input_shape([1, 2, 3])
    assert flops_to_string(239_324_000_000) == "239.32 GFLOPs"
    assert flops_to_string(5e8) == "0.5 GFLOPs"  # mmcv's str(round(...)) keeps one digit
