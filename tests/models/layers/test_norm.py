"""Norm builder: mmcv names and abbreviations, requires_grad, eps, GN, SyncBN fallback."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from detforge.errors import ConfigKeyError, ConfigTypeError, UnknownTypeError
from detforge.models.layers import norm as norm_module
from detforge.models.layers.norm import (
    MMSyncBatchNorm,
    SyncBatchNorm,
    build_norm_layer,
    infer_abbr,
)


@pytest.mark.parametrize(
    ("cfg", "cls", "abbr"),
    [
        (dict(type="BN"), nn.BatchNorm2d, "bn"),
        (dict(type="BN1d"), nn.BatchNorm1d, "bn"),
        (dict(type="BN2d"), nn.BatchNorm2d, "bn"),
        (dict(type="BN3d"), nn.BatchNorm3d, "bn"),
        (dict(type="SyncBN"), SyncBatchNorm, "bn"),
        (dict(type="GN", num_groups=4), nn.GroupNorm, "gn"),
        (dict(type="LN"), nn.LayerNorm, "ln"),
        (dict(type="IN"), nn.InstanceNorm2d, "in"),
        (dict(type="IN1d"), nn.InstanceNorm1d, "in"),
        (dict(type="IN2d"), nn.InstanceNorm2d, "in"),
        (dict(type="IN3d"), nn.InstanceNorm3d, "in"),
    ],
)
def test_types_and_names(cfg: dict, cls: type, abbr: str) -> None:
    name, layer = build_norm_layer(cfg, 8)
    assert type(layer) is cls
    assert name == abbr
    assert build_norm_layer(cfg, 8, postfix=3)[0] == abbr + "3"
    assert layer.eps == 1e-5


def test_num_features_and_arguments() -> None:
    _, bn = build_norm_layer(dict(type="BN", momentum=0.03, eps=1e-3), 16)
    assert bn.num_features == 16 and bn.momentum == 0.03 and bn.eps == 1e-3
    _, gn = build_norm_layer(dict(type="GN", num_groups=4), 16)
    assert gn.num_channels == 16 and gn.num_groups == 4
    _, ln = build_norm_layer(dict(type="LN"), 16)
    assert tuple(ln.normalized_shape) == (16,)


def test_requires_grad_flag() -> None:
    _, frozen = build_norm_layer(dict(type="BN", requires_grad=False), 4)
    assert [p.requires_grad for p in frozen.parameters()] == [False, False]
    _, live = build_norm_layer(dict(type="GN", num_groups=2, requires_grad=True), 4)
    assert all(p.requires_grad for p in live.parameters())


def test_config_is_not_mutated() -> None:
    cfg = dict(type="BN", requires_grad=False)
    build_norm_layer(cfg, 4)
    assert cfg == dict(type="BN", requires_grad=False)


def test_errors() -> None:
    with pytest.raises(ConfigKeyError, match="num_groups"):
        build_norm_layer(dict(type="GN"), 8)
    with pytest.raises(UnknownTypeError, match=r"norm layers registry.*SyncBN"):
        build_norm_layer(dict(type="BM"), 8)
    with pytest.raises(UnknownTypeError, match="did you mean 'SyncBN'"):
        build_norm_layer(dict(type="SyncBM"), 8)
    with pytest.raises(ConfigTypeError, match="momentom"):
        build_norm_layer(dict(type="BN", momentom=0.1), 8)
    with pytest.raises(ConfigKeyError, match="'type'"):
        build_norm_layer(dict(requires_grad=True), 8)


def test_infer_abbr_prefers_abbr_attribute_then_hierarchy() -> None:
    class MyNorm(nn.Module):
        _abbr_ = "mine"

    class FancyBatchThing(nn.Module):
        pass

    assert infer_abbr(MyNorm) == "mine"
    assert infer_abbr(FancyBatchThing) == "bn"
    assert infer_abbr(nn.Identity) == "norm_layer"
    with pytest.raises(TypeError):
        infer_abbr(nn.BatchNorm2d(2))  # type: ignore[arg-type]


def test_syncbn_falls_back_to_batchnorm_and_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(norm_module, "_warned_sync_fallback", False)
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    sync = build_norm_layer(dict(type="SyncBN"), 3)[1]
    plain = nn.BatchNorm2d(3)
    plain.load_state_dict(sync.state_dict())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = sync(x)
        sync(x)
    torch.testing.assert_close(out, plain(x))
    plain(x)
    torch.testing.assert_close(sync.running_mean, plain.running_mean)
    torch.testing.assert_close(sync.running_var, plain.running_var)
    assert sum("SyncBN" in str(w.message) for w in caught) == 1


def test_syncbn_eval_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(norm_module, "_warned_sync_fallback", False)
    layer = SyncBatchNorm(2).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = layer(torch.ones(1, 2, 2, 2))
    torch.testing.assert_close(out, torch.ones(1, 2, 2, 2) / (1 + 1e-5) ** 0.5)


def test_mmsyncbn_is_batchnorm_on_one_process_and_accepts_empty_batches() -> None:
    name, layer = build_norm_layer(dict(type="MMSyncBN", requires_grad=True), 3)
    assert name == "bn" and isinstance(layer, MMSyncBatchNorm)
    assert layer.stats_mode == "default"
    # mmcv's initial weight is uniform in [0, 1), not 1
    assert layer.weight.min() >= 0 and layer.weight.max() < 1 and layer.weight.std() > 0
    plain = nn.BatchNorm2d(3)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.testing.assert_close(layer(x), plain(x))
        mean, var = layer.running_mean.clone(), layer.running_var.clone()
        empty = layer(torch.zeros(0, 3, 5, 5))
    assert empty.shape == (0, 3, 5, 5)
    assert torch.equal(layer.running_mean, mean) and torch.equal(layer.running_var, var)
    with pytest.raises(ValueError, match="stats_mode"):
        MMSyncBatchNorm(3, stats_mode="mean")
