"""``detforge analyze-logs {plot_curve,cal_train_time} LOG.json ...`` (v2's ``analyze_logs.py``).

``plot_curve`` draws the given keys of one or more ``*.log.json`` files into one figure (one panel
per key, one curve per log): metric keys such as ``bbox_mAP`` by epoch, losses by iteration.
``cal_train_time`` prints, per log, the slowest and fastest epoch (mean iteration time), the std
of the per-epoch means and the average iteration time; the first logged iteration of each epoch
is left out unless ``--include-outliers``.

Examples:
    detforge analyze-logs plot_curve work_dirs/a/20240101_120000.log.json \\
        work_dirs/b/20240102_093000.log.json --keys loss_cls bbox_mAP --legend a_cls a_map \\
        b_cls b_map --out curves.png
    detforge analyze-logs cal_train_time work_dirs/a/20240101_120000.log.json
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "analyze-logs",
        help="plot training curves or compute train time from *.log.json files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK")
    tasks.required = True
    plot = tasks.add_parser("plot_curve", help="plot curves of given keys")
    plot.add_argument("json_logs", nargs="+", help="path of train log in json format")
    plot.add_argument(
        "--keys", nargs="+", default=["bbox_mAP"], help="the metric(s) to plot (default bbox_mAP)"
    )
    compat = "accepted for v2 compatibility; metric points sit at the epochs their val lines log"
    plot.add_argument(
        "--start-epoch", type=int, default=1, help=f"v2's first eval epoch ({compat})"
    )
    plot.add_argument("--eval-interval", type=int, default=1, help=f"v2's eval step ({compat})")
    plot.add_argument("--title", help="title of the figure")
    plot.add_argument(
        "--legend", nargs="+", help="curve labels (logs x keys, default <log name>_<key>)"
    )
    plot.add_argument("--backend", help="matplotlib backend for showing (without --out)")
    plot.add_argument(
        "--style", default="dark", help="matplotlib or seaborn style name (default dark)"
    )
    plot.add_argument("--out", help="write the figure here (.png, .pdf, .svg ...)")
    plot.set_defaults(func=run)
    times = tasks.add_parser("cal_train_time", help="compute the average time per training iter")
    times.add_argument("json_logs", nargs="+", help="path of train log in json format")
    times.add_argument(
        "--include-outliers",
        action="store_true",
        help="include the first iteration of each epoch in the statistics",
    )
    times.set_defaults(func=run)
    parser.set_defaults(func=run)
    return parser


def _plot(args: argparse.Namespace) -> int:
    from detforge.analysis.logs import load_json_logs, plot_curve

    logs = load_json_logs(args.json_logs)
    for log in logs:
        for key in args.keys:
            print(f"plot curve of {log.path}, metric is {key}")
    kwargs: dict[str, Any] = dict(
        keys=args.keys,
        legend=args.legend,
        title=args.title,
        start_epoch=args.start_epoch,
        eval_interval=args.eval_interval,
        style=args.style,
    )
    if args.out:
        fig = plot_curve(logs, **kwargs)
        fig.savefig(args.out)
        print(f"save curve to: {args.out}")
        return 0
    import matplotlib

    if args.backend:
        matplotlib.use(args.backend)
    import matplotlib.pyplot as plt

    plot_curve(logs, figure=plt.figure(figsize=(8, 3.2 * len(args.keys))), **kwargs)
    plt.show()
    return 0


def _train_time(args: argparse.Namespace) -> int:
    from detforge.analysis.logs import cal_train_time, format_train_time, load_json_log

    for path in args.json_logs:
        stats = cal_train_time(load_json_log(path), include_outliers=args.include_outliers)
        print(format_train_time(path, stats))
        print()
    return 0


def run(args: argparse.Namespace) -> int:
    # a LogAnalysisError is one line (detforge.cli.main)
    return _plot(args) if args.task == "plot_curve" else _train_time(args)
