"""``detforge hard-examples CONFIG RESULTS.pkl OUT_DIR``: review the images a model gets wrong.

Every test image's detections (score ``>= --score-thr`` of their class) are matched greedily
by score to GT of the same class (IoU, or IoF with ``--match-mode iof``) and sorted into true
positives, false positives, missed GT and poorly localised boxes (matched with an overlap
under ``--pos-iou-thr``); the exact rules are in :mod:`detforge.analysis.hard_examples`.
Writes ``OUT_DIR/images/<image>`` for every image with a mistake (each category in its own
colour), ``OUT_DIR/index.html`` sorted by badness (``fp + missed + 0.5 * poor_loc``, worst
first) and ``OUT_DIR/summary.csv`` (one row per image: file, n_gt, n_det, tp, fp, missed,
poor_loc, badness).

``--score-thr`` takes one number for all classes or ``CLASS=THR`` items, ``*=THR`` being the
default of the classes not named (0.3 when not given), e.g. ``--score-thr RBC=0.5 *=0.3``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "hard-examples",
        help="draw and rank the test images with false positives, misses or poor boxes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="test config file")
    parser.add_argument("prediction_path", help="results.pkl of detforge test --out")
    parser.add_argument("out_dir", help="directory for the images, index.html and summary.csv")
    parser.add_argument(
        "--score-thr",
        nargs="+",
        default=None,
        metavar="THR|CLASS=THR",
        help="score threshold: one number, or CLASS=THR items with *=THR the default (0.3)",
    )
    parser.add_argument("--match-mode", choices=["iou", "iof"], default="iou")
    parser.add_argument(
        "--pos-iou-thr", type=float, default=0.1, help="overlap of a well localised match"
    )
    parser.add_argument(
        "--min-pos-iou", type=float, default=1e-3, help="overlap from which boxes match at all"
    )
    parser.add_argument(
        "--simple", action="store_true", help="first drop overlapping same-class detections"
    )
    parser.add_argument("--clean-thr", type=float, default=0.3, help="overlap for --simple")
    parser.add_argument(
        "--clean-mode",
        choices=["min", "max"],
        default="min",
        help="--simple divides the intersection by the smaller (min) or larger (max) area",
    )
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.hard_examples import match_dataset, parse_score_thr, resolve_score_thr
    from detforge.analysis.hard_examples_report import write_report
    from detforge.analysis.results import ResultsError, build_test_dataset, load_results
    from detforge.config import load_config
    from detforge.utils.image import ImageLoadError

    if not 0 <= args.min_pos_iou <= args.pos_iou_thr:
        raise SystemExit(
            f"detforge hard-examples: need 0 <= --min-pos-iou ({args.min_pos_iou}) <= "
            f"--pos-iou-thr ({args.pos_iou_thr})"
        )
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    dataset = build_test_dataset(cfg)
    classes = tuple(dataset.CLASSES)
    try:
        score_thr = resolve_score_thr(parse_score_thr(args.score_thr), classes)
        results = load_results(args.prediction_path, num_images=len(dataset))
        annotations = [dataset.get_ann_info(i) for i in range(len(dataset))]
        matches = match_dataset(
            annotations,
            results,
            len(classes),
            score_thr=score_thr,
            match_mode=args.match_mode,
            pos_iou_thr=args.pos_iou_thr,
            min_pos_iou=args.min_pos_iou,
            simple=args.simple,
            clean_thr=args.clean_thr,
            clean_mode=args.clean_mode,
        )
    except (ResultsError, ValueError) as exc:
        raise SystemExit(f"detforge hard-examples: {exc}") from None
    files = [str(info["filename"]) for info in dataset.data_infos]
    prefix = getattr(dataset, "img_prefix", None) or ""
    paths = [os.path.join(prefix, f) if prefix else f for f in files]
    try:
        written = write_report(files, matches, args.out_dir, classes, image_paths=paths)
    except ImageLoadError as exc:
        raise SystemExit(f"detforge hard-examples: {exc}") from None
    hard = sum(m.badness > 0 for m in matches)
    totals = {
        key: sum(getattr(m, key) for m in matches)
        for key in ("n_gt", "n_det", "tp", "fp", "missed", "poor_loc")
    }
    print(
        f"{hard} of {len(matches)} images have mistakes; "
        + ", ".join(f"{k} {v}" for k, v in totals.items())
    )
    print(f"index: {written['html']}\nsummary: {written['csv']}\nimages: {written['images']}")
    return 0
