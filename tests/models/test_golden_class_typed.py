"""A config whose ``type`` values are classes builds the same model as the string form.

The registry allows ``type=FocalLoss`` (a class) wherever ``type='FocalLoss'`` works, so a
component must decide from the objects it builds, never from its children's config dicts:
string-matching ``loss_cls['type']`` or ``sampler['type']`` once made a class-typed RetinaNet
sample its anchors (another loss normaliser). Both builds of each golden fixture must give the
same state_dict layout, losses and detections.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from detforge.models.layers.activation import ACTIVATION_LAYERS
from detforge.models.layers.conv import CONV_LAYERS
from detforge.models.layers.init import INITIALIZERS
from detforge.models.layers.norm import NORM_LAYERS
from detforge.registry import MODELS, TASK_UTILS
from tests.models.golden import FIXTURES, fixture_metas

_REGISTRIES = (MODELS, TASK_UTILS, NORM_LAYERS, CONV_LAYERS, ACTIVATION_LAYERS, INITIALIZERS)


def class_typed(cfg: Any) -> tuple[Any, int]:
    """``cfg`` with every registered ``type`` name replaced by its class, and the count."""
    if isinstance(cfg, Mapping):
        out, count = {}, 0
        for key, value in cfg.items():
            out[key], n = class_typed(value)
            count += n
        name = out.get("type")
        if isinstance(name, str):
            for registry in _REGISTRIES:
                obj = registry.get(name)
                if isinstance(obj, type):
                    out["type"] = obj
                    count += 1
                    break
        return out, count
    if isinstance(cfg, list | tuple):
        items = [class_typed(v) for v in cfg]
        return type(cfg)(v for v, _ in items), sum(n for _, n in items)
    return cfg, 0


def _build(family: str, typed: bool) -> tuple[Any, dict[str, Any]]:
    root = FIXTURES / family
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    model_cfg = copy.deepcopy(Config.fromfile(root / "model.py").model.to_dict())
    if typed:
        model_cfg, count = class_typed(model_cfg)
        assert count >= 10, f"only {count} types became classes"
    torch.manual_seed(0)
    model = build_detector(model_cfg)
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    model.load_state_dict(state, strict=True)
    return model, torch.load(root / "inputs.pt", weights_only=False)


def _losses(model: Any, inputs: dict[str, Any]) -> dict[str, float]:
    model.train()
    torch.manual_seed(0)  # samplers draw random negatives
    losses = model.forward_train(
        inputs["img"],
        fixture_metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    return dict(parse_losses(losses)[1])


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_class_typed_config_builds_the_same_detector(family: str, one_thread: Any) -> None:
    by_name, inputs = _build(family, typed=False)
    by_class, _ = _build(family, typed=True)
    assert by_class.state_dict().keys() == by_name.state_dict().keys()
    for name in ("sampling",):
        for head in ("bbox_head", "rpn_head"):
            if hasattr(by_name, head):
                assert getattr(getattr(by_class, head), name) == getattr(
                    getattr(by_name, head), name
                ), f"{head}.{name}"
    assert _losses(by_class, inputs) == pytest.approx(_losses(by_name, inputs), rel=1e-6)
    by_name.eval()
    by_class.eval()
    with torch.no_grad():
        want = by_name.simple_test(inputs["img"], fixture_metas(inputs), rescale=True)
        got = by_class.simple_test(inputs["img"], fixture_metas(inputs), rescale=True)
    for result_got, result_want in zip(got, want, strict=True):
        for a, b in zip(result_got, result_want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_built_module_passes_through() -> None:
    """A head given as a module (not a dict) is used as it is, train_cfg and all."""
    if not (FIXTURES / "retinanet").is_dir():
        pytest.skip("retinanet fixture not found")
    cfg = Config.fromfile(FIXTURES / "retinanet" / "model.py").model.to_dict()
    head_cfg = dict(cfg["bbox_head"], train_cfg=cfg["train_cfg"], test_cfg=cfg["test_cfg"])
    head = MODELS.build(head_cfg)
    model = build_detector(dict(cfg, bbox_head=head))
    assert model.bbox_head is head
    assert head.sampling is False
