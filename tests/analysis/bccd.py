"""A four-image BCCD test set and crafted v2 results on it, for the analysis-tool tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CLASSES = ("RBC", "WBC", "Platelets")
# BloodImage id -> GT count per class (RBC, WBC, Platelets), read from the XML files.
IMAGES = {
    "BloodImage_00007": (17, 1, 0),
    "BloodImage_00011": (17, 1, 1),
    "BloodImage_00015": (14, 1, 1),
    "BloodImage_00016": (11, 1, 1),
}


def write_bccd_config(root: Path, shared_data: Path, flip_ratio: float = 1.0) -> Path:
    """``root/bccd4.py``: XMLDataset on the four images above (train and test alike)."""
    bccd = shared_data / "bccd" / "BCCD"
    split = root / "bccd4.txt"
    split.write_text("".join(f"{name}\n" for name in IMAGES))
    config = root / "bccd4.py"
    config.write_text(f"""\
dataset_type = 'XMLDataset'
classes = {CLASSES!r}
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', img_scale=(320, 240), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio={flip_ratio}),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(320, 240), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True),
        dict(type='RandomFlip'),
        dict(type='Normalize', **img_norm_cfg),
        dict(type='Pad', size_divisor=32),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img']),
    ]),
]
common = dict(type=dataset_type, classes=classes, ann_file={str(split)!r},
              img_prefix={str(bccd)!r})
data = dict(samples_per_gpu=1, workers_per_gpu=0,
            train=dict(**common, pipeline=train_pipeline),
            val=dict(**common, pipeline=test_pipeline),
            test=dict(**common, pipeline=test_pipeline))
evaluation = dict(interval=1, metric='mAP', save_best='auto')
""")
    return config


def perfect_results(dataset) -> list[list[np.ndarray]]:
    """Every GT box as a detection of its class with score 0.9."""
    results = []
    for i in range(len(dataset)):
        ann = dataset.get_ann_info(i)
        per_class = []
        for c in range(len(CLASSES)):
            boxes = ann["bboxes"][ann["labels"] == c]
            scores = np.full((len(boxes), 1), 0.9, np.float32)
            per_class.append(np.hstack([boxes, scores]).astype(np.float32))
        results.append(per_class)
    return results


def dump(results: list, path: Path) -> Path:
    with open(path, "wb") as f:
        pickle.dump(results, f)
    return path
