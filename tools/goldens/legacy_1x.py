"""Golden fixture of the MMDetection v1.x compatibility pieces of ``configs/legacy_1.x``:
``LegacyDeltaXYWHBBoxCoder`` (encode and decode, with and without clipping, two ``stds``) and
``LegacyAnchorGenerator`` (the v1 RPN and RetinaNet settings: base anchors, a grid and valid
flags), computed by MMDetection 3.3's classes (unchanged from v2.28).

Run: /work/peers/venv/bin/python tools/goldens/legacy_1x.py   (from the repo root)
"""

from __future__ import annotations

import torch
from v2_peer import out_dir, versions, write_json

NAME = "legacy_1x"
CODERS = {
    "unit": dict(type="LegacyDeltaXYWHBBoxCoder"),
    "rcnn": dict(
        type="LegacyDeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]
    ),
}
ANCHORS = {
    "rpn": dict(
        type="LegacyAnchorGenerator",
        center_offset=0.5,
        scales=[8],
        ratios=[0.5, 1.0, 2.0],
        strides=[4, 8, 16, 32, 64],
    ),
    "retina": dict(
        type="LegacyAnchorGenerator",
        center_offset=0.5,
        octave_base_scale=4,
        scales_per_octave=3,
        ratios=[0.5, 1.0, 2.0],
        strides=[8, 16, 32, 64, 128],
    ),
}
SIZES = [(5, 7), (3, 4), (2, 2), (1, 1), (1, 1)]


def main() -> None:
    from mmdet.registry import TASK_UTILS
    from mmdet.utils import register_all_modules

    register_all_modules()
    out = out_dir(NAME)
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=gen) * 90
    boxes = torch.cat([xy, xy + torch.rand(50, 2, generator=gen) * 60 + 1], 1)
    gts = boxes + torch.randn(50, 4, generator=gen) * 6
    gts[:, 2:] = torch.maximum(gts[:, 2:], gts[:, :2] + 1)
    deltas = torch.randn(50, 12, generator=gen)
    expected: dict[str, object] = {}
    for key, cfg in CODERS.items():
        coder = TASK_UTILS.build(dict(cfg))
        expected[f"{key}_encode"] = coder.encode(boxes, gts)
        expected[f"{key}_decode"] = coder.decode(boxes, deltas)
        expected[f"{key}_decode_clip"] = coder.decode(boxes, deltas, max_shape=(80, 100))
    for key, cfg in ANCHORS.items():
        prior = TASK_UTILS.build(dict(cfg))
        expected[f"{key}_base"] = list(prior.base_anchors)
        expected[f"{key}_grid"] = prior.grid_priors(SIZES, device="cpu")
        expected[f"{key}_valid"] = prior.valid_flags(SIZES, (20, 25), device="cpu")
    torch.save({"boxes": boxes, "gts": gts, "deltas": deltas, "sizes": SIZES}, out / "input.pt")
    torch.save(expected, out / "expected.pt")
    write_json(out / "configs.json", {"coders": CODERS, "anchors": ANCHORS})
    write_json(out / "versions.json", versions())


if __name__ == "__main__":
    main()
