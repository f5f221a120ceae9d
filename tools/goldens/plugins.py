"""Golden fixture of the ResNet plugins: ``ContextBlock`` (gcnet), ``GeneralizedAttention``
(empirical_attention) and ``NonLocal2d``.

Layers: mmcv 2.1.0's classes (``mmcv.cnn.bricks``, the same modules as mmcv 1.x's), several
configurations each, random weights (every "zero-initialised" tensor made non-zero), one
small input each. Backbone: MMDetection 3.3's ``ResNet`` (depth 50, 8 base channels) with all
three plugins at v2's positions, random weights (float16 values, stored as float16), input
1x3x64x64, eval mode. Layouts: the full-size models of two gcnet and two empirical_attention
v2.28.2 configs.

Run: /work/peers/venv/bin/python tools/goldens/plugins.py [layers|models]  (default: both)
"""

from __future__ import annotations

import sys

import torch
from v2_peer import backbone_golden, out_dir, randomize, versions, write_json, write_layouts

NAME = "plugins"

#: (key, class name, constructor kwargs, input channels, input hw)
LAYERS = [
    ("context_att_add", "ContextBlock", dict(ratio=0.25), 16, (9, 11)),
    (
        "context_avg_mul_add",
        "ContextBlock",
        dict(ratio=0.5, pooling_type="avg", fusion_types=("channel_add", "channel_mul")),
        16,
        (9, 11),
    ),
    (
        "attention_1111",
        "GeneralizedAttention",
        dict(num_heads=4, attention_type="1111"),
        32,
        (9, 11),
    ),
    (
        "attention_0010",
        "GeneralizedAttention",
        dict(num_heads=4, attention_type="0010"),
        32,
        (9, 11),
    ),
    (
        "attention_1000_q2",
        "GeneralizedAttention",
        dict(num_heads=2, attention_type="1000", q_stride=2),
        16,
        (9, 11),
    ),
    (
        "attention_0100_kv1",
        "GeneralizedAttention",
        dict(num_heads=2, attention_type="0100", kv_stride=1, position_magnitude=2),
        16,
        (7, 7),
    ),
    (
        "attention_0001",
        "GeneralizedAttention",
        dict(num_heads=2, attention_type="0001"),
        16,
        (6, 7),
    ),
    (
        "attention_0110",
        "GeneralizedAttention",
        dict(num_heads=2, attention_type="0110", position_embedding_dim=8),
        16,
        (6, 6),
    ),
    (
        "attention_1010",
        "GeneralizedAttention",
        dict(num_heads=2, attention_type="1010"),
        16,
        (6, 7),
    ),
    ("nonlocal_embedded", "NonLocal2d", dict(), 16, (6, 7)),
    ("nonlocal_gaussian_sub", "NonLocal2d", dict(mode="gaussian", sub_sample=True), 16, (6, 8)),
    (
        "nonlocal_dot_bn",
        "NonLocal2d",
        dict(mode="dot_product", norm_cfg=dict(type="BN")),
        16,
        (6, 7),
    ),
    (
        "nonlocal_concat_sub",
        "NonLocal2d",
        dict(mode="concatenation", sub_sample=True, reduction=4),
        16,
        (6, 8),
    ),
]

BACKBONE = dict(
    type="ResNet",
    depth=50,
    base_channels=8,
    norm_eval=True,
    plugins=[
        dict(
            cfg=dict(type="ContextBlock", ratio=1.0 / 4),
            stages=(False, True, True, True),
            position="after_conv3",
        ),
        dict(
            cfg=dict(
                type="GeneralizedAttention",
                spatial_range=-1,
                num_heads=8,
                attention_type="1111",
                kv_stride=2,
            ),
            stages=(False, False, True, True),
            position="after_conv2",
        ),
        dict(
            cfg=dict(type="NonLocal2d", postfix=1),
            stages=(False, False, False, True),
            position="after_conv1",
        ),
        dict(
            cfg=dict(type="NonLocal2d", postfix=2, mode="dot_product"),
            stages=(False, False, False, True),
            position="after_conv1",
        ),
    ],
)

LAYOUT_CONFIGS = [
    "gcnet/mask_rcnn_r50_fpn_r4_gcb_c3-c5_1x_coco.py",
    "gcnet/cascade_mask_rcnn_x101_32x4d_fpn_syncbn-backbone_dconv_c3-c5_r16_gcb_c3-c5_1x_coco.py",
    "empirical_attention/faster_rcnn_r50_fpn_attention_1111_dcn_1x_coco.py",
    "empirical_attention/faster_rcnn_r50_fpn_attention_0010_1x_coco.py",
]


def layers() -> None:
    from mmcv.cnn.bricks import context_block, generalized_attention, non_local

    classes = {
        "ContextBlock": context_block.ContextBlock,
        "GeneralizedAttention": generalized_attention.GeneralizedAttention,
        "NonLocal2d": non_local.NonLocal2d,
    }
    out = out_dir(NAME)
    specs, weights, inputs, expected = {}, {}, {}, {}
    for seed, (key, cls, kwargs, channels, hw) in enumerate(LAYERS):
        torch.manual_seed(seed)
        layer = classes[cls](channels, **kwargs).eval()
        randomize(layer, seed=100 + seed)
        if hasattr(layer, "gamma"):  # the attention's output scale: make its part count
            layer.gamma.data.fill_(3.0)
        x = torch.randn(2, channels, *hw)
        with torch.no_grad():
            y = layer(x)
        specs[key] = {"type": cls, "in_channels": channels, **kwargs}
        weights[key], inputs[key], expected[key] = layer.state_dict(), x, y
    # v2's local constraint mask (spatial_range >= 0, 256 channels): summaries only (it is 12M)
    torch.manual_seed(0)
    local = classes["GeneralizedAttention"](256, spatial_range=3, kv_stride=2)
    mask = local.local_constraint_map.data
    expected["local_mask"] = {
        "shape": torch.tensor(mask.shape),
        "open_per_query": (mask == 0).sum((2, 3)),
        "query_40_50": mask[40, 50].clone(),
    }
    write_json(out / "layers.json", specs)
    torch.save(weights, out / "layers_weights.pt")
    torch.save(inputs, out / "layers_input.pt")
    torch.save(expected, out / "layers_expected.pt")
    write_json(out / "versions.json", versions())


def models() -> None:
    out = out_dir(NAME)
    backbone_golden(out, BACKBONE, seed=7)
    write_layouts(out, [(rel, ()) for rel in LAYOUT_CONFIGS])
    write_json(out / "versions.json", versions())


if __name__ == "__main__":
    parts = sys.argv[1:] or ["layers", "models"]
    if "layers" in parts:
        layers()
    if "models" in parts:
        models()
