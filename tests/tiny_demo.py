"""A tiny two-class dataset and RetinaNet config for fast tests (test-only helpers).

:func:`make_synthetic_coco` writes axis-aligned rectangles and ellipses on plain backgrounds
(:mod:`detforge.datasets.synthetic` without clutter) and :func:`demo_config_text` a matching
RetinaNet (ResNet-18 at 16 base channels) config as Python text, so a test can train a real
detector for one epoch in seconds. ``make demo`` itself (:mod:`detforge.cli.demo`) uses the
shipped ``configs/demo/`` config and the cluttered three-class dataset.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TINY_CLASSES", "demo_config_text", "make_synthetic_coco"]

#: The two classes of the tiny dataset.
TINY_CLASSES = ("rectangle", "ellipse")


def make_synthetic_coco(
    out_dir: str | Path,
    num_train: int = 24,
    num_val: int = 8,
    size: int = 128,
    max_objects: int = 3,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the tiny two-class dataset in COCO format.

    Layout: ``out_dir/images/{train,val}_NNNN.png``, ``out_dir/train.json``,
    ``out_dir/val.json``; each ``size x size`` image holds 1 to ``max_objects`` filled
    rectangles or ellipses.

    Returns:
        ``dict(root, images, train, val)`` paths.

    Example:
        >>> import tempfile, json
        >>> paths = make_synthetic_coco(tempfile.mkdtemp(), num_train=2, num_val=1, size=64)
        >>> coco = json.loads(paths['train'].read_text())
        >>> len(coco['images']), [c['name'] for c in coco['categories']]
        (2, ['rectangle', 'ellipse'])
    """
    from detforge.datasets.synthetic import make_synthetic_coco as make_shapes

    return make_shapes(
        out_dir, num_train=num_train, num_val=num_val, size=size, max_objects=max_objects,
        seed=seed, clutter=False, classes=TINY_CLASSES,
    )  # fmt: skip


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
classes = {TINY_CLASSES!r}
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
        type='RetinaHead', num_classes={len(TINY_CLASSES)}, in_channels=32, stacked_convs=2,
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
