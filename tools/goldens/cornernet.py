"""Small golden fixtures of CornerNet and CentripetalNet from MMDetection 3.3 (Model zoo II).

Run with the peer stack (MMDetection 3.3.0, mmcv 2.1.0, CPU), from the repository root:
    /work/peers/venv/bin/python tools/goldens/cornernet.py [cornernet] [centripetalnet]
It writes tests/data/goldens/<family>/{model.py, weights.pth, expected.pt, layout.json}.
Inputs are the two images of ../shared/fixtures/mmdet/paa/inputs.pt (img 2x3x224x320, v2
img_metas, gt boxes), converted to MMDetection 3 data samples (no ``border``: no crop).

Model: the family's standard config with a tiny HourglassNet (downsample_times=2,
stage_channels (16, 16, 24), stage_blocks (1, 1, 1), feat_channel 16; 2 stacks for CornerNet,
so the head has two feature levels, 1 for CentripetalNet) and the head at in_channels=16 and
4 classes (ground-truth labels modulo 4; its corner pools keep their fixed 128/256 hidden
widths, as in v2). Weights: seed 0,
MMDetection's init_weights, the BN running statistics set to the batch statistics of the two
images, then every bbox_head weight of 2 or more dimensions redrawn from N(0, 1 / fan_in)
(the last centripetal-shift convs scaled by 0.1 with bias log(4), so that some corner pairs
pass the central-region test; the last embedding convs scaled by 0.1 so that some pairs are
closer than the distance threshold);
every float tensor rounded to float16 and stored so (same values in a float32 model).
Expected (one CPU thread): detections with and without rescale
(standard test_cfg: corner top-100, soft-NMS, 100 per image), the losses (per level) of
model.loss in training mode, and the L2 norm of every parameter's gradient of their sum.
The layout.json is the full-size standard model's state_dict layout and parameter counts.
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
    cornernet="cornernet/cornernet_hourglass104_8xb6-210e-mstest_coco.py",
    centripetalnet="centripetalnet/centripetalnet_hourglass104_16xb6-crop511-210e-mstest_coco.py",
)
STACKS = dict(cornernet=2, centripetalnet=1)
NUM_CLASSES = 4  # ground-truth labels taken modulo 4: more same-class corner pairs
#: the centripetal shifts start near exp(SHIFT_BIAS) = 4 cells (random ones reject every pair)
SHIFT_BIAS, SHIFT_GAIN = 1.386, 0.1
#: embeddings scaled down so that some corner pairs are closer than distance_threshold 0.5
EMB_GAIN = 0.1


def tiny_model(family):
    m = Config.fromfile(os.path.join(MMDET_CFG, STD[family])).model.to_dict()
    m.pop("data_preprocessor")
    m["backbone"].update(
        downsample_times=2,
        num_stacks=STACKS[family],
        stage_channels=[16, 16, 24],
        stage_blocks=[1, 1, 1],
        feat_channel=16,
    )
    m["bbox_head"].update(in_channels=16, num_feat_levels=STACKS[family], num_classes=NUM_CLASSES)
    return m


def calibrate_bn(model, img):
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        model.bbox_head(model.backbone(img))
    for m in bns:
        m.momentum = 0.1
    model.eval()


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
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in model.bbox_head.parameters():
                if p.dim() >= 2:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
            for name in ("tl_centripetal_shift", "br_centripetal_shift"):
                for branch in getattr(model.bbox_head, name, []):
                    branch[-1].conv.weight.mul_(SHIFT_GAIN)
                    branch[-1].conv.bias.fill_(SHIFT_BIAS)
            for name in ("tl_emb", "br_emb"):
                for branch in getattr(model.bbox_head, name, []):
                    branch[-1].conv.weight.mul_(EMB_GAIN)
        calibrate_bn(model, img)
        with torch.no_grad():
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
            for key, rescale in (("dets", False), ("dets_rescaled", True)):
                exp[key] = detections(model, img, samples_from_v2(inp, NUM_CLASSES), rescale)
        model.train()
        losses = model.loss(img, samples_from_v2(inp, NUM_CLASSES))
        loss, log_vars = model.parse_losses(losses)
        exp["losses"] = OrderedDict((k, float(v)) for k, v in log_vars.items())
        exp["losses_per_level"] = OrderedDict(
            (k, [float(x) for x in v]) for k, v in losses.items() if isinstance(v, list)
        )
        loss.backward()
        exp["grads_all"] = OrderedDict(
            (n, float(p.grad.norm(2))) for n, p in model.named_parameters() if p.grad is not None
        )
        torch.save(dict(state_dict=state), os.path.join(out, "weights.pth"))
        torch.save(exp, os.path.join(out, "expected.pt"))
        with open(os.path.join(out, "model.py"), "w") as f:
            f.write(f"# tiny {family} of tools/goldens/cornernet.py (MMDetection 3.3 config)\n")
            f.write("model = " + fmt(model_dict) + "\n")
        write_layout(STD[family], out)
        print(family, dict(exp["losses"]), [len(x["labels"]) for x in exp["dets"]], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(STD))
