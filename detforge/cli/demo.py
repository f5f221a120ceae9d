"""``detforge demo``: the end-to-end demo behind ``make demo``.

The demo trains and evaluates a small detector on a dataset the project generates; it needs
the training loop, which is not built yet, so for now it says so and fails.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="train and evaluate a small detector on a generated dataset"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    print(
        "detforge demo: not built yet. It arrives with the training issue "
        "(runner, train/test CLIs); until then `make demo` exits non-zero.",
        file=sys.stderr,
    )
    return 1
