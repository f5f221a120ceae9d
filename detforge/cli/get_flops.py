"""``detforge get-flops CONFIG``: FLOPs and parameters of a detector (v2's ``get_flops.py``).

The input is ``(3, H, W)`` from ``--shape H W`` (default 1280 800), rounded up to
``--size-divisor``; ``model.forward_dummy`` is counted (two-stage models on 1000 random
proposals). "FLOPs" are multiply-accumulates as mmcv counted them, so numbers compare with the
model zoo's; ``Params`` counts trainable parameters, as v2 did, and the line after it gives the
exact trainable and total counts. Random weights: no checkpoint is needed.
"""

from __future__ import annotations

import argparse
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "format_report", "run"]

_RULER = "=" * 30
_WARNING = (
    "!!!Please be cautious if you use the results in papers. You may need to check if all ops "
    "are supported and verify that the flops computation is correct."
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "get-flops",
        help="count the FLOPs and parameters of a model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="config file")
    parser.add_argument(
        "--shape", type=int, nargs="+", default=[1280, 800], help="input image size: H W or S"
    )
    add_cfg_options_argument(parser)
    parser.add_argument(
        "--size-divisor",
        type=int,
        default=32,
        help="pad the input to a multiple of this (-1: no padding)",
    )
    parser.set_defaults(func=run)
    return parser


def format_report(info: Any, ori_shape: tuple[int, ...]) -> str:
    """v2's printout of a :class:`~detforge.analysis.flops.ComplexityInfo`.

    Example:
        >>> from detforge.analysis.flops import ComplexityInfo
        >>> info = ComplexityInfo(flops=239_324_000_000, params=37_743_348,
        ...                       total_params=37_968_692, input_shape=(3, 1280, 800))
        >>> print(format_report(info, (3, 1280, 800)).splitlines()[2])
        Flops: 239.32 GFLOPs
    """
    from detforge.analysis.flops import flops_to_string, params_to_string

    lines = []
    if tuple(info.input_shape) != tuple(ori_shape):
        lines += [
            _RULER,
            f"Use size divisor set input shape from {ori_shape} to {info.input_shape}",
            "",
        ]
    lines += [
        _RULER,
        f"Input shape: {info.input_shape}",
        f"Flops: {flops_to_string(info.flops)}",
        f"Params: {params_to_string(info.params)}",
        f"Params (exact): {info.params:,} trainable, {info.total_params:,} in total",
        _RULER,
        _WARNING,
    ]
    if info.uncounted_ops:
        lines.append(f"Not counted (no formula): {', '.join(info.uncounted_ops)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.flops import flops_to_string, get_model_complexity_info
    from detforge.analysis.flops import padded_input_shape as pad_shape
    from detforge.config import load_config
    from detforge.models.builder import build_detector

    try:
        unpadded = pad_shape(args.shape, -1)
        input_shape = pad_shape(args.shape, args.size_divisor)
    except ValueError as exc:
        raise SystemExit(f"detforge get-flops: --shape: {exc}") from None
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    try:
        info = get_model_complexity_info(lambda: build_detector(cfg.model), input_shape)
    except NotImplementedError as exc:
        raise SystemExit(f"detforge get-flops: {exc}") from None
    if info.by_module:
        print(
            "Flops by module: "
            + ", ".join(
                f"{name} {flops_to_string(value)}" for name, value in info.by_module.items()
            )
        )
    print(format_report(info, unpadded))
    return 0
