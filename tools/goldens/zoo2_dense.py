"""Small golden fixtures of one-stage families from MMDetection 3.3 (Model zoo II).

Run with the peer stack (MMDetection 3.3.0, mmcv 2.1.0, CPU), from the repository root:
    /work/peers/venv/bin/python tools/goldens/zoo2_dense.py FAMILY [FAMILY ...]
It writes tests/data/goldens/<family>/{model.py, weights.pth, expected.pt}; with --layout, only
tests/data/goldens/<family>/layout.json: the state_dict layout and parameter counts of the
full-size standard model (as ../shared/tools/fixtures_gen/layouts.py writes them).
Inputs are the two images of ../shared/fixtures/mmdet/paa/inputs.pt (v2 format: img,
img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore), converted to MMDetection 3 data samples.

Model: the family's standard MMDetection 3.3 config with ResNet-18 at base width 8 (no
pretrained weights), FPN 32 channels, head 32 channels (GN with 8 groups where the head has
GN). Weights: seed 0, MMDetection's init_weights, the backbone's BN running statistics set to the
batch statistics of the two input images, then every bbox_head weight of 2 or more
dimensions redrawn from N(0, 1 / fan_in), so that the random head gives varied scores
(some above score_thr) and boxes of sensible size;
every float tensor is rounded to float16 before anything is computed and stored as float16
(half the size; loading it into the float32 model gives exactly the weights used).
Expected (one CPU thread): detections with and without rescale after v2's test settings
(``min_bbox_size=-1``: v2's dense heads did not drop zero-size boxes; the v3 default results
are kept as ``dets``/``dets_rescaled``), the losses (and per level) of model.loss in training
mode, and the L2 norm of every parameter's gradient of their sum.
"""

import copy
import json
import os
import sys
from collections import OrderedDict

import torch

torch.set_num_threads(1)
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MMDET_CFG = os.path.join(os.path.dirname(__import__("mmdet").__file__), ".mim", "configs")
STD = dict(
    ghm="ghm/retinanet_r50_fpn_ghm-1x_coco.py",
    free_anchor="free_anchor/freeanchor_r50_fpn_1x_coco.py",
    fsaf="fsaf/fsaf_r50_fpn_1x_coco.py",
    foveabox="foveabox/fovea_r50_fpn_gn-head-align_4xb4-2x_coco.py",
    ddod="ddod/ddod_r50_fpn_1x_coco.py",
    autoassign="autoassign/autoassign_r50-caffe_fpn_1x_coco.py",
)
BACKBONE = dict(
    type="ResNet",
    depth=18,
    base_channels=8,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type="BN", requires_grad=True),
    norm_eval=True,
    style="pytorch",
    init_cfg=None,
)
GN8 = dict(type="GN", num_groups=8, requires_grad=True)
GAIN = 1.0  # head weights ~ N(0, GAIN^2 / fan_in): varied scores, boxes of sensible size
#: family -> (score conv, bias): heads with one prior per cell need a higher score bias than the
#: 0.01 prior for any score above score_thr
CLS_BIAS = dict(fsaf=("retina_cls", -2.0))


def _four_levels(m):
    """P3-P6 only: mmcv's CPU deformable conv fails on the 2x3 P7 map of a 224x320 input."""
    m["neck"]["num_outs"] = 4
    m["bbox_head"]["anchor_generator"]["strides"] = [8, 16, 32, 64]


#: family -> change of the tiny model dict
TWEAKS = dict(ddod=_four_levels)
PREPROCESS = dict(
    type="DetDataPreprocessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
)


def tiny_model(family):
    m = Config.fromfile(os.path.join(MMDET_CFG, STD[family])).model.to_dict()
    m.pop("data_preprocessor")
    m["backbone"] = copy.deepcopy(BACKBONE)
    m["neck"].update(in_channels=[8, 16, 32, 64], out_channels=32)
    m["bbox_head"].update(in_channels=32, feat_channels=32)
    if (m["bbox_head"].get("norm_cfg") or {}).get("type") == "GN":
        m["bbox_head"]["norm_cfg"] = copy.deepcopy(GN8)
    if family in TWEAKS:
        TWEAKS[family](m)
    return m


def calibrate_bn(backbone, img):
    """Running statistics of every BN layer = its batch statistics on ``img`` (a random
    backbone with mean 0 / var 1 statistics blows activations up level after level)."""
    bns = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch gives its statistics
        m.train()
    with torch.no_grad():
        backbone(img)
    for m in bns:
        m.momentum = 0.1
        m.eval()


def samples_from_v2(inp):
    out = []
    for i, meta in enumerate(inp["img_metas"]):
        ds = DetDataSample(
            metainfo=dict(
                img_shape=tuple(meta["img_shape"][:2]),
                ori_shape=tuple(meta["ori_shape"][:2]),
                pad_shape=tuple(meta["pad_shape"][:2]),
                batch_input_shape=tuple(meta["batch_input_shape"]),
                scale_factor=(float(meta["scale_factor"][0]), float(meta["scale_factor"][1])),
                flip=False,
                flip_direction=None,
            )
        )
        gt = InstanceData()
        gt.bboxes, gt.labels = inp["gt_bboxes"][i], inp["gt_labels"][i]
        ds.gt_instances = gt
        ignored = InstanceData()
        ignored.bboxes = inp["gt_bboxes_ignore"][i]
        ignored.labels = torch.zeros(len(ignored.bboxes), dtype=torch.long)
        ds.ignored_instances = ignored
        out.append(ds)
    return out


def fmt(obj, indent=0):
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f"{pad}    {k}={fmt(v, indent + 4).lstrip()}," for k, v in obj.items()]
        return "dict(\n" + "\n".join(items) + f"\n{pad})"
    return repr(obj)


def write_layout(family):
    m = Config.fromfile(os.path.join(MMDET_CFG, STD[family])).model.to_dict()
    m["backbone"]["init_cfg"] = None  # no download
    model = MODELS.build(ConfigDict(m))
    sd = model.state_dict()
    d = dict(
        config_path="configs/" + STD[family],
        mmdet_version="3.3.0",
        num_params=sum(p.numel() for p in model.parameters()),
        num_trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        state_dict=[[k, list(v.shape)] for k, v in sd.items()],
    )
    out = os.path.join(ROOT, "tests/data/goldens", family)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "layout.json"), "w") as f:
        json.dump(d, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(family, "layout", d["num_params"], len(sd), flush=True)


def main(families):
    register_all_modules()
    inp = torch.load(os.path.join(SHARED, "fixtures/mmdet/paa/inputs.pt"), weights_only=False)
    img = inp["img"]
    for family in families:
        model_dict = tiny_model(family)
        torch.manual_seed(0)
        d = copy.deepcopy(model_dict)
        d["data_preprocessor"] = PREPROCESS
        model = MODELS.build(ConfigDict(d))
        model.init_weights()
        calibrate_bn(model.backbone, img)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in model.bbox_head.parameters():
                if p.dim() >= 2:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=g) * (GAIN / fan_in**0.5))
            if family in CLS_BIAS:
                name, bias = CLS_BIAS[family]
                getattr(model.bbox_head, name).bias.fill_(bias)
            # every float tensor rounded to float16 (stored as such: half the size, same values)
            for v in model.state_dict().values():
                if v.is_floating_point():
                    v.copy_(v.half().float())
        state = OrderedDict(
            (k, v.detach().clone().half() if v.is_floating_point() else v.detach().clone())
            for k, v in model.state_dict().items()
        )  # before the loss updates any buffer
        exp = OrderedDict()
        model.eval()
        with torch.no_grad():
            for key, rescale in (("dets", False), ("dets_rescaled", True)):
                res = model.predict(img, samples_from_v2(inp), rescale=rescale)
                exp[key] = [
                    dict(
                        bboxes=r.pred_instances.bboxes.clone(),
                        scores=r.pred_instances.scores.clone(),
                        labels=r.pred_instances.labels.clone(),
                    )
                    for r in res
                ]
            backup = model.bbox_head.test_cfg
            model.bbox_head.test_cfg = copy.deepcopy(backup)
            model.bbox_head.test_cfg["min_bbox_size"] = -1
            for key, rescale in (("dets_v2", False), ("dets_rescaled_v2", True)):
                res = model.predict(img, samples_from_v2(inp), rescale=rescale)
                exp[key] = [
                    dict(
                        bboxes=r.pred_instances.bboxes.clone(),
                        scores=r.pred_instances.scores.clone(),
                        labels=r.pred_instances.labels.clone(),
                    )
                    for r in res
                ]
            model.bbox_head.test_cfg = backup
        model.train()
        losses = model.loss(img, samples_from_v2(inp))
        total, log_vars = model.parse_losses(losses)
        total.backward()
        exp["losses"] = OrderedDict((k, float(v.detach())) for k, v in log_vars.items())
        exp["losses_per_level"] = OrderedDict(
            (k, [float(x) for x in v]) for k, v in losses.items() if isinstance(v, (list, tuple))
        )
        exp["grads_all"] = OrderedDict(
            (n, float(p.grad.norm(2))) for n, p in model.named_parameters() if p.grad is not None
        )
        out = os.path.join(ROOT, "tests/data/goldens", family)
        os.makedirs(out, exist_ok=True)
        torch.save(dict(state_dict=state), os.path.join(out, "weights.pth"))
        torch.save(exp, os.path.join(out, "expected.pt"))
        with open(os.path.join(out, "model.py"), "w") as f:
            f.write(
                f"# Tiny {family} golden model (MMDetection 3.3 standard config "
                f"{STD[family]}, see tools/goldens/zoo2_dense.py), v2 syntax.\n"
            )
            f.write("model = " + fmt(model_dict) + "\n")
        print(
            family,
            {k: round(v, 6) for k, v in exp["losses"].items()},
            [len(x["bboxes"]) for x in exp["dets_v2"]],
            flush=True,
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--layout"]:
        register_all_modules()
        for name in sys.argv[2:]:
            write_layout(name)
    else:
        main(sys.argv[1:])
