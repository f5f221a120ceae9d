"""A TorchServe handler (v2's ``tools/deployment/mmdet_handler.py``) over ``detforge.apis``.

Archive a model with ``torch-model-archiver --handler tools/deployment/mmdet_handler.py
--serialized-file CHECKPOINT --extra-files CONFIG`` (the config named ``config.py``). Each
request's ``data``/``body`` holds image bytes (or base64 text); the answer for each image is
v2's list of ``{"class_name", "bbox", "score"}`` scoring at least ``threshold``, class by class
(within a class in the model's order), as v2's handler answers. Without TorchServe the
class still works on its own (tests call it with a stand-in context).

The images go through ``detforge serve``'s guards: each header is checked before decoding
(pixel limit, aspect ratio), images are decoded only while their pixels together fit
``max_pixels_in_flight`` (a larger batch runs in several forwards), and one forward holds images
of one size only, so an answer does not depend on the other requests in TorchServe's batch.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import numpy as np

from detforge.apis.inference import inference_detector, init_detector
from detforge.serving.batching import run_grouped
from detforge.serving.budget import Budget, BudgetTimeout
from detforge.serving.security import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_PIXELS_IN_FLIGHT,
    decode_image,
    read_image_header,
)
from detforge.structures.det_result import result_to_detections
from detforge.utils.device import model_device

try:  # TorchServe is optional: the handler is also usable (and tested) without it
    from ts.torch_handler.base_handler import BaseHandler  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    BaseHandler = object

__all__ = ["MMdetHandler"]


class MMdetHandler(BaseHandler):  # type: ignore[misc,valid-type]
    """Load ``config.py`` + the serialized checkpoint from the model dir; detect per request."""

    threshold = 0.5
    max_pixels = DEFAULT_MAX_PIXELS
    max_pixels_in_flight = DEFAULT_MAX_PIXELS_IN_FLIGHT

    def initialize(self, context: Any) -> None:
        properties = context.system_properties
        gpu = properties.get("gpu_id")
        device = f"cuda:{gpu}" if gpu is not None else "cpu"  # no CUDA: the CPU, with a warning
        model_dir = properties.get("model_dir")
        checkpoint = os.path.join(model_dir, context.manifest["model"]["serializedFile"])
        self.model = init_detector(os.path.join(model_dir, "config.py"), checkpoint, device)
        self.device = model_device(self.model)
        self.budget = Budget(limit=self.max_pixels_in_flight)
        self.initialized = True

    @staticmethod
    def _bytes(row: dict[str, Any]) -> bytes:
        image = row.get("data") or row.get("body")
        if isinstance(image, str):
            image = base64.b64decode(image)
        return bytes(image)

    def preprocess(self, data: list[dict[str, Any]]) -> list[Any]:
        return [decode_image(self._bytes(row), self.max_pixels).img for row in data]

    def inference(self, data: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        def forward(imgs: list[np.ndarray]) -> list[Any]:
            return list(inference_detector(self.model, imgs))

        return run_grouped(forward, data, key=lambda img: img.shape)

    def postprocess(self, data: list[Any]) -> list[list[dict[str, Any]]]:
        classes = self.model.CLASSES
        return [
            [
                {"class_name": d["class"], "bbox": d["bbox"], "score": d["score"]}
                for d in result_to_detections(
                    result, classes, self.threshold, strict=False, by_score=False
                )
            ]
            for result in data
        ]

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[list[dict[str, Any]]]:
        """TorchServe's entry point: decode and run the images in chunks whose decoded pixels
        fit ``max_pixels_in_flight``, then postprocess."""
        results: list[Any] = [None] * len(data)
        held: list[tuple[int, np.ndarray, int]] = []  # (index, image, pixels)

        def release_held() -> None:
            while held:
                self.budget.release(held.pop()[2])

        def run_held() -> None:
            outputs = self.inference([img for _, img, _ in held])
            for (index, _, _), output in zip(held, outputs, strict=True):
                results[index] = output
            release_held()

        try:
            for index, row in enumerate(data):
                raw = self._bytes(row)
                width, height, _ = read_image_header(raw, self.max_pixels)
                try:
                    self.budget.acquire(width * height, timeout=0)
                except BudgetTimeout:  # the budget is full of this batch's images: run them
                    run_held()
                    self.budget.acquire(width * height, timeout=0)
                held.append((index, decode_image(raw, self.max_pixels).img, width * height))
            run_held()
        finally:
            release_held()  # a bad image failed the batch: give back what the others hold
        return self.postprocess(results)
