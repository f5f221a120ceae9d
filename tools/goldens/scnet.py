"""Golden of SCNet (``scnet_r50_fpn_1x_coco.py`` at tiny widths) from MMDetection 3.3.

Tiny model: the standard config with ``_zoo3_roi.tiny_two_stage`` (R-18 with 8 base
channels, FPN/RPN/RoI features 16 channels, box fcs 32, take-all samplers), the
SCNetSemanticHead / GlobalContextHead at 16 channels and the FeatureRelayHead from the box
heads' 32 fc channels to 16; ``test_cfg.rcnn.max_per_img=20``.

After the 60 training iterations the RPN's objectness scores were one value (0.3532) for most
anchors (a dead ``rpn_conv``: the score is the bias), so the order of the proposals was a matter
of ties; ``rpn_conv`` and ``rpn_cls`` are redrawn from N(0, 1/fan_in) (seed 0) after training
(``train_weights``) to give distinct scores.

Run: /work/peers/venv/bin/python tools/goldens/scnet.py   (from the repo root)
"""

from __future__ import annotations

import _zoo3_roi as z

HEADER = """# Tiny SCNet golden (tests/data/goldens/scnet), MMDetection v2 syntax: configs/scnet/
# scnet_r50_fpn_1x_coco.py with R-18 (8 base channels), 16-channel FPN/RPN/RoI features, box
# fcs 32, take-all samplers, test_cfg.rcnn.max_per_img=20. Made by tools/goldens/scnet.py.
"""


def model() -> dict:
    m = z.tiny_two_stage(z.v2_model("scnet/scnet_r50_fpn_1x_coco.py"))
    rh = m["roi_head"]
    rh["semantic_head"].update(in_channels=z.WIDTH, conv_out_channels=z.WIDTH)
    rh["glbctx_head"].update(in_channels=z.WIDTH, conv_out_channels=z.WIDTH)
    rh["feat_relay_head"].update(in_channels=32, out_conv_channels=z.WIDTH)
    m["test_cfg"]["rcnn"]["max_per_img"] = 20
    return m


def train_weights(name: str, model: dict, with_seg: bool):
    """``_zoo3_roi.train_weights`` with ``rpn_conv`` and ``rpn_cls`` redrawn (module
    docstring)."""
    import torch

    state = _train_weights(name, model, with_seg)
    gen = torch.Generator().manual_seed(0)
    for key in ("rpn_head.rpn_conv.weight", "rpn_head.rpn_cls.weight"):
        weight = state[key]
        state[key] = torch.randn(weight.shape, generator=gen) / weight[0].numel() ** 0.5
    return state


_train_weights = z.train_weights

if __name__ == "__main__":
    z.train_weights = train_weights
    z.write("scnet", HEADER, model(), "scnet/scnet_r50_fpn_1x_coco.py", with_seg=True)
