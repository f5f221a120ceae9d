"""DepthwiseSeparableConvModule: mmcv's 'default' resolution of the per-conv configs, keys."""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import DepthwiseSeparableConvModule


def test_default_configs_and_keys() -> None:
    m = DepthwiseSeparableConvModule(
        4, 8, 3, stride=2, padding=1, norm_cfg=dict(type="BN"), pw_act_cfg=None
    )
    assert m.depthwise_conv.conv.groups == 4 and m.depthwise_conv.conv.stride == (2, 2)
    assert m.pointwise_conv.conv.kernel_size == (1, 1)
    assert m.depthwise_conv.with_activation and not m.pointwise_conv.with_activation
    assert list(m.state_dict())[:2] == ["depthwise_conv.conv.weight", "depthwise_conv.bn.weight"]
    assert m(torch.rand(1, 4, 6, 6)).shape == (1, 8, 3, 3)


def test_bad_sentinel() -> None:
    with pytest.raises(ValueError, match="dw_norm_cfg"):
        DepthwiseSeparableConvModule(4, 8, 3, dw_norm_cfg="defualt")
