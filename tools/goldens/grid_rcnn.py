"""Golden of Grid R-CNN: the shared Faster R-CNN fixture with v2's
``grid_rcnn_r50_fpn_gn-head_2x_coco`` RoI head at tiny widths (see roi_peer.py).

The losses draw the jitter of the positive RoIs and the ``max_num_grid`` subset from the
global generator (seeded 0 before the training forward, as in the detforge test).

Run: /work/peers/venv/bin/python tools/goldens/grid_rcnn.py   (from the repo root)
"""

from __future__ import annotations

import roi_peer as rp

NAME = "grid_rcnn"
HEADER = """# Grid R-CNN golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn
# fixture's model with v2's grid_rcnn_r50_fpn_gn-head_2x_coco RoI head, changed only in widths:
# GridHead num_convs=2 (standard 8), in_channels=32, point_feat_channels=8 (standard 256/64),
# grid RoI extractor out_channels=32; train_cfg.rcnn max_num_grid=64 (standard 192) so that
# the random subset matters; test_cfg.rcnn is v2's (score_thr 0.03, NMS 0.3). Weights: the
# fixture's (the box head's shared fcs and classifier), except the keys in weights.pth.
"""


def model_dict() -> dict:
    m = rp.base_model()
    v2 = rp.v2_model("grid_rcnn/grid_rcnn_r50_fpn_gn-head_2x_coco.py")
    m["type"] = "GridRCNN"
    rh = v2["roi_head"]
    rh["bbox_roi_extractor"]["out_channels"] = 32
    rh["grid_roi_extractor"]["out_channels"] = 32
    rh["bbox_head"].update(in_channels=32, fc_out_channels=64)
    rh["grid_head"].update(num_convs=2, in_channels=32, point_feat_channels=8)
    m["roi_head"] = rh
    rcnn = v2["train_cfg"]["rcnn"]
    rcnn["sampler"] = m["train_cfg"]["rcnn"]["sampler"]
    rcnn["max_num_grid"] = 64
    m["train_cfg"]["rcnn"] = rcnn
    m["test_cfg"]["rcnn"] = v2["test_cfg"]["rcnn"]
    return m


def main() -> None:
    m = model_dict()
    model = rp.build(m)
    stored = rp.load_base_and_randomize(model, seed=41)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exp = rp.compute(model, rp.base_inputs())
    out = rp.write(NAME, m, state, stored, exp, HEADER)
    rp.write_json(
        out / "layout_grid_rcnn_r50_fpn_gn-head_2x.json",
        rp.layout(rp.v2_model("grid_rcnn/grid_rcnn_r50_fpn_gn-head_2x_coco.py")),
    )
    print(out, exp["losses"], [len(d["scores"]) for d in exp["dets"]])


if __name__ == "__main__":
    main()
