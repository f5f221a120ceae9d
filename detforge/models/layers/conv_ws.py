"""Weight-standardised convolutions: ``ConvWS`` and ``ConvAWS`` (mmcv's ``conv_ws``).

``ConvWS`` (:class:`ConvWS2d`, the ``gn+ws`` configs) convolves with each output filter
standardised to zero mean and unit standard deviation: ``(w - mean) / (std + eps)`` with the
unbiased ``std`` over the filter's ``C_in / groups · kh · kw`` values.

``ConvAWS`` (:class:`ConvAWS2d`, DetectoRS) standardises with ``sqrt(var + 1e-5)`` (unbiased
``var``) and then rescales by the buffers ``weight_gamma`` and ``weight_beta``
(``[C_out, 1, 1, 1]``, 1 and 0 at first). When a checkpoint without those buffers is loaded
(an ImageNet ResNet), they are set to the loaded filters' ``std`` and ``mean``, so the layer
starts out computing the same convolution as the plain checkpoint; the two keys are then not
reported missing.

Parameter and buffer names are mmcv's: ``weight``, ``bias`` (+ ``weight_gamma``,
``weight_beta``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers.conv import CONV_LAYERS

__all__ = ["ConvAWS2d", "ConvWS2d", "conv_ws_2d"]

_IntOrPair = int | tuple[int, int]
_IntOrTuple = int | tuple[int, ...]


def conv_ws_2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: _IntOrTuple = 1,
    padding: _IntOrTuple | str = 0,
    dilation: _IntOrTuple = 1,
    groups: int = 1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``conv2d`` with each filter of ``weight`` standardised: ``(w - mean) / (std + eps)``.

    Example:
        >>> w = torch.tensor([[[[1., 3.]]]])
        >>> conv_ws_2d(torch.ones(1, 1, 1, 2), w).item()  # filter -> [-0.7071, 0.7071]
        0.0
    """
    flat = weight.view(weight.size(0), -1)
    mean = flat.mean(dim=1).view(-1, 1, 1, 1)
    std = flat.std(dim=1).view(-1, 1, 1, 1)
    return F.conv2d(input, (weight - mean) / (std + eps), bias, stride, padding, dilation, groups)


def _aws_stats(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-filter ``(mean, sqrt(var + 1e-5))`` of ``weight``, each ``[C_out, 1, 1, 1]``."""
    flat = weight.view(weight.size(0), -1)
    mean = flat.mean(dim=1).view(-1, 1, 1, 1)
    std = torch.sqrt(flat.var(dim=1) + 1e-5).view(-1, 1, 1, 1)
    return mean, std


@CONV_LAYERS.register_module(name="ConvWS")
class ConvWS2d(nn.Conv2d):
    """``nn.Conv2d`` with weight standardisation (``ConvWS``).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel size.
        stride: Stride.
        padding: Zero padding.
        dilation: Dilation.
        groups: Groups.
        bias: Learnable bias.
        eps: Added to the filters' standard deviation.

    Example:
        >>> conv = ConvWS2d(3, 4, 3, padding=1)
        >>> conv(torch.rand(1, 3, 5, 5)).shape
        torch.Size([1, 4, 5, 5])
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
        bias: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_ws_2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.eps,
        )


@CONV_LAYERS.register_module(name="ConvAWS")
class ConvAWS2d(nn.Conv2d):
    """``nn.Conv2d`` with adaptive weight standardisation (``ConvAWS``, DetectoRS).

    The effective filter is ``weight_gamma * (w - mean) / sqrt(var + 1e-5) + weight_beta``
    (see the module docstring for how the buffers are filled from plain checkpoints).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel size.
        stride: Stride.
        padding: Zero padding.
        dilation: Dilation.
        groups: Groups.
        bias: Learnable bias.

    Example:
        >>> plain = nn.Conv2d(2, 4, 3, bias=False)
        >>> aws = ConvAWS2d(2, 4, 3, bias=False)
        >>> aws.load_state_dict(plain.state_dict())  # gamma/beta come from the filters
        <All keys matched successfully>
        >>> x = torch.rand(1, 2, 5, 5)
        >>> torch.allclose(aws(x), plain(x), atol=1e-5)
        True
    """

    weight_gamma: torch.Tensor
    weight_beta: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrPair,
        stride: _IntOrPair = 1,
        padding: _IntOrPair = 0,
        dilation: _IntOrPair = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.register_buffer("weight_gamma", torch.ones(self.out_channels, 1, 1, 1))
        self.register_buffer("weight_beta", torch.zeros(self.out_channels, 1, 1, 1))

    def _get_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """The standardised, rescaled filter bank used by :meth:`forward`."""
        mean, std = _aws_stats(weight)
        return self.weight_gamma * ((weight - mean) / std) + self.weight_beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x,
            self._get_weight(self.weight),
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )

    def _load_from_state_dict(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # A negative gamma marks "not in the checkpoint": no real checkpoint stores one.
        self.weight_gamma.data.fill_(-1)
        local_missing: list[str] = []
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, local_missing, unexpected_keys, error_msgs
        )
        if self.weight_gamma.data.mean() <= 0:
            mean, std = _aws_stats(self.weight.data)
            self.weight_beta.data.copy_(mean)
            self.weight_gamma.data.copy_(std)
            local_missing = [
                k for k in local_missing if not k.endswith(("weight_gamma", "weight_beta"))
            ]
        missing_keys.extend(local_missing)
