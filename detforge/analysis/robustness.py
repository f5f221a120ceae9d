"""Robustness to image corruptions: P, mPC and rPC (v2's ``test_robustness.py`` and
``robustness_eval.py``; Michaelis et al., "Benchmarking Robustness in Object Detection").

``test-robustness`` evaluates a detector on the test set once clean (severity 0) and once per
corruption and severity, and saves ``{corruption: {severity: eval}}`` where ``eval`` is
``{'bbox': {'AP': ..., 'AP50': ..., ... 'ARl': ...}}`` for COCO-style datasets and a list
over classes of ``{'ap': ...}`` (AP50) for VOC-style ones. From that file:

- ``P``: performance on clean data (severity 0);
- ``mPC``: mean performance over the corruptions and severities 1-5 (the 15 benchmark
  corruptions with ``aggregate='benchmark'``, every one in the file with ``'all'``);
- ``rPC = mPC / P``.

Unlike v2, severities absent from the file are left out of the mean instead of counting as
zero, the benchmark corruptions are picked by name rather than as the first 15 entries, and
VOC's rPC is the ratio of the class-mean mPC and P (v2 averaged per-class ratios, which is
infinite when a class has AP 0).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detforge.utils.image.corruptions import (
    BENCHMARK_CORRUPTIONS,
    CORRUPTION_GROUPS,
    CORRUPTIONS,
)
from detforge.utils.safe_pickle import load_pickle

__all__ = [
    "COCO_METRICS",
    "coco_eval_with_return",
    "corrupted_pipeline",
    "format_coco_summary",
    "format_robustness",
    "load_aggregated",
    "resolve_corruptions",
    "robustness_scores",
    "run_corruption_benchmark",
    "voc_eval_with_return",
]

COCO_METRICS = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)
# (AP or AR, IoU, area, maxDets) of each COCO_METRICS entry, for the COCOeval-style printout.
_COCO_ROWS = (
    (1, None, "all", 100), (1, 0.5, "all", 100), (1, 0.75, "all", 100),
    (1, None, "small", 100), (1, None, "medium", 100), (1, None, "large", 100),
    (0, None, "all", 1), (0, None, "all", 10), (0, None, "all", 100),
    (0, None, "small", 100), (0, None, "medium", 100), (0, None, "large", 100),
)  # fmt: skip


def resolve_corruptions(names: Sequence[str]) -> list[str]:
    """v2's ``--corruptions``: one group name (``benchmark``, ``all``, ``noise``, ``blur``,
    ``weather``, ``digital``, ``holdout``, ``None``) or corruption names.

    Example:
        >>> resolve_corruptions(['noise'])
        ['gaussian_noise', 'shot_noise', 'impulse_noise']
    """
    names = list(names)
    if len(names) == 1 and names[0] in CORRUPTION_GROUPS:
        return list(CORRUPTION_GROUPS[names[0]])
    for name in names:
        if name in CORRUPTION_GROUPS:
            raise ValueError(f"corruption group {name!r} must be given alone, got {names}")
        if name not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    return names


def coco_eval_with_return(
    dataset: Any, outputs: Sequence[Any], eval_types: Sequence[str]
) -> dict[str, Any]:
    """COCO evaluation of ``outputs`` with COCOeval's default ``maxDets`` (1, 10, 100).

    Returns:
        ``{'bbox': {'AP': ..., ..., 'ARl': ...}}`` (and ``'segm'``); ``'proposal'`` maps to
        COCOeval's 12 stats (class-agnostic, ``maxDets`` 100, 300, 1000).
    """
    import json

    from detforge.evaluation.coco import run_cocoeval

    files, tmp_dir = dataset.format_results(list(outputs))
    results: dict[str, Any] = {}
    try:
        for eval_type in eval_types:
            if eval_type not in ("bbox", "segm", "proposal"):
                raise ValueError(f"test-robustness: cannot evaluate {eval_type!r} on COCO data")
            with open(files[eval_type], encoding="utf-8") as handle:
                predictions = json.load(handle)
            if not predictions:
                results[eval_type] = dict.fromkeys(COCO_METRICS, 0.0)
                continue
            proposal = eval_type == "proposal"
            coco_eval = run_cocoeval(
                dataset.coco,
                predictions,
                "bbox" if proposal else eval_type,
                cat_ids=None if proposal else dataset.cat_ids,
                img_ids=dataset.img_ids,
                proposal_nums=(100, 300, 1000) if proposal else (1, 10, 100),
                use_cats=not proposal,
                logger="silent",
            )
            stats = [float(v) for v in coco_eval.stats]
            results[eval_type] = stats if proposal else dict(zip(COCO_METRICS, stats, strict=True))
    finally:
        if tmp_dir is not None:
            tmp_dir.cleanup()
    return results


def voc_eval_with_return(
    dataset: Any, outputs: Sequence[Any], iou_thr: float = 0.5, logger: Any = "silent"
) -> tuple[float, list[dict[str, float]]]:
    """VOC mAP of ``outputs`` and per class ``{'ap': ...}`` (11-point AP for VOC2007)."""
    from detforge.evaluation.mean_ap import eval_map

    annotations = [dataset.get_ann_info(i) for i in range(len(dataset))]
    name = "voc07" if getattr(dataset, "year", None) == 2007 else dataset.CLASSES
    mean_ap, per_class = eval_map(
        list(outputs), annotations, iou_thr=iou_thr, dataset=name, logger=logger
    )
    return float(mean_ap), [{"ap": float(r["ap"])} for r in per_class]


def load_aggregated(path: str | os.PathLike[str]) -> dict[str, dict[int, Any]]:
    """Read a ``*_results.pkl`` written by ``test-robustness``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"robustness results not found: {path}")
    data = load_pickle(path, "robustness results")
    if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
        raise ValueError(
            f"{path}: expected {{corruption: {{severity: results}}}} as test-robustness writes "
            f"(the *_results.pkl file), found {type(data).__name__}"
        )
    return {str(k): dict(v) for k, v in data.items()}


def _value(entry: Any, dataset: str, task: str, metrics: Sequence[str], where: str) -> np.ndarray:
    if dataset == "voc":
        if not isinstance(entry, Sequence) or not entry:
            raise ValueError(f"{where}: expected a list of per-class {{'ap': ...}} (VOC results)")
        return np.asarray([float(np.mean([c["ap"] for c in entry]))])
    if not isinstance(entry, Mapping) or task not in entry:
        found = list(entry) if isinstance(entry, Mapping) else type(entry).__name__
        raise KeyError(f"{where}: no {task!r} results (found {found}); wrong --task or --dataset?")
    missing = [m for m in metrics if m not in entry[task]]
    if missing:
        raise KeyError(f"{where}: {task} results have no {missing}")
    return np.asarray([float(entry[task][m]) for m in metrics])


def robustness_scores(
    aggregated: Mapping[str, Mapping[int, Any]],
    dataset: str = "coco",
    task: str = "bbox",
    metrics: Sequence[str] = COCO_METRICS,
    aggregate: str = "benchmark",
) -> dict[str, np.ndarray | None]:
    """``P``, ``mPC`` and ``rPC`` per metric (VOC: one value, class-mean AP50).

    Example:
        >>> agg = {'fog': {0: {'bbox': {'AP': 0.4}}, 1: {'bbox': {'AP': 0.3}},
        ...                2: {'bbox': {'AP': 0.1}}}}
        >>> {k: round(float(v[0]), 3) for k, v in robustness_scores(agg, metrics=['AP']).items()}
        {'P': 0.4, 'mPC': 0.2, 'rPC': 0.5}
    """
    if aggregate not in ("benchmark", "all"):
        raise ValueError(f"aggregate must be 'benchmark' or 'all', got {aggregate!r}")
    metrics = ["AP50"] if dataset == "voc" else list(metrics)
    clean = corrupted = None
    values = []
    for corruption, by_severity in aggregated.items():
        for severity, entry in by_severity.items():
            where = f"{corruption!r} severity {severity}"
            if int(severity) == 0:
                if clean is None:
                    clean = _value(entry, dataset, task, metrics, where)
                continue
            if aggregate == "benchmark" and corruption not in BENCHMARK_CORRUPTIONS:
                continue
            values.append(_value(entry, dataset, task, metrics, where))
    if values:
        corrupted = np.mean(values, axis=0)
    elif any(int(s) > 0 for by_sev in aggregated.values() for s in by_sev):
        raise ValueError(f"no benchmark corruption among {list(aggregated)}; use aggregate='all'")
    relative = None
    if clean is not None and corrupted is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = corrupted / clean
    return {"P": clean, "mPC": corrupted, "rPC": relative}


def format_coco_summary(values: Sequence[float]) -> str:
    """The 12 COCO numbers in COCOeval's summary layout (v2's ``print_coco_results``).

    Example:
        >>> print(format_coco_summary([0.5] * 12).splitlines()[1])
         Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.500
    """
    lines = []
    for value, (is_ap, iou, area, max_dets) in zip(values, _COCO_ROWS, strict=True):
        title = "Average Precision" if is_ap else "Average Recall"
        kind = "(AP)" if is_ap else "(AR)"
        iou_str = "0.50:0.95" if iou is None else f"{iou:0.2f}"
        lines.append(
            f" {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6s} | "
            f"maxDets={max_dets:>3d} ] = {value:0.3f}"
        )
    return "\n".join(lines)


def format_robustness(
    aggregated: Mapping[str, Mapping[int, Any]],
    dataset: str = "coco",
    task: str = "bbox",
    metrics: Sequence[str] | None = None,
    prints: Sequence[str] = ("mPC",),
    aggregate: str = "benchmark",
) -> str:
    """v2's ``robustness_eval`` printout of ``P``/``mPC``/``rPC`` for one task."""
    prints = ["P", "mPC", "rPC"] if list(prints) == ["all"] else list(prints)
    names = list(COCO_METRICS if metrics is None else metrics)
    scores = robustness_scores(aggregated, dataset, task, names, aggregate)
    titles = {
        "P": "Performance on Clean Data [P]",
        "mPC": "Mean Performance under Corruption [mPC]",
        "rPC": "Relative Performance under Corruption [rPC]",
    }
    lines = []
    for key in prints:
        value = scores[key]
        if value is None:
            why = "no severity 0 (clean) results" if key != "mPC" else "no corrupted results"
            lines.append(f"{titles[key]}: not available ({why} in the file)")
        elif dataset == "voc":
            unit = "in % =" if key == "rPC" else "in AP50 ="
            number = value[0] * 100 if key == "rPC" else value[0]
            lines.append(f"{titles[key]} {unit} {number:0.{1 if key == 'rPC' else 3}f}")
        elif metrics is None:
            lines += [f"{titles[key]} ({task})", format_coco_summary(value.tolist())]
        else:
            lines.append(f"{titles[key]} ({task})")
            for name, number in zip(names, value, strict=True):
                lines.append(
                    f"{name:5} => {number * 100:0.1f} %"
                    if key == "rPC"
                    else f"{name:5} =  {number:0.3f}"
                )
    return "\n".join(lines)


def corrupted_pipeline(
    pipeline: Sequence[Any], corruption: str, severity: int, seed: int | None = None
) -> list[Any]:
    """``pipeline`` with ``Corrupt`` inserted after its first (loading) step; severity 0 or
    corruption ``'None'`` leave it unchanged.

    Example:
        >>> [s['type'] for s in corrupted_pipeline(
        ...     [dict(type='LoadImageFromFile'), dict(type='Collect')], 'fog', 2)]
        ['LoadImageFromFile', 'Corrupt', 'Collect']
    """
    steps = [dict(step) for step in pipeline]
    if severity > 0 and corruption != "None":
        step: dict[str, Any] = dict(type="Corrupt", corruption=corruption, severity=severity)
        if seed is not None:
            step["seed"] = seed
        steps.insert(1, step)
    return steps


def run_corruption_benchmark(
    model: Any,
    test_cfg: Mapping[str, Any],
    corruptions: Sequence[str],
    severities: Sequence[int],
    eval_types: Sequence[str] | None,
    iou_thr: float = 0.5,
    workers: int = 0,
    seed: int | None = None,
    show_dir: str | None = None,
    show_score_thr: float = 0.3,
    on_result: Any = None,
) -> dict[str, dict[int, Any]]:
    """Test ``model`` on the dataset ``test_cfg`` per corruption and severity (v2's loop).

    Severity 0 is run once and shared by every corruption. ``on_result(outputs, aggregated)``
    is called after each run (to save files as v2 did).

    Returns:
        ``{corruption: {severity: eval}}`` (eval as described in the module docstring; empty
        dicts when ``eval_types`` is empty).
    """
    from detforge.datasets.builder import build_dataloader, build_dataset
    from detforge.engine.testing import single_gpu_test

    aggregated: dict[str, dict[int, Any]] = {}
    for corr_i, corruption in enumerate(corruptions):
        aggregated[corruption] = {}
        for severity in severities:
            if corr_i > 0 and severity == 0:
                aggregated[corruption][0] = aggregated[corruptions[0]][0]
                continue
            cfg = dict(test_cfg)
            cfg["pipeline"] = corrupted_pipeline(cfg["pipeline"], corruption, severity, seed)
            print(f"\nTesting {corruption} at severity {severity}")
            dataset = build_dataset(cfg)
            loader = build_dataloader(
                dataset, samples_per_gpu=1, workers_per_gpu=workers, dist=False, shuffle=False
            )
            if getattr(model, "CLASSES", None) is None:
                model.CLASSES = dataset.CLASSES
            out_dir = (
                None if show_dir is None else os.path.join(show_dir, corruption, str(severity))
            )
            outputs = single_gpu_test(model, loader, False, out_dir, show_score_thr)
            result: Any = {}
            if eval_types and hasattr(dataset, "coco"):
                result = coco_eval_with_return(dataset, outputs, eval_types)
            elif eval_types:
                if list(eval_types) != ["bbox"]:
                    print('Only "bbox" evaluation is supported for VOC-style datasets')
                result = voc_eval_with_return(dataset, outputs, iou_thr)[1]
            aggregated[corruption][severity] = result
            if on_result is not None:
                on_result(outputs, aggregated)
    return aggregated
