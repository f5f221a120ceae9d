"""``detforge analyze-anchors CONFIG``: do the configured anchors fit the training boxes?

Runs the training set through its pipeline (formatting steps skipped) and, for every
ground-truth box, takes the best IoU with any anchor of the model's anchor generator
(``model.rpn_head`` or ``model.bbox_head``) on that image's padded shape. Prints, for all
boxes and by size (small < 32², medium, large) and aspect-ratio (h/w) bucket, the share
whose best IoU is below the assigner's ``pos_iou_thr`` and ``min_pos_iou``, and writes
``anchor_iou_hist.png`` and ``anchor_analysis.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "analyze-anchors",
        help="best IoU of each training box with the configured anchors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="train config file")
    parser.add_argument("--max-images", type=int, default=None, help="stop after N samples")
    parser.add_argument("--out", default=None, help="folder for the histogram and the JSON")
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.anchors import (
        anchor_coverage,
        assigner_thresholds,
        find_anchor_generator,
        format_coverage,
        plot_iou_histogram,
    )
    from detforge.analysis.browse import skip_pipeline_steps
    from detforge.config import load_config
    from detforge.datasets.builder import build_dataset
    from detforge.models.task_modules import prior_generators  # noqa: F401  (registers them)
    from detforge.registry import TASK_UTILS, build_module

    if args.max_images is not None and args.max_images < 1:
        raise SystemExit(
            f"detforge analyze-anchors: --max-images must be >= 1, got {args.max_images}"
        )
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    try:
        head, generator_cfg = find_anchor_generator(cfg.model)
        skip_pipeline_steps(cfg.data.train)
    except KeyError as exc:
        raise SystemExit(f"detforge analyze-anchors: {exc.args[0]}") from None
    generator = build_module(dict(generator_cfg), TASK_UTILS)
    thresholds = assigner_thresholds(cfg, head)
    if not thresholds:
        print(f"no pos_iou_thr/min_pos_iou in the assigner of {head}: reporting IoUs only")
    dataset = build_dataset(cfg.data.train)
    while hasattr(dataset, "dataset") and not hasattr(dataset, "data_infos"):
        dataset = dataset.dataset  # RepeatDataset / ClassBalancedDataset: each image once
    coverage = anchor_coverage(dataset, generator, thresholds, max_images=args.max_images)
    print(
        f"model.{head}.anchor_generator: {type(generator).__name__}, "
        f"{generator.num_base_priors[0]} anchors per cell, strides "
        f"{[s[0] for s in generator.strides]}"
    )
    print(f"{len(coverage.ious)} ground-truth boxes in {coverage.num_images} images")
    print(format_coverage(coverage))
    if args.out is not None:
        out = Path(args.out)
        hist = plot_iou_histogram(coverage, out / "anchor_iou_hist.png")
        report = dict(
            head=head,
            thresholds=thresholds,
            num_images=coverage.num_images,
            buckets=coverage.summary(),
        )
        (out / "anchor_analysis.json").write_text(json.dumps(report, indent=2))
        print(f"wrote {hist} and {out / 'anchor_analysis.json'}")
    return 0
