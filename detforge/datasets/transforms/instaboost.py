"""``InstaBoost``: probability-map guided copy-pasting of instances (Fang et al., ICCV 2019), on
the ``instaboostfast`` package as in MMDetection v2.

It runs before ``LoadAnnotations`` on ``results['ann_info']``: with probability ``aug_ratio``
(one ``np.random.choice`` draw per image, as v2) the image and its instances (``bboxes``,
``labels``, ``masks`` as polygons or RLE) go through ``instaboostfast.get_new_data``, which
moves, scales, rotates or flips instances and paints the holes; instances that come back with
an empty box are dropped. Without the draw the annotations are only converted back and forth.
``instaboostfast`` is optional: building the transform without it is a
:class:`~detforge.errors.MissingDependencyError` that names the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from detforge.errors import MissingDependencyError
from detforge.registry import TRANSFORMS

__all__ = ["InstaBoost"]


def _instaboost() -> ModuleType:
    try:
        return importlib.import_module("instaboostfast")
    except ImportError:
        raise MissingDependencyError(
            "InstaBoost needs the instaboostfast package, which is not installed: "
            "`pip install instaboostfast`"
        ) from None


@TRANSFORMS.register_module()
class InstaBoost:
    """Copy-paste augmentation of the annotated instances (module docstring).

    Args:
        action_candidate: Actions out of ``'normal'``, ``'horizontal'``, ``'vertical'``,
            ``'skip'``.
        action_prob: Probability of each action.
        scale: ``(min, max)`` instance scale.
        dx: The largest x shift is the instance width / ``dx``.
        dy: The largest y shift is the instance height / ``dy``.
        theta: ``(min, max)`` rotation in degrees.
        color_prob: Probability of colour augmentation.
        hflag: Use the heat-map guided placement.
        aug_ratio: Probability of augmenting an image.

    Raises:
        MissingDependencyError: ``instaboostfast`` is not installed.
    """

    def __init__(
        self,
        action_candidate: Sequence[str] = ("normal", "horizontal", "skip"),
        action_prob: Sequence[float] = (1, 0, 0),
        scale: Sequence[float] = (0.8, 1.2),
        dx: float = 15,
        dy: float = 15,
        theta: Sequence[float] = (-1, 1),
        color_prob: float = 0.5,
        hflag: bool = False,
        aug_ratio: float = 0.5,
    ) -> None:
        if len(action_candidate) != len(action_prob):
            raise ValueError(
                f"InstaBoost: {len(action_candidate)} action_candidate but "
                f"{len(action_prob)} action_prob"
            )
        self.cfg = _instaboost().InstaBoostConfig(
            action_candidate, action_prob, scale, dx, dy, theta, color_prob, hflag
        )
        self.aug_ratio = aug_ratio

    @staticmethod
    def _load_anns(results: dict[str, Any]) -> list[dict[str, Any]]:
        """``ann_info`` as COCO-style annotations (``bbox`` as x, y, w, h)."""
        info = results["ann_info"]
        anns = []
        for label, bbox, mask in zip(info["labels"], info["bboxes"], info["masks"], strict=True):
            x1, y1, x2, y2 = bbox
            anns.append(
                {"category_id": label, "segmentation": mask, "bbox": [x1, y1, x2 - x1, y2 - y1]}
            )
        return anns

    @staticmethod
    def _parse_anns(
        results: dict[str, Any], anns: Sequence[dict[str, Any]], img: np.ndarray
    ) -> dict[str, Any]:
        """Write the annotations back (instances with an empty box dropped) and the image."""
        kept = [a for a in anns if a["bbox"][2] > 0 and a["bbox"][3] > 0]
        info = results["ann_info"]
        info["bboxes"] = np.array(
            [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in kept)], dtype=np.float32
        ).reshape(-1, 4)
        info["labels"] = np.array([a["category_id"] for a in kept], dtype=np.int64)
        info["masks"] = [a["segmentation"] for a in kept]
        results["img"] = img
        return results

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        img = results["img"]
        anns = self._load_anns(results)
        if np.random.choice([0, 1], p=[1 - self.aug_ratio, self.aug_ratio]):
            anns, img = _instaboost().get_new_data(
                anns, img.astype(np.uint8), self.cfg, background=None
            )
        return self._parse_anns(results, anns, img.astype(results["img"].dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cfg={self.cfg}, aug_ratio={self.aug_ratio})"
