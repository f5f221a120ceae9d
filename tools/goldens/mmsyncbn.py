"""Layout fixture of ``MMSyncBN`` (strong_baselines, simple_copy_paste): the full-size v2.28.2
``mask_rcnn_r50_fpn_syncbn-all_rpn-2conv_lsj_100e`` model built by MMDetection 3.3 (mmcv's
``MMSyncBN`` needs a process group even to be built: a one-process gloo group is made).

mmcv's MMSyncBN trains only with CUDA kernels; in eval mode it is ``F.batch_norm``. There is
no CPU golden of its training path: tests/models/layers/test_norm.py checks detforge's against
``BatchNorm2d`` (what it equals on one process).

Run: /work/peers/venv/bin/python tools/goldens/mmsyncbn.py   (from the repo root)
"""

from __future__ import annotations

from v2_peer import init_single_process_group, out_dir, versions, write_json, write_layouts

NAME = "mmsyncbn"
CONFIG = "strong_baselines/mask_rcnn_r50_fpn_syncbn-all_rpn-2conv_lsj_100e_coco.py"


def main() -> None:
    init_single_process_group()
    out = out_dir(NAME)
    write_layouts(out, [(CONFIG, ())])
    write_json(out / "versions.json", versions())


if __name__ == "__main__":
    main()
