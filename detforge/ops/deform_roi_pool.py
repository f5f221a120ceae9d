"""Deformable RoI pooling (mmcv's ``DeformRoIPool``, ``DeformRoIPoolPack``,
``ModulatedDeformRoIPoolPack``) in plain PyTorch.

Numerics of mmcv's kernel: a RoI ``(x1, y1, x2, y2)`` spans
``[x1 * s - 0.5, x2 * s - 0.5]`` on the feature map (``s = spatial_scale``); it is split into
``output_size`` bins of ``roi_w / out_w`` by ``roi_h / out_h``; bin ``(i, j)`` is shifted by
``gamma * roi_w * offset[k, 0, i, j]`` along x and ``gamma * roi_h * offset[k, 1, i, j]``
along y and averages ``gh x gw`` bilinear samples at the centres of a regular sub-grid, where
``gh = sampling_ratio`` or, when that is 0, ``ceil(roi_h / out_h)`` (likewise ``gw``). A sample
beyond ``[-1, H] x [-1, W]`` counts as 0; one in ``[-1, 0)`` reads the border. Gradients flow
to the input and to the offsets by autograd.

The ``*Pack`` layers predict the offsets themselves from a first, undeformed pooling:
``offset_fc`` = ``Linear(out_h·out_w·C, F) → ReLU → Linear(F, F) → ReLU → Linear(F, out_h·out_w·2)``
(last layer zero-initialised, so training starts from plain RoI pooling); the modulated one
also multiplies the result by ``mask_fc`` = ``Linear → ReLU → Linear(F, out_h·out_w) →
Sigmoid`` (last linear zero: mask 0.5). Keys are mmcv's (``offset_fc.{0,2,4}.*``,
``mask_fc.{0,2}.*``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair

__all__ = [
    "DeformRoIPool",
    "DeformRoIPoolPack",
    "ModulatedDeformRoIPoolPack",
    "deform_roi_pool",
]

# Bilinear samples gathered per chunk (times channels) to bound memory.
_CHUNK_ELEMS = 1 << 24


def _bilinear(
    flat: torch.Tensor,
    batch: torch.Tensor,
    y: torch.Tensor,
    x: torch.Tensor,
    height: int,
    width: int,
) -> torch.Tensor:
    """mmcv's ``bilinear_interpolate`` at points ``(y, x)`` of images ``batch`` (all ``[N]``).

    ``flat`` is the input as ``[B * H * W, C]``; returns ``[N, C]``.
    """
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    y = y.clamp(min=0)
    x = x.clamp(min=0)
    y_low = y.floor().long()
    x_low = x.floor().long()
    top = y_low >= height - 1
    left = x_low >= width - 1
    y_low = torch.where(top, height - 1, y_low)
    x_low = torch.where(left, width - 1, x_low)
    y = torch.where(top, y_low.to(y.dtype), y)
    x = torch.where(left, x_low.to(x.dtype), x)
    y_high = torch.where(top, y_low, y_low + 1)
    x_high = torch.where(left, x_low, x_low + 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    base = batch * (height * width)
    val = (
        (hy * hx)[:, None] * flat[base + y_low * width + x_low]
        + (hy * lx)[:, None] * flat[base + y_low * width + x_high]
        + (ly * hx)[:, None] * flat[base + y_high * width + x_low]
        + (ly * lx)[:, None] * flat[base + y_high * width + x_high]
    )
    return val * (~outside)[:, None].to(val.dtype)


def _pool_group(
    flat: torch.Tensor,
    rois: torch.Tensor,
    offset: torch.Tensor | None,
    out_hw: tuple[int, int],
    grid: tuple[int, int],
    spatial_scale: float,
    gamma: float,
    hw: tuple[int, int],
) -> torch.Tensor:
    """Pool RoIs ``[K, 5]`` that share the sampling grid ``(gh, gw)`` → ``[K, C, oh, ow]``."""
    (out_h, out_w), (grid_h, grid_w) = out_hw, grid
    k = rois.size(0)
    start_w = rois[:, 1] * spatial_scale - 0.5
    start_h = rois[:, 2] * spatial_scale - 0.5
    roi_w = rois[:, 3] * spatial_scale - 0.5 - start_w
    roi_h = rois[:, 4] * spatial_scale - 0.5 - start_h
    bin_w, bin_h = roi_w / out_w, roi_h / out_h
    # [K, oh, ow] start of each (shifted) bin, then [K, oh, ow, gh, gw] sample coordinates; the
    # order of the additions is the kernel's, so that the samples agree to the last bit
    pw = torch.arange(out_w, device=rois.device, dtype=rois.dtype)
    ph = torch.arange(out_h, device=rois.device, dtype=rois.dtype)
    x0 = start_w[:, None, None].expand(k, out_h, out_w)
    y0 = start_h[:, None, None].expand(k, out_h, out_w)
    if offset is not None:
        x0 = x0 + gamma * roi_w[:, None, None] * offset[:, 0]
        y0 = y0 + gamma * roi_h[:, None, None] * offset[:, 1]
    x0 = x0 + pw[None, None, :] * bin_w[:, None, None]
    y0 = y0 + ph[None, :, None] * bin_h[:, None, None]
    iy = torch.arange(grid_h, device=rois.device, dtype=rois.dtype) + 0.5
    ix = torch.arange(grid_w, device=rois.device, dtype=rois.dtype) + 0.5
    step_y = iy[None, :] * bin_h[:, None] / grid_h  # [K, gh]
    step_x = ix[None, :] * bin_w[:, None] / grid_w  # [K, gw]
    ys = y0[..., None, None] + step_y[:, None, None, :, None]
    xs = x0[..., None, None] + step_x[:, None, None, None, :]
    ys, xs = torch.broadcast_tensors(ys, xs)
    batch = rois[:, 0].long()[:, None, None, None, None].expand_as(ys)
    vals = _bilinear(flat, batch.reshape(-1), ys.reshape(-1), xs.reshape(-1), *hw)
    channels = flat.size(1)
    vals = vals.view(k, out_h, out_w, grid_h * grid_w, channels).sum(3)
    vals = vals / max(grid_h * grid_w, 1)
    return vals.permute(0, 3, 1, 2)


def deform_roi_pool(
    input: torch.Tensor,
    rois: torch.Tensor,
    offset: torch.Tensor | None,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    gamma: float = 0.1,
) -> torch.Tensor:
    """Deformable RoI average pooling (see the module docstring).

    Args:
        input: ``Tensor[B, C, H, W]``.
        rois: ``Tensor[K, 5]`` (batch index, x1, y1, x2, y2) in input-image pixels.
        offset: ``Tensor[K, 2, out_h, out_w]`` (x then y, in units of the RoI size / gamma)
            or ``None`` for undeformed bins.
        output_size: ``out_h, out_w`` (an int means square).
        spatial_scale: Feature-map scale of the RoI coordinates.
        sampling_ratio: Samples per bin side; 0 adapts it to the bin size.
        gamma: Offset scale.

    Returns:
        ``Tensor[K, C, out_h, out_w]``.

    Without offsets this is ``RoIAlign(aligned=True)``; an offset of 1 moves a bin by
    ``gamma`` RoI widths/heights.

    Example:
        >>> feat = torch.arange(16.).view(1, 1, 4, 4)
        >>> rois = torch.tensor([[0., 0.5, 0.5, 2.5, 2.5]])
        >>> deform_roi_pool(feat, rois, None, 1).item()
        5.0
        >>> deform_roi_pool(feat, rois, torch.tensor([[[[5.]], [[0.]]]]), 1).item()  # x + 1
        6.0
    """
    out_hw: tuple[int, int] = _pair(output_size)
    if rois.ndim != 2 or rois.size(1) != 5:
        raise ValueError(
            f"deform_roi_pool: rois must be [K, 5] (batch index, x1, y1, x2, y2), "
            f"got shape {tuple(rois.shape)}"
        )
    num, channels = rois.size(0), input.size(1)
    if offset is not None and tuple(offset.shape) != (num, 2, *out_hw):
        raise ValueError(
            f"deform_roi_pool: offset must be [{num}, 2, {out_hw[0]}, {out_hw[1]}], "
            f"got {tuple(offset.shape)}"
        )
    output = input.new_zeros(num, channels, *out_hw)
    if num == 0:
        return output + input.sum() * 0.0
    rois = rois.to(input.dtype)
    height, width = input.shape[2:]
    flat = input.permute(0, 2, 3, 1).reshape(-1, channels)
    if sampling_ratio > 0:
        grids = torch.full((num, 2), sampling_ratio, dtype=torch.long, device=rois.device)
    else:
        # the kernel's arithmetic: (end * s - 0.5) - (start * s - 0.5), then ceil(size / out)
        corners = rois[:, 1:] * spatial_scale - 0.5
        sizes = torch.stack([corners[:, 3] - corners[:, 1], corners[:, 2] - corners[:, 0]], 1)
        grids = torch.ceil(sizes / sizes.new_tensor(out_hw)).long().clamp(min=0)
    for grid in torch.unique(grids, dim=0).tolist():
        inds = ((grids[:, 0] == grid[0]) & (grids[:, 1] == grid[1])).nonzero().squeeze(1)
        per_roi = out_hw[0] * out_hw[1] * max(grid[0] * grid[1], 1) * channels
        step = max(1, _CHUNK_ELEMS // max(per_roi, 1))
        for chunk in inds.split(step):
            output[chunk] = _pool_group(
                flat,
                rois[chunk],
                None if offset is None else offset[chunk],
                out_hw,
                (grid[0], grid[1]),
                spatial_scale,
                gamma,
                (height, width),
            )
    return output


class DeformRoIPool(nn.Module):
    """mmcv's ``DeformRoIPool``: :func:`deform_roi_pool` with offsets given by the caller.

    Args:
        output_size: Pooled size.
        spatial_scale: ``1 / stride`` of the feature map.
        sampling_ratio: Samples per bin side (0: adaptive).
        gamma: Offset scale.
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        gamma: float = 0.1,
    ) -> None:
        super().__init__()
        self.output_size: tuple[int, int] = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.gamma = float(gamma)

    def _pool(
        self, input: torch.Tensor, rois: torch.Tensor, offset: torch.Tensor | None
    ) -> torch.Tensor:
        return deform_roi_pool(
            input,
            rois,
            offset,
            self.output_size,
            self.spatial_scale,
            self.sampling_ratio,
            self.gamma,
        )

    def forward(
        self, input: torch.Tensor, rois: torch.Tensor, offset: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``Tensor[K, C, out_h, out_w]`` for ``rois [K, 5]``."""
        return self._pool(input, rois, offset)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, gamma={self.gamma}"
        )


def _zero_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _offset_fc(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        _zero_linear(hidden, out_features),
    )


class DeformRoIPoolPack(DeformRoIPool):
    """Deformable RoI pooling that predicts its offsets (``offset_fc``); ``DeformRoIPoolPack``.

    Args:
        output_size: Pooled size.
        output_channels: Channels of the input feature map.
        deform_fc_channels: Hidden width of ``offset_fc``.
        spatial_scale: ``1 / stride`` of the feature map.
        sampling_ratio: Samples per bin side (0: adaptive).
        gamma: Offset scale.

    Example:
        >>> layer = DeformRoIPoolPack(7, output_channels=4, deform_fc_channels=8,
        ...                           spatial_scale=0.25)
        >>> layer(torch.rand(1, 4, 16, 16), torch.tensor([[0., 4., 4., 40., 30.]])).shape
        torch.Size([1, 4, 7, 7])
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        output_channels: int,
        deform_fc_channels: int = 1024,
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        gamma: float = 0.1,
    ) -> None:
        super().__init__(output_size, spatial_scale, sampling_ratio, gamma)
        self.output_channels = output_channels
        self.deform_fc_channels = deform_fc_channels
        bins = self.output_size[0] * self.output_size[1]
        self.offset_fc = _offset_fc(bins * output_channels, deform_fc_channels, bins * 2)

    def _check_channels(self, input: torch.Tensor) -> None:
        if input.size(1) != self.output_channels:
            raise ValueError(
                f"{type(self).__name__}: input has {input.size(1)} channels, "
                f"output_channels={self.output_channels}"
            )

    def _offsets(self, plain: torch.Tensor) -> torch.Tensor:
        """Offsets ``[K, 2, out_h, out_w]`` predicted from the undeformed pooling."""
        return self.offset_fc(plain.flatten(1)).view(plain.size(0), 2, *self.output_size)

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``Tensor[K, C, out_h, out_w]`` for ``rois [K, 5]``."""
        self._check_channels(input)
        plain = self._pool(input, rois, None)
        return self._pool(input, rois, self._offsets(plain))


class ModulatedDeformRoIPoolPack(DeformRoIPoolPack):
    """:class:`DeformRoIPoolPack` whose result is scaled per bin by ``mask_fc``'s sigmoid;
    ``ModulatedDeformRoIPoolPack``.

    Example:
        >>> layer = ModulatedDeformRoIPoolPack(7, output_channels=4, deform_fc_channels=8)
        >>> out = layer(torch.ones(1, 4, 16, 16), torch.tensor([[0., 2., 2., 12., 12.]]))
        >>> out.shape, out.max().item()  # mask 0.5 at initialisation
        (torch.Size([1, 4, 7, 7]), 0.5)
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        output_channels: int,
        deform_fc_channels: int = 1024,
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        gamma: float = 0.1,
    ) -> None:
        super().__init__(
            output_size,
            output_channels,
            deform_fc_channels=deform_fc_channels,
            spatial_scale=spatial_scale,
            sampling_ratio=sampling_ratio,
            gamma=gamma,
        )
        bins = self.output_size[0] * self.output_size[1]
        self.mask_fc = nn.Sequential(
            nn.Linear(bins * output_channels, deform_fc_channels),
            nn.ReLU(inplace=True),
            _zero_linear(deform_fc_channels, bins),
            nn.Sigmoid(),
        )

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Modulated deformable pooling, ``Tensor[K, C, out_h, out_w]``."""
        self._check_channels(input)
        plain = self._pool(input, rois, None)
        mask = self.mask_fc(plain.flatten(1)).view(plain.size(0), 1, *self.output_size)
        return self._pool(input, rois, self._offsets(plain)) * mask
