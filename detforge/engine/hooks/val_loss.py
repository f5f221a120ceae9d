"""Validation losses (``val/loss``, ``val/loss_cls``, ...) for :class:`EvalHook`.

MMDetection v2 computes metrics on the val set but no losses unless the user adds a
``('val', 1)`` workflow phase with the *training* pipeline (random flips and all). Here the
eval pass derives a loss pipeline by itself, once:

1. the val pipeline's loading transforms (``Load*``), plus the training pipeline's loaders it
   lacks (``LoadAnnotations`` with the training flags: masks when training uses them);
2. the val pipeline's resize/normalise/pad transforms: for ``MultiScaleFlipAug``, its inner
   transforms at its first scale without flip (the view the first test pass scores);
3. ``DefaultFormatBundle`` and ``Collect`` with the training ``Collect``'s keys.

The losses are the detector's ``train_step`` losses in eval mode (no dropout, frozen BN
statistics) without gradients, averaged over images. The random state of ``random``, numpy
and torch is restored afterwards, so training continues exactly as without the pass, and the
pass runs after the metrics are computed, so they are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from detforge.datasets.transforms.compose import Compose
from detforge.datasets.transforms.formatting import Collect, DefaultFormatBundle
from detforge.engine.checkpoint_save import capture_rng_state, restore_rng_state
from detforge.errors import ConfigError
from detforge.utils.device import model_device, to_device

__all__ = [
    "build_val_loss_loader",
    "compute_val_losses",
    "derive_loss_pipeline",
    "has_annotations",
]

_FORMATTING = {
    "Collect",
    "DefaultFormatBundle",
    "ImageToTensor",
    "ToDataContainer",
    "ToTensor",
    "Transpose",
    "WrapFieldsToLists",
}
_DEFAULT_KEYS = ("img", "gt_bboxes", "gt_labels")


def _transforms(pipeline: Any) -> list[Any]:
    if isinstance(pipeline, Compose):
        return list(pipeline.transforms)
    if isinstance(pipeline, Sequence):
        return list(pipeline)
    return []


def _name(transform: Any) -> str:
    return type(transform).__name__


def _train_pipelines(dataset: Any) -> list[list[Any]]:
    """Pipelines from the outermost wrapper to the innermost dataset."""
    out = []
    for _ in range(10):
        out.append(_transforms(getattr(dataset, "pipeline", None)))
        if hasattr(dataset, "dataset"):
            dataset = dataset.dataset
        elif getattr(dataset, "datasets", None):
            dataset = dataset.datasets[0]
        else:
            break
    return out


class _SetView:
    """Put the test view (``scale``/``scale_factor``, no flip) into ``results``."""

    def __init__(self, key: str | None, value: Any) -> None:
        self.key, self.value = key, value

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if self.key is not None:
            results[self.key] = self.value
        results["flip"] = False
        results["flip_direction"] = None
        return results

    def __repr__(self) -> str:
        return f"SetTestView({self.key}={self.value!r}, flip=False)"


def derive_loss_pipeline(val_pipeline: Any, train_dataset: Any) -> Compose:
    """The pipeline that loads val images with their annotations at the test view.

    Args:
        val_pipeline: The val dataset's pipeline (a ``Compose`` or list of transforms).
        train_dataset: The training dataset (wrappers allowed): its loaders and ``Collect``
            keys are reused.

    Raises:
        ConfigError: the val pipeline has no loading transform or nothing after it.
    """
    val = _transforms(val_pipeline)
    n_load = next((i for i, t in enumerate(val) if not _name(t).startswith("Load")), len(val))
    loaders, rest = val[:n_load], val[n_load:]
    if not loaders or not rest:
        raise ConfigError(
            "val loss: data.val.pipeline must start with loading transforms (LoadImageFromFile) "
            f"followed by the test transforms; got {[_name(t) for t in val]}"
        )
    pipelines = _train_pipelines(train_dataset)
    have = {_name(t) for t in loaders}
    for pipeline in reversed(pipelines):  # the innermost dataset loads
        for t in pipeline:
            if not _name(t).startswith("Load"):
                break
            if _name(t) not in have:
                loaders.append(t)
                have.add(_name(t))
    if "LoadAnnotations" not in have:
        loaders.append(_load_annotations())
    view: list[Any]
    if len(rest) == 1 and _name(rest[0]) == "MultiScaleFlipAug":
        aug = rest[0]
        view = [_SetView(aug.scale_key, aug.img_scale[0]), *aug.transforms.transforms]
    else:
        view = [_SetView(None, None), *rest]
    view = [t for t in view if _name(t) not in _FORMATTING]
    collect = next((t for pipeline in pipelines for t in pipeline if isinstance(t, Collect)), None)
    keys = list(collect.keys) if collect is not None else list(_DEFAULT_KEYS)
    final: Collect = (
        Collect(keys=keys, meta_keys=collect.meta_keys)
        if collect is not None
        else Collect(keys=keys)
    )
    return Compose([*loaders, *view, DefaultFormatBundle(), final])


def _load_annotations() -> Any:
    from detforge.datasets.transforms.loading import LoadAnnotations

    return LoadAnnotations(with_bbox=True)


def has_annotations(dataset: Any) -> bool:
    """True when ``get_ann_info`` gives at least one box for some image of ``dataset``."""
    if not hasattr(dataset, "get_ann_info") or not hasattr(dataset, "data_infos"):
        return False
    for index in range(len(dataset)):
        boxes = dataset.get_ann_info(index).get("bboxes")
        if boxes is not None and len(boxes) > 0:
            return True
    return False


class _LossDataset(Dataset[dict[str, Any]]):
    """Samples of a val dataset with annotations, through ``pipeline``."""

    def __init__(self, dataset: Any, pipeline: Compose) -> None:
        self.dataset = dataset
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ds = self.dataset
        results: dict[str, Any] = dict(
            img_info=ds.data_infos[index], ann_info=ds.get_ann_info(index)
        )
        if getattr(ds, "proposals", None) is not None:
            results["proposals"] = ds.proposals[index]
        ds.pre_pipeline(results)
        out = self.pipeline(results)
        if out is None:
            name = ds.data_infos[index].get("filename", index)
            raise ValueError(f"val loss: the derived pipeline dropped image {name}")
        return out


def build_val_loss_loader(val_loader: Any, train_dataset: Any) -> Any:
    """A loader over ``val_loader.dataset`` yielding training-style batches at the test view.

    Raises:
        ConfigError: the val set has no annotations or the pipeline cannot be derived.
    """
    from detforge.datasets.builder import build_dataloader
    from detforge.utils.dist import get_dist_info

    dataset = val_loader.dataset
    if not hasattr(dataset, "pre_pipeline") or not has_annotations(dataset):
        raise ConfigError(
            f"val loss: {type(dataset).__name__} has no box annotations to compute losses on"
        )
    pipeline = derive_loss_pipeline(dataset.pipeline, train_dataset)
    batch = int(getattr(val_loader, "batch_size", None) or 1)
    world = get_dist_info()[1]
    return build_dataloader(
        _LossDataset(dataset, pipeline),
        samples_per_gpu=batch,
        workers_per_gpu=int(getattr(val_loader, "num_workers", 0)),
        dist=world > 1,
        shuffle=False,
        persistent_workers=False,
    )


def compute_val_losses(model: torch.nn.Module, loader: Iterable[Any]) -> dict[str, float]:
    """Image-weighted means of the ``log_vars`` of ``train_step`` over ``loader``, as
    ``{'val/<name>': value}``; eval mode, no gradients, random state restored.

    With ``torch.distributed`` running, ``train_step`` already averages over ranks, so every
    rank returns the same numbers (the distributed sampler pads the last ranks' shards).
    """
    bare: Any = model.module if hasattr(model, "module") else model
    was_training = bare.training
    device = model_device(bare)
    state = capture_rng_state()
    totals: dict[str, float] = {}
    count = 0
    bare.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                out = bare.train_step(to_device(batch, device), None)
                num = int(out["num_samples"])
                for key, value in out["log_vars"].items():
                    totals[key] = totals.get(key, 0.0) + float(value) * num
                count += num
    finally:
        bare.train(was_training)
        restore_rng_state(state)
    return {f"val/{k}": v / max(count, 1) for k, v in totals.items()}
