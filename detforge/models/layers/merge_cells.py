"""Merge cells of NAS-FPN and NAS-FCOS (mmcv ``ops.merge_cells``: same keys and numerics).

A cell takes two feature maps, optionally passes each through a 3x3 ``ConvModule``
(``input1_conv``, ``input2_conv``), resizes both to ``out_size``, combines them (sum,
concatenation, or global-pooling attention) and optionally applies ``out_conv``.

Resizing follows mmcv exactly: a map whose ``(h, w)`` compares *lexicographically* smaller than
the target is interpolated (``upsample_mode``), a larger one is max-pooled with kernel = stride =
the integer ratio of the sizes after zero-padding it (split evenly, the extra pixel at the
bottom/right) to a multiple of the target.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers.conv_module import ConvModule
from detforge.registry import Cfg

__all__ = ["BaseMergeCell", "ConcatCell", "GlobalPoolingCell", "SumCell", "resize_to"]

_OUT_CONV: Cfg = MappingProxyType(dict(groups=1, kernel_size=3, padding=1, bias=True))
_UPSAMPLE_MODES = ("nearest", "bilinear")


def resize_to(x: torch.Tensor, size: Sequence[int], mode: str = "nearest") -> torch.Tensor:
    """``x [B, C, h, w]`` resized to ``size = (H, W)`` the way mmcv's merge cells do it.

    Example:
        >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
        >>> resize_to(x, (2, 2)).flatten().tolist()
        [5.0, 7.0, 13.0, 15.0]
        >>> resize_to(x, (8, 8)).shape
        torch.Size([1, 1, 8, 8])
    """
    have, want = tuple(x.shape[-2:]), (int(size[0]), int(size[1]))
    if have == want:
        return x
    if have < want:  # lexicographic, as in mmcv
        return F.interpolate(x, size=want, mode=mode)
    (h, w), (th, tw) = have, want
    if h % th or w % tw:
        pad_h = math.ceil(h / th) * th - h
        pad_w = math.ceil(w / tw) * tw - w
        pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        x = F.pad(x, pad, mode="constant", value=0.0)
    kernel = (x.shape[-2] // th, x.shape[-1] // tw)
    return F.max_pool2d(x, kernel_size=kernel, stride=kernel)


class BaseMergeCell(nn.Module):
    """Two inputs → optional input convs → resize → binary op → optional ``out_conv``.

    Args:
        fused_channels: Input channels of ``out_conv`` (the binary op's output channels).
        out_channels: Output channels of ``out_conv``; also the channels of the input convs.
        with_out_conv: Build and apply ``out_conv``.
        out_conv_cfg: ``ConvModule`` arguments of ``out_conv`` (``kernel_size``, ``padding``,
            ``groups``, ``bias``).
        out_norm_cfg: Norm config of ``out_conv``.
        out_conv_order: Layer order of ``out_conv`` (default activation first).
        with_input1_conv: Apply a 3x3 ``ConvModule`` (``input1_conv``) to the first input.
        with_input2_conv: The same for the second input (``input2_conv``).
        input_conv_cfg: Conv config of the input convs.
        input_norm_cfg: Norm config of the input convs.
        upsample_mode: ``'nearest'`` or ``'bilinear'``, for inputs smaller than ``out_size``.
    """

    def __init__(
        self,
        fused_channels: int = 256,
        out_channels: int = 256,
        with_out_conv: bool = True,
        out_conv_cfg: Cfg = _OUT_CONV,
        out_norm_cfg: Cfg | None = None,
        out_conv_order: Sequence[str] = ("act", "conv", "norm"),
        with_input1_conv: bool = False,
        with_input2_conv: bool = False,
        input_conv_cfg: Cfg | None = None,
        input_norm_cfg: Cfg | None = None,
        upsample_mode: str = "nearest",
    ) -> None:
        super().__init__()
        if upsample_mode not in _UPSAMPLE_MODES:
            raise ValueError(
                f"{type(self).__name__}: upsample_mode must be one of {_UPSAMPLE_MODES}, "
                f"got {upsample_mode!r}"
            )
        self.with_out_conv = with_out_conv
        self.with_input1_conv = with_input1_conv
        self.with_input2_conv = with_input2_conv
        self.upsample_mode = upsample_mode
        if with_out_conv:
            self.out_conv = ConvModule(
                fused_channels,
                out_channels,
                **dict(out_conv_cfg),
                norm_cfg=out_norm_cfg,
                order=out_conv_order,
            )
        self.input1_conv = self._input_conv(
            with_input1_conv, out_channels, input_conv_cfg, input_norm_cfg
        )
        self.input2_conv = self._input_conv(
            with_input2_conv, out_channels, input_conv_cfg, input_norm_cfg
        )

    @staticmethod
    def _input_conv(
        wanted: bool, channels: int, conv_cfg: Cfg | None, norm_cfg: Cfg | None
    ) -> nn.Module:
        if not wanted:
            return nn.Sequential()  # the identity, as in mmcv (no state_dict entries)
        return ConvModule(
            channels, channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=True
        )

    @abstractmethod
    def _binary_op(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Combine two maps of the same size."""

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, out_size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Merge ``x1 [B, C, h1, w1]`` and ``x2 [B, C, h2, w2]`` at ``out_size`` (default: the
        lexicographically larger of the two sizes)."""
        if x1.shape[:2] != x2.shape[:2]:
            raise ValueError(
                f"{type(self).__name__}: inputs differ in batch or channels: "
                f"{tuple(x1.shape)} vs {tuple(x2.shape)}"
            )
        if out_size is None:
            out_size = max(tuple(x1.shape[2:]), tuple(x2.shape[2:]))
        elif len(out_size) != 2:
            raise ValueError(f"{type(self).__name__}: out_size must be (h, w), got {out_size!r}")
        x1 = resize_to(self.input1_conv(x1), out_size, self.upsample_mode)
        x2 = resize_to(self.input2_conv(x2), out_size, self.upsample_mode)
        x = self._binary_op(x1, x2)
        if self.with_out_conv:
            x = self.out_conv(x)
        return x


class SumCell(BaseMergeCell):
    """``x1 + x2``.

    Example:
        >>> cell = SumCell(4, 4, with_out_conv=False)
        >>> cell(torch.ones(1, 4, 2, 2), torch.ones(1, 4, 4, 4)).shape
        torch.Size([1, 4, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__(in_channels, out_channels, **kwargs)

    def _binary_op(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return x1 + x2


class ConcatCell(BaseMergeCell):
    """``cat([x1, x2], dim=1)``; ``out_conv`` takes ``2 * in_channels``."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__(in_channels * 2, out_channels, **kwargs)

    def _binary_op(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return torch.cat([x1, x2], dim=1)


class GlobalPoolingCell(BaseMergeCell):
    """``x2 + sigmoid(global_avg_pool(x2)) * x1``: ``x2``'s channel attention gates ``x1``.

    ``in_channels``/``out_channels`` may be ``None`` only with ``with_out_conv=False``.
    """

    def __init__(
        self, in_channels: int | None = None, out_channels: int | None = None, **kwargs: Any
    ) -> None:
        if kwargs.get("with_out_conv", True) and (in_channels is None or out_channels is None):
            raise ValueError("GlobalPoolingCell: an out_conv needs in_channels and out_channels")
        super().__init__(in_channels or 0, out_channels or 0, **kwargs)
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))

    def _binary_op(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return x2 + self.global_pool(x2).sigmoid() * x1
