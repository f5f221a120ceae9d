"""Evaluation: COCO protocol (pycocotools), VOC-style mAP and proposal recall, with v2 numbers.

- :mod:`~detforge.evaluation.overlaps`: ``bbox_overlaps_np``, the numpy IoU / IoF of the metrics.
- :mod:`~detforge.evaluation.mean_ap`: ``eval_map`` and its TP/FP rules.
- :mod:`~detforge.evaluation.recall`: ``eval_recalls``.
- :mod:`~detforge.evaluation.coco`: COCO result files and ``evaluate_coco``.
- :mod:`~detforge.evaluation.table`: the plain-text tables and log routing of the summaries.
"""

from detforge.evaluation.class_names import VOC_CLASSES
from detforge.evaluation.coco import (
    COCO_ALLOWED_METRICS,
    COCO_METRIC_ITEMS,
    MetricKeyError,
    det2json,
    evaluate_coco,
    fast_eval_recall,
    proposal2json,
    results2json,
    run_cocoeval,
    segm2json,
)
from detforge.evaluation.mean_ap import (
    average_precision,
    eval_map,
    get_cls_group_ofs,
    get_cls_results,
    print_map_summary,
    tpfp_default,
    tpfp_imagenet,
    tpfp_openimages,
)
from detforge.evaluation.overlaps import bbox_overlaps_np
from detforge.evaluation.recall import eval_recalls, print_recall_summary
from detforge.evaluation.table import format_table, print_log

__all__ = [
    "COCO_ALLOWED_METRICS",
    "COCO_METRIC_ITEMS",
    "VOC_CLASSES",
    "MetricKeyError",
    "average_precision",
    "bbox_overlaps_np",
    "det2json",
    "eval_map",
    "eval_recalls",
    "evaluate_coco",
    "fast_eval_recall",
    "format_table",
    "get_cls_group_ofs",
    "get_cls_results",
    "print_log",
    "print_map_summary",
    "print_recall_summary",
    "proposal2json",
    "results2json",
    "run_cocoeval",
    "segm2json",
    "tpfp_default",
    "tpfp_imagenet",
    "tpfp_openimages",
]
