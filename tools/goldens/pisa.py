"""Golden of PISA: the shared Faster R-CNN fixture with v2's ``pisa_faster_rcnn_r50_fpn_1x_coco``
RoI head and R-CNN training settings (see roi_peer.py). PISA adds no parameters: every weight
is the fixture's (``weights.pth`` is empty).

The ScoreHLRSampler draws the positives and the random negatives from the global generator
(seeded 0 before the training forward, as in the detforge test).

Run: /work/peers/venv/bin/python tools/goldens/pisa.py   (from the repo root)
"""

from __future__ import annotations

import roi_peer as rp

NAME = "pisa"
HEADER = """# PISA golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn fixture's
# model with v2's pisa_faster_rcnn_r50_fpn_1x_coco RoI head (PISARoIHead, SmoothL1 box loss)
# and train_cfg.rcnn (ScoreHLRSampler num=512, isr, carl), unchanged; the fixture's
# rpn_proposal/test settings. Weights: the fixture's.
"""


def model_dict() -> dict:
    m = rp.base_model()
    v2 = rp.v2_model("pisa/pisa_faster_rcnn_r50_fpn_1x_coco.py")
    m["roi_head"]["type"] = "PISARoIHead"
    m["roi_head"]["bbox_head"]["loss_bbox"] = v2["roi_head"]["bbox_head"]["loss_bbox"]
    rcnn = m["train_cfg"]["rcnn"]
    for key in ("sampler", "isr", "carl"):
        rcnn[key] = v2["train_cfg"]["rcnn"][key]
    return m


RETINA_HEADER = """# PISA RetinaNet golden (MMDetection 3.3.0), v2 config syntax: the shared
# retinanet fixture's model with v2's pisa_retinanet_r50_fpn_1x_coco head (PISARetinaHead,
# SmoothL1 beta=0.11) and train_cfg isr/carl, unchanged. Weights: the fixture's.
"""


def retina_dict() -> dict:
    m = rp.base_model("retinanet")
    v2 = rp.v2_model("pisa/pisa_retinanet_r50_fpn_1x_coco.py")
    m["bbox_head"]["type"] = "PISARetinaHead"
    m["bbox_head"]["loss_bbox"] = v2["bbox_head"]["loss_bbox"]
    m["train_cfg"]["isr"] = v2["train_cfg"]["isr"]
    m["train_cfg"]["carl"] = v2["train_cfg"]["carl"]
    return m


def main_retina() -> None:
    m = retina_dict()
    model = rp.build(m)
    stored = rp.load_base_and_randomize(model, seed=52, fixture="retinanet")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exp = rp.compute(model, rp.base_inputs("retinanet"), with_rpn=False)
    out = rp.write("pisa_retinanet", m, state, stored, exp, RETINA_HEADER)
    rp.write_json(
        out / "layout_pisa_retinanet_r50_fpn_1x.json",
        rp.layout(rp.v2_model("pisa/pisa_retinanet_r50_fpn_1x_coco.py")),
    )
    print(out, stored, exp["losses"], [len(d["scores"]) for d in exp["dets"]])


def main() -> None:
    m = model_dict()
    model = rp.build(m)
    stored = rp.load_base_and_randomize(model, seed=51)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exp = rp.compute(model, rp.base_inputs())
    out = rp.write(NAME, m, state, stored, exp, HEADER)
    rp.write_json(
        out / "layout_pisa_faster_rcnn_r50_fpn_1x.json",
        rp.layout(rp.v2_model("pisa/pisa_faster_rcnn_r50_fpn_1x_coco.py")),
    )
    print(out, stored, exp["losses"], [len(d["scores"]) for d in exp["dets"]])


if __name__ == "__main__":
    main()
    main_retina()
