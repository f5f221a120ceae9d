"""``detforge eval-metric CONFIG RESULTS.pkl``: evaluate saved results (v2's ``eval_metric.py``).

``RESULTS.pkl`` is ``detforge test --out``'s file for the config's ``data.test``. ``--eval``
names the metrics (``bbox``, ``segm``, ``proposal`` for COCO; ``mAP``, ``recall`` for VOC-style
datasets); the config's ``evaluation`` dict supplies the other arguments of
``dataset.evaluate`` (its hook-only keys dropped), ``--eval-options`` override them.
``--format-only`` writes the result files instead (e.g. COCO json with
``--eval-options jsonfile_prefix=./results``).
"""

from __future__ import annotations

import argparse
from typing import Any

from detforge.cli.print_config import add_cfg_options_argument, resolve_cfg_options
from detforge.config import DictAction

__all__ = ["add_parser", "run"]

# Arguments of mmcv's EvalHook that v2 configs may carry and detforge's hook does not declare.
_MMCV_HOOK_KEYS = ("less_keys", "greater_keys", "out_dir", "file_client_args", "efficient_test")


def _evaluate_kwargs(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The config's ``evaluation`` dict as ``dataset.evaluate`` kwargs, as the hook builds them.

    Every named argument of ``EvalHook``/``DistEvalHook.__init__`` (read from their
    signatures) except ``metric`` is dropped, and ``eval_kwargs`` is merged in (the hook passes
    ``dict(eval_kwargs, metric=metric, **other_keys)``).
    """
    import inspect

    from detforge.engine.hooks.eval_hook import DistEvalHook, EvalHook

    hook_keys = set(_MMCV_HOOK_KEYS)
    for hook in (EvalHook, DistEvalHook):
        for name, param in inspect.signature(hook.__init__).parameters.items():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                hook_keys.add(name)
    hook_keys -= {"self", "metric"}
    kwargs = dict(evaluation.get("eval_kwargs") or {})
    kwargs.update({k: v for k, v in evaluation.items() if k not in hook_keys})
    return kwargs


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval-metric",
        help="evaluate a saved results.pkl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="config file")
    parser.add_argument("pkl_results", help="results in pickle format")
    parser.add_argument(
        "--format-only", action="store_true", help="format the results without evaluating"
    )
    parser.add_argument("--eval", type=str, nargs="+", help="metrics, e.g. bbox segm mAP recall")
    add_cfg_options_argument(parser)
    parser.add_argument(
        "--eval-options", nargs="+", action=DictAction, help="kwargs for dataset.evaluate"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from detforge.analysis.results import ResultsError, build_test_dataset, load_results
    from detforge.config import load_config

    if not (args.eval or args.format_only):
        raise SystemExit(
            "detforge eval-metric: please specify at least one operation (eval/format the "
            'results) with the argument "--eval", "--format-only"'
        )
    if args.eval and args.format_only:
        raise SystemExit("detforge eval-metric: --eval and --format-only cannot be both specified")
    cfg = load_config(args.config, cfg_options=resolve_cfg_options(args)).cfg
    dataset = build_test_dataset(cfg)
    try:
        outputs = load_results(args.pkl_results, num_images=len(dataset))
    except ResultsError as exc:
        raise SystemExit(f"detforge eval-metric: {exc}") from None
    kwargs = dict(args.eval_options or {})
    if args.format_only:
        dataset.format_results(outputs, **kwargs)
    if args.eval:
        eval_kwargs = _evaluate_kwargs(dict(cfg.get("evaluation") or {}))
        eval_kwargs.update(dict(metric=args.eval, **kwargs))
        print(dict(dataset.evaluate(outputs, **eval_kwargs)))
    return 0
