"""``LegacyDeltaXYWHBBoxCoder`` (v1.x ``+ 1`` sizes): v2's own doctest numbers, inverse
relation, the clipping to ``size - 1``, and what it refuses."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.coders import (
    DeltaXYWHBBoxCoder,
    LegacyDeltaXYWHBBoxCoder,
    legacy_bbox2delta,
    legacy_delta2bbox,
)
from detforge.registry import TASK_UTILS, build_module


def test_v2_docstring_example() -> None:
    rois = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3 + [[5.0, 5.0, 5.0, 5.0]])
    deltas = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, -1.0], [0.7, -1.9, -0.5, 0.3]]
    )
    want = torch.tensor(
        [
            [0.0000, 0.0000, 1.5000, 1.5000],
            [0.0000, 0.0000, 5.2183, 5.2183],
            [0.0000, 0.1321, 7.8891, 0.8679],
            [5.3967, 2.4251, 6.0033, 3.7749],
        ]
    )
    torch.testing.assert_close(
        legacy_delta2bbox(rois, deltas, max_shape=(32, 32)), want, atol=1e-4, rtol=0
    )


def test_encode_uses_plus_one_sizes_and_decode_inverts_the_centre_and_size() -> None:
    coder = build_module(
        dict(type="LegacyDeltaXYWHBBoxCoder", target_stds=[0.1, 0.1, 0.2, 0.2]), TASK_UTILS
    )
    boxes = torch.tensor([[10.0, 20.0, 29.0, 59.0], [0.0, 0.0, 4.0, 9.0]])
    gts = torch.tensor([[12.0, 18.0, 41.0, 50.0], [1.0, 2.0, 3.0, 9.0]])
    deltas = coder.encode(boxes, gts)
    # box 0: w = h/2 = 20 (inclusive), gt w = 30, h = 33
    want0 = torch.tensor(
        [
            (26.5 - 19.5) / 20 / 0.1,
            (34 - 39.5) / 40 / 0.1,
            torch.log(torch.tensor(30 / 20)) / 0.2,
            torch.log(torch.tensor(33 / 40)) / 0.2,
        ]
    )
    torch.testing.assert_close(deltas[0], want0)
    decoded = coder.decode(boxes, deltas)
    # v1 decodes corners as centre +- size / 2 of the inclusive size: half a pixel wider a side
    torch.testing.assert_close(decoded, gts + torch.tensor([-0.5, -0.5, 0.5, 0.5]))
    assert not torch.allclose(
        deltas, DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2)).encode(boxes, gts)
    )


def test_decode_clips_to_size_minus_one_and_refuses_batches() -> None:
    out = legacy_delta2bbox(
        torch.tensor([[0.0, 0.0, 50.0, 50.0]]), torch.zeros(1, 4), max_shape=(20, 30)
    )
    assert out.tolist() == [[0.0, 0.0, 29.0, 19.0]]
    with pytest.raises(ValueError, match="no batched decoding"):
        LegacyDeltaXYWHBBoxCoder().decode(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="differ"):
        legacy_bbox2delta(torch.zeros(2, 4), torch.zeros(3, 4))
