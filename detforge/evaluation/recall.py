"""Proposal recall at several proposal budgets and IoU thresholds (MMDetection v2 numbers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detforge.evaluation.overlaps import bbox_overlaps_np
from detforge.evaluation.table import LoggerLike, format_table, print_log

__all__ = ["eval_recalls", "print_recall_summary"]


def _as_1d(values: Any, name: str, dtype: type) -> np.ndarray:
    arr: np.ndarray = np.atleast_1d(np.asarray(values, dtype=dtype))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-d sequence, got {values!r}")
    return arr


def _best_ious(ious: np.ndarray) -> np.ndarray:
    """One-to-one greedy matching: repeatedly take the highest remaining gt-proposal IoU.

    Returns, for each gt (in the order they were matched), the IoU it got; gts left over once
    the proposals are used up get -1.
    """
    ious = ious.copy()
    best = np.zeros(ious.shape[0])
    if ious.size == 0:
        return best
    for j in range(ious.shape[0]):
        row, col = divmod(int(ious.argmax()), ious.shape[1])
        best[j] = ious[row, col]
        ious[row, :] = -1
        ious[:, col] = -1
    return best


def _recalls(all_ious: list[np.ndarray], proposal_nums: np.ndarray, thrs: np.ndarray) -> Any:
    total_gts = sum(ious.shape[0] for ious in all_ious)
    matched = np.zeros((proposal_nums.size, total_gts), dtype=np.float32)
    for k, num in enumerate(proposal_nums):
        per_img = [_best_ious(ious[:, :num]) for ious in all_ious]
        matched[k, :] = np.hstack(per_img) if per_img else np.zeros(0)
    matched = np.fliplr(np.sort(matched, axis=1))
    recalls = np.zeros((proposal_nums.size, thrs.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, thr in enumerate(thrs):
            recalls[:, i] = (matched >= thr).sum(axis=1) / float(total_gts)
    return recalls


def eval_recalls(
    gts: Sequence[np.ndarray | None],
    proposals: Sequence[np.ndarray],
    proposal_nums: int | Sequence[int] | np.ndarray | None = None,
    iou_thrs: float | Sequence[float] | np.ndarray | None = 0.5,
    logger: LoggerLike = None,
    use_legacy_coordinate: bool = False,
) -> np.ndarray:
    """Recall of the top proposals of each image, like MMDetection v2's ``eval_recalls``.

    Proposals with a score column are sorted by descending score first. Each gt is matched to
    at most one proposal (greedy, highest IoU first) among the top ``num`` of its image.

    Args:
        gts: Per image ``ndarray[n, 4]`` gt boxes (None or empty for none).
        proposals: Per image ``ndarray[k, 4]`` or ``ndarray[k, 5]`` (with scores) proposals.
        proposal_nums: Proposal budget(s); None uses every proposal of each image.
        iou_thrs: IoU threshold(s); None means 0.5.
        logger: Where the summary table goes (see
            :func:`~detforge.evaluation.table.print_log`).
        use_legacy_coordinate: Widths are ``x2 - x1 + 1``.

    Returns:
        ``ndarray[len(proposal_nums), len(iou_thrs)]`` recalls.

    Example:
        >>> gts = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]])]
        >>> props = [np.array([[0, 0, 10, 11, 0.9], [50, 50, 60, 60, 0.8], [20, 20, 30, 30, 0.1]])]
        >>> eval_recalls(gts, props, proposal_nums=[1, 3], iou_thrs=0.5, logger='silent').tolist()
        [[0.5], [1.0]]
    """
    if len(gts) != len(proposals):
        raise ValueError(f"gts has {len(gts)} images but proposals has {len(proposals)}")
    if proposal_nums is None:
        proposal_nums = [max((p.shape[0] for p in proposals), default=0)]
    nums = _as_1d(proposal_nums, "proposal_nums", np.int64)
    thrs = _as_1d(0.5 if iou_thrs is None else iou_thrs, "iou_thrs", np.float64)
    all_ious = []
    for i, (gt, props) in enumerate(zip(gts, proposals, strict=True)):
        props = np.asarray(props)
        if props.ndim != 2 or (props.size and props.shape[1] < 4):
            raise ValueError(f"proposals[{i}] must have shape [k, 4] or [k, 5], got {props.shape}")
        if props.shape[1] == 5:
            props = props[np.argsort(props[:, 4])[::-1], :]
        keep = min(props.shape[0], int(nums.max()))
        if gt is None or np.asarray(gt).shape[0] == 0:
            ious = np.zeros((0, props.shape[0]), dtype=np.float32)
        else:
            ious = bbox_overlaps_np(
                gt, props[:keep, :4], use_legacy_coordinate=use_legacy_coordinate
            )
        all_ious.append(ious)
    recalls = _recalls(all_ious, nums, thrs)
    print_recall_summary(recalls, nums, thrs, logger=logger)
    return recalls


def print_recall_summary(
    recalls: np.ndarray,
    proposal_nums: Sequence[int] | np.ndarray,
    iou_thrs: Sequence[float] | np.ndarray,
    row_idxs: Sequence[int] | np.ndarray | None = None,
    col_idxs: Sequence[int] | np.ndarray | None = None,
    logger: LoggerLike = None,
) -> str:
    """Log a proposal-num x IoU-threshold table of recalls and return its text.

    Args:
        recalls: ``ndarray[len(proposal_nums), len(iou_thrs)]`` from :func:`eval_recalls`.
        proposal_nums: Row labels.
        iou_thrs: Column labels.
        row_idxs: Rows to show (default all).
        col_idxs: Columns to show (default all).
        logger: Where the table goes (see :func:`~detforge.evaluation.table.print_log`).

    Returns:
        The table text.
    """
    nums = np.array(proposal_nums, dtype=np.int32).reshape(-1)
    thrs = np.array(iou_thrs, dtype=np.float64).reshape(-1)
    rows_sel = np.arange(nums.size) if row_idxs is None else np.asarray(row_idxs)
    cols_sel = np.arange(thrs.size) if col_idxs is None else np.asarray(col_idxs)
    header: list[object] = [""]
    header += [f"{float(t):g}" for t in thrs[cols_sel]]
    rows = [header]
    for i, num in zip(rows_sel, nums[rows_sel], strict=True):
        rows.append([int(num)] + [f"{val:.3f}" for val in recalls[i, cols_sel].tolist()])
    table = format_table(rows)
    print_log("\n" + table, logger=logger)
    return table
