"""DetectorGraph in eager mode reproduces simple_test exactly; unsupported models are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from detforge.export.graph import DetectorGraph, detector_kind, output_names
from detforge.export.inputs import prepare_input
from detforge.export.verify import compare_outputs, pytorch_outputs


@pytest.mark.parametrize("name", ["retinanet", "faster_rcnn"])
def test_eager_graph_equals_simple_test(name, tiny_model, demo_jpg):
    model = tiny_model(name)
    img, meta = prepare_input(model.cfg, demo_jpg)
    with torch.no_grad():
        dets, labels = DetectorGraph(model)(img)
    report = compare_outputs(pytorch_outputs(model, img, meta), [dets.numpy(), labels.numpy()])
    assert report.ok and report.num_reference >= 10
    assert report.max_box_diff == 0 and report.max_score_diff == 0
    assert np.bincount(labels.numpy()).max() < len(labels)  # more than one class present


def test_kinds_and_names(tiny_model):
    assert detector_kind(tiny_model("retinanet")) == "single_stage"
    assert output_names(tiny_model("mask_rcnn")) == ["dets", "labels", "masks"]
    assert output_names(tiny_model("retinanet"), postprocess=False)[-1] == "bbox_pred_4"
    with pytest.raises(NotImplementedError, match="cannot be exported"):
        detector_kind(nn.Conv2d(1, 1, 1))
