"""Golden parity with MMDetection 3.3: tiny CornerNet and CentripetalNet (tests/data/goldens).

``tools/goldens/cornernet.py`` built both with the peer stack (HourglassNet at 16 channels, 4
classes; 2 stacks for CornerNet, 1 for CentripetalNet; see its docstring and the README next to
the weights) and ran them on the two images of the PAA fixture's ``inputs.pt``. Compared: the
detections with and without rescale row by row (corner pooling, top-100 corners, pairing by
embedding or centripetal shift, soft-NMS), the losses per level and every gradient norm, and the
full-size standard configs' state_dict layout.

MMDetection 3.3 decodes with each image's ``batch_input_shape``, v2 with its ``pad_shape``; the
test metas get ``pad_shape = batch_input_shape`` (v2's decoding is what runs). Observed: boxes
equal, scores within 9e-8, losses equal, gradient norms within rel 5e-7.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from tests.models.golden import FIXTURES, assert_full_layout, assert_losses_and_grads

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests/data/goldens"
FAMILIES = ["cornernet", "centripetalnet"]
NUM_CLASSES = 4  # the tiny models' classes: ground-truth labels modulo 4
LOSSES = {
    "cornernet": {"det_loss", "off_loss", "pull_loss", "push_loss"},
    "centripetalnet": {"det_loss", "off_loss", "guiding_loss", "centripetal_loss"},
}


def _load(family: str) -> tuple[Any, dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    inputs_path = FIXTURES / "paa" / "inputs.pt"
    if not inputs_path.is_file():
        pytest.skip(f"fixture inputs {inputs_path} not found")
    root = GOLDENS / family
    model = build_detector(Config.fromfile(root / "model.py").model.to_dict())
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    inputs = torch.load(inputs_path, weights_only=False)  # trusted, holds numpy arrays
    expected = torch.load(root / "expected.pt", weights_only=True)
    metas = [dict(meta) for meta in inputs["img_metas"]]
    for meta in metas:
        meta["pad_shape"] = (*meta["batch_input_shape"], 3)
    return model, inputs, expected, metas


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(family: str, rescale: bool, one_thread: Any) -> None:
    model, inputs, expected, metas = _load(family)
    model.eval()
    with torch.no_grad():
        results = model.simple_test(inputs["img"], metas, rescale=rescale)
    key = "dets_rescaled" if rescale else "dets"
    for per_class, want in zip(results, expected[key], strict=True):
        assert len(per_class) == NUM_CLASSES
        assert len(want["labels"]) > 40  # the fixture has enough pairs to test the pairing
        rows = np.concatenate(
            [np.c_[arr, np.full(len(arr), label)] for label, arr in enumerate(per_class)]
        )
        got = torch.from_numpy(rows[np.argsort(-rows[:, 4], kind="stable")])
        torch.testing.assert_close(got[:, 5].long(), want["labels"], atol=0, rtol=0)
        torch.testing.assert_close(got[:, 4].float(), want["scores"], atol=1e-6, rtol=0)
        torch.testing.assert_close(got[:, :4].float(), want["bboxes"], atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_losses_and_gradients(family: str, one_thread: Any) -> None:
    model, inputs, expected, metas = _load(family)
    model.train()
    labels = [label % NUM_CLASSES for label in inputs["gt_labels"]]
    losses = model.forward_train(
        inputs["img"], metas, list(inputs["gt_bboxes"]), labels, list(inputs["gt_bboxes_ignore"])
    )
    assert set(losses) == LOSSES[family]
    assert_losses_and_grads(model, losses, expected)


def test_flip_aug_test_maps_views_back_and_nms_once(one_thread: Any) -> None:
    """v2's CornerNet flip test: both views decoded, mapped back to the original image, one
    soft-NMS; the unflipped view's own boxes (rescaled) are among the candidates."""
    model, inputs, _, metas = _load("cornernet")
    model.eval()
    img = inputs["img"][:1]
    meta = dict(metas[0], flip=False)
    flipped = dict(meta, flip=True, flip_direction="horizontal")
    with torch.no_grad():
        aug = model.forward_test([img, img.flip(3)], [[meta], [flipped]])[0]
        single = model.simple_test(img, [meta], rescale=True)[0]
    aug_rows = np.concatenate(aug)
    assert 0 < len(aug_rows) <= 100
    width = meta["ori_shape"][1]
    assert aug_rows[:, 2].max() <= width / float(meta["scale_factor"][0]) + 1e-3
    # the best single-view box survives the merge (no box scores higher than itself)
    best = np.concatenate(single)[np.argmax(np.concatenate(single)[:, 4])]
    assert np.abs(aug_rows - best).max(axis=1).min() < 1e-3
    with pytest.raises(ValueError, match="flipped view"):
        model.aug_test([img, img], [[meta], [meta]])


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ("cornernet/cornernet_hourglass104_mstest_10x5_210e_coco.py", "cornernet"),
        ("centripetalnet/centripetalnet_hourglass104_mstest_16x6_210e_coco.py", "centripetalnet"),
    ],
)
def test_full_size_layout(config: str, family: str) -> None:
    layout = json.loads((GOLDENS / family / "layout.json").read_text())
    assert_full_layout(ROOT / "configs" / config, layout)
