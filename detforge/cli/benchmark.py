"""``detforge benchmark CONFIG CHECKPOINT``: inference speed (v2's ``benchmark.py``).

Runs the model over ``data.test`` one image at a time, up to ``--max-iter`` images; the first
5 are warm-up and not timed. Prints ``Done image [...]`` every ``--log-interval`` images and
``Overall fps: X img / s, times per image: Y ms / img``; with ``--repeat-num N`` the whole run
is repeated and the last line lists every run and their mean. ``--fuse-conv-bn`` folds batch
norms into the convolutions first (same detections, usually faster). Runs on one device: v2's
``--launcher`` is accepted and ignored.
"""

from __future__ import annotations

import argparse
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "benchmark",
        help="measure inference speed (images per second)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="test config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--repeat-num", type=int, default=1, help="how many times to run")
    parser.add_argument("--max-iter", type=int, default=2000, help="images per run")
    parser.add_argument("--log-interval", type=int, default=50, help="print every N images")
    parser.add_argument(
        "--fuse-conv-bn", action="store_true", help="fold BN into the preceding convs first"
    )
    add_cfg_options_argument(parser)
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="accepted for MMDetection compatibility; the benchmark runs in this process",
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch

    from detforge.analysis.benchmark import format_repeats, measure_inference_speed
    from detforge.analysis.results import build_test_dataset
    from detforge.config import load_config
    from detforge.datasets.builder import build_dataloader
    from detforge.models.builder import build_detector
    from detforge.models.layers.fuse import fuse_conv_bn
    from detforge.utils.checkpoint import load_checkpoint

    if args.repeat_num < 1 or args.max_iter < 1 or args.log_interval < 1:
        raise SystemExit(
            "detforge benchmark: --repeat-num, --max-iter, --log-interval must be >= 1"
        )
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    device = torch.device(
        args.device or cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    )
    dataset = build_test_dataset(cfg)
    workers = int(
        dict(cfg.data.get("test_dataloader") or {}).get(
            "workers_per_gpu", cfg.data.get("workers_per_gpu", 2)
        )
    )

    model = build_detector(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location="cpu")
    if args.fuse_conv_bn:
        model.eval()
        model = fuse_conv_bn(model)
    model = model.to(device).eval()

    fps_list = []
    for _ in range(args.repeat_num):
        loader = build_dataloader(
            dataset, samples_per_gpu=1, workers_per_gpu=workers, dist=False, shuffle=False
        )
        result = measure_inference_speed(
            model,
            loader,
            max_iter=args.max_iter,
            log_interval=args.log_interval,
            print_fn=lambda line: print(line, flush=True),
        )
        fps_list.append(result.fps)
    if args.repeat_num > 1:
        print(format_repeats(fps_list), flush=True)
    return 0
