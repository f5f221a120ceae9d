"""``detforge optimize-anchors CONFIG``: fit YOLO anchor sizes to the training boxes (v2's
``tools/analysis_tools/optimize_anchors.py``).

The config's ``model.bbox_head.anchor_generator`` must be a ``YOLOAnchorGenerator``; its
``base_sizes`` give how many anchors to fit. Boxes are scaled so each image's longer side
matches ``--input-shape W H``. ``--algorithm k-means`` clusters with ``1 - IoU``;
``differential_evolution`` (the default, needs scipy) maximises the mean best IoU. The
anchors, sorted by area, go to ``--output-dir/anchor_optimize_result.json`` as v2 wrote them.
"""

from __future__ import annotations

import argparse
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "optimize-anchors",
        help="fit YOLO anchor sizes to the training set (k-means or differential evolution)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="train config file")
    parser.add_argument(
        "--device", default="cpu", help="accepted for v2 compatibility; runs on the CPU"
    )
    parser.add_argument(
        "--input-shape", type=int, nargs="+", default=[608, 608], help="input image size: W H"
    )
    parser.add_argument(
        "--algorithm",
        default="differential_evolution",
        choices=["k-means", "differential_evolution"],
        help="optimisation algorithm",
    )
    parser.add_argument("--iters", type=int, default=1000, help="maximum iterations")
    parser.add_argument("--output-dir", default=None, help="where to write the result JSON")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the optimiser")
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.anchor_optimizer import (
        collect_box_sizes,
        differential_evolution_anchors,
        kmeans_anchors,
        num_anchors_per_level,
        save_anchors,
    )
    from detforge.config import load_config
    from detforge.datasets.builder import build_dataset

    shape = list(args.input_shape)
    if len(shape) == 1:
        shape = shape * 2
    if len(shape) != 2 or min(shape) <= 0:
        raise SystemExit(f"detforge optimize-anchors: --input-shape takes W H > 0, got {shape}")
    if args.iters < 1:
        raise SystemExit(f"detforge optimize-anchors: --iters must be >= 1, got {args.iters}")
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    head = cfg.model.get("bbox_head") or {}
    try:
        per_level = num_anchors_per_level(head.get("anchor_generator") or {})
    except ValueError as exc:
        raise SystemExit(f"detforge optimize-anchors: {exc}") from None
    train_cfg = cfg.data.train
    while "dataset" in train_cfg and "ann_file" not in train_cfg:
        train_cfg = train_cfg["dataset"]  # RepeatDataset and friends: the annotations inside
    dataset = build_dataset(train_cfg)
    whs, _ = collect_box_sizes(dataset, shape)
    num = sum(per_level)
    print(f"{len(whs)} boxes; fitting {num} anchors with {args.algorithm}")
    if args.algorithm == "k-means":
        anchors, mean_iou = kmeans_anchors(whs, num, iters=args.iters, seed=args.seed)
    else:
        anchors, mean_iou = differential_evolution_anchors(
            whs, num, shape, iters=args.iters, seed=args.seed
        )
    rounded = [[round(float(w)), round(float(h))] for w, h in anchors]
    print(f"Anchor optimize result:{rounded}")
    print(f"mean best IoU of the boxes with these anchors: {mean_iou:.4f}")
    levels, start = [], len(rounded)
    for count in per_level:  # base_sizes lists the coarsest level (largest anchors) first
        levels.append([tuple(a) for a in rounded[start - count : start]])
        start -= count
    print(f"as base_sizes: {levels}")
    if args.output_dir:
        path = save_anchors(anchors, args.output_dir, per_level)
        print(f"Result saved in {path}")
    return 0
