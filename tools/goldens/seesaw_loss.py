"""Goldens of the Seesaw loss (v2's ``seesaw_loss`` configs) at tiny widths (see roi_peer.py):

- ``seesaw_loss``: the shared mask_rcnn fixture with v2's
  ``mask_rcnn_r50_fpn_random_seesaw_loss_normed_mask_mstrain_2x_lvis_v1`` box and mask
  predictors: ``NormedLinear(tempearture=20)`` classifier trained with
  ``SeesawLoss(p=0.8, q=2.0)``, ``NormedConv2d(tempearture=20)`` mask logits;
- ``seesaw_cascade``: the shared cascade_rcnn fixture with the same classifier and loss in
  all three stages (v2's ``cascade_mask_rcnn_r101_fpn_random_seesaw_loss_*``, box part).

num_classes stays 80 (LVIS: 1203); test_cfg.rcnn has score_thr 0.3 (seesaw_loss) or 0.05
(seesaw_cascade) and max_per_img 100 (the LVIS configs: 0.0001 and 300, i.e. hundreds of
near-tied detections).

Run: /work/peers/venv/bin/python tools/goldens/seesaw_loss.py   (from the repo root)
"""

from __future__ import annotations

import roi_peer as rp

HEADER = """# Seesaw-loss golden (MMDetection 3.3.0), v2 config syntax: the shared {base} fixture's
# model with v2's seesaw_loss box classifier (NormedLinear tempearture=20 + SeesawLoss
# p=0.8 q=2.0, num_classes=80){mask}. Weights: the fixture's, except the keys in weights.pth.
"""
SEESAW = dict(type="SeesawLoss", p=0.8, q=2.0, num_classes=80, loss_weight=1.0)
NORMED = dict(type="NormedLinear", tempearture=20)


def mask_model() -> dict:
    m = rp.base_model("mask_rcnn")
    m["roi_head"]["bbox_head"].update(cls_predictor_cfg=dict(NORMED), loss_cls=dict(SEESAW))
    m["roi_head"]["mask_head"]["predictor_cfg"] = dict(type="NormedConv2d", tempearture=20)
    # the random objectness pair calls most RoIs objects: a higher threshold keeps the
    # detections well under max_per_img (no near-ties at the cut)
    m["test_cfg"]["rcnn"]["score_thr"] = 0.3
    return m


def cascade_model() -> dict:
    m = rp.base_model("cascade_rcnn")
    for head in m["roi_head"]["bbox_head"]:
        head.update(cls_predictor_cfg=dict(NORMED), loss_cls=dict(SEESAW))
    return m


def main() -> None:
    for name, fixture, m, mask in (
        ("seesaw_loss", "mask_rcnn", mask_model(), ", NormedConv2d mask logits"),
        ("seesaw_cascade", "cascade_rcnn", cascade_model(), " in every cascade stage"),
    ):
        model = rp.build(m)
        stored = rp.load_base_and_randomize(model, seed=21, fixture=fixture)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        exp = rp.compute(model, rp.base_inputs(fixture))
        header = HEADER.format(base=fixture, mask=mask)
        out = rp.write(name, m, state, stored, exp, header, extra=dict(base=fixture))
        print(out, exp["losses"], [len(d["scores"]) for d in exp["dets"]])
    rel = "seesaw_loss/mask_rcnn_r50_fpn_random_seesaw_loss_normed_mask_mstrain_2x_lvis_v1.py"
    rp.write_json(
        rp.GOLDENS / "seesaw_loss" / "layout_mask_rcnn_r50_seesaw_normed_mask.json",
        rp.layout(rp.v2_model(rel)),
    )


if __name__ == "__main__":
    main()
