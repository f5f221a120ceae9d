"""Golden fixture of EfficientNet from MMDetection 3.3 (see _common.py; peer venv, repo root).

EfficientNet's widths cannot be narrowed through its arguments, so the small instances use
narrow block tables (the class attribute ``layer_settings``, same format) with the real scaling
rules: 'b3' multipliers (1.2, 1.4) on a 'b'-style table with squeeze-excitation, kernels 3 and 5,
runs that split and merge, and the head conv (out index 6); 'em' multipliers (1.0, 1.1) on an
'e'-style table with EdgeResidual blocks (a repeated 3x-expansion block becomes a 4x block
without a shortcut). TensorFlow 'SAME' padding on a 1x3x67x61 input (odd sizes: asymmetric
padding). Full-size layout: EfficientNet-B3 of
configs/efficientnet/retinanet_effb3_fpn_crop896_8x4_1x_coco.py, plus every arch's scaled block
table (model_scaling).
"""

from __future__ import annotations

from _common import instances, layout, write
from mmdet.models.backbones import EfficientNet
from mmdet.models.backbones.efficientnet import model_scaling
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

register_all_modules()

# [kernel, out_channels, se_ratio, stride, expand_ratio, block_type]
TINY_TABLES = {
    "b": [
        [[3, 8, 0, 2, 0, -1]],
        [[3, 8, 4, 1, 1, 0]],
        [[3, 8, 4, 2, 6, 0], [3, 8, 4, 1, 6, 0]],
        [[5, 16, 4, 2, 4, 0], [5, 16, 4, 1, 4, 0]],
        [[3, 16, 4, 2, 4, 0], [3, 16, 4, 1, 4, 0], [5, 24, 4, 1, 4, 0]],
        [[5, 24, 4, 2, 4, 0], [3, 32, 4, 1, 4, 0]],
        [[1, 64, 0, 1, 0, -1]],
    ],
    "e": [
        [[3, 8, 0, 2, 0, -1]],
        [[3, 8, 0, 1, 3, 1]],
        [[3, 8, 0, 2, 4, 1], [3, 8, 0, 1, 4, 1]],
        [[3, 16, 0, 2, 4, 1]],
        [[5, 16, 0, 2, 4, 0], [5, 24, 0, 1, 4, 0]],
        [[5, 24, 0, 2, 4, 0]],
        [[1, 32, 0, 1, 0, -1]],
    ],
}


class TinyEfficientNet(EfficientNet):
    layer_settings = TINY_TABLES


SMALL = {
    "b3_tiny": dict(arch="b3", out_indices=(2, 3, 4, 5, 6), drop_path_rate=0.2),
    "em_tiny": dict(arch="em", out_indices=(1, 2, 3, 4, 5)),
}
FULL = dict(
    type="EfficientNet",
    arch="b3",
    drop_path_rate=0.2,
    out_indices=(3, 4, 5),
    frozen_stages=0,
    norm_cfg=dict(type="SyncBN", requires_grad=True, eps=1e-3, momentum=0.01),
    norm_eval=False,
)


def main() -> None:
    weights, inputs, expected = instances(
        lambda cfg: TinyEfficientNet(**cfg, init_cfg=None), SMALL, size=(67, 61)
    )
    for record in expected.values():
        record["tables"] = TINY_TABLES
    tables = {
        arch: model_scaling(EfficientNet.layer_settings[arch[:1]], setting)
        for arch, setting in EfficientNet.arch_settings.items()
    }
    full = MODELS.build(dict(FULL))
    write("efficientnet", weights, inputs, expected, layout(full, FULL, scaled_tables=tables))


if __name__ == "__main__":
    main()
