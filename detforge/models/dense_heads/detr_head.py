"""``DETRHead``: set prediction with a transformer (MMDetection v2's ``DETRHead``).

Numerics (v2.28):

- forward: the padding mask is 1 outside each image's ``img_shape`` within
  ``batch_input_shape``, resized to the feature map by nearest interpolation; ``input_proj``
  (1x1 conv) brings the last level to ``embed_dims``; the transformer decodes ``num_query``
  learned queries; per decoder layer ``fc_cls`` gives the class logits and
  ``sigmoid(fc_reg(relu(reg_ffn(x))))`` normalised ``(cx, cy, w, h)`` boxes;
- targets (:func:`query_targets`): a Hungarian match per image and decoder layer; a matched
  query's label is its ground truth's, the rest ``num_classes`` (background); every query has
  label weight 1; matched queries regress their ground truth divided by ``(w, h, w, h)`` of
  ``img_shape``, in ``cxcywh``;
- losses per decoder layer: classification averaged over ``num_pos + bg_cls_weight *
  num_neg`` (averaged over the ranks with ``sync_cls_avg_factor``, at least 1), L1 on the
  normalised boxes and GIoU on the image-scale ``xyxy`` boxes, both averaged over the
  positives (mean over the ranks, at least 1). The last layer's are ``loss_cls``,
  ``loss_bbox``, ``loss_iou``; layer ``i`` before it gives ``d{i}.loss_*``;
- test (:func:`query_detections`): the last layer's predictions; softmax over the classes
  with background last, each query's best foreground class, the ``max_per_img`` best queries
  (sigmoid heads: the best ``max_per_img`` (query, class) pairs); boxes ``cxcywh`` times the
  ``img_shape`` size to ``xyxy``, clamped to the image, divided by ``scale_factor`` with
  ``rescale``. No score threshold, no NMS.

``bg_cls_weight`` (a key of the ``CrossEntropyLoss`` config, v2) becomes the last entry of
the loss's ``class_weight``. The matcher's cost weights must equal the loss weights (v2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import ConfigValueError, InvalidArgumentError
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.transformers import FFN
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from detforge.utils.dist import reduce_mean

__all__ = ["DETRHead", "query_detections", "query_targets"]

_CE_BG: Cfg = MappingProxyType(
    dict(
        type="CrossEntropyLoss",
        bg_cls_weight=0.1,
        use_sigmoid=False,
        loss_weight=1.0,
        class_weight=1.0,
    )
)
_L1: Cfg = MappingProxyType(dict(type="L1Loss", loss_weight=5.0))
_GIOU: Cfg = MappingProxyType(dict(type="GIoULoss", loss_weight=2.0))
_SINE: Cfg = MappingProxyType(dict(type="SinePositionalEncoding", num_feats=128, normalize=True))
_RELU: Cfg = MappingProxyType(dict(type="ReLU", inplace=True))
#: names of v2's DETR before its mmcv-layer transformer (the v2.28 model zoo's DETR checkpoint,
#: 2020) -> v2.28's; v2's ``DETRHead._load_from_state_dict`` renames them the same way
_V1_KEYS = (
    (".self_attn.", ".attentions.0."),
    (".ffn.", ".ffns.0."),
    (".multihead_attn.", ".attentions.1."),
    (".decoder.norm.", ".decoder.post_norm."),
)


def query_targets(
    pos_inds: torch.Tensor,
    pos_gt_inds: torch.Tensor,
    gt_bboxes: torch.Tensor,
    gt_labels: torch.Tensor,
    num_queries: int,
    num_classes: int,
    img_shape: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's ``(labels [Q], label_weights [Q], bbox_targets [Q, 4], bbox_weights [Q, 4])``.

    Args:
        pos_inds: Matched queries.
        pos_gt_inds: Their ground truths (0-based).
        gt_bboxes: ``[K, 4]`` ``xyxy`` in pixels.
        gt_labels: ``[K]``.
        num_queries: ``Q``.
        num_classes: The background label.
        img_shape: ``(h, w, ...)`` the boxes are normalised by.

    Example:
        >>> gt = torch.tensor([[0., 0., 10., 20.]])
        >>> t = query_targets(torch.tensor([1]), torch.tensor([0]), gt, torch.tensor([3]), 2, 80,
        ...                   (20, 10))
        >>> t[0].tolist(), t[2][1].tolist(), t[3].sum().item()
        ([80, 3], [0.5, 0.5, 1.0, 1.0], 4.0)
    """
    labels = gt_bboxes.new_full((num_queries,), num_classes, dtype=torch.long)
    labels[pos_inds] = gt_labels[pos_gt_inds].long()
    label_weights = gt_bboxes.new_ones(num_queries)
    bbox_targets = gt_bboxes.new_zeros(num_queries, 4)
    bbox_weights = gt_bboxes.new_zeros(num_queries, 4)
    bbox_weights[pos_inds] = 1.0
    img_h, img_w = img_shape[0], img_shape[1]
    factor = gt_bboxes.new_tensor([img_w, img_h, img_w, img_h]).unsqueeze(0)
    bbox_targets[pos_inds] = bbox_xyxy_to_cxcywh(gt_bboxes[pos_gt_inds] / factor)
    return labels, label_weights, bbox_targets, bbox_weights


def query_detections(
    cls_score: torch.Tensor,
    bbox_pred: torch.Tensor,
    img_shape: Sequence[int],
    scale_factor: Any,
    max_per_img: int,
    use_sigmoid: bool,
    rescale: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's ``(det_bboxes [n, 5], det_labels [n])`` from ``[Q, C]`` logits and ``[Q, 4]``
    normalised ``cxcywh`` boxes (see the module docstring).

    Example:
        >>> dets, labels = query_detections(torch.tensor([[2., 0., 0.]]),
        ...     torch.tensor([[0.5, 0.5, 1.0, 1.0]]), (10, 20), [2., 2., 2., 2.], 1, False, True)
        >>> dets[0, :4].tolist(), labels.tolist()
        ([0.0, 0.0, 10.0, 5.0], [0])
    """
    num_classes = cls_score.shape[-1]
    if use_sigmoid:
        scores, indexes = cls_score.sigmoid().view(-1).topk(max_per_img)
        det_labels = indexes % num_classes
        bbox_pred = bbox_pred[indexes // num_classes]
    else:
        scores, det_labels = F.softmax(cls_score, dim=-1)[..., :-1].max(-1)
        scores, bbox_index = scores.topk(max_per_img)
        bbox_pred = bbox_pred[bbox_index]
        det_labels = det_labels[bbox_index]
    det_bboxes = bbox_cxcywh_to_xyxy(bbox_pred)
    det_bboxes[:, 0::2] = (det_bboxes[:, 0::2] * img_shape[1]).clamp(min=0, max=img_shape[1])
    det_bboxes[:, 1::2] = (det_bboxes[:, 1::2] * img_shape[0]).clamp(min=0, max=img_shape[0])
    if rescale:
        det_bboxes = det_bboxes / det_bboxes.new_tensor(scale_factor)
    return torch.cat((det_bboxes, scores.unsqueeze(1)), -1), det_labels


def padding_masks(img_metas: Sequence[ImgMeta], like: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` (``batch_input_shape``) 1 outside each image's ``img_shape``, else 0."""
    input_h, input_w = img_metas[0]["batch_input_shape"]
    masks = like.new_ones((len(img_metas), input_h, input_w))
    for i, meta in enumerate(img_metas):
        img_h, img_w = meta["img_shape"][:2]
        masks[i, :img_h, :img_w] = 0
    return masks


@MODELS.register_module()
class DETRHead(BaseDenseHead):
    """DETR's head: input projection, transformer and prediction layers (v2 keys:
    ``input_proj``, ``transformer.*``, ``fc_cls``, ``reg_ffn``, ``fc_reg``, ``query_embedding``).

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of the backbone's last level.
        num_query: Decoder queries.
        num_reg_fcs: Linear layers of ``reg_ffn``.
        transformer: Transformer config (``Transformer``).
        sync_cls_avg_factor: Average the classification normaliser over the ranks.
        positional_encoding: Positional encoding config; ``2 * num_feats`` must equal the
            transformer's ``embed_dims``.
        loss_cls: Classification loss (``CrossEntropyLoss`` may carry ``bg_cls_weight``).
        loss_bbox: L1 loss on normalised boxes.
        loss_iou: IoU loss on image-scale boxes.
        train_cfg: ``assigner`` (a ``HungarianAssigner``).
        test_cfg: ``max_per_img`` (default ``num_query``).
        init_cfg: Initialisation config (v2: the transformer's own init).

    Raises:
        ConfigValueError: ``embed_dims`` is not twice the positional ``num_feats``, or a loss
            weight differs from its match cost's weight.
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = frozenset({"assigner"})
    TEST_CFG_KEYS: ClassVar[frozenset[str]] = frozenset({"max_per_img"})
    _version = 2  #: state-dict version: v2.28's key names (v2 stores the same)

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        num_query: int = 100,
        num_reg_fcs: int = 2,
        transformer: Cfg | nn.Module,
        sync_cls_avg_factor: bool = False,
        positional_encoding: Cfg | nn.Module = _SINE,
        loss_cls: Cfg | nn.Module = _CE_BG,
        loss_bbox: Cfg | nn.Module = _L1,
        loss_iou: Cfg | nn.Module = _GIOU,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = MappingProxyType(dict(max_per_img=100)),
        init_cfg: Any = None,
    ) -> None:
        self.bg_cls_weight = 0.0
        if isinstance(loss_cls, Mapping) and type(self) is DETRHead:
            loss_cls = self._with_bg_class_weight(loss_cls, num_classes)
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=in_channels,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            bbox_coder=None,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
        )
        self.loss_iou: Any = build_module(loss_iou, MODELS)
        self.num_query = num_query
        self.num_reg_fcs = num_reg_fcs
        self.sync_cls_avg_factor = sync_cls_avg_factor
        self.assigner: Any = None
        self.sampler = PseudoSampler()
        if train_cfg:
            self.assigner = build_module(train_cfg["assigner"], TASK_UTILS)
            self._check_match_costs()
        self.positional_encoding: Any = build_module(positional_encoding, MODELS)
        self.transformer: Any = build_module(transformer, MODELS)
        self.embed_dims: int = self.transformer.embed_dims
        num_feats = getattr(self.positional_encoding, "num_feats", None)
        if num_feats is not None and 2 * num_feats != self.embed_dims:
            raise ConfigValueError(
                f"{type(self).__name__}: embed_dims={self.embed_dims} must be 2 x "
                f"positional_encoding.num_feats={num_feats}"
            )
        self.activate = nn.ReLU(inplace=True)
        self._init_layers()

    def _with_bg_class_weight(self, loss_cls: Cfg, num_classes: int) -> dict[str, Any]:
        """v2: a float ``class_weight`` for the classes and ``bg_cls_weight`` for background."""
        cfg = dict(plain_cfg(loss_cls))
        class_weight = cfg.get("class_weight")
        if class_weight is None:
            return cfg
        if not isinstance(class_weight, float):
            raise ConfigValueError(
                f"DETRHead: loss_cls.class_weight must be a float, got {class_weight!r}"
            )
        bg = float(cfg.pop("bg_cls_weight", class_weight))
        cfg["class_weight"] = [class_weight] * num_classes + [bg]
        self.bg_cls_weight = bg
        return cfg

    def _check_match_costs(self) -> None:
        """v2's rule: each match cost weighs as much as its loss."""
        for cost, loss in (
            ("cls_cost", "loss_cls"),
            ("reg_cost", "loss_bbox"),
            ("iou_cost", "loss_iou"),
        ):
            cost_weight = getattr(getattr(self.assigner, cost, None), "weight", None)
            loss_weight = getattr(getattr(self, loss), "loss_weight", None)
            if cost_weight is not None and loss_weight is not None and cost_weight != loss_weight:
                raise ConfigValueError(
                    f"{type(self).__name__}: train_cfg.assigner.{cost}.weight={cost_weight} "
                    f"must equal {loss}.loss_weight={loss_weight}"
                )

    def _init_layers(self) -> None:
        self.input_proj = nn.Conv2d(self.in_channels, self.embed_dims, kernel_size=1)
        self.fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        self.reg_ffn = FFN(
            embed_dims=self.embed_dims,
            feedforward_channels=self.embed_dims,
            num_fcs=self.num_reg_fcs,
            act_cfg=_RELU,
            ffn_drop=0.0,
            add_identity=False,
        )
        self.fc_reg = nn.Linear(self.embed_dims, 4)
        self.query_embedding = nn.Embedding(self.num_query, self.embed_dims)

    def init_weights(self) -> None:
        """v2: only the transformer is re-initialised (Xavier); the rest keeps PyTorch's."""
        self.transformer.init_weights()

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        *args: Any,
    ) -> None:
        """Rename the keys of DETR checkpoints older than v2's ``_version = 2`` (``self_attn``,
        ``ffn``, ``multihead_attn``, ``decoder.norm``) as v2 does; v2.28 names are left alone
        (none contains an old name), so this also holds where the version is lost."""
        version = local_metadata.get("version")
        if type(self) is DETRHead and (version is None or version < 2):
            for key in [k for k in state_dict if k.startswith(prefix)]:
                new = key
                for old, renamed in _V1_KEYS:
                    new = new.replace(old, renamed)
                if new != key:
                    state_dict[new] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    # ------------------------------------------------------------- forward
    def forward(  # type: ignore[override]  # v2's heads of this family need img_metas
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta]
    ) -> tuple[list[torch.Tensor], ...]:
        """Per level ``[layers, B, num_query, cls_out_channels]`` logits and ``[layers, B,
        num_query, 4]`` boxes; only the last level is used (v2)."""
        return multi_apply(self.forward_single, feats, [img_metas] * len(feats))

    def forward_single(
        self, x: torch.Tensor, img_metas: Sequence[ImgMeta]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        masks = padding_masks(img_metas, x)
        x = self.input_proj(x)
        masks = F.interpolate(masks.unsqueeze(1), size=x.shape[-2:]).to(torch.bool).squeeze(1)
        pos_embed = self.positional_encoding(masks)
        outs_dec, _ = self.transformer(x, masks, self.query_embedding.weight, pos_embed)
        all_cls_scores = self.fc_cls(outs_dec)
        all_bbox_preds = self.fc_reg(self.activate(self.reg_ffn(outs_dec))).sigmoid()
        return all_cls_scores, all_bbox_preds

    # ------------------------------------------------------------- training
    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None = None,
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
        proposal_cfg: Cfg | None = None,
    ) -> Any:
        """The losses (v2: no proposals, no ignored boxes)."""
        if proposal_cfg is not None:
            raise InvalidArgumentError(
                f"{type(self).__name__} makes no proposals (proposal_cfg given)"
            )
        if gt_labels is None:
            raise InvalidArgumentError(f"{type(self).__name__} needs gt_labels")
        loss: Callable[..., dict[str, Any]] = self.loss  # outputs first, however many (v2)
        return loss(*self(x, img_metas), gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)

    def loss(
        self,
        all_cls_scores_list: Sequence[torch.Tensor],
        all_bbox_preds_list: Sequence[torch.Tensor],
        gt_bboxes_list: Sequence[torch.Tensor],
        gt_labels_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """Per decoder layer ``loss_cls``/``loss_bbox``/``loss_iou`` of the last level."""
        self._check_no_ignored(gt_bboxes_ignore)
        return self._decoder_losses(
            all_cls_scores_list[-1],
            all_bbox_preds_list[-1],
            gt_bboxes_list,
            gt_labels_list,
            img_metas,
        )

    def _check_no_ignored(self, gt_bboxes_ignore: Sequence[torch.Tensor] | None) -> None:
        """v2 accepts no ignored boxes here; empty ones (a pipeline's default) are fine."""
        if gt_bboxes_ignore is not None and any(len(b) for b in gt_bboxes_ignore):
            raise InvalidArgumentError(
                f"{type(self).__name__} does not support gt_bboxes_ignore (v2); leave it out "
                "of the pipeline's Collect keys"
            )

    def _decoder_losses(
        self,
        all_cls_scores: torch.Tensor,
        all_bbox_preds: torch.Tensor,
        gt_bboxes_list: Sequence[torch.Tensor],
        gt_labels_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        losses: dict[str, Any] = {}
        num_layers = len(all_cls_scores)
        for i in range(num_layers):
            loss_cls, loss_bbox, loss_iou = self.loss_single(
                all_cls_scores[i], all_bbox_preds[i], gt_bboxes_list, gt_labels_list, img_metas
            )
            prefix = "" if i == num_layers - 1 else f"d{i}."
            losses[f"{prefix}loss_cls"] = loss_cls
            losses[f"{prefix}loss_bbox"] = loss_bbox
            losses[f"{prefix}loss_iou"] = loss_iou
        # v2's order: the last layer's losses first, then d0, d1, ...
        last = {k: losses.pop(k) for k in ("loss_cls", "loss_bbox", "loss_iou")}
        return {**last, **losses}

    def loss_single(
        self,
        cls_scores: torch.Tensor,
        bbox_preds: torch.Tensor,
        gt_bboxes_list: Sequence[torch.Tensor],
        gt_labels_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder layer's ``(loss_cls, loss_bbox, loss_iou)`` over the batch."""
        if self.assigner is None:
            raise InvalidArgumentError(f"{type(self).__name__}: losses need train_cfg.assigner")
        targets = []
        num_pos = num_neg = 0
        for cls_score, bbox_pred, gt_bboxes, gt_labels, meta in zip(
            cls_scores, bbox_preds, gt_bboxes_list, gt_labels_list, img_metas, strict=True
        ):
            assign = self.assigner.assign(bbox_pred, cls_score, gt_bboxes, gt_labels, meta)
            sampling = self.sampler.sample(assign, bbox_pred, gt_bboxes)
            num_pos += sampling.pos_inds.numel()
            num_neg += sampling.neg_inds.numel()
            targets.append(
                query_targets(
                    sampling.pos_inds,
                    sampling.pos_assigned_gt_inds,
                    gt_bboxes,
                    gt_labels,
                    bbox_pred.shape[0],
                    self.num_classes,
                    meta["img_shape"],
                )
            )
        labels, label_weights, bbox_targets, bbox_weights = (
            torch.cat(t, 0) for t in zip(*targets, strict=True)
        )
        cls_scores = cls_scores.reshape(-1, self.cls_out_channels)
        cls_avg: Any = num_pos * 1.0 + num_neg * self.bg_cls_weight
        if self.sync_cls_avg_factor:
            cls_avg = reduce_mean(cls_scores.new_tensor([cls_avg]))
        cls_avg = max(cls_avg, 1)
        loss_cls = self.loss_cls(cls_scores, labels, label_weights, avg_factor=cls_avg)
        pos_avg = self._num_pos_avg(num_pos, loss_cls.device)
        factors = torch.cat(
            [
                pred.new_tensor([m["img_shape"][1], m["img_shape"][0]] * 2)
                .unsqueeze(0)
                .repeat(pred.shape[0], 1)
                for m, pred in zip(img_metas, bbox_preds, strict=True)
            ],
            0,
        )
        bbox_preds = bbox_preds.reshape(-1, 4)
        bboxes = bbox_cxcywh_to_xyxy(bbox_preds) * factors
        bboxes_gt = bbox_cxcywh_to_xyxy(bbox_targets) * factors
        loss_iou = self.loss_iou(bboxes, bboxes_gt, bbox_weights, avg_factor=pos_avg)
        loss_bbox = self.loss_bbox(bbox_preds, bbox_targets, bbox_weights, avg_factor=pos_avg)
        return loss_cls, loss_bbox, loss_iou

    # ------------------------------------------------------------ inference
    def simple_test_bboxes(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta], rescale: bool = False
    ) -> list[tuple[torch.Tensor, ...]]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])``."""
        get_bboxes: Callable[..., list[tuple[torch.Tensor, ...]]] = self.get_bboxes
        return get_bboxes(*self(feats, img_metas), img_metas=img_metas, rescale=rescale)

    def get_bboxes(  # type: ignore[override]  # v2's signature of this head
        self,
        all_cls_scores_list: Sequence[torch.Tensor],
        all_bbox_preds_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        rescale: bool = False,
    ) -> list[tuple[torch.Tensor, ...]]:
        """Detections of the last level's last decoder layer."""
        return self._query_detections(
            all_cls_scores_list[-1][-1], all_bbox_preds_list[-1][-1], img_metas, rescale
        )

    def _query_detections(
        self,
        cls_scores: torch.Tensor,
        bbox_preds: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        rescale: bool,
    ) -> list[tuple[torch.Tensor, ...]]:
        max_per_img = int((self.test_cfg or {}).get("max_per_img", self.num_query))
        return [
            query_detections(
                cls_scores[i],
                bbox_preds[i],
                meta["img_shape"],
                meta["scale_factor"],
                max_per_img,
                self.use_sigmoid_cls,
                rescale,
            )
            for i, meta in enumerate(img_metas)
        ]

    def aug_test(
        self,
        feats: Sequence[Sequence[torch.Tensor]],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError(f"{type(self).__name__} has no test-time augmentation (v2)")
