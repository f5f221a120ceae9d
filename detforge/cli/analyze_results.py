"""``detforge analyze-results CONFIG RESULTS.pkl SHOW_DIR``: the best and worst test images by
per-image mAP (v2's ``tools/analysis_tools/analyze_results.py``).

Each image's mAP (VOC-style, averaged over IoU 0.50:0.95) is computed against ``data.test``;
the ``--topk`` best are drawn into ``SHOW_DIR/good`` and the ``--topk`` worst into
``SHOW_DIR/bad`` as ``<image stem>_<mAP><ext>``: GT above, predictions (score above
``--show-score-thr``) below, or both on one image with ``--overlay-gt-pred``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "analyze-results",
        help="draw the best and worst test images by per-image mAP",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="test config file")
    parser.add_argument("prediction_path", help="results.pkl of detforge test --out")
    parser.add_argument("show_dir", help="directory for the drawn images")
    parser.add_argument("--show", action="store_true", help="show each image in a window")
    parser.add_argument("--wait-time", type=float, default=0, help="seconds per shown image")
    parser.add_argument("--topk", type=int, default=20, help="how many best and worst images")
    parser.add_argument("--show-score-thr", type=float, default=0, help="score threshold")
    parser.add_argument(
        "--overlay-gt-pred", action="store_true", help="draw GT and predictions on one image"
    )
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.analyze_results import (
        per_image_map,
        save_ranked_images,
        select_topk,
        train_loading_pipeline,
    )
    from detforge.analysis.results import ResultsError, build_test_dataset, load_results
    from detforge.config import load_config

    if args.topk <= 0:
        raise SystemExit(f"detforge analyze-results: --topk must be positive, got {args.topk}")
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    try:
        pipeline = train_loading_pipeline(cfg)
    except ValueError as exc:
        raise SystemExit(f"detforge analyze-results: {exc}") from None
    dataset = build_test_dataset(cfg, pipeline=pipeline)
    try:
        results = load_results(args.prediction_path, num_images=len(dataset))
    except ResultsError as exc:
        raise SystemExit(f"detforge analyze-results: {exc}") from None
    if results and isinstance(results[0], dict):
        raise SystemExit("detforge analyze-results: panoptic results are not supported")
    good, bad = select_topk(per_image_map(dataset, results), args.topk)
    for name, ranked in (("good", good), ("bad", bad)):
        out_dir = os.path.abspath(os.path.join(args.show_dir, name))
        save_ranked_images(
            dataset,
            results,
            ranked,
            out_dir,
            score_thr=args.show_score_thr,
            overlay_gt_pred=args.overlay_gt_pred,
            show=args.show,
            wait_time=args.wait_time,
        )
        scores = ", ".join(f"{s:.3f}" for _, s in ranked)
        print(f"{name}: {len(ranked)} images in {out_dir} (mAP {scores})")
    return 0
