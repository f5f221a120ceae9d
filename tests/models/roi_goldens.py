"""Loading and checking the two-stage goldens under ``tests/data/goldens/<name>`` (made by
``tools/goldens/<name>.py`` with MMDetection 3.3, see ``tools/goldens/roi_peer.py``).

A golden is the shared Faster R-CNN fixture (its trained weights and two-image inputs) with a
family's parts swapped in: ``model.py`` (v2 syntax), ``weights.pth`` (the family's own
tensors, float16 values), ``expected.pt`` (proposals, detections with and without rescale,
losses with ``torch.manual_seed(0)`` before the training forward, gradient norms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from detforge.structures.bbox import bbox_overlaps
from detforge.structures.masks import BitmapMasks
from tests.models.golden import FIXTURES, match_dets

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"


def base_inputs(fixture: str = "faster_rcnn") -> dict[str, Any]:
    """A shared fixture's inputs (``gt_masks`` as ``BitmapMasks``); skips without it."""
    root = FIXTURES / fixture
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    inputs: dict[str, Any] = torch.load(root / "inputs.pt", weights_only=False)
    if "gt_masks" in inputs:
        inputs["gt_masks"] = [BitmapMasks(m, m.shape[1], m.shape[2]) for m in inputs["gt_masks"]]
    return inputs


def metas(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(meta) for meta in inputs["img_metas"]]


def load_golden(
    name: str, fixture: str = "faster_rcnn"
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The golden's model (the shared ``fixture``'s weights, then the golden's own), the
    fixture's inputs and the golden's expected values."""
    root = GOLDENS / name
    inputs = base_inputs(fixture)
    model = build_detector(Config.fromfile(root / "model.py").model)
    own = {k: v.float() for k, v in torch.load(root / "weights.pth", weights_only=True).items()}
    base = torch.load(FIXTURES / fixture / "weights.pth", weights_only=True)["state_dict"]
    keys = model.state_dict().keys()
    state = {k: v for k, v in base.items() if k in keys and k not in own}
    state.update(own)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    expected: dict[str, Any] = torch.load(root / "expected.pt", weights_only=True)
    return model, inputs, expected


def check_proposals(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    """Same proposals; two whose scores differ by ~1e-8 may swap places (fixtures' README)."""
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        bad = ((g - w).abs() > 1e-4).any(dim=1).nonzero().flatten().tolist()
        assert len(bad) <= 4, bad
        for i in bad:
            partners = ((g[:, :4] - w[i, :4]).abs().max(dim=1).values < 1e-4) & (
                (g[:, 4] - w[i, 4]).abs() < 1e-6
            )
            assert partners.any(), f"expected proposal {i} {w[i].tolist()} not found"


def check_detections(
    model: Any, inputs: dict[str, Any], expected: dict[str, Any], **kw: Any
) -> None:
    """``simple_test`` with and without rescale matches ``dets``/``dets_rescaled``.

    With an RPN the RoI head gets MMDetection's proposals (``expected['proposals']``, checked
    against ours by :func:`check_proposals`): ours differ from them by up to ~3e-5 px, which a
    random regression branch can move by more than the 1e-4 px the detections are held to.
    """
    model.eval()
    if "proposals" in expected:
        kw.setdefault("proposals", expected["proposals"])
    for rescale, key in ((False, "dets"), (True, "dets_rescaled")):
        with torch.no_grad():
            results = model.simple_test(inputs["img"], metas(inputs), rescale=rescale, **kw)
        assert len(results) == len(expected[key])
        for result, want in zip(results, expected[key], strict=True):
            if isinstance(result, tuple):  # (bbox_results, segm_results)
                check_mask_areas(*result, want)
                result = result[0]
            match_dets(result, want)


def check_mask_areas(
    bbox_result: list[np.ndarray], segm_result: list[list[np.ndarray]], want: dict[str, Any]
) -> None:
    """Each expected detection's mask has its partner's pixel count (within 1%)."""
    rows = [
        (box, label, int(mask.sum()))
        for label, (boxes, masks) in enumerate(zip(bbox_result, segm_result, strict=True))
        for box, mask in zip(boxes, masks, strict=True)
    ]
    boxes = torch.from_numpy(np.stack([r[0][:4] for r in rows])) if rows else torch.zeros(0, 4)
    for box, label, area in zip(want["bboxes"], want["labels"], want["mask_areas"], strict=True):
        ious = bbox_overlaps(box[None], boxes)[0]
        partners = [
            r for r, iou in zip(rows, ious.tolist(), strict=True) if r[1] == label and iou > 0.99
        ]
        assert partners, f"no detection of class {int(label)} at {box.tolist()}"
        assert min(abs(r[2] - int(area)) for r in partners) <= max(0.01 * int(area), 2)


def train_losses(model: Any, inputs: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """``forward_train`` on the golden's inputs, seeded as the golden was."""
    model.train()
    torch.manual_seed(0)
    if "gt_masks" in inputs:
        kw.setdefault("gt_masks", inputs["gt_masks"])
    losses: dict[str, Any] = model.forward_train(
        inputs["img"],
        metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
        **kw,
    )
    return losses


def check_losses_and_grads(
    model: Any, inputs: dict[str, Any], expected: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    """Losses (rel 1e-5) and every parameter's gradient norm (rel 1e-3) as MMDetection's."""
    model.zero_grad(set_to_none=True)
    losses = train_losses(model, inputs, **kw)
    loss, log_vars = parse_losses(losses)
    assert set(log_vars) == set(expected["losses"])
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    loss.backward()
    params = dict(model.named_parameters())
    assert {n for n, p in params.items() if p.grad is not None} == set(expected["grads_all"])
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-3, abs=1e-8), name
    model.eval()
    return losses
