"""``DeformableDETRHead``: DETR's losses and decoding on a multi-scale deformable transformer
(MMDetection v2's ``DeformableDETRHead``).

Numerics (v2.28), beyond :mod:`detr_head`'s:

- per level a padding mask (the image mask resized by nearest interpolation) and its
  positional encoding; no input projection (the neck gives ``embed_dims`` channels);
- decoder layer ``l`` predicts ``cls_branches[l](h)`` and ``sigmoid(reg_branches[l](h) +
  inverse_sigmoid(ref))`` with ``ref`` the layer's input reference points (only ``(x, y)`` is
  offset for 2-d points). Without box refinement all layers share one ``fc_cls`` and one
  regression MLP (v2 lists the same module under every index);
- two-stage: one more branch pair scores the encoder's proposals; their losses
  (``enc_loss_cls``/``enc_loss_bbox``/``enc_loss_iou``) match every ground truth as class 0;
- test: sigmoid scores of all (query, class) pairs, the best ``max_per_img``.

Initialisation (v2): the transformer's, classification biases at prior 0.01 (sigmoid losses),
the last regression layer zero with bias ``(0, 0, -2, -2)`` on branch 0 (``(0, 0, 0, 0)``
two-stage).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.dense_heads.detr_head import DETRHead, padding_masks
from detforge.models.layers import bias_init_with_prob
from detforge.models.transformers import inverse_sigmoid
from detforge.registry import MODELS
from detforge.structures import ImgMeta

__all__ = ["DeformableDETRHead"]


@MODELS.register_module()
class DeformableDETRHead(DETRHead):
    """Deformable DETR's head (keys ``cls_branches.i``, ``reg_branches.i.{0,2,4}``,
    ``query_embedding``, ``transformer.*``).

    Args:
        with_box_refine: Separate branches per decoder layer that also refine the reference
            points.
        as_two_stage: Queries from the encoder's proposals (sets the transformer's
            ``as_two_stage``).
        transformer: ``DeformableDetrTransformer`` config.
        kwargs: The arguments of :class:`DETRHead`.
    """

    def __init__(
        self,
        *,
        with_box_refine: bool = False,
        as_two_stage: bool = False,
        transformer: Any,
        **kwargs: Any,
    ) -> None:
        self.with_box_refine = with_box_refine
        self.as_two_stage = as_two_stage
        if as_two_stage and isinstance(transformer, Mapping):
            transformer = {**transformer, "as_two_stage": True}
        super().__init__(transformer=transformer, **kwargs)

    def _init_layers(self) -> None:
        fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        layers: list[nn.Module] = []
        for _ in range(self.num_reg_fcs):
            layers += [nn.Linear(self.embed_dims, self.embed_dims), nn.ReLU()]
        layers.append(nn.Linear(self.embed_dims, 4))
        reg_branch = nn.Sequential(*layers)
        num_pred = self.transformer.decoder.num_layers + int(self.as_two_stage)
        if self.with_box_refine:
            self.cls_branches = nn.ModuleList(copy.deepcopy(fc_cls) for _ in range(num_pred))
            self.reg_branches = nn.ModuleList(copy.deepcopy(reg_branch) for _ in range(num_pred))
        else:
            self.cls_branches = nn.ModuleList([fc_cls] * num_pred)
            self.reg_branches = nn.ModuleList([reg_branch] * num_pred)
        if not self.as_two_stage:
            self.query_embedding = nn.Embedding(self.num_query, self.embed_dims * 2)

    def init_weights(self) -> None:
        self.transformer.init_weights()
        cls_branches: list[Any] = list(self.cls_branches)
        reg_lasts: list[Any] = [branch[-1] for branch in self.reg_branches]  # type: ignore[index]
        if self.use_sigmoid_cls:
            for m in cls_branches:
                nn.init.constant_(m.bias, bias_init_with_prob(0.01))
        for m in reg_lasts:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.constant_(reg_lasts[0].bias.data[2:], -2.0)
        if self.as_two_stage:
            for m in reg_lasts:
                nn.init.constant_(m.bias.data[2:], 0.0)

    def forward(  # type: ignore[override]  # multi-level, with img_metas (v2)
        self, mlvl_feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta]
    ) -> tuple[Any, ...]:
        """``(cls [layers, B, Q, C], boxes [layers, B, Q, 4], enc cls, enc boxes)``; the
        encoder outputs are ``None`` unless two-stage."""
        img_masks = padding_masks(img_metas, mlvl_feats[0])
        masks, pos_embeds = [], []
        for feat in mlvl_feats:
            masks.append(
                F.interpolate(img_masks[None], size=feat.shape[-2:]).to(torch.bool).squeeze(0)
            )
            pos_embeds.append(self.positional_encoding(masks[-1]))
        query_embeds = None if self.as_two_stage else self.query_embedding.weight
        hs, init_reference, inter_references, enc_class, enc_coord = self.transformer(
            list(mlvl_feats),
            masks,
            query_embeds,
            pos_embeds,
            reg_branches=self.reg_branches if self.with_box_refine else None,
            cls_branches=self.cls_branches if self.as_two_stage else None,
        )
        hs = hs.permute(0, 2, 1, 3)
        classes, coords = [], []
        for lvl in range(hs.shape[0]):
            reference = inverse_sigmoid(init_reference if lvl == 0 else inter_references[lvl - 1])
            tmp = self.reg_branches[lvl](hs[lvl])
            if reference.shape[-1] == 4:
                tmp = tmp + reference
            else:
                tmp = torch.cat([tmp[..., :2] + reference, tmp[..., 2:]], -1)
            classes.append(self.cls_branches[lvl](hs[lvl]))
            coords.append(tmp.sigmoid())
        enc_boxes = enc_coord.sigmoid() if enc_coord is not None else None
        return torch.stack(classes), torch.stack(coords), enc_class, enc_boxes

    def loss(  # type: ignore[override]  # v2's signature of this head
        self,
        all_cls_scores: torch.Tensor,
        all_bbox_preds: torch.Tensor,
        enc_cls_scores: torch.Tensor | None,
        enc_bbox_preds: torch.Tensor | None,
        gt_bboxes_list: Sequence[torch.Tensor],
        gt_labels_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """``enc_loss_*`` (two-stage), then the decoder layers' losses as in DETR."""
        self._check_no_ignored(gt_bboxes_ignore)
        losses: dict[str, Any] = {}
        if enc_cls_scores is not None and enc_bbox_preds is not None:
            binary_labels = [torch.zeros_like(labels) for labels in gt_labels_list]
            enc = self.loss_single(
                enc_cls_scores, enc_bbox_preds, gt_bboxes_list, binary_labels, img_metas
            )
            losses.update(zip(("enc_loss_cls", "enc_loss_bbox", "enc_loss_iou"), enc, strict=True))
        losses.update(
            self._decoder_losses(
                all_cls_scores, all_bbox_preds, gt_bboxes_list, gt_labels_list, img_metas
            )
        )
        return losses

    def get_bboxes(  # type: ignore[override]  # v2's signature of this head
        self,
        all_cls_scores: torch.Tensor,
        all_bbox_preds: torch.Tensor,
        enc_cls_scores: torch.Tensor | None,
        enc_bbox_preds: torch.Tensor | None,
        img_metas: Sequence[ImgMeta],
        rescale: bool = False,
    ) -> list[tuple[torch.Tensor, ...]]:
        """Detections of the last decoder layer."""
        return self._query_detections(all_cls_scores[-1], all_bbox_preds[-1], img_metas, rescale)
