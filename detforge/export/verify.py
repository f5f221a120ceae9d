"""Compare an exported graph's outputs with the PyTorch detector's own test path.

The reference is ``model.simple_test(img, [meta], rescale=False)`` with ``img_shape`` set to
the whole input (the graph clips boxes to the tensor it is given), turned into
``dets [N, 5]`` / ``labels [N]``; the graph's detections are grouped by class the same way
(score order within a class, as NMS leaves them). Masks are compared after pasting both at the
input size and thresholding with ``mask_thr_binary``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from detforge.export.inputs import input_meta_for_graph
from detforge.structures.det_result import DetResult

__all__ = ["VerifyReport", "compare_outputs", "match_detections", "pytorch_outputs"]


@dataclass
class VerifyReport:
    """How an exported graph's outputs differ from PyTorch's.

    Attributes:
        num_reference: Detections (or raw outputs) of PyTorch.
        num_exported: Detections (or raw outputs) of the exported graph.
        max_box_diff: Largest absolute box-coordinate difference (raw outputs: any value).
        max_score_diff: Largest absolute score difference.
        labels_equal: The labels agree one to one.
        mask_mismatch: Share of pasted mask pixels that differ (Mask R-CNN), else ``None``.
        atol: The tolerance.
        notes: What did not match.
    """

    num_reference: int
    num_exported: int
    max_box_diff: float
    max_score_diff: float
    labels_equal: bool
    atol: float
    mask_mismatch: float | None = None
    notes: list[str] = field(default_factory=list)
    raw: bool = False

    @property
    def ok(self) -> bool:
        """Same count, same labels, boxes and scores within ``atol``, masks within 0.1%."""
        masks_ok = self.mask_mismatch is None or self.mask_mismatch <= 1e-3
        return (
            self.num_reference == self.num_exported
            and self.labels_equal
            and self.max_box_diff <= self.atol
            and self.max_score_diff <= self.atol
            and masks_ok
        )

    def summary(self) -> str:
        """One line for the console."""
        if self.raw:
            text = (
                f"raw outputs: pytorch {self.num_reference}, exported {self.num_exported}; "
                f"max abs diff {self.max_box_diff:.3g} (atol {self.atol:g})"
            )
            return text + ("" if self.ok else " -> MISMATCH: " + "; ".join(self.notes or ["-"]))
        text = (
            f"detections: pytorch {self.num_reference}, exported {self.num_exported}; "
            f"max abs diff boxes {self.max_box_diff:.3g}, scores {self.max_score_diff:.3g} "
            f"(atol {self.atol:g}); labels {'equal' if self.labels_equal else 'DIFFER'}"
        )
        if self.mask_mismatch is not None:
            text += f"; mask pixels differing {self.mask_mismatch:.2%}"
        return text + ("" if self.ok else " -> MISMATCH: " + "; ".join(self.notes or ["-"]))


def pytorch_outputs(
    model: nn.Module, img: torch.Tensor, meta: Mapping[str, Any], postprocess: bool = True
) -> dict[str, Any]:
    """PyTorch's outputs for the graph's input ``img``: ``dets``, ``labels`` (grouped by
    class) and for Mask R-CNN ``segms`` (``ndarray[N, H, W]`` bool masks at the resized image
    size); without ``postprocess`` the raw head outputs as ``raw``."""
    inner: Any = model
    with torch.no_grad():
        if not postprocess:
            outs = inner.forward_dummy(img)
            return dict(raw=[level.numpy() for out in outs for level in out])
        result = inner.simple_test(img, [input_meta_for_graph(meta, img)], rescale=False)[0]
    dets = DetResult.from_v2(result)
    return dict(dets=dets.det_bboxes, labels=dets.labels, segms=dets.masks)


def match_detections(
    ref_dets: np.ndarray, ref_labels: np.ndarray, dets: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pair the detections of two outputs class by class, closest first (largest absolute
    difference over box and score), so that the order of equal or nearly equal scores (flat
    image regions give identical logits at different places) does not matter.

    Returns:
        ``(ref_index, index)`` of the pairs; a class with different counts pairs only
        ``min`` of them.

    Example:
        >>> a = np.array([[0, 0, 2, 2, .5], [5, 5, 9, 9, .5]], np.float32)
        >>> [i.tolist() for i in match_detections(a, np.zeros(2), a[::-1], np.zeros(2))]
        [[0, 1], [1, 0]]
    """
    ref_index, index = [], []
    for label in np.unique(np.concatenate([ref_labels, labels])):
        rows = np.flatnonzero(ref_labels == label)
        cols = np.flatnonzero(labels == label)
        if not len(rows) or not len(cols):
            continue
        cost = np.abs(ref_dets[rows][:, None, :] - dets[cols][None, :, :]).max(-1)
        for flat in np.argsort(cost, axis=None, kind="stable"):
            r, c = divmod(int(flat), len(cols))
            if np.isfinite(cost[r, c]):
                ref_index.append(rows[r])
                index.append(cols[c])
                cost[r, :] = np.inf
                cost[:, c] = np.inf
    return np.asarray(ref_index, dtype=np.int64), np.asarray(index, dtype=np.int64)


def _paste(masks: np.ndarray, dets: np.ndarray, shape: Sequence[int], thr: float) -> np.ndarray:
    from detforge.models.roi_heads.mask_heads import paste_masks

    pasted = paste_masks(
        torch.from_numpy(masks), torch.from_numpy(dets[:, :4]), int(shape[0]), int(shape[1]), thr
    )
    return pasted.numpy()


def compare_outputs(
    reference: Mapping[str, Any],
    exported: Sequence[np.ndarray],
    atol: float = 1e-3,
    mask_thr: float = 0.5,
) -> VerifyReport:
    """Compare :func:`pytorch_outputs` with an exported graph's outputs (in graph order).

    Example:
        >>> ref = dict(dets=np.array([[0, 0, 4, 4, .9]], np.float32), labels=np.array([1]))
        >>> got = [np.array([[0, 0, 4, 4.0001, .9]], np.float32), np.array([1])]
        >>> compare_outputs(ref, got).ok
        True
    """
    if "raw" in reference:
        raw = reference["raw"]
        notes = [] if len(raw) == len(exported) else [f"{len(raw)} vs {len(exported)} outputs"]
        diffs = [
            float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
            for a, b in zip(raw, exported, strict=False)
        ]
        worst = max(diffs, default=0.0)
        if worst > atol:
            notes.append(f"values differ by more than atol={atol:g}")
        return VerifyReport(
            len(raw), len(exported), worst, worst, True, atol, notes=notes, raw=True
        )
    ref_dets, ref_labels = reference["dets"], reference["labels"]
    dets = np.asarray(exported[0], dtype=np.float32).reshape(-1, 5)
    labels = np.asarray(exported[1]).reshape(-1).astype(np.int64)
    ref_index, index = match_detections(ref_dets, ref_labels, dets, labels)
    report = VerifyReport(len(ref_dets), len(dets), 0.0, 0.0, True, atol)
    if len(ref_dets) != len(dets):
        report.notes.append(f"{len(ref_dets)} detections in PyTorch, {len(dets)} exported")
    if len(index) != max(len(ref_dets), len(dets)):
        report.labels_equal = False
        report.notes.append("the detections per class differ")
    if len(index):
        diff = np.abs(ref_dets[ref_index] - dets[index])
        report.max_box_diff = float(diff[:, :4].max())
        report.max_score_diff = float(diff[:, 4].max())
    if report.max_box_diff > atol or report.max_score_diff > atol:
        report.notes.append(f"boxes/scores differ by more than atol={atol:g}")
    segms = reference.get("segms")
    if segms is not None and len(exported) > 2:
        masks = np.asarray(exported[2], dtype=np.float32).reshape(len(dets), *exported[2].shape[1:])
        if len(index):
            ref_masks = np.stack(segms)[ref_index]
            pasted = _paste(masks[index], dets[index], ref_masks.shape[1:], mask_thr)
            report.mask_mismatch = float((pasted != ref_masks).mean())
        else:
            report.mask_mismatch = 0.0 if len(dets) == len(ref_dets) == 0 else 1.0
        if report.mask_mismatch > 1e-3:
            report.notes.append("masks differ")
    return report
