"""HRFPN: golden outputs of MMDetection (fed MMDetection's HRNet features), options, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detforge.models.necks import HRFPN
from detforge.registry import MODELS, build_module
from tests.models.component_goldens import assert_features, load_golden

# one thread, as the goldens were made (and fast on a loaded machine)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("instance", ["small", "single_output_max"])
def test_golden_outputs_match_mmdetection(instance: str) -> None:
    weights, _, expected = load_golden("hrnet")
    neck = build_module(dict(expected[instance]["config"]["neck"]), MODELS).eval()
    state = {k[2:]: v for k, v in weights[instance].items() if k.startswith("1.")}
    neck.load_state_dict(state, strict=True)
    with torch.no_grad():
        assert_features(neck(expected[instance]["backbone"]), expected[instance]["neck"])


def test_layout_pooling_and_default_init() -> None:
    neck = HRFPN([4, 8], 6, num_outs=3, pooling_type="MAX", norm_cfg=dict(type="BN"))
    # v2 builds the convs without norm_cfg: a bias, no norm layer
    assert sorted(neck.state_dict()) == sorted(
        ["reduction_conv.conv.weight", "reduction_conv.conv.bias"]
        + [f"fpn_convs.{i}.conv.{p}" for i in range(3) for p in ("weight", "bias")]
    )
    assert neck.init_cfg["type"] == "Caffe2Xavier"
    neck.init_weights()
    assert torch.all(neck.fpn_convs[0].conv.bias == 0)
    x = [torch.rand(1, 4, 8, 8), torch.rand(1, 8, 4, 4)]
    with torch.no_grad():
        outs = neck(x)
        up = F.interpolate(x[1], scale_factor=2, mode="bilinear")
        reduced = neck.reduction_conv(torch.cat([x[0], up], 1))
        torch.testing.assert_close(outs[2], neck.fpn_convs[2](F.max_pool2d(reduced, 4)))


def test_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = HRFPN([4, 8], 6, num_outs=2)
    ckpt = HRFPN([4, 8], 6, num_outs=2, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = [torch.rand(1, 4, 8, 8, requires_grad=True), torch.rand(1, 8, 4, 4)]
    grads = []
    for neck in (plain, ckpt):
        neck.zero_grad()
        sum(o.sum() for o in neck(x)).backward()
        grads.append(neck.reduction_conv.conv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_wrong_number_of_inputs_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 2 inputs, got 1"):
        HRFPN([4, 8], 6)([torch.rand(1, 4, 8, 8)])
    with pytest.raises(TypeError, match="list of ints"):
        HRFPN(4, 6)  # type: ignore[arg-type]
