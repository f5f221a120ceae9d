"""Properties of the heads: empty ground truth gives a positive classification loss and a zero
box loss; the v2 detector API (forward dispatch, train_step) behaves as in MMDetection."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from tests.conftest import shared_data_dir

FIXTURES = shared_data_dir().parent / "fixtures" / "mmdet"


def tiny(family: str) -> Any:
    path = FIXTURES / family / "model.py"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    torch.manual_seed(0)
    model = build_detector(Config.fromfile(path).model)
    model.init_weights()
    return model


def metas(n: int, size: int = 64) -> list[dict[str, Any]]:
    return [
        dict(
            img_shape=(size, size, 3),
            ori_shape=(size, size, 3),
            pad_shape=(size, size, 3),
            scale_factor=np.ones(4, dtype=np.float32),
            flip=False,
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_empty_ground_truth(family: str) -> None:
    model = tiny(family)
    model.train()
    img = torch.randn(2, 3, 64, 64)
    empty_boxes = [torch.zeros(0, 4), torch.zeros(0, 4)]
    empty_labels = [torch.zeros(0, dtype=torch.long)] * 2
    losses = model.forward_train(img, metas(2), empty_boxes, empty_labels)
    for name, value in losses.items():
        total = (sum(value) if isinstance(value, list) else value).detach()
        if "cls" in name:
            assert float(total) > 0, name
        elif "bbox" in name:
            assert float(total) == 0, name


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_forward_dispatch_and_train_step(family: str) -> None:
    model = tiny(family)
    img = torch.randn(1, 3, 64, 64)
    boxes = [torch.tensor([[4.0, 4.0, 40.0, 50.0]])]
    labels = [torch.tensor([3])]
    model.train()
    out = model.train_step(dict(img=img, img_metas=metas(1), gt_bboxes=boxes, gt_labels=labels))
    assert set(out) == {"loss", "log_vars", "num_samples"}
    assert out["num_samples"] == 1
    assert out["log_vars"]["loss"] == pytest.approx(out["loss"].item())
    model.eval()
    with torch.no_grad():
        results = model(img=[img], img_metas=[metas(1)], return_loss=False, rescale=True)
    assert len(results) == 1 and len(results[0]) == 80
    assert all(r.shape[1] == 5 and r.dtype == np.float32 for r in results[0])
    with pytest.raises(TypeError, match="must be a list"):
        model(img=img, img_metas=metas(1), return_loss=False)


def test_parse_losses_sums_only_loss_entries() -> None:
    loss, log = parse_losses(
        dict(
            loss_a=torch.tensor(1.0),
            loss_b=[torch.tensor(2.0), torch.tensor(3.0)],
            acc=torch.tensor(50.0),
        )
    )
    assert float(loss) == 6.0
    assert log == {"loss_a": 1.0, "loss_b": 5.0, "acc": 50.0, "loss": 6.0}
    with pytest.raises(TypeError, match="not a tensor"):
        parse_losses(dict(loss_x=1.0))


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_aug_test_with_flip_matches_plain_test_on_a_symmetric_view(family: str) -> None:
    """Two identical unflipped views merge to the single-view result's boxes (v2 merge rules)."""
    model = tiny(family)
    model.eval()
    img = torch.randn(1, 3, 64, 64)
    view = metas(1)[0]
    view["flip_direction"] = None
    with torch.no_grad():
        single = model.simple_test(img, [dict(view)], rescale=True)[0]
        merged = model.aug_test([img, img], [[dict(view)], [dict(view)]], rescale=True)[0]
        flipped = dict(view, flip=True, flip_direction="horizontal")
        both = model.aug_test([img, img.flip(-1)], [[dict(view)], [flipped]], rescale=True)[0]
    assert len(merged) == len(single) == len(both) == 80
    top_single = max((r[:, 4].max() for r in single if len(r)), default=0.0)
    top_merged = max((r[:, 4].max() for r in merged if len(r)), default=0.0)
    assert top_merged == pytest.approx(top_single, abs=1e-5)
    for result in both:
        assert (result[:, :4] >= -1e-3).all() and (result[:, [0, 2]] <= 64 + 1e-3).all()


def test_show_result_draws_and_writes(tmp_path) -> None:
    model = tiny("retinanet")
    model.CLASSES = tuple(f"c{i}" for i in range(80))
    img = np.full((64, 96, 3), 127, np.uint8)
    result = [np.zeros((0, 5), np.float32) for _ in range(80)]
    result[5] = np.array([[10, 10, 60, 50, 0.9], [1, 1, 5, 5, 0.1]], np.float32)
    drawn = model.show_result(img, result, score_thr=0.3)
    assert drawn.shape == img.shape and not np.array_equal(drawn, img)
    changed = (drawn != img).any(axis=2)
    assert changed[10:51, 10].all()  # the left edge of the 0.9 box
    assert not changed[3, 3]  # the 0.1 box is below score_thr (its label sits above y=0)
    out = tmp_path / "vis" / "det.png"
    assert model.show_result(img, result, out_file=str(out)) is None
    assert out.is_file()


@pytest.mark.parametrize("family", ["fcos", "atss", "gfl", "vfnet"])
def test_dense_aug_test_for_heads_with_score_factors(family: str) -> None:
    model = tiny(family)
    model.eval()
    img = torch.randn(1, 3, 64, 64)
    view = dict(metas(1)[0], flip_direction=None)
    flipped = dict(view, flip=True, flip_direction="horizontal")
    with torch.no_grad():
        result = model.aug_test([img, img.flip(-1)], [[dict(view)], [flipped]], rescale=True)[0]
    assert len(result) == 80
    assert all(r.shape[1] == 5 for r in result)


@pytest.mark.parametrize(
    "family",
    ["faster_rcnn", "retinanet", "mask_rcnn", "cascade_rcnn", "fcos", "atss", "gfl", "vfnet"],
)
def test_a_built_model_deep_copies_and_pickles(family: str) -> None:
    """EMA hooks deep-copy the model and checkpoints pickle it: no component may keep an
    unpicklable object, such as a read-only ``MappingProxyType`` default config."""
    if not (FIXTURES / family).is_dir():
        pytest.skip(f"fixture {family} not found")
    model = build_detector(Config.fromfile(FIXTURES / family / "model.py").model)
    copied = copy.deepcopy(model)
    assert copied.state_dict().keys() == model.state_dict().keys()
    assert pickle.loads(pickle.dumps(model)).state_dict().keys() == model.state_dict().keys()
