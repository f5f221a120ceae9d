"""``CentripetalHead``: CentripetalNet (Dong et al. 2020), MMDetection v2.28 layout and numerics.

A :class:`CornerHead` without embeddings whose corners are paired by centripetal shifts: per
level and corner, a guiding-shift branch predicts the vector from the corner to the box centre;
a 1x1 conv turns the (detached) guiding shift into the offsets of a 3x3 deformable conv over the
corner-pooled features ("feature adaption"), on which the centripetal-shift branch predicts the
``log`` distances from the corner to the centre. Pairing: see
:func:`~detforge.models.dense_heads.corner_targets.decode_corners`.

Losses per level: CornerHead's ``det_loss`` and ``off_loss``, ``guiding_loss`` and
``centripetal_loss`` (SmoothL1 on the corner cells, averaged over their count), top-left and
bottom-right averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.corner_head import CornerHead, _branches, off_mask
from detforge.models.dense_heads.corner_targets import corner_targets
from detforge.models.layers import ConvModule, normal_init
from detforge.models.layers.dcn import DeformConv2d
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = ["CentripetalHead"]


@MODELS.register_module()
class CentripetalHead(CornerHead):
    """CentripetalNet's head (see the module docstring); the other arguments are
    :class:`CornerHead`'s (v2 configs set ``corner_emb_channels=0``).

    Args:
        centripetal_shift_channels: Must be 2.
        guiding_shift_channels: Must be 2.
        feat_adaption_conv_kernel: Kernel of the feature-adaption deformable conv.
        loss_guiding_shift: Guiding-shift loss (SmoothL1, weight 0.05).
        loss_centripetal_shift: Centripetal-shift loss (SmoothL1).

    Raises:
        ValueError: a shift has other than 2 channels.
    """

    def __init__(
        self,
        *,
        centripetal_shift_channels: int = 2,
        guiding_shift_channels: int = 2,
        feat_adaption_conv_kernel: int = 3,
        loss_guiding_shift: Cfg | nn.Module = MappingProxyType(
            dict(type="SmoothL1Loss", beta=1.0, loss_weight=0.05)
        ),
        loss_centripetal_shift: Cfg | nn.Module = MappingProxyType(
            dict(type="SmoothL1Loss", beta=1.0, loss_weight=1)
        ),
        **kwargs: Any,
    ) -> None:
        if centripetal_shift_channels != 2 or guiding_shift_channels != 2:
            raise InvalidArgumentError(
                "CentripetalHead: centripetal_shift_channels and guiding_shift_channels must "
                f"be 2, got {centripetal_shift_channels} and {guiding_shift_channels}"
            )
        super().__init__(**kwargs)
        self.feat_adaption_conv_kernel = kernel = feat_adaption_conv_kernel
        self.loss_guiding_shift: Any = build_module(loss_guiding_shift, MODELS)
        self.loss_centripetal_shift: Any = build_module(loss_centripetal_shift, MODELS)
        channels, levels = self.in_channels, range(self.num_feat_levels)
        # v2's registration order (the state_dict order): each kind for tl, then br
        for corner in ("tl", "br"):
            setattr(
                self,
                f"{corner}_feat_adaption",
                nn.ModuleList(DeformConv2d(channels, channels, kernel, 1, 1) for _ in levels),
            )
        for corner in ("tl", "br"):
            setattr(
                self,
                f"{corner}_dcn_offset",
                nn.ModuleList(
                    ConvModule(2, kernel**2 * 2, 1, bias=False, act_cfg=None) for _ in levels
                ),
            )
        for name in ("guiding_shift", "centripetal_shift"):
            for corner in ("tl", "br"):
                setattr(self, f"{corner}_{name}", _branches(len(levels), channels, 2))

    def init_weights(self) -> None:
        """v2's: CornerHead's, then N(0, 0.01²) feature adaption, N(0, 0.1²) offset convs and
        PyTorch's default init for every conv of the shift branches."""
        super().init_weights()
        for corner in ("tl", "br"):
            for level in range(self.num_feat_levels):
                normal_init(getattr(self, f"{corner}_feat_adaption")[level], std=0.01)
                normal_init(getattr(self, f"{corner}_dcn_offset")[level].conv, std=0.1)
                for name in ("guiding_shift", "centripetal_shift"):
                    for module in getattr(self, f"{corner}_{name}")[level]:
                        module.conv.reset_parameters()

    def forward_single(self, x: torch.Tensor, level: int) -> tuple[Any, ...]:
        """``(tl_heat, br_heat, tl_off, br_off, tl_guiding_shift, br_guiding_shift,
        tl_centripetal_shift, br_centripetal_shift)``."""
        tl_heat, br_heat, tl_off, br_off, tl_pool, br_pool = self.corner_features(x, level)
        shifts = {}
        for corner, pool in (("tl", tl_pool), ("br", br_pool)):
            guiding = getattr(self, f"{corner}_guiding_shift")[level](pool)
            offset = getattr(self, f"{corner}_dcn_offset")[level](guiding.detach())
            adapted = getattr(self, f"{corner}_feat_adaption")[level](pool, offset)
            shifts[corner] = (guiding, getattr(self, f"{corner}_centripetal_shift")[level](adapted))
        return (
            tl_heat,
            br_heat,
            tl_off,
            br_off,
            shifts["tl"][0],
            shifts["br"][0],
            shifts["tl"][1],
            shifts["br"][1],
        )

    def loss(  # type: ignore[override]
        self,
        tl_heats: Sequence[torch.Tensor],
        br_heats: Sequence[torch.Tensor],
        tl_offs: Sequence[torch.Tensor],
        br_offs: Sequence[torch.Tensor],
        tl_guiding_shifts: Sequence[torch.Tensor],
        br_guiding_shifts: Sequence[torch.Tensor],
        tl_centripetal_shifts: Sequence[torch.Tensor],
        br_centripetal_shifts: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``det_loss``, ``off_loss``, ``guiding_loss`` and ``centripetal_loss`` per level."""
        targets = corner_targets(
            gt_bboxes,
            gt_labels,
            self.num_classes,
            tl_heats[-1].shape,
            img_metas[0]["pad_shape"],
            with_guiding_shift=True,
            with_centripetal_shift=True,
        )
        tl_mask = off_mask(targets["topleft_heatmap"])
        br_mask = off_mask(targets["bottomright_heatmap"])
        losses: dict[str, list[torch.Tensor]] = dict(
            det_loss=[], off_loss=[], guiding_loss=[], centripetal_loss=[]
        )
        for level in range(len(tl_heats)):
            det, off = self.corner_losses(
                tl_heats[level], br_heats[level], tl_offs[level], br_offs[level], targets
            )
            losses["det_loss"].append(det)
            losses["off_loss"].append(off)
            for name, loss_fn, preds in (
                ("guiding", self.loss_guiding_shift, (tl_guiding_shifts, br_guiding_shifts)),
                (
                    "centripetal",
                    self.loss_centripetal_shift,
                    (tl_centripetal_shifts, br_centripetal_shifts),
                ),
            ):
                tl_loss = loss_fn(
                    preds[0][level],
                    targets[f"topleft_{name}_shift"],
                    tl_mask,
                    avg_factor=tl_mask.sum(),
                )
                br_loss = loss_fn(
                    preds[1][level],
                    targets[f"bottomright_{name}_shift"],
                    br_mask,
                    avg_factor=br_mask.sum(),
                )
                losses[f"{name}_loss"].append((tl_loss + br_loss) / 2.0)
        return losses

    def get_bboxes(  # type: ignore[override]
        self,
        tl_heats: Sequence[torch.Tensor],
        br_heats: Sequence[torch.Tensor],
        tl_offs: Sequence[torch.Tensor],
        br_offs: Sequence[torch.Tensor],
        tl_guiding_shifts: Sequence[torch.Tensor],
        br_guiding_shifts: Sequence[torch.Tensor],
        tl_centripetal_shifts: Sequence[torch.Tensor],
        br_centripetal_shifts: Sequence[torch.Tensor],
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
            tl_centripetal_shift=tl_centripetal_shifts[-1],
            br_centripetal_shift=br_centripetal_shifts[-1],
        )
        return self.decode_batch(maps, img_metas, rescale=rescale, with_nms=with_nms)
