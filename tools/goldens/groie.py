"""Golden of GRoIE: the shared Faster R-CNN fixture with v2's ``faster_rcnn_r50_fpn_groie_1x_coco``
RoI extractor (GenericRoIExtractor: sum of all levels, ConvModule pre-module, GeneralizedAttention
post-module) at tiny widths (see roi_peer.py).

Run: /work/peers/venv/bin/python tools/goldens/groie.py   (from the repo root)
"""

from __future__ import annotations

import roi_peer as rp

NAME = "groie"
HEADER = """# GRoIE golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn fixture's
# model with v2's faster_rcnn_r50_fpn_groie_1x_coco bbox_roi_extractor, changed only in
# widths: out_channels=32, pre_cfg ConvModule 32->32, post_cfg GeneralizedAttention in_channels=32
# (standard 256; num_heads=6 kept, so the attention embeds 5 channels per head). Weights: the
# fixture's, except the keys in weights.pth (the pre/post modules). test_cfg.rcnn score_thr
# 0.04 (fixture 0.05): the random pre/post modules leave no score above 0.05.
"""


def model_dict() -> dict:
    m = rp.base_model()
    v2 = rp.v2_model("groie/faster_rcnn_r50_fpn_groie_1x_coco.py")
    ext = v2["roi_head"]["bbox_roi_extractor"]
    ext["out_channels"] = 32
    ext["pre_cfg"].update(in_channels=32, out_channels=32)
    ext["post_cfg"]["in_channels"] = 32
    m["roi_head"]["bbox_roi_extractor"] = ext
    m["test_cfg"]["rcnn"]["score_thr"] = 0.04  # the random pre/post modules make scores low
    return m


def main() -> None:
    m = model_dict()
    model = rp.build(m)
    stored = rp.load_base_and_randomize(model, seed=61)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exp = rp.compute(model, rp.base_inputs())
    out = rp.write(NAME, m, state, stored, exp, HEADER)
    rp.write_json(
        out / "layout_faster_rcnn_r50_fpn_groie_1x.json",
        rp.layout(rp.v2_model("groie/faster_rcnn_r50_fpn_groie_1x_coco.py")),
    )
    print(out, stored, exp["losses"], [len(d["scores"]) for d in exp["dets"]])


if __name__ == "__main__":
    main()
