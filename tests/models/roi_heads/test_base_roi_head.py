"""BaseRoIHead: the checks every RoI head shares, and its abstract surface."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from detforge.models.roi_heads import BaseRoIHead, CascadeRoIHead, StandardRoIHead
from detforge.models.roi_heads.base_roi_head import assign_and_sample

_EXTRACTOR = dict(
    type="SingleRoIExtractor",
    out_channels=4,
    roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
    featmap_strides=[4],
)
_BBOX_HEAD = dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=8, num_classes=3)


def test_the_base_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        BaseRoIHead(  # type: ignore[abstract]
            test_cfg=None,
            init_cfg=None,
            shared_head=None,
            pretrained=None,
            has_mask_head=False,
            has_mask_roi_extractor=False,
        )


@pytest.mark.parametrize(
    ("head", "extra"),
    [(StandardRoIHead, {}), (CascadeRoIHead, dict(num_stages=1, stage_loss_weights=[1]))],
)
def test_shared_constructor_checks(head: Any, extra: dict[str, Any]) -> None:
    args = dict(extra, bbox_roi_extractor=_EXTRACTOR, bbox_head=_BBOX_HEAD)
    assert head(**args).num_classes == 3
    with pytest.raises(ValueError, match="mask_roi_extractor is given without a mask_head"):
        head(**args, mask_roi_extractor=_EXTRACTOR)
    with pytest.raises(ValueError, match="pretrained is deprecated"):
        head(**args, pretrained="x.pth")


def test_shared_head_is_built_by_standard_and_refused_by_cascade() -> None:
    shared = dict(type="ResLayer", depth=18, stage=3)
    head = StandardRoIHead(bbox_roi_extractor=_EXTRACTOR, bbox_head=_BBOX_HEAD, shared_head=shared)
    assert head.with_shared_head and type(head.shared_head).__name__ == "ResLayer"
    assert not StandardRoIHead(bbox_roi_extractor=_EXTRACTOR, bbox_head=_BBOX_HEAD).with_shared_head
    with pytest.raises(NotImplementedError, match="CascadeRoIHead: shared_head"):
        CascadeRoIHead(
            num_stages=1,
            stage_loss_weights=[1],
            bbox_roi_extractor=_EXTRACTOR,
            bbox_head=_BBOX_HEAD,
            shared_head=shared,
        )


def test_assign_and_sample_gives_the_sampler_the_image_features() -> None:
    seen: list[Any] = []

    class Assigner:
        def assign(self, *args: Any) -> str:
            return "assigned"

    class Sampler:
        def sample(self, assign: str, proposals: Any, gt: Any, labels: Any, feats: Any) -> str:
            seen.append((assign, [f.shape for f in feats]))
            return "sampled"

    x = [torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 4, 4)]
    out = assign_and_sample(
        Assigner(), Sampler(), x, [torch.zeros(3, 4)] * 2, [torch.zeros(1, 4)] * 2, [None] * 2
    )
    assert out == ["sampled", "sampled"]
    assert seen[1] == ("assigned", [torch.Size([1, 4, 8, 8]), torch.Size([1, 4, 4, 4])])


@pytest.mark.parametrize("second", [torch.zeros(0, 4), torch.tensor([[0.0, 0.0, 8.0, 8.0]])])
def test_simple_test_bboxes_without_proposals_has_v2_shapes(second: torch.Tensor) -> None:
    """v2: an image without proposals (alone or in the batch) and no test config gives raw
    boxes [0, 4] and class scores [0, num_classes + 1]; with a config [0, 5] and [0]."""
    head = StandardRoIHead(bbox_roi_extractor=_EXTRACTOR, bbox_head=_BBOX_HEAD).eval()
    x = [torch.rand(2, 4, 16, 16)]
    metas = [dict(img_shape=(64, 64, 3), scale_factor=1.0)] * 2
    proposals = [torch.zeros(0, 4), second]
    with torch.no_grad():
        bboxes, labels = head.simple_test_bboxes(x, metas, proposals, None)
    assert bboxes[0].shape == (0, 4)
    assert labels[0].shape == (0, 4)
    cfg = dict(score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5), max_per_img=10)
    with torch.no_grad():
        bboxes, labels = head.simple_test_bboxes(x, metas, proposals, cfg)
    assert bboxes[0].shape == (0, 5)
    assert labels[0].shape == (0,)
