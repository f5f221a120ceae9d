"""ResNet plugin layers (``ContextBlock``, ``GeneralizedAttention``, ``NonLocal2d``): mmcv's
outputs on random weights (tests/data/goldens/plugins, made by tools/goldens/plugins.py), the
plugin builder, and the constructor checks."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import UnknownTypeError
from detforge.models.layers import (
    PLUGIN_LAYERS,
    ContextBlock,
    GeneralizedAttention,
    NonLocal2d,
    build_plugin_layer,
)
from tests.models.v2_goldens import assert_close, load

SPECS = load("plugins", "layers.json")


@pytest.mark.parametrize("key", sorted(SPECS))
def test_layer_matches_mmcv(key: str) -> None:
    spec = dict(SPECS[key])
    layer_type = spec.pop("type")
    in_channels = spec.pop("in_channels")
    layer = PLUGIN_LAYERS.lookup(layer_type)(in_channels, **spec).eval()
    layer.load_state_dict(load("plugins", "layers_weights.pt")[key], strict=True)
    x = load("plugins", "layers_input.pt")[key]
    with torch.no_grad():
        out = layer(x)
    # compare what the block adds to its input, so that a small residual is still checked
    assert_close(out - x, load("plugins", "layers_expected.pt")[key] - x, key)


def test_local_constraint_mask_matches_mmcv() -> None:
    want = load("plugins", "layers_expected.pt")["local_mask"]
    mask = GeneralizedAttention(256, spatial_range=3, kv_stride=2).local_constraint_map
    assert list(mask.shape) == want["shape"].tolist()
    assert torch.equal((mask == 0).sum((2, 3)), want["open_per_query"])
    assert torch.equal(mask[40, 50], want["query_40_50"])
    assert not mask.requires_grad


def test_plugins_start_as_the_identity() -> None:
    x = torch.randn(2, 16, 5, 6)
    for layer in (
        ContextBlock(16, 0.25, fusion_types=("channel_add", "channel_mul")),
        GeneralizedAttention(16, num_heads=4),
        NonLocal2d(16, mode="concatenation"),
    ):
        with torch.no_grad():
            out = layer.eval()(x)
        # channel_mul scales by sigmoid(0) = 0.5; everything else adds zero
        scale = 0.5 if isinstance(layer, ContextBlock) else 1.0
        assert torch.allclose(out, x * scale), type(layer).__name__


def test_build_plugin_layer_names_and_errors() -> None:
    name, layer = build_plugin_layer(
        dict(type="GeneralizedAttention", num_heads=2), postfix=3, in_channels=8
    )
    assert (name, type(layer)) == ("gen_attention_block3", GeneralizedAttention)
    assert build_plugin_layer(dict(type=NonLocal2d), in_channels=8)[0] == "nonlocal_block"
    with pytest.raises(UnknownTypeError, match="ContextBlok"):
        build_plugin_layer(dict(type="ContextBlok", ratio=1), in_channels=8)
    with pytest.raises(Exception, match="rato"):
        build_plugin_layer(dict(type="ContextBlock", rato=1), in_channels=8)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ContextBlock(8, 0.5, pooling_type="max"), "pooling_type"),
        (lambda: ContextBlock(8, 0.5, fusion_types=()), "fusion_types"),
        (lambda: ContextBlock(8, 0.5, fusion_types=("channel_sub",)), "channel_sub"),
        (lambda: GeneralizedAttention(8, attention_type="0000"), "attention_type"),
        (lambda: GeneralizedAttention(8, attention_type="12"), "attention_type"),
        (lambda: GeneralizedAttention(64, spatial_range=2), "in_channels"),
        (lambda: NonLocal2d(8, mode="cosine"), "mode"),
    ],
)
def test_constructor_errors(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_position_only_attention_needs_square_maps_like_mmcv() -> None:
    layer = GeneralizedAttention(8, num_heads=2, attention_type="0100")
    with pytest.raises(ValueError, match="square"):
        layer(torch.randn(1, 8, 6, 8))
