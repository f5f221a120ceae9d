"""``detforge data synth OUT_DIR``: write the synthetic shapes dataset in COCO format.

The dataset behind ``make demo`` and ``configs/demo/``: ``OUT_DIR/images/{train,val}_NNNN.png``,
``OUT_DIR/train.json``, ``OUT_DIR/val.json`` (boxes, visible-mask RLE segmentations, three
classes: circle, square, triangle) and ``OUT_DIR/synthetic.json`` (the arguments). The same
arguments always write the same files.

Example:
    detforge data synth work_dirs/demo/data --num-train 480 --num-val 60
    detforge train configs/demo/demo_atss_r18_tiny_18e_shapes.py
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "data",
        help="dataset utilities (synth: generate the synthetic shapes dataset)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK")
    tasks.required = True
    synth = tasks.add_parser("synth", help="write the synthetic shapes dataset (COCO format)")
    synth.add_argument("out_dir", help="output folder")
    synth.add_argument("--num-train", type=_count, default=480, help="training images")
    synth.add_argument("--num-val", type=_count, default=60, help="validation images")
    synth.add_argument("--size", type=int, default=128, help="image side in pixels (>= 32)")
    synth.add_argument("--max-objects", type=int, default=6, help="most shapes per image")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed")
    synth.add_argument("--no-clutter", action="store_true", help="plain backgrounds")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.datasets.synthetic import make_synthetic_coco

    try:
        paths = make_synthetic_coco(
            args.out_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            size=args.size,
            max_objects=args.max_objects,
            seed=args.seed,
            clutter=not args.no_clutter,
        )
    except ValueError as exc:
        raise SystemExit(f"detforge data synth: {exc}") from None
    print(f"wrote {args.num_train} train and {args.num_val} val images to {paths['images']}")
    print(f"annotations: {paths['train']} and {paths['val']}")
    return 0
