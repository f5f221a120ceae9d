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
from detforge.cli import (
    analyze_anchors,
    analyze_logs,
    analyze_results,
    benchmark,
    browse_dataset,
    coco_error_analysis,
    confusion_matrix,
    convert,
    data,
    demo,
    eval_metric,
    export,
    get_flops,
    hard_examples,
    infer,
    optimize_anchors,
    print_config,
    publish_model,
    robustness_eval,
    serve,
    test,
    test_robustness,
    train,
)
from detforge.errors import ConfigError, InvalidLossError
from detforge.utils.safe_pickle import PickleLoadError

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = (
    print_config,
    train,
    test,
    demo,
    infer,
    convert,
    serve,
    get_flops,
    benchmark,
    publish_model,
    eval_metric,
    browse_dataset,
    analyze_results,
    confusion_matrix,
    hard_examples,
    coco_error_analysis,
    analyze_anchors,
    optimize_anchors,
    test_robustness,
    robustness_eval,
    analyze_logs,
    data,
    export,
)


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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not when created), so
    repeated ``main()`` calls in one process (tests, notebooks) log where stderr points now."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _setup_logging() -> None:
    logger = logging.getLogger("detforge")
    if not logger.handlers:
        handler = _StderrHandler(sys.stderr)
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
    except (ConfigError, FileNotFoundError, InvalidLossError, PickleLoadError) as exc:
        print(f"detforge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
