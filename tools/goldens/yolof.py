"""Small YOLOF golden from MMDetection 3.3 (run with the PEER venv, from the repository root):

    /work/peers/venv/bin/python tools/goldens/yolof.py

Writes ``tests/data/goldens/yolof/``: ``model.py`` (the tiny model in v2 config syntax, built
as it is by both stacks), ``weights.pth`` (seeded random weights, rounded to float16 and stored
as float16; loading them into the float32 model gives exactly the weights used) and
``expected.pt``. Inputs: the two images and annotations of
``../shared/fixtures/mmdet/yolov3/inputs.pt`` (224x320 batch), converted to data samples.

Every BN's running statistics are then set to its batch statistics on the input (layer by layer)
and the three prediction convs get N(0, 0.05²) weights instead (He-scaled ones saturate every
score at 1). Expected (one CPU thread): the DilatedEncoder output, detections with and without
rescale under v2's test settings (``min_bbox_size=-1``: MMDetection 3 drops zero-size boxes
before NMS, v2's dense heads did not), the training-mode losses and the L2 norm of every
parameter's gradient of their sum. The full-size layout is ``tests/data/goldens/
dilated_encoder/layout_yolof_r50_c5.json`` (tools/goldens/dilated_encoder.py).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GOLDENS, ROOT, _registry, layout_of, peer_versions, random_state_dict

INPUTS = ROOT.parent / "shared" / "fixtures" / "mmdet" / "yolov3" / "inputs.pt"

#: the standard yolof_r50_c5_8x8_1x_coco model at tiny widths: ResNet-18 at base width 8 (C5:
#: 64 channels, BN frozen as in the standard caffe backbone), DilatedEncoder 64 -> 32
MODEL = dict(
    type="YOLOF",
    backbone=dict(
        type="ResNet",
        depth=18,
        base_channels=8,
        num_stages=4,
        out_indices=(3,),
        frozen_stages=1,
        norm_cfg=dict(type="BN", requires_grad=False),
        norm_eval=True,
        style="caffe",
        init_cfg=None,
    ),
    neck=dict(
        type="DilatedEncoder",
        in_channels=64,
        out_channels=32,
        block_mid_channels=16,
        num_residual_blocks=4,
        block_dilations=[2, 4, 6, 8],
    ),
    bbox_head=dict(
        type="YOLOFHead",
        num_classes=80,
        in_channels=32,
        reg_decoded_bbox=True,
        anchor_generator=dict(
            type="AnchorGenerator", ratios=[1.0], scales=[1, 2, 4, 8, 16], strides=[32]
        ),
        bbox_coder=dict(
            type="DeltaXYWHBBoxCoder",
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0],
            add_ctr_clamp=True,
            ctr_clamp=32,
        ),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type="GIoULoss", loss_weight=1.0),
    ),
    train_cfg=dict(
        assigner=dict(type="UniformAssigner", pos_ignore_thr=0.15, neg_ignore_thr=0.7),
        allowed_border=-1,
        pos_weight=-1,
        debug=False,
    ),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type="nms", iou_threshold=0.6),
        max_per_img=100,
    ),
)
PREPROCESS = dict(
    type="DetDataPreprocessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
)


def samples_from_v2(inp: dict) -> list:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    out = []
    for i, meta in enumerate(inp["img_metas"]):
        sample = DetDataSample(
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
        sample.gt_instances = gt
        ignored = InstanceData()
        ignored.bboxes = inp["gt_bboxes_ignore"][i]
        ignored.labels = torch.zeros(len(ignored.bboxes), dtype=torch.long)
        sample.ignored_instances = ignored
        out.append(sample)
    return out


def calibrate_bn(model: torch.nn.Module, img: torch.Tensor) -> None:
    """Every BN's running statistics := its batch statistics on ``img`` (random weights with
    made-up statistics blow activations up to ~100 by the head)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:  # one layer at a time, so each sees the calibrated layers before it
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch gives its statistics
        m.train()
        with torch.no_grad():
            model.bbox_head(model.extract_feat(img))
        m.momentum = 0.1
        m.eval()


def fmt(obj: object, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f"{pad}    {k}={fmt(v, indent + 4)}," for k, v in obj.items()]
        return "dict(\n" + "\n".join(items) + f"\n{pad})"
    return repr(obj)


def main() -> None:
    from mmengine.config import ConfigDict

    models = _registry()
    inp = torch.load(INPUTS, weights_only=False)
    cfg = copy.deepcopy(MODEL)
    cfg["data_preprocessor"] = PREPROCESS
    torch.manual_seed(0)
    model = models.build(ConfigDict(cfg))
    state = random_state_dict(layout_of(model), seed=0)
    gen = torch.Generator().manual_seed(1)
    for name in ("cls_score", "bbox_pred", "object_pred"):  # varied, unsaturated outputs
        key = f"bbox_head.{name}.weight"
        state[key] = 0.05 * torch.randn(state[key].shape, generator=gen)
    model.load_state_dict(state)
    img, samples = inp["img"], samples_from_v2(inp)
    calibrate_bn(model, img)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})

    model.eval()
    model.bbox_head.test_cfg.min_bbox_size = -1
    expected: dict = {}
    with torch.no_grad():
        expected["neck"] = [t.clone() for t in model.extract_feat(img)]
        for key, rescale in (("dets_v2", False), ("dets_rescaled_v2", True)):
            results = model.predict(img, copy.deepcopy(samples), rescale=rescale)
            expected[key] = [
                dict(
                    bboxes=r.pred_instances.bboxes.clone(),
                    scores=r.pred_instances.scores.clone(),
                    labels=r.pred_instances.labels.clone(),
                )
                for r in results
            ]
    model.train()
    losses = model.loss(img, copy.deepcopy(samples))
    loss, log_vars = model.parse_losses(losses)
    loss.backward()
    expected["losses"] = {k: float(v) for k, v in log_vars.items()}
    expected["grads_all"] = {
        n: float(p.grad.norm(2)) for n, p in model.named_parameters() if p.grad is not None
    }

    out = GOLDENS / "yolof"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(state, out / "weights.pth")
    torch.save(expected, out / "expected.pt")
    versions = ", ".join(f"{k} {v}" for k, v in peer_versions().items())
    (out / "model.py").write_text(
        "# Tiny YOLOF golden model (tools/goldens/yolof.py), v2 config syntax; made with "
        f"{versions}.\nmodel = {fmt(MODEL)}\n"
    )
    print(
        {k: round(v, 6) for k, v in expected["losses"].items()},
        [len(d["bboxes"]) for d in expected["dets_v2"]],
        [round(float(d["scores"][0]), 4) for d in expected["dets_v2"] if len(d["scores"])],
    )


if __name__ == "__main__":
    main()
