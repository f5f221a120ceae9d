"""``NonLocal2d``: the non-local block of "Non-local Neural Networks" (mmcv's ``NonLocal2d``).

``y = softmax_or_scaled(f(theta(x), phi(x))) @ g(x)`` over all positions, then
``x + conv_out(y)``. ``theta``, ``phi``, ``g`` are 1x1 :class:`ConvModule` s to
``inter_channels = max(in_channels // reduction, 1)`` channels; ``conv_out`` maps back (with
``norm_cfg``). ``mode``: ``'embedded_gaussian'`` (softmax of dot products, divided by
``sqrt(inter_channels)`` with ``use_scale``), ``'gaussian'`` (softmax on the raw input, no
``theta``/``phi`` convs), ``'dot_product'`` (dot products / number of positions),
``'concatenation'`` (a ReLU ``concat_project`` conv on concatenated pairs / number of
positions). ``sub_sample`` max-pools ``g`` and ``phi`` by 2 (keys ``g.0.conv.*``).

Initialisation (mmcv's :meth:`NonLocal2d.init_weights`): ``N(0, std²)`` for the ``g``,
``theta``, ``phi`` convs and zero for ``conv_out`` (its norm, with ``norm_cfg``), so the block
starts as the identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.plugin import PLUGIN_LAYERS
from detforge.models.layers.weight_init import constant_init, normal_init

__all__ = ["NonLocal2d"]

_MODES = ("gaussian", "embedded_gaussian", "dot_product", "concatenation")
_CONV2D = MappingProxyType({"type": "Conv2d"})


def _conv(module: ConvModule) -> nn.Module:
    """The conv of a ``ConvModule``."""
    conv: nn.Module = module.conv
    return conv


@PLUGIN_LAYERS.register_module()
class NonLocal2d(nn.Module):
    """2D non-local block (see the module docstring).

    Args:
        in_channels: Channels of the feature map.
        sub_sample: Max-pool ``g`` and ``phi`` by 2.
        conv_cfg: Conv config of the 1x1 convs.
        reduction: ``inter_channels = max(in_channels // reduction, 1)``.
        use_scale: Divide embedded-gaussian energies by ``sqrt(inter_channels)``.
        norm_cfg: Norm of ``conv_out``.
        mode: ``'embedded_gaussian'``, ``'gaussian'``, ``'dot_product'`` or
            ``'concatenation'``.
        std: Standard deviation of the initial conv weights.
        zeros_init: Start ``conv_out`` (or its norm) at zero.

    Example:
        >>> block = NonLocal2d(8)
        >>> x = torch.rand(1, 8, 4, 4)
        >>> torch.equal(block(x), x)
        True
    """

    _abbr_ = "nonlocal_block"

    def __init__(
        self,
        in_channels: int,
        sub_sample: bool = False,
        conv_cfg: Mapping[str, Any] | None = _CONV2D,
        reduction: int = 2,
        use_scale: bool = True,
        norm_cfg: Mapping[str, Any] | None = None,
        mode: str = "embedded_gaussian",
        std: float = 0.01,
        zeros_init: bool = True,
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"NonLocal2d: mode must be one of {_MODES}, got {mode!r}")
        self.in_channels = in_channels
        self.reduction = reduction
        self.use_scale = use_scale
        self.inter_channels = max(in_channels // reduction, 1)
        self.mode = mode
        self.sub_sample = sub_sample
        inter = self.inter_channels

        def conv1x1(cin: int, cout: int, norm: Mapping[str, Any] | None = None) -> ConvModule:
            return ConvModule(cin, cout, 1, conv_cfg=conv_cfg, norm_cfg=norm, act_cfg=None)

        g_conv = conv1x1(in_channels, inter)
        # registered first (reassigned below with sub_sample), so the keys are in mmcv's order
        self.g: nn.Module = g_conv
        self.conv_out = conv1x1(inter, in_channels, norm_cfg)
        embeddings = [g_conv]
        phi_conv: ConvModule | None = None
        if mode != "gaussian":
            self.theta = conv1x1(in_channels, inter)
            phi_conv = conv1x1(in_channels, inter)
            embeddings += [self.theta, phi_conv]
        if mode == "concatenation":
            self.concat_project = ConvModule(
                inter * 2, 1, kernel_size=1, bias=False, act_cfg={"type": "ReLU"}
            )
        pool = nn.MaxPool2d(kernel_size=(2, 2))
        if sub_sample:
            self.g = nn.Sequential(g_conv, pool)
        self.phi: nn.Module | None = phi_conv
        if sub_sample:
            self.phi = pool if phi_conv is None else nn.Sequential(phi_conv, pool)
        # plain references (the modules are registered above): the convs init_weights draws
        self._embedding_convs = [_conv(m) for m in embeddings]
        self.init_weights(std=std, zeros_init=zeros_init)

    def init_weights(self, std: float = 0.01, zeros_init: bool = True) -> None:
        """``N(0, std²)`` for the embedding convs; ``conv_out`` (or its norm) zero or normal."""
        for conv in self._embedding_convs:
            normal_init(conv, std=std)
        norm = self.conv_out.norm if self.conv_out.norm_cfg is not None else None
        target = self.conv_out.conv if norm is None else norm
        if zeros_init:
            constant_init(target, 0)
        else:
            normal_init(target, std=std)

    def _pairwise(self, theta_x: torch.Tensor, phi_x: torch.Tensor) -> torch.Tensor:
        if self.mode == "concatenation":
            h, w = theta_x.size(2), phi_x.size(3)
            pairs = torch.cat([theta_x.repeat(1, 1, 1, w), phi_x.repeat(1, 1, h, 1)], dim=1)
            weight = self.concat_project(pairs)
            n, _, h, w = weight.shape
            return weight.view(n, h, w) / w
        weight = torch.matmul(theta_x, phi_x)
        if self.mode == "dot_product":
            return weight / weight.shape[-1]
        if self.mode == "embedded_gaussian" and self.use_scale:
            weight = weight / theta_x.shape[-1] ** 0.5
        return weight.softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + conv_out(non-local(x))`` for ``x [B, C, H, W]``."""
        n = x.size(0)
        g_x = self.g(x).view(n, self.inter_channels, -1).permute(0, 2, 1)
        if self.phi is None or self.mode == "gaussian":
            theta_x = x.view(n, self.in_channels, -1).permute(0, 2, 1)
            source = x if self.phi is None else self.phi(x)
            phi_x = source.view(n, self.in_channels, -1)
        elif self.mode == "concatenation":
            theta_x = self.theta(x).view(n, self.inter_channels, -1, 1)
            phi_x = self.phi(x).view(n, self.inter_channels, 1, -1)
        else:
            theta_x = self.theta(x).view(n, self.inter_channels, -1).permute(0, 2, 1)
            phi_x = self.phi(x).view(n, self.inter_channels, -1)
        y = torch.matmul(self._pairwise(theta_x, phi_x), g_x)
        y = y.permute(0, 2, 1).contiguous().reshape(n, self.inter_channels, *x.shape[2:])
        out: torch.Tensor = x + self.conv_out(y)
        return out
