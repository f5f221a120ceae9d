"""``detforge SUBCOMMAND ...``: the single command-line entry point.

Each subcommand module exposes ``add_parser(subparsers)`` (which sets ``func`` on its parser)
and keeps its logic in functions that tests can call directly.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from detforge import __version__
from detforge.cli import convert, demo, print_config, test, train
from detforge.errors import ConfigError

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = (print_config, train, test, demo, convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detforge",
        description="Train, test and serve object detectors with MMDetection v2 configs.",
    )
    parser.add_argument("--version", action="version", version=f"detforge {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def _setup_logging() -> None:
    logger = logging.getLogger("detforge")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("detforge %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``detforge`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _setup_logging()
    try:
        code: int = args.func(args)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"detforge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
