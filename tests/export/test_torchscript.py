"""TorchScript export: the traced graph follows other input sizes and stays exact."""

from __future__ import annotations

import pytest

from detforge.export import (
    compare_outputs,
    export_torchscript,
    prepare_input,
    pytorch_outputs,
    run_torchscript,
)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_traced_faster_rcnn_on_two_sizes(tiny_model, demo_jpg, color_jpg, tmp_path):
    model = tiny_model("faster_rcnn")
    img, _ = prepare_input(model.cfg, demo_jpg)
    export_torchscript(model, img, tmp_path / "faster.pt")
    for image in (demo_jpg, color_jpg):
        x, m = prepare_input(model.cfg, image)
        report = compare_outputs(
            pytorch_outputs(model, x, m), run_torchscript(tmp_path / "faster.pt", x)
        )
        assert report.ok and report.num_reference >= 10
        assert report.max_box_diff == 0 and report.max_score_diff == 0
