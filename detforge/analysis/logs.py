"""Training-log analysis (v2's ``tools/analysis_tools/analyze_logs.py``): curves and train time.

Reads the ``<timestamp>.log.json`` files that :class:`~detforge.engine.hooks.logger.TextLoggerHook`
writes (MMDetection's schema): a first line of run metadata (``env_info``, ``config``, ``seed``,
``exp_name``), then one object per line: train lines ``mode='train', epoch, iter, lr, ...,
loss_*, loss, time`` (``iter`` counts inside the epoch) and val lines ``mode='val', epoch, iter,
lr, bbox_mAP, ...``.

Semantics kept from v2: metric keys (``'mAP'`` in the name, or keys found only on val lines) are
plotted per epoch, everything else (losses, ``lr``, ``time``) per iteration, with
``x = (epoch - 1) * iters_per_epoch + iter`` where ``iters_per_epoch`` is the largest ``iter``
logged on a train line (exact when the epoch length is a multiple of the log interval, as v2
assumes); the train-time statistics drop the first logged ``time`` of every epoch unless
``include_outliers`` (it holds the warm-up: data loader start, first allocations).

One change from v2: a metric point sits at the epoch its val line records. v2 placed the values
at ``range(start_epoch, last_epoch + 1, eval_interval)``, which is only right when those flags
match the training's evaluation schedule; the flags are still accepted, and not needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "JsonLog",
    "LogAnalysisError",
    "TrainTimeStats",
    "cal_train_time",
    "format_train_time",
    "load_json_log",
    "load_json_logs",
    "plot_curve",
]


class LogAnalysisError(DetforgeError, ValueError):
    """A log file or a request that cannot be analysed (the message names the file and key)."""


@dataclass
class JsonLog:
    """One parsed ``*.log.json``.

    Attributes:
        path: The file.
        meta: The first line when it is run metadata (no ``mode``), else ``{}``.
        records: Every later line that has an ``epoch``, in file order.
    """

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The file name without ``.log.json`` (or ``.json``): the default legend prefix."""
        base = self.path.name
        for suffix in (".log.json", ".json"):
            if base.endswith(suffix):
                return base[: -len(suffix)]
        return base

    def train(self) -> list[dict[str, Any]]:
        """The train lines."""
        return [r for r in self.records if r.get("mode", "train") == "train"]

    def val(self) -> list[dict[str, Any]]:
        """The val lines (eval metrics, val losses)."""
        return [r for r in self.records if r.get("mode") == "val"]


def load_json_log(path: str | os.PathLike[str]) -> JsonLog:
    """Parse one ``*.log.json`` file.

    The first line is taken as metadata when it has no ``mode`` (v2 always skips it); lines
    without ``epoch`` and blank lines are skipped, as v2 does.

    Raises:
        FileNotFoundError: The file does not exist.
        LogAnalysisError: A line is not a JSON object (naming file and line number).

    Example:
        >>> import tempfile, json, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.log.json"
        >>> _ = p.write_text(json.dumps({"seed": 0}) + "\\n"
        ...                  + json.dumps({"mode": "train", "epoch": 1, "iter": 5, "loss": 1.5}))
        >>> log = load_json_log(p)
        >>> log.name, log.meta, log.records[0]["loss"]
        ('run', {'seed': 0}, 1.5)
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"log file not found: {file}")
    log = JsonLog(path=file)
    with open(file, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LogAnalysisError(f"{file}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise LogAnalysisError(f"{file}:{number}: expected a JSON object per line")
            if number == 1 and "mode" not in record:
                log.meta = record
            elif "epoch" in record:
                log.records.append(record)
    return log


def load_json_logs(paths: Sequence[str | os.PathLike[str]]) -> list[JsonLog]:
    """:func:`load_json_log` of every path, in order."""
    return [load_json_log(p) for p in paths]


# --- cal_train_time ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainTimeStats:
    """Iteration-time statistics of one log (seconds per iteration).

    Attributes:
        slowest_epoch, slowest_time: The epoch with the highest mean iter time, and that mean.
        fastest_epoch, fastest_time: The epoch with the lowest mean iter time, and that mean.
        std_over_epochs: Population std (ddof 0) of the per-epoch means.
        average_iter_time: Mean over every kept ``time`` value of the log.
        num_epochs: Epochs that contributed.
    """

    slowest_epoch: int
    slowest_time: float
    fastest_epoch: int
    fastest_time: float
    std_over_epochs: float
    average_iter_time: float
    num_epochs: int


def cal_train_time(log: JsonLog, include_outliers: bool = False) -> TrainTimeStats:
    """Train-time statistics of ``log`` from the ``time`` of its train lines.

    Args:
        log: A parsed log.
        include_outliers: Keep the first logged ``time`` of each epoch (v2 drops it).

    Raises:
        LogAnalysisError: No epoch has a usable ``time`` value (with the hint v2 gives).

    Example:
        >>> lines = [dict(mode="train", epoch=e, iter=i, time=t)
        ...          for e, ts in ((1, [9.0, 1.0, 3.0]), (2, [8.0, 1.0, 2.0]))
        ...          for i, t in zip((10, 20, 30), ts)]
        >>> s = cal_train_time(JsonLog(Path("x.log.json"), records=lines))
        >>> s.slowest_epoch, s.slowest_time, s.fastest_epoch, s.average_iter_time
        (1, 2.0, 2, 1.75)
    """
    per_epoch: dict[int, list[float]] = {}
    for record in log.train():
        if "time" in record:
            per_epoch.setdefault(int(record["epoch"]), []).append(float(record["time"]))
    kept = {
        epoch: times if include_outliers else times[1:]
        for epoch, times in sorted(per_epoch.items())
    }
    kept = {epoch: times for epoch, times in kept.items() if times}
    if not kept:
        raise LogAnalysisError(
            f"{log.path}: no iteration times to analyse"
            + (
                ""
                if include_outliers or not per_epoch
                else " once the first logged iteration of each epoch is dropped; reduce "
                "log_config.interval so that an epoch logs at least twice, or pass "
                "--include-outliers"
            )
        )
    epochs = list(kept)
    means = np.array([np.mean(kept[e]) for e in epochs])
    slow, fast = int(np.argmax(means)), int(np.argmin(means))
    return TrainTimeStats(
        slowest_epoch=epochs[slow],
        slowest_time=float(means[slow]),
        fastest_epoch=epochs[fast],
        fastest_time=float(means[fast]),
        std_over_epochs=float(np.std(means)),
        average_iter_time=float(np.mean(np.concatenate([kept[e] for e in epochs]))),
        num_epochs=len(epochs),
    )


def format_train_time(path: str | os.PathLike[str], stats: TrainTimeStats) -> str:
    """v2's report for one log (four decimals)."""
    return "\n".join(
        [
            f"-----Analyze train time of {path}-----",
            f"slowest epoch {stats.slowest_epoch}, average time is {stats.slowest_time:.4f}",
            f"fastest epoch {stats.fastest_epoch}, average time is {stats.fastest_time:.4f}",
            f"time std over epochs is {stats.std_over_epochs:.4f}",
            f"average iter time: {stats.average_iter_time:.4f} s/iter",
        ]
    )


# --- plot_curve --------------------------------------------------------------------------------
def _is_epoch_key(log: JsonLog, key: str) -> bool:
    return "mAP" in key or not any(key in r for r in log.train())


def _epoch_points(log: JsonLog, key: str) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for record in log.val() if any(key in r for r in log.val()) else log.records:
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            xs.append(int(record["epoch"]))
            ys.append(float(value))
    return xs, ys


def _iter_points(log: JsonLog, key: str) -> tuple[list[float], list[float]]:
    train = log.train()
    per_epoch = max(int(r["iter"]) for r in train)
    xs: list[float] = []
    ys: list[float] = []
    for record in train:
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            xs.append((int(record["epoch"]) - 1) * per_epoch + int(record["iter"]))
            ys.append(float(value))
    return xs, ys


def _missing_key(log: JsonLog, key: str) -> LogAnalysisError:
    keys = sorted({k for r in log.records for k in r} - {"mode", "epoch", "iter"})
    hint = (
        "was the model trained with --no-validate, or without an evaluation metric?"
        if "mAP" in key
        else "is log_config.interval larger than the iterations of one epoch?"
    )
    return LogAnalysisError(
        f"{log.path} does not contain {key!r} ({hint}); keys in this log: {', '.join(keys)}"
    )


def _style_context(style: str | None) -> Any:
    import matplotlib.style

    if not style:
        return matplotlib.style.context("default")
    for name in (style, f"seaborn-v0_8-{style}"):
        if name in matplotlib.style.available:
            return matplotlib.style.context(name)
    choices = sorted({s.removeprefix("seaborn-v0_8-") for s in matplotlib.style.available})
    raise LogAnalysisError(f"unknown --style {style!r}; choose one of {', '.join(choices)}")


def plot_curve(
    logs: Sequence[JsonLog],
    keys: Sequence[str] = ("bbox_mAP",),
    legend: Sequence[str] | None = None,
    title: str | None = None,
    start_epoch: int = 1,
    eval_interval: int = 1,
    style: str | None = "dark",
    figure: Figure | None = None,
) -> Figure:
    """Draw ``keys`` of every log into one figure: one panel per key, one curve per log.

    Metric keys are plotted against the epoch (markers), one point per val line at the epoch
    that line records; other keys against the iteration. Curve labels are ``legend``
    (``len(logs) * len(keys)`` entries, log-major as in v2) or ``<log name>_<key>``.

    Args:
        logs: Parsed logs (:func:`load_json_logs`).
        keys: Log keys, e.g. ``('loss_cls', 'loss_bbox', 'bbox_mAP')``.
        legend: Curve labels.
        title: Figure title.
        start_epoch: v2's first evaluated epoch; accepted for compatibility, unused (every val
            line carries its epoch).
        eval_interval: v2's epochs between evaluations; accepted for compatibility, unused.
        style: A matplotlib style, or a seaborn style name (``dark``, ``whitegrid`` ...) that
            matplotlib ships as ``seaborn-v0_8-<name>``; ``None`` for matplotlib's default.
        figure: Draw into this figure (default: a new backend-free ``Figure``).

    Returns:
        The figure; ``figure.axes[k].lines`` are the curves of ``keys[k]``.

    Raises:
        LogAnalysisError: A key is missing from a log or has no numeric value to plot, or
            ``legend`` has the wrong length.

    Example:
        >>> log = JsonLog(Path("a.log.json"), records=[
        ...     dict(mode="train", epoch=1, iter=10, loss=2.0),
        ...     dict(mode="train", epoch=1, iter=20, loss=1.0),
        ...     dict(mode="val", epoch=1, iter=4, bbox_mAP=0.3),
        ...     dict(mode="train", epoch=2, iter=10, loss=0.5),
        ...     dict(mode="val", epoch=2, iter=4, bbox_mAP=0.5)])
        >>> fig = plot_curve([log], keys=["loss", "bbox_mAP"])
        >>> [line.get_label() for ax in fig.axes for line in ax.lines]
        ['a_loss', 'a_bbox_mAP']
        >>> fig.axes[0].lines[0].get_xdata().tolist(), fig.axes[1].lines[0].get_xdata().tolist()
        ([10, 20, 30], [1, 2])
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not logs or not keys:
        raise LogAnalysisError("plot_curve needs at least one log and one key")
    del start_epoch, eval_interval  # v2 flags: the val lines' own epochs place the points
    if legend is None:
        legend = [f"{log.name}_{key}" for log in logs for key in keys]
    if len(legend) != len(logs) * len(keys):
        raise LogAnalysisError(
            f"--legend has {len(legend)} entries but {len(logs)} log(s) x {len(keys)} key(s) "
            f"need {len(logs) * len(keys)}"
        )
    with _style_context(style):
        fig = figure if figure is not None else Figure(figsize=(8, 3.2 * len(keys)))
        axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
        for j, key in enumerate(keys):
            ax = axes[j]
            by_epoch = False
            for i, log in enumerate(logs):
                if not any(key in r for r in log.records):
                    raise _missing_key(log, key)
                label = legend[i * len(keys) + j]
                epoch_key = _is_epoch_key(log, key)
                xs, ys = _epoch_points(log, key) if epoch_key else _iter_points(log, key)
                if not xs:
                    raise LogAnalysisError(
                        f"{log.path}: {key!r} has no numeric value to plot (values: "
                        f"{[r[key] for r in log.records if key in r][:3]!r})"
                    )
                if epoch_key:
                    by_epoch = True
                    ax.plot(xs, ys, label=label, marker="o")
                else:
                    ax.plot(xs, ys, label=label, linewidth=0.8)
            ax.set_xlabel("epoch" if by_epoch else "iter")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(key)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig
