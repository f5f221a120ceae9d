"""``PyramidVisionTransformer`` and ``PyramidVisionTransformerV2`` (MMDetection v2's pvt.py).

State-dict keys are v2's: stage ``i`` is ``layers.{i}``, a list of ``0`` (patch embedding:
``projection``, ``norm``), ``1`` (its blocks: with an absolute position embedding
``1.0.pos_embed`` first, then encoder layers ``norm1``, ``attn.attn.{in_proj_weight,
in_proj_bias, out_proj.*}``, ``attn.sr``/``attn.norm`` (spatial reduction, ``sr_ratio > 1``),
``norm2``, ``ffn.layers.{0, 1, 4}`` or ``{0, 3}`` (1x1 conv, 3x3 depth-wise conv in v2, 1x1
conv)) and ``2`` (the stage's final LayerNorm in v2, an ``Identity`` in v1).

Numerics: pre-norm encoder layers; attention keys/values come from a ``sr_ratio``-strided
conv + LayerNorm of the tokens; v1 adds a learned position embedding resized bilinearly to the
token map. Checkpoints of the original PVT repository are converted by :func:`pvt_convert`
(``convert_weights=True``, the default).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.backbones._common import backbone_init_cfg, pretrained_checkpoint
from detforge.models.layers import (
    build_activation_layer,
    build_norm_layer,
    constant_init,
    normal_init,
    trunc_normal_init,
)
from detforge.models.layers.transformer import (
    MultiheadAttention,
    PatchEmbed,
    build_dropout,
    nchw_to_nlc,
    nlc_to_nchw,
    to_2tuple,
)
from detforge.registry import MODELS, Cfg
from detforge.utils.checkpoint import load_state_dict, read_checkpoint

__all__ = [
    "AbsolutePositionEmbedding",
    "MixFFN",
    "PVTEncoderLayer",
    "PyramidVisionTransformer",
    "PyramidVisionTransformerV2",
    "SpatialReductionAttention",
    "pvt_convert",
]

_GELU = MappingProxyType({"type": "GELU"})
_LN = MappingProxyType({"type": "LN"})
_LN6 = MappingProxyType({"type": "LN", "eps": 1e-6})
_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class MixFFN(nn.Module):
    """PVT's FFN on the token map: 1x1 conv, (3x3 depth-wise conv,) activation, 1x1 conv.

    Args:
        embed_dims: Token channels.
        feedforward_channels: Hidden channels.
        act_cfg: Activation.
        ffn_drop: Dropout after the activation and the last conv.
        dropout_layer: Applied before the residual add (``DropPath``).
        use_conv: Add the 3x3 depth-wise conv (PVTv2).
    """

    def __init__(
        self,
        embed_dims: int,
        feedforward_channels: int,
        act_cfg: Cfg = _GELU,
        ffn_drop: float = 0.0,
        dropout_layer: Cfg | None = None,
        use_conv: bool = False,
    ) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.feedforward_channels = feedforward_channels
        drop = nn.Dropout(ffn_drop)
        layers: list[nn.Module] = [nn.Conv2d(embed_dims, feedforward_channels, 1)]
        if use_conv:
            layers.append(
                nn.Conv2d(
                    feedforward_channels,
                    feedforward_channels,
                    3,
                    padding=1,
                    groups=feedforward_channels,
                )
            )
        layers += [build_activation_layer(act_cfg), drop]
        layers += [nn.Conv2d(feedforward_channels, embed_dims, 1), drop]
        self.layers = nn.Sequential(*layers)
        self.dropout_layer = build_dropout(dropout_layer)

    def forward(
        self, x: torch.Tensor, hw_shape: tuple[int, int], identity: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = nchw_to_nlc(self.layers(nlc_to_nchw(x, hw_shape)))
        return (x if identity is None else identity) + self.dropout_layer(out)


class SpatialReductionAttention(MultiheadAttention):
    """Multi-head attention whose keys/values are a ``sr_ratio``-times smaller token map.

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        attn_drop: Dropout on the attention weights.
        proj_drop: Dropout after the output projection.
        dropout_layer: Applied before the residual add (``DropPath``).
        batch_first: Tokens are ``[B, L, C]``.
        qkv_bias: Bias of the projections.
        norm_cfg: Norm after the reduction conv.
        sr_ratio: Kernel and stride of the reduction conv (1: no reduction).
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        dropout_layer: Cfg | None = None,
        batch_first: bool = True,
        qkv_bias: bool = True,
        norm_cfg: Cfg = _LN,
        sr_ratio: int = 1,
    ) -> None:
        super().__init__(
            embed_dims,
            num_heads,
            attn_drop=attn_drop,
            proj_drop=proj_drop,
            dropout_layer=dropout_layer,
            batch_first=batch_first,
            bias=qkv_bias,
        )
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = build_norm_layer(norm_cfg, embed_dims)[1]

    def forward(  # type: ignore[override]  # v2's signature: (x, hw_shape, identity)
        self, x: torch.Tensor, hw_shape: tuple[int, int], identity: torch.Tensor | None = None
    ) -> torch.Tensor:
        x_kv = x
        if self.sr_ratio > 1:
            x_kv = self.norm(nchw_to_nlc(self.sr(nlc_to_nchw(x, hw_shape))))
        return (x if identity is None else identity) + self.attend(x, x_kv, x_kv)


class PVTEncoderLayer(nn.Module):
    """``x + attn(norm1(x))`` then ``x + ffn(norm2(x))``.

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        feedforward_channels: Hidden channels of the FFN.
        drop_rate: Dropout after the projections and in the FFN.
        attn_drop_rate: Dropout on the attention weights.
        drop_path_rate: Stochastic depth of both branches.
        qkv_bias: Bias of the projections.
        act_cfg: FFN activation.
        norm_cfg: Norm layers.
        sr_ratio: Spatial reduction of the attention's keys/values.
        use_conv_ffn: 3x3 depth-wise conv in the FFN (PVTv2).
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        feedforward_channels: int,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        qkv_bias: bool = True,
        act_cfg: Cfg = _GELU,
        norm_cfg: Cfg = _LN,
        sr_ratio: int = 1,
        use_conv_ffn: bool = False,
    ) -> None:
        super().__init__()
        drop_path = {"type": "DropPath", "drop_prob": drop_path_rate}
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = SpatialReductionAttention(
            embed_dims=embed_dims,
            num_heads=num_heads,
            attn_drop=attn_drop_rate,
            proj_drop=drop_rate,
            dropout_layer=drop_path,
            qkv_bias=qkv_bias,
            norm_cfg=norm_cfg,
            sr_ratio=sr_ratio,
        )
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = MixFFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            ffn_drop=drop_rate,
            dropout_layer=drop_path,
            use_conv=use_conv_ffn,
            act_cfg=act_cfg,
        )

    def forward(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        x = self.attn(self.norm1(x), hw_shape, identity=x)
        return self.ffn(self.norm2(x), hw_shape, identity=x)


class AbsolutePositionEmbedding(nn.Module):
    """A learned ``pos_embed [1, h*w, C]`` added to the tokens, resized to their map.

    Args:
        pos_shape: ``(h, w)`` (or ``h`` for a square) of the stored embedding.
        pos_dim: Token channels.
        drop_rate: Dropout after the addition.
    """

    def __init__(self, pos_shape: int | tuple[int, int], pos_dim: int, drop_rate: float = 0.0):
        super().__init__()
        self.pos_shape = to_2tuple(pos_shape)
        self.pos_dim = pos_dim
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.pos_shape[0] * self.pos_shape[1], pos_dim)
        )
        self.drop = nn.Dropout(p=drop_rate)

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def resize_pos_embed(
        self, pos_embed: torch.Tensor, input_shape: tuple[int, int], mode: str = "bilinear"
    ) -> torch.Tensor:
        """``[1, L, C]`` -> ``[1, H*W, C]`` by interpolating the ``pos_shape`` grid."""
        height, width = self.pos_shape
        grid = pos_embed[:, -height * width :].reshape(1, height, width, self.pos_dim)
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=input_shape, mode=mode)
        return grid.flatten(2).transpose(1, 2).contiguous()

    def forward(
        self, x: torch.Tensor, hw_shape: tuple[int, int], mode: str = "bilinear"
    ) -> torch.Tensor:
        return self.drop(x + self.resize_pos_embed(self.pos_embed, hw_shape, mode))


@MODELS.register_module()
class PyramidVisionTransformer(nn.Module):
    """Pyramid Vision Transformer (PVT v1; MMDetection v2 ``PyramidVisionTransformer``).

    Stage ``i`` has ``embed_dims * num_heads[i]`` channels.

    Args:
        pretrain_img_size: Image size of pre-training (sizes the position embeddings).
        in_channels: Image channels.
        embed_dims: Channels per attention head.
        num_stages: Stages (the per-stage lists need this many entries).
        num_layers: Encoder layers per stage.
        num_heads: Attention heads per stage.
        patch_sizes: Patch embedding kernel per stage.
        strides: Patch embedding stride per stage.
        paddings: Patch embedding padding per stage.
        sr_ratios: Spatial reduction per stage.
        out_indices: Stages whose outputs are returned.
        mlp_ratios: FFN hidden channels / token channels per stage.
        qkv_bias: Bias of the attention projections.
        drop_rate: Dropout rate.
        attn_drop_rate: Attention dropout rate.
        drop_path_rate: Stochastic depth, rising linearly to this over all layers.
        use_abs_pos_embed: Learned absolute position embeddings (v1).
        norm_after_stage: LayerNorm at the end of each stage (v2).
        use_conv_ffn: Depth-wise conv in the FFNs (v2).
        act_cfg: FFN activation.
        norm_cfg: Norm layers.
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        convert_weights: The pretrained checkpoint comes from the original PVT repository
            (converted by :func:`pvt_convert`).
        init_cfg: ``None`` (v2's random init) or ``dict(checkpoint=...)``.

    Example:
        >>> net = PyramidVisionTransformer(embed_dims=4, num_layers=[1, 1, 1, 1],
        ...                                pretrain_img_size=64).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
        [(1, 4, 16, 16), (1, 8, 8, 8), (1, 20, 4, 4), (1, 32, 2, 2)]
    """

    def __init__(
        self,
        pretrain_img_size: int | tuple[int, int] = 224,
        in_channels: int = 3,
        embed_dims: int = 64,
        num_stages: int = 4,
        num_layers: Sequence[int] = (3, 4, 6, 3),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        patch_sizes: Sequence[int] = (4, 2, 2, 2),
        strides: Sequence[int] = (4, 2, 2, 2),
        paddings: Sequence[int | str] = (0, 0, 0, 0),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        mlp_ratios: Sequence[float] = (8, 8, 4, 4),
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        use_abs_pos_embed: bool = True,
        norm_after_stage: bool = False,
        use_conv_ffn: bool = False,
        act_cfg: Cfg = _GELU,
        norm_cfg: Cfg = _LN6,
        pretrained: str | None = None,
        convert_weights: bool = True,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.init_cfg = backbone_init_cfg(name, pretrained, init_cfg, None, stacklevel=4)
        per_stage = dict(
            num_layers=num_layers,
            num_heads=num_heads,
            patch_sizes=patch_sizes,
            strides=strides,
            sr_ratios=sr_ratios,
        )
        wrong = {k: tuple(v) for k, v in per_stage.items() if len(v) != num_stages}
        if wrong:
            raise ConfigKeyError(f"{name}: num_stages={num_stages} but {wrong}")
        if not out_indices or max(out_indices) >= num_stages:
            raise ConfigKeyError(
                f"{name}: out_indices {tuple(out_indices)} outside 0..{num_stages - 1}"
            )
        self.convert_weights = convert_weights
        self.embed_dims = embed_dims
        self.num_stages = num_stages
        self.num_layers = list(num_layers)
        self.num_heads = list(num_heads)
        self.patch_sizes = list(patch_sizes)
        self.strides = list(strides)
        self.sr_ratios = list(sr_ratios)
        self.out_indices = tuple(out_indices)
        img_h, img_w = to_2tuple(pretrain_img_size)
        rates = [r.item() for r in torch.linspace(0, drop_path_rate, sum(num_layers))]
        self.layers = nn.ModuleList()
        first, channels_in, reduction = 0, in_channels, 1
        for i, depth in enumerate(num_layers):
            channels = embed_dims * num_heads[i]
            reduction *= patch_sizes[i]
            patch_embed = PatchEmbed(
                in_channels=channels_in,
                embed_dims=channels,
                kernel_size=patch_sizes[i],
                stride=strides[i],
                padding=paddings[i],
                bias=True,
                norm_cfg=norm_cfg,
            )
            blocks = nn.ModuleList()
            if use_abs_pos_embed:
                pos_shape = (img_h // reduction, img_w // reduction)
                blocks.append(AbsolutePositionEmbedding(pos_shape, channels, drop_rate))
            blocks.extend(
                PVTEncoderLayer(
                    embed_dims=channels,
                    num_heads=num_heads[i],
                    feedforward_channels=int(mlp_ratios[i] * channels),
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=rates[first + j],
                    qkv_bias=qkv_bias,
                    act_cfg=act_cfg,
                    norm_cfg=norm_cfg,
                    sr_ratio=sr_ratios[i],
                    use_conv_ffn=use_conv_ffn,
                )
                for j in range(depth)
            )
            norm = build_norm_layer(norm_cfg, channels)[1] if norm_after_stage else nn.Identity()
            self.layers.append(nn.ModuleList([patch_embed, blocks, norm]))
            channels_in, first = channels, first + depth

    def init_weights(self) -> None:
        """v2's random init, or the ``init_cfg`` checkpoint (converted, loaded non-strictly).

        Raises:
            ConfigTypeError: ``init_cfg`` has no ``checkpoint``.
            CheckpointError: the checkpoint is missing (the message says where to put it).
        """
        if self.init_cfg is None:
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_init(m, std=0.02, bias=0.0)
                elif isinstance(m, nn.LayerNorm):
                    constant_init(m, 1.0)
                elif isinstance(m, nn.Conv2d):
                    fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                    normal_init(m, 0, math.sqrt(2.0 / fan_out))
                elif isinstance(m, AbsolutePositionEmbedding):
                    m.init_weights()
            return
        checkpoint = pretrained_checkpoint(type(self).__name__, self.init_cfg)
        state = read_checkpoint(checkpoint)[1]
        if self.convert_weights:
            state = pvt_convert(state)
        load_state_dict(self, state, strict=False, source=checkpoint)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``Tensor[B, C, H, W]`` -> one ``Tensor[B, C_i, H_i, W_i]`` per ``out_indices`` entry."""
        outs = []
        for i, stage in enumerate(self.layers):
            patch_embed, blocks, norm = stage[0], stage[1], stage[2]  # type: ignore[index]
            x, hw_shape = patch_embed(x)
            for block in blocks:
                x = block(x, hw_shape)
            x = nlc_to_nchw(norm(x), hw_shape)
            if i in self.out_indices:
                outs.append(x)
        return outs


@MODELS.register_module()
class PyramidVisionTransformerV2(PyramidVisionTransformer):
    """PVTv2: overlapping patch embeddings (7x7/3x3 convs), no absolute position embedding,
    a LayerNorm after each stage and depth-wise convs in the FFNs.

    Takes the arguments of :class:`PyramidVisionTransformer`; these change their defaults
    (MMDetection v2 fixes them to these values).

    Args:
        patch_sizes: Patch embedding kernel per stage.
        paddings: Patch embedding padding per stage.
        use_abs_pos_embed: Learned absolute position embeddings.
        norm_after_stage: LayerNorm at the end of each stage.
        use_conv_ffn: Depth-wise conv in the FFNs.
        **kwargs: The other arguments of :class:`PyramidVisionTransformer`.
    """

    def __init__(
        self,
        patch_sizes: Sequence[int] = (7, 3, 3, 3),
        paddings: Sequence[int | str] = (3, 1, 1, 1),
        use_abs_pos_embed: bool = False,
        norm_after_stage: bool = True,
        use_conv_ffn: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            patch_sizes=patch_sizes,
            paddings=paddings,
            use_abs_pos_embed=use_abs_pos_embed,
            norm_after_stage=norm_after_stage,
            use_conv_ffn=use_conv_ffn,
            **kwargs,
        )


def _pvt_mlp_key(key: str, use_conv_ffn: bool) -> str:
    key = key.replace("mlp.", "ffn.layers.").replace("fc1.", "0.").replace("dwconv.dwconv.", "1.")
    return key.replace("fc2.", "4." if use_conv_ffn else "3.")


def pvt_convert(ckpt: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Keys of an original-repository PVT/PVTv2 checkpoint -> v2's.

    ``patch_embed{s}`` -> ``layers.{s-1}.0`` (``proj`` -> ``projection``), ``pos_embed{s}`` ->
    ``layers.{s-1}.1.0.pos_embed`` (the cls token of stage 4 dropped), ``block{s}.{j}`` ->
    ``layers.{s-1}.1.{j + 1 if position embeddings else j}`` with ``attn.q``/``attn.kv``
    concatenated into ``attn.attn.in_proj_*``, ``attn.proj`` -> ``attn.attn.out_proj``,
    ``mlp.fc1/dwconv/fc2`` -> ``ffn.layers.0/1/4`` (``0/3`` without the depth-wise conv; the
    Linear weights become 1x1 convs), ``norm{s}`` -> ``layers.{s-1}.2``; the classifier
    (``head``, ``norm``, ``cls_token``) is dropped.

    Example:
        >>> out = pvt_convert({'block1.0.mlp.fc1.weight': torch.zeros(8, 4)})
        >>> {k: tuple(v.shape) for k, v in out.items()}
        {'layers.0.1.0.ffn.layers.0.weight': (8, 4, 1, 1)}
    """
    use_abs_pos_embed = any(k.startswith("pos_embed") for k in ckpt)
    use_conv_ffn = any("dwconv" in k for k in ckpt)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in ckpt.items():
        if key.startswith(("head", "norm.", "cls_token")):
            continue
        new_key, new_value = key, value
        if key.startswith("pos_embed"):
            stage = int(key.replace("pos_embed", ""))
            new_key = f"layers.{stage - 1}.1.0.pos_embed"
            if stage == 4 and value.size(1) == 50:  # 1 cls token + 7 * 7
                new_value = value[:, 1:, :]
        elif key.startswith("patch_embed"):
            stage = int(key.split(".")[0].replace("patch_embed", ""))
            new_key = key.replace(f"patch_embed{stage}", f"layers.{stage - 1}.0")
            new_key = new_key.replace("proj.", "projection.")
        elif key.startswith("block"):
            head, index = key.split(".")[:2]
            stage, layer = int(head.replace("block", "")), int(index)
            new_key = key.replace(
                f"{head}.{index}", f"layers.{stage - 1}.1.{layer + use_abs_pos_embed}"
            )
            if "attn.kv." in new_key:
                continue
            if "attn.q." in new_key:
                new_key = new_key.replace("q.", "attn.in_proj_")
                new_value = torch.cat([value, ckpt[key.replace("q.", "kv.")]], dim=0)
            elif "attn.proj." in new_key:
                new_key = new_key.replace("proj.", "attn.out_proj.")
            elif "mlp." in new_key:
                if "fc1.weight" in new_key or "fc2.weight" in new_key:
                    new_value = value.reshape((*value.shape, 1, 1))
                new_key = _pvt_mlp_key(new_key, use_conv_ffn)
        elif key.startswith("norm"):
            stage = int(key[4])
            new_key = key.replace(f"norm{stage}", f"layers.{stage - 1}.2")
        out[new_key] = new_value
    return out
