"""The v2 import paths that users' plug-ins use resolve to detforge's own objects."""

from __future__ import annotations

import torch

from detforge.registry import MODELS, TASK_UTILS, TRANSFORMS


def test_models_and_datasets_builder_paths() -> None:
    from detforge.datasets.builder import DATASETS, PIPELINES, build_dataloader, build_dataset
    from detforge.models.builder import (
        BACKBONES,
        DETECTORS,
        HEADS,
        LOSSES,
        NECKS,
        ROI_EXTRACTORS,
        SHARED_HEADS,
        build_backbone,
        build_detector,
        build_head,
        build_loss,
        build_neck,
        build_roi_extractor,
        build_shared_head,
    )

    registries = {BACKBONES, DETECTORS, HEADS, LOSSES, NECKS, ROI_EXTRACTORS, SHARED_HEADS}
    assert registries == {MODELS} and PIPELINES is TRANSFORMS and "CocoDataset" in DATASETS
    assert callable(build_dataloader) and callable(build_dataset)
    for build in (build_backbone, build_detector, build_head, build_neck, build_shared_head):
        assert callable(build)
    assert type(build_loss(dict(type="L1Loss"))).__name__ == "L1Loss"
    extractor = build_roi_extractor(
        dict(
            type="SingleRoIExtractor",
            out_channels=4,
            roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
            featmap_strides=[4],
        )
    )
    assert type(extractor).__name__ == "SingleRoIExtractor"


def test_core_names() -> None:
    from detforge import core

    assert core.bbox2roi([torch.zeros(2, 4)]).shape == (2, 5)
    assert core.multi_apply(lambda a: (a, -a), [1, 2]) == ([1, 2], [-1, -2])
    assigner = core.build_assigner(dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.4))
    assert type(assigner).__name__ == "MaxIoUAssigner"
    sampler = core.build_sampler(dict(type="RandomSampler", num=4, pos_fraction=0.5))
    assert type(sampler).__name__ == "RandomSampler"
    assert type(core.build_bbox_coder(dict(type="DeltaXYWHBBoxCoder"))).__name__ == (
        "DeltaXYWHBBoxCoder"
    )
    gen = core.build_prior_generator(dict(type="MlvlPointGenerator", strides=[8]))
    assert gen is not None and core.build_anchor_generator is core.build_prior_generator
    assert TASK_UTILS.get("MaxIoUAssigner") is not None


def test_fp16_decorators_are_no_ops() -> None:
    from detforge.core import auto_fp16, force_fp32

    class Head(torch.nn.Module):
        @auto_fp16()
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

        @force_fp32(apply_to=("x",))
        def loss(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum()

        @auto_fp16
        def bare(self, x: torch.Tensor) -> torch.Tensor:
            return x

    head, x = Head(), torch.ones(2, dtype=torch.float16)
    assert head(x).dtype == torch.float16 and head.loss(x).item() == 2
    assert head.bare(x) is x
