"""Augmentation policies: ``AutoAugment`` and the level-driven colour transforms.

``AutoAugment(policies)`` picks one policy (a list of transform configs) uniformly per sample.
The colour transforms below take a ``level`` in ``[0, 10]`` mapped to the factor
``level / 10 * 1.8 + 0.1`` and apply with probability ``prob``; draws use the global
``np.random`` state. The geometric level transforms (``Shear``, ``Rotate``, ``Translate``) live
in :mod:`detforge.datasets.transforms.auto_augment_geometric` and ``Albu`` in
:mod:`detforge.datasets.transforms.albu`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detforge.datasets.transforms._utils import (
    Results,
    check_arg,
    check_level,
    check_prob,
    enhance_level_to_value,
)
from detforge.datasets.transforms.compose import Compose
from detforge.registry import TRANSFORMS
from detforge.utils.image import adjust_brightness, adjust_color, adjust_contrast, imequalize

__all__ = [
    "AutoAugment",
    "BrightnessTransform",
    "ColorTransform",
    "ContrastTransform",
    "EqualizeTransform",
]


@TRANSFORMS.register_module()
class AutoAugment:
    """Apply one policy, chosen uniformly at random, out of ``policies``.

    Args:
        policies: Non-empty list of policies; each is a non-empty list of transform configs
            (dicts with ``type``), run in order like a :class:`Compose`.

    Example:
        >>> np.random.seed(0)
        >>> t = AutoAugment([[dict(type='BrightnessTransform', level=10, prob=0.0)]])
        >>> t({'img': np.zeros((4, 4, 3), np.uint8)})['img'].shape
        (4, 4, 3)
    """

    def __init__(self, policies: Sequence[Sequence[Mapping[str, Any]]]) -> None:
        check_arg(
            isinstance(policies, list) and len(policies) > 0,
            f"AutoAugment: policies must be a non-empty list, got {policies!r}",
        )
        for i, policy in enumerate(policies):
            check_arg(
                isinstance(policy, list) and len(policy) > 0,
                f"AutoAugment: policies[{i}] must be a non-empty list, got {policy!r}",
            )
            for j, augment in enumerate(policy):
                check_arg(
                    isinstance(augment, Mapping) and "type" in augment,
                    f"AutoAugment: policies[{i}][{j}] must be a dict with key 'type', "
                    f"got {augment!r}",
                )
        self.policies = copy.deepcopy(policies)
        self.transforms = [Compose(policy) for policy in self.policies]

    def __call__(self, results: Results) -> Results | None:
        transform = self.transforms[np.random.randint(len(self.transforms))]
        return transform(results)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(policies={self.policies})"


class _Enhance:
    """Shared body of the level-driven color transforms (image only)."""

    def __init__(self, level: float, prob: float = 0.5) -> None:
        check_level(level, type(self).__name__)
        check_prob(prob, type(self).__name__)
        self.level = level
        self.prob = prob
        self.factor = enhance_level_to_value(level)

    def _apply(self, img: np.ndarray, factor: float) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, results: Results) -> Results:
        if np.random.rand() > self.prob:
            return results
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            results[key] = self._apply(img, self.factor).astype(img.dtype)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(level={self.level}, prob={self.prob})"


@TRANSFORMS.register_module()
class ColorTransform(_Enhance):
    """Change the color saturation by ``level / 10 * 1.8 + 0.1`` (1.0 at level 5).

    Args:
        level: Strength in ``[0, 10]``.
        prob: Probability of applying.

    Example:
        >>> img = np.full((2, 2, 3), 7, np.uint8)
        >>> ColorTransform(level=5, prob=1.0)({'img': img})['img'][0, 0].tolist()
        [7, 7, 7]
    """

    def _apply(self, img: np.ndarray, factor: float) -> np.ndarray:
        return adjust_color(img, factor)


@TRANSFORMS.register_module()
class BrightnessTransform(_Enhance):
    """Change the brightness by ``level / 10 * 1.8 + 0.1`` (1.0 at level 5).

    Args:
        level: Strength in ``[0, 10]``.
        prob: Probability of applying.
    """

    def _apply(self, img: np.ndarray, factor: float) -> np.ndarray:
        return adjust_brightness(img, factor)


@TRANSFORMS.register_module()
class ContrastTransform(_Enhance):
    """Change the contrast by ``level / 10 * 1.8 + 0.1`` (1.0 at level 5).

    Args:
        level: Strength in ``[0, 10]``.
        prob: Probability of applying.
    """

    def _apply(self, img: np.ndarray, factor: float) -> np.ndarray:
        return adjust_contrast(img, factor)


@TRANSFORMS.register_module()
class EqualizeTransform:
    """Equalize the histogram of each image channel.

    Args:
        prob: Probability of applying.
    """

    def __init__(self, prob: float = 0.5) -> None:
        check_prob(prob, "EqualizeTransform")
        self.prob = prob

    def __call__(self, results: Results) -> Results:
        if np.random.rand() > self.prob:
            return results
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            results[key] = imequalize(img).astype(img.dtype)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prob={self.prob})"
