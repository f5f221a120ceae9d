"""``detforge serve CONFIG CHECKPOINT``: an HTTP service and web page for a trained detector.

Open http://HOST:PORT/ for the page (choose or drop an image, move the score slider), or call
the API: ``curl -F file=@demo.jpg http://127.0.0.1:8000/predict`` answers
``{"detections": [{"bbox": [x1, y1, x2, y2], "score": s, "label": i, "class": name}],
"width": W, "height": H, "time_ms": t}``; ``?format=image`` answers the drawn PNG. The old
Tornado app's ``GET /main?image=NAME`` works for files under ``--image-root`` only. Requests
from all clients are queued and run in batches of up to ``--max-batch`` images of one size.

Memory: each request takes its image's pixel count (from the header) out of a budget of
``--max-megapixels-in-flight`` before decoding it (``?format=image`` takes it twice) and gives it
back when answered; a request that finds no room within 5 s gets 503 with Retry-After. Decoded
images take 3 bytes a pixel, about twice that while OpenCV decodes, so they add at most about
7 bytes per budget pixel to the server's memory (about 900 MB at the default 128 megapixels;
TIFF and formats only Pillow reads briefly need up to 15); the model's inputs add at most
``--max-batch`` images at the test scale.

Needs the ``serve`` extra: ``pip install 'detforge[serve]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import sys
from pathlib import Path
from typing import Any

from detforge.cli.allow_partial import add_allow_partial_argument
from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve a detector over HTTP (JSON API and a web page)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--score-thr", type=float, default=0.3, help="default score threshold")
    parser.add_argument("--device", help="cuda:0, cpu, ... (default: cuda:0 if available)")
    parser.add_argument("--max-batch", type=int, default=8, help="most images per forward")
    parser.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="larger request bodies get 413"
    )
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=64.0,
        help="larger images get 413 before decoding (decompression bombs)",
    )
    parser.add_argument(
        "--max-megapixels-in-flight",
        type=float,
        default=128.0,
        help="decoded pixels of all requests in progress together (>= --max-megapixels); "
        "more wait up to 5 s, then get 503; decoded images take at most ~7 bytes a pixel of it",
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=2.0, help="how long a batch waits to fill up"
    )
    parser.add_argument(
        "--image-root",
        help="enable GET /main?image=NAME for files under this folder (off when absent)",
    )
    parser.add_argument(
        "--compat-v2",
        action="store_true",
        help="answer GET /main as the v2 demo app: absolute paths inside --image-root are "
        "accepted and 'data' holds [x1, y1, x2, y2, label, score] rows",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level",
    )
    add_allow_partial_argument(parser)
    add_cfg_options_argument(parser)
    parser.set_defaults(func=run)
    return parser


def _check_args(args: argparse.Namespace) -> None:
    problems = []
    if not 0.0 <= args.score_thr <= 1.0:
        problems.append(f"--score-thr must be in [0, 1], got {args.score_thr}")
    if args.max_batch < 1:
        problems.append(f"--max-batch must be >= 1, got {args.max_batch}")
    if args.max_upload_mb <= 0:
        problems.append(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    if args.max_megapixels <= 0:
        problems.append(f"--max-megapixels must be > 0, got {args.max_megapixels}")
    if args.max_megapixels_in_flight < args.max_megapixels:
        problems.append(
            f"--max-megapixels-in-flight ({args.max_megapixels_in_flight:g}) must be at least "
            f"--max-megapixels ({args.max_megapixels:g})"
        )
    if not 0 <= args.port <= 65535:
        problems.append(f"--port must be in [0, 65535], got {args.port}")
    if args.image_root is not None and not Path(args.image_root).is_dir():
        problems.append(f"--image-root {args.image_root} is not a directory")
    if problems:
        raise SystemExit("detforge serve: " + "; ".join(problems))
    for name in ("config", "checkpoint"):
        if not Path(getattr(args, name)).is_file():
            raise FileNotFoundError(f"{name} file not found: {getattr(args, name)}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    cfg_options = resolve_cfg_options(args)
    try:
        import uvicorn

        from detforge.serving.app import create_app
    except ImportError as exc:
        print(
            f"detforge serve: error: {exc}; install the serve extra: pip install 'detforge[serve]'",
            file=sys.stderr,
        )
        return 1
    from detforge.apis.inference import init_detector
    from detforge.utils.device import model_device

    model = init_detector(
        args.config,
        args.checkpoint,
        device=args.device,
        cfg_options=cfg_options,
        strict=not args.allow_partial,
    )
    app = create_app(
        model,
        score_thr=args.score_thr,
        max_batch=args.max_batch,
        max_upload_mb=args.max_upload_mb,
        image_root=args.image_root,
        max_pixels=int(args.max_megapixels * 1e6),
        max_pixels_in_flight=int(args.max_megapixels_in_flight * 1e6),
        max_wait_ms=args.max_wait_ms,
        config_name=Path(args.config).name,
        compat_v2=args.compat_v2,
    )
    classes = len(getattr(model, "CLASSES", ()))
    print(
        f"detforge serve: {Path(args.config).name} ({classes} classes) on "
        f"{model_device(model)}; page http://{args.host}:{args.port}/ , "
        f"API docs http://{args.host}:{args.port}/docs",
        file=sys.stderr,
    )
    if not _is_loopback(args.host):
        print(
            f"detforge serve: warning: listening on {args.host} makes the service reachable "
            "from other machines; it has no authentication",
            file=sys.stderr,
        )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after shutting down
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, workers=1)
    return 0
