"""Golden fixture of SSDVGG + SSDNeck with its L2 norm (tests/data/goldens/ssd_vgg); see common.py.

VGG's widths are fixed, so the small instance is VGG-11 (outputs: conv4_2's ReLU at index 14,
fc7's at 24) at full width with the formula weights of weights.py (nothing stored but the input
and the outputs), and an SSDNeck with ``l2_norm_scale=20`` and two narrow extra levels;
input 1x3x64x64. Layouts: SSD300 and SSD512 (VGG-16).
"""

from common import dump_layout, make_golden, write_readme

meta = make_golden(
    "ssd_vgg",
    {
        "backbone": dict(type="SSDVGG", depth=11, out_feature_indices=[14, 24]),
        "neck": dict(
            type="SSDNeck",
            in_channels=[512, 1024],
            out_channels=[512, 1024, 64, 32],
            level_strides=[2, 2],
            level_paddings=[1, 1],
            l2_norm_scale=20.0,
        ),
    },
    (1, 3, 64, 64),
    weights="formula",
)
layouts = [
    dump_layout(
        "ssd_vgg", f"layout_ssd{size}.json", f"ssd/ssd{size}_coco.py", f"ssd/ssd{size}_coco.py"
    )
    for size in (300, 512)
]
write_readme(
    "ssd_vgg",
    "SSDVGG + SSDNeck with the L2 norm (SSD300/512)",
    meta,
    layouts,
    (
        "No difference in keys or numerics: both keep v2.18+'s layout (`neck.l2_norm.weight`, "
        "`neck.extra_layers.{i}.{j}.conv.*`; VGG convs as `backbone.features.{i}`). Checkpoints "
        "older than v2.18 (`backbone.l2_norm`, `backbone.extra.*`) need v2's "
        "`tools/model_converters/upgrade_ssd_version.py` in either version."
    ),
)
