"""``NonLocal2d``: the non-local block of Wang et al. (mmcv 1.x ``cnn.NonLocal2d``, same keys).

For an input ``x [N, C, H, W]`` with ``C' = max(C // reduction, 1)`` inner channels::

    g, theta, phi = 1x1 convs of x to C' channels, flattened to [N, C', HW]
    weight        = pairwise(theta, phi)                 # [N, HW, HW']
    out           = x + conv_out(weight @ g^T)           # conv_out: C' -> C (+ norm)

``pairwise`` is one of ``embedded_gaussian`` (softmax of ``theta^T phi``, divided by
``sqrt(C')`` first when ``use_scale``), ``gaussian`` (softmax of ``x^T x``, no theta/phi convs),
``dot_product`` (``theta^T phi / HW'``) and ``concatenation`` (a 1x1 conv + ReLU over every
``[theta_i; phi_j]`` pair, divided by ``HW'``). ``sub_sample`` max-pools ``g`` and ``phi`` by 2.
``conv_out`` starts at zero (its norm's weight, with a norm), so a new block is the identity.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.weight_init import constant_init, normal_init
from detforge.registry import MODELS, Cfg

__all__ = ["NonLocal2d"]

_MODES = ("gaussian", "embedded_gaussian", "dot_product", "concatenation")


@MODELS.register_module()
class NonLocal2d(nn.Module):
    """2D non-local block (see the module docstring for the maths).

    Args:
        in_channels: Channels of the input (and output).
        sub_sample: Max-pool ``g`` and ``phi`` by 2 (keys become ``g.0.conv``, ``phi.0.conv``).
        reduction: Inner channels are ``max(in_channels // reduction, 1)``.
        use_scale: Divide the ``embedded_gaussian`` logits by ``sqrt(inner channels)``.
        conv_cfg: Conv config of the 1x1 convs (``None``: ``nn.Conv2d``).
        norm_cfg: Norm config of ``conv_out`` only.
        mode: ``'embedded_gaussian'``, ``'gaussian'``, ``'dot_product'`` or
            ``'concatenation'``.
        std: Std of the normal init of the ``g``/``theta``/``phi`` convs.
        zeros_init: Start ``conv_out`` (or its norm) at zero instead of Normal(``std``).

    Example:
        >>> block = NonLocal2d(8, reduction=1, use_scale=False)
        >>> x = torch.randn(1, 8, 4, 5)
        >>> torch.equal(block(x), x)  # conv_out starts at zero
        True
    """

    def __init__(
        self,
        in_channels: int,
        sub_sample: bool = False,
        reduction: int = 2,
        use_scale: bool = True,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
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
        inner = self.inter_channels

        def conv1x1(cin: int, cout: int, norm: Cfg | None = None) -> ConvModule:
            return ConvModule(cin, cout, 1, conv_cfg=conv_cfg, norm_cfg=norm, act_cfg=None)

        self.g: nn.Module = conv1x1(in_channels, inner)
        self.conv_out = conv1x1(inner, in_channels, norm_cfg)
        self.phi: nn.Module
        if mode != "gaussian":
            self.theta = conv1x1(in_channels, inner)
            self.phi = conv1x1(in_channels, inner)
        if mode == "concatenation":
            self.concat_project = ConvModule(inner * 2, 1, 1, bias=False)
        self.init_weights(std=std, zeros_init=zeros_init)
        if sub_sample:
            pool = nn.MaxPool2d(kernel_size=(2, 2))
            self.g = nn.Sequential(self.g, pool)
            self.phi = nn.Sequential(self.phi, pool) if mode != "gaussian" else pool

    def init_weights(self, std: float = 0.01, zeros_init: bool = True) -> None:
        """Normal(``std``) for the embedding convs; ``conv_out`` (or its norm) zero."""
        embeddings = [self.g, self.theta, self.phi] if self.mode != "gaussian" else [self.g]
        for module in embeddings:
            conv_module = module[0] if isinstance(module, nn.Sequential) else module
            normal_init(cast(ConvModule, conv_module).conv, std=std)
        target = self.conv_out.norm if self.conv_out.norm is not None else self.conv_out.conv
        if zeros_init:
            constant_init(target, 0)
        else:
            normal_init(target, std=std)

    def _pairwise(self, theta_x: torch.Tensor, phi_x: torch.Tensor) -> torch.Tensor:
        if self.mode == "concatenation":
            h, w = theta_x.size(2), phi_x.size(3)
            pairs = torch.cat([theta_x.repeat(1, 1, 1, w), phi_x.repeat(1, 1, h, 1)], dim=1)
            weight = self.concat_project(pairs).squeeze(1)
            return weight / weight.shape[-1]
        weight = torch.matmul(theta_x, phi_x)
        if self.mode == "dot_product":
            return weight / weight.shape[-1]
        if self.mode == "embedded_gaussian" and self.use_scale:
            weight = weight / theta_x.shape[-1] ** 0.5
        return weight.softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + conv_out(attention(x))``, same shape as ``x``."""
        n = x.size(0)
        inner = self.inter_channels
        g_x = self.g(x).reshape(n, inner, -1).permute(0, 2, 1)
        phi_x: Any
        if self.mode == "gaussian":
            theta_x = x.reshape(n, self.in_channels, -1).permute(0, 2, 1)
            source = self.phi(x) if self.sub_sample else x
            phi_x = source.reshape(n, self.in_channels, -1)
        elif self.mode == "concatenation":
            theta_x = self.theta(x).reshape(n, inner, -1, 1)
            phi_x = self.phi(x).reshape(n, inner, 1, -1)
        else:
            theta_x = self.theta(x).reshape(n, inner, -1).permute(0, 2, 1)
            phi_x = self.phi(x).reshape(n, inner, -1)
        y = torch.matmul(self._pairwise(theta_x, phi_x), g_x)
        y = y.permute(0, 2, 1).reshape(n, inner, *x.shape[2:])
        return x + self.conv_out(y)
