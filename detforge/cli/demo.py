"""``detforge demo``: the end-to-end demo behind ``make demo``.

It generates a small deterministic COCO-format dataset of coloured rectangles and ellipses
(two classes), writes a tiny RetinaNet config for it, trains on CPU with ``detforge train``,
tests the last checkpoint with ``detforge test --eval bbox --show-dir`` and prints the bbox mAP
and where the work dir and the drawn predictions are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["CLASSES", "add_parser", "demo_config_text", "make_synthetic_coco", "run"]

CLASSES = ("rectangle", "ellipse")


def _draw_image(
    rng: np.random.Generator, size: int, max_objects: int
) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    background = rng.integers(0, 60, size=3)
    img = np.clip(
        background[None, None, :] + rng.normal(0, 8, size=(size, size, 3)), 0, 255
    ).astype(np.uint8)
    objects: list[tuple[int, list[float]]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(0, len(CLASSES)))
        w, h = (int(v) for v in rng.integers(size // 8, size // 2 - 4, size=2))
        x1 = int(rng.integers(0, size - w))
        y1 = int(rng.integers(0, size - h))
        colour = tuple(int(c) for c in rng.integers(90, 256, size=3))
        if label == 0:
            cv2.rectangle(img, (x1, y1), (x1 + w - 1, y1 + h - 1), colour, thickness=-1)
        else:
            centre = (x1 + w // 2, y1 + h // 2)
            cv2.ellipse(img, centre, (w // 2, h // 2), 0, 0, 360, colour, thickness=-1)
            w, h = 2 * (w // 2), 2 * (h // 2)
            x1, y1 = centre[0] - w // 2, centre[1] - h // 2
        objects.append((label, [float(x1), float(y1), float(w), float(h)]))
    return img, objects


def make_synthetic_coco(
    out_dir: str | Path,
    num_train: int = 24,
    num_val: int = 8,
    size: int = 128,
    max_objects: int = 3,
    seed: int = 0,
) -> dict[str, Path]:
    """Write a deterministic two-class detection dataset in COCO format.

    Layout: ``out_dir/images/{train,val}_NNNN.png``, ``out_dir/train.json``,
    ``out_dir/val.json``. Each ``size x size`` image holds 1 to ``max_objects`` filled shapes:
    class ``rectangle`` (axis-aligned box) or ``ellipse`` (bbox = its bounding box).

    Returns:
        ``dict(root, images, train, val)`` paths.

    Example:
        >>> import tempfile, json
        >>> paths = make_synthetic_coco(tempfile.mkdtemp(), num_train=2, num_val=1, size=64)
        >>> len(json.loads(paths['train'].read_text())['images'])
        2
    """
    from detforge.datasets.converters._coco import CocoBuilder, write_json

    root = Path(out_dir)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths: dict[str, Path] = dict(root=root, images=images)
    for split, count in (("train", num_train), ("val", num_val)):
        builder = CocoBuilder(CLASSES)
        for index in range(count):
            img, objects = _draw_image(rng, size, max_objects)
            name = f"{split}_{index:04d}.png"
            if not cv2.imwrite(str(images / name), img):
                raise OSError(f"could not write {images / name}")
            image_id = builder.add_image(name, width=size, height=size)
            for label, bbox in objects:
                builder.add_annotation(image_id, builder.category_id(CLASSES[label]), bbox)
        paths[split] = write_json(builder.to_dict(), root / f"{split}.json")
    return paths


def demo_config_text(
    data_root: str | Path,
    max_epochs: int = 12,
    samples_per_gpu: int = 4,
    img_size: int = 128,
    lr: float = 0.002,
) -> str:
    """A v2 config (Python text) for a tiny RetinaNet (ResNet-18, 16 base channels) trained
    from scratch on :func:`make_synthetic_coco`'s dataset."""
    root = str(Path(data_root).resolve())
    return f"""\
dataset_type = 'CocoDataset'
data_root = {root + "/"!r}
classes = {CLASSES!r}
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', img_scale=({img_size}, {img_size}), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=({img_size}, {img_size}),
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ]),
]
data = dict(
    samples_per_gpu={samples_per_gpu},
    workers_per_gpu=0,
    train=dict(type=dataset_type, classes=classes, ann_file=data_root + 'train.json',
               img_prefix=data_root + 'images/', pipeline=train_pipeline),
    val=dict(type=dataset_type, classes=classes, ann_file=data_root + 'val.json',
             img_prefix=data_root + 'images/', pipeline=test_pipeline),
    test=dict(type=dataset_type, classes=classes, ann_file=data_root + 'val.json',
              img_prefix=data_root + 'images/', pipeline=test_pipeline))
evaluation = dict(interval={max_epochs}, metric='bbox')
model = dict(
    type='RetinaNet',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                  style='pytorch', init_cfg=None),
    neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=32, start_level=1,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        type='RetinaHead', num_classes={len(CLASSES)}, in_channels=32, stacked_convs=2,
        feat_channels=32,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2,
                              scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                              strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
optimizer = dict(type='AdamW', lr={lr}, weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(policy='step', warmup='linear', warmup_iters=10, warmup_ratio=0.1,
                 step=[{max(1, int(max_epochs * 0.75))}])
runner = dict(type='EpochBasedRunner', max_epochs={max_epochs})
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=5, hooks=[dict(type='TextLoggerHook')])
custom_hooks = [dict(type='NumClassCheckHook')]
dist_params = dict(backend='gloo')
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="train and evaluate a small detector on a generated dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--work-dir", default="work_dirs/demo", help="where everything goes")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs")
    parser.add_argument("--num-train", type=int, default=48, help="generated training images")
    parser.add_argument("--num-val", type=int, default=16, help="generated validation images")
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.cli.main import main

    work_dir = Path(args.work_dir)
    data = make_synthetic_coco(
        work_dir / "data", num_train=args.num_train, num_val=args.num_val, seed=args.seed
    )
    config = work_dir / "retinanet_tiny_demo.py"
    config.write_text(demo_config_text(data["root"], max_epochs=args.epochs), encoding="utf-8")
    train_dir = work_dir / "train"
    common = ["--device", "cpu"]
    code = main(["train", str(config), "--work-dir", str(train_dir), "--seed", str(args.seed),
                 "--no-validate", *common])  # fmt: skip
    if code:
        return code
    checkpoint = train_dir / f"epoch_{args.epochs}.pth"
    show_dir = work_dir / "predictions"
    code = main(["test", str(config), str(checkpoint), "--eval", "bbox", "--out",
                 str(work_dir / "results.pkl"), "--show-dir", str(show_dir),
                 "--work-dir", str(work_dir), *common])  # fmt: skip
    if code:
        return code
    evals = sorted(work_dir.glob("eval_*.json"))
    metric = json.loads(evals[-1].read_text())["metric"] if evals else {}
    drawn = sorted(show_dir.glob("*.png"))
    print(
        f"\ndetforge demo: bbox mAP = {metric.get('bbox_mAP', float('nan')):.3f}, "
        f"mAP@0.5 = {metric.get('bbox_mAP_50', float('nan')):.3f} "
        f"on {args.num_val} generated validation images"
    )
    print(f"  work dir:   {work_dir.resolve()}")
    print(f"  checkpoint: {checkpoint.resolve()}")
    if drawn:
        print(f"  drawn prediction: {drawn[0].resolve()} (all in {show_dir.resolve()})")
    return 0
