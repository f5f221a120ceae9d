"""Golden of Fast R-CNN: the shared Faster R-CNN fixture without its RPN (``FastRCNN``), run on
precomputed proposals: the fixture's RPN proposals (top 300 per image, with scores, as a
proposal file holds them), computed by MMDetection with the full Faster R-CNN.

Run: /work/peers/venv/bin/python tools/goldens/fast_rcnn.py   (from the repo root)
"""

from __future__ import annotations

import roi_peer as rp
import torch

NAME = "fast_rcnn"
HEADER = """# Fast R-CNN golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn
# fixture's model as v2's FastRCNN (no rpn_head, no rpn/rpn_proposal settings); expected.pt's
# proposals (the fixture's RPN, top 300 per image) are its input. Weights: the fixture's.
"""


def model_dict() -> dict:
    m = rp.base_model()
    m["type"] = "FastRCNN"
    del m["rpn_head"]
    m["train_cfg"] = dict(rcnn=m["train_cfg"]["rcnn"])
    m["test_cfg"] = dict(rcnn=m["test_cfg"]["rcnn"])
    return m


def main() -> None:
    inputs = rp.base_inputs()
    full = rp.build(rp.base_model())
    full.load_state_dict(rp.base_weights())
    full.eval()
    with torch.no_grad():
        feats = full.extract_feat(inputs["img"])
        props = full.rpn_head.predict(feats, rp.samples_from_v2(inputs), rescale=False)
    proposals = [torch.cat([p.bboxes, p.scores[:, None]], 1)[:300].clone() for p in props]
    m = model_dict()
    model = rp.build(m)
    stored = rp.load_base_and_randomize(model, seed=81)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exp = rp.compute(model, inputs, proposals=proposals, with_rpn=False)
    exp["proposals"] = proposals
    out = rp.write(NAME, m, state, stored, exp, HEADER)
    rp.write_json(
        out / "layout_fast_rcnn_r50_fpn_1x.json",
        rp.layout(rp.v2_model("fast_rcnn/fast_rcnn_r50_fpn_1x_coco.py")),
    )
    print(out, stored, exp["losses"], [len(d["scores"]) for d in exp["dets"]])


if __name__ == "__main__":
    main()
