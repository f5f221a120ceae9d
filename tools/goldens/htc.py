"""Golden of HTC with its semantic branch (``htc_r50_fpn_1x_coco.py`` at tiny widths) from
MMDetection 3.3; the shared fixture ``fixtures/mmdet/htc`` covers HTC without semantics.

Tiny model: ``_zoo3_roi.tiny_two_stage`` widths, FusedSemanticHead at 16 channels (183
classes); ``test_cfg.rcnn.max_per_img=20``. ``gt_semantic_seg`` comes from maps painted with
the instance masks (``_zoo3_roi.seg_maps``).

MMDetection 3.3.0's ``HybridTaskCascadeRoIHead._mask_forward(training=False)`` appends to
``aug_masks`` after its stage loop, so its test masks come from the last stage only; v2.28
averages the three stages' probabilities. ``v2_mask_forward()`` moves that line into the loop
before anything is computed, so ``expected['masks']`` follow v2 (tests/data/goldens/htc/README.md).

Run: /work/peers/venv/bin/python tools/goldens/htc.py   (from the repo root)
"""

from __future__ import annotations

import _zoo3_roi as z

HEADER = """# Tiny HTC (semantic branch) golden (tests/data/goldens/htc), MMDetection v2 syntax:
# configs/htc/htc_r50_fpn_1x_coco.py with R-18 (8 base channels), 16-channel FPN/RPN/RoI and
# semantic features, box fcs 32, take-all samplers, test_cfg.rcnn.max_per_img=20. Made by
# tools/goldens/htc.py.
"""


def model() -> dict:
    m = z.tiny_two_stage(z.v2_model("htc/htc_r50_fpn_1x_coco.py"))
    m["roi_head"]["semantic_head"].update(in_channels=z.WIDTH, conv_out_channels=z.WIDTH)
    m["test_cfg"]["rcnn"]["max_per_img"] = 20
    return m


def v2_mask_forward() -> None:
    """Patch MMDetection 3.3's HTC test-time mask forward to average every stage (v2.28)."""
    import inspect
    import textwrap

    from mmdet.models.roi_heads import htc_roi_head

    cls = htc_roi_head.HybridTaskCascadeRoIHead
    src = textwrap.dedent(inspect.getsource(cls._mask_forward))
    bug = "mask_preds = mask_head(mask_feats)\n        aug_masks.append(mask_preds)"
    fix = "mask_preds = mask_head(mask_feats)\n            aug_masks.append(mask_preds)"
    assert src.count(bug) == 1, "MMDetection's HTC _mask_forward changed: check the patch"
    ns = dict(vars(htc_roi_head))
    exec(src.replace(bug, fix), ns)
    cls._mask_forward = ns["_mask_forward"]


if __name__ == "__main__":
    v2_mask_forward()
    z.write("htc", HEADER, model(), "htc/htc_r50_fpn_1x_coco.py", with_seg=True)
