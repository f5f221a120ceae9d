"""``detforge robustness-eval RESULTS``: P, mPC and rPC from ``test-robustness``'s
``*_results.pkl`` (v2's ``tools/analysis_tools/robustness_eval.py``).

``P`` is the performance on clean data (severity 0), ``mPC`` the mean over corruptions and
severities 1-5 (``--aggregate benchmark``: the 15 benchmark corruptions; ``all``: every one
in the file), ``rPC = mPC / P``. COCO-style files give the 12 COCO numbers (or ``--metric``
ones) per ``--task``; VOC-style files the class-mean AP50.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]

_METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "robustness-eval",
        help="P, mPC and rPC from test-robustness results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("filename", help="the *_results.pkl written by test-robustness")
    parser.add_argument(
        "--dataset", choices=["coco", "voc", "cityscapes"], default="coco", help="dataset type"
    )
    parser.add_argument(
        "--task",
        type=str,
        nargs="+",
        choices=["bbox", "segm"],
        default=["bbox"],
        help="task to report",
    )
    parser.add_argument(
        "--metric",
        nargs="+",
        choices=[None, *_METRICS],
        default=None,
        help="metrics to report (default: all 12 COCO numbers)",
    )
    parser.add_argument(
        "--prints",
        type=str,
        nargs="+",
        choices=["P", "mPC", "rPC"],
        default="mPC",
        help="corruption benchmark metrics to print",
    )
    parser.add_argument(
        "--aggregate",
        type=str,
        choices=["all", "benchmark"],
        default="benchmark",
        help="aggregate over all or the benchmark corruptions",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import os

    from detforge.analysis.robustness import format_robustness, load_aggregated

    aggregated = load_aggregated(args.filename)
    dataset = "voc" if args.dataset == "voc" else "coco"
    prints = [args.prints] if isinstance(args.prints, str) else args.prints
    metrics = [m for m in args.metric or [] if m is not None] or None
    if dataset == "voc":
        if args.task != ["bbox"]:
            print("Only bbox analysis is supported for Pascal VOC\nWill report bbox results\n")
        if metrics not in (None, ["AP"], ["AP50"]):
            print("Only the AP50 metric is supported for Pascal VOC\nWill report AP50 metric\n")
    print(f"\nmodel: {os.path.basename(args.filename)}")
    for task in ["bbox"] if dataset == "voc" else args.task:
        try:
            text = format_robustness(
                aggregated,
                dataset=dataset,
                task=task,
                metrics=metrics,
                prints=prints,
                aggregate=args.aggregate,
            )
        except (KeyError, ValueError) as exc:
            raise SystemExit(f"detforge robustness-eval: {args.filename}: {exc}") from None
        print(text)
    return 0
