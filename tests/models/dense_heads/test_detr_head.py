"""DETRHead: checkpoints of v2's first DETR (the v2.28 model zoo's) load; target and decoding
rules on literal numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detforge.config import Config
from detforge.errors import ConfigValueError
from detforge.models import build_detector
from detforge.models.dense_heads.detr_head import query_detections, query_targets
from detforge.utils.checkpoint import load_state_dict

V2_MODELS = Path(__file__).resolve().parents[2] / "data" / "v2_models"


def _detr(**head: object) -> torch.nn.Module:
    cfg = Config.fromfile(V2_MODELS / "detr.py").model
    cfg["bbox_head"].update(head)
    return build_detector(cfg)


def test_checkpoint_with_v2_first_detr_names_loads() -> None:
    """``self_attn``/``multihead_attn``/``ffn``/``decoder.norm`` (mmdet 2.7, version 1)."""
    source = _detr().state_dict()
    old = {}
    for key, value in source.items():
        for new, name in (
            (".attentions.0.", ".self_attn."),
            (".attentions.1.", ".multihead_attn."),
            (".ffns.0.", ".ffn."),
            (".decoder.post_norm.", ".decoder.norm."),
        ):
            key = key.replace(new, name)
        old[key] = value
    assert "bbox_head.transformer.decoder.layers.1.multihead_attn.attn.in_proj_weight" in old
    target = _detr()
    report = load_state_dict(target, old, strict=True)
    assert report.complete and not report.unexpected
    assert all(torch.equal(v, source[k]) for k, v in target.state_dict().items())
    # v2.28 names (and the version stored with them) load unchanged
    again = _detr()
    assert not again.load_state_dict(target.state_dict(), strict=True).missing_keys
    assert target.state_dict()._metadata["bbox_head"]["version"] == 2  # type: ignore[attr-defined]


def test_match_cost_weights_must_equal_the_loss_weights() -> None:
    with pytest.raises(ConfigValueError, match=r"reg_cost\.weight=5\.0 must equal loss_bbox"):
        _detr(loss_bbox=dict(type="L1Loss", loss_weight=4.0))


def test_targets_and_detections_on_literal_numbers() -> None:
    gt = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 40.0, 80.0]])
    labels, weights, boxes, box_weights = query_targets(
        torch.tensor([2, 0]), torch.tensor([1, 0]), gt, torch.tensor([5, 6]), 3, 80, (80, 40, 3)
    )
    assert labels.tolist() == [5, 80, 6] and weights.tolist() == [1.0, 1.0, 1.0]
    assert boxes.tolist() == [[0.5, 0.5, 0.5, 0.5], [0.0] * 4, [0.5, 0.5, 1.0, 1.0]]
    assert box_weights.sum(1).tolist() == [4.0, 0.0, 4.0]
    # softmax: background (last) never wins a label; boxes clamp to the image
    logits = torch.tensor([[0.0, 1.0, 9.0], [2.0, 0.0, 0.0]])
    dets, det_labels = query_detections(
        logits,
        torch.tensor([[0.5, 0.5, 1.2, 0.2], [0.25, 0.5, 0.5, 0.5]]),
        (10, 20),
        [2.0] * 4,
        2,
        use_sigmoid=False,
    )
    assert det_labels.tolist() == [0, 1]
    assert dets[1, :4].tolist() == [0.0, 4.0, 20.0, 6.0]
    # sigmoid: the best (query, class) pairs, label = index % classes
    dets, det_labels = query_detections(
        logits,
        torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.25, 0.5, 0.5, 0.5]]),
        (10, 20),
        [2.0] * 4,
        2,
        use_sigmoid=True,
        rescale=True,
    )
    assert det_labels.tolist() == [2, 0]
    assert dets[1, :4].tolist() == pytest.approx([0.0, 1.25, 5.0, 3.75])
