"""``detforge print-config CONFIG``: show the config a run would use.

By default the config is printed after ``CFG_OPTIONS``, ``--cfg-options`` and the dialect
normaliser (whose rewrites go to stderr, one line each); ``--raw`` prints it before normalising,
as MMCV would merge it; ``--diff`` prints what the file changes relative to its ``_base_`` chain.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from detforge.config import Config, DictAction, load_config
from detforge.config.diff import config_diff

__all__ = ["add_cfg_options_argument", "add_parser", "run"]


def add_cfg_options_argument(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options`` (and its deprecated v2 spelling ``--options``) for any subcommand."""
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override config keys, e.g. optimizer.lr=0.01 data.train.pipeline.2.flip_ratio=0 "
        "(applied after the CFG_OPTIONS environment variable)",
    )
    parser.add_argument("--options", nargs="+", action=DictAction, help=argparse.SUPPRESS)


def resolve_cfg_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--cfg-options`` dict, accepting the deprecated ``--options`` like MMDetection."""
    if args.options and args.cfg_options:
        raise SystemExit("--options and --cfg-options cannot be both specified; use --cfg-options")
    if args.options:
        print("detforge: --options is deprecated, use --cfg-options", file=sys.stderr)
        return dict(args.options)
    return dict(args.cfg_options or {})


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "print-config",
        help="print the merged config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="config file (.py, .json or .yaml)")
    add_cfg_options_argument(parser)
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--raw", action="store_true", help="print the config before normalising")
    view.add_argument(
        "--diff", action="store_true", help="print what the file changes relative to its _base_"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    options = resolve_cfg_options(args)
    if args.diff:
        lines = config_diff(
            Config.base_of(args.config).to_dict(), Config.fromfile(args.config).to_dict()
        )
        print(f"# {args.config}: {len(lines)} change(s) relative to its _base_ chain")
        for line in lines:
            print(line)
        return 0
    loaded = load_config(args.config, cfg_options=options)
    cfg = loaded.raw if args.raw else loaded.cfg
    sys.stdout.write(cfg.pretty_text)
    return 0
