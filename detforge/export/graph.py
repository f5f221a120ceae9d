"""The module that is traced for export: a detector plus its test-time post-processing.

:class:`DetectorGraph` takes one normalised, padded image ``[1, 3, H, W]`` and returns v2's
ONNX outputs ``dets [N, 5]`` (``x1, y1, x2, y2, score``, in the input's frame), ``labels [N]``
and, for Mask R-CNN, ``masks [N, h, w]`` (mask-head probabilities of each detection's class
over its box). With ``postprocess=False`` it returns the heads' raw outputs instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from detforge.export.dense import dense_detections, rpn_proposals
from detforge.export.two_stage import mask_probabilities, needs_aligned_roi_align, rcnn_detections

__all__ = ["DetectorGraph", "detector_kind", "output_names"]

_DENSE_OUTPUTS = ("cls_score", "bbox_pred", "centerness")


def detector_kind(model: nn.Module) -> str:
    """``'single_stage'``, ``'two_stage'`` or ``'mask'`` (two-stage with a mask head); other
    detectors raise ``NotImplementedError`` naming what export supports."""
    from detforge.models.roi_heads.standard_roi_head import StandardRoIHead

    if hasattr(model, "bbox_head") and not hasattr(model, "roi_head"):
        return "single_stage"
    roi_head = getattr(model, "roi_head", None)
    if getattr(model, "rpn_head", None) is not None and type(roi_head) is StandardRoIHead:
        return "mask" if roi_head.with_mask else "two_stage"
    raise NotImplementedError(
        f"{type(model).__name__} cannot be exported yet: export supports single-stage detectors "
        "(RetinaNet, FCOS, ATSS, GFL, VFNet, ...) and Faster/Mask R-CNN with a StandardRoIHead"
    )


def output_names(model: nn.Module, postprocess: bool = True) -> list[str]:
    """Names of the graph outputs (v2's ``dets``, ``labels`` [, ``masks``]; raw head outputs
    are ``cls_score_0``, ``bbox_pred_0``, ..., level by level)."""
    kind = detector_kind(model)
    if postprocess:
        return ["dets", "labels", "masks"] if kind == "mask" else ["dets", "labels"]
    if kind != "single_stage":
        raise NotImplementedError(
            "--skip-postprocess is only available for single-stage detectors: the second stage "
            "of a two-stage detector needs the first stage's post-processed proposals"
        )
    head: Any = model.bbox_head
    num_outputs = len(head(_dummy_feats(model)))
    num_levels = head.prior_generator.num_levels
    return [f"{_DENSE_OUTPUTS[i]}_{lvl}" for i in range(num_outputs) for lvl in range(num_levels)]


def _dummy_feats(model: nn.Module) -> Any:
    param = next(model.parameters())
    img = torch.zeros(1, 3, 64, 64, dtype=param.dtype, device=param.device)
    with torch.no_grad():
        return model.extract_feat(img)  # type: ignore[operator]


class DetectorGraph(nn.Module):
    """A detector in eval mode with its post-processing in traceable operators.

    Args:
        model: A detforge detector (single-stage, Faster R-CNN or Mask R-CNN).
        postprocess: Decode, threshold and NMS inside the graph; ``False`` returns the raw
            head outputs (single-stage detectors only).
        legacy_roi_align: Emulate ``RoIAlign(aligned=True)`` for ONNX opsets below 16 (an
            attribute that may be set after construction, once the opset is known).

    Attributes:
        output_names: The names of the graph outputs (see :func:`output_names`).

    Example:
        >>> graph = DetectorGraph(model)  # doctest: +SKIP
        >>> dets, labels = graph(img)  # [N, 5], [N]  # doctest: +SKIP
    """

    def __init__(
        self, model: nn.Module, postprocess: bool = True, legacy_roi_align: bool = False
    ) -> None:
        super().__init__()
        self.kind = detector_kind(model)
        # computed once (raw outputs need a dummy forward); raises for two-stage raw outputs
        self.output_names: list[str] = output_names(model, postprocess)
        self.model = model.eval()
        self.postprocess = postprocess
        self.legacy_roi_align = legacy_roi_align

    @property
    def needs_opset16(self) -> bool:
        """Whether the graph pools with aligned RoIAlign (exact in ONNX from opset 16 on)."""
        if self.kind == "single_stage":
            return False
        roi_head: Any = self.model.roi_head
        extractors = [roi_head.bbox_roi_extractor]
        if self.kind == "mask":
            extractors.append(roi_head.mask_roi_extractor)
        return any(needs_aligned_roi_align(extractor) for extractor in extractors)

    @property
    def deformable(self) -> bool:
        """Whether the model has deformable convolutions (ONNX ``DeformConv``, opset 19)."""
        from detforge.models.layers.dcn import DeformConv2d, ModulatedDeformConv2d

        return any(
            isinstance(m, DeformConv2d | ModulatedDeformConv2d) for m in self.model.modules()
        )

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Detections (or raw outputs) of the single image ``img`` ``[1, 3, H, W]``."""
        model: Any = self.model
        feats = model.extract_feat(img)
        if self.kind == "single_stage":
            outs = model.bbox_head(feats)
            if not self.postprocess:
                return tuple(level for out in outs for level in out)
            return dense_detections(model.bbox_head, outs, img)
        proposals = rpn_proposals(model.rpn_head, model.rpn_head(feats), img)
        dets, labels = rcnn_detections(model.roi_head, feats, proposals, img, self.legacy_roi_align)
        if self.kind == "mask":
            masks = mask_probabilities(model.roi_head, feats, dets, labels, self.legacy_roi_align)
            return dets, labels, masks
        return dets, labels
