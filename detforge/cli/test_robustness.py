"""``detforge test-robustness CONFIG CHECKPOINT``: test under image corruptions (v2's
``tools/analysis_tools/test_robustness.py``).

For each corruption of ``--corruptions`` (a group: benchmark, all, noise, blur, weather,
digital, holdout, None; or names) and each of ``--severities`` a ``Corrupt`` step is put
after the loading step of ``data.test``'s pipeline and the model is tested (severity 0, the
clean data, only once). As in v2, ``--out`` receives the raw results of the latest run and
``<out stem>_results<ext>`` the evaluations of all runs, ``{corruption: {severity: eval}}``,
after each run; ``detforge robustness-eval`` reads that file. The final printout gives
``--final-prints`` (P, mPC, rPC) aggregated over ``--final-prints-aggregate``.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import Any

from detforge.cli.allow_partial import add_allow_partial_argument
from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]

_CHOICES = [
    "all",
    "benchmark",
    "noise",
    "blur",
    "weather",
    "digital",
    "holdout",
    "None",
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "speckle_noise",
    "gaussian_blur",
    "spatter",
    "saturate",
]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test-robustness",
        help="test a detector under image corruptions (mPC, rPC)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="test config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--out", help="output result file in pickle format (.pkl/.pickle)")
    parser.add_argument(
        "--corruptions",
        type=str,
        nargs="+",
        default="benchmark",
        choices=_CHOICES,
        help="corruptions (or one group)",
    )
    parser.add_argument(
        "--severities",
        type=int,
        nargs="+",
        default=[0, 1, 2, 3, 4, 5],
        help="corruption severities (0 = clean)",
    )
    parser.add_argument(
        "--eval",
        type=str,
        nargs="+",
        choices=["proposal", "proposal_fast", "bbox", "segm", "keypoints"],
        help="evaluation types",
    )
    parser.add_argument("--iou-thr", type=float, default=0.5, help="IoU threshold (VOC mAP)")
    parser.add_argument("--summaries", type=bool, default=False, help="print VOC summaries")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data loading workers (default: data.workers_per_gpu)",
    )
    parser.add_argument("--show", action="store_true", help="not supported; use --show-dir")
    parser.add_argument("--show-dir", help="draw results into <dir>/<corruption>/<severity>/")
    parser.add_argument("--show-score-thr", type=float, default=0.3, help="score threshold")
    parser.add_argument("--tmpdir", help="accepted for v2 compatibility (single process)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the corruptions (default: from each image)"
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="only 'none' (one process) is supported",
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--final-prints",
        type=str,
        nargs="+",
        choices=["P", "mPC", "rPC"],
        default="mPC",
        help="corruption benchmark metrics to print",
    )
    parser.add_argument(
        "--final-prints-aggregate",
        type=str,
        choices=["all", "benchmark"],
        default="benchmark",
        help="aggregate over all or the benchmark corruptions",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], help="device (default: cuda if any)")
    add_allow_partial_argument(parser)
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def _check(args: argparse.Namespace) -> list[str]:
    from detforge.analysis.robustness import resolve_corruptions

    if not (args.out or args.show_dir):
        raise SystemExit("detforge test-robustness: choose at least one of --out, --show-dir")
    if args.out is not None and not args.out.endswith((".pkl", ".pickle")):
        raise SystemExit(f"detforge test-robustness: --out must be a .pkl/.pickle, got {args.out}")
    if args.launcher != "none":
        raise SystemExit("detforge test-robustness: only --launcher none is supported")
    if args.show:
        raise SystemExit("detforge test-robustness: --show needs a display; use --show-dir")
    if args.eval and "keypoints" in args.eval:
        raise SystemExit("detforge test-robustness: keypoints evaluation is not supported")
    bad = [s for s in args.severities if not 0 <= s <= 5]
    if bad:
        raise SystemExit(f"detforge test-robustness: severities must be in 0..5, got {bad}")
    names = [args.corruptions] if isinstance(args.corruptions, str) else args.corruptions
    try:
        corruptions = resolve_corruptions(names)
    except ValueError as exc:
        raise SystemExit(f"detforge test-robustness: {exc}") from None
    if corruptions == ["None"]:
        args.severities = [0]
    return corruptions


def run(args: argparse.Namespace) -> int:
    import torch

    from detforge.analysis.robustness import format_robustness, run_corruption_benchmark
    from detforge.config import load_config
    from detforge.models.builder import build_detector
    from detforge.utils.checkpoint import load_checkpoint

    corruptions = _check(args)
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    device = args.device or cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    test_cfg = dict(cfg.data.test)
    test_cfg["test_mode"] = True
    test_cfg.pop("samples_per_gpu", None)
    model = build_detector(cfg.model)
    checkpoint = load_checkpoint(
        model, args.checkpoint, map_location="cpu", strict=not args.allow_partial
    )
    classes = checkpoint.get("meta", {}).get("CLASSES")
    if classes is not None:
        model.CLASSES = tuple(classes)
    model = model.to(device)
    workers = args.workers if args.workers is not None else cfg.data.get("workers_per_gpu", 2)
    results_path = None
    if args.out:
        stem, ext = os.path.splitext(args.out)
        results_path = Path(f"{stem}_results{ext}")
        results_path.parent.mkdir(parents=True, exist_ok=True)

    def save(outputs: list[Any], aggregated: dict[str, Any]) -> None:
        if args.out:
            with open(args.out, "wb") as f:
                pickle.dump(outputs, f)
        if args.eval and results_path is not None:
            with open(results_path, "wb") as f:
                pickle.dump(aggregated, f)

    aggregated = run_corruption_benchmark(
        model,
        test_cfg,
        corruptions,
        args.severities,
        args.eval,
        iou_thr=args.iou_thr,
        workers=int(workers),
        seed=args.seed,
        show_dir=args.show_dir,
        show_score_thr=args.show_score_thr,
        on_result=save,
    )
    if not args.eval:
        print("\nNo task was selected for evaluation;\nUse --eval to select a task")
        return 0
    if results_path is not None:
        print(f"\nevaluations saved to {results_path}")
    voc = not any(isinstance(v, dict) for sev in aggregated.values() for v in sev.values())
    prints = [args.final_prints] if isinstance(args.final_prints, str) else args.final_prints
    task = next((t for t in ("bbox", "segm") if t in args.eval), None)
    if voc or task is not None:
        print("\nAggregated results:")
        try:
            print(
                format_robustness(
                    aggregated,
                    dataset="voc" if voc else "coco",
                    task=task or "bbox",
                    prints=prints,
                    aggregate=args.final_prints_aggregate,
                )
            )
        except ValueError as exc:
            print(f"cannot aggregate: {exc}")
    return 0
