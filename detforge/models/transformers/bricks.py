"""The transformer layers of MMDetection v2's DETR family (mmcv 1.x ``bricks.transformer``).

Key layouts are mmcv's, so v2.28 checkpoints load unchanged:

* :class:`MultiheadAttention`: ``attn.in_proj_weight``, ``attn.in_proj_bias``,
  ``attn.out_proj.*`` (a ``torch.nn.MultiheadAttention`` inside);
* :class:`FFN`: ``layers.0.0`` (first Linear), ``layers.1`` (last Linear) for two fcs;
* :class:`BaseTransformerLayer`: ``attentions.i``, ``ffns.i``, ``norms.i`` numbered in
  ``operation_order`` (e.g. ``('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')``);
* :class:`TransformerLayerSequence` and its DETR encoder/decoder: ``layers.i`` (and the
  decoder's ``post_norm``).

Tokens are sequence-first ``[L, B, C]`` unless ``batch_first``, as in mmcv 1.x. An attention
module adds ``query_pos`` to the query and ``key_pos`` to the key (not to the value); without a
``key_pos`` it reuses ``query_pos`` when the shapes agree (self-attention).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import ConfigKeyError, ConfigValueError
from detforge.models.layers import build_activation_layer, build_norm_layer
from detforge.registry import MODELS, Cfg, build_module

__all__ = [
    "FFN",
    "BaseTransformerLayer",
    "DetrTransformerDecoder",
    "DetrTransformerDecoderLayer",
    "DetrTransformerEncoder",
    "MultiheadAttention",
    "TransformerLayerSequence",
    "inverse_sigmoid",
]

_RELU: Cfg = MappingProxyType({"type": "ReLU", "inplace": True})
_LN: Cfg = MappingProxyType({"type": "LN"})
#: mmcv's default FFN, less its ``embed_dims=256``: the FFN follows the attention's width
_FFN: Cfg = MappingProxyType(
    {"type": "FFN", "feedforward_channels": 1024, "num_fcs": 2, "ffn_drop": 0.0}
)
_OPERATIONS = frozenset({"self_attn", "cross_attn", "norm", "ffn"})


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``log(x / (1 - x))`` with ``x`` clamped to ``[0, 1]`` and both terms to ``>= eps`` (v2).

    Example:
        >>> inverse_sigmoid(torch.tensor([0.5, 0.0])).tolist()[0]
        0.0
    """
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


@MODELS.register_module()
class FFN(nn.Module):
    """mmcv's feed-forward block: ``num_fcs`` Linear layers, activation and dropout between.

    ``out = identity + layers(x)`` (``identity`` defaults to ``x``) when ``add_identity``,
    else ``layers(x)``.

    Args:
        embed_dims: Input and output channels.
        feedforward_channels: Hidden channels.
        num_fcs: Linear layers (at least 2).
        act_cfg: Activation after each hidden Linear.
        ffn_drop: Dropout probability after each Linear.
        add_identity: Add the shortcut.

    Example:
        >>> list(FFN(embed_dims=4, feedforward_channels=8).state_dict())
        ['layers.0.0.weight', 'layers.0.0.bias', 'layers.1.weight', 'layers.1.bias']
    """

    def __init__(
        self,
        embed_dims: int = 256,
        feedforward_channels: int = 1024,
        num_fcs: int = 2,
        act_cfg: Cfg = _RELU,
        ffn_drop: float = 0.0,
        add_identity: bool = True,
    ) -> None:
        super().__init__()
        if num_fcs < 2:
            raise ConfigValueError(f"FFN: num_fcs must be at least 2, got {num_fcs}")
        self.embed_dims = embed_dims
        self.feedforward_channels = feedforward_channels
        layers: list[nn.Module] = []
        in_channels = embed_dims
        for _ in range(num_fcs - 1):
            layers.append(
                nn.Sequential(
                    nn.Linear(in_channels, feedforward_channels),
                    build_activation_layer(act_cfg),
                    nn.Dropout(ffn_drop),
                )
            )
            in_channels = feedforward_channels
        layers += [nn.Linear(feedforward_channels, embed_dims), nn.Dropout(ffn_drop)]
        self.layers = nn.Sequential(*layers)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor, identity: torch.Tensor | None = None) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        if not self.add_identity:
            return out
        return (x if identity is None else identity) + out


@MODELS.register_module()
class MultiheadAttention(nn.Module):
    """mmcv 1.x's wrapper of ``torch.nn.MultiheadAttention`` (``attn``) with a residual.

    ``out = identity + dropout(attn(query + query_pos, key + key_pos, value))``; ``key``
    defaults to ``query``, ``value`` to ``key``, ``identity`` to ``query`` and ``key_pos`` to
    ``query_pos`` when their shapes agree.

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        attn_drop: Dropout on the attention weights.
        proj_drop: Dropout after the output projection.
        dropout: v2 configs' shorthand: sets ``attn_drop`` and the dropout before the residual.
        batch_first: Tokens are ``[B, L, C]`` (else ``[L, B, C]``).
        bias: Bias of the input/output projections.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        dropout: float | None = None,
        batch_first: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if dropout is not None:
            attn_drop = dropout
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.batch_first = batch_first
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=attn_drop, bias=bias)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dropout_layer = nn.Dropout(0.0 if dropout is None else dropout)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        identity: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """See the class docstring; ``kwargs`` (deformable attention's) are ignored, as in mmcv."""
        key = query if key is None else key
        value = key if value is None else value
        identity = query if identity is None else identity
        if key_pos is None and query_pos is not None and query_pos.shape == key.shape:
            key_pos = query_pos
        if query_pos is not None:
            query = query + query_pos
        if key_pos is not None:
            key = key + key_pos
        if self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out = self.attn(
            query=query,
            key=key,
            value=value,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
        )[0]
        if self.batch_first:
            out = out.transpose(0, 1)
        return identity + self.dropout_layer(self.proj_drop(out))


def _as_list(cfgs: Cfg | Sequence[Cfg], count: int, what: str) -> list[dict[str, Any]]:
    """A dict repeated ``count`` times, or a list of ``count`` dicts (copies either way)."""
    if isinstance(cfgs, Mapping):
        return [dict(copy.deepcopy(dict(cfgs))) for _ in range(count)]
    out = [dict(copy.deepcopy(dict(cfg))) for cfg in cfgs]
    if len(out) != count:
        raise ConfigValueError(f"{what}: {len(out)} configs for {count} operations")
    return out


@MODELS.register_module()
class BaseTransformerLayer(nn.Module):
    """mmcv's generic transformer layer: attentions, FFNs and norms run in ``operation_order``.

    Post-norm (``operation_order[0] != 'norm'``): each attention and FFN adds its own input as
    the residual. Pre-norm: they add the input of the preceding norm.

    Args:
        attn_cfgs: One attention config (repeated) or one per attention in the order.
        ffn_cfgs: FFN config (``embed_dims`` defaults to the attention's).
        operation_order: A sequence of ``'self_attn'``, ``'cross_attn'``, ``'norm'``, ``'ffn'``.
        norm_cfg: Norm layer config.
        batch_first: Tokens are ``[B, L, C]``; passed to attentions that do not set it.
        feedforward_channels: v2 shorthand for ``ffn_cfgs['feedforward_channels']``.
        ffn_dropout: v2 shorthand for ``ffn_cfgs['ffn_drop']``.
        ffn_num_fcs: v2 shorthand for ``ffn_cfgs['num_fcs']``.
        act_cfg: FFN activation (v2's ``DetrTransformerDecoderLayer`` argument).
        init_cfg: Unused beyond PyTorch's defaults (the transformer initialises the weights).

    Raises:
        ConfigValueError: An unknown operation, or attention configs that do not match the order.
    """

    def __init__(
        self,
        attn_cfgs: Cfg | Sequence[Cfg],
        operation_order: Sequence[str],
        ffn_cfgs: Cfg = _FFN,
        norm_cfg: Cfg = _LN,
        batch_first: bool = False,
        feedforward_channels: int | None = None,
        ffn_dropout: float | None = None,
        ffn_num_fcs: int | None = None,
        act_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        unknown = set(operation_order) - _OPERATIONS
        if unknown:
            raise ConfigValueError(
                f"{type(self).__name__}: unknown operations {sorted(unknown)} in operation_order"
            )
        self.operation_order = tuple(operation_order)
        self.batch_first = batch_first
        self.pre_norm = self.operation_order[0] == "norm"
        num_attn = sum(op in ("self_attn", "cross_attn") for op in self.operation_order)
        self.num_attn = num_attn
        self.attentions = nn.ModuleList()
        for cfg in _as_list(attn_cfgs, num_attn, f"{type(self).__name__}.attn_cfgs"):
            if cfg.setdefault("batch_first", batch_first) != batch_first:
                raise ConfigValueError(
                    f"{type(self).__name__}: attention batch_first={cfg['batch_first']} "
                    f"differs from the layer's {batch_first}"
                )
            self.attentions.append(build_module(cfg, MODELS))
        first: Any = self.attentions[0]
        self.embed_dims = int(first.embed_dims)
        ffn = dict(ffn_cfgs)
        for name, value in (
            ("feedforward_channels", feedforward_channels),
            ("ffn_drop", ffn_dropout),
            ("num_fcs", ffn_num_fcs),
            ("act_cfg", act_cfg),
        ):
            if value is not None:
                ffn[name] = value
        ffn.setdefault("type", "FFN")
        if ffn.setdefault("embed_dims", self.embed_dims) != self.embed_dims:
            raise ConfigValueError(
                f"{type(self).__name__}: ffn embed_dims={ffn['embed_dims']} differs from the "
                f"attention's {self.embed_dims}"
            )
        num_ffns = self.operation_order.count("ffn")
        self.ffns = nn.ModuleList(build_module(dict(ffn), MODELS) for _ in range(num_ffns))
        self.norms = nn.ModuleList(
            build_norm_layer(norm_cfg, self.embed_dims)[1]
            for _ in range(self.operation_order.count("norm"))
        )

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
        attn_masks: Sequence[torch.Tensor | None] | None = None,
        query_key_padding_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Run the operations; ``kwargs`` go to every attention (deformable attention's extras)."""
        masks = list(attn_masks) if attn_masks is not None else [None] * self.num_attn
        norm_index = attn_index = ffn_index = 0
        identity = query
        for op in self.operation_order:
            if op == "norm":
                query = self.norms[norm_index](query)
                norm_index += 1
            elif op == "ffn":
                query = self.ffns[ffn_index](query, identity if self.pre_norm else None)
                ffn_index += 1
            else:
                self_attn = op == "self_attn"
                query = self.attentions[attn_index](
                    query,
                    query if self_attn else key,
                    query if self_attn else value,
                    identity if self.pre_norm else None,
                    query_pos=query_pos,
                    key_pos=query_pos if self_attn else key_pos,
                    attn_mask=masks[attn_index],
                    key_padding_mask=query_key_padding_mask if self_attn else key_padding_mask,
                    **kwargs,
                )
                attn_index += 1
                identity = query
        return query


@MODELS.register_module()
class DetrTransformerDecoderLayer(BaseTransformerLayer):
    """v2's DETR decoder layer: a :class:`BaseTransformerLayer` with ReLU FFNs whose order has
    one self-attention, one cross-attention, one FFN and three norms.

    Raises:
        ConfigValueError: ``operation_order`` is not six operations of those kinds.
    """

    def __init__(self, *, act_cfg: Cfg = _RELU, **kwargs: Any) -> None:
        order = tuple(kwargs.get("operation_order", ()))
        if len(order) != 6 or set(order) != _OPERATIONS:
            raise ConfigValueError(
                f"DetrTransformerDecoderLayer: operation_order {order} must have 6 operations "
                "with self_attn, cross_attn, norm and ffn"
            )
        super().__init__(act_cfg=act_cfg, **kwargs)


@MODELS.register_module()
class TransformerLayerSequence(nn.Module):
    """``num_layers`` transformer layers (``layers.i``) run one after another.

    Args:
        transformerlayers: One layer config (repeated) or one per layer.
        num_layers: Number of layers.
        init_cfg: Unused (the transformer initialises the weights).
    """

    def __init__(
        self,
        transformerlayers: Cfg | Sequence[Cfg],
        num_layers: int,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        cfgs = _as_list(transformerlayers, num_layers, f"{type(self).__name__}.transformerlayers")
        if not cfgs:
            raise ConfigValueError(f"{type(self).__name__}: num_layers must be positive")
        self.num_layers = num_layers
        self.layers = nn.ModuleList(build_module(cfg, MODELS) for cfg in cfgs)
        first: Any = self.layers[0]
        self.embed_dims = int(first.embed_dims)
        self.pre_norm = bool(first.pre_norm)

    def forward(self, query: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        for layer in self.layers:
            query = layer(query, *args, **kwargs)
        return query


@MODELS.register_module()
class DetrTransformerEncoder(TransformerLayerSequence):
    """DETR's encoder; a final ``post_norm`` only for pre-norm layers (v2).

    Args:
        post_norm_cfg: Norm after the last layer (pre-norm layers only).

    Raises:
        ConfigKeyError: Pre-norm layers without ``post_norm_cfg``.
    """

    def __init__(self, *, post_norm_cfg: Cfg | None = _LN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.post_norm: nn.Module | None = None
        if self.pre_norm:
            if post_norm_cfg is None:
                raise ConfigKeyError("DetrTransformerEncoder: pre-norm layers need a post_norm_cfg")
            self.post_norm = build_norm_layer(post_norm_cfg, self.embed_dims)[1]

    def forward(self, query: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        x = super().forward(query, *args, **kwargs)
        return x if self.post_norm is None else self.post_norm(x)


@MODELS.register_module()
class DetrTransformerDecoder(TransformerLayerSequence):
    """DETR's decoder: every layer's output through ``post_norm``, stacked.

    Args:
        post_norm_cfg: Norm applied to the outputs (``None``: none).
        return_intermediate: Return every layer's output ``[num_layers, L, B, C]`` (else
            ``[1, L, B, C]`` of the last layer).
    """

    def __init__(
        self,
        *,
        post_norm_cfg: Cfg | None = _LN,
        return_intermediate: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.return_intermediate = return_intermediate
        self.post_norm: nn.Module | None = (
            None if post_norm_cfg is None else build_norm_layer(post_norm_cfg, self.embed_dims)[1]
        )

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.post_norm is None else self.post_norm(x)

    def forward(self, query: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if not self.return_intermediate:
            return self._norm(super().forward(query, *args, **kwargs))[None]
        intermediate = []
        for layer in self.layers:
            query = layer(query, *args, **kwargs)
            intermediate.append(self._norm(query))
        return torch.stack(intermediate)
