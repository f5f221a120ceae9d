"""``--allow-partial``: the opt-out of the commands that load a trained detector (``test``,
``infer``, ``serve``, ``export``, ``test-robustness``) from failing on a checkpoint that does
not fit.

Without it, a checkpoint that leaves a weight of the model unset (a key missing, or a tensor of
another shape: a checkpoint of another model or another class count) is an error that lists
the keys, names the file and the model type. With it, what fits is loaded and the rest is a
warning, as in v2. A checkpoint of which no tensor fits fails either way.
"""

from __future__ import annotations

import argparse

__all__ = ["add_allow_partial_argument"]


def add_allow_partial_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-partial`` (``args.allow_partial``, default False) to ``parser``."""
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="load a checkpoint that leaves some weights of the model unset (missing or of "
        "another shape) with a warning, instead of failing",
    )
