"""Run a trained detector on images (v2's ``mmdet/apis/inference.py``).

:func:`init_detector` builds a detector from a config and a checkpoint, ready for
:func:`inference_detector`, which takes a path, a BGR ``uint8`` image or a list of them and
returns v2 results (a list over classes of ``ndarray[n, 5]``, or ``(bbox, segm)`` for mask
models). A list runs as one batch: every image goes through the test pipeline, the images are
padded to the largest one and the network runs once.
"""

from __future__ import annotations

import asyncio
import copy
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from detforge.config import Config, ConfigDict, load_config, normalize_config
from detforge.utils.device import model_device, to_device

__all__ = [
    "async_inference_detector",
    "inference_detector",
    "init_detector",
    "replace_ImageToTensor",
    "replace_image_to_tensor",
    "resolve_device",
    "show_result_pyplot",
]

ImageInput = str | os.PathLike[str] | np.ndarray


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``; CUDA falls back to CPU with a warning when absent.

    ``None`` picks the GPU of this process, ``cuda:LOCAL_RANK`` (``cuda:0`` outside
    ``torchrun``), when CUDA is available and the CPU otherwise, without a warning; so does
    ``'cuda'`` without an index when CUDA is available.

    Example:
        >>> resolve_device('cpu')
        device(type='cpu')
    """
    local_gpu = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if device is None:
        return torch.device(local_gpu if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device {str(device)!r} was asked for but CUDA is not available; using the CPU",
            stacklevel=3,
        )
        return torch.device("cpu")
    return torch.device(local_gpu) if dev.type == "cuda" and dev.index is None else dev


def _load_cfg(config: Any, cfg_options: Mapping[str, Any] | None) -> Config:
    if isinstance(config, str | os.PathLike):
        return load_config(config, cfg_options=cfg_options).cfg
    if isinstance(config, ConfigDict):
        config = Config(config.to_dict())
    if not isinstance(config, Config):
        raise TypeError(f"config must be a file path or a Config, but got {type(config).__name__}")
    config = copy.deepcopy(config)
    if cfg_options:
        config.merge_from_dict(dict(cfg_options))
    return normalize_config(config)[0]


def _config_classes(cfg: Config) -> tuple[str, ...] | None:
    """Class names of ``cfg.data.test`` (its ``classes``, else its dataset type's)."""
    from detforge.datasets.custom import CustomDataset
    from detforge.registry import DATASETS

    data = cfg.get("data") or {}
    test = data.get("test") if isinstance(data, Mapping) else None
    while isinstance(test, Mapping) and "dataset" in test and "classes" not in test:
        test = test["dataset"]  # wrappers such as RepeatDataset
    if isinstance(test, Sequence) and test and isinstance(test[0], Mapping):
        test = test[0]
    if not isinstance(test, Mapping):
        return None
    classes = test.get("classes")
    if classes is not None:
        names = CustomDataset.get_classes(classes)
        return tuple(names) if names is not None else None
    kind = test.get("type")
    dataset_cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    names = getattr(dataset_cls, "CLASSES", None)
    return tuple(names) if names is not None else None


def init_detector(
    config: str | os.PathLike[str] | Config | ConfigDict,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = "cuda:0",
    cfg_options: Mapping[str, Any] | None = None,
    strict: bool = True,
) -> nn.Module:
    """Build a detector from a config, load a checkpoint, and put it in eval mode on ``device``.

    ``model.cfg`` keeps the (normalised) config, whose ``data.test.pipeline`` is what
    :func:`inference_detector` runs. ``model.CLASSES`` comes from the checkpoint's
    ``meta['CLASSES']`` (v2) or ``meta['dataset_meta']['classes']`` (v3), else from the
    config's test dataset, else COCO's 80 names (with a warning); ``model.PALETTE`` is
    ``meta['PALETTE']`` (None when absent), as v2.

    Args:
        config: A config file path or a ``Config``.
        checkpoint: A checkpoint path (v2/v3 ``.pth`` or a plain state_dict); ``None`` keeps
            the freshly initialised weights.
        device: ``'cuda:0'``, ``'cpu'``...; CUDA falls back to the CPU with a warning;
            ``None``: see :func:`resolve_device`.
        cfg_options: Dotted overrides (``--cfg-options``).
        strict: Fail when the checkpoint leaves a weight of the model unset (missing, or of
            another shape: a checkpoint of another model or class count). ``False`` (the CLI's
            ``--allow-partial``) loads what fits and warns about the rest, as v2's
            ``init_detector`` did; a checkpoint of which nothing fits fails either way. Keys
            the model lacks and BatchNorm ``num_batches_tracked`` counters never fail.

    Raises:
        CheckpointError: the checkpoint is missing, unreadable or does not fit (the message
            lists the keys and names the file and the model type).

    Example:
        >>> model = init_detector('configs/retinanet/retinanet_r50_fpn_1x_coco.py',
        ...                       'retinanet.pth', device='cpu')  # doctest: +SKIP
        >>> result = inference_detector(model, 'demo.jpg')  # doctest: +SKIP
    """
    import detforge.datasets  # noqa: F401  (registers datasets and transforms)
    from detforge.evaluation.class_names import COCO_CLASSES
    from detforge.models.builder import build_detector
    from detforge.utils.checkpoint import load_checkpoint

    cfg = _load_cfg(config, cfg_options)
    if "model" not in cfg:
        raise KeyError(f"config {cfg.filename or '<Config>'} has no 'model'")
    model_cfg = copy.deepcopy(cfg.model.to_dict())
    model_cfg.pop("pretrained", None)
    if isinstance(model_cfg.get("backbone"), dict):
        model_cfg["backbone"]["init_cfg"] = None
    model_cfg["train_cfg"] = None
    model = build_detector(model_cfg)
    classes: Any = None
    meta: Mapping[str, Any] = {}
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location="cpu", strict=strict)
        meta = ckpt.get("meta") or {}
        classes = meta.get("CLASSES")
        if classes is None and isinstance(meta.get("dataset_meta"), Mapping):
            classes = meta["dataset_meta"].get("classes")
    if classes is None:
        classes = _config_classes(cfg)
    if classes is None:
        warnings.warn(
            "class names are not saved in the checkpoint's meta and the config names no "
            "dataset classes; using COCO's",
            stacklevel=2,
        )
        classes = COCO_CLASSES
    model.CLASSES = tuple(classes)
    model.PALETTE = meta.get("PALETTE")
    model.cfg = cfg
    model.to(resolve_device(device))
    model.eval()
    return model


def replace_image_to_tensor(pipeline: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """v2's ``replace_ImageToTensor``: ``ImageToTensor`` → ``DefaultFormatBundle`` (batching),
    with v2's ``UserWarning`` for each one replaced.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     replace_image_to_tensor([dict(type='ImageToTensor', keys=['img'])])
        [{'type': 'DefaultFormatBundle'}]
    """
    out: list[dict[str, Any]] = []
    for step in pipeline:
        step = dict(step)
        if step.get("type") == "MultiScaleFlipAug":
            step["transforms"] = replace_image_to_tensor(list(step["transforms"]))
        elif step.get("type") == "ImageToTensor":
            warnings.warn(
                '"ImageToTensor" pipeline is replaced by "DefaultFormatBundle" for batch '
                "inference. It is recommended to manually replace it in the test data pipeline "
                "in your config file.",
                UserWarning,
                stacklevel=2,
            )
            step = dict(type="DefaultFormatBundle")
        out.append(step)
    return out


def _test_pipelines(model: nn.Module) -> tuple[Any, Any]:
    """The test pipeline for paths and the one for arrays (first step ``LoadImageFromWebcam``)."""
    from detforge.datasets.transforms.compose import Compose

    cfg = getattr(model, "cfg", None)
    try:
        steps = list(cfg.data.test.pipeline)  # type: ignore[union-attr]
    except (AttributeError, KeyError):
        raise KeyError(
            "model.cfg has no data.test.pipeline; build the model with init_detector "
            "from a config that has one"
        ) from None
    steps = replace_image_to_tensor(steps)
    if not steps:
        raise ValueError("model.cfg.data.test.pipeline is empty")
    webcam = [dict(steps[0], type="LoadImageFromWebcam"), *steps[1:]]
    return Compose(steps), Compose(webcam)


def _prepare(index: int, img: Any, from_file: Any, from_array: Any) -> dict[str, Any]:
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 1:
            raise ValueError(
                f"image {index}: expected an ndarray [H, W, 3] (BGR), got shape {img.shape}"
            )
        if img.shape[2] == 4:
            img = img[:, :, :3]
        data = from_array(dict(img=np.ascontiguousarray(img)))
    elif isinstance(img, str | os.PathLike):
        data = from_file(dict(img_info=dict(filename=os.fspath(img)), img_prefix=None))
    else:
        raise TypeError(f"image {index}: expected a path or an ndarray, got {type(img).__name__}")
    if data is None:
        raise ValueError(f"image {index}: the test pipeline dropped it (returned None)")
    return data


def _forward(model: nn.Module, datas: list[dict[str, Any]]) -> list[Any]:
    from detforge.datasets.collate import collate

    batch = collate(datas, samples_per_gpu=len(datas))
    if isinstance(batch.get("img"), torch.Tensor):  # a pipeline without MultiScaleFlipAug
        batch = {k: [v] for k, v in batch.items()}
    batch = to_device(batch, model_device(model))
    with torch.no_grad():
        return list(model(return_loss=False, rescale=True, **batch))


def inference_detector(model: nn.Module, imgs: ImageInput | Sequence[ImageInput]) -> Any:
    """Detections of ``model`` on one image or a batch.

    Args:
        model: A detector from :func:`init_detector` (it needs ``model.cfg``).
        imgs: An image path, a BGR ``uint8`` ``ndarray[H, W, 3]``, or a list/tuple of them
            (paths and arrays may be mixed). A list is collated into one batch (each image
            padded bottom-right to the largest) and runs one forward pass; with several
            test-time augmentations each image runs on its own, as v2's ``aug_test`` needs.

    Returns:
        One v2 result for one image, a list of them for a list (empty for an empty list).

    Raises:
        ImageLoadError: a path is missing or not an image (the message names it).
        TypeError, ValueError: an input is neither a path nor a ``[H, W, 3]`` array.

    Example:
        >>> result = inference_detector(model, 'demo/demo.jpg')  # doctest: +SKIP
        >>> results = inference_detector(model, [img_a, img_b])  # one forward  # doctest: +SKIP
    """
    is_batch = isinstance(imgs, list | tuple)
    items: list[Any] = list(imgs) if isinstance(imgs, list | tuple) else [imgs]
    if not items:
        return []
    from_file, from_array = _test_pipelines(model)
    datas = [_prepare(i, img, from_file, from_array) for i, img in enumerate(items)]
    num_aug = len(datas[0]["img"]) if isinstance(datas[0].get("img"), list) else 1
    if num_aug > 1 and len(datas) > 1:
        results = [r for data in datas for r in _forward(model, [data])]
    else:
        results = _forward(model, datas)
    return results if is_batch else results[0]


async def async_inference_detector(
    model: nn.Module, imgs: ImageInput | Sequence[ImageInput]
) -> Any:
    """:func:`inference_detector` without blocking the event loop.

    The work runs in the loop's default thread pool, so the loop keeps serving other tasks
    meanwhile.

    Example:
        >>> result = asyncio.run(async_inference_detector(model, 'demo.jpg'))  # doctest: +SKIP
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, inference_detector, model, imgs)


def show_result_pyplot(
    model: nn.Module,
    img: ImageInput,
    result: Any,
    score_thr: float = 0.3,
    title: str = "result",
    wait_time: float = 0,
    palette: Any = None,
    out_file: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Draw ``result`` on ``img`` and show it with matplotlib, or write it to ``out_file``.

    Args:
        model: The detector (its ``CLASSES`` name the labels; ``model.module`` is unwrapped).
        img: Image path or BGR array.
        result: The detector's result for ``img``.
        score_thr: Detections scoring at most this are not drawn.
        title: Figure title.
        wait_time: Seconds to keep the figure open (0: until closed).
        palette: Colours for boxes and masks (``'coco'``, ``'voc'``, ``'citys'``, ``'random'``,
            a list of RGB tuples or one colour); ``None``: a fixed colour per class.
        out_file: Write the drawn image here instead of showing it.

    Returns:
        The drawn BGR image.

    Example:
        >>> show_result_pyplot(model, 'demo.jpg', result, out_file='out.png')  # doctest: +SKIP
    """
    from detforge.utils.image import imwrite

    inner: Any = getattr(model, "module", model)
    drawn = inner.show_result(
        img,
        result,
        score_thr=score_thr,
        bbox_color=palette,
        text_color=(200, 200, 200),
        mask_color=palette,
        show=False,
        win_name=title,
        out_file=None,
    )
    if out_file is not None:
        imwrite(drawn, os.fspath(out_file))
        return drawn
    import matplotlib.pyplot as plt

    plt.figure(title)
    plt.title(title)
    plt.imshow(drawn[:, :, ::-1])
    plt.axis("off")
    if wait_time > 0:
        plt.show(block=False)
        plt.pause(wait_time)
        plt.close()
    else:
        plt.show()
    return drawn


#: v2's name (``mmdet.datasets.replace_ImageToTensor``)
replace_ImageToTensor = replace_image_to_tensor
