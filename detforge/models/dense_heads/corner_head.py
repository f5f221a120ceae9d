"""``CornerHead``: CornerNet (Law & Deng 2018), MMDetection v2.28 layout and numerics.

Per feature level (2 for Hourglass-104: the intermediate supervision and the final stack),
a top-left and a bottom-right :class:`BiCornerPool` (corner pooling in two directions) feed
three branches each: the corner heatmap (logits), the sub-pixel offset and, with
``corner_emb_channels > 0``, the associative embedding. Targets and pairing are in
:mod:`detforge.models.dense_heads.corner_targets`.

Corner pooling is written in PyTorch: pooling towards the top is a cumulative maximum from the
bottom row upwards (``torch.cummax`` on the flipped map), and so on; mmcv's ``CornerPool`` does
the same on PyTorch >= 1.5, so values and gradients are mmcv's.

Losses per level (lists, v2's names): ``det_loss`` (GaussianFocalLoss of the sigmoid heatmaps,
each corner averaged over its cells equal to 1), ``off_loss`` (SmoothL1 on the corner cells
only), ``pull_loss``/``push_loss`` (:class:`AssociativeEmbeddingLoss`); top-left and
bottom-right are averaged. Only the last level is decoded at test time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import ConfigKeyError, InvalidArgumentError
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.dense_heads.corner_targets import corner_targets, decode_corners
from detforge.models.layers import ConvModule, bias_init_with_prob
from detforge.ops import batched_nms
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = ["BiCornerPool", "CornerHead", "corner_pool"]

#: direction -> (dim, flip): the cumulative maximum runs towards ``direction``
_POOL_DIMS = {"top": (2, True), "bottom": (2, False), "left": (3, True), "right": (3, False)}


def corner_pool(x: torch.Tensor, direction: str) -> torch.Tensor:
    """Corner pooling of ``x [B, C, H, W]``: each cell takes the maximum of all cells from it
    to the border opposite ``direction`` (``'top'``: the cells below it, itself included).

    Example:
        >>> corner_pool(torch.tensor([[[[1., 3., 2.]]]]), 'left')
        tensor([[[[3., 3., 2.]]]])
    """
    if direction not in _POOL_DIMS:
        raise InvalidArgumentError(f"corner_pool: direction must be one of {sorted(_POOL_DIMS)}")
    dim, flip = _POOL_DIMS[direction]
    if flip:
        x = x.flip(dim)
    pooled = torch.cummax(x, dim=dim)[0]
    return pooled.flip(dim) if flip else pooled


class BiCornerPool(nn.Module):
    """Two-direction corner pooling module (v2's ``BiCornerPool``, same state_dict keys).

    ``conv2(relu(aftpool_conv(pool1(direction1_conv(x)) + pool2(direction2_conv(x)))
    + conv1(x)))``.

    Args:
        in_channels: Input channels.
        directions: The two pooling directions (``('top', 'left')`` for top-left corners).
        feat_channels: Channels of the convs before pooling.
        out_channels: Output channels.
        norm_cfg: Norm layer of every conv.
    """

    def __init__(
        self,
        in_channels: int,
        directions: Sequence[str],
        feat_channels: int = 128,
        out_channels: int = 128,
        norm_cfg: Cfg = MappingProxyType(dict(type="BN", requires_grad=True)),
    ) -> None:
        super().__init__()
        for direction in directions:
            if direction not in _POOL_DIMS:
                raise InvalidArgumentError(f"BiCornerPool: unknown direction {direction!r}")
        self.directions = tuple(directions)
        norm = dict(norm_cfg)
        self.direction1_conv = ConvModule(in_channels, feat_channels, 3, padding=1, norm_cfg=norm)
        self.direction2_conv = ConvModule(in_channels, feat_channels, 3, padding=1, norm_cfg=norm)
        self.aftpool_conv = ConvModule(
            feat_channels, out_channels, 3, padding=1, norm_cfg=norm, act_cfg=None
        )
        self.conv1 = ConvModule(in_channels, out_channels, 1, norm_cfg=norm, act_cfg=None)
        self.conv2 = ConvModule(in_channels, out_channels, 3, padding=1, norm_cfg=norm)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = corner_pool(self.direction1_conv(x), self.directions[0]) + corner_pool(
            self.direction2_conv(x), self.directions[1]
        )
        out: torch.Tensor = self.conv2(self.relu(self.aftpool_conv(pooled) + self.conv1(x)))
        return out


def branch(in_channels: int, out_channels: int, feat_channels: int = 256) -> nn.Sequential:
    """3x3 ConvModule + ReLU, then a 1x1 conv (keys ``0.conv.*``, ``1.conv.*``, as v2)."""
    return nn.Sequential(
        ConvModule(in_channels, feat_channels, 3, padding=1),
        ConvModule(feat_channels, out_channels, 1, norm_cfg=None, act_cfg=None),
    )


def _branches(num: int, in_channels: int, out_channels: int) -> nn.ModuleList:
    return nn.ModuleList(branch(in_channels, out_channels) for _ in range(num))


def _optional(cfg: Cfg | nn.Module | None) -> Any:
    return None if cfg is None else build_module(cfg, MODELS)


def off_mask(heatmap_target: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]``: 1 on the cells where some class's target is exactly 1."""
    return heatmap_target.eq(1).sum(1).gt(0).unsqueeze(1).type_as(heatmap_target)


@MODELS.register_module()
class CornerHead(BaseDenseHead):
    """CornerNet's head (see the module docstring).

    Args:
        num_classes: Foreground classes (heatmap channels).
        in_channels: Channels of each input map (and of the corner pools' outputs).
        num_feat_levels: Input maps (2 for Hourglass-104, 1 for Hourglass-52).
        corner_emb_channels: Embedding channels (0: no embedding branch).
        train_cfg: Unused (v2 accepts ``None``).
        test_cfg: ``corner_topk``, ``local_maximum_kernel``, ``distance_threshold``,
            ``max_per_img``, ``nms`` (or the older ``nms_cfg``); ``score_thr`` is accepted and,
            as in v2, unused.
        loss_heatmap: Corner heatmap loss (GaussianFocalLoss).
        loss_embedding: Embedding loss (AssociativeEmbeddingLoss), or ``None``.
        loss_offset: Offset loss (SmoothL1Loss).
        init_cfg: Must be ``None`` (v2 refuses it too): :meth:`init_weights` is v2's.

    Raises:
        ConfigKeyError: ``init_cfg`` is given.
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = frozenset()
    TEST_CFG_KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "corner_topk",
            "local_maximum_kernel",
            "distance_threshold",
            "score_thr",
            "max_per_img",
            "nms",
            "nms_cfg",
        }
    )

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        num_feat_levels: int = 2,
        corner_emb_channels: int = 1,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        loss_heatmap: Cfg | nn.Module | None = MappingProxyType(
            dict(type="GaussianFocalLoss", alpha=2.0, gamma=4.0, loss_weight=1)
        ),
        loss_embedding: Cfg | nn.Module | None = MappingProxyType(
            dict(type="AssociativeEmbeddingLoss", pull_weight=0.25, push_weight=0.25)
        ),
        loss_offset: Cfg | nn.Module | None = MappingProxyType(
            dict(type="SmoothL1Loss", beta=1.0, loss_weight=1)
        ),
        init_cfg: Any = None,
    ) -> None:
        if init_cfg is not None:
            raise ConfigKeyError(
                f"{type(self).__name__}: init_cfg must be None (got {init_cfg!r}); its "
                "init_weights is v2's"
            )
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=256,
            loss_cls=None,
            loss_bbox=None,
            bbox_coder=None,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=None,
        )
        self.num_feat_levels = num_feat_levels
        self.corner_emb_channels = corner_emb_channels
        self.with_corner_emb = corner_emb_channels > 0
        self.loss_heatmap: Any = _optional(loss_heatmap)
        self.loss_embedding: Any = _optional(loss_embedding)
        self.loss_offset: Any = _optional(loss_offset)
        levels = range(num_feat_levels)
        self.tl_pool = nn.ModuleList(
            BiCornerPool(in_channels, ("top", "left"), out_channels=in_channels) for _ in levels
        )
        self.br_pool = nn.ModuleList(
            BiCornerPool(in_channels, ("bottom", "right"), out_channels=in_channels) for _ in levels
        )
        self.tl_heat = _branches(num_feat_levels, in_channels, num_classes)
        self.br_heat = _branches(num_feat_levels, in_channels, num_classes)
        self.tl_off = _branches(num_feat_levels, in_channels, 2)
        self.br_off = _branches(num_feat_levels, in_channels, 2)
        if self.with_corner_emb:
            self.tl_emb = _branches(num_feat_levels, in_channels, corner_emb_channels)
            self.br_emb = _branches(num_feat_levels, in_channels, corner_emb_channels)

    def init_weights(self) -> None:
        """v2's: the last conv of every branch back to PyTorch's default init (the ConvModules
        keep their Kaiming init), heatmap biases ``-log(9)`` (probability 0.1)."""
        names = ["tl_heat", "br_heat", "tl_off", "br_off"]
        if self.with_corner_emb:
            names += ["tl_emb", "br_emb"]
        with torch.no_grad():
            for name in names:
                for level in getattr(self, name):
                    level[-1].conv.reset_parameters()
                    if name.endswith("heat"):
                        level[-1].conv.bias.fill_(bias_init_with_prob(0.1))

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[Any], ...]:
        """Per level the outputs of :meth:`forward_single`, as lists over the levels."""
        if len(feats) != self.num_feat_levels:
            raise InvalidArgumentError(
                f"{type(self).__name__}: {len(feats)} feature maps for num_feat_levels="
                f"{self.num_feat_levels}"
            )
        outs = [self.forward_single(x, level) for level, x in enumerate(feats)]
        return tuple(list(column) for column in zip(*outs, strict=True))

    def corner_features(self, x: torch.Tensor, level: int) -> tuple[torch.Tensor, ...]:
        """``(tl_heat, br_heat, tl_off, br_off, tl_pool, br_pool)`` of one level."""
        tl_pool = self.tl_pool[level](x)
        br_pool = self.br_pool[level](x)
        return (
            self.tl_heat[level](tl_pool),
            self.br_heat[level](br_pool),
            self.tl_off[level](tl_pool),
            self.br_off[level](br_pool),
            tl_pool,
            br_pool,
        )

    def forward_single(self, x: torch.Tensor, level: int) -> tuple[Any, ...]:
        """``(tl_heat, br_heat, tl_emb, br_emb, tl_off, br_off)`` (embeddings ``None``
        without the embedding branch)."""
        tl_heat, br_heat, tl_off, br_off, tl_pool, br_pool = self.corner_features(x, level)
        tl_emb = self.tl_emb[level](tl_pool) if self.with_corner_emb else None
        br_emb = self.br_emb[level](br_pool) if self.with_corner_emb else None
        return tl_heat, br_heat, tl_emb, br_emb, tl_off, br_off

    # ------------------------------------------------------------------ losses
    def corner_losses(
        self,
        tl_hmp: torch.Tensor,
        br_hmp: torch.Tensor,
        tl_off: torch.Tensor,
        br_off: torch.Tensor,
        targets: Mapping[str, Any],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One level's ``(det_loss, off_loss)``, top-left and bottom-right averaged."""
        gt_tl, gt_br = targets["topleft_heatmap"], targets["bottomright_heatmap"]
        tl_det = self.loss_heatmap(tl_hmp.sigmoid(), gt_tl, avg_factor=max(1, gt_tl.eq(1).sum()))
        br_det = self.loss_heatmap(br_hmp.sigmoid(), gt_br, avg_factor=max(1, gt_br.eq(1).sum()))
        # offsets are learnt at the true corner cells only (class-agnostic mask)
        tl_mask, br_mask = off_mask(gt_tl), off_mask(gt_br)
        tl_off_loss = self.loss_offset(
            tl_off, targets["topleft_offset"], tl_mask, avg_factor=max(1, tl_mask.sum())
        )
        br_off_loss = self.loss_offset(
            br_off, targets["bottomright_offset"], br_mask, avg_factor=max(1, br_mask.sum())
        )
        return (tl_det + br_det) / 2.0, (tl_off_loss + br_off_loss) / 2.0

    def loss(
        self,
        tl_heats: Sequence[torch.Tensor],
        br_heats: Sequence[torch.Tensor],
        tl_embs: Sequence[torch.Tensor | None],
        br_embs: Sequence[torch.Tensor | None],
        tl_offs: Sequence[torch.Tensor],
        br_offs: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``det_loss``, ``off_loss`` (and ``pull_loss``, ``push_loss``) per level."""
        targets = corner_targets(
            gt_bboxes,
            gt_labels,
            self.num_classes,
            tl_heats[-1].shape,
            img_metas[0]["pad_shape"],
            with_corner_emb=self.with_corner_emb,
        )
        losses: dict[str, list[torch.Tensor]] = dict(det_loss=[], off_loss=[])
        if self.with_corner_emb and self.loss_embedding is not None:
            losses.update(pull_loss=[], push_loss=[])
        for level in range(len(tl_heats)):
            det, off = self.corner_losses(
                tl_heats[level], br_heats[level], tl_offs[level], br_offs[level], targets
            )
            losses["det_loss"].append(det)
            losses["off_loss"].append(off)
            if "pull_loss" in losses:
                pull, push = self.loss_embedding(
                    tl_embs[level], br_embs[level], targets["corner_embedding"]
                )
                losses["pull_loss"].append(pull)
                losses["push_loss"].append(push)
        return losses

    # --------------------------------------------------------------- inference
    def get_bboxes(  # type: ignore[override]
        self,
        tl_heats: Sequence[torch.Tensor],
        br_heats: Sequence[torch.Tensor],
        tl_embs: Sequence[torch.Tensor | None],
        br_embs: Sequence[torch.Tensor | None],
        tl_offs: Sequence[torch.Tensor],
        br_offs: Sequence[torch.Tensor],
        img_metas: Sequence[Any],
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])`` from the last level."""
        maps = dict(
            tl_heat=tl_heats[-1],
            br_heat=br_heats[-1],
            tl_off=tl_offs[-1],
            br_off=br_offs[-1],
            tl_emb=tl_embs[-1],
            br_emb=br_embs[-1],
        )
        return self.decode_batch(maps, img_metas, rescale=rescale, with_nms=with_nms)

    def decode_batch(
        self,
        maps: Mapping[str, torch.Tensor | None],
        img_metas: Sequence[Any],
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`get_bboxes_single` of every image of the batch ``maps``."""
        return [
            self.get_bboxes_single(i, maps, meta, rescale=rescale, with_nms=with_nms)
            for i, meta in enumerate(img_metas)
        ]

    def get_bboxes_single(
        self,
        img_id: int,
        maps: Mapping[str, torch.Tensor | None],
        img_meta: Any,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``img_id``'s detections from the batch ``maps`` (the keyword arguments of
        :func:`decode_corners`; heatmaps as logits). ``img_meta`` may be a one-element list
        (an augmented view, v2)."""
        if isinstance(img_meta, list | tuple):
            img_meta = img_meta[0]
        cfg = self._test_cfg(None)
        one = {k: None if v is None else v[img_id : img_id + 1] for k, v in maps.items()}
        for key in ("tl_heat", "br_heat"):
            heat = one[key]
            assert heat is not None
            one[key] = heat.sigmoid()
        bboxes, scores, labels = decode_corners(
            img_meta=img_meta,
            k=cfg["corner_topk"],
            kernel=cfg["local_maximum_kernel"],
            distance_threshold=cfg["distance_threshold"],
            **one,  # type: ignore[arg-type]
        )
        if rescale:
            bboxes /= bboxes.new_tensor(img_meta["scale_factor"])
        dets = torch.cat([bboxes.view(-1, 4), scores.view(-1, 1)], -1)
        keep = dets[:, -1] > -0.1
        dets, det_labels = dets[keep], labels.view(-1)[keep].long()
        if with_nms:
            dets, det_labels = self.bboxes_nms(dets, det_labels)
        return dets, det_labels

    def bboxes_nms(
        self, bboxes: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class-wise NMS (``test_cfg.nms``, else ``nms_cfg``), at most ``max_per_img``."""
        cfg = self._test_cfg(None)
        if labels.numel() == 0:
            return bboxes, labels
        nms_cfg = cfg["nms"] if "nms" in cfg else cfg["nms_cfg"]
        dets, keep = batched_nms(bboxes[:, :4], bboxes[:, -1].contiguous(), labels, nms_cfg)
        max_num = cfg["max_per_img"]
        if max_num > 0:
            return dets[:max_num], labels[keep][:max_num]
        return dets, labels[keep]
