"""Crafted COCO detections for the error-analysis tests (perturbed tiny_coco GT)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def tiny_coco_ann(shared_data: Path) -> Path:
    return shared_data / "tiny_coco" / "small_coco" / "instances_train2017_small.json"


def perturbed_results(ann_file: Path, out: Path, seed: int = 0) -> Path:
    """Per GT: 70% found with jitter, 10% with a wrong class, 20% missed; plus background
    boxes. Scores are random, so C75 < C50 < Loc and confusions show up."""
    rng = np.random.default_rng(seed)
    data = json.loads(ann_file.read_text())
    cat_ids = [c["id"] for c in data["categories"]]
    dets = []
    for ann in data["annotations"]:
        if ann.get("iscrowd"):
            continue
        x, y, w, h = ann["bbox"]
        draw = rng.random()
        if draw < 0.2:
            continue
        cat = ann["category_id"] if draw < 0.9 else int(rng.choice(cat_ids))
        dx, dy = rng.uniform(-0.25, 0.25, 2) * (w, h)
        box = [x + dx, y + dy, w * rng.uniform(0.8, 1.2), h * rng.uniform(0.8, 1.2)]
        dets.append(dict(image_id=ann["image_id"], category_id=cat, bbox=box,
                         score=float(rng.uniform(0.05, 1.0))))  # fmt: skip
    for img in data["images"]:
        for _ in range(2):
            w, h = rng.uniform(10, 60, 2)
            x, y = rng.uniform(0, img["width"] - w), rng.uniform(0, img["height"] - h)
            dets.append(dict(image_id=img["id"], category_id=int(rng.choice(cat_ids)),
                             bbox=[x, y, w, h], score=float(rng.uniform(0.05, 0.6))))  # fmt: skip
    out.write_text(json.dumps(dets))
    return out
