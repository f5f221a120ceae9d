"""Train the shipped BCCD Faster R-CNN from scratch and evaluate it (not part of `make test`).

Runs the real command-line tools one after the other, in subprocesses:

    detforge train CONFIG --work-dir W --seed 0 --device cpu [--cfg-options ...]
    detforge test  W/CONFIG W/latest.pth --eval mAP --out W/results.pkl --work-dir W

(``W/CONFIG`` is the merged config that training dumped), then prints the per-class AP50
(VOC area AP at IoU 0.5 on BCCD's test split, 72 images), the mAP and the wall times, and
writes them to ``W.json`` (next to the work dir).

    nice -n 10 python benchmarks/train_bccd.py [--epochs 20] [--threads 1]
        [--work-dir work_dirs/train_bccd] [--cfg-options optimizer.lr=0.002 ...]

The data is found through ``DETFORGE_DATASETS`` (set to ``$DETFORGE_SHARED_DATA/bccd/``,
default ``../shared/data/bccd/``). ``--epochs N`` sets ``runner.max_epochs`` and scales the
config's LR steps by ``N / max_epochs``. ``--threads`` sets ``OMP_NUM_THREADS`` for the runs:
on a CPU that other jobs share, one thread is several times faster than two.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detforge.config import load_config  # noqa: E402
from detforge.utils.fileio import atomic_write  # noqa: E402

SHARED = Path(os.environ.get("DETFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CONFIG = ROOT / "configs" / "bccd" / "faster_rcnn_r18_fpn_gn-all_scratch_320_20e_bccd.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(CONFIG), help="the BCCD config to train")
    parser.add_argument("--work-dir", default=str(ROOT / "work_dirs" / "train_bccd"))
    parser.add_argument("--epochs", type=int, help="override runner.max_epochs (steps scale)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cfg-options", nargs="+", default=[], help="passed to detforge train")
    return parser.parse_args(argv)


def epoch_options(config: Path, environ: dict[str, str], epochs: int | None) -> list[str]:
    """``--cfg-options`` items that set ``max_epochs`` and scale the step LR milestones."""
    if epochs is None:
        return []
    cfg = load_config(config, environ=environ).cfg
    old = int(cfg.runner.max_epochs)
    items = [f"runner.max_epochs={epochs}"]
    steps = cfg.lr_config.get("step")
    if steps is not None:
        steps = [steps] if isinstance(steps, int) else list(steps)
        scaled = [max(1, round(s * epochs / old)) for s in steps]
        items.append(f"lr_config.step=[{','.join(str(s) for s in scaled)}]")
    return items


def run_tool(args: list[str], environ: dict[str, str], log: Path) -> float:
    """Run ``detforge ARGS`` with its output teed to ``log``; returns its wall time."""
    command = [sys.executable, "-m", "detforge.cli.main", *args]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            out.write(line)
            if "\r" not in line:  # keep the progress bars out of the console
                sys.stdout.write(line)
                sys.stdout.flush()
        code = proc.wait()
    if code != 0:
        raise SystemExit(f"detforge {args[0]} failed with exit code {code}; see {log}")
    return time.perf_counter() - start


def per_class_ap(config: Path, environ: dict[str, str], results: Path) -> dict[str, Any]:
    """Per-class AP50 and mAP of the pickled ``results`` on the config's test split."""
    from detforge.datasets.builder import build_dataset
    from detforge.evaluation import eval_map

    cfg = load_config(config, environ=environ).cfg
    test_cfg = dict(cfg.data.test)
    test_cfg["test_mode"] = True
    dataset = build_dataset(test_cfg)
    with open(results, "rb") as f:
        outputs = pickle.load(f)
    annotations = [dataset.get_ann_info(i) for i in range(len(dataset))]
    mean_ap, per_class = eval_map(outputs, annotations, iou_thr=0.5, logger="silent")
    return dict(
        mAP=float(mean_ap),
        num_images=len(dataset),
        classes={
            name: dict(ap50=float(c["ap"]), num_gts=int(c["num_gts"]), num_dets=int(c["num_dets"]))
            for name, c in zip(dataset.CLASSES, per_class, strict=True)
        },
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Path(args.config).resolve()
    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    bccd = SHARED / "bccd"
    if not (bccd / "BCCD" / "ImageSets" / "Main" / "train.txt").is_file():
        raise SystemExit(f"BCCD not found under {bccd} (set DETFORGE_SHARED_DATA)")
    environ = dict(os.environ, DETFORGE_DATASETS=f"{bccd}/", OMP_NUM_THREADS=str(args.threads))
    options = [*epoch_options(config, environ, args.epochs), *args.cfg_options]
    cfg = load_config(config, environ=environ).cfg
    epochs = args.epochs or int(cfg.runner.max_epochs)

    train = ["train", str(config), "--work-dir", str(work_dir), "--seed", str(args.seed)]
    train += ["--device", "cpu"] + (["--cfg-options", *options] if options else [])
    train_s = run_tool(train, environ, work_dir / "train_stdout.log")
    checkpoint = work_dir / "latest.pth"
    if not checkpoint.exists():
        checkpoint = work_dir / f"epoch_{epochs}.pth"
    results = work_dir / "results.pkl"
    merged = work_dir / config.name  # the config as trained, --cfg-options included
    test = ["test", str(merged), str(checkpoint), "--eval", "mAP", "--out", str(results)]
    test += ["--work-dir", str(work_dir), "--device", "cpu"]
    test_s = run_tool(test, environ, work_dir / "test_stdout.log")

    report = dict(
        config=str(config.relative_to(ROOT)) if config.is_relative_to(ROOT) else str(config),
        cfg_options=options,
        epochs=epochs,
        seed=args.seed,
        threads=args.threads,
        train_wall_s=round(train_s, 1),
        test_wall_s=round(test_s, 1),
        checkpoint=str(checkpoint),
        **per_class_ap(merged, environ, results),
    )
    print(f"\nBCCD test split ({report['num_images']} images), VOC AP50 after {epochs} epochs:")
    for name, row in report["classes"].items():
        print(f"  {name:<10} AP50 {row['ap50']:.3f}  ({row['num_gts']} boxes)")
    print(f"  {'mAP':<10}      {report['mAP']:.3f}")
    print(f"wall time: train {train_s / 60:.1f} min, test {test_s:.0f} s")
    out = work_dir.with_suffix(".json")
    atomic_write(out, json.dumps(report, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
