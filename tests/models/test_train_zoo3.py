"""Model zoo III: `detforge train` runs 2 iterations of each two-stage family's standard config
at tiny widths (``--cfg-options``) on tiny_coco (4 of its images, batch 2, one epoch) and logs
the family's losses. One CPU thread (two threads on a shared 2-core machine are much slower)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.train_zoo import four_images as four_images_json
from tests.models.train_zoo import train_two_iterations

#: ResNet-18 at a quarter of the width, FPN, RPN and box head at 32 channels
TINY = [
    "model.backbone.depth=18",
    "model.backbone.base_channels=16",
    "model.backbone.init_cfg=None",
    "model.rpn_head.in_channels=32",
    "model.rpn_head.feat_channels=32",
    "model.roi_head.bbox_roi_extractor.out_channels=32",
    "model.roi_head.bbox_head.in_channels=32",
    "model.roi_head.bbox_head.fc_out_channels=64",
]
#: the FPN at 32 channels (a family whose neck is a list gives its own)
NECK = ["model.neck.in_channels=[16,32,64,128]", "model.neck.out_channels=32"]

#: family -> (standard config, extra options, the losses it logs)
CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "groie": (
        "groie/faster_rcnn_r50_fpn_groie_1x_coco.py",
        [
            "model.roi_head.bbox_roi_extractor.pre_cfg.in_channels=32",
            "model.roi_head.bbox_roi_extractor.pre_cfg.out_channels=32",
            "model.roi_head.bbox_roi_extractor.post_cfg.in_channels=32",
        ],
        {"loss_rpn_cls", "loss_cls", "loss_bbox"},
    ),
    "libra_rcnn": (
        "libra_rcnn/libra_faster_rcnn_r50_fpn_1x_coco.py",
        [
            "model.neck.0.in_channels=[16,32,64,128]",
            "model.neck.0.out_channels=32",
            "model.neck.1.in_channels=32",
        ],
        {"loss_rpn_cls", "loss_cls", "loss_bbox"},
    ),
    "pisa": (
        "pisa/pisa_faster_rcnn_r50_fpn_1x_coco.py",
        [],
        {"loss_rpn_cls", "loss_cls", "loss_bbox", "loss_carl"},
    ),
}


@pytest.fixture(scope="module")
def four_images(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 landscape images of tiny_coco (one aspect-ratio group: 2 batches) and their boxes."""
    return four_images_json(shared_data, tmp_path_factory.mktemp("tiny_coco"))


@pytest.mark.parametrize("family", sorted(CASES))
def test_two_iterations_of_the_standard_config(
    family: str, four_images: Path, shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    config, options, loss_names = CASES[family]
    neck = [] if any(o.startswith("model.neck.") for o in options) else NECK
    train_two_iterations(
        config, four_images, shared_data, tmp_path, [*TINY, *neck, *options], loss_names
    )
