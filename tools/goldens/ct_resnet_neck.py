"""Golden fixture of CTResNetNeck without DCN (tests/data/goldens/ct_resnet_neck); see common.py.

(The DCNv2 neck is covered by the shared centernet fixture.) Small instance: 32 channels in,
two (3x3 conv, 4x4 deconv) stages to 16 and 8 channels, random weights, one 1x32x5x6 map.
MMDetection 3.3 calls v2's ``in_channel`` ``in_channels``. Layout: CenterNet R18 (no DCN).
"""

from common import dump_layout, make_golden, write_readme

V2 = dict(
    type="CTResNetNeck",
    in_channel=32,
    num_deconv_filters=[16, 8],
    num_deconv_kernels=[4, 4],
    use_dcn=False,
)
V3 = {("in_channels" if k == "in_channel" else k): v for k, v in V2.items()}

meta = make_golden("ct_resnet_neck", {"neck": V2}, (1, 32, 5, 6), peer_parts={"neck": V3})
layout = dump_layout(
    "ct_resnet_neck",
    "layout_centernet_r18.json",
    "centernet/centernet_r18_8xb16-crop512-140e_coco.py",
    "centernet/centernet_resnet18_140e_coco.py",
)
write_readme(
    "ct_resnet_neck",
    "CTResNetNeck without DCN (CenterNet)",
    meta,
    [layout],
    (
        "MMDetection 3.3 renamed v2's `in_channel` to `in_channels`; the generator builds the "
        "peer with 3.3's name and the fixture stores v2's (which detforge takes, as v2 configs "
        "spell it). Keys and numerics are the same."
    ),
)
