"""Acceptance: exported detectors give the PyTorch model's detections in ONNX Runtime on a
real photo (MMDetection's demo.jpg), post-processing included."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from detforge.export import (
    compare_outputs,
    export_onnx,
    onnx_session,
    prepare_input,
    pytorch_outputs,
    run_onnx,
)
from detforge.export import graph as graph_module

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _check(model, path, image, atol=1e-3, min_dets=10):
    img, meta = prepare_input(model.cfg, image)
    reference = pytorch_outputs(model, img, meta)
    outputs = run_onnx(onnx_session(path), img)
    report = compare_outputs(reference, outputs, atol=atol)
    assert report.num_reference >= min_dets
    assert report.num_exported == report.num_reference, report.summary()
    assert report.labels_equal, report.summary()
    assert report.max_box_diff <= atol and report.max_score_diff <= atol, report.summary()
    return report, outputs


@pytest.mark.parametrize("name", ["retinanet", "faster_rcnn"])
def test_dynamic_export_matches_pytorch(name, tiny_model, demo_jpg, color_jpg, tmp_path):
    model = tiny_model(name)
    img, _ = prepare_input(model.cfg, demo_jpg)
    path = tmp_path / f"{name}.onnx"
    info = export_onnx(model, img, path, dynamic_export=True, metadata=dict(classes=["a"]))
    assert info["output_names"] == ["dets", "labels"]
    assert info["opset"] == (16 if name == "faster_rcnn" else 11)  # aligned RoIAlign needs 16
    _, (dets, labels) = _check(model, path, demo_jpg)
    assert dets.shape[1] == 5 and labels.dtype == np.int64
    assert (np.diff(dets[:, 4]) <= 0).all()  # NMS order: descending score
    # a 512x288 image gives another input size: the same graph follows it
    other, _ = prepare_input(model.cfg, color_jpg)
    assert other.shape[-2:] != img.shape[-2:]
    _check(model, path, color_jpg)
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == ["a"] and props["producer"] == "detforge"


def test_static_export_rejects_other_sizes(tiny_model, demo_jpg, color_jpg, tmp_path):
    model = tiny_model("retinanet")
    img, _ = prepare_input(model.cfg, demo_jpg)
    export_onnx(model, img, tmp_path / "static.onnx")
    session = onnx_session(tmp_path / "static.onnx")
    assert list(session.get_inputs()[0].shape) == list(img.shape)
    _check(model, tmp_path / "static.onnx", demo_jpg)
    other, _ = prepare_input(model.cfg, color_jpg)
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        run_onnx(session, other)


def test_mask_rcnn_masks_match_pytorch(tiny_model, demo_jpg, tmp_path):
    model = tiny_model("mask_rcnn")
    img, meta = prepare_input(model.cfg, demo_jpg)
    info = export_onnx(model, img, tmp_path / "mask.onnx")
    assert info["output_names"] == ["dets", "labels", "masks"] and info["opset"] == 16
    report, (dets, _, masks) = _check(model, tmp_path / "mask.onnx", demo_jpg)
    assert masks.shape == (len(dets), 28, 28)
    assert report.mask_mismatch is not None and report.mask_mismatch <= 1e-3
    reference = pytorch_outputs(model, img, meta)
    segms = reference["segms"]  # the compared masks are not empty
    assert np.mean([m.any() for m in segms]) > 0.5 and sum(int(m.sum()) for m in segms) > 1000


def test_legacy_opset_emulates_aligned_roi_align(tiny_model, demo_jpg, tmp_path):
    model = tiny_model("faster_rcnn")
    img, _ = prepare_input(model.cfg, demo_jpg)
    with pytest.warns(UserWarning, match="opset 16"):
        info = export_onnx(model, img, tmp_path / "f11.onnx", opset_version=11)
    assert info["opset"] == 11
    _check(model, tmp_path / "f11.onnx", demo_jpg)
    with pytest.raises(ValueError, match="opset >= 11"):
        export_onnx(model, img, tmp_path / "f10.onnx", opset_version=10)


@pytest.mark.parametrize("name", ["gfl", "vfnet"])
def test_other_dense_heads(name, tiny_model, demo_jpg, tmp_path):
    model = tiny_model(name)
    img, _ = prepare_input(model.cfg, demo_jpg)
    info = export_onnx(model, img, tmp_path / f"{name}.onnx")
    # VFNet's deformable convolutions are ONNX DeformConv (opset 19); ORT's bilinear sampling
    # rounds differently, about 1e-5 relative on boxes of a few hundred pixels
    assert info["opset"] == (19 if name == "vfnet" else 11)
    _check(model, tmp_path / f"{name}.onnx", demo_jpg, atol=5e-3 if name == "vfnet" else 1e-3)
    if name == "vfnet":
        with pytest.raises(ValueError, match="DeformConv"):
            export_onnx(model, img, tmp_path / "v.onnx", opset_version=16)


def test_raw_outputs_without_postprocess(tiny_model, demo_jpg, tmp_path, monkeypatch):
    model = tiny_model("retinanet")
    img, meta = prepare_input(model.cfg, demo_jpg)
    dummy_forwards = []
    real_dummy_feats = graph_module._dummy_feats
    monkeypatch.setattr(
        graph_module, "_dummy_feats", lambda m: dummy_forwards.append(1) or real_dummy_feats(m)
    )
    info = export_onnx(model, img, tmp_path / "raw.onnx", postprocess=False)
    assert len(dummy_forwards) == 1  # the output names are worked out once
    assert info["output_names"][0] == "cls_score_0" and len(info["output_names"]) == 10
    outputs = run_onnx(tmp_path / "raw.onnx", img)
    with torch.no_grad():
        cls_scores, _ = model.forward_dummy(img)
    assert outputs[0].shape == tuple(cls_scores[0].shape)
    report = compare_outputs(pytorch_outputs(model, img, meta, postprocess=False), outputs)
    assert report.ok and report.max_box_diff < 1e-4


def test_two_stage_needs_postprocess(tiny_model, demo_jpg, tmp_path):
    model = tiny_model("faster_rcnn")
    img, _ = prepare_input(model.cfg, demo_jpg)
    with pytest.raises(NotImplementedError, match="single-stage"):
        export_onnx(model, img, tmp_path / "x.onnx", postprocess=False)


def test_no_detections_gives_empty_outputs(tiny_model, demo_jpg, tmp_path):
    model = tiny_model("retinanet")
    img, _ = prepare_input(model.cfg, demo_jpg)
    head = model.bbox_head
    old = head.test_cfg["score_thr"]
    head.test_cfg["score_thr"] = 0.999
    try:
        export_onnx(model, img, tmp_path / "none.onnx")
    finally:
        head.test_cfg["score_thr"] = old
    dets, labels = run_onnx(tmp_path / "none.onnx", img)
    assert dets.shape == (0, 5) and labels.shape == (0,)
