"""v2-style builders: ``build_detector``, ``build_backbone``, ``build_neck``, ``build_head``,
``build_loss`` (all ``build_module`` on ``MODELS`` with a config path for errors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detforge.registry import MODELS, build_module

__all__ = ["build_backbone", "build_detector", "build_head", "build_loss", "build_neck"]


def build_detector(
    cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any] | None = None,
    test_cfg: Mapping[str, Any] | None = None,
) -> Any:
    """Build a detector from ``cfg.model``.

    ``train_cfg``/``test_cfg`` given here (the v2.8 layout) must not also be in ``cfg``; the
    config normaliser moves them into the model already, so this is only for old call sites.
    """
    args = dict(cfg)
    for name, value in (("train_cfg", train_cfg), ("test_cfg", test_cfg)):
        if value is not None:
            if args.get(name) is not None:
                raise ValueError(f"{name} specified in both outer field and model field")
            args[name] = value
    return build_module(args, MODELS, path="model")


def build_backbone(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS, path="model.backbone")


def build_neck(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS, path="model.neck")


def build_head(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS)


def build_loss(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS)
