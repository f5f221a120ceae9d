"""``GeneralizedAttention``: the spatial attention block of "An Empirical Study of Spatial
Attention Mechanisms in Deep Networks" (mmcv's ``GeneralizedAttention``).

Each of ``num_heads`` heads attends from every query position (the input, average-pooled by
``q_stride``) to every key position (pooled by ``kv_stride``). ``attention_type`` is four
flags, one per energy term summed before the softmax:

- ``1000`` query content · key content (``query_conv``, ``key_conv``);
- ``0100`` query content · relative position (``appr_geom_fc_x``/``_y`` on sinusoidal
  embeddings of the x and y offsets);
- ``0010`` key content · a learned vector (``appr_bias``); alone, every query gets the same
  attention, so the block computes one context vector per image and adds it everywhere;
- ``0001`` relative position · a learned vector (``geom_bias``).

With ``1000`` and ``0010`` both on, ``appr_bias`` is added to the query before the product
(likewise ``geom_bias`` with ``0100`` and ``0001``). With ``0100`` but not ``0001``, mmcv
computes the y-position term with the transposed query grid (so it needs square maps and
pairs query ``(y, x)`` with the term of ``(x, y)``); that is kept, as v2's numerics. The
attended values (``value_conv``) go through ``proj_conv``, are upsampled back when
``q_stride > 1``, scaled by ``gamma`` (zero at first) and added to the input.
``spatial_range >= 0`` limits attention to a window (only for 256 or 512 channels: the mask
is a fixed ``[L, L, L_kv, L_kv]`` buffer-like parameter ``local_constraint_map`` with ``L``
84 or 42, as in mmcv).

Numerics, key names and initialisation (Kaiming uniform, fan_in, ``a=1`` for the convs and
position fcs in :meth:`GeneralizedAttention.init_weights`; ``U(-s, s)`` biases,
``s = 1 / sqrt(2 * qk_embed_dim)``) are mmcv's.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers.plugin import PLUGIN_LAYERS
from detforge.models.layers.weight_init import kaiming_init

__all__ = ["GeneralizedAttention"]

# Side of the local-constraint mask by channel count (mmcv's table: stages 3 and 4 of a ResNet
# at 1333x800 input after the 3x3 conv).
_MAX_LEN = {256: 84, 512: 42}


def _local_constraint_map(max_len: int, spatial_range: int, kv_stride: int) -> torch.Tensor:
    """uint8 ``[L, L, L_kv, L_kv]``: 1 where key ``(ky, kx)`` is outside query ``(y, x)``'s
    window of ``spatial_range`` (in query pixels)."""
    max_len_kv = int((max_len - 1.0) / kv_stride + 1)
    mask = np.ones((max_len, max_len, max_len_kv, max_len_kv), dtype=np.uint8)
    for iy in range(max_len):
        y0 = max((iy - spatial_range) // kv_stride, 0)
        y1 = min((iy + spatial_range + 1) // kv_stride + 1, max_len)
        for ix in range(max_len):
            x0 = max((ix - spatial_range) // kv_stride, 0)
            x1 = min((ix + spatial_range + 1) // kv_stride + 1, max_len)
            mask[iy, ix, y0:y1, x0:x1] = 0
    return torch.from_numpy(mask)


@PLUGIN_LAYERS.register_module()
class GeneralizedAttention(nn.Module):
    """Generalized spatial attention (see the module docstring).

    Args:
        in_channels: Channels of the feature map.
        spatial_range: Window radius in query pixels; -1 for global attention.
        num_heads: Attention heads (``in_channels // num_heads`` channels each).
        position_embedding_dim: Size of the position embeddings (``in_channels`` if <= 0).
        position_magnitude: Multiplies the coordinate offsets.
        kv_stride: Average-pool stride of the keys and values.
        q_stride: Average-pool stride of the queries.
        attention_type: Four ``'0'``/``'1'`` flags (``'1111'`` = all terms).

    Example:
        >>> att = GeneralizedAttention(16, num_heads=2, attention_type='1111')
        >>> x = torch.rand(1, 16, 6, 6)
        >>> torch.equal(att(x), x)  # gamma starts at zero
        True
    """

    _abbr_ = "gen_attention_block"

    def __init__(
        self,
        in_channels: int,
        spatial_range: int = -1,
        num_heads: int = 9,
        position_embedding_dim: int = -1,
        position_magnitude: int = 1,
        kv_stride: int = 2,
        q_stride: int = 1,
        attention_type: str = "1111",
    ) -> None:
        super().__init__()
        if (
            len(attention_type) != 4
            or set(attention_type) - {"0", "1"}
            or "1" not in attention_type
        ):
            raise ValueError(
                "GeneralizedAttention: attention_type must be four '0'/'1' flags with at least "
                f"one '1', got {attention_type!r}"
            )
        if spatial_range >= 0 and in_channels not in _MAX_LEN:
            raise ValueError(
                f"GeneralizedAttention: spatial_range >= 0 needs in_channels in "
                f"{sorted(_MAX_LEN)} (mmcv's fixed mask sizes), got {in_channels}"
            )
        self.position_embedding_dim = (
            position_embedding_dim if position_embedding_dim > 0 else in_channels
        )
        self.position_magnitude = position_magnitude
        self.num_heads = num_heads
        self.in_channels = in_channels
        self.spatial_range = spatial_range
        self.kv_stride = kv_stride
        self.q_stride = q_stride
        self.attention_type = [flag == "1" for flag in attention_type]
        self.qk_embed_dim = in_channels // num_heads
        self.v_dim = in_channels // num_heads
        out_c = self.qk_embed_dim * num_heads
        appr_appr, appr_geom, bias_appr, bias_geom = self.attention_type
        if appr_appr or appr_geom:
            self.query_conv = nn.Conv2d(in_channels, out_c, kernel_size=1, bias=False)
        if appr_appr or bias_appr:
            self.key_conv = nn.Conv2d(in_channels, out_c, kernel_size=1, bias=False)
        self.value_conv = nn.Conv2d(in_channels, self.v_dim * num_heads, kernel_size=1, bias=False)
        if appr_geom or bias_geom:
            half = self.position_embedding_dim // 2
            self.appr_geom_fc_x = nn.Linear(half, out_c, bias=False)
            self.appr_geom_fc_y = nn.Linear(half, out_c, bias=False)
        stdv = 1.0 / math.sqrt(self.qk_embed_dim * 2)
        if bias_appr:
            self.appr_bias = nn.Parameter(-2 * stdv * torch.rand(out_c) + stdv)
        if bias_geom:
            self.geom_bias = nn.Parameter(-2 * stdv * torch.rand(out_c) + stdv)
        self.proj_conv = nn.Conv2d(self.v_dim * num_heads, in_channels, kernel_size=1, bias=True)
        self.gamma = nn.Parameter(torch.zeros(1))
        if spatial_range >= 0:
            self.local_constraint_map = nn.Parameter(
                _local_constraint_map(_MAX_LEN[in_channels], spatial_range, kv_stride),
                requires_grad=False,
            )
        self.q_downsample = nn.AvgPool2d(kernel_size=1, stride=q_stride) if q_stride > 1 else None
        self.kv_downsample = (
            nn.AvgPool2d(kernel_size=1, stride=kv_stride) if kv_stride > 1 else None
        )
        self.init_weights()

    def _kaiming_layers(self) -> list[nn.Module]:
        names = ("query_conv", "key_conv", "value_conv", "appr_geom_fc_x", "appr_geom_fc_y")
        layers = [getattr(self, n) for n in names if hasattr(self, n)]
        return [*layers, self.proj_conv]

    def init_weights(self) -> None:
        """Kaiming uniform (fan_in, leaky ReLU with ``a=1``), zero bias, for convs and fcs."""
        for layer in self._kaiming_layers():
            kaiming_init(
                layer, a=1, mode="fan_in", nonlinearity="leaky_relu", distribution="uniform"
            )

    def get_position_embedding(
        self,
        h: int,
        w: int,
        h_kv: int,
        w_kv: int,
        q_stride: int,
        kv_stride: int,
        device: torch.device,
        dtype: torch.dtype,
        feat_dim: int,
        wave_length: int = 1000,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sinusoidal embeddings ``[w, w_kv, feat_dim / 2]`` and ``[h, h_kv, feat_dim / 2]``
        of the query-to-key offsets along x and y (in input pixels times the magnitude)."""

        def offsets(n_q: int, n_kv: int) -> torch.Tensor:
            q = torch.linspace(0, n_q - 1, n_q).to(device=device, dtype=dtype).view(n_q, 1)
            kv = torch.linspace(0, n_kv - 1, n_kv).to(device=device, dtype=dtype).view(n_kv, 1)
            diff = (q * q_stride).unsqueeze(1) - (kv * kv_stride).unsqueeze(0)
            return diff * self.position_magnitude

        feat_range = torch.arange(0, feat_dim / 4).to(device=device, dtype=dtype)
        dim_mat = torch.tensor([wave_length], dtype=torch.float32).to(device=device, dtype=dtype)
        dim_mat = (dim_mat ** ((4.0 / feat_dim) * feat_range)).view(1, 1, -1)
        w_diff, h_diff = offsets(w, w_kv) / dim_mat, offsets(h, h_kv) / dim_mat
        embedding_x = torch.cat((w_diff.sin(), w_diff.cos()), dim=2)
        embedding_y = torch.cat((h_diff.sin(), h_diff.cos()), dim=2)
        return embedding_x, embedding_y

    def _energy(
        self, x_q: torch.Tensor, x_kv: torch.Tensor, x_input: torch.Tensor
    ) -> tuple[torch.Tensor, int, int]:
        """Energies ``[n, heads, h * w, h_kv * w_kv]`` and the query grid ``(h, w)`` (1x1
        for key-content-only attention)."""
        heads, dim = self.num_heads, self.qk_embed_dim
        appr_appr, appr_geom, bias_appr, bias_geom = self.attention_type
        n, _, h, w = x_q.shape
        _, _, h_kv, w_kv = x_kv.shape
        if appr_appr or appr_geom:
            query = self.query_conv(x_q).view(n, heads, dim, h * w).permute(0, 1, 3, 2)
        if appr_appr or bias_appr:
            key = self.key_conv(x_kv).view(n, heads, dim, h_kv * w_kv)
        if appr_geom or bias_geom:
            embed_x, embed_y = self.get_position_embedding(
                h,
                w,
                h_kv,
                w_kv,
                self.q_stride,
                self.kv_stride,
                x_input.device,
                x_input.dtype,
                self.position_embedding_dim,
            )
            feat_x = self.appr_geom_fc_x(embed_x).view(1, w, w_kv, heads, dim)
            feat_x = feat_x.permute(0, 3, 1, 2, 4).repeat(n, 1, 1, 1, 1) / math.sqrt(2)
            feat_y = self.appr_geom_fc_y(embed_y).view(1, h, h_kv, heads, dim)
            feat_y = feat_y.permute(0, 3, 1, 2, 4).repeat(n, 1, 1, 1, 1) / math.sqrt(2)
        if bias_appr and not (appr_appr or appr_geom or bias_geom):
            appr_bias = self.appr_bias.view(1, heads, 1, dim).repeat(n, 1, 1, 1)
            return torch.matmul(appr_bias, key).view(n, heads, 1, h_kv * w_kv), 1, 1
        energy = x_input.new_zeros(n, heads, h, w, h_kv, w_kv)
        if appr_appr:
            q = query + self.appr_bias.view(1, heads, 1, dim) if bias_appr else query
            energy = torch.matmul(q, key).view(n, heads, h, w, h_kv, w_kv)
        elif bias_appr:
            appr_bias = self.appr_bias.view(1, heads, 1, dim).repeat(n, 1, 1, 1)
            energy = energy + torch.matmul(appr_bias, key).view(n, heads, 1, 1, h_kv, w_kv)
        if appr_geom:
            q = query + self.geom_bias.view(1, heads, 1, dim) if bias_geom else query
            q = q.view(n, heads, h, w, dim)
            q_t = q.permute(0, 1, 3, 2, 4)
            energy_x = torch.matmul(q_t, feat_x.permute(0, 1, 2, 4, 3))
            if not bias_geom and h != w:
                raise ValueError(
                    "GeneralizedAttention: attention_type with '0100' but not '0001' needs "
                    f"square query maps, as in mmcv (got {h}x{w})"
                )
            # mmcv uses the transposed query for the y term unless '0001' is on; kept
            energy_y = torch.matmul(q if bias_geom else q_t, feat_y.permute(0, 1, 2, 4, 3))
            energy = energy + (energy_x.permute(0, 1, 3, 2, 4).unsqueeze(4) + energy_y.unsqueeze(5))
        elif bias_geom:
            geom_bias = self.geom_bias.view(1, heads, dim, 1).repeat(n, 1, 1, 1)
            energy_x = torch.matmul(feat_x.reshape(n, heads, w * w_kv, dim), geom_bias)
            energy_y = torch.matmul(feat_y.reshape(n, heads, h * h_kv, dim), geom_bias)
            energy = energy + (
                energy_x.view(n, heads, 1, w, 1, w_kv) + energy_y.view(n, heads, h, 1, h_kv, 1)
            )
        return energy.view(n, heads, h * w, h_kv * w_kv), h, w

    def forward(self, x_input: torch.Tensor) -> torch.Tensor:
        """``x + gamma * attention(x)``, shaped like ``x_input [B, C, H, W]``."""
        x_q = self.q_downsample(x_input) if self.q_downsample is not None else x_input
        x_kv = self.kv_downsample(x_input) if self.kv_downsample is not None else x_input
        n, _, h_kv, w_kv = x_kv.shape
        energy, h, w = self._energy(x_q, x_kv, x_input)
        if self.spatial_range >= 0:
            outside = self.local_constraint_map[:h, :w, :h_kv, :w_kv].contiguous()
            energy = energy.masked_fill(outside.view(1, 1, h * w, h_kv * w_kv).bool(), -math.inf)
        attention = F.softmax(energy, 3)
        value = self.value_conv(x_kv).view(n, self.num_heads, self.v_dim, h_kv * w_kv)
        out = torch.matmul(attention, value.permute(0, 1, 3, 2)).permute(0, 1, 3, 2)
        out = self.proj_conv(out.contiguous().view(n, self.v_dim * self.num_heads, h, w))
        if self.q_downsample is not None:
            out = F.interpolate(out, size=x_input.shape[2:], mode="bilinear", align_corners=False)
        return self.gamma * out + x_input
