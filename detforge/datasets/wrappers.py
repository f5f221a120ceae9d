"""Dataset wrappers: ``ConcatDataset``, ``RepeatDataset``, ``ClassBalancedDataset``,
``MultiImageMixDataset`` (v2 semantics)."""

from __future__ import annotations

import bisect
import copy
import logging
import math
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset as _TorchConcat
from torch.utils.data import Dataset

from detforge.datasets.coco import CocoDataset
from detforge.datasets.issues import DatasetError
from detforge.registry import DATASETS, TRANSFORMS, build_module

__all__ = ["ClassBalancedDataset", "ConcatDataset", "MultiImageMixDataset", "RepeatDataset"]

logger = logging.getLogger("detforge")


@DATASETS.register_module()
class ConcatDataset(_TorchConcat[Any]):
    """Datasets one after another; evaluated separately (keys ``0_bbox_mAP``, ...) by default.

    Args:
        datasets: The datasets (``CLASSES`` come from the first).
        separate_eval: Evaluate each dataset on its own part of the results. With ``False`` the
            VOC-style datasets are evaluated as one; COCO datasets do not support that.
    """

    def __init__(self, datasets: Sequence[Any], separate_eval: bool = True) -> None:
        super().__init__(datasets)
        self.datasets: list[Any] = list(datasets)
        self.CLASSES = getattr(datasets[0], "CLASSES", None)
        self.PALETTE = getattr(datasets[0], "PALETTE", None)
        self.separate_eval = separate_eval
        if not separate_eval:
            if any(isinstance(d, CocoDataset) for d in datasets):
                raise NotImplementedError(
                    "Evaluating concatenated CocoDataset as a whole is not supported! "
                    'Please set "separate_eval=True"'
                )
            if len({type(d) for d in datasets}) != 1:
                raise NotImplementedError("All the datasets should have same types")
        if all(hasattr(d, "flag") for d in datasets):
            self.flag = np.concatenate([d.flag for d in datasets])

    def _locate(self, idx: int) -> tuple[int, int]:
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if dataset_idx == 0 else self.cumulative_sizes[dataset_idx - 1]
        return dataset_idx, idx - start

    def get_cat_ids(self, idx: int) -> list[int]:
        dataset_idx, sample_idx = self._locate(idx)
        return list(self.datasets[dataset_idx].get_cat_ids(sample_idx))

    def get_ann_info(self, idx: int) -> dict[str, Any]:
        dataset_idx, sample_idx = self._locate(idx)
        return dict(self.datasets[dataset_idx].get_ann_info(sample_idx))

    def evaluate(
        self, results: Sequence[Any], logger: Any = None, **kwargs: Any
    ) -> OrderedDict[str, Any]:
        if len(results) != self.cumulative_sizes[-1]:
            raise ValueError(f"{len(results)} results for {self.cumulative_sizes[-1]} images")
        total: OrderedDict[str, Any] = OrderedDict()
        if self.separate_eval:
            start = 0
            for index, (end, dataset) in enumerate(
                zip(self.cumulative_sizes, self.datasets, strict=True)
            ):
                part = results[start:end]
                name = getattr(dataset, "ann_file", type(dataset).__name__)
                logging.getLogger("detforge").info("Evaluating %s with %d images", name, len(part))
                for key, value in dataset.evaluate(part, logger=logger, **kwargs).items():
                    total[f"{index}_{key}"] = value
                start = end
            return total
        annotations = [self.get_ann_info(i) for i in range(len(self))]
        result: OrderedDict[str, Any] = self.datasets[0].evaluate_annotations(
            results, annotations, logger=logger, **kwargs
        )
        return result


@DATASETS.register_module()
class RepeatDataset(Dataset[Any]):
    """The same dataset ``times`` times over (one "epoch" of it is ``times`` passes)."""

    def __init__(self, dataset: Any, times: int) -> None:
        if times < 1:
            raise ValueError(f"RepeatDataset: times must be >= 1, got {times}")
        self.dataset = dataset
        self.times = times
        self.CLASSES = getattr(dataset, "CLASSES", None)
        self.PALETTE = getattr(dataset, "PALETTE", None)
        self._ori_len = len(dataset)
        if hasattr(dataset, "flag"):
            self.flag = np.tile(dataset.flag, times)

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[idx % self._ori_len]

    def get_cat_ids(self, idx: int) -> list[int]:
        return list(self.dataset.get_cat_ids(idx % self._ori_len))

    def get_ann_info(self, idx: int) -> dict[str, Any]:
        """The annotation of the wrapped dataset's image behind ``idx`` (v2)."""
        info: dict[str, Any] = self.dataset.get_ann_info(idx % self._ori_len)
        return info

    def __len__(self) -> int:
        return self.times * self._ori_len


@DATASETS.register_module()
class ClassBalancedDataset(Dataset[Any]):
    """Repeat images holding rare classes (LVIS repeat-factor sampling, v2).

    An image's repeat factor is ``max(1, sqrt(oversample_thr / f(c)))`` maximised over its
    classes ``c``, where ``f(c)`` is the fraction of images containing ``c``; the image appears
    ``ceil(factor)`` times.
    """

    def __init__(self, dataset: Any, oversample_thr: float, filter_empty_gt: bool = True) -> None:
        self.dataset = dataset
        self.oversample_thr = oversample_thr
        self.filter_empty_gt = filter_empty_gt
        self.CLASSES = getattr(dataset, "CLASSES", None)
        self.PALETTE = getattr(dataset, "PALETTE", None)
        factors = self._get_repeat_factors(dataset, oversample_thr)
        self.repeat_indices: list[int] = []
        for index, factor in enumerate(factors):
            self.repeat_indices.extend([index] * math.ceil(factor))
        if hasattr(dataset, "flag"):
            flags: list[int] = []
            for flag, factor in zip(dataset.flag, factors, strict=True):
                flags.extend([int(flag)] * math.ceil(factor))
            self.flag = np.asarray(flags, dtype=np.uint8)

    def _cats(self, dataset: Any, idx: int) -> set[int]:
        cats = set(dataset.get_cat_ids(idx))
        if not cats and not self.filter_empty_gt:
            cats = {len(self.CLASSES or ())}  # an extra "background" category
        return cats

    def _get_repeat_factors(self, dataset: Any, repeat_thr: float) -> list[float]:
        freq: dict[int, float] = defaultdict(float)
        num_images = len(dataset)
        for idx in range(num_images):
            for cat in self._cats(dataset, idx):
                freq[cat] += 1
        repeat = {
            cat: max(1.0, math.sqrt(repeat_thr / (n / num_images))) for cat, n in freq.items()
        }
        factors = []
        for idx in range(num_images):
            cats = self._cats(dataset, idx)
            factors.append(max(repeat[c] for c in cats) if cats else 1.0)
        return factors

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[self.repeat_indices[idx]]

    def get_cat_ids(self, idx: int) -> list[int]:
        return list(self.dataset.get_cat_ids(self.repeat_indices[idx]))

    def get_ann_info(self, idx: int) -> dict[str, Any]:
        """The annotation of the wrapped dataset's image behind ``idx`` (v2)."""
        info: dict[str, Any] = self.dataset.get_ann_info(self.repeat_indices[idx])
        return info

    def __len__(self) -> int:
        return len(self.repeat_indices)


@DATASETS.register_module()
class MultiImageMixDataset(Dataset[dict[str, Any]]):
    """Runs a mixing pipeline (Mosaic, MixUp, ...) over samples of ``dataset``.

    A transform with ``get_indexes(dataset)`` receives the other samples it mixes in
    ``results['mix_results']``. A transform that returns ``None`` is retried, up to
    ``max_refetch`` times, before the wrapper gives up with an error.

    Args:
        dataset: Dataset whose own pipeline loads the images (and annotations).
        pipeline: The mixing transforms.
        dynamic_scale: Deprecated in v2; must be ``None``.
        skip_type_keys: Transform type names to skip (``YOLOXModeSwitchHook`` sets this).
        max_refetch: Retries for a transform that returns ``None``.
    """

    def __init__(
        self,
        dataset: Any,
        pipeline: Sequence[Any],
        dynamic_scale: tuple[int, int] | None = None,
        skip_type_keys: Sequence[str] | None = None,
        max_refetch: int = 15,
    ) -> None:
        if dynamic_scale is not None:
            raise DatasetError("MultiImageMixDataset: dynamic_scale is deprecated; set Resize")
        self.pipeline_types = []
        self.pipeline = []
        for index, transform in enumerate(pipeline):
            if not isinstance(transform, dict):
                raise TypeError(f"pipeline.{index}: expected a config dict, got {transform!r}")
            self.pipeline_types.append(transform["type"])
            self.pipeline.append(build_module(transform, TRANSFORMS, path=f"pipeline.{index}"))
        self._skip_type_keys = list(skip_type_keys) if skip_type_keys else None
        self.dataset = dataset
        self.CLASSES = getattr(dataset, "CLASSES", None)
        self.PALETTE = getattr(dataset, "PALETTE", None)
        if hasattr(dataset, "flag"):
            self.flag = dataset.flag
        self.num_samples = len(dataset)
        self.max_refetch = max_refetch

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, idx: int) -> dict[str, Any]:
        results = copy.deepcopy(self.dataset[idx])
        for transform, type_name in zip(self.pipeline, self.pipeline_types, strict=True):
            if self._skip_type_keys is not None and type_name in self._skip_type_keys:
                continue
            if hasattr(transform, "get_indexes"):
                for _ in range(self.max_refetch):
                    indexes = transform.get_indexes(self.dataset)
                    if not isinstance(indexes, Sequence):
                        indexes = [indexes]
                    mix = [copy.deepcopy(self.dataset[i]) for i in indexes]
                    if None not in mix:
                        results["mix_results"] = mix
                        break
                else:
                    raise DatasetError(
                        f"MultiImageMixDataset: the dataset's loading pipeline returned None "
                        f"{self.max_refetch} times while fetching images for {type_name}"
                    )
            for _ in range(self.max_refetch):
                updated = transform(copy.deepcopy(results))
                if updated is not None:
                    results = updated
                    break
            else:
                raise DatasetError(
                    f"MultiImageMixDataset: {type_name} returned None {self.max_refetch} times "
                    f"for image {idx}"
                )
            results.pop("mix_results", None)
        return results

    def update_skip_type_keys(self, skip_type_keys: Sequence[str]) -> None:
        """Skip these transform types from now on (used to switch Mosaic/MixUp off)."""
        self._skip_type_keys = list(skip_type_keys)
