"""FPN: extra-level variants, levels, norm/act options, init, a hand-written reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from detforge.models.necks import FPN
from detforge.registry import MODELS, build_module

IN_CHANNELS = [4, 8, 16, 32]
SIZES = [32, 16, 8, 4]


def _inputs(seed: int = 0) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [torch.randn(2, c, s, s) for c, s in zip(IN_CHANNELS, SIZES, strict=True)]


def _shapes(outs: tuple[torch.Tensor, ...]) -> list[tuple[int, ...]]:
    return [tuple(o.shape) for o in outs]


def test_matches_a_hand_written_reference() -> None:
    fpn = FPN(IN_CHANNELS, 6, num_outs=5)
    fpn.init_weights()
    x = _inputs()
    lat = [F.conv2d(x[i], c.conv.weight, c.conv.bias) for i, c in enumerate(fpn.lateral_convs)]
    for i in range(3, 0, -1):
        lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode="nearest")
    outs = [
        F.conv2d(t, c.conv.weight, c.conv.bias, padding=1)
        for t, c in zip(lat, fpn.fpn_convs, strict=True)
    ]
    outs.append(outs[-1][:, :, ::2, ::2])  # max_pool2d(kernel 1, stride 2)
    for got, want in zip(fpn(x), outs, strict=True):
        torch.testing.assert_close(got, want)


def test_no_extra_convs_uses_max_pooling() -> None:
    fpn = FPN(IN_CHANNELS, 6, num_outs=6)
    assert len(fpn.fpn_convs) == 4 and len(fpn.lateral_convs) == 4
    outs = fpn(_inputs())
    assert _shapes(outs) == [(2, 6, s, s) for s in (32, 16, 8, 4, 2, 1)]
    torch.testing.assert_close(outs[5], F.max_pool2d(outs[4], 1, stride=2))


@pytest.mark.parametrize("mode", [True, "on_input", "on_lateral", "on_output"])
def test_extra_convs_sources(mode: bool | str) -> None:
    fpn = FPN(IN_CHANNELS, 6, num_outs=6, start_level=1, add_extra_convs=mode)
    assert fpn.add_extra_convs == ("on_input" if mode is True else mode)
    assert len(fpn.lateral_convs) == 3 and len(fpn.fpn_convs) == 6
    first_extra = fpn.fpn_convs[3]
    assert first_extra.in_channels == (32 if fpn.add_extra_convs == "on_input" else 6)
    assert first_extra.stride == (2, 2)
    assert fpn.fpn_convs[4].in_channels == 6
    x = _inputs()
    outs = fpn(x)
    assert _shapes(outs) == [(2, 6, s, s) for s in (16, 8, 4, 2, 1, 1)]
    lateral_top = fpn.lateral_convs[2](x[3])
    source = {"on_input": x[3], "on_lateral": lateral_top, "on_output": outs[2]}[
        fpn.add_extra_convs
    ]
    torch.testing.assert_close(outs[3], first_extra(source))
    torch.testing.assert_close(outs[4], fpn.fpn_convs[4](outs[3]))


def test_relu_before_extra_convs() -> None:
    fpn = FPN(IN_CHANNELS, 6, num_outs=6, add_extra_convs="on_output", relu_before_extra_convs=True)
    outs = fpn(_inputs())
    torch.testing.assert_close(outs[4], fpn.fpn_convs[4](outs[3]))  # first extra: no relu
    torch.testing.assert_close(outs[5], fpn.fpn_convs[5](F.relu(outs[4])))


def test_start_and_end_level() -> None:
    fpn = FPN(IN_CHANNELS, 6, num_outs=2, start_level=1, end_level=2)
    assert fpn.backbone_end_level == 3 and len(fpn.lateral_convs) == 2
    assert _shapes(fpn(_inputs())) == [(2, 6, 16, 16), (2, 6, 8, 8)]
    last = FPN(IN_CHANNELS, 6, num_outs=4, end_level=3)  # end_level = last level means -1
    assert last.backbone_end_level == 4
    assert len(FPN(IN_CHANNELS, 6, num_outs=5, add_extra_convs=True, end_level=3).fpn_convs) == 5


def test_level_errors() -> None:
    with pytest.raises(ValueError, match="num_outs"):
        FPN(IN_CHANNELS, 6, num_outs=3)
    with pytest.raises(ValueError, match="num_outs must be 2"):
        FPN(IN_CHANNELS, 6, num_outs=3, start_level=1, end_level=2)
    with pytest.raises(ValueError, match="add_extra_convs"):
        FPN(IN_CHANNELS, 6, num_outs=5, add_extra_convs="on_top")
    with pytest.raises(TypeError, match="in_channels"):
        FPN(4, 6, num_outs=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3 input levels"):
        FPN(IN_CHANNELS, 6, num_outs=4)(_inputs()[:3])


def test_norm_act_and_conv_cfg_keys() -> None:
    fpn = FPN(
        IN_CHANNELS,
        8,
        num_outs=5,
        add_extra_convs="on_input",
        norm_cfg=dict(type="GN", num_groups=2),
        act_cfg=dict(type="ReLU"),
        no_norm_on_lateral=True,
    )
    keys = list(fpn.state_dict())
    assert "lateral_convs.0.conv.bias" in keys and "lateral_convs.0.gn.weight" not in keys
    assert "fpn_convs.0.gn.weight" in keys and "fpn_convs.4.gn.bias" in keys
    assert "fpn_convs.0.conv.bias" not in keys
    assert all(o.min() >= 0 for o in fpn(_inputs()))
    assert not fpn.fpn_convs[0].activate.inplace  # v2 builds FPN convs with inplace=False


def test_plain_keys_like_mmdetection() -> None:
    keys = list(
        FPN(IN_CHANNELS, 8, num_outs=5, start_level=1, add_extra_convs="on_input").state_dict()
    )
    assert keys == [f"lateral_convs.{i}.conv.{p}" for i in range(3) for p in ("weight", "bias")] + [
        f"fpn_convs.{i}.conv.{p}" for i in range(5) for p in ("weight", "bias")
    ]


def test_upsample_cfg() -> None:
    x = _inputs()
    fpn = FPN(IN_CHANNELS, 6, num_outs=4, upsample_cfg=dict(scale_factor=2, mode="nearest"))
    ref = FPN(IN_CHANNELS, 6, num_outs=4)
    ref.load_state_dict(fpn.state_dict())
    for a, b in zip(fpn(x), ref(x), strict=True):  # power-of-two sizes: same result
        torch.testing.assert_close(a, b)
    bilinear = FPN(
        IN_CHANNELS, 6, num_outs=4, upsample_cfg=dict(mode="bilinear", align_corners=False)
    )
    bilinear.load_state_dict(fpn.state_dict())
    assert not torch.allclose(bilinear(x)[0], ref(x)[0])


def test_default_init_is_xavier_uniform_on_every_conv() -> None:
    torch.manual_seed(0)
    fpn = FPN([64, 128], 64, num_outs=3, add_extra_convs="on_input")
    with torch.no_grad():
        for p in fpn.parameters():
            p.fill_(7.0)
    fpn.init_weights()
    for module in list(fpn.lateral_convs) + list(fpn.fpn_convs):
        w = module.conv.weight
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        fan_out = w.shape[0] * w.shape[2] * w.shape[3]
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert w.abs().max() <= bound
        assert abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.1
        assert torch.all(module.conv.bias == 0)
    custom = FPN([4], 4, num_outs=1, init_cfg=dict(type="Constant", val=1, layer="Conv2d"))
    custom.init_weights()
    assert torch.all(custom.fpn_convs[0].conv.weight == 1)


def test_registered() -> None:
    fpn = build_module(dict(type="FPN", in_channels=[4, 8], out_channels=4, num_outs=3), MODELS)
    assert isinstance(fpn, FPN)
