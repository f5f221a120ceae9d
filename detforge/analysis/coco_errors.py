"""Detectron-style COCO error breakdown (v2's ``tools/analysis_tools/coco_error_analysis.py``).

For every category and area range, precision/recall curves at maxDets 100 are computed with
pycocotools' ``COCOeval`` under more and more forgiving rules; the area between two curves is
the share of AP lost to one kind of error:

- **C75**, **C50**: PR at IoU 0.75 and 0.50 (the COCO AP75 / AP50 of the category);
- **Loc**: PR at IoU 0.10 (localisation errors forgiven, duplicates still count);
- **Sim**: IoU 0.10 with detections on GT of *other categories of the same supercategory*
  ignored (those GT become ignored crowd regions of this category);
- **Oth**: IoU 0.10 with detections on GT of *any other category* ignored;
- **BG**: every remaining false positive removed (precision 1 wherever Oth reaches a recall);
- **FN**: precision 1 at every recall: what is left is the recall never reached.

The legend of each plot gives the AP (mean precision over the 101 recall thresholds) of each
rule. Averages over categories skip those without GT in the area range, as ``COCOeval``'s
summary does, so the ``allclass`` C75 and C50 equal COCO's AP75 and AP50 (v2 counted such
categories as zero, which only lowers the numbers on datasets where some categories have no GT).
Plots of categories without GT are not drawn.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["AREA_NAMES", "ERROR_TYPES", "analyze_results", "breakdown_aps", "error_breakdown"]

ERROR_TYPES = ("C75", "C50", "Loc", "Sim", "Oth", "BG", "FN")
AREA_NAMES = ("allarea", "small", "medium", "large")
_COLORS = np.vstack(
    [
        np.ones((2, 3)),
        [0.31, 0.51, 0.74],
        [0.75, 0.31, 0.30],
        [0.36, 0.90, 0.38],
        [0.50, 0.39, 0.64],
        [1, 0.6, 0],
    ]
)


def _quiet() -> contextlib.AbstractContextManager[Any]:
    """pycocotools prints progress on stdout; keep the tool's own output readable."""
    return contextlib.redirect_stdout(io.StringIO())


def _coco(dataset: dict[str, Any]) -> Any:
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with _quiet():
        coco.createIndex()
    return coco


def _area_rng(areas: Sequence[float] | None) -> list[list[float]]:
    bounds = [32.0**2, 96.0**2, 1e10] if areas is None else [float(a) for a in areas]
    if len(bounds) != 3:
        raise ValueError(f"--areas takes 3 numbers (small, medium, all upper bounds), got {areas}")
    small, medium, top = bounds
    return [[0, top], [0, small], [small, medium], [medium, top]]


def _precision(
    gt: Any,
    dt: Any,
    iou_type: str,
    iou_thrs: list[float],
    area_rng: Any,
    cat_ids: list[int] | None = None,
) -> tuple[np.ndarray, Any]:
    from pycocotools.cocoeval import COCOeval

    evaluator = COCOeval(gt, dt, iou_type)
    evaluator.params.imgIds = sorted(gt.getImgIds())
    evaluator.params.iouThrs = np.array(iou_thrs)
    evaluator.params.maxDets = [100]
    evaluator.params.areaRng = area_rng
    if cat_ids is not None:
        evaluator.params.catIds = cat_ids
    with _quiet():
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator.eval["precision"], evaluator


def _forgiving(
    coco_gt: Any,
    coco_dt: Any,
    cat: dict[str, Any],
    iou_type: str,
    area_rng: Any,
    same_super_only: bool,
) -> np.ndarray:
    """``[R, A]`` precision of ``cat`` at IoU 0.1 with GT of other categories made ignored
    regions of ``cat`` (only those of its supercategory with ``same_super_only``)."""
    others = (
        set(coco_gt.getCatIds(supNms=[cat["supercategory"]]))
        if same_super_only
        else set(coco_gt.getCatIds())
    )
    anns = []
    for ann in coco_gt.dataset["annotations"]:
        if ann["category_id"] == cat["id"]:
            anns.append(dict(ann))
        elif ann["category_id"] in others:
            anns.append(dict(ann, ignore=1, iscrowd=1, category_id=cat["id"]))
    gt = _coco(dict(coco_gt.dataset, annotations=anns))
    dets = [dict(a) for a in coco_dt.dataset["annotations"] if a["category_id"] == cat["id"]]
    dt = _coco(dict(coco_dt.dataset, annotations=dets))
    precision, _ = _precision(gt, dt, iou_type, [0.1], area_rng, cat_ids=[cat["id"]])
    return precision[0, :, 0, :, 0]


def error_breakdown(
    coco_gt: Any, coco_dt: Any, iou_type: str = "bbox", areas: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Precision under each rule of the module docstring.

    Args:
        coco_gt: The GT ``COCO`` object.
        coco_dt: The detections, ``coco_gt.loadRes(...)``.
        iou_type: ``'bbox'`` or ``'segm'``.
        areas: Upper bounds of small and medium and of all areas (default 32², 96², 1e10).

    Returns:
        ``(precision [7, R, K, 4], valid [K, 4], main COCOeval)``: precision of each rule in
        :data:`ERROR_TYPES` order over the 101 recall thresholds, categories
        (``coco_gt.getCatIds()`` order) and :data:`AREA_NAMES`; ``valid`` marks the
        category/area pairs with GT (the others hold zeros).
    """
    from tqdm import tqdm

    area_rng = _area_rng(areas)
    main, evaluator = _precision(
        _coco(copy.deepcopy(coco_gt.dataset)), coco_dt, iou_type, [0.75, 0.5, 0.1], area_rng
    )
    main = main[..., 0]  # [3, R, K, A]
    valid = main[1, 0] > -1  # [K, A]
    ps = np.zeros((len(ERROR_TYPES), *main.shape[1:]), dtype=np.float64)
    ps[:3] = main
    cats = coco_gt.loadCats(coco_gt.getCatIds())
    for k, cat in enumerate(
        tqdm(cats, desc=f"{iou_type} error analysis", unit="cat", dynamic_ncols=True)
    ):
        if not valid[k].any():
            continue
        ps[3, :, k] = _forgiving(coco_gt, coco_dt, cat, iou_type, area_rng, True)
        ps[4, :, k] = _forgiving(coco_gt, coco_dt, cat, iou_type, area_rng, False)
    ps[ps == -1] = 0
    ps[5] = ps[4] > 0
    ps[6] = 1.0
    ps[:, :, ~valid] = 0
    return ps, valid, evaluator


def breakdown_aps(ps: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(curves [7, R, A], aps [7, A])`` averaged over the valid categories (NaN AP if none).

    Example:
        >>> ps = np.ones((7, 101, 2, 4)); ps[0, :, 1] = 0
        >>> valid = np.ones((2, 4), bool)
        >>> breakdown_aps(ps, valid)[1][:, 0].tolist()
        [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    num_types, num_rec, _, num_areas = ps.shape
    curves = np.zeros((num_types, num_rec, num_areas))
    aps = np.full((num_types, num_areas), np.nan)
    for a in range(num_areas):
        if valid[:, a].any():
            block = ps[:, :, valid[:, a], a]  # [7, R, Kv]
            curves[:, :, a] = block.mean(axis=2)
            aps[:, a] = [block[t].mean() for t in range(num_types)]
    return curves, aps


def _label(ap: float, name: str) -> str:
    return f"[{ap:.3f}]{name}" if np.isfinite(ap) else f"[n/a]{name}"


def _safe(name: str) -> str:
    return name.replace(os.sep, "_").replace("/", "_")


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path)
    return path


def _pr_plots(
    rec: np.ndarray,
    curves: np.ndarray,
    aps: np.ndarray,
    out_dir: Path,
    class_name: str,
    iou_type: str,
) -> list[Path]:
    from matplotlib.figure import Figure

    written = []
    for a, area in enumerate(AREA_NAMES):
        title = f"{iou_type}-{class_name}-{area}"
        fig = Figure()
        ax = fig.add_subplot(111)
        below = np.zeros_like(rec)
        for t, name in enumerate(ERROR_TYPES):
            ax.plot(rec, curves[t, :, a], color=(0, 0, 0), linewidth=0.5)
            ax.fill_between(
                rec, below, curves[t, :, a], color=_COLORS[t], label=_label(aps[t, a], name)
            )
            below = curves[t, :, a]
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.0), ylim=(0, 1.0), title=title)
        ax.legend(loc="lower left")
        written.append(_save(fig, out_dir / f"{_safe(title)}.png"))
    return written


def _bar_plot(aps: np.ndarray, out_dir: Path, class_name: str, iou_type: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(111)
    x = np.arange(len(AREA_NAMES))
    width = 0.6 / len(ERROR_TYPES)
    for t, name in enumerate(ERROR_TYPES[:-1]):
        values = np.nan_to_num(aps[t])
        rects = ax.bar(x - 0.3 + (t + 1) * width, values, width, label=name)
        for rect, value in zip(rects, values, strict=True):
            center = (rect.get_x() + rect.get_width() / 2, value)
            ax.annotate(
                f"{value * 100:.1f}",
                center,
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=5,
            )
    title = f"{iou_type}-{class_name}-ap bar plot"
    ax.set(ylabel="Mean Average Precision (mAP)", title=title, ylim=(0, 1.15))
    ax.set_xticks(x, list(AREA_NAMES))
    ax.legend(fontsize=6)
    return _save(fig, out_dir / f"{_safe(title)}.png")


def _gt_plots(evaluator: Any, out_dir: Path) -> list[Path]:
    from matplotlib.figure import Figure

    labels = {
        str(list(r)): name for r, name in zip(evaluator.params.areaRng, AREA_NAMES, strict=True)
    }
    counts = dict.fromkeys(AREA_NAMES, 0)
    for record in evaluator.evalImgs:
        if record:
            counts[labels[str(list(record["aRng"]))]] += int(
                np.sum(~np.asarray(record["gtIgnore"], bool))
            )
    fig = Figure()
    ax = fig.add_subplot(111)
    title = "number of annotations per area group"
    rects = ax.bar(np.arange(len(counts)), list(counts.values()), 0.6)
    ax.bar_label(rects)
    ax.set(ylabel="Number of annotations", title=title)
    ax.set_xticks(np.arange(len(counts)), list(counts))
    written = [_save(fig, out_dir / f"{title}.png")]
    fig = Figure()
    ax = fig.add_subplot(111)
    title = "gt annotation areas histogram plot"
    areas = [ann["area"] for ann in evaluator.cocoGt.anns.values()]
    ax.hist(np.sqrt(areas), bins=100)
    ax.set(xlabel="Squareroot Area", ylabel="Number of annotations", title=title)
    written.append(_save(fig, out_dir / f"{title}.png"))
    return written


def _load_detections(coco_gt: Any, res_file: str | os.PathLike[str], types: Sequence[str]) -> Any:
    if not os.path.isfile(res_file):
        raise FileNotFoundError(f"results file not found: {res_file}")
    with open(res_file) as f:
        try:
            dets = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{res_file} is not JSON: {exc}") from None
    if not isinstance(dets, list) or not dets:
        raise ValueError(f"{res_file}: expected a non-empty JSON list of COCO detections")
    for i, det in enumerate(dets):
        missing = (
            {"image_id", "category_id", "score"} - set(det) if isinstance(det, dict) else {"dict"}
        )
        if missing:
            raise ValueError(f"{res_file}: detection {i} lacks {sorted(missing)}")
    if "segm" in types and "segmentation" not in dets[0]:
        raise ValueError(f"{res_file} has no 'segmentation' (box results?) but --types asks segm")
    if "bbox" in types and "bbox" not in dets[0]:
        raise ValueError(f"{res_file} has no 'bbox' but --types asks bbox")
    unknown_imgs = {d["image_id"] for d in dets} - set(coco_gt.getImgIds())
    unknown_cats = {d["category_id"] for d in dets} - set(coco_gt.getCatIds())
    if unknown_imgs or unknown_cats:
        raise ValueError(
            f"{res_file} does not belong to the annotation file: image ids "
            f"{sorted(unknown_imgs)[:5]} and category ids {sorted(unknown_cats)[:5]} are not in it"
        )
    with _quiet():
        return coco_gt.loadRes(dets)


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    from detforge.utils.fileio import atomic_write

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["category", "area", *ERROR_TYPES])
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())


def analyze_results(
    res_file: str | os.PathLike[str],
    ann_file: str | os.PathLike[str],
    res_types: Sequence[str] = ("bbox",),
    out_dir: str | os.PathLike[str] = "coco_error_analysis",
    extraplots: bool = False,
    areas: Sequence[float] | None = None,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Write the error-breakdown plots of a COCO results file and return the APs.

    Writes, per type in ``res_types``, into ``out_dir/<type>/``: ``<type>-<category>-<area>.png``
    for each category with GT and ``<type>-allclass-<area>.png`` (PR curves of every rule),
    ``ap_breakdown.csv`` (one row per category and area), and with ``extraplots`` an AP bar
    plot per category and of all classes, the number of GT per area group and a histogram of
    the GT areas.

    Args:
        res_file: COCO results JSON (``detforge test --format-only`` writes it).
        ann_file: The COCO annotation JSON the results belong to.
        res_types: ``'bbox'`` and/or ``'segm'``.
        out_dir: Output folder.
        extraplots: Also write the bar plots and GT area plots.
        areas: Upper bounds of the small, medium and all area ranges (pixels²).

    Returns:
        ``{type: {'allclass' or category name: {area name: {rule: AP}}}}``; an area without GT
        has NaN APs.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a bad type, results that do not fit the annotations (ids named), or
            ``areas`` not of length 3.

    Example:
        >>> aps = analyze_results('results.bbox.json', 'instances_val2017.json',
        ...                       out_dir='errors')  # doctest: +SKIP
        >>> aps['bbox']['allclass']['allarea']['C50']  # doctest: +SKIP
        0.581
    """
    from pycocotools.coco import COCO

    bad = [t for t in res_types if t not in ("bbox", "segm")]
    if bad:
        raise ValueError(f"unknown result types {bad}; use bbox and/or segm")
    _area_rng(areas)
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(f"annotation file not found: {ann_file} (pass --ann)")
    with _quiet():
        coco_gt = COCO(str(ann_file))
    coco_dt = _load_detections(coco_gt, res_file, res_types)
    names = [c["name"] for c in coco_gt.loadCats(coco_gt.getCatIds())]
    summary: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for iou_type in res_types:
        type_dir = Path(out_dir) / iou_type
        type_dir.mkdir(parents=True, exist_ok=True)
        ps, valid, evaluator = error_breakdown(coco_gt, coco_dt, iou_type, areas)
        rec = np.asarray(evaluator.params.recThrs)
        per_type: dict[str, dict[str, dict[str, float]]] = {}
        rows: list[list[Any]] = []
        for k, name in [(None, "allclass"), *enumerate(names)]:
            keep = slice(None) if k is None else slice(k, k + 1)
            if k is not None and not valid[k].any():
                continue
            curves, aps = breakdown_aps(ps[:, :, keep], valid[keep])
            _pr_plots(rec, curves, aps, type_dir, name, iou_type)
            if extraplots:
                _bar_plot(aps, type_dir, name, iou_type)
            per_type[name] = {
                area: {t: float(aps[i, a]) for i, t in enumerate(ERROR_TYPES)}
                for a, area in enumerate(AREA_NAMES)
            }
            rows += [
                [name, area, *("" if np.isnan(v) else f"{v:.6f}" for v in aps[:, a])]
                for a, area in enumerate(AREA_NAMES)
            ]
        if extraplots:
            _gt_plots(evaluator, type_dir)
        _write_csv(type_dir / "ap_breakdown.csv", rows)
        summary[iou_type] = per_type
    return summary
