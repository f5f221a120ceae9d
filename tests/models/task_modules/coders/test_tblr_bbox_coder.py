"""TBLRBBoxCoder: v2's normalised top/bottom/left/right encoding, round trip and clipping."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.coders import TBLRBBoxCoder


def test_encode_is_v2_numbers_and_decode_inverts_it() -> None:
    priors = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 9.0, 7.0]])
    gts = torch.tensor([[0.0, 0.0, 20.0, 20.0], [4.0, 2.0, 12.0, 8.0]])
    coder = TBLRBBoxCoder(normalizer=4.0)
    tblr = coder.encode(priors, gts)
    # prior 1: centre (5, 10), h 20, w 10 -> (10/20, 10/20, 5/10, 15/10) / 4
    assert tblr[0].tolist() == pytest.approx([0.125, 0.125, 0.125, 0.375])
    torch.testing.assert_close(coder.decode(priors, tblr), gts)


def test_per_side_normalizer_and_batched_clipping() -> None:
    coder = TBLRBBoxCoder(normalizer=[1.0, 2.0, 1.0, 2.0])
    priors = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    tblr = coder.encode(priors, torch.tensor([[-2.0, 0.0, 6.0, 8.0]]))
    assert tblr.tolist() == [[0.5, 0.75, 1.0, 0.5]]
    boxes = coder.decode(priors[None].repeat(2, 1, 1), tblr[None].repeat(2, 1, 1), [(5, 5), (9, 3)])
    assert boxes.tolist() == [[[0.0, 0.0, 5.0, 5.0]], [[0.0, 0.0, 3.0, 8.0]]]
    no_clip = TBLRBBoxCoder(normalizer=[1.0, 2.0, 1.0, 2.0], clip_border=False)
    assert no_clip.decode(priors, tblr, (5, 5)).tolist() == [[-2.0, 0.0, 6.0, 8.0]]


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="normalizer must be"):
        TBLRBBoxCoder(normalizer=[1.0, 2.0]).encode(torch.zeros(1, 4), torch.ones(1, 4))
    with pytest.raises(ValueError, match="2 priors for 1 boxes"):
        TBLRBBoxCoder().encode(torch.zeros(2, 4), torch.ones(1, 4))
