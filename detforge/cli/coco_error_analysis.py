"""``detforge coco-error-analysis RESULTS.json OUT_DIR --ann ANN.json``: where the COCO AP is
lost (v2's ``tools/analysis_tools/coco_error_analysis.py``, Detectron's error breakdown).

For each category and for all classes, per area range (all, small, medium, large), draws the
precision/recall curves C75, C50, Loc (IoU 0.1), Sim (supercategory confusion removed), Oth
(all class confusion removed), BG (all false positives removed) and FN into
``OUT_DIR/<type>/<type>-<category>-<area>.png``, with each AP in the legend, and writes the
APs to ``OUT_DIR/<type>/ap_breakdown.csv``. ``--extraplots`` adds AP bar plots and plots of
the GT areas. See :mod:`detforge.analysis.coco_errors` for the exact rules.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "coco-error-analysis",
        help="COCO error breakdown plots (C75/C50/Loc/Sim/Oth/BG/FN)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("result", help="COCO results JSON (detforge test --format-only)")
    parser.add_argument("out_dir", help="directory to save the analysis figures")
    parser.add_argument(
        "--ann",
        default="data/coco/annotations/instances_val2017.json",
        help="COCO annotation file the results belong to",
    )
    parser.add_argument(
        "--types",
        type=str,
        nargs="+",
        default=["bbox"],
        choices=["bbox", "segm"],
        help="result types to analyse",
    )
    parser.add_argument(
        "--extraplots", action="store_true", help="also AP bar plots and GT area plots"
    )
    parser.add_argument(
        "--areas",
        type=int,
        nargs="+",
        default=[1024, 9216, 10000000000],
        help="upper bounds of the small, medium and all area ranges",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.coco_errors import ERROR_TYPES, analyze_results

    try:
        summary = analyze_results(
            args.result,
            args.ann,
            res_types=args.types,
            out_dir=args.out_dir,
            extraplots=args.extraplots,
            areas=args.areas,
        )
    except ValueError as exc:
        raise SystemExit(f"detforge coco-error-analysis: {exc}") from None
    for iou_type, per_class in summary.items():
        print(f"{iou_type} (all classes): " + "  ".join(ERROR_TYPES))
        for area, aps in per_class["allclass"].items():
            values = "  ".join("  n/a" if v != v else f"{v:.3f}" for v in aps.values())
            print(f"  {area:>8}: {values}")
        print(f"figures and ap_breakdown.csv in {args.out_dir}/{iou_type}")
    return 0
