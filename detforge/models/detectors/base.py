"""``BaseDetector``: the abstract base of every detector, with the v2 API they share.

``forward(img, img_metas, return_loss=True, **kwargs)`` dispatches to ``forward_train`` (a dict
of losses with the v2 names) or ``forward_test`` (``simple_test`` for one augmentation,
``aug_test`` for several). ``train_step``/``val_step`` return ``dict(loss, log_vars,
num_samples)`` as v2's runners expect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from detforge.errors import ConfigTypeError
from detforge.models.layers import apply_init_cfg
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = [
    "BaseDetector",
    "NeckCfg",
    "NeckSequence",
    "build_child",
    "build_neck",
    "check_no_pretrained",
    "parse_losses",
]

NeckCfg = Cfg | nn.Module | Sequence[Cfg | nn.Module]
"""A neck: a config dict or module, or a list of them applied in sequence."""


def parse_losses(losses: Mapping[str, Any]) -> tuple[torch.Tensor, OrderedDict[str, float]]:
    """Sum every entry whose name contains ``loss`` (lists are summed over levels).

    Returns:
        ``(loss, log_vars)``; ``log_vars`` holds plain floats (averaged over ranks when
        distributed) for every entry and ``'loss'``.

    Raises:
        TypeError: an entry is neither a tensor nor a list of tensors.
    """
    values: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, value in losses.items():
        if isinstance(value, torch.Tensor):
            values[name] = value.mean()
        elif isinstance(value, list | tuple):
            values[name] = sum((item.mean() for item in value), torch.tensor(0.0))
        else:
            raise TypeError(f"{name} is not a tensor or list of tensors")
    loss = sum((v for k, v in values.items() if "loss" in k), torch.tensor(0.0))
    values["loss"] = loss
    distributed = dist.is_available() and dist.is_initialized()
    log_vars: OrderedDict[str, float] = OrderedDict()
    for name, value in values.items():
        if distributed:
            value = value.detach().clone()
            dist.all_reduce(value.div_(dist.get_world_size()))
        log_vars[name] = float(value.item())
    return loss, log_vars


def check_no_pretrained(pretrained: str | None) -> None:
    """``model.pretrained`` (v2 < 2.13) is rewritten by the config loader; refuse it here.

    Raises:
        ValueError: ``pretrained`` is set.
    """
    if pretrained is not None:
        raise ValueError(
            "model.pretrained is deprecated: set model.backbone.init_cfg="
            "dict(type='Pretrained', checkpoint=...) (detforge's config loader rewrites it)"
        )


class BaseDetector(nn.Module, ABC):
    """The abstract base of every detector: backbone, optional neck and the v2 entry points.

    A subclass builds its heads and implements ``forward_train``, ``simple_test`` and
    ``aug_test``; the base class gives it v2's ``forward(img, img_metas, return_loss=True,
    **kwargs)`` (dispatching to ``forward_train`` or ``forward_test``), ``train_step`` and
    ``val_step`` (``dict(loss, log_vars, num_samples)`` as v2's runners expect),
    ``extract_feat`` and ``show_result``.

    Args:
        backbone: Backbone config or module.
        neck: Neck config or module, or a list of them applied in sequence (``neck.0``,
            ``neck.1``, ...), or ``None`` (the backbone's features go to the heads).
        init_cfg: Initialisation config, applied by :meth:`init_weights`.
    """

    def __init__(self, *, backbone: Cfg | nn.Module, neck: NeckCfg | None, init_cfg: Any) -> None:
        super().__init__()
        self.init_cfg = init_cfg
        self.backbone: nn.Module = build_child(backbone)
        self.neck: nn.Module | None = build_neck(neck)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    @property
    def with_neck(self) -> bool:
        return self.neck is not None

    def extract_feat(self, img: torch.Tensor) -> Any:
        """Backbone (and neck) features of a batch ``Tensor[B, 3, H, W]``."""
        x = self.backbone(img)
        if self.neck is not None:
            x = self.neck(x)
        return x

    def extract_feats(self, imgs: Sequence[torch.Tensor]) -> list[Any]:
        """Features of each augmented batch."""
        return [self.extract_feat(img) for img in imgs]

    # ------------------------------------------------------------- abstract
    @abstractmethod
    def forward_train(
        self, img: torch.Tensor, img_metas: Sequence[ImgMeta], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """The losses of a batch by their v2 names."""

    @abstractmethod
    def simple_test(
        self, img: torch.Tensor, img_metas: Sequence[ImgMeta], *args: Any, **kwargs: Any
    ) -> list[Any]:
        """Per image the v2 result of one test view."""

    @abstractmethod
    def aug_test(
        self,
        imgs: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        *args: Any,
        **kwargs: Any,
    ) -> list[Any]:
        """The v2 result of one image seen through several test-time augmentations."""

    # ------------------------------------------------------------- v2 API
    def forward(
        self,
        img: Any,
        img_metas: Any,
        return_loss: bool = True,
        **kwargs: Any,
    ) -> Any:
        """``forward_train`` when ``return_loss`` else ``forward_test`` (v2)."""
        if return_loss:
            self._set_batch_input_shape(img, img_metas)
            return self.forward_train(img, img_metas, **kwargs)
        return self.forward_test(img, img_metas, **kwargs)

    @staticmethod
    def _set_batch_input_shape(img: torch.Tensor, img_metas: Sequence[ImgMeta]) -> None:
        shape = tuple(img.size()[-2:])
        for meta in img_metas:
            meta["batch_input_shape"] = (int(shape[0]), int(shape[1]))

    def forward_test(self, imgs: Any, img_metas: Any, **kwargs: Any) -> Any:
        """``imgs``/``img_metas`` are lists over test-time augmentations (v2)."""
        for value, name in ((imgs, "imgs"), (img_metas, "img_metas")):
            if not isinstance(value, list):
                raise TypeError(f"{name} must be a list, but got {type(value)}")
        if len(imgs) != len(img_metas):
            raise ValueError(
                f"num of augmentations ({len(imgs)}) != num of image meta ({len(img_metas)})"
            )
        for img, metas in zip(imgs, img_metas, strict=True):
            self._set_batch_input_shape(img, metas)
        if len(imgs) == 1:
            if "proposals" in kwargs:
                kwargs["proposals"] = kwargs["proposals"][0]
            return self.simple_test(imgs[0], img_metas[0], **kwargs)
        if imgs[0].size(0) != 1:
            raise ValueError(f"aug test does not support batch size {imgs[0].size(0)}")
        if "proposals" in kwargs:
            raise ValueError("aug test does not support predefined proposals")
        return self.aug_test(imgs, img_metas, **kwargs)

    def _parse_losses(self, losses: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return parse_losses(losses)

    def train_step(self, data: Mapping[str, Any], optimizer: Any = None) -> dict[str, Any]:
        """Losses of one batch: ``dict(loss, log_vars, num_samples)``."""
        losses = self(**data)
        loss, log_vars = parse_losses(losses)
        return dict(loss=loss, log_vars=log_vars, num_samples=len(data["img_metas"]))

    def val_step(self, data: Mapping[str, Any], optimizer: Any = None) -> dict[str, Any]:
        """Same as :meth:`train_step` (v2's ``workflow=[('val', 1)]`` computes val losses)."""
        return self.train_step(data, optimizer)

    def show_result(
        self,
        img: Any,
        result: Any,
        score_thr: float = 0.3,
        bbox_color: Any = None,
        text_color: Any = None,
        mask_color: Any = None,
        thickness: int | None = None,
        font_size: float | None = None,
        win_name: str = "",
        show: bool = False,
        wait_time: int = 0,
        out_file: str | None = None,
    ) -> np.ndarray | None:
        """Draw a v2 result (``bbox_results`` or ``(bbox_results, segm_results)``) on ``img``.

        Class names come from ``self.CLASSES`` (set from the checkpoint or dataset). Returns
        the drawn image unless it was shown or written to ``out_file``.
        """
        from detforge.visualization import draw_result  # matplotlib/OpenCV drawing: load on use

        drawn = draw_result(
            img,
            result,
            class_names=getattr(self, "CLASSES", None),
            score_thr=score_thr,
            bbox_color=bbox_color,
            text_color=text_color,
            mask_color=mask_color,
            thickness=thickness,
            font_size=font_size,
            win_name=win_name,
            show=show and out_file is None,
            wait_time=wait_time,
            out_file=out_file,
        )
        return None if show or out_file else drawn


class NeckSequence(nn.Sequential):
    """Necks applied one after the other (v2 builds a ``Sequential`` from a list of necks,
    e.g. ``[FPN, DyHead]`` or ``[FPN, BFP]``); keys ``neck.0.*``, ``neck.1.*``.

    ``init_weights`` initialises each neck, as mmcv's ``Sequential`` (a ``BaseModule``) does.
    """

    def init_weights(self) -> None:
        apply_init_cfg(self, None)


def build_neck(cfg: NeckCfg | None) -> nn.Module | None:
    """A neck from a config dict or module; a list of them becomes a :class:`NeckSequence`.

    Raises:
        ConfigTypeError: the list is empty.

    Example:
        >>> neck = build_neck([dict(type='FPN', in_channels=[8, 16], out_channels=4, num_outs=2),
        ...                    dict(type='FPN', in_channels=[4, 4], out_channels=4, num_outs=2)])
        >>> [k for k in neck.state_dict()][:1]
        ['0.lateral_convs.0.conv.weight']
    """
    if isinstance(cfg, list | tuple):
        if not cfg:
            raise ConfigTypeError("model.neck: an empty list of necks")
        return NeckSequence(*[build_module(c, MODELS) for c in cfg])
    if cfg is None:
        return None
    neck: nn.Module = build_module(cfg, MODELS)
    return neck


def build_child(cfg: Cfg | nn.Module | None, **defaults: Any) -> Any:
    """A child module from a config dict (``MODELS``), or the module itself if already built.

    ``defaults`` fill arguments the config does not set (e.g. a head's ``train_cfg``); a built
    module is used as it is.
    """
    if cfg is None:
        return None
    return build_module(cfg, MODELS, defaults or None)
