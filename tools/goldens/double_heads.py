"""Golden of Double-Head R-CNN: the shared Faster R-CNN fixture with v2's
``dh_faster_rcnn_r50_fpn_1x_coco`` RoI head at tiny widths (see roi_peer.py).

Run: /work/peers/venv/bin/python tools/goldens/double_heads.py   (from the repo root)
"""

from __future__ import annotations

import roi_peer as rp

NAME = "double_heads"
HEADER = """# Double-Head R-CNN golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn
# fixture's model with v2's dh_faster_rcnn_r50_fpn_1x_coco RoI head, changed only in widths:
# DoubleConvFCBBoxHead num_convs=2 (standard 4), in_channels=32, conv_out_channels=64,
# fc_out_channels=64 (standard 256/1024/1024). Weights: the fixture's, except the keys in
# weights.pth (fc_branch.* equal the fixture's shared_fcs.*, fc_cls its fc_cls).
"""


def model_dict() -> dict:
    m = rp.base_model()
    m["roi_head"].update(type="DoubleHeadRoIHead", reg_roi_scale_factor=1.3)
    m["roi_head"]["bbox_head"] = dict(
        type="DoubleConvFCBBoxHead",
        num_convs=2,
        num_fcs=2,
        in_channels=32,
        conv_out_channels=64,
        fc_out_channels=64,
        roi_feat_size=7,
        num_classes=80,
        bbox_coder=dict(
            type="DeltaXYWHBBoxCoder",
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[0.1, 0.1, 0.2, 0.2],
        ),
        reg_class_agnostic=False,
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=2.0),
        loss_bbox=dict(type="SmoothL1Loss", beta=1.0, loss_weight=2.0),
    )
    return m


def main() -> None:
    m = model_dict()
    model = rp.build(m)
    # the classification branch starts as the fixture's trained fcs
    renamed = {
        f"roi_head.bbox_head.fc_branch.{i}.{p}": f"roi_head.bbox_head.shared_fcs.{i}.{p}"
        for i in range(2)
        for p in ("weight", "bias")
    }
    stored = rp.load_base_and_randomize(model, seed=11, renamed=renamed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exp = rp.compute(model, rp.base_inputs())
    out = rp.write(NAME, m, state, stored, exp, HEADER)
    rp.write_json(
        out / "layout_dh_faster_rcnn_r50_fpn_1x.json",
        rp.layout(rp.v2_model("double_heads/dh_faster_rcnn_r50_fpn_1x_coco.py")),
    )
    print(out, exp["losses"], [len(d["scores"]) for d in exp["dets"]])


if __name__ == "__main__":
    main()
