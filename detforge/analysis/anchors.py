"""How well the configured anchors cover the training boxes (``detforge analyze-anchors``).

For every ground-truth box of the training set, as the training pipeline leaves it (resized,
flipped, padded), the best IoU with any anchor the model would lay on that image: the
anchor generator of ``model.rpn_head`` (two-stage) or ``model.bbox_head``, on feature maps of
``ceil(pad_shape / stride)`` cells per level. A ``MaxIoUAssigner`` makes an anchor positive
when its IoU reaches ``pos_iou_thr``; with ``match_low_quality=True`` a box whose best IoU is
below that still gets its best anchors, unless that IoU is below ``min_pos_iou`` too. Boxes
below ``min_pos_iou`` are never learned from; those below ``pos_iou_thr`` only through that
low-quality match. Long and thin objects are the usual victims, hence the aspect buckets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ASPECT_BUCKETS",
    "SIZE_BUCKETS",
    "AnchorCoverage",
    "anchor_coverage",
    "assigner_thresholds",
    "best_anchor_ious",
    "find_anchor_generator",
    "format_coverage",
    "plot_iou_histogram",
]

#: ``(name, low, high)`` on ``sqrt(area)``: COCO's small / medium / large.
SIZE_BUCKETS = (("small", 0.0, 32.0), ("medium", 32.0, 96.0), ("large", 96.0, float("inf")))
#: ``(name, low, high)`` on ``h / w`` (the anchor generator's ``ratios``).
ASPECT_BUCKETS = (
    ("h/w<1/4", 0.0, 0.25), ("1/4-1/2", 0.25, 0.5), ("1/2-2", 0.5, 2.0),
    ("2-4", 2.0, 4.0), ("h/w>=4", 4.0, float("inf")),
)  # fmt: skip


def find_anchor_generator(model_cfg: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """``(head name, anchor_generator cfg)``: ``rpn_head``'s if any, else ``bbox_head``'s.

    Raises:
        KeyError: Neither head has an ``anchor_generator`` (an anchor-free model).

    Example:
        >>> find_anchor_generator(dict(bbox_head=dict(anchor_generator=dict(type='A'))))[0]
        'bbox_head'
    """
    for head in ("rpn_head", "bbox_head"):
        head_cfg = model_cfg.get(head)
        if isinstance(head_cfg, Mapping) and head_cfg.get("anchor_generator") is not None:
            return head, head_cfg["anchor_generator"]
    raise KeyError(
        "model has no anchor_generator in model.rpn_head or model.bbox_head "
        f"(model type {model_cfg.get('type')!r}: anchor-free?)"
    )


def assigner_thresholds(cfg: Any, head: str) -> dict[str, float]:
    """``pos_iou_thr`` and ``min_pos_iou`` of the assigner that trains ``head``.

    Looks in ``model.train_cfg`` (or the v2.0-8 top-level ``train_cfg``): ``.rpn.assigner`` for
    an RPN head, ``.assigner`` otherwise. Missing keys (e.g. an ``ATSSAssigner``) are left out.

    Example:
        >>> assigner_thresholds(dict(model=dict(train_cfg=dict(assigner=dict(
        ...     type='MaxIoUAssigner', pos_iou_thr=0.5, min_pos_iou=0)))), 'bbox_head')
        {'pos_iou_thr': 0.5, 'min_pos_iou': 0.0}
    """
    model_cfg = cfg.get("model") or {}
    train_cfg = model_cfg.get("train_cfg") or cfg.get("train_cfg") or {}
    if head == "rpn_head":
        train_cfg = train_cfg.get("rpn") or {}
    assigner = train_cfg.get("assigner") or {}
    return {
        key: float(assigner[key])
        for key in ("pos_iou_thr", "min_pos_iou")
        if isinstance(assigner.get(key), int | float)
    }


def best_anchor_ious(
    gt_bboxes: np.ndarray, generator: Any, pad_shape: Sequence[int], chunk: int = 64
) -> np.ndarray:
    """Best IoU of each box ``[n, 4]`` with the anchors of an image padded to ``pad_shape``.

    Example:
        >>> from detforge.models.task_modules.prior_generators import AnchorGenerator
        >>> gen = AnchorGenerator(strides=[16], ratios=[1.0], scales=[2.0])
        >>> best_anchor_ious(np.array([[48., 48., 80., 80.], [48., 60., 80., 68.]]), gen,
        ...                  (128, 128)).round(3).tolist()
        [1.0, 0.25]
    """
    import torch

    from detforge.structures.bbox import bbox_overlaps

    gts = torch.as_tensor(np.asarray(gt_bboxes, np.float32).reshape(-1, 4))
    if not len(gts):
        return np.zeros(0, np.float32)
    h, w = int(pad_shape[0]), int(pad_shape[1])
    sizes = [(-(-h // int(sh)), -(-w // int(sw))) for sw, sh in generator.strides]
    anchors = torch.cat(generator.grid_priors(sizes, device="cpu"))
    best = [
        bbox_overlaps(gts[i : i + chunk], anchors).max(dim=1).values
        for i in range(0, len(gts), chunk)
    ]
    return torch.cat(best).numpy()


@dataclass
class AnchorCoverage:
    """Best anchor IoU of every training box, with the box sizes, and the thresholds."""

    ious: np.ndarray
    widths: np.ndarray
    heights: np.ndarray
    thresholds: dict[str, float] = field(default_factory=dict)
    num_images: int = 0

    def buckets(self) -> list[tuple[str, np.ndarray]]:
        """``(name, mask)`` for all boxes, then each size and each aspect-ratio bucket."""
        side = np.sqrt(self.widths * self.heights)
        aspect = self.heights / np.maximum(self.widths, 1e-6)
        rows = [("all", np.ones(len(self.ious), bool))]
        rows += [(name, (side >= lo) & (side < hi)) for name, lo, hi in SIZE_BUCKETS]
        rows += [(name, (aspect >= lo) & (aspect < hi)) for name, lo, hi in ASPECT_BUCKETS]
        return rows

    def summary(self) -> list[dict[str, Any]]:
        """One row per bucket: ``bucket``, ``num_gts``, ``mean_iou``, ``below_<thr>`` shares."""
        rows = []
        for name, mask in self.buckets():
            ious = self.ious[mask]
            row: dict[str, Any] = dict(bucket=name, num_gts=int(mask.sum()))
            row["mean_iou"] = float(ious.mean()) if len(ious) else float("nan")
            for key, thr in self.thresholds.items():
                share = float((ious < thr).mean()) if len(ious) else float("nan")
                row[f"below_{key}"] = share
            rows.append(row)
        return rows


def anchor_coverage(
    dataset: Any, generator: Any, thresholds: Mapping[str, float], max_images: int | None = None
) -> AnchorCoverage:
    """Run ``dataset``'s pipeline (numpy output) and measure every box against the anchors.

    Args:
        dataset: A training dataset whose pipeline leaves ``gt_bboxes`` arrays and
            ``pad_shape`` (or ``img_shape``) in each sample (skip the formatting steps).
        generator: An anchor generator (``strides``, ``grid_priors``).
        thresholds: Named IoU thresholds to report shares below.
        max_images: Stop after this many samples.
    """
    from tqdm import tqdm

    total = len(dataset) if max_images is None else min(max_images, len(dataset))
    ious, widths, heights = [], [], []
    for index in tqdm(range(total), desc="analyze-anchors", unit="img", dynamic_ncols=True):
        item = dataset[index]
        shape = item.get("pad_shape") or item.get("img_shape")
        if shape is None:
            raise KeyError(f"sample {index}: the pipeline left neither pad_shape nor img_shape")
        raw = item.get("gt_bboxes")
        raw = np.zeros((0, 4), np.float32) if raw is None else raw
        if hasattr(raw, "detach"):  # a tensor left by a formatting step
            raw = raw.detach().cpu().numpy()
        boxes = np.asarray(raw, np.float32).reshape(-1, 4)
        ious.append(best_anchor_ious(boxes, generator, shape))
        widths.append(boxes[:, 2] - boxes[:, 0])
        heights.append(boxes[:, 3] - boxes[:, 1])
    if not ious:
        raise ValueError("analyze-anchors: the training set is empty")
    return AnchorCoverage(
        ious=np.concatenate(ious),
        widths=np.concatenate(widths),
        heights=np.concatenate(heights),
        thresholds=dict(thresholds),
        num_images=total,
    )


def format_coverage(coverage: AnchorCoverage) -> str:
    """The summary as a text table (shares in percent).

    Example:
        >>> cov = AnchorCoverage(np.array([1.0, 0.2]), np.array([32., 128.]),
        ...                      np.array([32., 8.]), {'pos_iou_thr': 0.5})
        >>> print(format_coverage(cov).splitlines()[2])
        all         |       2 |   0.600 |              50.0%
    """
    keys = list(coverage.thresholds)
    head = ["bucket", "num_gts", "mean IoU", *[f"<{k} ({coverage.thresholds[k]:g})" for k in keys]]
    widths = [11, 7, 8, *[max(len(h), 8) for h in head[3:]]]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    for row in coverage.summary():
        cells = [row["bucket"].ljust(widths[0]), str(row["num_gts"]).rjust(widths[1])]
        cells.append(f"{row['mean_iou']:.3f}".rjust(widths[2]) if row["num_gts"] else "-".rjust(8))
        for key, width in zip(keys, widths[3:], strict=True):
            share = row[f"below_{key}"]
            cells.append((f"{share * 100:.1f}%" if row["num_gts"] else "-").rjust(width))
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def plot_iou_histogram(
    coverage: AnchorCoverage, path: str | os.PathLike[str], bins: int = 50
) -> Path:
    """Histogram PNG of the best IoUs, with the assigner thresholds as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(coverage.ious, bins=bins, range=(0.0, 1.0), color="#4c72b0", edgecolor="white")
    for (key, thr), colour in zip(
        coverage.thresholds.items(), ("#c44e52", "#dd8452"), strict=False
    ):
        share = float((coverage.ious < thr).mean()) * 100 if len(coverage.ious) else 0.0
        ax.axvline(thr, color=colour, linestyle="--", label=f"{key}={thr:g} ({share:.1f}% below)")
    ax.set_xlabel("best IoU of a ground-truth box with any anchor")
    ax.set_ylabel("ground-truth boxes")
    ax.set_title(f"Anchor coverage: {len(coverage.ious)} boxes in {coverage.num_images} images")
    if coverage.thresholds:
        ax.legend()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
