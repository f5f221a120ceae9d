"""``detforge publish-model IN OUT``: a checkpoint ready for release (v2's ``publish_model.py``).

Drops the optimizer, RNG and loss-scaler state and writes ``OUT-<sha256[:8]>.pth`` (``OUT``
without its ``.pth``), the model-zoo naming; prints the written path.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "publish-model",
        help="strip a checkpoint for release and add its hash to the name",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("in_file", help="input checkpoint filename")
    parser.add_argument("out_file", help="output checkpoint filename (the hash is appended)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.publish import publish_model
    from detforge.utils.checkpoint import CheckpointError

    try:
        path = publish_model(args.in_file, args.out_file)
    except CheckpointError as exc:
        raise SystemExit(f"detforge publish-model: {exc}") from None
    print(f"published {args.in_file} as {path}")
    return 0
