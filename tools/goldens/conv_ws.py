"""Golden fixture of the weight-standardised convolutions ``ConvWS`` (gn+ws) and ``ConvAWS``
(DetectoRS).

Layers: mmcv 2.1.0's ``ConvWS2d`` and ``ConvAWS2d`` (``mmcv.cnn.bricks.conv_ws``, as in mmcv
1.x) with random weights, plus ``ConvAWS2d`` loaded from a plain ``nn.Conv2d`` state_dict
(no ``weight_gamma``/``weight_beta``: mmcv fills them from the loaded filters).
Backbone: MMDetection 3.3's ``ResNet`` (depth 50, 8 base channels) with ``conv_cfg=ConvWS`` and
``GN``, random weights (float16 values, stored as float16), input 1x3x64x64. Layouts: two
full-size gn+ws v2.28.2 configs.

Run: /work/peers/venv/bin/python tools/goldens/conv_ws.py [layers|models]  (default: both)
"""

from __future__ import annotations

import sys

import torch
from v2_peer import backbone_golden, out_dir, randomize, versions, write_json, write_layouts

NAME = "conv_ws"
LAYERS = {
    "ws": ("ConvWS2d", dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2)),
    "ws_eps": ("ConvWS2d", dict(in_channels=4, out_channels=4, kernel_size=1, eps=0.1, bias=False)),
    "aws": (
        "ConvAWS2d",
        dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, dilation=2, padding=2),
    ),
}
BACKBONE = dict(
    type="ResNet",
    depth=50,
    base_channels=8,
    conv_cfg=dict(type="ConvWS"),
    norm_cfg=dict(type="GN", num_groups=4, requires_grad=True),
)
LAYOUT_CONFIGS = [
    "gn+ws/faster_rcnn_r50_fpn_gn_ws-all_1x_coco.py",
    "gn+ws/mask_rcnn_x101_32x4d_fpn_gn_ws-all_2x_coco.py",
]


def layers() -> None:
    from mmcv.cnn.bricks import conv_ws

    out = out_dir(NAME)
    torch.manual_seed(0)
    weights, expected = {}, {}
    x = torch.randn(2, 4, 9, 10)
    for seed, (key, (cls, kwargs)) in enumerate(LAYERS.items()):
        layer = getattr(conv_ws, cls)(**kwargs)
        randomize(layer, seed=10 + seed)
        weights[key] = layer.state_dict()
        with torch.no_grad():
            expected[key] = layer(x)
    # a plain checkpoint loaded into ConvAWS: gamma/beta computed from the loaded filters
    plain = torch.nn.Conv2d(4, 6, 3, padding=1)
    randomize(plain, seed=20)
    aws = conv_ws.ConvAWS2d(4, 6, 3, padding=1)
    result = aws.load_state_dict(plain.state_dict(), strict=False)
    weights["aws_from_plain"] = plain.state_dict()
    with torch.no_grad():
        expected["aws_from_plain"] = aws(x)
    expected["aws_from_plain_buffers"] = {
        "weight_gamma": aws.weight_gamma.clone(),
        "weight_beta": aws.weight_beta.clone(),
    }
    expected["aws_from_plain_missing"] = len(result.missing_keys)
    write_json(out / "layers.json", {k: {"type": c, **kw} for k, (c, kw) in LAYERS.items()})
    torch.save(weights, out / "layers_weights.pt")
    torch.save({"x": x}, out / "layers_input.pt")
    torch.save(expected, out / "layers_expected.pt")
    write_json(out / "versions.json", versions())


def models() -> None:
    out = out_dir(NAME)
    backbone_golden(out, BACKBONE, seed=8)
    write_layouts(out, [(rel, ()) for rel in LAYOUT_CONFIGS])
    write_json(out / "versions.json", versions())


if __name__ == "__main__":
    parts = sys.argv[1:] or ["layers", "models"]
    if "layers" in parts:
        layers()
    if "models" in parts:
        models()
