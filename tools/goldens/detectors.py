"""Golden fixture of DetectoRS: ``DetectoRS_ResNet`` (ConvAWS convs, deformable SAC in stages
2-4, ``output_img``) and the ``RFP`` neck (two steps, ASPP, an ``rfp_inplanes`` backbone copy).

Model: MMDetection 3.3's classes (``mmdet/models/backbones/detectors_resnet.py``,
``mmdet/models/necks/rfp.py``; SAC is mmcv 2.1's ``SAConv2d`` with its compiled CPU deform conv),
depth 50 with 4 base channels, random weights (float16 values), training mode with
``norm_eval=False`` (batch statistics; eval mode with random running statistics overflows),
input 1x3x96x96
(SAC reflect-pads by 2, so stage 4 needs at least 3x3). Stored: the backbone outputs (image
first) and the neck outputs. Layouts: the full-size ``detectors_cascade_rcnn_r50_1x`` model and
the backbone + neck of the four HTC configs (their HTC heads are another issue's).

Run: /work/peers/venv/bin/python tools/goldens/detectors.py   (from the repo root)
"""

from __future__ import annotations

import torch
from v2_peer import (
    build,
    half_state_dict,
    halve,
    out_dir,
    randomize,
    versions,
    write_json,
    write_layouts,
)

NAME = "detectors"
RES = dict(
    type="DetectoRS_ResNet",
    depth=50,
    base_channels=4,
    conv_cfg=dict(type="ConvAWS"),
    sac=dict(type="SAC", use_deform=True),
    stage_with_sac=(False, True, True, True),
    norm_eval=False,
    style="pytorch",
)
BACKBONE = dict(RES, output_img=True)
NECK = dict(
    type="RFP",
    in_channels=[16, 32, 64, 128],
    out_channels=8,
    num_outs=5,
    rfp_steps=2,
    aspp_out_channels=2,
    aspp_dilations=(1, 3, 6, 1),
    rfp_backbone=dict(RES, rfp_inplanes=8),
)
LAYOUTS = [
    ("detectors/detectors_cascade_rcnn_r50_1x_coco.py", ()),
    ("detectors/detectors_htc_r50_1x_coco.py", ("backbone.", "neck.")),
    ("detectors/detectors_htc_r101_20e_coco.py", ("backbone.", "neck.")),
    ("detectors/htc_r50_rfp_1x_coco.py", ("backbone.", "neck.")),
    ("detectors/htc_r50_sac_1x_coco.py", ("backbone.", "neck.")),
]


def main() -> None:
    out = out_dir(NAME)
    torch.manual_seed(0)
    backbone, neck = build(dict(BACKBONE)), build(dict(NECK))
    # training mode: batch statistics keep the random-weight activations finite through the
    # two passes (eval mode with random running statistics overflows to NaN)
    backbone.train()  # (MMDetection's ResNet.train returns None: no chaining)
    neck.train()
    for seed, module in enumerate((backbone, neck)):
        randomize(module, seed=30 + seed)
        halve(module)
    img = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        feats = backbone(img)
        pyramid = neck(feats)
    torch.save(
        {"backbone": half_state_dict(backbone), "neck": half_state_dict(neck)}, out / "weights.pt"
    )
    torch.save({"img": img}, out / "input.pt")
    torch.save({"backbone": list(feats), "neck": list(pyramid)}, out / "expected.pt")
    write_json(out / "model.json", {"backbone": BACKBONE, "neck": NECK})
    write_layouts(out, LAYOUTS)
    write_json(out / "versions.json", versions())


if __name__ == "__main__":
    main()
