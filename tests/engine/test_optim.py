"""build_optimizer (MMCV's default constructor rules), auto_scale_lr and clip_grads."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from detforge.engine.optim import auto_scale_lr, build_optimizer, clip_grads
from detforge.errors import ConfigError, UnknownTypeError

LR = 0.01
WD = 1e-4


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.dwconv = nn.Conv2d(4, 4, 3, groups=4)
        self.gn = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(4, 2)
        self.dcn = nn.Module()
        self.dcn.conv_offset = nn.Conv2d(4, 18, 3)


def _table(opt: torch.optim.Optimizer, model: nn.Module) -> dict[str, tuple[float, float]]:
    """Parameter name -> (lr, weight_decay) of the (single-parameter) group holding it."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in opt.param_groups:
        assert len(group["params"]) == 1
        out[names[id(group["params"][0])]] = (group["lr"], group["weight_decay"])
    return out


def _approx(table: dict[str, tuple[float, float]]) -> dict[str, object]:
    return {k: pytest.approx(v, rel=1e-12, abs=1e-15) for k, v in table.items()}


def test_no_paramwise_cfg_is_one_group_with_all_params() -> None:
    model = Net()
    model.conv1.weight.requires_grad_(False)
    opt = build_optimizer(model, dict(type="SGD", lr=LR, momentum=0.9, weight_decay=WD))
    assert isinstance(opt, torch.optim.SGD)
    assert len(opt.param_groups) == 1
    assert len(opt.param_groups[0]["params"]) == len(list(model.parameters())) == 12
    assert opt.defaults["momentum"] == 0.9


def test_paramwise_rules_literal_values() -> None:
    model = Net()
    cfg = dict(
        type="SGD",
        lr=LR,
        momentum=0.9,
        weight_decay=WD,
        paramwise_cfg=dict(
            bias_lr_mult=2.0,
            bias_decay_mult=0.5,
            norm_decay_mult=0.0,
            dwconv_decay_mult=0.1,
            dcn_offset_lr_mult=0.1,
        ),
    )
    opt = build_optimizer(model, cfg)
    expected = {
        "conv1.weight": (0.01, 1e-4),
        "conv1.bias": (0.02, 5e-5),
        "bn.weight": (0.01, 0.0),
        "bn.bias": (0.01, 0.0),  # norm biases keep the base lr
        "dwconv.weight": (0.01, 1e-5),
        "dwconv.bias": (0.02, 1e-5),  # dwconv decay wins over bias decay
        "gn.weight": (0.01, 0.0),
        "gn.bias": (0.01, 0.0),
        "fc.weight": (0.01, 1e-4),
        "fc.bias": (0.02, 5e-5),
        "dcn.conv_offset.weight": (0.001, 1e-4),
        "dcn.conv_offset.bias": (0.001, 5e-5),  # dcn offset lr overrides bias_lr_mult
    }
    assert _table(opt, model) == _approx(expected)
    # Groups follow module order: own params first, then children.
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(g["params"][0])] for g in opt.param_groups] == list(expected)


def test_custom_keys_longest_then_alphabetical_and_ignore_other_rules() -> None:
    model = Net()
    cfg = dict(
        type="SGD",
        lr=LR,
        weight_decay=WD,
        paramwise_cfg=dict(
            bias_lr_mult=2.0,
            norm_decay_mult=0.0,
            custom_keys={
                "conv": dict(lr_mult=0.5),
                "conv1": dict(lr_mult=3.0, decay_mult=0.0),
                "fc.": dict(lr_mult=5.0),
                "c.b": dict(lr_mult=7.0, decay_mult=2.0),
            },
        ),
    )
    table = _table(build_optimizer(model, cfg), model)
    assert table["conv1.weight"] == pytest.approx((0.03, 0.0))  # 'conv1' longer than 'conv'
    assert table["conv1.bias"] == pytest.approx((0.03, 0.0))  # bias rule ignored
    assert table["dwconv.bias"] == pytest.approx((0.005, 1e-4))  # no dwconv/bias rules
    assert table["dcn.conv_offset.weight"] == pytest.approx((0.005, 1e-4))
    assert table["fc.weight"] == pytest.approx((0.05, 1e-4))
    assert table["fc.bias"] == pytest.approx((0.07, 2e-4))  # 'c.b' < 'fc.' alphabetically
    assert table["bn.bias"] == pytest.approx((0.01, 0.0))  # no key: ordinary rules


def test_frozen_params_keep_defaults_even_when_a_key_matches() -> None:
    model = Net()
    model.conv1.requires_grad_(False)
    cfg = dict(
        type="SGD",
        lr=LR,
        weight_decay=WD,
        paramwise_cfg=dict(bias_lr_mult=2.0, custom_keys={"conv1": dict(lr_mult=3.0)}),
    )
    opt = build_optimizer(model, cfg)
    assert len(opt.param_groups) == 12
    table = _table(opt, model)
    assert table["conv1.weight"] == (LR, WD)
    assert table["conv1.bias"] == (LR, WD)
    assert table["fc.bias"] == pytest.approx((0.02, WD))


def test_bypass_duplicate() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Sequential()
    model.add_module("a", shared)
    inner = nn.Module()
    inner.b = shared
    model.add_module("inner", inner)
    cfg: dict[str, object] = dict(type="SGD", lr=LR, paramwise_cfg=dict(bias_lr_mult=2.0))
    with pytest.raises(ValueError, match="more than one parameter group"):
        build_optimizer(model, cfg)
    cfg["paramwise_cfg"] = dict(bias_lr_mult=2.0, bypass_duplicate=True)
    with pytest.warns(UserWarning, match=r"inner\.b\.(weight|bias) is shared"):
        opt = build_optimizer(model, cfg)
    assert len(opt.param_groups) == 2


def test_other_optimizers_and_wrappers() -> None:
    model = Net()
    opt = build_optimizer(
        nn.DataParallel(model),
        dict(type="AdamW", lr=1e-3, betas=(0.9, 0.99), paramwise_cfg=dict(bias_lr_mult=2.0)),
    )
    assert isinstance(opt, torch.optim.AdamW)
    assert _table(opt, model)["fc.bias"][0] == pytest.approx(2e-3)
    opt = build_optimizer(model, dict(type="SGD", lr=LR, constructor="DefaultOptimizerConstructor"))
    assert isinstance(opt, torch.optim.SGD)


def test_errors() -> None:
    model = Net()
    with pytest.raises(UnknownTypeError, match="'SGD'"):
        build_optimizer(model, dict(type="SDG", lr=LR))
    with pytest.raises(ConfigError, match="LearningRateDecay"):
        build_optimizer(
            model, dict(type="SGD", lr=LR, constructor="LearningRateDecayOptimizerConstructor")
        )
    with pytest.raises(ConfigError, match="norm_decay_mult"):
        build_optimizer(model, dict(type="SGD", lr=LR, paramwise_cfg=dict(norm_decay_mult=0)))
    with pytest.raises(ConfigError, match="bias_lr_mul"):
        build_optimizer(model, dict(type="SGD", lr=LR, paramwise_cfg=dict(bias_lr_mul=2)))
    with pytest.raises(ConfigError, match="momentun"):
        build_optimizer(model, dict(type="SGD", lr=LR, momentun=0.9))


def test_auto_scale_lr() -> None:
    assert auto_scale_lr(0.02, base_batch_size=16, num_gpus=8, samples_per_gpu=2) == 0.02
    assert auto_scale_lr(0.02, base_batch_size=16, num_gpus=4, samples_per_gpu=2) == 0.01
    assert auto_scale_lr(0.02, base_batch_size=16, num_gpus=1, samples_per_gpu=2) == 0.0025
    assert auto_scale_lr(0.01, base_batch_size=64, num_gpus=8, samples_per_gpu=16) == 0.02
    with pytest.raises(ValueError, match="base_batch_size"):
        auto_scale_lr(0.02, base_batch_size=0, num_gpus=1, samples_per_gpu=2)


def _params_with_grads() -> list[nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.zeros(3, 4)), nn.Parameter(torch.zeros(5))]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 10
    no_grad = nn.Parameter(torch.zeros(2))  # has no gradient: ignored
    return [*params, no_grad]


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_clip_grads_total_norm_matches_manual(norm_type: float) -> None:
    params = _params_with_grads()
    grads = [p.grad.clone() for p in params if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads]).double()
    manual = float(flat.abs().pow(norm_type).sum().pow(1 / norm_type))
    total = clip_grads(params, dict(max_norm=35, norm_type=norm_type))
    assert total is not None
    assert float(total) == pytest.approx(manual, rel=1e-5)
    assert manual > 35
    scale = 35 / (manual + 1e-6)
    for p, g in zip(params, grads, strict=False):
        assert p.grad is not None
        torch.testing.assert_close(p.grad, g * scale, rtol=1e-5, atol=1e-6)


def test_clip_grads_no_clipping_below_max_and_none_without_grads() -> None:
    params = _params_with_grads()
    before = [p.grad.clone() for p in params if p.grad is not None]
    total = clip_grads(params, dict(max_norm=1e6, norm_type=2))
    assert total is not None and math.isfinite(float(total))
    for p, g in zip(params, before, strict=False):
        assert p.grad is not None and torch.equal(p.grad, g)
    assert clip_grads([nn.Parameter(torch.zeros(2))], dict(max_norm=35)) is None
    with pytest.raises(ConfigError, match="max_norm"):
        clip_grads(params, dict(norm_type=2))
    with pytest.raises(ConfigError, match="max_nrom"):
        clip_grads(params, dict(max_nrom=2))
