"""The exported graph's input: one image through the config's test pipeline.

Without ``shape`` the image is resized and padded exactly as ``detforge test`` would (the
first view of ``MultiScaleFlipAug``); with ``shape=(H, W)`` it is resized to exactly ``W x H``
(aspect ratio not kept, as v2's ``pytorch2onnx.py --shape`` does) before normalisation and
padding.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["input_meta_for_graph", "parse_shape", "prepare_input", "test_pipeline_steps"]


def parse_shape(shape: Sequence[int] | None) -> tuple[int, int] | None:
    """``--shape`` as ``(H, W)``: one value means a square.

    Example:
        >>> parse_shape([800, 1216]), parse_shape([640]), parse_shape(None)
        ((800, 1216), (640, 640), None)
    """
    if shape is None:
        return None
    values = [int(v) for v in shape]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(f"--shape takes one or two positive sizes (H W), got {list(shape)}")
    return values[0], values[1]


def _exact_resize(steps: list[dict[str, Any]], hw: tuple[int, int]) -> list[dict[str, Any]]:
    """Resize every image to exactly ``hw`` (``Resize(keep_ratio=False)`` at ``(W, H)``)."""
    scale = (hw[1], hw[0])
    out = []
    found = False
    for step in steps:
        step = dict(step)
        if step.get("type") == "MultiScaleFlipAug":
            step.pop("scale_factor", None)
            step["img_scale"] = scale
            step["flip"] = False
            inner = []
            for sub in step["transforms"]:
                sub = dict(sub)
                if sub.get("type") == "Resize":
                    sub["keep_ratio"] = False
                    sub.pop("img_scale", None)
                    found = True
                inner.append(sub)
            step["transforms"] = inner
        elif step.get("type") == "Resize":
            step.update(img_scale=scale, keep_ratio=False)
            step.pop("ratio_range", None)
            found = True
        out.append(step)
    if not found:
        raise ValueError("--shape needs a Resize step in the test pipeline; the config has none")
    return out


def test_pipeline_steps(cfg: Any) -> list[dict[str, Any]]:
    """``cfg.data.test.pipeline`` as a list of plain dicts (a clear error when missing)."""
    try:
        steps = list(cfg.data.test.pipeline)
    except (AttributeError, KeyError):
        raise KeyError("the config has no data.test.pipeline to prepare the input with") from None
    if not steps:
        raise ValueError("the config's data.test.pipeline is empty")
    return [copy.deepcopy(dict(step)) for step in steps]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def prepare_input(
    cfg: Any, img_path: str | os.PathLike[str], shape: tuple[int, int] | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Normalised, padded ``Tensor[1, 3, H, W]`` and its ``img_meta`` for one image file.

    Args:
        cfg: The model's config (its ``data.test.pipeline`` is run).
        img_path: The image.
        shape: ``(H, W)`` to resize to exactly; ``None`` keeps the pipeline's resize.

    Example:
        >>> img, meta = prepare_input(cfg, 'demo.jpg')  # doctest: +SKIP
        >>> img.shape, meta['pad_shape']  # doctest: +SKIP
        (torch.Size([1, 3, 800, 1216]), (800, 1216, 3))
    """
    import detforge.datasets  # noqa: F401  (registers the transforms)
    from detforge.datasets.transforms.compose import Compose

    if not os.path.isfile(img_path):
        raise FileNotFoundError(f"input image {os.fspath(img_path)!r} does not exist")
    steps = test_pipeline_steps(cfg)
    if shape is not None:
        steps = _exact_resize(steps, shape)
    data = Compose(steps)(dict(img_info=dict(filename=os.fspath(img_path)), img_prefix=None))
    if data is None:
        raise ValueError(f"the test pipeline dropped {os.fspath(img_path)!r}")
    img = _first(data["img"])
    img = getattr(img, "data", img)
    meta = _first(data.get("img_metas", {}))
    meta = dict(getattr(meta, "data", meta))
    if not isinstance(img, torch.Tensor) or img.dim() != 3:
        raise ValueError(
            f"the test pipeline must end with an image tensor [3, H, W] (ImageToTensor or "
            f"DefaultFormatBundle); got {type(img).__name__}"
        )
    return img[None].contiguous(), meta


def input_meta_for_graph(meta: Mapping[str, Any], img: torch.Tensor) -> dict[str, Any]:
    """The ``img_meta`` under which PyTorch post-processes like the graph: boxes clipped to
    the whole (padded) input, not rescaled."""
    out = dict(meta)
    height, width = int(img.shape[-2]), int(img.shape[-1])
    out["img_shape"] = (height, width, 3)
    out["pad_shape"] = (height, width, 3)
    return out
