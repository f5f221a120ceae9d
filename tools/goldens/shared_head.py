"""Golden fixture of the C4 ``ResLayer`` shared head inside ``StandardRoIHead``.

MMDetection 3.3's ``StandardRoIHead`` with ``shared_head=ResLayer`` (depth 18, stage 1,
caffe style, frozen BN), a 14x14 ``RoIAlign`` extractor on one stride-8 level, a
``BBoxHead(with_avg_pool=True)`` and an ``FCNMaskHead(num_convs=0)`` sharing the extractor, as
the v2 C4 configs wire them (only narrower). Random weights with float16 values (stored as
float16), eval mode; its ``_bbox_forward`` and ``_mask_forward(rois=...)`` (v2's logic: pool,
shared head, head) on fixed features and RoIs. Layouts: the full-size v2.28.2
``faster_rcnn_r50_caffe_c4_1x`` and ``mask_rcnn_r50_caffe_c4_1x`` models.

Run: /work/peers/venv/bin/python tools/goldens/shared_head.py   (from the repo root)
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

NAME = "shared_head"
HEAD = dict(
    type="StandardRoIHead",
    shared_head=dict(
        type="ResLayer",
        depth=18,
        stage=1,
        stride=2,
        dilation=1,
        style="caffe",
        norm_cfg=dict(type="BN", requires_grad=False),
        norm_eval=True,
    ),
    bbox_roi_extractor=dict(
        type="SingleRoIExtractor",
        roi_layer=dict(type="RoIAlign", output_size=14, sampling_ratio=0),
        out_channels=64,
        featmap_strides=[8],
    ),
    bbox_head=dict(
        type="BBoxHead",
        with_avg_pool=True,
        roi_feat_size=7,
        in_channels=128,
        num_classes=5,
        bbox_coder=dict(
            type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]
        ),
        reg_class_agnostic=False,
    ),
    mask_roi_extractor=None,
    mask_head=dict(
        type="FCNMaskHead", num_convs=0, in_channels=128, conv_out_channels=16, num_classes=5
    ),
)
LAYOUTS = [
    "faster_rcnn/faster_rcnn_r50_caffe_c4_1x_coco.py",
    "mask_rcnn/mask_rcnn_r50_caffe_c4_1x_coco.py",
]


def main() -> None:
    out = out_dir(NAME)
    torch.manual_seed(0)
    head = build(dict(HEAD))
    head.eval()
    randomize(head, seed=40)
    halve(head)
    feats = [torch.randn(2, 64, 12, 14)]
    xy = torch.rand(9, 2) * 70
    rois = torch.cat(
        [torch.tensor([0.0] * 5 + [1.0] * 4)[:, None], xy, xy + 8 + torch.rand(9, 2) * 40], 1
    )
    with torch.no_grad():
        bbox = head._bbox_forward(feats, rois)
        mask = head._mask_forward(feats, rois)
    torch.save(half_state_dict(head), out / "weights.pt")
    torch.save({"feats": feats, "rois": rois}, out / "input.pt")
    torch.save(
        {
            "cls_score": bbox["cls_score"],
            "bbox_pred": bbox["bbox_pred"],
            "bbox_feats": bbox["bbox_feats"],
            "mask_preds": mask["mask_preds"],
        },
        out / "expected.pt",
    )
    write_json(out / "head.json", HEAD)
    write_layouts(out, [(rel, ()) for rel in LAYOUTS])
    write_json(out / "versions.json", versions())


if __name__ == "__main__":
    main()
