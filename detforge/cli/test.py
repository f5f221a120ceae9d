"""``detforge test CONFIG CHECKPOINT``: test a trained detector (v2's ``tools/test.py``).

At least one of ``--out``, ``--eval``, ``--format-only``, ``--show`` or ``--show-dir`` is
required; ``--eval`` and ``--format-only`` exclude each other. ``--out`` pickles the list of
per-image v2 results; ``--work-dir`` also writes ``eval_<timestamp>.json``. As in v2's
``tools/test.py``, ``--options k=v`` is the deprecated spelling of ``--eval-options`` (not of
``--cfg-options``), and ``--format-only`` without ``jsonfile_prefix`` writes to a temporary
folder whose path is printed.

An image that cannot be read is skipped with a warning naming it and kept with no detections
(so the results stay one per image of the annotation file), and one line counts them at the
end; ``--strict`` (or ``strict=True`` in ``data.test``) stops at the first one instead.
"""

from __future__ import annotations

import argparse
import inspect
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from detforge.cli.allow_partial import add_allow_partial_argument
from detforge.cli.print_config import add_cfg_options_argument
from detforge.config import DictAction, load_config
from detforge.utils.fileio import atomic_write

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="test (and evaluate) a trained detector",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="test config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--work-dir", help="write eval_<timestamp>.json with the metrics here")
    parser.add_argument("--out", help="output result file in pickle format (.pkl/.pickle)")
    parser.add_argument(
        "--fuse-conv-bn",
        action="store_true",
        help="fold BN into the preceding convs (faster inference, same results)",
    )
    parser.add_argument("--gpu-ids", type=int, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--gpu-id", type=int, default=0, help="id of the GPU to use")
    parser.add_argument(
        "--format-only", action="store_true", help="format the results without evaluating"
    )
    parser.add_argument(
        "--eval", type=str, nargs="+", help="metrics, e.g. bbox segm proposal mAP recall"
    )
    parser.add_argument("--show", action="store_true", help="show drawn results in a window")
    parser.add_argument("--show-dir", help="directory for the drawn images")
    parser.add_argument("--show-score-thr", type=float, default=0.3, help="score threshold")
    parser.add_argument(
        "--gpu-collect",
        action="store_true",
        help="distributed: gather the results with all_gather (the default without --tmpdir)",
    )
    parser.add_argument(
        "--tmpdir",
        help="distributed: gather the results through pickles in this shared folder "
        "(removed afterwards)",
    )
    add_allow_partial_argument(parser)
    add_cfg_options_argument(parser)
    parser.add_argument(
        "--eval-options", nargs="+", action=DictAction, help="kwargs for dataset.evaluate"
    )
    parser.add_argument(
        "--launcher", choices=["none", "pytorch", "slurm"], default="none", help="job launcher"
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--device", choices=["cpu", "cuda"], help="device (default: cuda if any)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first unreadable image or bad annotation (default: skip it with a "
        "warning, count it, and keep the image with no detections)",
    )
    parser.set_defaults(func=run)
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if not (args.out or args.eval or args.format_only or args.show or args.show_dir):
        raise SystemExit(
            "detforge test: choose at least one of --out, --eval, --format-only, --show, --show-dir"
        )
    if args.eval and args.format_only:
        raise SystemExit("detforge test: --eval and --format-only cannot be both specified")
    if args.launcher != "none" and (args.show or args.show_dir):
        raise SystemExit(
            "detforge test: --show/--show-dir draw results in one process only (v2's "
            "dist_test.sh dropped them silently); run without --launcher to draw, or pass --out "
            "and draw the pickle with detforge analyze-results"
        )
    if args.out is not None and not args.out.endswith((".pkl", ".pickle")):
        raise SystemExit(f"detforge test: --out must be a .pkl or .pickle file, got {args.out}")


def _eval_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--eval-options``, or v2 ``tools/test.py``'s deprecated spelling ``--options`` (which
    there means evaluation options, not config overrides as in ``train``)."""
    if args.options and args.eval_options:
        raise SystemExit(
            "detforge test: --options and --eval-options cannot be both specified; --options "
            "is deprecated in favor of --eval-options"
        )
    if args.options:
        print(
            "detforge test: --options is deprecated in favor of --eval-options (kwargs for "
            "dataset.evaluate/format_results, as in v2's tools/test.py)",
            file=sys.stderr,
        )
        return dict(args.options)
    return dict(args.eval_options or {})


def _format_only(dataset: Any, outputs: list[Any], kwargs: dict[str, Any]) -> None:
    """``dataset.format_results``; without ``jsonfile_prefix`` the files go to a new temporary
    folder (v2 writes to one too), and where they went is printed."""
    params = inspect.signature(dataset.format_results).parameters
    if "jsonfile_prefix" in params and kwargs.get("jsonfile_prefix") is None:
        folder = tempfile.mkdtemp(prefix="detforge_results_")
        kwargs = dict(kwargs, jsonfile_prefix=str(Path(folder) / "results"))
        print(f"--format-only without jsonfile_prefix: writing to the temporary folder {folder}")
    formatted = dataset.format_results(outputs, **kwargs)
    files = formatted[0] if isinstance(formatted, tuple) else formatted
    if isinstance(files, dict):
        for kind, path in files.items():
            print(f"formatted {kind} results: {path}")


def _set_strict(dataset_cfg: Any) -> None:
    """``strict=True`` in a dataset config, or in the ones a wrapper config holds."""
    inner = dataset_cfg.get("datasets", dataset_cfg.get("dataset"))
    if inner is None:
        dataset_cfg["strict"] = True
        return
    for child in inner if isinstance(inner, list | tuple) else [inner]:
        _set_strict(child)


def _predict(
    args: argparse.Namespace, cfg: Any, device: str, distributed: bool
) -> tuple[Any, list[Any] | None]:
    """Build the test set and the detector, run it; ``(dataset, results)`` (``None`` results
    on ranks other than 0)."""
    from detforge.apis.inference import replace_image_to_tensor
    from detforge.datasets.builder import build_dataloader, build_dataset
    from detforge.engine.testing import multi_gpu_test, single_gpu_test
    from detforge.models.builder import build_detector
    from detforge.utils.checkpoint import load_checkpoint

    test_cfg = dict(cfg.data.test)
    test_cfg["test_mode"] = True
    if args.strict:
        _set_strict(test_cfg)
    samples_per_gpu = int(test_cfg.pop("samples_per_gpu", 1))
    loader_cfg = dict(cfg.data.get("test_dataloader") or {})
    samples_per_gpu = int(loader_cfg.pop("samples_per_gpu", samples_per_gpu))
    if samples_per_gpu > 1:
        test_cfg["pipeline"] = replace_image_to_tensor(list(test_cfg["pipeline"]))
    dataset = build_dataset(test_cfg)
    loader = build_dataloader(
        dataset,
        samples_per_gpu=samples_per_gpu,
        workers_per_gpu=int(loader_cfg.pop("workers_per_gpu", cfg.data.get("workers_per_gpu", 2))),
        dist=distributed,
        shuffle=False,
    )

    model = build_detector(cfg.model)
    checkpoint = load_checkpoint(
        model, args.checkpoint, map_location="cpu", strict=not args.allow_partial
    )
    classes = checkpoint.get("meta", {}).get("CLASSES")
    model.CLASSES = tuple(classes) if classes is not None else dataset.CLASSES
    if args.fuse_conv_bn:
        from detforge.models.layers.fuse import fuse_conv_bn

        model = fuse_conv_bn(model.eval())
    model = model.to(device)

    if distributed:
        return dataset, multi_gpu_test(model, loader, args.tmpdir, args.gpu_collect)
    return dataset, single_gpu_test(model, loader, args.show, args.show_dir, args.show_score_thr)


def run(args: argparse.Namespace) -> int:
    import torch

    from detforge.apis.config_check import check_metrics, dataset_class
    from detforge.utils.dist import get_dist_info, init_dist, leave_process_group

    _check_args(args)
    eval_kwargs = _eval_options(args)
    cfg = load_config(args.config, cfg_options=dict(args.cfg_options or {})).cfg
    if args.eval:  # before any inference: v2 found an unsupported metric only after it
        check_metrics(args.eval, dataset_class(cfg.data.test), "--eval")
    device = args.device or cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    distributed = args.launcher != "none"
    if distributed:
        init_dist(args.launcher, device=device, **dict(cfg.get("dist_params") or {}))
    try:
        rank, _ = get_dist_info()
        dataset, outputs = _predict(args, cfg, device, distributed)
    finally:
        if distributed:  # also when testing failed; rank 0 evaluates alone
            leave_process_group()
    if rank != 0 or outputs is None:
        return 0

    if args.out:
        atomic_write(args.out, pickle.dumps(outputs))
        print(f"writing results to {args.out}")
    if args.format_only:
        _format_only(dataset, outputs, eval_kwargs)
    if args.eval:
        metric = dataset.evaluate(outputs, metric=args.eval, **eval_kwargs)
        print(metric)
        if args.work_dir is not None:
            timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
            path = Path(args.work_dir) / f"eval_{timestamp}.json"
            atomic_write(path, json.dumps(dict(config=args.config, metric=metric), default=str))
    return 0
