"""The v2 detector API shared by every detector: ``forward``, ``forward_test``, ``train_step``...

``forward(img, img_metas, return_loss=True, **kwargs)`` dispatches to ``forward_train`` (a dict
of losses with the v2 names) or ``forward_test`` (``simple_test`` for one augmentation,
``aug_test`` for several). ``train_step``/``val_step`` return ``dict(loss, log_vars,
num_samples)`` as v2's runners expect.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from detforge.models.layers import apply_init_cfg
from detforge.registry import MODELS, build_module

__all__ = ["DetectorMixin", "build_child", "parse_losses"]


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


class DetectorMixin:
    """v2 entry points on top of a detector's ``forward_train``/``simple_test``/``aug_test``."""

    init_cfg: Any

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)  # type: ignore[arg-type]

    @property
    def with_neck(self) -> bool:
        return getattr(self, "neck", None) is not None

    def extract_feats(self, imgs: Sequence[torch.Tensor]) -> list[Any]:
        """Features of each augmented batch."""
        return [self.extract_feat(img) for img in imgs]  # type: ignore[attr-defined]

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
            return self.forward_train(img, img_metas, **kwargs)  # type: ignore[attr-defined]
        return self.forward_test(img, img_metas, **kwargs)

    @staticmethod
    def _set_batch_input_shape(img: torch.Tensor, img_metas: Sequence[dict[str, Any]]) -> None:
        shape = tuple(img.size()[-2:])
        for meta in img_metas:
            meta["batch_input_shape"] = shape

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
            return self.simple_test(imgs[0], img_metas[0], **kwargs)  # type: ignore[attr-defined]
        if imgs[0].size(0) != 1:
            raise ValueError(f"aug test does not support batch size {imgs[0].size(0)}")
        if "proposals" in kwargs:
            raise ValueError("aug test does not support predefined proposals")
        return self.aug_test(imgs, img_metas, **kwargs)  # type: ignore[attr-defined]

    def _parse_losses(self, losses: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return parse_losses(losses)

    def train_step(self, data: Mapping[str, Any], optimizer: Any = None) -> dict[str, Any]:
        """Losses of one batch: ``dict(loss, log_vars, num_samples)``."""
        losses = self(**data)  # type: ignore[operator]
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
            img, result, class_names=getattr(self, "CLASSES", None), score_thr=score_thr,
            bbox_color=bbox_color, text_color=text_color, mask_color=mask_color,
            thickness=thickness, font_size=font_size, win_name=win_name,
            show=show and out_file is None, wait_time=wait_time, out_file=out_file,
        )  # fmt: skip
        return None if show or out_file else drawn


def build_child(cfg: Any, **defaults: Any) -> Any:
    """A child module from a config dict (``MODELS``), or the module itself if already built.

    ``defaults`` fill arguments the config does not set (e.g. a head's ``train_cfg``).
    """
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    return build_module(cfg, MODELS, defaults or None)
