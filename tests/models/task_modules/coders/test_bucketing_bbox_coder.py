"""BucketingBBoxCoder: perfect bucket predictions decode back to the ground truth."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.coders import BucketingBBoxCoder


def test_encoded_targets_decode_to_the_ground_truth() -> None:
    coder = BucketingBBoxCoder(num_buckets=14, scale_factor=3.0)
    priors = torch.tensor([[10.0, 20.0, 42.0, 52.0], [0.0, 0.0, 16.0, 16.0]])
    gts = torch.tensor([[5.0, 18.0, 50.0, 60.0], [2.0, 3.0, 13.0, 10.0]])
    offsets, offset_weights, labels, cls_weights = coder.encode(priors, gts)
    assert offsets.shape == offset_weights.shape == labels.shape == cls_weights.shape == (2, 28)
    assert labels.view(2, 4, 7).sum(-1).eq(1).all()  # one nearest bucket per side
    logits = labels * 20.0 - 10.0  # a confident, correct bucket on every side
    boxes, confidence = coder.decode(priors, [logits, offsets], max_shape=(100, 100))
    torch.testing.assert_close(boxes, gts, atol=1e-4, rtol=0)
    assert confidence.tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    clipped, _ = coder.decode(priors, [logits, offsets], max_shape=(40, 30))
    assert clipped[0].tolist() == pytest.approx([5.0, 18.0, 29.0, 39.0], abs=1e-4)


def test_decode_needs_a_pair_with_one_row_per_prior() -> None:
    coder = BucketingBBoxCoder(num_buckets=4, scale_factor=1.0)
    with pytest.raises(ValueError, match="pred_bboxes must be"):
        coder.decode(torch.zeros(1, 4), [torch.zeros(1, 8)])
    with pytest.raises(ValueError, match="2 priors"):
        coder.decode(torch.zeros(2, 4), [torch.zeros(1, 8), torch.zeros(1, 8)])
