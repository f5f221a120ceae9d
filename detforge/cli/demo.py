"""``detforge demo``: the end-to-end demo behind ``make demo``.

1. Writes the synthetic shapes dataset (``detforge data synth``: 480 train and 60 val 128x128
   images of circles, squares and triangles among clutter, COCO boxes and masks) into
   ``WORK_DIR/data`` (kept when it already matches the arguments).
2. Trains the shipped ``configs/demo/demo_atss_r18_tiny_18e_shapes.py`` on CPU with
   ``detforge train`` (the data paths are set with ``--cfg-options``), evaluating every 3 epochs.
3. Tests the last checkpoint with ``detforge test --eval bbox --out --show-dir``.
4. Plots the loss and bbox mAP curves of the training log (``detforge analyze-logs plot_curve``).
5. Prints the bbox mAP and where the checkpoint, drawn predictions and curves are.

``--quick`` runs the same flow on 24 images for 2 epochs (a smoke test, not a good model).
On a busy machine PyTorch's worker threads wait on each other; the demo then trains on one
thread (``--threads`` chooses).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "CONFIG",
    "DemoResult",
    "add_parser",
    "find_demo_config",
    "run",
    "run_demo",
]

#: The shipped demo config, relative to the repository root.
CONFIG = "configs/demo/demo_atss_r18_tiny_18e_shapes.py"
_QUICK = (24, 8, 2)  # training images, validation images, epochs
_FULL = (480, 60, None)  # None: the config's epochs


@dataclass
class DemoResult:
    """What one demo run produced (paths are absolute)."""

    metrics: dict[str, Any]
    work_dir: Path
    config: Path
    checkpoint: Path
    results: Path
    log: Path
    curve: Path
    predictions: list[Path] = field(default_factory=list)
    train_seconds: float = 0.0
    epochs: int = 0
    num_val: int = 0


def find_demo_config() -> Path:
    """The shipped demo config: under the current directory or beside the package."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / CONFIG).is_file():
            return (root / CONFIG).resolve()
    raise FileNotFoundError(
        f"{CONFIG} not found in {Path.cwd()} or beside the detforge package; run from the "
        "detforge repository or pass --config"
    )


def _dataset(data_dir: Path, num_train: int, num_val: int, seed: int) -> dict[str, Path]:
    from detforge.datasets.synthetic import make_synthetic_coco as make_shapes

    wanted: dict[str, Any] = dict(
        num_train=num_train, num_val=num_val, size=128, max_objects=6, seed=seed
    )
    meta_file = data_dir / "synthetic.json"
    if meta_file.is_file() and (data_dir / "train.json").is_file():
        meta = json.loads(meta_file.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()) and meta.get("clutter"):
            print(f"detforge demo: reusing the dataset in {data_dir}")
            return dict(
                root=data_dir,
                images=data_dir / "images",
                train=data_dir / "train.json",
                val=data_dir / "val.json",
            )
    print(f"detforge demo: writing {num_train} + {num_val} synthetic images to {data_dir}")
    return make_shapes(data_dir, **wanted)


def _data_options(paths: dict[str, Path]) -> list[str]:
    images = f"{paths['images'].resolve()}/"
    options = []
    for split, ann in (("train", paths["train"]), ("val", paths["val"]), ("test", paths["val"])):
        options += [f"data.{split}.ann_file={ann.resolve()}", f"data.{split}.img_prefix={images}"]
    return options


def _curve_keys(log: Any) -> list[str]:
    train_keys = {k for r in log.train() for k in r}
    keys = [k for k in ("loss_cls", "loss_bbox") if k in train_keys] or ["loss"]
    if any("bbox_mAP" in r for r in log.val()):
        keys.append("bbox_mAP")
    return keys


def _run_command(command: ModuleType, argv: list[str]) -> int:
    """``command.run`` with ``argv`` parsed by the command's own ``detforge`` sub-parser."""
    parser = argparse.ArgumentParser(prog="detforge")
    sub = command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args([sub.prog.split()[-1], *argv])
    code: int = command.run(args)
    return code


def run_demo(
    work_dir: str | Path = "work_dirs/demo",
    config: str | Path | None = None,
    quick: bool = False,
    num_train: int | None = None,
    num_val: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> DemoResult:
    """Generate the data, train, test, draw and plot (see the module docstring).

    Args:
        work_dir: Everything goes here: ``data/``, ``train/``, ``predictions/``,
            ``results.pkl``, ``curves.png``, ``eval_<timestamp>.json``.
        config: Detector config (default: :func:`find_demo_config`).
        quick: 24 + 8 images, 2 epochs, evaluation and a log line every iteration.
        num_train, num_val: Override the dataset size.
        epochs: Override ``runner.max_epochs``.
        seed: Dataset and training seed.
        device: ``cpu`` or ``cuda``.

    Returns:
        The metrics of ``detforge test`` and the paths of everything written.

    Raises:
        RuntimeError: ``detforge train`` or ``detforge test`` failed (with its exit code).
    """
    from detforge.analysis.logs import load_json_log, plot_curve
    from detforge.cli import test as test_command
    from detforge.cli import train as train_command

    default_train, default_val, default_epochs = _QUICK if quick else _FULL
    num_train = default_train if num_train is None else num_train
    num_val = default_val if num_val is None else num_val
    epochs = default_epochs if epochs is None else epochs
    work = Path(work_dir).resolve()
    cfg_path = Path(config).resolve() if config is not None else find_demo_config()
    paths = _dataset(work / "data", num_train, num_val, seed)

    options = _data_options(paths)
    if epochs is not None:
        options.append(f"runner.max_epochs={epochs}")
    if quick:
        options += [
            "evaluation.interval=1",
            "log_config.interval=1",
            "checkpoint_config.interval=1",
            "lr_config.warmup_iters=2",
        ]
    train_dir = work / "train"
    start = time.perf_counter()
    code = _run_command(
        train_command,
        [
            str(cfg_path),
            "--work-dir",
            str(train_dir),
            "--seed",
            str(seed),
            "--device",
            device,
            "--cfg-options",
            *options,
        ],
    )
    train_seconds = time.perf_counter() - start
    if code:
        raise RuntimeError(f"detforge train exited with code {code}")
    logs = sorted(train_dir.glob("*.log.json"))
    checkpoints = sorted(train_dir.glob("epoch_*.pth"), key=lambda p: p.stat().st_mtime)
    if not logs or not checkpoints:
        raise RuntimeError(f"detforge train wrote no log or checkpoint into {train_dir}")
    checkpoint = checkpoints[-1]

    show_dir = work / "predictions"
    results = work / "results.pkl"
    before = set(work.glob("eval_*.json"))
    code = _run_command(
        test_command,
        [
            str(cfg_path),
            str(checkpoint),
            "--eval",
            "bbox",
            "--out",
            str(results),
            "--show-dir",
            str(show_dir),
            "--work-dir",
            str(work),
            "--device",
            device,
            "--cfg-options",
            *_data_options(paths),
        ],
    )
    if code:
        raise RuntimeError(f"detforge test exited with code {code}")
    evals = sorted(set(work.glob("eval_*.json")) - before) or sorted(work.glob("eval_*.json"))
    metrics = json.loads(evals[-1].read_text())["metric"]

    log = load_json_log(logs[-1])
    curve = work / "curves.png"
    figure = plot_curve([log], keys=_curve_keys(log), title=f"detforge demo: {cfg_path.name}")
    figure.savefig(curve)
    val_names = [img["file_name"] for img in json.loads(paths["val"].read_text())["images"]]
    drawn = [show_dir / name for name in val_names if (show_dir / name).is_file()]
    trained = max((int(r["epoch"]) for r in log.train()), default=0)
    return DemoResult(
        metrics=metrics,
        work_dir=work,
        config=cfg_path,
        checkpoint=checkpoint,
        results=results,
        log=logs[-1],
        curve=curve,
        predictions=drawn,
        train_seconds=train_seconds,
        epochs=trained,
        num_val=num_val,
    )


def _threads(requested: int | None) -> int:
    cores = os.cpu_count() or 1
    if requested is not None:
        return max(1, requested)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load >= 1.0 and cores > 1:
        print(
            f"detforge demo: the machine is busy (load {load:.1f} on {cores} cores): "
            "training on 1 thread, which is much faster then (--threads to choose)"
        )
        return 1
    return cores


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _report(result: DemoResult, device: str, threads: int) -> str:
    m = result.metrics
    first = result.predictions[0].name if result.predictions else "none"
    lines = [
        "",
        f"detforge demo: bbox mAP = {m.get('bbox_mAP', float('nan')):.3f} "
        f"(mAP@0.5 = {m.get('bbox_mAP_50', float('nan')):.3f}) on {result.num_val} validation "
        f"images after {result.epochs} epochs; training took {_minutes(result.train_seconds)} "
        f"on {device} ({threads} thread{'s' if threads > 1 else ''})",
        f"  config:      {result.config}",
        f"  checkpoint:  {result.checkpoint}",
        f"  predictions: {result.predictions[0].parent if result.predictions else '-'} "
        f"({len(result.predictions)} drawn images, e.g. {first})",
        f"  curves:      {result.curve}",
        f"  results:     {result.results} (v2 result pickle)",
        f"  train log:   {result.log}",
        "Next: detforge analyze-logs plot_curve LOG --keys loss bbox_mAP --out curves.png; "
        "detforge test CONFIG CHECKPOINT --eval bbox --show-dir DIR",
    ]
    return "\n".join(lines)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="train and evaluate a small detector on a generated dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--work-dir", default="work_dirs/demo", help="where everything goes")
    parser.add_argument("--config", help=f"detector config (default {CONFIG})")
    parser.add_argument("--quick", action="store_true", help="24 images, 2 epochs: a smoke test")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the config's)")
    parser.add_argument("--num-train", type=int, help="generated training images (480)")
    parser.add_argument("--num-val", type=int, help="generated validation images (60)")
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="device")
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads (default: see above)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch

    threads = _threads(args.threads)
    torch.set_num_threads(threads)
    try:
        result = run_demo(
            work_dir=args.work_dir,
            config=args.config,
            quick=args.quick,
            num_train=args.num_train,
            num_val=args.num_val,
            epochs=args.epochs,
            seed=args.seed,
            device=args.device,
        )
    except RuntimeError as exc:
        print(f"detforge demo: error: {exc}", file=sys.stderr)
        return 1
    print(_report(result, args.device, threads))
    return 0
