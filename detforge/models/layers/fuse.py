"""Fold batch normalisation into the convolution before it, for faster inference.

An eval-mode BN computes ``y = (x - mean) / sqrt(var + eps) * gamma + beta``: after a conv
``x = W * i + b`` this is the conv with ``W' = W * s`` and ``b' = (b - mean) * s + beta``,
``s = gamma / sqrt(var + eps)`` per output channel (computed by PyTorch's
``torch.nn.utils.fusion.fuse_conv_bn_weights``). :func:`fuse_conv_bn` rewrites every such
pair it can *prove* to be adjacent and replaces the BN with ``nn.Identity`` (so state-dict
names of everything else stay put). A pair is adjacent when it is

- a :class:`~detforge.models.layers.ConvModule` whose ``order`` puts the norm directly after
  the conv (an activation in between, as in ``('conv', 'act', 'norm')``, blocks fusion unless
  the module has no activation);
- two neighbours of an ``nn.Sequential`` (the downsample branch of a ResNet block, a deep stem);
- named siblings ``conv<k>`` and ``bn<k>`` / ``norm<k>`` of any other module (ResNet's
  ``conv1``/``bn1`` stem, the ``conv1..3``/``bn1..3`` of its blocks), where ``<k>`` may be
  empty.

Only plain (not transposed) convolutions are fused; deformable convolutions, spectral-normed
convs and BNs without running statistics are left as they are. The fused model computes what
the model in ``eval()`` mode computed; do not train it afterwards.
"""

from __future__ import annotations

import itertools
import re

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils.fusion import fuse_conv_bn_weights

from detforge.models.layers.conv_module import ConvModule

__all__ = ["fuse_conv_bn", "fuse_conv_bn_pair"]

_NORM_NAME = re.compile(r"^(?:bn|norm)(\d*)$")


def _fusable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        isinstance(conv, _ConvNd)
        and not conv.transposed
        and not hasattr(conv, "weight_orig")  # spectral norm recomputes the weight
        and isinstance(bn, _BatchNorm)
        and bn.running_mean is not None
        and bn.running_var is not None
        and bn.num_features == conv.out_channels
    )


@torch.no_grad()
def fuse_conv_bn_pair(conv: nn.Module, bn: nn.Module) -> nn.Module:
    """Fold ``bn``'s eval-mode transform into ``conv`` in place; return ``conv``.

    Raises:
        ValueError: the two cannot be fused (not a plain conv and a BN with running stats of
            ``conv.out_channels`` features).

    Example:
        >>> conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4).eval()
        >>> x = torch.randn(1, 3, 8, 8)
        >>> want = bn(conv(x))
        >>> torch.allclose(fuse_conv_bn_pair(conv, bn)(x), want, atol=1e-6)
        True
    """
    if not _fusable(conv, bn):
        raise ValueError(
            f"cannot fuse {type(conv).__name__} into {type(bn).__name__}: need a plain "
            "convolution followed by a BatchNorm with running statistics of its out_channels"
        )
    assert isinstance(conv, _ConvNd) and isinstance(bn, _BatchNorm)
    assert bn.running_mean is not None and bn.running_var is not None
    requires_grad = conv.weight.requires_grad
    weight, bias = fuse_conv_bn_weights(
        conv.weight,
        conv.bias,
        bn.running_mean.to(conv.weight.dtype),
        bn.running_var.to(conv.weight.dtype),
        bn.eps,
        bn.weight,
        bn.bias,
    )
    conv.weight = nn.Parameter(weight.detach(), requires_grad=requires_grad)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=requires_grad)
    return conv


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """``(conv_name, bn_name)`` children of ``module`` that are adjacent in its forward."""
    children = dict(module.named_children())
    if isinstance(module, ConvModule):
        order = [layer for layer in module.order if layer != "act" or module.with_activation]
        if module.norm_name and order.index("norm") == order.index("conv") + 1:
            return [("conv", module.norm_name)]
        return []
    if isinstance(module, nn.Sequential):
        names = list(children)
        return list(itertools.pairwise(names))
    pairs = []
    for name in children:
        match = _NORM_NAME.match(name)
        if match and f"conv{match.group(1)}" in children:
            pairs.append((f"conv{match.group(1)}", name))
    return pairs


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BN that directly follows a conv into it (recursively).

    Returns ``module`` itself, changed in place. See the module docstring for which pairs are
    fused.

    Example:
        >>> block = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
        >>> x = torch.randn(2, 3, 16, 16)
        >>> want = block(x)
        >>> fused = fuse_conv_bn(block)
        >>> type(fused[1]).__name__, torch.allclose(fused(x), want, atol=1e-5)
        ('Identity', True)
    """
    for conv_name, bn_name in _pairs(module):
        conv, bn = getattr(module, conv_name), getattr(module, bn_name)
        if _fusable(conv, bn):
            fuse_conv_bn_pair(conv, bn)
            setattr(module, bn_name, nn.Identity())
    for child in module.children():
        fuse_conv_bn(child)
    return module
