"""Transformer bricks: token/map conversion, patch embedding and merging, FFN, DropPath."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import ConfigKeyError
from detforge.models.layers.transformer import (
    FFN,
    AdaptivePadding,
    MultiheadAttention,
    PatchEmbed,
    PatchMerging,
    build_dropout,
    nchw_to_nlc,
    nlc_to_nchw,
)


def test_nlc_nchw_round_trip_and_shape_check() -> None:
    x = torch.rand(2, 3, 4, 5)
    tokens = nchw_to_nlc(x)
    assert tokens.shape == (2, 20, 3)
    assert torch.equal(tokens[0, 6], x[0, :, 1, 1])  # row-major tokens
    assert torch.equal(nlc_to_nchw(tokens, (4, 5)), x)
    with pytest.raises(ValueError, match="4\\*4"):
        nlc_to_nchw(tokens, (4, 4))


@pytest.mark.parametrize(("mode", "expected"), [("corner", (0, 2, 0, 1)), ("same", (1, 1, 0, 1))])
def test_adaptive_padding_modes(mode: str, expected: tuple[int, int, int, int]) -> None:
    pad = AdaptivePadding(kernel_size=4, stride=4, padding=mode)
    x = torch.ones(1, 1, 7, 6)  # needs 1 row, 2 columns
    out = pad(x)
    assert out.shape == (1, 1, 8, 8)
    left, right, top, bottom = expected
    assert out[0, 0, top : 8 - bottom, left : 8 - right].eq(1).all()
    assert out.sum() == x.sum()


def test_patch_embed_pads_to_cover_the_image() -> None:
    embed = PatchEmbed(
        in_channels=3, embed_dims=6, kernel_size=4, stride=4, norm_cfg=dict(type="LN")
    )
    tokens, hw = embed(torch.rand(2, 3, 17, 9))
    assert hw == (5, 3)
    assert tokens.shape == (2, 15, 6)
    assert sorted(embed.state_dict()) == [
        "norm.bias",
        "norm.weight",
        "projection.bias",
        "projection.weight",
    ]


def test_patch_merging_is_unfold_order_of_2x2_patches() -> None:
    torch.manual_seed(0)
    merge = PatchMerging(in_channels=3, out_channels=5, norm_cfg=None)
    x = torch.rand(1, 4 * 6, 3)
    out, hw = merge(x, (4, 6))
    assert hw == (2, 3)
    grid = x.view(1, 4, 6, 3)
    # token (0, 1) gathers rows 0-1, cols 2-3; unfold's channel order is c * 4 + (i * 2 + j)
    patch = grid[0, 0:2, 2:4, :]  # [i, j, c]
    vector = patch.permute(2, 0, 1).reshape(-1)
    expected = merge.reduction(vector)
    assert torch.allclose(out[0, 1], expected, atol=1e-6)


def test_patch_merging_pads_odd_maps() -> None:
    merge = PatchMerging(in_channels=2, out_channels=4)
    out, hw = merge(torch.rand(2, 5 * 3, 2), (5, 3))
    assert hw == (3, 2)
    assert out.shape == (2, 6, 4)
    with pytest.raises(ValueError, match="15 tokens for a 4x4"):
        merge(torch.rand(1, 15, 2), (4, 4))


def test_ffn_keys_and_identity() -> None:
    ffn = FFN(embed_dims=4, feedforward_channels=8, act_cfg=dict(type="GELU"))
    assert list(ffn.state_dict()) == [
        "layers.0.0.weight",
        "layers.0.0.bias",
        "layers.1.weight",
        "layers.1.bias",
    ]
    x, identity = torch.rand(2, 3, 4), torch.rand(2, 3, 4)
    branch = ffn.layers(x)
    assert torch.allclose(ffn(x), x + branch)
    assert torch.allclose(ffn(x, identity=identity), identity + branch)
    with pytest.raises(ValueError, match="num_fcs"):
        FFN(num_fcs=1)


def test_drop_path_drops_whole_samples_and_rescales() -> None:
    torch.manual_seed(0)
    drop = build_dropout(dict(type="DropPath", drop_prob=0.5)).train()
    out = drop(torch.ones(400, 3, 2))
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # all or nothing per sample
    assert 120 < int((per_sample[:, 0] == 0).sum()) < 280
    assert torch.equal(drop.eval()(torch.ones(3, 2)), torch.ones(3, 2))
    with pytest.raises(ConfigKeyError, match="DropPath"):
        build_dropout(dict(type="Drop", drop_prob=0.1))


def test_multihead_attention_batch_first_equals_sequence_first() -> None:
    torch.manual_seed(0)
    first = MultiheadAttention(8, 2, batch_first=True).eval()
    second = MultiheadAttention(8, 2, batch_first=False).eval()
    second.load_state_dict(first.state_dict())
    q, kv = torch.rand(2, 5, 8), torch.rand(2, 3, 8)
    out = first(q, kv, kv)
    assert torch.allclose(out, second(q.transpose(0, 1), kv.transpose(0, 1)).transpose(0, 1))
    assert sorted(first.state_dict()) == [
        "attn.in_proj_bias",
        "attn.in_proj_weight",
        "attn.out_proj.bias",
        "attn.out_proj.weight",
    ]
