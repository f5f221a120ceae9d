"""``detforge train CONFIG``: train a detector (v2's ``tools/train.py``, same flags).

The merged config is dumped into the work dir (``--work-dir`` > ``work_dir`` in the config >
``./work_dirs/<config stem>``), the text log goes to ``<work_dir>/<timestamp>.log`` and the JSON
log next to it. ``--launcher pytorch`` reads the ``torchrun`` environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); ``--launcher slurm`` reads
``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_NODELIST``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from detforge import __version__
from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options
from detforge.config import Config, load_config

__all__ = ["add_parser", "run", "setup_file_logger"]

_LOG = logging.getLogger("detforge")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a detector",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="train config file")
    parser.add_argument("--work-dir", help="the dir to save logs and models")
    parser.add_argument("--resume-from", help="the checkpoint file to resume from")
    parser.add_argument(
        "--auto-resume", action="store_true", help="resume from the latest checkpoint in work dir"
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="do not evaluate checkpoints during training"
    )
    parser.add_argument("--gpus", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gpu-ids", type=int, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--gpu-id", type=int, default=0, help="id of the GPU to use")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument(
        "--diff-seed", action="store_true", help="a different seed on each rank (seed + rank)"
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic options for cuDNN"
    )
    add_cfg_options_argument(parser)
    parser.add_argument(
        "--launcher", choices=["none", "pytorch", "slurm"], default="none", help="job launcher"
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--auto-scale-lr", action="store_true", help="scale the LR to the actual batch size"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], help="device (default: cuda if any)")
    parser.set_defaults(func=run)
    return parser


def setup_file_logger(log_file: str | os.PathLike[str]) -> logging.Handler:
    """Also write the ``detforge`` logger to ``log_file`` (returns the handler)."""
    handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - detforge - %(levelname)s - %(message)s"))
    _LOG.addHandler(handler)
    if _LOG.level == logging.NOTSET or _LOG.level > logging.INFO:
        _LOG.setLevel(logging.INFO)
    return handler


def _env_info() -> str:
    import torch

    lines = [
        f"sys.platform: {sys.platform}",
        f"Python: {sys.version.replace(chr(10), ' ')}",
        f"CUDA available: {torch.cuda.is_available()}",
        f"PyTorch: {torch.__version__}",
        f"detforge: {__version__}",
        f"Platform: {platform.platform()}",
    ]
    return "\n".join(lines)


def _work_dir(args: argparse.Namespace, cfg: Config) -> str:
    if args.work_dir is not None:
        return str(args.work_dir)
    if cfg.get("work_dir") is not None:
        return str(cfg.work_dir)
    return str(Path("./work_dirs") / Path(args.config).stem)


def _configure(args: argparse.Namespace) -> Config:
    import torch

    from detforge.apis.config_check import check_config

    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    check_config(cfg, validate=not args.no_validate)
    if args.auto_scale_lr:
        if "auto_scale_lr" in cfg and "base_batch_size" in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            _LOG.warning("--auto-scale-lr ignored: the config has no auto_scale_lr.base_batch_size")
    cfg.work_dir = _work_dir(args, cfg)
    if args.resume_from is not None:
        cfg.resume_from = args.resume_from
    cfg.auto_resume = args.auto_resume
    if args.gpus is not None or args.gpu_ids is not None:
        _LOG.warning("--gpus/--gpu-ids are deprecated; only the first GPU is used (--gpu-id)")
    first = args.gpu_ids[0] if args.gpu_ids else args.gpu_id
    cfg.gpu_ids = [first]
    if args.device is not None:
        cfg.device = args.device
    elif cfg.get("device") is None:
        cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("detforge train: --device cuda requested but CUDA is not available")
    return cfg


def run(args: argparse.Namespace) -> int:
    from detforge.apis.train import init_random_seed, set_random_seed, train_detector
    from detforge.datasets.builder import build_dataset
    from detforge.models.builder import build_detector
    from detforge.utils.dist import get_dist_info, init_dist, leave_process_group

    cfg = _configure(args)
    distributed = args.launcher != "none"
    if distributed:
        init_dist(args.launcher, device=cfg.device, **dict(cfg.get("dist_params") or {}))
        _, world_size = get_dist_info()
        cfg.gpu_ids = list(range(world_size))
    rank, _ = get_dist_info()
    level = _LOG.level
    if rank != 0:  # as v2's get_root_logger: only rank 0 prints environment, config and logs
        _LOG.setLevel(logging.ERROR)

    work_dir = Path(cfg.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        cfg.dump(work_dir / Path(args.config).name)
    timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
    handler = setup_file_logger(work_dir / f"{timestamp}.log") if rank == 0 else None
    try:
        env_info = _env_info()
        _LOG.info("Environment info:\n%s", env_info)
        _LOG.info("Config:\n%s", cfg.pretty_text)

        seed = init_random_seed(args.seed if args.seed is not None else cfg.get("seed"))
        if args.diff_seed:
            seed += rank
        _LOG.info("Set random seed to %d, deterministic: %s", seed, args.deterministic)
        set_random_seed(seed, deterministic=args.deterministic)
        cfg.seed = seed
        meta: dict[str, Any] = dict(
            env_info=env_info,
            config=cfg.pretty_text,
            seed=seed,
            exp_name=Path(args.config).name,
        )

        model = build_detector(cfg.model)
        model.init_weights()
        datasets = [build_dataset(cfg.data.train)]
        if len(cfg.get("workflow") or []) == 2:
            val_cfg = copy.deepcopy(dict(cfg.data.val))
            val_cfg["pipeline"] = copy.deepcopy(cfg.data.train.pipeline)
            datasets.append(build_dataset(val_cfg))
        classes = datasets[0].CLASSES
        if cfg.get("checkpoint_config") is not None:
            cfg.checkpoint_config.meta = dict(
                detforge_version=__version__, CLASSES=tuple(classes) if classes else classes
            )
        model.CLASSES = classes
        train_detector(
            model,
            datasets,
            cfg,
            distributed=distributed,
            validate=not args.no_validate,
            timestamp=timestamp,
            meta=meta,
        )
    finally:
        _LOG.setLevel(level)
        if handler is not None:
            _LOG.removeHandler(handler)
            handler.close()
        if distributed:
            leave_process_group()
    return 0
