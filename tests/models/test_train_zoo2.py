"""Model zoo II: `detforge train` runs 2 iterations of each one-stage family's standard config
at tiny widths (``--cfg-options``) on tiny_coco (4 of its images, batch 2, one epoch, so
epoch hooks such as TOOD's ``SetEpochInfoHook`` run), and logs the family's losses. One CPU
thread: on a shared 2-core machine two threads made an iteration 25x slower."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.train_zoo import four_images as four_images_json
from tests.models.train_zoo import train_two_iterations

#: ResNet-18 at a quarter of the width, FPN and head at 32 channels
TINY = [
    "model.backbone.depth=18",
    "model.backbone.base_channels=16",
    "model.backbone.init_cfg=None",
    "model.neck.in_channels=[16,32,64,128]",
    "model.neck.out_channels=32",
    "model.bbox_head.in_channels=32",
    "model.bbox_head.feat_channels=32",
]
GN8 = ["model.bbox_head.norm_cfg.type=GN", "model.bbox_head.norm_cfg.num_groups=8"]

#: family -> (standard config, extra options, the losses it logs)
CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "free_anchor": (
        "free_anchor/retinanet_free_anchor_r50_fpn_1x_coco.py",
        [],
        {"positive_bag_loss", "negative_bag_loss"},
    ),
    "autoassign": (
        "autoassign/autoassign_r50_fpn_8x2_1x_coco.py",
        [*GN8, "total_epochs=1"],  # its config still has v2's old total_epochs
        {"loss_pos", "loss_neg", "loss_center"},
    ),
    "ddod": ("ddod/ddod_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox", "loss_iou"}),
    "foveabox": (
        "foveabox/fovea_align_r50_fpn_gn-head_4x4_2x_coco.py",
        GN8,
        {"loss_cls", "loss_bbox"},
    ),
    "fsaf": ("fsaf/fsaf_r50_fpn_1x_coco.py", [], {"loss_cls", "loss_bbox", "num_pos"}),
    "ghm": ("ghm/retinanet_ghm_r50_fpn_1x_coco.py", [], {"loss_cls", "loss_bbox"}),
    "paa": ("paa/paa_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox", "loss_iou"}),
    "tood": ("tood/tood_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox"}),
}
NEEDS = {"paa": "sklearn"}


@pytest.fixture(scope="module")
def four_images(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 landscape images of tiny_coco (one aspect-ratio group: 2 batches) and their boxes."""
    return four_images_json(shared_data, tmp_path_factory.mktemp("tiny_coco"))


@pytest.mark.parametrize("family", sorted(CASES))
def test_two_iterations_of_the_standard_config(
    family: str, four_images: Path, shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    if family in NEEDS:
        pytest.importorskip(NEEDS[family])
    config, options, loss_names = CASES[family]
    train_two_iterations(config, four_images, shared_data, tmp_path, [*TINY, *options], loss_names)
