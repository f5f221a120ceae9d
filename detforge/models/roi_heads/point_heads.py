"""PointRend's heads (v2): ``CoarseMaskHead`` and ``MaskPointHead``, and the uncertainty-based
point selection they are trained and refined with.

* ``CoarseMaskHead`` turns the ``14 x 14`` mask RoI features into ``7 x 7`` per-class logits:
  optional convs, a ``downsample_factor`` x ``downsample_factor`` stride conv, fcs and
  ``fc_logits`` (``num_classes * 7 * 7`` outputs).
* ``MaskPointHead`` classifies single points from the FPN features sampled there
  (``fine-grained``) concatenated with the coarse logits sampled there, with 1x1 ``Conv1d``
  layers (the coarse logits are appended again after each one with
  ``coarse_pred_each_layer``).

Uncertainty of a logit is ``-|logit|`` of the RoI's class (the channel itself for one
channel). Training points (:func:`uncertain_points_with_randomness`, v2's numerics): draw
``num_points * oversample_ratio`` uniform points per RoI, keep the
``int(importance_sample_ratio * num_points)`` most uncertain (of the coarse logits sampled
there) and add uniform points to ``num_points``. Test points
(:meth:`MaskPointHead.get_roi_rel_points_test`): the ``subdivision_num_points`` most uncertain
cells of the upsampled mask, at their cell centres.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, cast

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.roi_heads.mask_heads import FCNMaskHead, as_instance_masks
from detforge.ops import point_sample, rel_roi_point_to_rel_img_point
from detforge.registry import MODELS, Cfg, build_module, plain_cfg

__all__ = [
    "CoarseMaskHead",
    "MaskPointHead",
    "point_uncertainty",
    "uncertain_points_with_randomness",
]

_COARSE_INIT: Cfg = MappingProxyType(
    {
        "type": "Xavier",
        "override": [{"name": "fcs"}, {"type": "Constant", "val": 0.001, "name": "fc_logits"}],
    }
)
_POINT_INIT: Cfg = MappingProxyType(
    {"type": "Normal", "std": 0.001, "override": {"name": "fc_logits"}}
)
_POINT_LOSS: Cfg = MappingProxyType(
    {"type": "CrossEntropyLoss", "use_mask": True, "loss_weight": 1.0}
)
_CONV1D: Cfg = MappingProxyType({"type": "Conv1d"})
_RELU: Cfg = MappingProxyType({"type": "ReLU"})


def point_uncertainty(mask_pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``-|logit|`` of each RoI's class: ``Tensor[N, 1, ...]`` from logits ``[N, C, ...]``.

    Example:
        >>> point_uncertainty(torch.tensor([[[-3., 0.5]], [[2., 0.]]]).view(2, 1, 2),
        ...                   torch.tensor([0, 0])).tolist()
        [[[-3.0, -0.5]], [[-2.0, -0.0]]]
    """
    if mask_pred.shape[1] == 1:
        logits = mask_pred.clone()
    else:
        rows = torch.arange(mask_pred.shape[0], device=mask_pred.device)
        logits = mask_pred[rows, labels].unsqueeze(1)
    return -torch.abs(logits)


def uncertain_points_with_randomness(
    mask_pred: torch.Tensor,
    labels: torch.Tensor,
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
) -> torch.Tensor:
    """Training points ``Tensor[N, num_points, 2]`` in ``[0, 1]^2`` of each RoI (module
    docstring); draws from ``torch``'s generator in v2's order.

    Raises:
        ValueError: ``oversample_ratio < 1`` or ``importance_sample_ratio`` outside ``[0, 1]``.
    """
    if oversample_ratio < 1 or not 0 <= importance_sample_ratio <= 1:
        raise InvalidArgumentError(
            f"PointRend: oversample_ratio must be >= 1 and importance_sample_ratio in [0, 1], "
            f"got {oversample_ratio} and {importance_sample_ratio}"
        )
    num = mask_pred.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(num, num_sampled, 2, device=mask_pred.device)
    uncertainty = point_uncertainty(point_sample(mask_pred, coords), labels)
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = torch.topk(uncertainty[:, 0, :], k=num_uncertain, dim=1)[1]
    idx = idx + num_sampled * torch.arange(num, dtype=torch.long, device=mask_pred.device)[:, None]
    coords = coords.view(-1, 2)[idx.view(-1), :].view(num, num_uncertain, 2)
    if num_points > num_uncertain:
        uniform = torch.rand(num, num_points - num_uncertain, 2, device=mask_pred.device)
        coords = torch.cat((coords, uniform), dim=1)
    return coords


@MODELS.register_module()
class CoarseMaskHead(FCNMaskHead):
    """PointRend's coarse mask head (``mmdet`` v2 ``CoarseMaskHead``).

    State-dict keys: ``convs.{i}.conv``, ``downsample_conv.conv``, ``fcs.{i}``, ``fc_logits``
    (no ``conv_logits``).

    Args:
        num_convs: 3x3 convs before the downsampling.
        num_fcs: Fully connected layers (at least one).
        fc_out_channels: Width of the fcs.
        downsample_factor: Kernel and stride of ``downsample_conv`` (1: none).
        init_cfg: Initialisation (default Xavier fcs, ``fc_logits`` constant 0.001).
        **kwargs: :class:`FCNMaskHead`'s other arguments (``in_channels``, ``roi_feat_size``,
            ``conv_out_channels``, ``num_classes``, ``loss_mask``...; no upsampling).

    Example:
        >>> head = CoarseMaskHead(in_channels=4, conv_out_channels=4, fc_out_channels=8,
        ...                       num_classes=3)
        >>> head(torch.rand(2, 4, 14, 14)).shape
        torch.Size([2, 3, 7, 7])
    """

    def __init__(
        self,
        num_convs: int = 0,
        num_fcs: int = 2,
        fc_out_channels: int = 1024,
        downsample_factor: int = 2,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_convs=num_convs, upsample_cfg=dict(type=None), **kwargs)
        if num_fcs < 1 or downsample_factor < 1:
            raise InvalidArgumentError(
                f"CoarseMaskHead: needs num_fcs >= 1 and downsample_factor >= 1, got "
                f"{num_fcs} and {downsample_factor}"
            )
        self.init_cfg = plain_cfg(_COARSE_INIT if init_cfg is None else init_cfg)
        self.num_fcs = num_fcs
        self.fc_out_channels = fc_out_channels
        self.downsample_factor = downsample_factor
        del self.conv_logits
        self.downsample_conv: ConvModule | None = None
        if downsample_factor > 1:
            self.downsample_conv = ConvModule(
                self.conv_out_channels if num_convs > 0 else self.in_channels,
                self.conv_out_channels,
                kernel_size=downsample_factor,
                stride=downsample_factor,
                padding=0,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
            )
        self.output_size = (
            self.roi_feat_size[0] // downsample_factor,
            self.roi_feat_size[1] // downsample_factor,
        )
        area = self.output_size[0] * self.output_size[1]
        self.fcs = nn.ModuleList(
            nn.Linear(self.conv_out_channels * area if i == 0 else fc_out_channels, fc_out_channels)
            for i in range(num_fcs)
        )
        self.fc_logits = nn.Linear(fc_out_channels, self.num_classes * area)

    def init_weights(self) -> None:
        """``init_cfg``, then the ConvModules' defaults (v2's ``BaseModule.init_weights``)."""
        apply_init_cfg(self, self.init_cfg)
        for conv in self.convs:
            cast(ConvModule, conv).init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse logits ``Tensor[K, num_classes, h / f, w / f]``."""
        for conv in self.convs:
            x = conv(x)
        if self.downsample_conv is not None:
            x = self.downsample_conv(x)
        x = x.flatten(1)
        for fc in self.fcs:
            x = self.relu(fc(x))
        logits: torch.Tensor = self.fc_logits(x)
        return logits.view(x.size(0), self.num_classes, *self.output_size)


@MODELS.register_module()
class MaskPointHead(nn.Module):
    """PointRend's point head (``mmdet`` v2 ``MaskPointHead``).

    State-dict keys: ``fcs.{i}.conv``, ``fc_logits``.

    Args:
        num_classes: Foreground classes.
        num_fcs: 1x1 conv layers.
        in_channels: Channels of the fine-grained (FPN) features.
        fc_channels: Channels of the layers.
        class_agnostic: One output channel instead of one per class.
        coarse_pred_each_layer: Append the coarse logits after every layer.
        conv_cfg: Conv layer config (``Conv1d``).
        norm_cfg: Norm layer config.
        act_cfg: Activation config.
        loss_point: Loss config (default mask cross-entropy).
        init_cfg: Initialisation (default ``Normal(std=0.001)`` for ``fc_logits``).

    Example:
        >>> head = MaskPointHead(num_classes=3, num_fcs=1, in_channels=4, fc_channels=8)
        >>> head(torch.rand(2, 4, 5), torch.rand(2, 3, 5)).shape
        torch.Size([2, 3, 5])
    """

    def __init__(
        self,
        num_classes: int,
        num_fcs: int = 3,
        in_channels: int = 256,
        fc_channels: int = 256,
        class_agnostic: bool = False,
        coarse_pred_each_layer: bool = True,
        conv_cfg: Cfg | None = _CONV1D,
        norm_cfg: Cfg | None = None,
        act_cfg: Cfg | None = _RELU,
        loss_point: Cfg | nn.Module = _POINT_LOSS,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        self.num_fcs = num_fcs
        self.in_channels = in_channels
        self.fc_channels = fc_channels
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        self.coarse_pred_each_layer = coarse_pred_each_layer
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.init_cfg = plain_cfg(_POINT_INIT if init_cfg is None else init_cfg)
        self.loss_point = build_module(loss_point, MODELS)
        fcs = []
        channels = in_channels + num_classes
        for _ in range(num_fcs):
            fcs.append(
                ConvModule(
                    channels,
                    fc_channels,
                    kernel_size=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=act_cfg,
                )
            )
            channels = fc_channels + (num_classes if coarse_pred_each_layer else 0)
        self.fcs = nn.ModuleList(fcs)
        self.fc_logits = nn.Conv1d(channels, 1 if class_agnostic else num_classes, 1)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def forward(self, fine_grained_feats: torch.Tensor, coarse_feats: torch.Tensor) -> torch.Tensor:
        """Point logits ``[N, num_classes, P]`` from ``[N, in_channels, P]`` and
        ``[N, num_classes, P]``."""
        x = torch.cat([fine_grained_feats, coarse_feats], dim=1)
        for fc in self.fcs:
            x = fc(x)
            if self.coarse_pred_each_layer:
                x = torch.cat((x, coarse_feats), dim=1)
        logits: torch.Tensor = self.fc_logits(x)
        return logits

    def get_targets(
        self,
        rois: torch.Tensor,
        rel_roi_points: torch.Tensor,
        sampling_results: Sequence[Any],
        gt_masks: Sequence[Any],
        cfg: Cfg,
    ) -> torch.Tensor:
        """``Tensor[N, P]``: the ground-truth mask of each positive RoI sampled (bilinearly)
        at its points; ``rois`` are the positives (``bbox2roi`` order)."""
        targets = []
        for i, (res, masks) in enumerate(zip(sampling_results, gt_masks, strict=True)):
            inds = rois[:, 0] == i
            if not inds.any():
                targets.append(rois.new_zeros((0, rel_roi_points.shape[1])))
                continue
            gt = as_instance_masks(masks, "MaskPointHead").to_tensor(rois.dtype, rois.device)
            gt = gt.index_select(0, res.pos_assigned_gt_inds.to(rois.device)).unsqueeze(1)
            points = rel_roi_point_to_rel_img_point(
                rois[inds], rel_roi_points[inds], (gt.shape[2], gt.shape[3])
            )
            targets.append(point_sample(gt, points).squeeze(1))
        if not targets:
            return rois.new_zeros((0, rel_roi_points.shape[1]))
        return torch.cat(targets)

    def loss(
        self, point_pred: torch.Tensor, point_targets: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``loss_point``: the mask cross-entropy at the points (0 without RoIs)."""
        if point_pred.shape[0] == 0:
            return dict(loss_point=point_pred.sum() * 0)
        if self.class_agnostic:
            labels = torch.zeros_like(labels)
        return dict(loss_point=self.loss_point(point_pred, point_targets, labels))

    def get_roi_rel_points_train(
        self, mask_pred: torch.Tensor, labels: torch.Tensor, cfg: Cfg
    ) -> torch.Tensor:
        """Training points ``[N, num_points, 2]`` (``num_points``, ``oversample_ratio``,
        ``importance_sample_ratio`` from ``cfg``)."""
        return uncertain_points_with_randomness(
            mask_pred,
            labels,
            int(cfg["num_points"]),
            float(cfg["oversample_ratio"]),
            float(cfg["importance_sample_ratio"]),
        )

    def get_roi_rel_points_test(
        self, mask_pred: torch.Tensor, pred_label: torch.Tensor, cfg: Cfg
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``subdivision_num_points`` most uncertain cells of ``mask_pred [N, C, h, w]``:
        their flat indices ``[N, P]`` and centres ``[N, P, 2]`` in ``[0, 1]^2``."""
        uncertainty = point_uncertainty(mask_pred, pred_label)
        num, _, height, width = uncertainty.shape
        num_points = min(height * width, int(cfg["subdivision_num_points"]))
        indices = uncertainty.view(num, height * width).topk(num_points, dim=1)[1]
        w_step, h_step = 1.0 / width, 1.0 / height  # v2's float arithmetic, step by step
        xs = w_step / 2.0 + (indices % width).float() * w_step
        ys = h_step / 2.0 + torch.div(indices, width, rounding_mode="floor").float() * h_step
        return indices, torch.stack([xs, ys], dim=2)
