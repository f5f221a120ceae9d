"""``detforge export onnx|torchscript CONFIG CHECKPOINT [OUTPUT]``: deployable graphs.

The graph takes one normalised, padded image ``input [1, 3, H, W]`` and returns v2's ONNX
outputs ``dets [N, 5]`` (x1, y1, x2, y2, score, in the input's frame: divide by the
``scale_factor`` of the resize to get original-image boxes), ``labels [N]`` and, for Mask
R-CNN, ``masks [N, 28, 28]`` (probabilities over each box). Decoding, per-level ``nms_pre``,
``score_thr``, class-wise NMS and ``max_per_img`` of the config's ``test_cfg`` run inside the
graph; ``--skip-postprocess`` exports the raw head outputs instead (single-stage detectors).

``--input-img`` is traced with after the config's test pipeline (``--shape H W`` resizes it to
exactly that size instead, as v2's ``pytorch2onnx.py`` does). ``--verify`` compares ONNX
Runtime (or the TorchScript module) with the PyTorch model's ``simple_test`` on that image
(and on ``--test-img``) and prints the largest differences. v2's ``--dataset``, ``--mean`` and
``--std`` are accepted and ignored with a warning: the config's ``img_norm_cfg`` and classes
are used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from detforge.cli.allow_partial import add_allow_partial_argument
from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options

__all__ = ["add_parser", "run"]

_DEFAULT_OUT = {"onnx": "tmp.onnx", "torchscript": "tmp.pt"}


def _common(parser: argparse.ArgumentParser, fmt: str) -> None:
    parser.add_argument("config", help="model config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("output", nargs="?", help=f"output file (default {_DEFAULT_OUT[fmt]})")
    parser.add_argument("--output-file", help="output file (v2's spelling of OUTPUT)")
    parser.add_argument(
        "--input-img",
        help="image to trace and verify with (required), e.g. MMDetection's demo/demo.jpg",
    )
    parser.add_argument("--test-img", help="a second image to verify on")
    parser.add_argument(
        "--shape",
        type=int,
        nargs="+",
        metavar="SIZE",
        help="resize the input to exactly H W (one value: square); default: the test pipeline",
    )
    parser.add_argument("--verify", action="store_true", help="compare with PyTorch's results")
    parser.add_argument(
        "--atol", type=float, default=1e-3, help="tolerance of --verify on boxes and scores"
    )
    parser.add_argument(
        "--skip-postprocess",
        action="store_true",
        help="export the raw head outputs (no decoding, no NMS; single-stage detectors)",
    )
    add_allow_partial_argument(parser)
    add_cfg_options_argument(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="export a detector to ONNX or TorchScript",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT")
    onnx = formats.add_parser(
        "onnx",
        help="ONNX (runs in ONNX Runtime)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(onnx, "onnx")
    onnx.add_argument(
        "--opset-version",
        "--opset",
        type=int,
        help="ONNX opset (default 11 as v2; 16 for aligned RoIAlign, 19 for deformable convs)",
    )
    onnx.add_argument("--dynamic-export", action="store_true", help="dynamic input height/width")
    onnx.add_argument("--simplify", action="store_true", help="simplify with onnxsim (optional)")
    onnx.add_argument("--show", action="store_true", help="print the exported graph")
    # v2's normalisation flags: accepted, ignored with a warning (the config's values are used)
    onnx.add_argument("--dataset", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    for flag in ("--mean", "--std"):
        onnx.add_argument(
            flag, type=float, nargs="+", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    ts = formats.add_parser(
        "torchscript",
        help="traced TorchScript module (torch.jit.load)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(ts, "torchscript")
    parser.set_defaults(func=run)
    return parser


def _output_path(args: argparse.Namespace) -> str:
    if args.output and args.output_file and args.output != args.output_file:
        raise SystemExit(
            f"detforge export: two outputs given ({args.output} and --output-file "
            f"{args.output_file}); give one"
        )
    out: str = args.output or args.output_file or _DEFAULT_OUT[args.format]
    return out


def _metadata(model: Any, meta: dict[str, Any], config: str) -> dict[str, Any]:
    norm = meta.get("img_norm_cfg") or {}
    return {
        "classes": list(getattr(model, "CLASSES", None) or []),
        "img_norm_cfg": {
            key: (value.tolist() if hasattr(value, "tolist") else value)
            for key, value in dict(norm).items()
        },
        "config": os.path.basename(config),
    }


def _warn_v2_normalisation(args: argparse.Namespace, model: Any, meta: dict[str, Any]) -> None:
    """v2's ``--dataset/--mean/--std`` are ignored: say so, with the values used instead."""
    given = [f"--{name}" for name in ("dataset", "mean", "std") if name in vars(args)]
    if not given:
        return
    used = _metadata(model, meta, args.config)

    def values(key: str) -> str:  # float32 in the pipeline: print the config's short values
        return "[" + ", ".join(f"{v:.6g}" for v in used["img_norm_cfg"].get(key, [])) + "]"

    print(
        f"detforge export: warning: {', '.join(given)} ignored (deprecated in v2): the config's "
        f"img_norm_cfg (mean {values('mean')}, std {values('std')}) and classes "
        f"{used['classes']} are used",
        file=sys.stderr,
    )


def _verify(
    model: Any, runner: Any, image: str, img: Any, meta: dict[str, Any], args: argparse.Namespace
) -> bool:
    """Compare ``runner`` on the prepared ``img`` (from ``image``) with PyTorch."""
    from detforge.export import compare_outputs, pytorch_outputs

    reference = pytorch_outputs(model, img, meta, postprocess=not args.skip_postprocess)
    rcnn_cfg = dict(getattr(getattr(model, "roi_head", None), "test_cfg", None) or {})
    thr = float(rcnn_cfg.get("mask_thr_binary", 0.5))
    report = compare_outputs(reference, runner(img), atol=args.atol, mask_thr=thr)
    print(f"verify on {image} {list(img.shape)}: {report.summary()}")
    return report.ok


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ImportError, NotImplementedError, RuntimeError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"detforge export: error: {message}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "format", None) is None:
        raise SystemExit("detforge export: choose a format: onnx or torchscript")
    if not args.input_img:
        raise SystemExit(
            "detforge export: --input-img is required: the graph is traced on a real image "
            "(e.g. MMDetection's demo/demo.jpg)"
        )
    from detforge.apis.inference import init_detector
    from detforge.export import (
        export_onnx,
        export_torchscript,
        onnx_session,
        parse_shape,
        prepare_input,
        require_onnxsim,
        run_onnx,
        run_torchscript,
        simplify_onnx,
    )

    out = _output_path(args)
    if getattr(args, "simplify", False):
        require_onnxsim()  # before loading the model
    try:
        shape = parse_shape(args.shape)
    except ValueError as exc:
        raise SystemExit(f"detforge export: {exc}") from None
    model = init_detector(
        args.config,
        args.checkpoint,
        device="cpu",
        cfg_options=resolve_cfg_options(args),
        strict=not args.allow_partial,
    )
    img, meta = prepare_input(model.cfg, args.input_img, shape)
    _warn_v2_normalisation(args, model, meta)
    postprocess = not args.skip_postprocess
    start = time.perf_counter()
    runner: Any
    if args.format == "onnx":
        info = export_onnx(
            model,
            img,
            out,
            opset_version=args.opset_version,
            dynamic_export=args.dynamic_export,
            postprocess=postprocess,
            verbose=args.show,
            metadata=_metadata(model, meta, args.config),
        )
        if args.simplify:
            simplify_onnx(out)
        print(
            f"Successfully exported ONNX model: {out} (opset {info['opset']}, input "
            f"{list(img.shape)}{' dynamic H/W' if args.dynamic_export else ''}, outputs "
            f"{', '.join(info['output_names'])}{', simplified' if args.simplify else ''}) in "
            f"{time.perf_counter() - start:.1f} s"
        )
        session = onnx_session(out) if args.verify else None

        def runner(x: Any) -> Any:
            return run_onnx(session, x)

        dynamic = args.dynamic_export
    else:
        module = export_torchscript(model, img, out, postprocess=postprocess)
        print(
            f"Successfully exported TorchScript model: {out} (input {list(img.shape)}) in "
            f"{time.perf_counter() - start:.1f} s"
        )

        def runner(x: Any) -> Any:
            return run_torchscript(module, x)

        dynamic = True
    if not args.verify:
        return 0
    ok = _verify(model, runner, args.input_img, img, meta, args)
    if args.test_img:
        # a static graph only takes its traced size: resize the test image to it
        test_shape = shape if dynamic else (int(img.shape[-2]), int(img.shape[-1]))
        test_img, test_meta = prepare_input(model.cfg, args.test_img, test_shape)
        ok = _verify(model, runner, args.test_img, test_img, test_meta, args) and ok
    if not ok:
        print("detforge export: the exported model does not match PyTorch (see above)")
    return 0 if ok else 1
