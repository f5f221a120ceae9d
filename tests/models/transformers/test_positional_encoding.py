"""Sine and learned positional encodings (v2's formulas)."""

from __future__ import annotations

import math

import torch

from detforge.models.transformers import LearnedPositionalEncoding, SinePositionalEncoding


def test_sine_normalises_over_the_valid_area() -> None:
    mask = torch.zeros(1, 2, 4, dtype=torch.bool)
    mask[0, :, 2:] = True  # only the two left columns are image
    pos = SinePositionalEncoding(num_feats=2, normalize=True)(mask)
    assert pos.shape == (1, 4, 2, 4)
    # x channels (2: sin, 3: cos) of x = count / valid width * 2pi: pi, 2pi, then 2pi held
    torch.testing.assert_close(pos[0, 3, 1], torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    torch.testing.assert_close(pos[0, 2, 0], torch.zeros(4), atol=1e-5, rtol=0)
    # y channels (0, 1) with offset -0.5 (Deformable DETR): the first row sits at 0.5 / 2 * 2pi
    pos = SinePositionalEncoding(num_feats=2, normalize=True, offset=-0.5)(mask)
    torch.testing.assert_close(pos[0, 0, 0, 0], torch.tensor(math.sin(0.5 * 2 * math.pi / 2)))


def test_learned_puts_columns_first() -> None:
    enc = LearnedPositionalEncoding(num_feats=3, row_num_embed=4, col_num_embed=5)
    pos = enc(torch.zeros(2, 4, 5, dtype=torch.bool))
    assert pos.shape == (2, 6, 4, 5)
    torch.testing.assert_close(pos[1, :3, 2, 4], enc.col_embed.weight[4])
    torch.testing.assert_close(pos[0, 3:, 3, 0], enc.row_embed.weight[3])
