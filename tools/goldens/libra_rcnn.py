"""Golden of Libra R-CNN: the shared Faster R-CNN fixture with v2's
``libra_faster_rcnn_r50_fpn_1x_coco`` parts (FPN + BFP neck list, BalancedL1Loss, RPN
``neg_pos_ub=5``, CombinedSampler of InstanceBalancedPosSampler and IoUBalancedNegSampler) at
tiny widths (see roi_peer.py).

The samplers draw from the global generator (seeded 0 before the training forward, as in the
detforge test); the fixture's RPN sampler (num=1000000) with ``neg_pos_ub=5`` now draws too.

Run: /work/peers/venv/bin/python tools/goldens/libra_rcnn.py   (from the repo root)
"""

from __future__ import annotations

import roi_peer as rp

NAME = "libra_rcnn"
HEADER = """# Libra R-CNN golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn
# fixture's model with v2's libra_faster_rcnn_r50_fpn_1x_coco neck list (the fixture's FPN,
# then BFP in_channels=32, standard 256), BalancedL1Loss, train_cfg.rpn.sampler.neg_pos_ub=5
# and train_cfg.rcnn.sampler (CombinedSampler num=512), unchanged. Weights: the fixture's
# (its FPN as neck.0), except the BFP's in weights.pth. test_cfg.rcnn score_thr 0.02
# (fixture 0.05): the random BFP leaves few scores above 0.05.
"""


def model_dict() -> dict:
    m = rp.base_model()
    v2 = rp.v2_model("libra_rcnn/libra_faster_rcnn_r50_fpn_1x_coco.py")
    bfp = v2["neck"][1]
    bfp["in_channels"] = 32
    m["neck"] = [m["neck"], bfp]
    m["roi_head"]["bbox_head"]["loss_bbox"] = v2["roi_head"]["bbox_head"]["loss_bbox"]
    m["train_cfg"]["rpn"]["sampler"]["neg_pos_ub"] = 5
    m["train_cfg"]["rcnn"]["sampler"] = v2["train_cfg"]["rcnn"]["sampler"]
    m["test_cfg"]["rcnn"]["score_thr"] = 0.02  # the random BFP leaves few scores above 0.05
    return m


def main() -> None:
    m = model_dict()
    model = rp.build(m)
    base = rp.base_weights()
    renamed = {"neck.0." + k[5:]: k for k in base if k.startswith("neck.")}
    stored = rp.load_base_and_randomize(model, seed=71, renamed=renamed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exp = rp.compute(model, rp.base_inputs())
    out = rp.write(NAME, m, state, stored, exp, HEADER)
    rp.write_json(
        out / "layout_libra_faster_rcnn_r50_fpn_1x.json",
        rp.layout(rp.v2_model("libra_rcnn/libra_faster_rcnn_r50_fpn_1x_coco.py")),
    )
    print(out, len(stored), exp["losses"], [len(d["scores"]) for d in exp["dets"]])


if __name__ == "__main__":
    main()
