"""``detforge SUBCOMMAND ...``: the single command-line entry point.

Each subcommand module exposes ``add_parser(subparsers)`` (which sets ``func`` on its parser)
and keeps its logic in functions that tests can call directly.

Errors: a :class:`~detforge.errors.DetforgeError` (every error the project raises on purpose:
config, dataset, image, checkpoint, ...) or an ``OSError`` (a missing file, a read-only or full
disk, a path through a regular file, ...) prints ``detforge <command>: error: <message>`` on
stderr and exits with 1; an ``OSError`` names its file and the reason. Ctrl-C prints
``detforge <command>: interrupted`` and exits with 130. ``--debug`` (before or after the
subcommand) or ``DETFORGE_DEBUG=1`` lets these propagate with their traceback instead; any
other exception is a bug and always keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
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
from detforge.errors import DetforgeError

__all__ = ["DEBUG_ENV", "build_parser", "error_message", "main"]

#: Environment variable that, set to anything but ``''`` or ``'0'``, acts as ``--debug``.
DEBUG_ENV = "DETFORGE_DEBUG"
_DEBUG_HELP = f"show the traceback of an error instead of one line (also: {DEBUG_ENV}=1)"

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
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.add_parser(subparsers)
    _add_to_subcommands(parser, set())
    return parser


def _add_to_subcommands(parser: argparse.ArgumentParser, seen: set[int]) -> None:
    """Give every (nested) subcommand ``--debug`` and its full name (``prog``) for messages.

    The subcommands' ``--debug`` defaults to ``SUPPRESS`` so that it does not overwrite the
    global one when it is not given after the subcommand.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in action.choices.values():
            if id(sub) in seen:  # an alias of a subcommand already seen
                continue
            seen.add(id(sub))
            sub.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
            )
            sub.set_defaults(command_prog=sub.prog)
            _add_to_subcommands(sub, seen)


def error_message(exc: BaseException) -> str:
    """The message of ``exc`` for one ``error:`` line; an ``OSError`` with an error number
    gives its file (and the second file of a rename) and the reason.

    Example:
        >>> import errno
        >>> error_message(PermissionError(errno.EACCES, 'Permission denied', 'w/x.pth'))
        'w/x.pth: Permission denied'
        >>> error_message(OSError(errno.ENOSPC, 'No space left on device'))
        'No space left on device'
    """
    if not isinstance(exc, OSError) or not exc.strerror:
        return str(exc)
    if exc.filename is None:
        return str(exc.strerror)
    place = os.fsdecode(exc.filename)
    if exc.filename2 is not None:
        place += f" -> {os.fsdecode(exc.filename2)}"
    return f"{place}: {exc.strerror}"


def _debugging(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


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
    prog = getattr(args, "command_prog", None) or f"detforge {args.command}"
    try:
        code: int = args.func(args)
    except (DetforgeError, OSError) as exc:
        if _debugging(args):
            raise
        print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if _debugging(args):
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
