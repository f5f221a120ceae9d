"""Init helpers (seeded statistics), ``initialize`` (layer, override), Pretrained, init flow."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from detforge.errors import ConfigTypeError, UnexpectedKeyError, UnknownTypeError
from detforge.models.layers import SyncBatchNorm
from detforge.models.layers.init import (
    apply_init_cfg,
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    initialize,
    kaiming_init,
    normal_init,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)


def _big_conv() -> nn.Conv2d:
    return nn.Conv2d(64, 128, 3)  # fan_in = 576, fan_out = 1152, 73728 weights


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _close(value: float, target: float, rel: float = 0.02) -> bool:
    return abs(value / target - 1) < rel


def test_constant_init() -> None:
    conv = nn.Conv2d(2, 3, 1)
    constant_init(conv, 0.25, bias=-1)
    assert torch.all(conv.weight == 0.25) and torch.all(conv.bias == -1)
    constant_init(nn.ReLU(), 1.0)  # no weight: nothing to do, no error
    no_bias = nn.Conv2d(2, 3, 1, bias=False)
    constant_init(no_bias, 2.0, bias=5)
    assert no_bias.bias is None and torch.all(no_bias.weight == 2)


def test_xavier_init_statistics() -> None:
    conv = _big_conv()
    xavier_init(conv, distribution="uniform", bias=0.5)
    bound = math.sqrt(6 / (576 + 1152))
    assert conv.weight.abs().max() <= bound
    assert _close(conv.weight.std().item(), bound / math.sqrt(3))
    assert torch.all(conv.bias == 0.5)
    xavier_init(conv, gain=2, distribution="normal")
    assert _close(conv.weight.std().item(), 2 * math.sqrt(2 / (576 + 1152)))
    with pytest.raises(ValueError, match="distribution"):
        xavier_init(conv, distribution="gaussian")


def test_normal_trunc_uniform_statistics() -> None:
    conv = _big_conv()
    normal_init(conv, mean=0.5, std=0.01, bias=0.1)
    assert abs(conv.weight.mean().item() - 0.5) < 1e-3
    assert _close(conv.weight.std().item(), 0.01)
    assert torch.allclose(conv.bias, torch.full_like(conv.bias, 0.1))
    trunc_normal_init(conv, mean=0, std=1, a=-0.5, b=0.5)
    assert conv.weight.min() >= -0.5 and conv.weight.max() <= 0.5
    # N(0,1) truncated to [-0.5, 0.5] has std ~0.2826
    assert _close(conv.weight.std().item(), 0.2826)
    uniform_init(conv, a=-3, b=1)
    assert conv.weight.min() >= -3 and conv.weight.max() <= 1
    assert abs(conv.weight.mean().item() + 1) < 0.02


def test_kaiming_and_caffe2_statistics() -> None:
    conv = _big_conv()
    kaiming_init(conv)  # normal, fan_out, relu
    assert _close(conv.weight.std().item(), math.sqrt(2 / 1152))
    assert torch.all(conv.bias == 0)
    kaiming_init(conv, mode="fan_in", distribution="uniform")
    bound = math.sqrt(6 / 576)
    assert conv.weight.abs().max() <= bound
    assert _close(conv.weight.std().item(), bound / math.sqrt(3))
    kaiming_init(conv, a=0.1, nonlinearity="leaky_relu")
    assert _close(conv.weight.std().item(), math.sqrt(2 / (1 + 0.01)) / math.sqrt(1152))
    caffe2_xavier_init(conv, bias=2)
    bound = math.sqrt(3 / 576)  # gain 1 (leaky_relu with a=1), fan_in
    assert conv.weight.abs().max() <= bound
    assert _close(conv.weight.std().item(), bound / math.sqrt(3))
    assert torch.all(conv.bias == 2)


def test_bias_init_with_prob() -> None:
    assert bias_init_with_prob(0.01) == pytest.approx(-4.59511985013459, abs=1e-12)
    assert bias_init_with_prob(0.5) == 0.0
    with pytest.raises(ValueError):
        bias_init_with_prob(1.0)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.sync = SyncBatchNorm(4)
        self.gn = nn.GroupNorm(2, 4)
        self.cls = nn.Conv2d(4, 5, 1)
        self.fc = nn.Linear(5, 2)


def test_initialize_layer_matches_class_and_base_names() -> None:
    net = _Net()
    initialize(
        net,
        [
            dict(type="Constant", val=2, bias=1, layer="Conv2d"),
            dict(type="Constant", val=0.5, layer=["_BatchNorm", "GroupNorm"]),
        ],
    )
    assert torch.all(net.feat.weight == 2) and torch.all(net.cls.bias == 1)
    for norm in (net.bn, net.sync, net.gn):
        assert torch.all(norm.weight == 0.5) and torch.all(norm.bias == 0)
    assert not torch.all(net.fc.weight == 2)  # not a matching layer


def test_initialize_without_layer_does_nothing() -> None:
    net = _Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    initialize(net, dict(type="Constant", val=3))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_override_with_type_and_bias_prob() -> None:
    """RetinaHead's v2 init_cfg: Normal(0.01) for convs, the cls conv's bias from a prior."""
    net = _Net()
    initialize(
        net,
        dict(
            type="Normal",
            layer="Conv2d",
            std=0.01,
            override=dict(type="Normal", name="cls", std=0.01, bias_prob=0.01),
        ),
    )
    assert _close(net.feat.weight.std().item(), 0.01, rel=0.4)
    assert torch.all(net.feat.bias == 0)
    assert torch.allclose(net.cls.bias, torch.full((5,), -4.59511985))


def test_override_with_only_name_reuses_parent_initialiser() -> None:
    net = _Net()
    initialize(net, dict(type="Constant", val=7, layer="Linear", override=dict(name="bn")))
    assert torch.all(net.fc.weight == 7)
    assert torch.all(net.bn.weight == 7)  # whole module, parent's 'layer' dropped
    assert not torch.all(net.feat.weight == 7)


def test_initialize_errors() -> None:
    net = _Net()
    with pytest.raises(UnknownTypeError, match="did you mean 'Kaiming'"):
        initialize(net, dict(type="Kaimng", layer="Conv2d"))
    with pytest.raises(UnexpectedKeyError, match="std"):
        initialize(net, dict(type="Constant", val=1, std=2))
    with pytest.raises(ConfigTypeError, match="name"):
        initialize(net, dict(type="Constant", val=1, override=dict(type="Constant", val=2)))
    with pytest.raises(ConfigTypeError, match="type"):
        initialize(net, dict(type="Constant", val=1, override=dict(name="cls", val=2)))
    with pytest.raises(AttributeError, match="nope"):
        initialize(net, dict(type="Constant", val=1, override=dict(name="nope")))
    with pytest.raises(ConfigTypeError, match="layer"):
        initialize(net, dict(type="Constant", val=1, layer=3))
    with pytest.raises(ConfigTypeError):
        initialize(net, "Kaiming")  # type: ignore[arg-type]


def test_pretrained_loads_a_checkpoint_file(tmp_path: Path) -> None:
    source = _Net()
    constant_init(source.feat, 9, bias=3)
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    net = _Net()
    initialize(net, dict(type="Pretrained", checkpoint=str(path), map_location="cpu"))
    assert torch.all(net.feat.weight == 9) and torch.all(net.feat.bias == 3)


def test_pretrained_with_prefix_loads_only_that_part(tmp_path: Path) -> None:
    source = _Net()
    constant_init(source.feat, 7)
    path = tmp_path / "detector.pth"
    torch.save({f"backbone.{k}": v for k, v in source.state_dict().items()}, path)
    net = _Net()
    initialize(net, dict(type="Pretrained", checkpoint=str(path), prefix="backbone."))
    assert torch.all(net.feat.weight == 7)
    with pytest.raises(ValueError, match="no weights under the prefix 'neck'"):
        initialize(net, dict(type="Pretrained", checkpoint=str(path), prefix="neck"))


def test_pretrained_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        initialize(_Net(), dict(type="Pretrained", checkpoint=str(missing)))


class _Child(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        self.called = 0

    def init_weights(self) -> None:
        self.called += 1
        constant_init(self.conv, 5)


class _Parent(nn.Module):
    def __init__(self, init_cfg: Any) -> None:
        super().__init__()
        self.child = _Child()
        self.plain = nn.ModuleList([_Child()])
        self.init_cfg = init_cfg


def test_apply_init_cfg_follows_base_module_semantics(tmp_path: Path) -> None:
    parent = _Parent(dict(type="Constant", val=1, layer="Conv2d"))
    apply_init_cfg(parent, parent.init_cfg)
    assert parent.child.called == 1 and torch.all(parent.child.conv.weight == 5)  # child refines
    assert parent.plain[0].called == 0  # plain containers are not descended into
    assert torch.all(parent.plain[0].conv.weight == 1)

    path = tmp_path / "c.pth"
    torch.save(_Parent(None).state_dict(), path)
    loaded = _Parent(dict(type="Pretrained", checkpoint=str(path)))
    apply_init_cfg(loaded, loaded.init_cfg)
    assert loaded.child.called == 0  # pretrained weights are not overwritten
    apply_init_cfg(loaded, None)
    assert loaded.child.called == 1
