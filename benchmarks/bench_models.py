"""CPU latency of detforge's detectors beside torchvision's (not part of `make test`).

Inference: batch 1 at 1333x800 (padded to 1344x800), eval mode, no grad. Training: one
forward + backward at batch 2, 512x512, five random ground-truth boxes per image. Same machine,
same run, same thread count; torchvision models are built with ``weights=None`` and do their
own resize/normalise inside (``min_size=800, max_size=1333`` for inference, ``512`` for
training), which is part of what they cost.

Backbones alone (second table): the forward pass of a 1x3x800x1344 tensor (inference) and a
forward + backward of the outputs' sum at 2x3x512x512 (train step), beside the torchvision
classification network's feature layers that compute the same maps (``features``, or
``stem`` + ``trunk_output`` of its RegNets), without the classifier. The Swin and ConvNeXt
backbones return the four normed stage outputs a detector uses; torchvision's ``features`` end
at the last stage (no output norms), which is a little less work.

    python benchmarks/bench_models.py [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detforge.config import load_config  # noqa: E402
from detforge.models import build_detector  # noqa: E402
from detforge.registry import MODELS, build_module  # noqa: E402
from detforge.structures.masks import BitmapMasks  # noqa: E402

# label: (our config, torchvision builder or None when torchvision has no counterpart)
CONFIGS: dict[str, tuple[str, str | None]] = {
    "Faster R-CNN R50-FPN": (
        "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
        "fasterrcnn_resnet50_fpn",
    ),
    "RetinaNet R50-FPN": ("retinanet/retinanet_r50_fpn_1x_coco.py", "retinanet_resnet50_fpn"),
    "Mask R-CNN R50-FPN": ("mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py", "maskrcnn_resnet50_fpn"),
    "Cascade R-CNN R50-FPN": ("cascade_rcnn/cascade_rcnn_r50_fpn_1x_coco.py", None),
    "FCOS R50-FPN": ("fcos/fcos_r50_caffe_fpn_gn-head_1x_coco.py", "fcos_resnet50_fpn"),
    "ATSS R50-FPN": ("atss/atss_r50_fpn_1x_coco.py", None),
    "GFL R50-FPN": ("gfl/gfl_r50_fpn_1x_coco.py", None),
    "VFNet R50-FPN": ("vfnet/vfnet_r50_fpn_1x_coco.py", None),
}

# label: (our backbone config, torchvision classification model, its feature-layer attributes)
BACKBONES: dict[str, tuple[dict, str | None, tuple[str, ...]]] = {
    "MobileNetV2": (dict(type="MobileNetV2", out_indices=(7,)), "mobilenet_v2", ("features",)),
    "RegNetX-3.2GF": (
        dict(type="RegNet", arch="regnetx_3.2gf"),
        "regnet_x_3_2gf",
        ("stem", "trunk_output"),
    ),
    # out_indices=(6,): up to the 1x1 head conv, as torchvision's ``features``
    "EfficientNet-B3": (
        dict(type="EfficientNet", arch="b3", out_indices=(6,)),
        "efficientnet_b3",
        ("features",),
    ),
    "Swin-T": (
        dict(type="SwinTransformer", embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
             window_size=7, drop_path_rate=0.2, out_indices=(0, 1, 2, 3)),
        "swin_t",
        ("features",),
    ),
    "ConvNeXt-T": (
        dict(type="mmcls.ConvNeXt", arch="tiny", out_indices=[0, 1, 2, 3], drop_path_rate=0.4,
             layer_scale_init_value=1.0, gap_before_final_norm=False),
        "convnext_tiny",
        ("features",),
    ),
}  # fmt: skip


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def meta(h: int, w: int, pad_h: int, pad_w: int) -> dict:
    return dict(
        img_shape=(h, w, 3),
        ori_shape=(h, w, 3),
        pad_shape=(pad_h, pad_w, 3),
        scale_factor=torch.ones(4).numpy(),
        flip=False,
        flip_direction=None,
    )


def random_boxes(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * (size - 100)
    wh = 20 + torch.rand(n, 2, generator=gen) * 80
    return torch.cat([xy, xy + wh], 1)


def box_masks(boxes: torch.Tensor, size: int) -> np.ndarray:
    """One filled-rectangle mask per box (stand-in instance masks)."""
    masks = np.zeros((len(boxes), size, size), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes.round().int().tolist()):
        masks[i, y1:y2, x1:x2] = 1
    return masks


def ours(config: str, repeat: int) -> tuple[float, float]:
    cfg = load_config(ROOT / "configs" / config, environ={}).cfg
    cfg.model.backbone.init_cfg = None  # no ImageNet weights offline: v2's own random init
    model = build_detector(cfg.model)
    model.init_weights()  # e.g. RetinaNet's 0.01 prior on the class logits, as torchvision's
    model.eval()
    img = torch.randn(1, 3, 800, 1344)
    with torch.no_grad():
        infer = timed(lambda: model.simple_test(img, [meta(800, 1333, 800, 1344)]), repeat)
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randn(2, 3, 512, 512)
    boxes = [random_boxes(5, 512, gen) for _ in range(2)]
    labels = [torch.randint(0, 80, (5,), generator=gen) for _ in range(2)]
    model.train()

    def step() -> None:
        model.zero_grad()
        extra = {}
        if getattr(getattr(model, "roi_head", None), "with_mask", False):
            extra["gt_masks"] = [BitmapMasks(box_masks(b, 512), 512, 512) for b in boxes]
        losses = model.forward_train(imgs, [meta(512, 512, 512, 512)] * 2, boxes, labels, **extra)
        sum(
            v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k
        ).backward()

    return infer, timed(step, repeat)


def theirs(name: str, repeat: int) -> tuple[float, float]:
    import torchvision

    model = getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None)
    model.eval()
    img = [torch.randn(3, 800, 1333)]
    with torch.no_grad():
        infer = timed(lambda: model(img), repeat)
    gen = torch.Generator().manual_seed(0)
    imgs = [torch.randn(3, 512, 512) for _ in range(2)]
    targets: list[dict[str, torch.Tensor]] = [
        dict(boxes=random_boxes(5, 512, gen), labels=torch.randint(1, 91, (5,), generator=gen))
        for _ in range(2)
    ]
    if "mask" in name:
        for target in targets:
            target["masks"] = torch.from_numpy(box_masks(target["boxes"], 512))
    model.transform.min_size = (512,)
    model.train()

    def step() -> None:
        model.zero_grad()
        sum(model(imgs, targets).values()).backward()

    return infer, timed(step, repeat)


def backbone_times(module: torch.nn.Module, repeat: int) -> tuple[float, float]:
    """(inference, train step) seconds of a module mapping an image batch to feature maps."""
    module.eval()
    img = torch.randn(1, 3, 800, 1344)
    with torch.no_grad():
        infer = timed(lambda: module(img), repeat)
    imgs = torch.randn(2, 3, 512, 512)
    module.train()

    def step() -> None:
        module.zero_grad()
        out = module(imgs)
        sum(o.sum() for o in (out if isinstance(out, tuple | list) else [out])).backward()

    return infer, timed(step, repeat)


def print_row(label: str, ours: tuple[float, float], theirs: tuple[float, float] | None) -> None:
    """One table row: (inference, train step) seconds, ours beside theirs when there is one."""
    (d_inf, d_train), none = ours, f"{'-':>12} {'-':>6}"
    if theirs is None:
        print(f"{label:<22} {d_inf * 1000:>9.0f}ms {none}   {d_train * 1000:>9.0f}ms {none}")
        return
    t_inf, t_train = theirs
    print(
        f"{label:<22} {d_inf * 1000:>9.0f}ms {t_inf * 1000:>10.0f}ms {d_inf / t_inf:>6.2f}   "
        f"{d_train * 1000:>9.0f}ms {t_train * 1000:>10.0f}ms {d_train / t_train:>6.2f}"
    )


def backbone_rows(only: list[str] | None, repeat: int) -> None:
    import torchvision

    rows = {
        k: v for k, v in BACKBONES.items() if not only or any(w.lower() in k.lower() for w in only)
    }
    if rows:
        head = f"{'detforge':>11} {'torchvision':>12} {'ratio':>6}"
        infer, train = "inference, batch 1, 1344x800", "train step, batch 2, 512x512"
        print(f"\n{'':<22} {infer:^31}   {train:^31}")
        print(f"{'backbone':<22} {head}   {head}")
    for label, (cfg, tv_name, parts) in rows.items():
        net = build_module(cfg, MODELS)
        net.init_weights()
        theirs = None
        if tv_name is not None:
            tv_model = getattr(torchvision.models, tv_name)(weights=None)
            tv_net = torch.nn.Sequential(*(getattr(tv_model, part) for part in parts))
            theirs = backbone_times(tv_net, repeat)
        print_row(label, backbone_times(net, repeat), theirs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--only", nargs="+", help="run only models whose name contains a word")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.repeat}")
    head = f"{'detforge':>11} {'torchvision':>12} {'ratio':>6}"
    print(f"{'':<22} {'inference, batch 1, 1333x800':^31}   {'train step, batch 2, 512x512':^31}")
    print(f"{'model':<22} {head}   {head}")
    for label, (config, tv_name) in CONFIGS.items():
        if args.only and not any(word.lower() in label.lower() for word in args.only):
            continue
        if not (ROOT / "configs" / config).is_file():
            print(f"{label:<22} (config {config} not in this checkout)")
            continue
        print_row(
            label, ours(config, args.repeat), theirs(tv_name, args.repeat) if tv_name else None
        )
    backbone_rows(args.only, args.repeat)


if __name__ == "__main__":
    main()
