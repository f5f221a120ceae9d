"""HRNet: MMDetection's full-size layout and golden outputs, stage checks, norm_eval."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.backbones import HRNet
from detforge.models.backbones.hrnet import HRModule
from detforge.models.layers import BasicBlock
from detforge.registry import MODELS, build_module
from tests.models.component_goldens import assert_features, assert_layout, load_golden, load_layout

# one thread, as the goldens were made (and fast on a loaded machine)
pytestmark = pytest.mark.usefixtures("one_thread")


def _strip(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _tiny_extra(**stage4: Any) -> dict[str, Any]:
    def stage(n: int) -> dict[str, Any]:
        return dict(
            num_modules=1,
            num_branches=n,
            block="BASIC",
            num_blocks=(1,) * n,
            num_channels=(4, 8, 16, 32)[:n],
        )

    s1 = dict(num_modules=1, num_branches=1, block="BOTTLENECK", num_blocks=(1,), num_channels=(4,))
    return dict(stage1=s1, stage2=stage(2), stage3=stage(3), stage4={**stage(4), **stage4})


def test_full_size_layout_matches_mmdetection() -> None:
    record = load_layout("hrnet")
    model = nn.Module()
    model.backbone = build_module(copy.deepcopy(record["config"]["backbone"]), MODELS)
    model.neck = build_module(copy.deepcopy(record["config"]["neck"]), MODELS)
    assert_layout(model, record)


@pytest.mark.parametrize("instance", ["small", "single_output_max"])
def test_golden_outputs_match_mmdetection(instance: str) -> None:
    weights, inputs, expected = load_golden("hrnet")
    cfg = expected[instance]["config"]
    backbone = build_module(dict(cfg["backbone"]), MODELS).eval()
    backbone.load_state_dict(_strip(weights[instance], "0."), strict=True)
    with torch.no_grad():
        assert_features(backbone(inputs[instance]), expected[instance]["backbone"])


def test_stage_config_errors_name_the_stage_and_key() -> None:
    extra = _tiny_extra()
    del extra["stage3"]["num_channels"]
    with pytest.raises(ConfigKeyError, match=r"extra\['stage3'\] lacks \['num_channels'\]"):
        HRNet(extra=extra)
    extra = _tiny_extra(num_blocks=(1, 1))
    with pytest.raises(ValueError, match=r"extra\['stage4'\]\['num_blocks'\].*num_branches=4"):
        HRNet(extra=extra)
    with pytest.raises(ConfigKeyError, match="lacks 'stage4'"):
        HRNet(extra={k: v for k, v in _tiny_extra().items() if k != "stage4"})
    with pytest.raises(ConfigKeyError, match=r"'BASE'.*BASIC"):
        HRNet(extra=_tiny_extra(block="BASE"))


def test_multiscale_output_false_returns_the_highest_resolution_only() -> None:
    net = HRNet(extra=_tiny_extra(num_modules=2), multiscale_output=False).eval()
    # only the last module fuses into one branch
    assert len(net.stage4[0].fuse_layers) == 4 and len(net.stage4[1].fuse_layers) == 1
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 4, 8, 8)]


def test_hrmodule_fuse_layers_and_none_placeholders() -> None:
    m = HRModule(3, BasicBlock, (1, 1, 1), [4, 8, 16], (4, 8, 16))
    assert m.fuse_layers is not None and m.fuse_layers[1][1] is None
    # from branch 0 to 2: two stride-2 3x3 convs, the first keeping 4 channels with a ReLU
    down = m.fuse_layers[2][0]
    assert [tuple(s[0].weight.shape) for s in down] == [(4, 4, 3, 3), (16, 4, 3, 3)]
    assert isinstance(down[0][2], nn.ReLU) and len(down[1]) == 2
    with pytest.raises(ValueError, match="num_branches=3 but num_channels has 2"):
        HRModule(3, BasicBlock, (1, 1, 1), [4, 8, 16], (4, 8))


def test_norm_eval_keeps_batch_norms_in_eval_mode_and_init_runs() -> None:
    net = HRNet(extra=_tiny_extra())
    net.init_weights()
    assert torch.all(net.bn1.weight == 1)
    net.train()
    assert net.training and not net.bn1.training and not net.stage4[0].branches[3][0].bn2.training
    net = HRNet(extra=_tiny_extra(), norm_eval=False).train()
    assert net.bn1.training
