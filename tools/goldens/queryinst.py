"""Golden outputs of a tiny QueryInst made by MMDetection 3.3.0 (run with the PEER venv).

The tiny model is the shared Sparse R-CNN fixture's model (fixtures/mmdet/sparse_rcnn: R-18 at
16 base channels, FPN 32, 20 proposals, 2 DIIHead stages, trained weights) plus QueryInst's
mask branch on both stages (RoIAlign 14x14, ``DynamicMaskHead`` with 2 convs of 16 channels and
a 32->16->32 ``DynamicConv``) with seeded random weights. Inputs are the fixture's two tiny_coco
images (the same network input, checked here) with their COCO masks.

Writes ``tests/data/goldens/queryinst/``:

- ``mask_heads.pt``   the mask branch's state dict (the rest is the fixture's ``weights.pth``);
- ``gt_masks.pt``     per image, COCO RLEs of the ground-truth masks (in the resized frame);
- ``expected.pt``     ``dets``/``dets_rescaled`` (boxes, scores, labels), ``masks`` (RLEs of the
  rescaled detections' masks at ``ori_shape``), ``losses`` (MMDetection 3 names), ``grads_all``;
- ``layout_queryinst_r50.json.gz``  keys and shapes of the full-size standard QueryInst.

usage (from the repository root): ``/work/peers/venv/bin/python tools/goldens/queryinst.py``
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from mmdet.utils import register_all_modules  # noqa: E402

register_all_modules()

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "goldens" / "queryinst"
SHARED = Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))
FIXTURE = SHARED / "fixtures" / "mmdet" / "sparse_rcnn"
PEER_CONFIGS = Path(sys.prefix) / "lib/python3.11/site-packages/mmdet/.mim/configs"
TINY_COCO = SHARED / "data" / "tiny_coco" / "small_coco"
NAMES = ["000000184613.jpg", "000000374628.jpg"]
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def std_model() -> dict:
    from mmengine.config import Config

    return Config.fromfile(PEER_CONFIGS / "queryinst/queryinst_r50_fpn_1x_coco.py").model.to_dict()


def tiny_model() -> dict:
    """The Sparse R-CNN fixture's model with QueryInst's mask branch (v3 syntax)."""
    from mmengine.config import Config

    sparse = Config.fromfile(FIXTURE / "model.py").model.to_dict()
    m = copy.deepcopy(sparse)
    m["type"] = "QueryInst"
    std_roi = std_model()["roi_head"]
    m["roi_head"]["mask_roi_extractor"] = copy.deepcopy(std_roi["mask_roi_extractor"])
    m["roi_head"]["mask_roi_extractor"]["out_channels"] = 32
    masks = []
    for mh in copy.deepcopy(std_roi["mask_head"][:2]):
        mh.update(in_channels=32, conv_out_channels=16, num_convs=2)
        mh["dynamic_conv_cfg"].update(in_channels=32, feat_channels=16, out_channels=32)
        masks.append(mh)
    m["roi_head"]["mask_head"] = masks
    for stage in m["train_cfg"]["rcnn"]:
        stage["mask_size"] = 28
    m["test_cfg"]["rcnn"]["mask_thr_binary"] = 0.5
    return m


def v2_model(m: dict) -> dict:
    """v3 assigner ``match_costs`` list -> v2 ``cls_cost``/``reg_cost``/``iou_cost``."""
    m = copy.deepcopy(m)
    for stage in m["train_cfg"]["rcnn"]:
        costs = stage["assigner"].pop("match_costs")
        stage["assigner"].update(cls_cost=costs[0], reg_cost=costs[1], iou_cost=costs[2])
    return m


def build(m: dict):
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    d = copy.deepcopy(m)
    d["data_preprocessor"] = dict(
        type="DetDataPreprocessor",
        mean=MEAN,
        std=STD,
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
    )
    return MODELS.build(ConfigDict(d))


def samples() -> list:
    from mmdet.datasets import CocoDataset

    pipe = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
        dict(type="Resize", scale=(320, 320), keep_ratio=True),
        dict(
            type="PackDetInputs",
            meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
        ),
    ]
    ds = CocoDataset(
        data_root=str(TINY_COCO) + "/",
        ann_file="instances_train2017_small.json",
        data_prefix=dict(img="train_2017_small/"),
        pipeline=pipe,
        test_mode=True,
    )
    index = {os.path.basename(ds.get_data_info(i)["img_path"]): i for i in range(len(ds))}
    out = [ds[index[n]] for n in NAMES]
    for s in out:
        s["data_samples"].set_metainfo(dict(flip=False, flip_direction=None))
    return out


def rle(masks: np.ndarray) -> list[dict]:
    from pycocotools import mask as mask_util

    result = []
    for m in masks:
        r = mask_util.encode(np.asfortranarray(m[:, :, None].astype(np.uint8)))[0]
        result.append(
            {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
        )
    return result


def inst(i) -> dict:
    return {
        "bboxes": i.bboxes.detach().clone().float(),
        "scores": i.scores.detach().clone(),
        "labels": i.labels.detach().clone().long(),
    }


def main() -> None:
    from mmengine.dataset import pseudo_collate

    OUT.mkdir(parents=True, exist_ok=True)
    tiny = tiny_model()
    model = build(tiny)
    torch.manual_seed(0)
    model.init_weights()
    state = torch.load(FIXTURE / "weights.pth", weights_only=True)["state_dict"]
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert all(".mask_" in k for k in result.missing_keys), result.missing_keys
    mask_state = OrderedDict(
        (k, v.clone()) for k, v in model.state_dict().items() if k not in state
    )
    data = pseudo_collate(samples())
    test = model.data_preprocessor(copy.deepcopy(data), training=False)
    train = model.data_preprocessor(copy.deepcopy(data), training=True)
    fixture_inputs = torch.load(FIXTURE / "inputs.pt", weights_only=False)
    assert torch.equal(test["inputs"], fixture_inputs["img"]), "not the fixture's input"
    inputs = test["inputs"]
    exp: dict = {}
    model.eval()
    with torch.no_grad():
        res = model.predict(inputs, copy.deepcopy(test["data_samples"]), rescale=False)
        exp["dets"] = [inst(r.pred_instances) for r in res]
        res = model.predict(inputs, copy.deepcopy(test["data_samples"]), rescale=True)
        exp["dets_rescaled"] = [inst(r.pred_instances) for r in res]
        exp["masks"] = [rle(r.pred_instances.masks.cpu().numpy()) for r in res]
    model.train()
    model.zero_grad(set_to_none=True)
    losses = model.loss(inputs, copy.deepcopy(train["data_samples"]))
    total, log_vars = model.parse_losses(losses)
    total.backward()
    exp["losses"] = OrderedDict((k, float(v)) for k, v in log_vars.items())
    exp["grads_all"] = OrderedDict(
        (n, float(p.grad.norm(2))) for n, p in model.named_parameters() if p.grad is not None
    )
    gt_masks = [rle(d.gt_instances.masks.masks) for d in train["data_samples"]]
    torch.save(mask_state, OUT / "mask_heads.pt")
    torch.save(gt_masks, OUT / "gt_masks.pt")
    torch.save(exp, OUT / "expected.pt")
    (OUT / "model.py").write_text(
        "# Tiny QueryInst of tools/goldens/queryinst.py, MMDetection v2 config syntax.\n"
        f"model = {v2_model(tiny)!r}\n"
    )
    with torch.device("meta"):
        full = build(std_model())
    layout = dict(
        config_path="configs/queryinst/queryinst_r50_fpn_1x_coco.py (MMDetection 3.3.0)",
        num_params=sum(p.numel() for p in full.parameters()),
        num_trainable_params=sum(p.numel() for p in full.parameters() if p.requires_grad),
        state_dict=[[k, list(v.shape)] for k, v in full.state_dict().items()],
    )
    with gzip.open(OUT / "layout_queryinst_r50.json.gz", "wt") as f:
        json.dump(layout, f)
    print({k: round(v, 6) for k, v in exp["losses"].items()})
    print("dets per image", [len(d["labels"]) for d in exp["dets"]])


if __name__ == "__main__":
    main()
