"""Test-time augmentation: ``MultiScaleFlipAug`` runs a sub-pipeline per (scale, flip)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from detforge.datasets.transforms._utils import check_arg
from detforge.datasets.transforms.compose import Compose
from detforge.registry import TRANSFORMS

__all__ = ["MultiScaleFlipAug"]


def _is_random_flip(transform: Any) -> bool:
    if isinstance(transform, Mapping):
        kind = transform.get("type")
        return kind == "RandomFlip" or getattr(kind, "__name__", None) == "RandomFlip"
    return type(transform).__name__ == "RandomFlip"


@TRANSFORMS.register_module()
class MultiScaleFlipAug:
    """Run ``transforms`` once per scale and flip, and return a dict of lists.

    For each scale in ``img_scale`` (or ``scale_factor``), and for no flip followed by each
    of ``flip_direction`` when ``flip`` is set, a shallow copy of ``results`` gets ``scale``
    (or ``scale_factor``), ``flip`` and ``flip_direction`` and goes through ``transforms``;
    the outputs are gathered key by key, e.g. ``{'img': [...], 'img_metas': [...]}``.

    Args:
        transforms: The sub-pipeline (config dicts or callables); it should contain
            ``Resize`` without ``img_scale`` and, for flips, ``RandomFlip``.
        img_scale: ``(w, h)`` or a list of them. Exactly one of ``img_scale`` and
            ``scale_factor`` must be given.
        scale_factor: A float or list of floats relative to the loaded image.
        flip: Also run flipped copies.
        flip_direction: A direction or list of directions used when ``flip``.

    Example:
        >>> aug = MultiScaleFlipAug([lambda r: dict(s=r['scale'], f=r['flip'])],
        ...                         img_scale=[(10, 10), (20, 20)])
        >>> aug({})
        {'s': [(10, 10), (20, 20)], 'f': [False, False]}
    """

    def __init__(
        self,
        transforms: Sequence[Mapping[str, Any] | Callable[[dict[str, Any]], Any]],
        img_scale: tuple[int, int] | list[tuple[int, int]] | None = None,
        scale_factor: float | list[float] | None = None,
        flip: bool = False,
        flip_direction: str | list[str] = "horizontal",
    ) -> None:
        self.transforms = Compose(transforms)
        check_arg(
            (img_scale is None) ^ (scale_factor is None),
            "Must have but only one variable can be set",
        )
        self.img_scale: list[Any]
        if img_scale is not None:
            self.img_scale = img_scale if isinstance(img_scale, list) else [img_scale]
            self.scale_key = "scale"
            check_arg(
                all(isinstance(s, tuple) for s in self.img_scale),
                f"MultiScaleFlipAug: img_scale must be tuples, got {img_scale!r}",
            )
        else:
            assert scale_factor is not None
            self.img_scale = scale_factor if isinstance(scale_factor, list) else [scale_factor]
            self.scale_key = "scale_factor"
        self.flip = flip
        self.flip_direction = (
            flip_direction if isinstance(flip_direction, list) else [flip_direction]
        )
        check_arg(
            all(isinstance(d, str) for d in self.flip_direction),
            f"MultiScaleFlipAug: flip_direction must be strings, got {flip_direction!r}",
        )
        if not self.flip and self.flip_direction != ["horizontal"]:
            warnings.warn("flip_direction has no effect when flip is set to False", stacklevel=2)
        if self.flip and not any(_is_random_flip(t) for t in transforms):
            warnings.warn("flip has no effect when RandomFlip is not in transforms", stacklevel=2)

    def __call__(self, results: dict[str, Any]) -> dict[str, list[Any]]:
        flip_args: list[tuple[bool, str | None]] = [(False, None)]
        if self.flip:
            flip_args += [(True, direction) for direction in self.flip_direction]
        outputs: list[dict[str, Any]] = []
        for scale in self.img_scale:
            for flip, direction in flip_args:
                item = results.copy()
                item[self.scale_key] = scale
                item["flip"] = flip
                item["flip_direction"] = direction
                out = self.transforms(item)
                if out is None:
                    raise ValueError(
                        f"MultiScaleFlipAug: the sub-pipeline dropped the sample "
                        f"({self.scale_key}={scale}, flip={flip}); test-time transforms must "
                        "not return None"
                    )
                outputs.append(out)
        merged: dict[str, list[Any]] = {key: [] for key in outputs[0]}
        for out in outputs:
            for key, value in out.items():
                merged[key].append(value)
        return merged

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(transforms={self.transforms}, "
            f"img_scale={self.img_scale}, flip={self.flip}, "
            f"flip_direction={self.flip_direction})"
        )
