"""``Albu``: run an albumentations pipeline on the v2 results dict.

albumentations is an optional dependency, imported when an ``Albu`` is built.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detforge.datasets.transforms._utils import Results
from detforge.registry import TRANSFORMS
from detforge.structures.masks import BitmapMasks, PolygonMasks

__all__ = ["Albu"]


@TRANSFORMS.register_module()
class Albu:
    """Run an `albumentations <https://albumentations.ai>`_ pipeline on the results dict.

    Args:
        transforms: albumentations transforms as dicts (``type`` names a class of the
            ``albumentations`` module or is the class; nested ``transforms`` are built too).
        bbox_params: ``albumentations.BboxParams`` as a dict. With ``label_fields`` and
            ``filter_lost_elements=True`` the labels and masks of dropped boxes are dropped.
        keymap: v2 key -> albumentations key; default ``img->image``, ``gt_masks->masks``,
            ``gt_bboxes->bboxes``.
        update_pad_shape: Set ``pad_shape`` to the output image shape.
        skip_img_without_anno: Return ``None`` when no box is left (needs
            ``filter_lost_elements``).

    Raises:
        ImportError: albumentations is not installed.
    """

    def __init__(
        self,
        transforms: Sequence[Mapping[str, Any]],
        bbox_params: Mapping[str, Any] | None = None,
        keymap: Mapping[str, str] | None = None,
        update_pad_shape: bool = False,
        skip_img_without_anno: bool = False,
    ) -> None:
        try:
            import albumentations
        except ImportError as exc:
            raise ImportError("Albu needs albumentations: pip install albumentations") from exc
        self._albu = albumentations
        self.transforms = copy.deepcopy(list(transforms))
        params = dict(copy.deepcopy(bbox_params)) if bbox_params is not None else None
        self.filter_lost_elements = False
        self.origin_label_fields: list[str] = []
        self.update_pad_shape = update_pad_shape
        self.skip_img_without_anno = skip_img_without_anno
        if params is not None and "label_fields" in params and "filter_lost_elements" in params:
            self.filter_lost_elements = bool(params.pop("filter_lost_elements"))
            self.origin_label_fields = list(params["label_fields"])
            params["label_fields"] = ["idx_mapper"]
        self.bbox_params = self.albu_builder(params) if params else None
        self.aug = albumentations.Compose(
            [self.albu_builder(t) for t in self.transforms], bbox_params=self.bbox_params
        )
        self.keymap_to_albu = (
            dict(keymap) if keymap else {"img": "image", "gt_masks": "masks", "gt_bboxes": "bboxes"}
        )
        self.keymap_back = {v: k for k, v in self.keymap_to_albu.items()}

    def albu_builder(self, cfg: Mapping[str, Any]) -> Any:
        """Build one albumentations object from a ``dict(type=..., **kwargs)``."""
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            raise TypeError(f"Albu: each transform must be a dict with 'type', got {cfg!r}")
        args = dict(cfg)
        obj_type = args.pop("type")
        if isinstance(obj_type, str):
            obj_cls = getattr(self._albu, obj_type, None)
            if obj_cls is None:
                raise KeyError(f"Albu: albumentations has no transform named {obj_type!r}")
        elif inspect.isclass(obj_type):
            obj_cls = obj_type
        else:
            raise TypeError(f"Albu: type must be a str or a class, got {type(obj_type)}")
        if "transforms" in args:
            args["transforms"] = [self.albu_builder(t) for t in args["transforms"]]
        return obj_cls(**args)

    @staticmethod
    def mapper(d: Mapping[str, Any], keymap: Mapping[str, str]) -> Results:
        """A copy of ``d`` with keys renamed by ``keymap`` (others kept)."""
        return {keymap.get(k, k): v for k, v in d.items()}

    def __call__(self, results: Results) -> Results | None:
        results = self.mapper(results, self.keymap_to_albu)
        if "bboxes" in results:
            if isinstance(results["bboxes"], np.ndarray):
                results["bboxes"] = list(results["bboxes"])
            if self.filter_lost_elements:
                results["idx_mapper"] = np.arange(len(results["bboxes"]))
        had_masks = "masks" in results
        if had_masks:
            if isinstance(results["masks"], PolygonMasks):
                raise NotImplementedError("Albu supports BitmapMasks only")
            results["masks"] = list(results["masks"].masks)

        results = self.aug(**results)

        if "bboxes" in results:
            results["bboxes"] = np.array(results["bboxes"], dtype=np.float32).reshape(-1, 4)
            if self.filter_lost_elements:
                kept = [int(i) for i in results["idx_mapper"]]
                for label in self.origin_label_fields:
                    results[label] = np.array([results[label][i] for i in kept])
                if "masks" in results:
                    results["masks"] = [results["masks"][i] for i in kept]
                if not kept and self.skip_img_without_anno:
                    return None
        if had_masks and "masks" in results:
            h, w = results["image"].shape[:2]
            results["masks"] = BitmapMasks(list(results["masks"]), h, w)
        if "gt_labels" in results:
            results["gt_labels"] = np.asarray(results["gt_labels"]).astype(np.int64)
        results = self.mapper(results, self.keymap_back)
        if self.update_pad_shape:
            results["pad_shape"] = results["img"].shape
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(transforms={self.transforms})"
