# BCCD blood-cell detection (Pascal VOC XML; 640x480 images; RBC, WBC, Platelets):
# train on ImageSets/Main/train.txt (205 images), evaluate VOC AP50 on test.txt (72).
# data_root is relative to the working directory (the repository root), where
# `python tools/misc/download_dataset.py --dataset-name bccd` puts it; point it elsewhere with
# DETFORGE_DATASETS=/path/to/bccd/ (every data path containing data_root follows).
dataset_type = 'XMLDataset'
data_root = 'data/bccd/'
classes = ('RBC', 'WBC', 'Platelets')
img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', img_scale=(320, 240), keep_ratio=True),
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
        img_scale=(320, 240),
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ])
]
data = dict(
    samples_per_gpu=2,
    workers_per_gpu=2,
    train=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'BCCD/ImageSets/Main/train.txt',
        img_prefix=data_root + 'BCCD/',
        pipeline=train_pipeline),
    val=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'BCCD/ImageSets/Main/test.txt',
        img_prefix=data_root + 'BCCD/',
        pipeline=test_pipeline),
    test=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'BCCD/ImageSets/Main/test.txt',
        img_prefix=data_root + 'BCCD/',
        pipeline=test_pipeline))
evaluation = dict(interval=1, metric='mAP')
