"""The encoder-decoder transformers of v2's DETR and Deformable DETR heads.

:class:`Transformer` (DETR): the flattened ``[H*W, B, C]`` feature map through the encoder
(self-attention with the positional encoding on queries and keys, padding masked), then
``num_query`` zero-initialised targets with the learned query embedding as their position
through the decoder (cross-attention to the memory, the positional encoding on its keys).

:class:`DeformableDetrTransformer`: all levels flattened and concatenated; the positional
encoding plus a learned per-level embedding (``level_embeds``); encoder queries attend with
multi-scale deformable attention around their own pixel centre, ``((i + 0.5) / (valid H),
(j + 0.5) / (valid W))`` per level, scaled by every level's valid ratio. Decoder queries are
split from the ``2C`` query embedding into position and content; their reference points are
``sigmoid(reference_points(position))`` (2-d), or, two-stage, the top-``two_stage_num_proposals``
encoder proposals by their first class logit (4-d boxes, position from a sine embedding of
the box). With box refinement each decoder layer's regression branch moves the (detached)
reference points for the next layer.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from detforge.models.transformers.bricks import TransformerLayerSequence, inverse_sigmoid
from detforge.models.transformers.ms_deform_attn import MultiScaleDeformableAttention
from detforge.registry import MODELS, Cfg, build_module

__all__ = ["DeformableDetrTransformer", "DeformableDetrTransformerDecoder", "Transformer"]


@MODELS.register_module()
class Transformer(nn.Module):
    """DETR's transformer (``encoder``, ``decoder`` keys; see the module docstring).

    Args:
        encoder: Encoder config (``DetrTransformerEncoder``).
        decoder: Decoder config (``DetrTransformerDecoder``).
        init_cfg: Unused (:meth:`init_weights` is v2's Xavier initialisation).
    """

    def __init__(self, encoder: Cfg | nn.Module, decoder: Cfg | nn.Module, init_cfg: Any = None):
        super().__init__()
        self.encoder: Any = build_module(encoder, MODELS)
        self.decoder: Any = build_module(decoder, MODELS)
        self.embed_dims: int = self.encoder.embed_dims

    def init_weights(self) -> None:
        """Xavier-uniform weights and zero biases for every module with a matrix ``weight``."""
        for m in self.modules():
            weight = getattr(m, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.dim() > 1:
                nn.init.xavier_uniform_(weight)
                bias = getattr(m, "bias", None)
                if isinstance(bias, torch.Tensor):
                    nn.init.zeros_(bias)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        query_embed: torch.Tensor,
        pos_embed: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(decoder outputs [layers, B, num_query, C], memory [B, C, H, W])``.

        Args:
            x: ``[B, C, H, W]`` projected features.
            mask: ``[B, H, W]`` true outside the image.
            query_embed: ``[num_query, C]``.
            pos_embed: ``[B, C, H, W]``.
        """
        bs, c, h, w = x.shape
        x = x.view(bs, c, -1).permute(2, 0, 1)
        pos_embed = pos_embed.view(bs, c, -1).permute(2, 0, 1)
        query_embed = query_embed.unsqueeze(1).repeat(1, bs, 1)
        mask = mask.view(bs, -1)
        memory = self.encoder(
            query=x, key=None, value=None, query_pos=pos_embed, query_key_padding_mask=mask
        )
        target = torch.zeros_like(query_embed)
        out_dec = self.decoder(
            query=target,
            key=memory,
            value=memory,
            key_pos=pos_embed,
            query_pos=query_embed,
            key_padding_mask=mask,
        )
        return out_dec.transpose(1, 2), memory.permute(1, 2, 0).reshape(bs, c, h, w)


@MODELS.register_module()
class DeformableDetrTransformerDecoder(TransformerLayerSequence):
    """Deformable DETR's decoder: reference points scaled by the valid ratios per layer and,
    with ``reg_branches``, refined after each layer (v2).

    Args:
        return_intermediate: Return every layer's output and reference points.
    """

    def __init__(self, *, return_intermediate: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.return_intermediate = return_intermediate

    def forward(  # type: ignore[override]  # v2's keyword-only reference points
        self,
        query: torch.Tensor,
        *args: Any,
        reference_points: torch.Tensor,
        valid_ratios: torch.Tensor,
        reg_branches: nn.ModuleList | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(outputs [layers, Q, B, C], reference points [layers, B, Q, 2 or 4])`` (the last
        layer's only, without a leading axis, unless ``return_intermediate``)."""
        output = query
        intermediate, intermediate_refs = [], []
        for lid, layer in enumerate(self.layers):
            if reference_points.shape[-1] == 4:
                ratios = torch.cat([valid_ratios, valid_ratios], -1)[:, None]
            else:
                ratios = valid_ratios[:, None]
            output = layer(
                output, *args, reference_points=reference_points[:, :, None] * ratios, **kwargs
            )
            if reg_branches is not None:
                tmp = reg_branches[lid](output.permute(1, 0, 2))
                if reference_points.shape[-1] == 4:
                    new_refs = tmp + inverse_sigmoid(reference_points)
                else:
                    new_refs = tmp.clone()
                    new_refs[..., :2] = tmp[..., :2] + inverse_sigmoid(reference_points)
                reference_points = new_refs.sigmoid().detach()
            if self.return_intermediate:
                intermediate.append(output)
                intermediate_refs.append(reference_points)
        if self.return_intermediate:
            return torch.stack(intermediate), torch.stack(intermediate_refs)
        return output, reference_points


@MODELS.register_module()
class DeformableDetrTransformer(Transformer):
    """Deformable DETR's transformer (see the module docstring).

    Keys: ``level_embeds``, ``encoder``, ``decoder`` and ``reference_points`` (a Linear), or,
    two-stage, ``enc_output``, ``enc_output_norm``, ``pos_trans``, ``pos_trans_norm``.

    Args:
        as_two_stage: Queries from the encoder's top proposals.
        num_feature_levels: Feature levels.
        two_stage_num_proposals: Proposals kept in two-stage mode.
        kwargs: ``encoder``, ``decoder``, ``init_cfg`` of :class:`Transformer`.
    """

    def __init__(
        self,
        *,
        as_two_stage: bool = False,
        num_feature_levels: int = 4,
        two_stage_num_proposals: int = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.as_two_stage = as_two_stage
        self.num_feature_levels = num_feature_levels
        self.two_stage_num_proposals = two_stage_num_proposals
        c = self.embed_dims
        self.level_embeds = nn.Parameter(torch.empty(num_feature_levels, c))
        if as_two_stage:
            self.enc_output = nn.Linear(c, c)
            self.enc_output_norm = nn.LayerNorm(c)
            self.pos_trans = nn.Linear(c * 2, c * 2)
            self.pos_trans_norm = nn.LayerNorm(c * 2)
        else:
            self.reference_points = nn.Linear(c, 2)
        self.init_weights()

    def init_weights(self) -> None:
        """v2's: Xavier-uniform matrices, mmcv's deformable-attention init, a zero-bias
        ``reference_points`` and normal ``level_embeds``."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()
        if not self.as_two_stage:
            nn.init.xavier_uniform_(self.reference_points.weight)
            nn.init.zeros_(self.reference_points.bias)
        nn.init.normal_(self.level_embeds)

    def gen_encoder_output_proposals(
        self, memory: torch.Tensor, padding_mask: torch.Tensor, spatial_shapes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(enc_output_norm(enc_output(masked memory)), proposals [B, S, 4])``.

        A proposal is the pixel centre over the valid size with ``w = h = 0.05 * 2^level``, in
        inverse-sigmoid space; padded or out-of-``(0.01, 0.99)`` proposals are ``inf`` and
        their memory zero.
        """
        n = memory.shape[0]
        proposals = []
        start = 0
        for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
            mask = padding_mask[:, start : start + h * w].view(n, h, w, 1)
            valid_h = torch.sum(~mask[:, :, 0, 0], 1)
            valid_w = torch.sum(~mask[:, 0, :, 0], 1)
            grid_y, grid_x = torch.meshgrid(
                torch.linspace(0, h - 1, h, dtype=torch.float32, device=memory.device),
                torch.linspace(0, w - 1, w, dtype=torch.float32, device=memory.device),
                indexing="ij",
            )
            grid = torch.cat([grid_x.unsqueeze(-1), grid_y.unsqueeze(-1)], -1)
            scale = torch.cat([valid_w.unsqueeze(-1), valid_h.unsqueeze(-1)], 1).view(n, 1, 1, 2)
            grid = (grid.unsqueeze(0).expand(n, -1, -1, -1) + 0.5) / scale
            wh = torch.ones_like(grid) * 0.05 * (2.0**lvl)
            proposals.append(torch.cat((grid, wh), -1).view(n, -1, 4))
            start += h * w
        output_proposals = torch.cat(proposals, 1)
        valid = ((output_proposals > 0.01) & (output_proposals < 0.99)).all(-1, keepdim=True)
        output_proposals = torch.log(output_proposals / (1 - output_proposals))
        output_proposals = output_proposals.masked_fill(padding_mask.unsqueeze(-1), float("inf"))
        output_proposals = output_proposals.masked_fill(~valid, float("inf"))
        output_memory = memory.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        output_memory = output_memory.masked_fill(~valid, 0.0)
        return self.enc_output_norm(self.enc_output(output_memory)), output_proposals

    @staticmethod
    def get_reference_points(
        spatial_shapes: torch.Tensor, valid_ratios: torch.Tensor, device: Any
    ) -> torch.Tensor:
        """Every level's pixel centres over the valid size, ``[B, S, levels, 2]``, times each
        level's valid ratio."""
        refs = []
        for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
            ref_y, ref_x = torch.meshgrid(
                torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=device),
                torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=device),
                indexing="ij",
            )
            ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
            ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
            refs.append(torch.stack((ref_x, ref_y), -1))
        return torch.cat(refs, 1)[:, :, None] * valid_ratios[:, None]

    @staticmethod
    def get_valid_ratio(mask: torch.Tensor) -> torch.Tensor:
        """``[B, 2]`` valid width and height fractions of a ``[B, H, W]`` padding mask."""
        _, h, w = mask.shape
        valid_h = torch.sum(~mask[:, :, 0], 1)
        valid_w = torch.sum(~mask[:, 0, :], 1)
        return torch.stack([valid_w.float() / w, valid_h.float() / h], -1)

    @staticmethod
    def get_proposal_pos_embed(
        proposals: torch.Tensor, num_pos_feats: int = 128, temperature: int = 10000
    ) -> torch.Tensor:
        """Sine embedding of ``sigmoid(proposals) * 2pi``: ``[B, Q, 4 * num_pos_feats]``."""
        dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=proposals.device)
        dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
        pos = proposals.sigmoid() * (2 * math.pi)
        pos = pos[:, :, :, None] / dim_t
        return torch.stack((pos[:, :, :, 0::2].sin(), pos[:, :, :, 1::2].cos()), dim=4).flatten(2)

    def forward(  # type: ignore[override]  # multi-level inputs
        self,
        mlvl_feats: list[torch.Tensor],
        mlvl_masks: list[torch.Tensor],
        query_embed: torch.Tensor | None,
        mlvl_pos_embeds: list[torch.Tensor],
        reg_branches: nn.ModuleList | None = None,
        cls_branches: nn.ModuleList | None = None,
    ) -> tuple[Any, ...]:
        """``(states [layers, Q, B, C], initial refs, refs per layer, encoder class logits,
        encoder boxes (unactivated))``; the last two are ``None`` unless two-stage."""
        feats, masks, pos_embeds, shapes = [], [], [], []
        for lvl, (feat, mask, pos_embed) in enumerate(
            zip(mlvl_feats, mlvl_masks, mlvl_pos_embeds, strict=True)
        ):
            shapes.append(feat.shape[-2:])
            feats.append(feat.flatten(2).transpose(1, 2))
            masks.append(mask.flatten(1))
            pos = pos_embed.flatten(2).transpose(1, 2)
            pos_embeds.append(pos + self.level_embeds[lvl].view(1, 1, -1))
        feat_flatten = torch.cat(feats, 1)
        mask_flatten = torch.cat(masks, 1)
        pos_flatten = torch.cat(pos_embeds, 1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=feat_flatten.device)
        level_start_index = torch.cat(
            (spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1])
        )
        valid_ratios = torch.stack([self.get_valid_ratio(m) for m in mlvl_masks], 1)
        reference_points = self.get_reference_points(
            spatial_shapes, valid_ratios, feat_flatten.device
        )
        memory = self.encoder(
            query=feat_flatten.permute(1, 0, 2),
            key=None,
            value=None,
            query_pos=pos_flatten.permute(1, 0, 2),
            query_key_padding_mask=mask_flatten,
            spatial_shapes=spatial_shapes,
            reference_points=reference_points,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
        ).permute(1, 0, 2)
        bs, _, c = memory.shape
        enc_class = enc_coord = None
        if self.as_two_stage:
            if cls_branches is None or reg_branches is None:
                raise ValueError("DeformableDetrTransformer: two-stage needs cls and reg branches")
            output_memory, output_proposals = self.gen_encoder_output_proposals(
                memory, mask_flatten, spatial_shapes
            )
            num_dec = self.decoder.num_layers
            enc_class = cls_branches[num_dec](output_memory)
            enc_coord = reg_branches[num_dec](output_memory) + output_proposals
            # the first class logit scores a proposal's foreground (v2, as the official code)
            topk = torch.topk(enc_class[..., 0], self.two_stage_num_proposals, dim=1)[1]
            topk_coords = torch.gather(enc_coord, 1, topk.unsqueeze(-1).repeat(1, 1, 4)).detach()
            reference_points = topk_coords.sigmoid()
            pos_trans = self.pos_trans_norm(
                self.pos_trans(self.get_proposal_pos_embed(topk_coords, num_pos_feats=c // 2))
            )
            query_pos, query = torch.split(pos_trans, c, dim=2)
        else:
            if query_embed is None:
                raise ValueError("DeformableDetrTransformer: one-stage needs a query_embed")
            query_pos, query = torch.split(query_embed, c, dim=1)
            query_pos = query_pos.unsqueeze(0).expand(bs, -1, -1)
            query = query.unsqueeze(0).expand(bs, -1, -1)
            reference_points = self.reference_points(query_pos).sigmoid()
        init_reference = reference_points
        states, inter_references = self.decoder(
            query=query.permute(1, 0, 2),
            key=None,
            value=memory.permute(1, 0, 2),
            query_pos=query_pos.permute(1, 0, 2),
            key_padding_mask=mask_flatten,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            reg_branches=reg_branches,
        )
        return states, init_reference, inter_references, enc_class, enc_coord
