"""``detforge browse-dataset CONFIG``: draw the training GT after the pipeline (v2's
``tools/misc/browse_dataset.py``).

The steps named by ``--skip-type`` are removed from ``data.train``'s pipeline (by default the
formatting ones), then every sample is drawn — boxes, labels and masks as the augmentations
left them — into ``--output-dir`` and/or shown for ``--show-interval`` seconds.
"""

from __future__ import annotations

import argparse
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "browse-dataset",
        help="draw the training ground truth after the train pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="train config file")
    parser.add_argument(
        "--skip-type",
        type=str,
        nargs="+",
        default=["DefaultFormatBundle", "Normalize", "Collect"],
        help="pipeline steps to skip",
    )
    parser.add_argument("--output-dir", default=None, help="where to write the drawn images")
    parser.add_argument("--not-show", default=False, action="store_true", help="no window")
    parser.add_argument("--show-interval", type=float, default=2, help="seconds per image")
    parser.add_argument("--max-images", type=int, default=None, help="stop after N samples")
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.browse import browse_dataset, skip_pipeline_steps
    from detforge.config import load_config
    from detforge.datasets.builder import build_dataset

    if args.not_show and args.output_dir is None:
        raise SystemExit("detforge browse-dataset: with --not-show, give --output-dir")
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    train_cfg = cfg.data.train
    try:
        steps = skip_pipeline_steps(train_cfg, args.skip_type)
    except KeyError as exc:
        raise SystemExit(f"detforge browse-dataset: {exc.args[0]}") from None
    print(f"pipeline: {' -> '.join(steps)}")
    dataset = build_dataset(train_cfg)
    written = browse_dataset(
        dataset,
        output_dir=args.output_dir,
        show=not args.not_show,
        show_interval=args.show_interval,
        limit=args.max_images,
    )
    if args.output_dir is not None:
        print(f"wrote {len(written)} images to {args.output_dir}")
    return 0
