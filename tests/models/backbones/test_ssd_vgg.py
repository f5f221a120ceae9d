"""SSDVGG (+ SSDNeck with its L2 norm): v2.28's layout, outputs and deprecated arguments.

The golden (``tests/data/goldens/ssd_vgg``) runs VGG-11 at full width with formula weights
(``tools/goldens/weights.py``) and an SSDNeck with ``l2_norm_scale=20`` on a 1x3x64x64 input.
"""

from __future__ import annotations

import pytest
import torch

from detforge.models.backbones import SSDVGG
from tests.models.component_golden import check_golden, check_layout


def test_golden_vgg11_with_l2_normed_ssd_neck() -> None:
    check_golden("ssd_vgg")


@pytest.mark.parametrize("config", ["ssd300", "ssd512"])
def test_full_size_layout(config: str) -> None:
    layout = check_layout("ssd_vgg", f"layout_{config}.json")
    assert "neck.l2_norm.weight" in {k for k, _ in layout["state_dict"]}


def test_vgg16_feature_indices() -> None:
    with torch.device("meta"):
        net = SSDVGG(depth=16)
    convs = [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, 31, 33]
    assert net.features[31].dilation == (6, 6) and net.features[30].stride == 1
    assert isinstance(net.features[22], torch.nn.ReLU) and isinstance(
        net.features[34], torch.nn.ReLU
    )


def test_single_output_is_a_tensor_and_ceil_mode() -> None:
    net = SSDVGG(depth=11, out_feature_indices=(24,)).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 36, 36))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (1, 1024, 3, 3)  # 36 -> 18 -> 9 -> 5 -> 3 with ceil_mode pooling


def test_deprecated_arguments_warn_and_errors() -> None:
    with pytest.warns(DeprecationWarning, match="l2_norm_scale"):
        SSDVGG(depth=11, out_feature_indices=(14, 24), l2_norm_scale=20)
    with pytest.warns(DeprecationWarning, match="input_size"):
        SSDVGG(depth=11, out_feature_indices=(14, 24), input_size=300)
    with pytest.raises(ValueError, match="out_feature_indices"):
        SSDVGG(depth=11, out_feature_indices=(22, 34))
    with pytest.raises(Exception, match="depth 17"):
        SSDVGG(depth=17)
