"""Golden of Dynamic R-CNN: the shared Faster R-CNN fixture (its trained weights: nothing of
its own is stored) with v2's ``dynamic_rcnn_r50_fpn_1x_coco`` RoI head and training settings,
``iou_topk=10`` and ``update_iter_interval=2`` (standard 75 and 100) so that three training
passes see one update that moves both hyper-parameters.

``expected.pt`` adds ``losses_steps`` (the losses of the three passes, each after
``torch.manual_seed(0)``) and ``after_update`` (the assigner's IoU thresholds and the
SmoothL1 beta after the second pass).

Run: /work/peers/venv/bin/python tools/goldens/dynamic_rcnn.py   (from the repo root)
"""

from __future__ import annotations

from collections import OrderedDict

import roi_peer as rp
import torch

NAME = "dynamic_rcnn"
HEADER = """# Dynamic R-CNN golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn
# fixture's model (and weights) with v2's dynamic_rcnn_r50_fpn_1x_coco RoI head settings:
# DynamicRoIHead, SmoothL1Loss(beta=1.0), rpn_proposal/test rpn NMS 0.85, dynamic_rcnn with
# iou_topk=10 and update_iter_interval=2 (standard 75, 100). The R-CNN sampler takes every
# candidate (fixture) and does not add the ground truths (add_gt_as_proposals=False).
"""


def model_dict() -> dict:
    m = rp.base_model()
    m["roi_head"]["type"] = "DynamicRoIHead"
    m["roi_head"]["bbox_head"]["loss_bbox"] = dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0)
    m["train_cfg"]["rpn_proposal"]["nms"]["iou_threshold"] = 0.85
    m["train_cfg"]["rcnn"]["dynamic_rcnn"] = dict(
        iou_topk=10, beta_topk=10, update_iter_interval=2, initial_iou=0.4, initial_beta=1.0
    )
    m["test_cfg"]["rpn"]["nms"]["iou_threshold"] = 0.85
    # without the ground truths among the candidates the recorded IoUs and centre targets
    # come from the proposals alone (with them the 20th smallest target is an exact 0)
    m["train_cfg"]["rcnn"]["sampler"]["add_gt_as_proposals"] = False
    return m


def main() -> None:
    m = model_dict()
    model = rp.build(m)
    stored = rp.load_base_and_randomize(model, seed=31)
    assert not stored, stored
    state = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = rp.base_inputs()
    exp = rp.compute(model, inputs)
    steps = [exp["losses"]]
    head = model.roi_head
    for step in range(2):  # the first pass was compute()'s
        model.zero_grad(set_to_none=True)
        if step == 1:
            a = head.bbox_assigner
            exp["after_update"] = dict(
                pos_iou_thr=float(a.pos_iou_thr),
                neg_iou_thr=float(a.neg_iou_thr),
                min_pos_iou=float(a.min_pos_iou),
                beta=float(head.bbox_head.loss_bbox.beta),
            )
        torch.manual_seed(0)
        _, log_vars = model.parse_losses(model.loss(inputs["img"], rp.samples_from_v2(inputs)))
        steps.append(
            OrderedDict((k, float(torch.as_tensor(v).detach())) for k, v in log_vars.items())
        )
    exp["losses_steps"] = steps
    out = rp.write(
        NAME, m, state, stored, exp, HEADER, extra=dict(after_update=exp["after_update"])
    )
    rp.write_json(
        out / "layout_dynamic_rcnn_r50_fpn_1x.json",
        rp.layout(rp.v2_model("dynamic_rcnn/dynamic_rcnn_r50_fpn_1x_coco.py")),
    )
    print(out, exp["after_update"], [s["loss"] for s in steps])


if __name__ == "__main__":
    main()
