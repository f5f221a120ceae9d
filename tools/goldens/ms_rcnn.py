"""Golden of Mask Scoring R-CNN (``ms_rcnn_r50_caffe_fpn_1x_coco.py`` at tiny widths) from
MMDetection 3.3.

Tiny model: ``_zoo3_roi.tiny_two_stage`` widths, the MaskIoUHead at 16 conv channels and 32
fc channels; ``test_cfg.rcnn.max_per_img=20``. MMDetection 3.3 multiplies the detection
scores by the predicted mask IoU; v2 keeps the box scores and reports the products as
``mask_scores``: ``expected['box_scores']`` (the box head's scores, ``predict_bbox``) are v2's
box scores and the final 3.3 scores v2's mask scores.

Run: /work/peers/venv/bin/python tools/goldens/ms_rcnn.py   (from the repo root)
"""

from __future__ import annotations

import copy

import _zoo3_roi as z

HEADER = """# Tiny Mask Scoring R-CNN golden (tests/data/goldens/ms_rcnn), MMDetection v2 syntax:
# configs/ms_rcnn/ms_rcnn_r50_caffe_fpn_1x_coco.py with a pytorch-style R-18 (8 base channels),
# 16-channel FPN/RPN/RoI features, box fcs 32, MaskIoUHead 16/32, take-all samplers,
# train_cfg.rcnn.mask_thr_binary=0.0 (IoU targets of briefly trained masks are not all 0),
# test_cfg.rcnn.max_per_img=20. Made by tools/goldens/ms_rcnn.py.
"""


def model() -> dict:
    m = z.tiny_two_stage(z.v2_model("ms_rcnn/ms_rcnn_r50_caffe_fpn_1x_coco.py"))
    m["roi_head"]["mask_iou_head"].update(
        in_channels=z.WIDTH, conv_out_channels=z.WIDTH, fc_out_channels=32
    )
    m["test_cfg"]["rcnn"]["max_per_img"] = 20
    # briefly trained mask logits stay below the standard 0.5: at 0.0 some RoIs have a
    # non-zero IoU target, so the golden loss_mask_iou is not 0
    m["train_cfg"]["rcnn"]["mask_thr_binary"] = 0.0
    return m


def box_scores(model, feats, test_data, exp) -> None:
    """v2's box scores: the box head's detections before the mask-IoU rescoring."""
    metas = [ds.metainfo for ds in test_data["data_samples"]]
    props = model.rpn_head.predict(feats, copy.deepcopy(test_data["data_samples"]), rescale=False)
    dets = model.roi_head.predict_bbox(feats, metas, props, model.roi_head.test_cfg, rescale=False)
    exp["box_dets"] = [z.inst(d) for d in dets]


if __name__ == "__main__":
    z.write(
        "ms_rcnn",
        HEADER,
        model(),
        "ms_rcnn/ms-rcnn_r50-caffe_fpn_1x_coco.py",
        with_seg=False,
        extra=box_scores,
    )
