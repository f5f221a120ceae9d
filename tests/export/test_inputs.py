"""The graph input: the test pipeline, or an exact --shape."""

from __future__ import annotations

import pytest
import torch

from detforge.export.inputs import input_meta_for_graph, parse_shape, prepare_input


def test_parse_shape():
    assert parse_shape([320, 480]) == (320, 480)
    assert parse_shape([256]) == (256, 256)
    with pytest.raises(ValueError, match="--shape"):
        parse_shape([1, 2, 3])


def test_pipeline_and_exact_shape(tiny_model, demo_jpg):
    model = tiny_model("retinanet")
    img, meta = prepare_input(model.cfg, demo_jpg)
    # 640x427 into (400, 300) keeping the ratio: 400x267, padded to multiples of 32
    assert tuple(img.shape) == (1, 3, 288, 416)
    assert meta["img_shape"][:2] == (267, 400) and meta["ori_shape"][:2] == (427, 640)
    assert input_meta_for_graph(meta, img)["img_shape"] == (288, 416, 3)
    exact, exact_meta = prepare_input(model.cfg, demo_jpg, (320, 480))
    assert tuple(exact.shape) == (1, 3, 320, 480) and exact_meta["img_shape"][:2] == (320, 480)
    # normalised like the pipeline: zero-mean-ish values, not 0..255
    assert exact.dtype == torch.float32 and exact.abs().max() < 5


def test_missing_image_is_named(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.jpg"):
        prepare_input(tiny_model("retinanet").cfg, tmp_path / "nope.jpg")
