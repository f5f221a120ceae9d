"""DeltaXYWHBBoxCoder: MMDetection's literal decodes, batched decoding and the round trip."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.task_modules.coders import DeltaXYWHBBoxCoder, bbox2delta, delta2bbox
from detforge.registry import TASK_UTILS, build_module

ROIS = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3 + [[5.0, 5.0, 5.0, 5.0]])
DELTAS = torch.tensor(
    [[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, -1.0], [0.7, -1.9, -0.5, 0.3]]
)
EXPECTED = torch.tensor(
    [
        [0.0000, 0.0000, 1.0000, 1.0000],
        [0.1409, 0.1409, 2.8591, 2.8591],
        [0.0000, 0.3161, 4.1945, 0.6839],
        [5.0000, 5.0000, 5.0000, 5.0000],
    ]
)


def _random_boxes(num: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * 100
    wh = torch.rand(num, 2, generator=gen) * 50 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_decode_mmdet_case() -> None:
    coder = build_module(dict(type="DeltaXYWHBBoxCoder"), TASK_UTILS)
    out = coder.decode(ROIS, DELTAS, max_shape=(32, 32, 3))
    torch.testing.assert_close(out, EXPECTED, atol=1e-4, rtol=0)


def test_decode_with_center_clamp() -> None:
    coder = DeltaXYWHBBoxCoder(add_ctr_clamp=True, ctr_clamp=2)
    out = coder.decode(
        torch.tensor([[0.0, 0.0, 6.0, 6.0]]), torch.tensor([[1.0, 1.0, 2.0, 2.0]]), (32, 32, 3)
    )
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 27.1672, 27.1672]]), atol=1e-4, rtol=0)


def test_encode_literal() -> None:
    deltas = bbox2delta(
        torch.tensor([[0.0, 0.0, 10.0, 20.0]]),
        torch.tensor([[5.0, 0.0, 25.0, 10.0]]),
        means=(0.0, 0.0, 0.0, 0.0),
        stds=(0.1, 0.1, 0.2, 0.2),
    )
    # centres (5, 10) -> (15, 5), sizes (10, 20) -> (20, 10)
    expected = [10.0, -2.5, math.log(2) / 0.2, math.log(0.5) / 0.2]
    torch.testing.assert_close(deltas, torch.tensor([expected]))


@pytest.mark.parametrize("stds", [(1.0, 1.0, 1.0, 1.0), (0.1, 0.1, 0.2, 0.2)])
def test_encode_decode_round_trip(stds: tuple[float, ...]) -> None:
    coder = DeltaXYWHBBoxCoder(target_means=(0.1, -0.2, 0.0, 0.05), target_stds=stds)
    anchors, gts = _random_boxes(64, seed=0), _random_boxes(64, seed=1)
    decoded = coder.decode(anchors, coder.encode(anchors, gts))
    torch.testing.assert_close(decoded, gts, atol=1e-3, rtol=1e-5)


def test_decode_clips_and_limits_size_change() -> None:
    coder = DeltaXYWHBBoxCoder()
    box = torch.tensor([[10.0, 10.0, 20.0, 20.0]])
    big = coder.decode(box, torch.tensor([[0.0, 0.0, 10.0, 10.0]]))  # dw clamped at log(62.5)
    torch.testing.assert_close(big[0, 2] - big[0, 0], torch.tensor(625.0), rtol=1e-5, atol=0)
    clipped = coder.decode(box, torch.tensor([[0.0, 0.0, 10.0, 10.0]]), max_shape=(30, 40))
    torch.testing.assert_close(clipped, torch.tensor([[0.0, 0.0, 40.0, 30.0]]))
    unclipped = DeltaXYWHBBoxCoder(clip_border=False).decode(
        box, torch.tensor([[0.0, 0.0, 10.0, 10.0]]), max_shape=(30, 40)
    )
    assert torch.equal(unclipped, big)


def test_decode_per_class_deltas() -> None:
    deltas = torch.cat([DELTAS, torch.zeros(4, 4)], dim=1)  # two classes
    out = delta2bbox(ROIS, deltas, max_shape=(32, 32))
    assert out.shape == (4, 8)
    torch.testing.assert_close(out[:, :4], EXPECTED, atol=1e-4, rtol=0)
    torch.testing.assert_close(out[:, 4:], ROIS)


def test_batched_decode_matches_per_image_decode() -> None:
    coder = DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2))
    anchors = torch.stack([_random_boxes(20, seed=2), _random_boxes(20, seed=3)])
    deltas = torch.randn(2, 20, 4, generator=torch.Generator().manual_seed(4))
    shapes = [(60, 80, 3), (100, 50, 3)]
    with pytest.warns(DeprecationWarning):
        batched = coder.decode(anchors, deltas, max_shape=shapes)
    for i in range(2):
        single = coder.decode(anchors[i], deltas[i], max_shape=shapes[i])
        torch.testing.assert_close(batched[i], single)
    assert batched[1, :, 0::2].max() <= 50 and batched[1, :, 1::2].max() <= 100


def test_empty_and_bad_shapes() -> None:
    coder = DeltaXYWHBBoxCoder()
    assert coder.decode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    assert coder.encode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match="must both be"):
        coder.encode(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="do not match"):
        coder.decode(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="per-image max_shape"):
        coder.decode(ROIS, DELTAS, max_shape=[(32, 32), (16, 16)])


def test_decode_gradients_flow() -> None:
    deltas = DELTAS.clone().requires_grad_(True)
    DeltaXYWHBBoxCoder().decode(ROIS, deltas, max_shape=(32, 32)).sum().backward()
    assert deltas.grad is not None and deltas.grad.abs().sum() > 0
