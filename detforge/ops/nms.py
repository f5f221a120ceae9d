"""Non-maximum suppression with the semantics of mmcv 1.x and MMDetection v2.

* :func:`nms` runs ``torchvision.ops.nms`` and returns ``(dets, keep)`` like ``mmcv.ops.nms``
  (``offset=1`` reproduces the legacy ``+ 1`` box size).
* :func:`soft_nms` reproduces mmcv's CPU kernel step by step in float32, so its scores and
  order are mmcv's.
* :func:`batched_nms` runs one NMS per class, either all at once with the coordinate offset
  trick or class by class above ``split_thr`` boxes, and sorts the result by score.
* :func:`multiclass_nms` is MMDetection v2's post-processing of per-class scores.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any, overload

import numpy as np
import torch
import torchvision

from detforge.errors import ConfigTypeError, ConfigValueError, UnexpectedKeyError, UnknownTypeError
from detforge.utils.suggest import did_you_mean

__all__ = [
    "batched_nms",
    "check_nms_cfg",
    "multiclass_nms",
    "nms",
    "nms_op_and_args",
    "soft_nms",
]

_SOFT_NMS_METHODS = {"naive": 0, "linear": 1, "gaussian": 2}


def _as_tensors(
    boxes: torch.Tensor | np.ndarray, scores: torch.Tensor | np.ndarray, name: str
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Both inputs as tensors, and whether ``boxes`` came as an ndarray."""
    for arg, value in (("boxes", boxes), ("scores", scores)):
        if not isinstance(value, torch.Tensor | np.ndarray):
            raise TypeError(f"{name}: {arg} must be a Tensor or ndarray, got {type(value)}")
    is_numpy = isinstance(boxes, np.ndarray)
    boxes_t = torch.from_numpy(boxes) if isinstance(boxes, np.ndarray) else boxes
    scores_t = torch.from_numpy(scores) if isinstance(scores, np.ndarray) else scores
    if boxes_t.ndim != 2 or boxes_t.size(1) != 4:
        raise ValueError(f"{name}: boxes must be [N, 4], got shape {tuple(boxes_t.shape)}")
    if scores_t.ndim != 1 or scores_t.size(0) != boxes_t.size(0):
        raise ValueError(
            f"{name}: scores must be [N] with N = {boxes_t.size(0)} boxes, "
            f"got shape {tuple(scores_t.shape)}"
        )
    return boxes_t, scores_t, is_numpy


def _check_offset(offset: int, name: str) -> None:
    if offset not in (0, 1):
        raise ValueError(f"{name}: offset must be 0 or 1, got {offset!r}")


def _nms_keep(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    offset: int,
    score_threshold: float,
    max_num: int,
) -> torch.Tensor:
    """Indices kept by NMS, in descending score order (no gradient flows through them)."""
    boxes, scores = boxes.detach(), scores.detach()
    valid_inds = None
    if score_threshold > 0:
        valid_mask = scores > score_threshold
        boxes, scores = boxes[valid_mask], scores[valid_mask]
        valid_inds = torch.nonzero(valid_mask, as_tuple=False).squeeze(dim=1)
    if offset:
        # mmcv measures sizes as x2 - x1 + 1; moving the far corner by 1 gives the same
        # areas and intersections.
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:] + offset], dim=1)
    if boxes.dtype == torch.float16 and boxes.device.type == "cpu":
        boxes = boxes.float()
    keep = torchvision.ops.nms(boxes, scores.to(boxes.dtype), float(iou_threshold))
    if max_num > 0:
        keep = keep[:max_num]
    if valid_inds is not None:
        keep = valid_inds[keep]
    return keep


@overload
def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    offset: int = 0,
    score_threshold: float = 0,
    max_num: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    offset: int = 0,
    score_threshold: float = 0,
    max_num: int = -1,
) -> tuple[np.ndarray, np.ndarray]: ...
def nms(
    boxes: torch.Tensor | np.ndarray,
    scores: torch.Tensor | np.ndarray,
    iou_threshold: float,
    offset: int = 0,
    score_threshold: float = 0,
    max_num: int = -1,
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
    """Greedy NMS: drop every box whose IoU with a higher-scoring kept box exceeds the threshold.

    Args:
        boxes: ``Tensor[N, 4]`` or ``ndarray[N, 4]``, ``x1, y1, x2, y2``.
        scores: ``Tensor[N]`` (or ndarray).
        iou_threshold: Boxes with IoU strictly above this are suppressed.
        offset: 0, or 1 for the legacy ``x2 - x1 + 1`` box size.
        score_threshold: Boxes scoring ``<=`` this are dropped first (only when ``> 0``).
        max_num: Keep at most this many boxes (all when ``<= 0``).

    Returns:
        ``(dets, keep)``: ``dets`` ``[K, 5]`` (box and score) in descending score order, and
        ``keep`` ``[K]`` int64 indices into the input. ndarrays when ``boxes`` is one.

    Example:
        >>> boxes = torch.tensor([[6., 3., 8., 7.], [3., 6., 9., 11.],
        ...                       [3., 7., 10., 12.], [1., 4., 13., 7.]])
        >>> dets, keep = nms(boxes, torch.tensor([0.6, 0.9, 0.7, 0.2]), iou_threshold=0.3)
        >>> keep.tolist()
        [1, 0, 3]
    """
    boxes_t, scores_t, is_numpy = _as_tensors(boxes, scores, "nms")
    _check_offset(offset, "nms")
    keep = _nms_keep(boxes_t, scores_t, iou_threshold, offset, score_threshold, max_num)
    dets = torch.cat((boxes_t[keep], scores_t[keep].reshape(-1, 1)), dim=1)
    if is_numpy:
        return dets.cpu().numpy(), keep.cpu().numpy()
    return dets, keep


def _compaction_order(alive: np.ndarray) -> np.ndarray:
    """The order mmcv's soft-NMS leaves the surviving boxes in.

    The kernel walks the candidates left to right and fills the slot of each dropped box with
    the current last candidate. Survivors in the first ``L`` slots (``L`` = survivors) stay;
    the dead slots among them receive the survivors beyond ``L``, last one first.
    """
    num_alive = int(alive.sum())
    order = np.arange(num_alive)
    dead_front = np.flatnonzero(~alive[:num_alive])
    alive_back = np.flatnonzero(alive[num_alive:]) + num_alive
    order[dead_front] = alive_back[::-1]
    return order


def _soft_nms_float32(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    sigma: float,
    min_score: float,
    method: int,
    offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """mmcv's soft-NMS CPU kernel in float32; the inner loop over candidates is vectorised."""
    f32 = np.float32
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, k], dtype=f32) for k in range(4))
    sc = np.array(scores, dtype=f32)
    areas = (x2 - x1 + f32(offset)) * (y2 - y1 + f32(offset))
    inds = np.arange(len(sc), dtype=np.int64)
    columns = (x1, y1, x2, y2, sc, areas, inds)
    dets = np.zeros((len(sc), 5), dtype=f32)
    thr, sig, lowest = f32(iou_threshold), f32(sigma), f32(min_score)
    num = len(sc)
    i = 0
    while i < num:
        top = i + int(np.argmax(sc[i:num]))
        for col in columns:
            col[i], col[top] = col[top], col[i]
        dets[i] = (x1[i], y1[i], x2[i], y2[i], sc[i])
        rest = slice(i + 1, num)
        w = np.maximum(f32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset)
        h = np.maximum(f32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset)
        inter = w * h
        ovr = inter / (areas[i] + areas[rest] - inter)
        if method == 0:
            weight = np.where(ovr >= thr, f32(0), f32(1))
        elif method == 1:
            weight = np.where(ovr >= thr, f32(1) - ovr, f32(1))
        else:
            weight = np.exp(-(ovr * ovr) / sig)
        sc[rest] *= weight.astype(f32)
        alive = ~(sc[rest] < lowest)
        if not alive.all():
            order = _compaction_order(alive) + i + 1
            for col in columns:
                col[i + 1 : i + 1 + len(order)] = col[order]
            num = i + 1 + len(order)
        i += 1
    return dets[:num], inds[:num]


@overload
def soft_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    min_score: float = 1e-3,
    method: str = "linear",
    offset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def soft_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    min_score: float = 1e-3,
    method: str = "linear",
    offset: int = 0,
) -> tuple[np.ndarray, np.ndarray]: ...
def soft_nms(
    boxes: torch.Tensor | np.ndarray,
    scores: torch.Tensor | np.ndarray,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    min_score: float = 1e-3,
    method: str = "linear",
    offset: int = 0,
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
    """Soft-NMS (Bodla et al. 2017): lower the scores of overlapping boxes instead of dropping them.

    Each step takes the highest-scoring remaining box and multiplies the score of every other
    remaining box by a weight of their IoU ``o``: ``naive`` 0 if ``o >= iou_threshold``,
    ``linear`` ``1 - o`` if ``o >= iou_threshold``, ``gaussian`` ``exp(-o² / sigma)``. Boxes
    whose score falls below ``min_score`` are dropped. Computed in float32 on the CPU exactly
    like mmcv's kernel.

    Args:
        boxes: ``Tensor[N, 4]`` or ``ndarray[N, 4]``.
        scores: ``Tensor[N]`` (or ndarray).
        iou_threshold: IoU from which ``naive``/``linear`` lower a score.
        sigma: Width of the ``gaussian`` weight.
        min_score: Boxes whose score drops below this are removed.
        method: ``'naive'``, ``'linear'`` or ``'gaussian'``.
        offset: 0, or 1 for the legacy ``x2 - x1 + 1`` box size.

    Returns:
        ``(dets, keep)``: ``dets`` ``[K, 5]`` with the new scores, in the order the boxes were
        picked (descending new score), and ``keep`` ``[K]`` int64 indices into the input.

    Example:
        >>> boxes = torch.tensor([[6., 3., 8., 7.], [3., 6., 9., 11.],
        ...                       [3., 7., 10., 12.], [1., 4., 13., 7.]])
        >>> dets, keep = soft_nms(boxes, torch.tensor([0.6, 0.9, 0.7, 0.2]), 0.3, 0.5, 0.01)
        >>> keep.tolist(), [round(s, 4) for s in dets[:, 4].tolist()]
        ([1, 0, 2, 3], [0.9, 0.6, 0.2902, 0.2])
    """
    boxes_t, scores_t, is_numpy = _as_tensors(boxes, scores, "soft_nms")
    _check_offset(offset, "soft_nms")
    if method not in _SOFT_NMS_METHODS:
        raise ValueError(
            f"soft_nms: method must be one of {sorted(_SOFT_NMS_METHODS)}, got {method!r}"
        )
    dets_np, keep_np = _soft_nms_float32(
        boxes_t.detach().cpu().float().numpy(),
        scores_t.detach().cpu().float().numpy(),
        iou_threshold,
        sigma,
        min_score,
        _SOFT_NMS_METHODS[method],
        offset,
    )
    if is_numpy:
        return dets_np, keep_np
    dets = torch.from_numpy(dets_np).to(device=boxes_t.device)
    return dets, torch.from_numpy(keep_np).to(device=boxes_t.device)


_NMS_OPS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "nms": nms,
    "soft_nms": soft_nms,
}


_NMS_EXTRA_KEYS = ("class_agnostic", "split_thr")
_NUMBER_KEYS = ("iou_threshold", "iou_thr", "score_threshold", "sigma", "min_score")
_INT_KEYS = ("max_num", "split_thr", "offset")


def _accepted_nms_keys(nms_type: str) -> list[str]:
    keys = list(inspect.signature(_NMS_OPS[nms_type]).parameters)[2:]
    extra = ["max_num"] if "max_num" not in keys else []  # soft_nms: cut after sorting
    return [*keys, *extra, *_NMS_EXTRA_KEYS, "type", "iou_thr"]


def check_nms_cfg(nms_cfg: Any, path: str = "nms_cfg") -> None:
    """Check a v2 ``nms=dict(type='nms'|'soft_nms', ...)`` config without running anything.

    Args:
        nms_cfg: The config (``None``, which only sorts, is fine).
        path: Its config path for messages, e.g. ``'model.test_cfg.rcnn.nms'``.

    Raises:
        UnknownTypeError: ``type`` is not ``'nms'`` or ``'soft_nms'``.
        UnexpectedKeyError: a key the op does not take (with the closest accepted one).
        ConfigTypeError: the config is not a dict, or a value has the wrong kind.

    Example:
        >>> check_nms_cfg(dict(type='nms', iou_threshol=0.3), 'model.test_cfg.rcnn.nms')
        Traceback (most recent call last):
        ...
        detforge.errors.UnexpectedKeyError: ...: unexpected key 'iou_threshol' ...'iou_threshold'...
    """
    if nms_cfg is None:
        return
    if not isinstance(nms_cfg, Mapping):
        raise ConfigTypeError(
            f"{path}: expected dict(type='nms', iou_threshold=...) or None, got {nms_cfg!r}"
        )
    nms_type = nms_cfg.get("type", "nms")
    if not isinstance(nms_type, str) or nms_type not in _NMS_OPS:
        raise UnknownTypeError(
            f"{path}: type={nms_type!r} is not supported; use one of {sorted(_NMS_OPS)}"
            f"{did_you_mean(str(nms_type), _NMS_OPS)}"
        )
    accepted = _accepted_nms_keys(nms_type)
    for key, value in nms_cfg.items():
        if key not in accepted:
            shown = [k for k in accepted if k not in ("type", "iou_thr")]
            raise UnexpectedKeyError(
                f"{path}: unexpected key {key!r} for {nms_type}"
                f"{did_you_mean(str(key), shown)} (accepted: {', '.join(shown)})"
            )
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if key in _NUMBER_KEYS and not number:
            raise ConfigTypeError(f"{path}.{key}: expected a number, got {value!r}")
        if key in _INT_KEYS and not (number and float(value).is_integer()):
            raise ConfigTypeError(f"{path}.{key}: expected an integer, got {value!r}")
    if nms_type == "soft_nms" and nms_cfg.get("method", "linear") not in _SOFT_NMS_METHODS:
        raise ConfigValueError(
            f"{path}.method: expected one of {sorted(_SOFT_NMS_METHODS)}, "
            f"got {nms_cfg.get('method')!r}"
        )


def nms_op_and_args(
    nms_cfg: Mapping[str, Any], class_agnostic: bool = False, path: str = "nms_cfg"
) -> tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]], dict[str, Any], bool, int, int]:
    """Split a v2 ``nms_cfg`` into ``(op, op kwargs, class_agnostic, split_thr, max_num)``.

    ``op`` is :func:`nms` or :func:`soft_nms`; the deprecated ``iou_thr`` becomes
    ``iou_threshold``; ``max_num`` is returned separately only for ops without that argument
    (otherwise it stays in the kwargs). The config is checked by :func:`check_nms_cfg` (errors
    name ``path``).

    Example:
        >>> op, kwargs, agnostic, split_thr, max_num = nms_op_and_args(
        ...     dict(type='nms', iou_threshold=0.5, class_agnostic=True))
        >>> op is nms, kwargs, agnostic, split_thr, max_num
        (True, {'iou_threshold': 0.5}, True, 10000, -1)
    """
    check_nms_cfg(nms_cfg, path)
    cfg = dict(nms_cfg)
    class_agnostic = bool(cfg.pop("class_agnostic", class_agnostic))
    nms_type = cfg.pop("type", "nms")
    split_thr = int(cfg.pop("split_thr", 10000))
    if "iou_thr" in cfg:  # the name of iou_threshold before mmdet 2.3
        warnings.warn(
            f"{path}: 'iou_thr' is deprecated, use 'iou_threshold'",
            DeprecationWarning,
            stacklevel=3,
        )
        cfg["iou_threshold"] = cfg.pop("iou_thr")
    op = _NMS_OPS[nms_type]
    max_num = -1
    if "max_num" in cfg and "max_num" not in inspect.signature(op).parameters:
        max_num = int(cfg.pop("max_num"))  # soft_nms has no max_num: cut after sorting
    return op, cfg, class_agnostic, split_thr, max_num


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    idxs: torch.Tensor,
    nms_cfg: Mapping[str, Any] | None,
    class_agnostic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """NMS within each category (``idxs``) only, like ``mmcv.ops.batched_nms``.

    Below ``split_thr`` boxes (default 10000) each category's boxes are shifted by
    ``idx * (boxes.max() + 1)`` so that one NMS call cannot suppress across categories; from
    ``split_thr`` on, NMS runs category by category and the result is sorted by score.

    Args:
        boxes: ``Tensor[N, 4]``.
        scores: ``Tensor[N]``.
        idxs: ``Tensor[N]`` category of each box.
        nms_cfg: ``dict(type='nms'|'soft_nms', iou_threshold=..., ...)`` plus optional
            ``class_agnostic`` and ``split_thr``; ``None`` only sorts by score.
        class_agnostic: Ignore ``idxs`` (``nms_cfg['class_agnostic']`` wins when present).

    Returns:
        ``(dets, keep)``: ``dets`` ``[K, 5]`` in descending score order (soft-NMS scores
        replace the input scores) and ``keep`` ``[K]`` indices into the input.

    Example:
        >>> boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [0., 0., 10., 10.]])
        >>> dets, keep = batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]),
        ...                          torch.tensor([0, 0, 1]), dict(iou_threshold=0.5))
        >>> keep.tolist()
        [0, 2]
    """
    if nms_cfg is None:
        sorted_scores, inds = scores.sort(descending=True)
        return torch.cat([boxes[inds], sorted_scores[:, None]], -1), inds
    op, op_args, class_agnostic, split_thr, max_num = nms_op_and_args(nms_cfg, class_agnostic)
    if boxes.ndim != 2 or boxes.size(-1) != 4:
        raise ValueError(f"batched_nms: boxes must be [N, 4], got shape {tuple(boxes.shape)}")
    if boxes.size(0) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=boxes.device)
        return torch.cat([boxes, scores[:, None]], -1), empty
    if class_agnostic:
        boxes_for_nms = boxes
    else:
        max_coordinate = boxes.max()
        offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
        boxes_for_nms = boxes + offsets[:, None]

    if boxes_for_nms.shape[0] < split_thr:
        dets, keep = op(boxes_for_nms, scores, **op_args)
        kept_boxes = boxes[keep]
        kept_scores = dets[:, -1]
    else:
        per_class_args = dict(op_args)
        max_num = int(per_class_args.pop("max_num", max_num))  # applies to the merged result
        total_mask = scores.new_zeros(scores.size(), dtype=torch.bool)
        scores_after_nms = scores.new_zeros(scores.size())
        for idx in torch.unique(idxs):
            mask = (idxs == idx).nonzero(as_tuple=False).view(-1)
            dets, keep = op(boxes_for_nms[mask], scores[mask], **per_class_args)
            total_mask[mask[keep]] = True
            scores_after_nms[mask[keep]] = dets[:, -1].to(scores_after_nms)
        keep = total_mask.nonzero(as_tuple=False).view(-1)
        kept_scores, order = scores_after_nms[keep].sort(descending=True)
        keep = keep[order]
        kept_boxes = boxes[keep]
    if max_num > 0:
        keep, kept_boxes, kept_scores = keep[:max_num], kept_boxes[:max_num], kept_scores[:max_num]
    return torch.cat([kept_boxes, kept_scores[:, None].to(kept_boxes)], -1), keep


def multiclass_nms(
    multi_bboxes: torch.Tensor,
    multi_scores: torch.Tensor,
    score_thr: float,
    nms_cfg: Mapping[str, Any] | None,
    max_num: int = -1,
    score_factors: torch.Tensor | None = None,
    return_inds: bool = False,
) -> tuple[torch.Tensor, ...]:
    """MMDetection v2's NMS over per-class scores (``mmdet.core.multiclass_nms``).

    Args:
        multi_bboxes: ``Tensor[N, 4]`` shared by all classes, or ``Tensor[N, C * 4]``.
        multi_scores: ``Tensor[N, C + 1]``; the last column is the background and is ignored.
        score_thr: Box-class pairs scoring ``<=`` this are dropped before NMS.
        nms_cfg: The :func:`batched_nms` config.
        max_num: Keep at most this many detections (all when ``<= 0``).
        score_factors: ``Tensor[N]`` multiplied into the scores after thresholding (e.g.
            centerness).
        return_inds: Also return the index of each detection in the flattened ``N * C``
            box-class pairs.

    Returns:
        ``(dets [K, 5], labels [K])``, plus ``inds [K]`` with ``return_inds``; sorted by
        descending score.

    Example:
        >>> bboxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
        >>> scores = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.7, 0.0]])
        >>> dets, labels = multiclass_nms(bboxes, scores, 0.05, dict(iou_threshold=0.5))
        >>> labels.tolist(), [round(s, 2) for s in dets[:, 4].tolist()]
        ([0, 1], [0.9, 0.7])
    """
    num_classes = multi_scores.size(1) - 1
    if multi_bboxes.shape[1] > 4:
        bboxes = multi_bboxes.view(multi_scores.size(0), -1, 4)
    else:
        bboxes = multi_bboxes[:, None].expand(multi_scores.size(0), num_classes, 4)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long, device=scores.device)
    labels = labels.view(1, -1).expand_as(scores)

    bboxes = bboxes.reshape(-1, 4)
    scores = scores.reshape(-1)
    labels = labels.reshape(-1)
    valid_mask = scores > score_thr
    if score_factors is not None:
        factors = score_factors.view(-1, 1).expand(multi_scores.size(0), num_classes)
        scores = scores * factors.reshape(-1)
    inds = valid_mask.nonzero(as_tuple=False).squeeze(1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]

    if bboxes.numel() == 0:
        dets = torch.cat([bboxes, scores[:, None]], -1)
        return (dets, labels, inds) if return_inds else (dets, labels)

    dets, keep = batched_nms(bboxes, scores, labels, nms_cfg)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return (dets, labels[keep], inds[keep]) if return_inds else (dets, labels[keep])
