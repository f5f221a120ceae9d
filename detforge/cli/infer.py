"""``detforge infer INPUT CONFIG CHECKPOINT``: run a detector on images or a video.

``INPUT`` is an image, a folder (searched recursively for images), a ``.txt`` file listing
image paths (one per line; relative paths are relative to the list's folder; blank lines and
``#`` comments are skipped) or a video. Images run in batches of ``--batch-size`` with a
progress bar and produce, in ``--out-dir``:

- ``results.jsonl``: one line per image, ``{"file", "width", "height", "detections": [{"bbox":
  [x1, y1, x2, y2], "score", "label", "class"}]}`` (detections scoring above ``--score-thr``);
- ``vis/<name>``: the image with the detections drawn (skip with ``--no-draw``), at its path
  relative to the input folder (for a list naming images elsewhere: relative to the deepest
  folder holding them all); a folder input never picks up ``--out-dir``'s own ``vis/``;
- ``errors.jsonl``: ``{"file", "error"}`` for every image that could not be read or that the
  model refused as input (a bad shape...); it is reported and skipped, the run goes on and
  exits with status 1. Any other error (out of memory, a broken config) stops the run.

A re-run with the same ``--out-dir`` skips the images already in any ``results*.jsonl`` there.
Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) rank ``r`` takes images ``i`` with
``i % WORLD_SIZE == r`` and writes ``results.rank{r}.jsonl`` (no process group is needed), so
a large folder spreads over many GPUs or machines. A video gives ``<stem>_det.mp4`` and
``<stem>_det.jsonl`` with one line per frame (``{"frame", "width", "height", "detections"}``),
both rewritten on each run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from detforge.cli.allow_partial import add_allow_partial_argument
from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "add_parser",
    "done_files",
    "list_images",
    "run",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jpe", ".pgm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "infer",
        help="run a detector on an image, a folder, a list of images or a video",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="image, folder, .txt list of images, or video")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument(
        "--out-dir", default="infer_out", help="output folder (default: %(default)s)"
    )
    parser.add_argument("--score-thr", type=float, default=0.3, help="keep scores above this")
    parser.add_argument(
        "--device",
        default=None,
        help="cuda:0, cpu, ... (default: cuda:LOCAL_RANK if any, else cpu)",
    )
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass")
    parser.add_argument("--no-draw", action="store_true", help="write results only, no pictures")
    parser.add_argument(
        "--palette",
        default=None,
        help="coco, voc, citys, random or a colour name (default: coco, or random for models "
        "with more than 80 classes)",
    )
    add_allow_partial_argument(parser)
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def list_images(
    source: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None
) -> list[Path]:
    """The images ``source`` names: itself, the images under a folder (sorted), or a list file.

    ``exclude`` is a folder whose images a folder search skips (``detforge infer`` passes its
    own ``vis/`` output folder, which may lie inside ``source``).

    Raises:
        FileNotFoundError: ``source``, or a file named in a list, does not exist.

    Example:
        >>> list_images('missing.jpg')
        Traceback (most recent call last):
        ...
        FileNotFoundError: input not found: missing.jpg
    """
    path = Path(source)
    if path.is_dir():
        skip = Path(os.path.abspath(exclude)) if exclude is not None else None
        return sorted(
            p
            for p in path.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS
            and p.is_file()
            and (skip is None or not Path(os.path.abspath(p)).is_relative_to(skip))
        )
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {source}")
    if path.suffix.lower() != ".txt":
        return [path]
    images = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        item = Path(name) if Path(name).is_absolute() else path.parent / name
        if not item.exists():
            raise FileNotFoundError(f"{path}:{number}: listed image not found: {item}")
        images.append(item)
    return images


def done_files(out_dir: Path) -> set[str]:
    """``file`` of every line of every ``results*.jsonl`` in ``out_dir`` (torn lines ignored)."""
    done: set[str] = set()
    for path in sorted(out_dir.glob("results*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line)["file"])
            except (ValueError, KeyError, TypeError):
                continue
    return done


class _JsonLines:
    """Appends one JSON object per line, flushed at once; repairs a torn last line first."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115
        if torn:
            self.handle.write("\n")

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _dist_env() -> tuple[int, int]:
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world < 1 or not 0 <= rank < world:
        raise SystemExit(f"detforge infer: bad RANK={rank} / WORLD_SIZE={world}")
    return rank, world


def _vis_base(root: Path, paths: Sequence[Path]) -> Path:
    """The folder ``vis/`` mirrors: ``root``, or the deepest folder holding ``root`` and every
    image (a list may name images elsewhere), so two images never share a drawing's name."""
    return Path(os.path.commonpath([os.path.abspath(root), *map(os.path.abspath, paths)]))


def _vis_name(path: Path, base: Path) -> Path:
    return Path(os.path.abspath(path)).relative_to(base)


def _batches(paths: list[Path], size: int) -> Iterator[list[tuple[Path, Any]]]:
    """Batches of ``(path, image or the exception reading it)``, the next read ahead."""
    from concurrent.futures import ThreadPoolExecutor

    from detforge.utils.image import imread

    def read(path: Path) -> Any:
        try:
            return imread(path)
        except Exception as exc:  # any unreadable file is reported, not fatal
            return exc

    def read_batch(chunk: list[Path]) -> list[tuple[Path, Any]]:
        return list(zip(chunk, pool.map(read, chunk), strict=True))

    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    with ThreadPoolExecutor(max_workers=4) as pool, ThreadPoolExecutor(max_workers=1) as ahead:
        future = ahead.submit(read_batch, chunks[0]) if chunks else None
        for index in range(len(chunks)):
            assert future is not None
            batch = future.result()
            if index + 1 < len(chunks):
                future = ahead.submit(read_batch, chunks[index + 1])
            yield batch


def _infer_safely(model: Any, items: list[tuple[Path, Any]]) -> list[tuple[Path, Any, Any]]:
    """``(path, image, result or exception)``.

    A batch that fails on its input (:class:`ImageLoadError`, ``ValueError``, ``TypeError``:
    what :func:`inference_detector` raises for a bad image) is retried image by image, so only
    the bad image fails; any other error (out of memory, a config bug) propagates.
    """
    from detforge.apis.inference import inference_detector
    from detforge.utils.image import ImageLoadError

    try:
        results = inference_detector(model, [img for _, img in items])
    except (ImageLoadError, ValueError, TypeError) as exc:
        if len(items) == 1:
            return [(items[0][0], items[0][1], exc)]
        return [out for item in items for out in _infer_safely(model, [item])]
    return [(p, img, r) for (p, img), r in zip(items, results, strict=True)]


def _run_images(args: argparse.Namespace, model: Any, paths: list[Path]) -> int:
    from tqdm import tqdm

    from detforge.structures.det_result import result_to_detections
    from detforge.visualization import draw_result

    out_dir = Path(args.out_dir)
    rank, world = _dist_env()
    suffix = f".rank{rank}" if world > 1 else ""
    done = done_files(out_dir)
    mine = [p for i, p in enumerate(paths) if i % world == rank]
    todo = [p for p in mine if str(p) not in done]
    root = Path(args.input) if Path(args.input).is_dir() else Path(args.input).parent
    vis_base = _vis_base(root, paths)
    results_file = _JsonLines(out_dir / f"results{suffix}.jsonl")
    errors_file: _JsonLines | None = None
    classes = list(model.CLASSES)
    counts = dict(images=0, detections=0, failed=0)
    start = time.perf_counter()
    bar = tqdm(
        total=len(todo),
        desc=f"infer {rank}/{world}" if world > 1 else "infer",
        unit="img",
        dynamic_ncols=True,
    )
    try:
        for batch in _batches(todo, max(1, args.batch_size)):
            readable = [(p, img) for p, img in batch if not isinstance(img, BaseException)]
            outcomes = [(p, None, img) for p, img in batch if isinstance(img, BaseException)]
            outcomes += _infer_safely(model, readable) if readable else []
            for path, img, result in outcomes:
                if isinstance(result, BaseException):
                    counts["failed"] += 1
                    tqdm.write(f"detforge infer: skipping {path}: {result}", file=sys.stderr)
                    errors_file = errors_file or _JsonLines(out_dir / f"errors{suffix}.jsonl")
                    errors_file.write({"file": str(path), "error": str(result)})
                    continue
                detections = result_to_detections(result, classes, args.score_thr)
                if not args.no_draw:
                    draw_result(
                        img,
                        result,
                        classes,
                        args.score_thr,
                        palette=args.palette,
                        out_file=out_dir / "vis" / _vis_name(path, vis_base),
                    )
                height, width = img.shape[:2]
                results_file.write(
                    dict(file=str(path), width=width, height=height, detections=detections)
                )
                counts["images"] += 1
                counts["detections"] += len(detections)
            bar.update(len(batch))
    finally:
        bar.close()
        results_file.close()
        if errors_file is not None:
            errors_file.close()
    seconds = time.perf_counter() - start
    print(
        f"detforge infer: {counts['images']} images, {counts['detections']} detections "
        f"(score > {args.score_thr}) in {seconds:.1f} s -> {out_dir / f'results{suffix}.jsonl'}; "
        f"{len(mine) - len(todo)} already done, {counts['failed']} failed"
        + (f" (see {out_dir / f'errors{suffix}.jsonl'})" if counts["failed"] else "")
    )
    return 1 if counts["failed"] else 0


def _run_video(args: argparse.Namespace, model: Any) -> int:
    import cv2
    from tqdm import tqdm

    from detforge.apis.inference import inference_detector
    from detforge.structures.det_result import result_to_detections
    from detforge.visualization import draw_result

    rank, _ = _dist_env()
    if rank != 0:
        print(f"detforge infer: a video runs on rank 0 only; rank {rank} has nothing to do")
        return 0
    capture = cv2.VideoCapture(str(args.input))
    if not capture.isOpened():
        raise SystemExit(f"detforge infer: cannot open video {args.input}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video_out = out_dir / f"{Path(args.input).stem}_det.mp4"
    writer = None
    if not args.no_draw:
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        writer = cv2.VideoWriter(str(video_out), fourcc, fps, (width, height))
        if not writer.isOpened():
            raise SystemExit(f"detforge infer: cannot write video {video_out}")
    jsonl = out_dir / f"{Path(args.input).stem}_det.jsonl"
    jsonl.unlink(missing_ok=True)
    results_file = _JsonLines(jsonl)
    classes, frame_index = list(model.CLASSES), 0
    try:
        with tqdm(total=total, desc="infer video", unit="frame", dynamic_ncols=True) as bar:
            while True:
                frames: list[Any] = []
                while len(frames) < max(1, args.batch_size):
                    ok, frame = capture.read()
                    if not ok:
                        break
                    frames.append(frame)
                if not frames:
                    break
                for frame, result in zip(frames, inference_detector(model, frames), strict=True):
                    detections = result_to_detections(result, classes, args.score_thr)
                    height, width = frame.shape[:2]
                    results_file.write(
                        dict(frame=frame_index, width=width, height=height, detections=detections)
                    )
                    if writer is not None:
                        writer.write(
                            draw_result(
                                frame, result, classes, args.score_thr, palette=args.palette
                            )
                        )
                    frame_index += 1
                bar.update(len(frames))
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        results_file.close()
    where = f"{video_out} and " if writer is not None else ""
    print(f"detforge infer: {frame_index} frames -> {where}{jsonl}")
    return 0


def run(args: argparse.Namespace) -> int:
    from detforge.apis.inference import init_detector
    from detforge.visualization import default_palette

    if args.batch_size < 1:
        raise SystemExit(f"detforge infer: --batch-size must be >= 1, got {args.batch_size}")
    source = Path(args.input)
    is_video = source.is_file() and source.suffix.lower() in VIDEO_EXTENSIONS
    paths = [] if is_video else list_images(source, exclude=Path(args.out_dir) / "vis")
    if not is_video and not paths:
        raise SystemExit(f"detforge infer: no images found in {source}")
    model = init_detector(
        args.config,
        args.checkpoint,
        device=args.device,
        cfg_options=resolve_cfg_options(args),
        strict=not args.allow_partial,
    )
    if args.palette is None:
        args.palette = default_palette(len(getattr(model, "CLASSES", ())))
    return _run_video(args, model) if is_video else _run_images(args, model, paths)
