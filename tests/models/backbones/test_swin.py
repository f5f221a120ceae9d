"""SwinTransformer: v2's relative position index, shifted-window masks, checkpoint conversion,
pretrained loading and freezing (golden outputs: test_swin_golden.py)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from detforge.models.backbones.swin import (
    ShiftWindowMSA,
    SwinTransformer,
    _unfold_order,
    relative_position_index,
    swin_converter,
)
from detforge.models.layers.transformer import PatchMerging
from detforge.registry import MODELS


def _small(**kwargs: object) -> SwinTransformer:
    args: dict[str, object] = dict(
        embed_dims=8,
        depths=(2, 2),
        num_heads=(1, 2),
        strides=(4, 2),
        window_size=3,
        out_indices=(0, 1),
        drop_path_rate=0.0,
    )
    args.update(kwargs)
    return SwinTransformer(**args)  # type: ignore[arg-type]


def test_relative_position_index_is_v2s() -> None:
    # v2 builds it as double_step_seq(2*Ww-1, Wh, 1, Ww) + its transpose, flipped on dim 1
    wh, ww = 3, 4
    seq = (
        torch.arange(0, (2 * ww - 1) * wh, 2 * ww - 1)[:, None] + torch.arange(ww)[None]
    ).reshape(1, -1)
    expected = (seq + seq.T).flip(1)
    assert torch.equal(relative_position_index((wh, ww)), expected)


def test_shift_mask_separates_regions() -> None:
    msa = ShiftWindowMSA(embed_dims=4, num_heads=1, window_size=4, shift_size=2)
    mask = msa._shift_mask(8, 8, torch.device("cpu"))
    assert mask.shape == (4, 16, 16)
    assert mask[0].eq(0).all()  # the top-left window holds one region only
    # last window: 4 regions of 2x2 tokens; token 0 (region a) vs token 3 (region b)
    assert mask[3, 0, 1] == 0 and mask[3, 0, 2] == -100 and mask[3, 0, 8] == -100
    assert set(mask.unique().tolist()) == {-100.0, 0.0}


def test_forward_shapes_pad_odd_maps_and_keys() -> None:
    net = _small().eval()
    outs = net(torch.rand(2, 3, 52, 37))  # 13x10 tokens: padded to windows of 3
    assert [tuple(o.shape) for o in outs] == [(2, 8, 13, 10), (2, 16, 7, 5)]
    keys = list(net.state_dict())
    for key in (
        "patch_embed.projection.weight",
        "stages.0.blocks.1.attn.w_msa.relative_position_bias_table",
        "stages.0.blocks.1.attn.w_msa.relative_position_index",
        "stages.0.blocks.0.ffn.layers.0.0.weight",
        "stages.0.blocks.0.ffn.layers.1.weight",
        "stages.0.downsample.reduction.weight",
        "norm0.weight",
        "norm1.bias",
    ):
        assert key in keys
    assert "stages.1.downsample.norm.weight" not in keys  # no merging after the last stage


def test_unfold_order_matches_the_original_patch_merging() -> None:
    torch.manual_seed(0)
    channels, out_channels = 3, 5
    norm = torch.nn.LayerNorm(4 * channels)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    reduction = torch.nn.Linear(4 * channels, out_channels, bias=False)
    x = torch.rand(1, 4, 6, channels)
    # the original Swin concatenates x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    cat = torch.cat(
        [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1
    )
    expected = reduction(norm(cat.view(1, -1, 4 * channels)))
    merge = PatchMerging(in_channels=channels, out_channels=out_channels)
    merge.load_state_dict(
        {
            "norm.weight": _unfold_order(norm.weight.data),
            "norm.bias": _unfold_order(norm.bias.data),
            "reduction.weight": _unfold_order(reduction.weight.data),
        }
    )
    out, _ = merge(x.view(1, 24, channels), (4, 6))
    assert torch.allclose(out, expected, atol=1e-5)


def _to_original(state: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Our keys -> the original Swin repository's (the inverse of swin_converter)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        if key.startswith("norm") or key.endswith("relative_position_index"):
            continue
        new = key.replace("stages", "layers", 1).replace("attn.w_msa.", "attn.")
        new = new.replace("ffn.layers.0.0.", "mlp.fc1.").replace("ffn.layers.1.", "mlp.fc2.")
        new = new.replace("patch_embed.projection", "patch_embed.proj")
        if "downsample" in key:  # undo the unfold reordering ([0, 2, 1, 3] is its own inverse)
            if value.dim() == 1:
                value = value.reshape(-1, 4).T[[0, 2, 1, 3]].reshape(-1)
            else:
                o, i = value.shape
                value = value.reshape(o, i // 4, 4).transpose(1, 2)[:, [0, 2, 1, 3]].reshape(o, i)
        out[new] = value
    out["head.weight"] = torch.zeros(10, 16)
    return out


def test_convert_weights_loads_an_original_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = _small()
    for param in source.parameters():
        torch.nn.init.normal_(param)
    original = _to_original(source.state_dict())
    converted = swin_converter(original)
    assert "backbone.head.weight" not in converted
    path = tmp_path / "swin_original.pth"
    torch.save({"model": original}, path)
    net = _small(convert_weights=True, init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    net.init_weights()
    for key, value in source.state_dict().items():
        if not key.startswith("norm"):  # the output norms are not in a classifier checkpoint
            assert torch.equal(net.state_dict()[key], value), key


def test_detector_checkpoint_and_window_resize(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = _small(window_size=2)
    state = {
        f"backbone.{k}": v.normal_() for k, v in source.state_dict().items() if "index" not in k
    }
    path = tmp_path / "det.pth"
    torch.save({"state_dict": state}, path)
    net = _small(init_cfg=dict(type="Pretrained", checkpoint=str(path)))  # window 3: 25 rows
    net.init_weights()
    table = net.stages[0].blocks[0].attn.w_msa.relative_position_bias_table
    assert table.shape == (25, 1)
    assert not torch.equal(table, torch.zeros_like(table))
    assert torch.equal(net.norm1.weight, state["backbone.norm1.weight"])
    empty = tmp_path / "empty.pth"
    torch.save({"state_dict": {"neck.x": torch.zeros(1)}}, empty)
    with pytest.raises(FileNotFoundError, match=r"no 'backbone\.' weights"):
        _small(init_cfg=dict(type="Pretrained", checkpoint=str(empty))).init_weights()


def test_random_init_and_frozen_stages() -> None:
    net = _small(frozen_stages=1, use_abs_pos_embed=True, pretrain_img_size=32)
    net.init_weights()
    assert torch.equal(net.norm0.weight, torch.ones(8))
    assert net.stages[0].blocks[0].ffn.layers[1].bias.abs().sum() == 0
    net.train()
    assert not net.patch_embed.training and not net.stages[0].training and net.stages[1].training
    assert not net.absolute_pos_embed.requires_grad
    assert not net.norm0.weight.requires_grad and net.norm1.weight.requires_grad
    out = net.eval()(torch.rand(1, 3, 48, 40))  # the position embedding is resized
    assert out[0].shape == (1, 8, 12, 10)


def test_registered_and_checked() -> None:
    net = MODELS.build(
        dict(
            type="SwinTransformer",
            embed_dims=8,
            depths=(1,),
            num_heads=(1,),
            strides=(4,),
            out_indices=(0,),
        )
    )
    assert isinstance(net, SwinTransformer)
    with pytest.raises(KeyError, match="patch_size"):
        _small(strides=(2, 2))
    with pytest.raises(KeyError, match="init_cfg and pretrained"):
        _small(pretrained="a.pth", init_cfg=dict(type="Pretrained", checkpoint="a.pth"))


def test_absolute_position_embedding_is_v2s() -> None:
    # v2 keeps it as [1, C, h, w] and resizes it bicubically to the token map (MMDetection 3.3
    # changed both, so the golden fixture has none)
    torch.manual_seed(0)
    net = _small(use_abs_pos_embed=True, pretrain_img_size=48).eval()
    assert net.absolute_pos_embed.shape == (1, 8, 12, 12)
    torch.nn.init.normal_(net.absolute_pos_embed)
    seen: list[torch.Tensor] = []
    net.drop_after_pos.register_forward_hook(lambda m, args, out: seen.append(out))
    x = torch.rand(1, 3, 52, 68)
    net(x)
    tokens, hw = net.patch_embed(x)
    resized = torch.nn.functional.interpolate(
        net.absolute_pos_embed, size=hw, mode="bicubic", align_corners=False
    )
    assert hw == (13, 17)
    assert torch.allclose(seen[0], tokens + resized.flatten(2).transpose(1, 2), atol=1e-6)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain, checkpointed = _small(), _small(with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)
    for net in (plain, checkpointed):
        sum(o.sum() for o in net.train()(x)).backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name
