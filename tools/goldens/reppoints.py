"""Small golden fixtures of RepPoints from MMDetection 3.3 (Model zoo II).

Run with the peer stack (MMDetection 3.3.0, mmcv 2.1.0, CPU), from the repository root:
    /work/peers/venv/bin/python tools/goldens/reppoints.py [reppoints] [reppoints_grid]
It writes tests/data/goldens/<family>/{model.py, weights.pth, expected.pt, layout.json}.
Inputs are the two images of ../shared/fixtures/mmdet/paa/inputs.pt (v2 format), converted to
MMDetection 3 data samples.

Families: ``reppoints`` is the standard ``reppoints-moment_r50_fpn-gn_head-gn_1x_coco.py``
(moment transform, PointAssigner init stage); ``reppoints_grid`` is
``reppoints-bbox_r50_fpn-gn_head-gn-grid_1x_coco.py`` (grid points on boxes, minmax,
MaxIoUAssigner init stage). Tiny: ResNet-18 at base width 8 (no pretrained weights), FPN 32
channels with GN (8 groups), head 32 channels (GN 8 groups, point_feat_channels 32).
Weights: seed 0, MMDetection's init_weights, the backbone's BN running statistics set to the
batch statistics of the two images, every bbox_head weight of 2 or more dimensions redrawn from
N(0, 1 / fan_in), the score bias set to -2 (some scores above score_thr); every float tensor
rounded to float16 and stored so. Expected (one CPU thread): detections with and without rescale
with v2's ``min_bbox_size=-1`` (MMDetection 3 drops zero-size boxes, v2 did not), the losses per
level of model.loss in training mode and the L2 norm of every parameter's gradient of their sum.
layout.json: the full-size standard model's state_dict layout and parameter counts.
"""

import copy
import os
import sys
from collections import OrderedDict

import torch

torch.set_num_threads(1)
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from peer_common import (  # noqa: E402
    MMDET_CFG,
    PREPROCESS,
    ROOT,
    detections,
    fmt,
    load_inputs,
    samples_from_v2,
    write_layout,
)

STD = dict(
    reppoints="reppoints/reppoints-moment_r50_fpn-gn_head-gn_1x_coco.py",
    reppoints_grid="reppoints/reppoints-bbox_r50_fpn-gn_head-gn-grid_1x_coco.py",
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


def tiny_model(family):
    m = Config.fromfile(os.path.join(MMDET_CFG, STD[family])).model.to_dict()
    m.pop("data_preprocessor")
    m["backbone"] = copy.deepcopy(BACKBONE)
    m["neck"].update(in_channels=[8, 16, 32, 64], out_channels=32, norm_cfg=copy.deepcopy(GN8))
    m["bbox_head"].update(
        in_channels=32, feat_channels=32, point_feat_channels=32, norm_cfg=copy.deepcopy(GN8)
    )
    return m


def calibrate_bn(backbone, img):
    bns = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        backbone(img)
    for m in bns:
        m.momentum = 0.1
        m.eval()


def main(families):
    register_all_modules()
    inp = load_inputs()
    img = inp["img"]
    for family in families:
        out = os.path.join(ROOT, "tests/data/goldens", family)
        os.makedirs(out, exist_ok=True)
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
                    p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            model.bbox_head.reppoints_cls_out.bias.fill_(-2.0)
            for v in model.state_dict().values():
                if v.is_floating_point():
                    v.copy_(v.half().float())
        state = OrderedDict(
            (k, v.detach().clone().half() if v.is_floating_point() else v.detach().clone())
            for k, v in model.state_dict().items()
        )
        exp = OrderedDict()
        model.eval()
        with torch.no_grad():
            model.bbox_head.test_cfg["min_bbox_size"] = -1
            exp["dets_v2"] = detections(model, img, samples_from_v2(inp), False)
            exp["dets_rescaled_v2"] = detections(model, img, samples_from_v2(inp), True)
        model.train()
        losses = model.loss(img, samples_from_v2(inp))
        total, log_vars = model.parse_losses(losses)
        total.backward()
        exp["losses"] = OrderedDict((k, float(v)) for k, v in log_vars.items())
        exp["losses_per_level"] = OrderedDict(
            (k, [float(x) for x in v]) for k, v in losses.items() if isinstance(v, (list, tuple))
        )
        exp["grads_all"] = OrderedDict(
            (n, float(p.grad.norm(2))) for n, p in model.named_parameters() if p.grad is not None
        )
        torch.save(dict(state_dict=state), os.path.join(out, "weights.pth"))
        torch.save(exp, os.path.join(out, "expected.pt"))
        with open(os.path.join(out, "model.py"), "w") as f:
            f.write(f"# tiny {family} of tools/goldens/reppoints.py ({STD[family]})\n")
            f.write("model = " + fmt(model_dict) + "\n")
        write_layout(STD[family], out)
        print(family, dict(exp["losses"]), [len(x["labels"]) for x in exp["dets_v2"]], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(STD))
