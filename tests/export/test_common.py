"""The traceable building blocks against the model code they replace."""

from __future__ import annotations

import pickle

import pytest
import torch

from detforge.export.common import (
    NmsSettings,
    anchors_of_level,
    batched_nms_graph,
    clip_to_image,
    nms_settings,
    points_of_level,
    top_scores,
)
from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator
from detforge.models.task_modules.prior_generators.point_generator import MlvlPointGenerator
from detforge.ops import batched_nms


@pytest.mark.parametrize("size", [(5, 7), (1, 1), (13, 4)])
def test_anchors_equal_the_generator(size):
    gen = AnchorGenerator(
        strides=[8, 16], ratios=[0.5, 1.0, 2.0], octave_base_scale=4, scales_per_octave=3
    )
    for level in range(2):
        feat = torch.zeros(1, 2, *size)
        expected = gen.grid_priors([size, size])[level]
        assert torch.equal(anchors_of_level(gen, level, feat), expected)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_points_equal_the_generator(offset):
    gen = MlvlPointGenerator(strides=[8, 32], offset=offset)
    for level, size in enumerate([(6, 9), (2, 3)]):
        expected = gen.grid_priors([size, size])[level]
        assert torch.equal(points_of_level(gen, level, torch.zeros(1, 1, *size)), expected)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_priors_follow_the_input_size_when_traced():
    gen = AnchorGenerator(strides=[4], ratios=[1.0], scales=[8])
    traced = torch.jit.trace(lambda x: anchors_of_level(gen, 0, x), torch.zeros(1, 1, 3, 4))
    assert torch.equal(traced(torch.zeros(1, 1, 6, 5)), gen.grid_priors([(6, 5)])[0])


def test_batched_nms_graph_equals_mmcv_on_real_detections(shared_data):
    path = shared_data / "mmcv_nms" / "tests" / "data" / "batched_nms_data.pkl"
    with open(path, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    boxes = torch.from_numpy(data["boxes"]).float()
    scores = torch.from_numpy(data["scores"]).float()
    idxs = torch.from_numpy(data["idxs"]).long()
    dets, keep = batched_nms_graph(boxes, scores, idxs, NmsSettings(0.7))
    ref_dets, ref_keep = batched_nms(boxes, scores, idxs, dict(type="nms", iou_threshold=0.7))
    assert keep.tolist() == ref_keep.tolist()
    assert sorted(keep.tolist()) == sorted(data["keep"].tolist())
    assert torch.equal(dets, ref_dets)
    capped, _ = batched_nms_graph(boxes, scores, idxs, NmsSettings(0.7), max_per_img=5)
    assert torch.equal(capped, ref_dets[:5])


def test_batched_nms_graph_on_no_boxes():
    dets, keep = batched_nms_graph(
        torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), NmsSettings(0.5)
    )
    assert dets.shape == (0, 5) and keep.shape == (0,)


def test_top_scores_clamps_k():
    _, inds = top_scores(torch.tensor([0.2, 0.9, 0.5]), 10)
    assert inds.tolist() == [1, 2, 0]
    assert top_scores(torch.tensor([0.2, 0.9, 0.5]), 1)[1].tolist() == [1]
    assert top_scores(torch.tensor([0.2, 0.9]), -1)[1].tolist() == [1, 0]


def test_clip_to_image():
    boxes = torch.tensor([[-3.0, 5.0, 50.0, 70.0]])
    out = clip_to_image(boxes, torch.tensor(60), torch.tensor(40))
    assert out.tolist() == [[0.0, 5.0, 40.0, 60.0]]


def test_nms_settings_reads_v2_configs_and_rejects_what_cannot_be_exported():
    with pytest.warns(DeprecationWarning, match="iou_thr"):
        old = nms_settings(dict(type="nms", iou_thr=0.6, class_agnostic=True), "x")
    assert (old.iou_threshold, old.class_agnostic) == (0.6, True)
    full = nms_settings(
        dict(iou_threshold=0.5, offset=1, max_num=7, split_thr=3, score_threshold=0), "x"
    )
    assert repr(full) == (
        "NmsSettings(iou_threshold=0.5, class_agnostic=False, offset=1, max_num=7)"
    )
    with pytest.raises(NotImplementedError, match="soft_nms"):
        nms_settings(dict(type="soft_nms", iou_threshold=0.5), "model.test_cfg.nms")
    with pytest.raises(NotImplementedError, match="score_threshold inside NMS"):
        nms_settings(dict(type="nms", iou_threshold=0.5, score_threshold=0.1), "x")
    with pytest.raises(KeyError, match=r"model\.test_cfg\.nms: no 'iou_threshold'"):
        nms_settings(dict(type="nms"), "model.test_cfg.nms")
    with pytest.raises(KeyError, match=r"model\.test_cfg\.nms: .*unexpected key 'sigma'"):
        nms_settings(dict(type="nms", iou_threshold=0.5, sigma=1), "model.test_cfg.nms")
    with pytest.raises(KeyError, match="type='hard_nms' is not supported"):
        nms_settings(dict(type="hard_nms", iou_threshold=0.5), "x")
