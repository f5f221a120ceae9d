"""``CityscapesDataset``: Cityscapes instances converted to COCO json (8 classes)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from detforge.datasets.coco import CocoDataset
from detforge.evaluation.class_names import CITYSCAPES_CLASSES
from detforge.registry import DATASETS

__all__ = ["CityscapesDataset"]


@DATASETS.register_module()
class CityscapesDataset(CocoDataset):
    """COCO-format Cityscapes; images whose objects are all crowds are dropped in training.

    The COCO metrics (``bbox``, ``segm``) are supported. The official ``'cityscapes'`` metric
    needs ``cityscapesscripts`` and is not provided by detforge.
    """

    CLASSES: tuple[str, ...] | None = CITYSCAPES_CLASSES

    def _filter_imgs(self, min_size: int = 32) -> list[int]:
        valid = super()._filter_imgs(min_size)
        if not self.filter_empty_gt:
            return valid
        kept, kept_ids = [], []
        for i in valid:
            img_id = self.data_infos[i]["id"]
            anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[img_id]))
            if anns and all(a.get("iscrowd", 0) for a in anns):
                continue
            kept.append(i)
            kept_ids.append(img_id)
        self.img_ids = kept_ids
        return kept

    def evaluate(  # type: ignore[override]
        self, results: Sequence[Any], metric: str | Sequence[str] = "bbox", **kwargs: Any
    ) -> OrderedDict[str, Any]:
        metrics = [metric] if isinstance(metric, str) else list(metric)
        if "cityscapes" in metrics:
            raise KeyError(
                "the 'cityscapes' metric (cityscapesscripts) is not available in detforge; "
                "use metric=['bbox', 'segm']"
            )
        return super().evaluate(results, metric=metrics, **kwargs)
