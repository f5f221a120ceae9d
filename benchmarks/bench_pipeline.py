"""Throughput of the COCO training pipeline, images per second (not part of `make test`).

Load → Resize(1333, 800) → RandomFlip → Normalize → Pad(32) → DefaultFormatBundle → Collect,
then the collate, through a DataLoader with 0 and 2 workers, on real images: tiny_coco (16 COCO
photos at full resolution) and coco128 (128 COCO photos, long side 640, converted from YOLO txt
to COCO json in a temporary folder).

    python benchmarks/bench_pipeline.py [--epochs 3] [--batch-size 2] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detforge.config import Config  # noqa: E402
from detforge.datasets import build_dataloader, build_dataset  # noqa: E402
from detforge.datasets.converters.yolo import yolo_to_coco  # noqa: E402

SHARED = Path(os.environ.get("DETFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def tiny_coco() -> dict:
    root = SHARED / "tiny_coco" / "small_coco"
    return dict(
        ann_file=str(root / "instances_train2017_small.json"),
        img_prefix=str(root / "train_2017_small"),
    )


def coco128(tmp: str) -> dict:
    """coco128's YOLO labels converted to a COCO json in ``tmp``."""
    root = SHARED / "coco128" / "datasets" / "coco128"
    names_file = SHARED / "weights" / "fastestdet" / "configs" / "coco.names"
    names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()]
    out = Path(tmp) / "coco128.json"
    yolo_to_coco(
        root / "images" / "train2017", names, out, labels_dir=root / "labels" / "train2017"
    )
    return dict(
        ann_file=str(out), img_prefix=str(root / "images" / "train2017"), classes=tuple(names)
    )


def measure(data_args: dict, workers: int, batch_size: int, epochs: int) -> tuple[int, float]:
    base = Config.fromfile(ROOT / "configs/_base_/datasets/coco_detection.py")
    cfg = dict(type="CocoDataset", pipeline=base.to_dict()["train_pipeline"], **data_args)
    dataset = build_dataset(cfg)
    loader = build_dataloader(
        dataset,
        batch_size,
        workers,
        dist=False,
        shuffle=True,
        seed=0,
        persistent_workers=workers > 0,
    )
    next(iter(loader))  # warm-up: worker start, first decode
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += batch["img"].shape[0]
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"tiny_coco (full-res)": tiny_coco(), "coco128 (640 px)": coco128(tmp)}
        print(f"{'dataset':<22} {'workers':>7} {'images':>7} {'seconds':>8} {'img/s':>7}")
        for name, data_args in sets.items():
            for workers in args.workers:
                count, seconds = measure(data_args, workers, args.batch_size, args.epochs)
                print(f"{name:<22} {workers:>7} {count:>7} {seconds:>8.2f} {count / seconds:>7.1f}")


if __name__ == "__main__":
    main()
