"""Positional encodings of DETR-style heads (v2's ``SinePositionalEncoding`` and
``LearnedPositionalEncoding``).

Both map a padding mask ``[B, H, W]`` (true/non-zero outside the image) to ``[B, 2F, H, W]``
with ``F = num_feats``: the ``y`` half first, then the ``x`` half.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from detforge.errors import ConfigTypeError
from detforge.registry import MODELS

__all__ = ["LearnedPositionalEncoding", "SinePositionalEncoding"]


@MODELS.register_module()
class SinePositionalEncoding(nn.Module):
    """Sine/cosine encoding of the cumulative count of valid pixels along each axis (v2).

    With ``normalize`` the counts become ``(count + offset) / (last count + eps) * scale``, so
    each image's valid area spans ``[0, scale]``. Channel ``2k`` is ``sin(p / T^(2k/F))``,
    ``2k + 1`` is ``cos`` of the same.

    Args:
        num_feats: Channels per axis (``F``).
        temperature: ``T``.
        normalize: Normalise the positions per image.
        scale: The normalised range (with ``normalize``).
        eps: Added to the denominator of the normalisation.
        offset: Added to the counts before normalising.
        init_cfg: Unused (no parameters).

    Example:
        >>> enc = SinePositionalEncoding(num_feats=4, normalize=True)
        >>> enc(torch.zeros(1, 2, 3, dtype=torch.bool)).shape
        torch.Size([1, 8, 2, 3])
    """

    def __init__(
        self,
        num_feats: int,
        temperature: int = 10000,
        normalize: bool = False,
        scale: float = 2 * math.pi,
        eps: float = 1e-6,
        offset: float = 0.0,
        init_cfg: object = None,
    ) -> None:
        super().__init__()
        if normalize and not isinstance(scale, (float, int)):
            raise ConfigTypeError(f"SinePositionalEncoding: scale must be a number, got {scale!r}")
        self.num_feats = num_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.eps = eps
        self.offset = offset

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        not_mask = 1 - mask.to(torch.int)
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        if self.normalize:
            y_embed = (y_embed + self.offset) / (y_embed[:, -1:, :] + self.eps) * self.scale
            x_embed = (x_embed + self.offset) / (x_embed[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_feats, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_feats)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        b, h, w = mask.shape
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).view(
            b, h, w, -1
        )
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).view(
            b, h, w, -1
        )
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


@MODELS.register_module()
class LearnedPositionalEncoding(nn.Module):
    """Learned row and column embeddings (``row_embed``, ``col_embed``), v2's keys.

    Channels ``[0, F)`` are the column embedding of ``x``, ``[F, 2F)`` the row embedding of
    ``y``. v2 initialises both uniformly in ``[0, 1)``.

    Args:
        num_feats: Channels per axis.
        row_num_embed: Rows that can be embedded (feature-map height limit).
        col_num_embed: Columns that can be embedded (feature-map width limit).
        init_cfg: Unused (``init_weights`` is v2's uniform init).

    Example:
        >>> enc = LearnedPositionalEncoding(num_feats=4, row_num_embed=5, col_num_embed=6)
        >>> enc(torch.zeros(2, 3, 4, dtype=torch.bool)).shape
        torch.Size([2, 8, 3, 4])
    """

    def __init__(
        self,
        num_feats: int,
        row_num_embed: int = 50,
        col_num_embed: int = 50,
        init_cfg: object = None,
    ) -> None:
        super().__init__()
        self.row_embed = nn.Embedding(row_num_embed, num_feats)
        self.col_embed = nn.Embedding(col_num_embed, num_feats)
        self.num_feats = num_feats
        self.row_num_embed = row_num_embed
        self.col_num_embed = col_num_embed

    def init_weights(self) -> None:
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        h, w = mask.shape[-2:]
        x_embed = self.col_embed(torch.arange(w, device=mask.device))
        y_embed = self.row_embed(torch.arange(h, device=mask.device))
        pos = torch.cat(
            (x_embed.unsqueeze(0).repeat(h, 1, 1), y_embed.unsqueeze(1).repeat(1, w, 1)), dim=-1
        )
        return pos.permute(2, 0, 1).unsqueeze(0).repeat(mask.shape[0], 1, 1, 1)
