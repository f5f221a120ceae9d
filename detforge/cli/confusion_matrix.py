"""``detforge confusion-matrix CONFIG RESULTS.pkl SAVE_DIR``: the detection confusion matrix
(v2's ``tools/analysis_tools/confusion_matrix.py``).

Rows are GT classes and columns predicted classes, each with a last ``background`` entry
(false positives in the background row, missed GT in the background column). Writes
``SAVE_DIR/confusion_matrix.png`` (rows normalised to percent, v2's figure) and the raw counts
as ``confusion_matrix.npy`` and ``confusion_matrix.csv``.
"""

from __future__ import annotations

import argparse
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "confusion-matrix",
        help="confusion matrix of saved detection results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="test config file")
    parser.add_argument("prediction_path", help="results.pkl of detforge test --out")
    parser.add_argument("save_dir", help="directory for the plot and the matrix")
    parser.add_argument("--show", action="store_true", help="show the plot in a window")
    parser.add_argument("--color-theme", default="plasma", help="matplotlib colour map")
    parser.add_argument("--score-thr", type=float, default=0.3, help="detection score threshold")
    parser.add_argument("--tp-iou-thr", type=float, default=0.5, help="IoU of a match")
    parser.add_argument("--nms-iou-thr", type=float, default=None, help="per-class NMS first")
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.confusion import (
        calculate_confusion_matrix,
        plot_confusion_matrix,
        save_confusion_matrix,
    )
    from detforge.analysis.results import ResultsError, build_test_dataset, load_results
    from detforge.config import load_config

    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    dataset = build_test_dataset(cfg)
    try:
        results = load_results(args.prediction_path, num_images=len(dataset))
    except ResultsError as exc:
        raise SystemExit(f"detforge confusion-matrix: {exc}") from None
    classes = tuple(dataset.CLASSES)
    try:
        matrix = calculate_confusion_matrix(
            dataset,
            results,
            len(classes),
            score_thr=args.score_thr,
            nms_iou_thr=args.nms_iou_thr,
            tp_iou_thr=args.tp_iou_thr,
        )
    except ValueError as exc:
        raise SystemExit(f"detforge confusion-matrix: {exc}") from None
    labels = (*classes, "background")
    npy, csv_path = save_confusion_matrix(matrix, labels, args.save_dir)
    png = plot_confusion_matrix(
        matrix, labels, save_dir=args.save_dir, show=args.show, color_theme=args.color_theme
    )
    print(f"confusion matrix written to {png}, {npy} and {csv_path}")
    return 0
