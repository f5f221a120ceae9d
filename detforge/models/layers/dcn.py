"""Deformable convolutions (DCN v1 and v2) on ``torchvision.ops.deform_conv2d``.

Parameter names and shapes are mmcv's, so MMDetection checkpoints load unchanged:
``weight [C_out, C_in / groups, kh, kw]``, ``bias [C_out]`` (DCNv2 only) and, for the
``*Pack`` layers that predict their own offsets, ``conv_offset.weight`` / ``conv_offset.bias``.
The offset layout is mmcv's and torchvision's: for each deformable group and each kernel
position ``k`` (row-major), channel ``2k`` is the y offset and ``2k + 1`` the x offset.

``DCN`` (:class:`DeformConv2dPack`) and ``DCNv2`` (:class:`ModulatedDeformConv2dPack`) are
registered as conv layers, so ``dcn=dict(type='DCN', deform_groups=1)`` works in ResNet and
``conv_cfg=dict(type='DCNv2')`` in ConvModule. ``im2col_step`` is accepted for config
compatibility and ignored (torchvision chooses its own batching). A NaN offset samples nothing,
as in mmcv's kernels (torchvision's would read outside the input, see :func:`mmcv_offsets`).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.nn.modules.utils import _pair, _single
from torchvision.ops import deform_conv2d

from detforge.models.layers.conv import CONV_LAYERS

__all__ = [
    "DeformConv2d",
    "DeformConv2dPack",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv2dPack",
    "mmcv_offsets",
]

_IntOrPair = int | tuple[int, int]
# Where a NaN offset is sent: far outside any map, so the sample reads zero.
_FAR = 1e9


def mmcv_offsets(offset: torch.Tensor) -> torch.Tensor:
    """``offset`` with NaNs moved far outside the map (mmcv skips such samples: its bounds
    checks are false for NaN; torchvision's kernel would index with NaN, which can crash).

    Example:
        >>> mmcv_offsets(torch.tensor([0.5, float('nan')])).tolist()
        [0.5, 1000000000.0]
    """
    return torch.nan_to_num(offset, nan=_FAR, posinf=_FAR, neginf=-_FAR)


def _deform_groups(deform_groups: int, deformable_groups: int | None, owner: str) -> int:
    if deformable_groups is None:
        return deform_groups
    warnings.warn(
        f"{owner}: 'deformable_groups' is deprecated, use 'deform_groups'",
        DeprecationWarning,
        stacklevel=3,
    )
    return deformable_groups


def _check_channels(in_channels: int, out_channels: int, groups: int, owner: str) -> None:
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{owner}: in_channels={in_channels} and out_channels={out_channels} must both be "
            f"divisible by groups={groups}"
        )


def _offset_conv(layer: DeformConv2d | ModulatedDeformConv2d, per_position: int) -> nn.Conv2d:
    """The conv that predicts ``per_position`` values per kernel position and deform group."""
    kh, kw = layer.kernel_size
    return nn.Conv2d(
        layer.in_channels,
        layer.deform_groups * per_position * kh * kw,
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        bias=True,
    )


def _zero(conv: nn.Conv2d) -> None:
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class DeformConv2d(nn.Module):
    """Deformable convolution (DCN v1) with offsets given by the caller; no bias.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel size.
        stride: Stride.
        padding: Zero padding on each side.
        dilation: Kernel dilation.
        groups: Convolution groups.
        deform_groups: Channel groups that share one offset field.
        bias: Must be False (mmcv's DCN v1 has no bias).
        im2col_step: Accepted and ignored.
        deformable_groups: Deprecated name of ``deform_groups``.

    Example:
        >>> layer = DeformConv2d(4, 8, 3, padding=1)
        >>> layer(torch.randn(1, 4, 5, 5), torch.zeros(1, 18, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrPair,
        stride: _IntOrPair = 1,
        padding: _IntOrPair = 0,
        dilation: _IntOrPair = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = False,
        im2col_step: int = 32,
        deformable_groups: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if bias:
            raise ValueError(f"{name}: bias=True is not supported (use DCNv2 for a biased layer)")
        _check_channels(in_channels, out_channels, groups, name)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size: tuple[int, int] = _pair(kernel_size)
        self.stride: tuple[int, int] = _pair(stride)
        self.padding: tuple[int, int] = _pair(padding)
        self.dilation: tuple[int, int] = _pair(dilation)
        self.groups = groups
        self.deform_groups = _deform_groups(deform_groups, deformable_groups, name)
        self.im2col_step = im2col_step
        self.transposed = False
        self.output_padding: tuple[int] = _single(0)
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size)
        )
        self.bias: nn.Parameter | None = None
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Convolve ``x [B, C_in, H, W]`` sampled at ``offset [B, 2·G·kh·kw, H_out, W_out]``."""
        return deform_conv2d(
            x,
            mmcv_offsets(offset),
            self.weight,
            None,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, deform_groups={self.deform_groups}, bias=False"
        )


@CONV_LAYERS.register_module(name="DCN")
class DeformConv2dPack(DeformConv2d):
    """DCN v1 that predicts its offsets with ``conv_offset`` (zero-initialised); ``DCN``.

    Takes the arguments of :class:`DeformConv2d` and is used like ``nn.Conv2d``. With zero
    offsets it equals a plain convolution.

    Example:
        >>> layer = DeformConv2dPack(4, 8, 3, padding=1)
        >>> layer(torch.randn(1, 4, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrPair,
        stride: _IntOrPair = 1,
        padding: _IntOrPair = 0,
        dilation: _IntOrPair = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = False,
        im2col_step: int = 32,
        deformable_groups: int | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            deform_groups=deform_groups,
            bias=bias,
            im2col_step=im2col_step,
            deformable_groups=deformable_groups,
        )
        self.conv_offset = _offset_conv(self, 2)
        self.init_weights()

    def init_weights(self) -> None:
        """Zero the offset predictor (the layer starts as a plain convolution)."""
        _zero(self.conv_offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H_out, W_out]``."""
        return super().forward(x, self.conv_offset(x))


class ModulatedDeformConv2d(nn.Module):
    """Modulated deformable convolution (DCN v2) with offsets and mask given by the caller.

    Arguments as :class:`DeformConv2d`, except that ``bias`` defaults to True.

    Example:
        >>> layer = ModulatedDeformConv2d(4, 8, 3, padding=1)
        >>> x, off, mask = torch.randn(1, 4, 5, 5), torch.zeros(1, 18, 5, 5), torch.ones(1, 9, 5, 5)
        >>> layer(x, off, mask).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrPair,
        stride: _IntOrPair = 1,
        padding: _IntOrPair = 0,
        dilation: _IntOrPair = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
        im2col_step: int = 32,
        deformable_groups: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_channels(in_channels, out_channels, groups, name)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size: tuple[int, int] = _pair(kernel_size)
        self.stride: tuple[int, int] = _pair(stride)
        self.padding: tuple[int, int] = _pair(padding)
        self.dilation: tuple[int, int] = _pair(dilation)
        self.groups = groups
        self.deform_groups = _deform_groups(deform_groups, deformable_groups, name)
        self.im2col_step = im2col_step
        self.transposed = False
        self.output_padding: tuple[int] = _single(0)
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size)
        )
        self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._init_kernel()

    def _init_kernel(self) -> None:
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def init_weights(self) -> None:
        """mmcv's init: ``weight ~ U(-1/sqrt(n), 1/sqrt(n))`` with ``n = C_in·kh·kw``, bias 0."""
        self._init_kernel()

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` at ``offset [B, 2·G·kh·kw, h, w]``, scaled by ``mask [B, G·kh·kw, h, w]``.

        ``G`` is ``deform_groups``; the output is ``Tensor[B, C_out, h, w]``.
        """
        return deform_conv2d(
            x,
            mmcv_offsets(offset),
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, deform_groups={self.deform_groups}, "
            f"bias={self.bias is not None}"
        )


@CONV_LAYERS.register_module(name="DCNv2")
class ModulatedDeformConv2dPack(ModulatedDeformConv2d):
    """DCN v2 that predicts offsets and mask with ``conv_offset`` (zero-initialised); ``DCNv2``.

    ``conv_offset`` outputs ``3·G·kh·kw`` channels: the first two thirds are the offsets, the
    last third goes through a sigmoid to give the mask (0.5 everywhere at initialisation).

    Example:
        >>> layer = ModulatedDeformConv2dPack(4, 8, 3, padding=1)
        >>> layer(torch.randn(1, 4, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrPair,
        stride: _IntOrPair = 1,
        padding: _IntOrPair = 0,
        dilation: _IntOrPair = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
        im2col_step: int = 32,
        deformable_groups: int | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            deform_groups=deform_groups,
            bias=bias,
            im2col_step=im2col_step,
            deformable_groups=deformable_groups,
        )
        self.conv_offset = _offset_conv(self, 3)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's kernel init plus a zeroed offset/mask predictor."""
        super().init_weights()
        _zero(self.conv_offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H_out, W_out]``."""
        out = self.conv_offset(x)
        n_offset = 2 * out.shape[1] // 3
        offset = out[:, :n_offset]
        mask = torch.sigmoid(out[:, n_offset:])
        return super().forward(x, offset, mask)
